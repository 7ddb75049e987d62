#!/usr/bin/env bash
# Encode `layout.py --by-speaker data/hdspk` into data/hdspk-h5, a file a folder, each with a
# seed of its own: the test takes with the replica's seed 1, then 11, 12, ... in this order.
set -euo pipefail
OUT=data/hdspk-h5
mkdir -p $OUT
encode() {  # encode FOLDER NAME SEED
    [ -f "$OUT/$2.h5" ] || s5rf data audio "data/hdspk/$1" --out "$OUT/$2.h5" --seed "$3"
}
encode test test 1
seed=10
for part in first-8 next-8; do
    for speaker in hd-00 hd-01 hd-02 hd-03 hd-06 hd-07 hd-08 hd-09 hd-10 hd-11; do
        seed=$((seed + 1))
        encode "$speaker/$part" "$speaker-$part" $seed
    done
done
for speaker in hd-00 hd-01 hd-02 hd-11 hd-08; do
    seed=$((seed + 1))
    encode "$speaker/next-24" "$speaker-next-24" $seed
done
