"""Hard-link the Heidelberg Digits' takes (data/recorded/hd, as `make checkpoints` unpacks them)
into class folders for `s5rf data audio`: SHD's task rebuilt from its source recordings.

    python layout.py [OUT]              (default data/shdlike)
    train/            ten speakers (all but hd-04, hd-05), trials 0-14 of each word
    test/             hd-04 and hd-05, trials 0-9 of each word
    more-a/, more-b/  the ten speakers' other trials (odd / even), for SHD's size

    python layout.py --by-speaker OUT   (the speaker-count runs)
    test/             as above
    hd-NN/first-8/, hd-NN/next-8/, hd-NN/next-24/
                      each training speaker's takes of each word in trial order: its first
                      8, the 8 after them, and the 24 after those (only where the speaker
                      has 40 takes of every word)
"""

import os
import re
import sys
from collections import defaultdict
from pathlib import Path

from model.digit_words import KEYS
from model.recorded_speech import Take, find_takes

ROOT = Path("data/recorded/hd")
TEST_SPEAKERS = ("hd-04", "hd-05")
RANKS = {"first-8": range(0, 8), "next-8": range(8, 16), "next-24": range(16, 40)}


def trial(take: Take) -> int:
    return int(re.search(r"_trial-([0-9]+)_", take.path)[1])


def replica_part(take: Take) -> str | None:
    n = trial(take)
    if take.speaker in TEST_SPEAKERS:
        return "test" if n < 10 else None
    return "train" if n < 15 else ("more-a" if n % 2 else "more-b")


def speaker_parts(takes: tuple[Take, ...]) -> dict[Take, str | None]:
    words = defaultdict(list)
    for take in takes:
        words[take.speaker, take.label].append(take)
    fewest = defaultdict(lambda: 10**6)
    for (speaker, _), its in words.items():
        fewest[speaker] = min(fewest[speaker], len(its))
    parts: dict[Take, str | None] = {}
    for (speaker, _), its in words.items():
        if speaker in TEST_SPEAKERS:  # the replica's test takes
            parts.update((take, replica_part(take)) for take in its)
            continue
        for rank, take in enumerate(sorted(its, key=trial)):
            for name, ranks in RANKS.items():
                if rank in ranks and fewest[speaker] >= ranks.stop:
                    parts[take] = f"{speaker}/{name}"
    return parts


def main() -> None:
    by_speaker = sys.argv[1:2] == ["--by-speaker"]
    args = sys.argv[2:] if by_speaker else sys.argv[1:]
    out = Path(args[0] if args else "data/shdlike")
    takes = find_takes(str(ROOT))
    parts = speaker_parts(takes) if by_speaker else {t: replica_part(t) for t in takes}
    for take, part in parts.items():
        if part is None:
            continue
        folder = out / part / KEYS[take.label]
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / Path(take.path).name
        if not target.exists():
            os.link(ROOT / take.path, target)


main()
