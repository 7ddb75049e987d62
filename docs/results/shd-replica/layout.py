"""Hard-link the Heidelberg Digits' takes (data/recorded/hd, as `make checkpoints` unpacks them)
into class folders for `s5rf data audio`: SHD's task rebuilt from its source recordings.

    train/            ten speakers (all but hd-04, hd-05), trials 0-14 of each word
    test/             hd-04 and hd-05, trials 0-9 of each word
    more-a/, more-b/  the ten speakers' other trials (odd / even), for SHD's size
"""

import os
import re
import sys
from pathlib import Path

from model.recorded_speech import find_takes
from model.speech_synth import KEYS

ROOT, OUT = Path("data/recorded/hd"), Path(sys.argv[1] if len(sys.argv) > 1 else "data/shdlike")

for take in find_takes(str(ROOT)):
    trial = int(re.search(r"_trial-([0-9]+)_", take.path)[1])
    if take.speaker in ("hd-04", "hd-05"):
        if trial >= 10:
            continue
        part = "test"
    else:
        part = "train" if trial < 15 else ("more-a" if trial % 2 else "more-b")
    folder = OUT / part / KEYS[take.label]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(take.path).name
    if not target.exists():
        os.link(ROOT / take.path, target)
