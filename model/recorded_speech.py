"""Recorded speakers for the spoken-digits dataset: real people's takes of the words.

Synthesisers alone do not teach a network speech (docs/results/spoken-digits.md); recorded
speakers are the missing ingredient. Four layouts are read, anywhere under a root folder:

- ``<digit>_<speaker>_<n>.<ext>``: the Free Spoken Digit Dataset's and AudioMNIST's naming
  (English digits 0-9, so labels 0-9);
- ``lang-<english|german>_speaker-<NN>_trial-<n>_digit-<digit>.<ext>``: the Heidelberg Digits,
  the recordings SHD was made from (labels 0-9 English, 10-19 German, as SHD's); speaker
  ``NN`` is ``hd-NN``, one voice in both languages;
- ``<word>/<speaker>_nohash_<n>.<ext>``: Google Speech Commands (the speaker a hash); only its
  English digit words are takes, its other words (``bed``, ``yes``, ...) and its
  ``_background_noise_`` clips are not classes here;
- ``<speaker>/<key>/<file>.<ext>``: a folder per speaker holding a folder per class key
  (SHD's keys: ``zero`` ... ``nine``, ``null`` ... ``neun``, ``fuenf`` for fünf), for any
  recordings of your own, German included.

A *take* is one file; a speaker is a voice of the ``recorded`` engine.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path

from model.audio_folder import AUDIO_SUFFIXES
from model.digit_words import KEYS
from model.errors import InputError

# FSDD: recordings/7_jackson_32.wav; AudioMNIST: data/01/0_01_0.wav
_NAMED = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[^_/]+)_(?P<n>[0-9]+)$")
# Heidelberg Digits: audio/lang-german_speaker-04_trial-3_digit-7.flac
_HEIDELBERG = re.compile(r"^lang-(?P<lang>english|german)_speaker-(?P<speaker>[0-9]+)"
                         r"_trial-(?P<n>[0-9]+)_digit-(?P<digit>[0-9])$")
# Speech Commands: speech_commands_v0.02/seven/0a7c2a8d_nohash_1.wav
_COMMANDS = re.compile(r"^(?P<speaker>[0-9a-f]{8})_nohash_(?P<n>[0-9]+)$")
_COMMANDS_NOISE = "_background_noise_"  # Speech Commands' noise clips: no word, no speaker


@dataclasses.dataclass(frozen=True)
class Take:
    """One recorded word: ``path`` relative to the recordings root, its label and speaker."""

    path: str
    label: int
    speaker: str


@functools.cache
def find_takes(root: str) -> tuple[Take, ...]:
    """Every take under ``root`` (see the module's layouts), sorted by path.

    Raises InputError when ``root`` is not a folder, holds no take, or a folder of the
    speaker layout is not a class key (a misspelt class must not vanish from the data).
    """
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"recordings {root!r} is not a directory")
    takes = []
    for file in sorted(base.rglob("*")):
        if file.suffix.lower() not in AUDIO_SUFFIXES or not file.is_file():
            continue
        relative = file.relative_to(base)
        if named := _NAMED.match(file.stem):
            takes.append(Take(str(relative), int(named["digit"]), named["speaker"]))
        elif hd := _HEIDELBERG.match(file.stem):
            german = 10 if hd["lang"] == "german" else 0
            takes.append(Take(str(relative), int(hd["digit"]) + german, f"hd-{hd['speaker']}"))
        elif commands := _COMMANDS.match(file.stem):
            if (word := file.parent.name) in KEYS:
                takes.append(Take(str(relative), KEYS.index(word), commands["speaker"]))
        elif file.parent.name == _COMMANDS_NOISE:
            continue
        elif len(relative.parts) >= 3:
            key, speaker = relative.parts[-2], relative.parts[-3]
            if key not in KEYS:
                raise InputError(f"{file}: folder {key!r} is not a class key; the classes are "
                                 f"{', '.join(KEYS)}")
            takes.append(Take(str(relative), KEYS.index(key), speaker))
    if not takes:
        raise InputError(f"no recorded takes under {root}: name files <digit>_<speaker>_<n>.wav "
                         "(FSDD, AudioMNIST) or lang-<english|german>_speaker-<NN>_trial-<n>_"
                         "digit-<digit>.flac (Heidelberg Digits) or <word>/<speaker>_nohash_"
                         "<n>.wav (Speech Commands), or put them in "
                         "<speaker>/<class key>/ folders")
    return tuple(takes)


def speakers(root: str) -> tuple[str, ...]:
    """The speakers of ``root``'s takes, sorted."""
    return tuple(sorted({t.speaker for t in find_takes(root)}))


@functools.cache
def words(root: str, speaker: str) -> dict[int, tuple[Take, ...]]:
    """``speaker``'s takes by the word's label: only the words they recorded, each word's
    takes sorted by path. Cached: the generator asks for every recorded utterance."""
    by_label: dict[int, list[Take]] = {}
    for take in find_takes(root):
        if take.speaker == speaker:
            by_label.setdefault(take.label, []).append(take)
    return {label: tuple(takes) for label, takes in sorted(by_label.items())}

