#!/usr/bin/env bash
# Hard-link the Heidelberg Digits' takes (data/recorded/hd, as `make checkpoints` unpacks them)
# into class folders for `s5rf data audio`: SHD's task rebuilt from its source recordings.
#   train/   ten speakers (all but hd-04, hd-05), trials 0-14 of each word
#   test/    hd-04 and hd-05, trials 0-9 of each word
#   more-a/, more-b/   the ten speakers' other trials (odd / even), for SHD's size
set -euo pipefail
cd "$(dirname "$0")/../../.."
KEYS=(zero one two three four five six seven eight nine null eins zwei drei vier fuenf sechs sieben acht neun)
OUT=${OUT:-data/shdlike}
for f in data/recorded/hd/lang-*.flac; do
    [[ $(basename "$f") =~ ^lang-(english|german)_speaker-([0-9]+)_trial-([0-9]+)_digit-([0-9])\.flac$ ]]
    lang=${BASH_REMATCH[1]} speaker=$((10#${BASH_REMATCH[2]})) trial=${BASH_REMATCH[3]}
    label=${BASH_REMATCH[4]}
    [[ $lang == german ]] && label=$((label + 10))
    if ((speaker == 4 || speaker == 5)); then
        ((trial < 10)) && part=test || continue
    elif ((trial < 15)); then part=train
    elif ((trial % 2)); then part=more-a
    else part=more-b
    fi
    mkdir -p "$OUT/$part/${KEYS[label]}"
    ln -f "$f" "$OUT/$part/${KEYS[label]}/"
done
