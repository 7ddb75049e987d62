#!/usr/bin/env bash
# Regenerate both datasets and retrain both shipped checkpoints (hours on 2 CPU cores; not CI).
# Every step is resumable: rerun the script after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.."
S5RF=.venv/bin/s5rf

# DVS digits: N-MNIST procedure on load_digits (50 s on a quiet 2-core box), then S5-RF (2 min).
$S5RF data dvs --out data/dvs --seed 0 --workers 2
$S5RF train --data data/dvs/train.h5 --test data/dvs/test.h5 --out checkpoints/digits-dvs \
    --preset shd --epochs 30 --dt-us 5000 --pool 2 --shift 1 --batch-size 32 \
    --description "Handwritten digits 0-9 seen by a 34x34 DVS in N-MNIST's three saccades"
$S5RF eval --checkpoint checkpoints/digits-dvs --data data/dvs/test.h5 --update-card
$S5RF data samples --data data/dvs/test.h5 --checkpoint checkpoints/digits-dvs --out samples/digits-dvs --per-class 2

# Spoken digits: synthesisers and recorded takes -> augmentation -> cochlea (67 min for the 13,000
# below on 2 cores), then S5-RF (20 min), its checks (4 min) and leave-one-engine-out (6 runs
# on 3,000 recordings, 10 min).
bash scripts/install_speech_engines.sh  # every engine, or the dataset is another one

# Recorded speakers, as the `recorded` engine, one folder of hard links to both corpora:
# - the Free Spoken Digit Dataset (v1.0.10: six men, English digits, 8 kHz, CC BY-SA 4.0);
# - the Heidelberg Digits (Cramer et al. 2020: the 12 speakers, English and German, 48 kHz, that
#   SHD was made from; CC BY 4.0). Their archive (hd_audio.tar.gz, zenkelab.org) unpacked into
#   data/recorded/hd serves; these machines reach only GitHub, where the files are in the history
#   of a lauscher fork (its audio/ folder, deleted in commit 5d1226c).
# Held out for the test split: hd-04 and hd-05 (SHD's test-only speakers), jackson, yweweler.
FSDD=data/fsdd
[ -d $FSDD ] || git clone --quiet --depth 1 --branch v1.0.10 \
    https://github.com/Jakobovski/free-spoken-digit-dataset $FSDD
if [ ! -d data/recorded/hd ]; then
    [ -d data/cochlea_model.git ] || git clone --quiet --bare \
        https://github.com/Petra12345/cochlea_model data/cochlea_model.git
    mkdir -p data/recorded/hd
    git -C data/cochlea_model.git archive 5d1226c^ audio \
        | tar -x --strip-components=1 -C data/recorded/hd
fi
[ -d data/recorded/fsdd ] || cp -al $FSDD/recordings data/recorded/fsdd
# The shipped network heard the first five synthesisers; MBROLA and Pico came later (README).
# Recorded speech takes five turns of every ten: half the recordings.
$S5RF data speech --out data/speech --train 12000 --test 1000 --seed 0 --workers 2 \
    --engines espeak-ng espeak-ng-klatt festival-diphone festival-hts freetts recorded \
    --recordings data/recorded --recorded-turns 5 --recorded-test hd-04 hd-05 jackson yweweler
$S5RF train --data data/speech/train.h5 --test data/speech/test.h5 --out checkpoints/digits-cochlea \
    --preset shd --neurons 256 256 --epochs 16 --dt-us 4000 --downsample 5 --jitter-us 1000 --shift 5 --drop 0.1 \
    --mask-time 20 --mask-channels 10 \
    --description "Spoken digits, English zero-nine and German null-neun (SHD's 20 classes), through SHD's cochlea"
$S5RF eval --checkpoint checkpoints/digits-cochlea --data data/speech/test.h5 --by engine --update-card
.venv/bin/python scripts/accuracy_by_condition.py --checkpoint checkpoints/digits-cochlea \
    --data data/speech/test.h5 --json checkpoints/digits-cochlea/accuracy_by_condition.json
# One real human speaker (Debian's asterisk-core-sounds-en-wav: English digits, 8 kHz); a
# machine that cannot install it skips this check rather than losing the hours above.
if dpkg -s asterisk-core-sounds-en-wav >/dev/null 2>&1 \
        || apt-get install -y -qq asterisk-core-sounds-en-wav; then
    .venv/bin/python scripts/real_speaker.py --checkpoint checkpoints/digits-cochlea --seeds 10 \
        --json checkpoints/digits-cochlea/real_speaker.json --update-card
else
    echo "skipped the real-speaker check: apt-get install asterisk-core-sounds-en-wav first" >&2
fi
# The four held-out speakers' clean takes, ten of each word.
.venv/bin/python scripts/recorded_speakers.py --checkpoint checkpoints/digits-cochlea \
    --recordings data/recorded --speakers hd-04 hd-05 jackson yweweler --takes-per-word 10 \
    --json checkpoints/digits-cochlea/recorded_speakers.json --update-card
# Demo samples from synthetic voices only: recorded takes are not redistributed here.
$S5RF data samples --data data/speech/test.h5 --checkpoint checkpoints/digits-cochlea \
    --out samples/digits-cochlea --per-class 2 --max-events 8000 --filter engine!=recorded
.venv/bin/python scripts/leave_one_engine_out.py --data data/speech --out data/runs/loeo \
    --epochs 8 --recordings 3000 --json checkpoints/digits-cochlea/leave_one_engine_out.json --preset shd --neurons 256 256 \
    --dt-us 4000 --downsample 5 --jitter-us 1000 --shift 5 --drop 0.1 --mask-time 20 \
    --mask-channels 10
