"""Spoken digits from the Debian speech synthesisers: engines, their voices, one call per word.

An *engine* is a synthesis method, so a model can be tested on a method it never heard:
``espeak-ng`` (formant), ``espeak-ng-klatt`` (espeak-ng's Klatt synthesiser variants),
``festival-diphone`` (kal, ked) and ``festival-hts`` (cmu_us_slt_arctic_hts). A *voice* is one
speaker-like timbre of an engine (an espeak-ng variant, a festival voice); it says both the
English and the German digits, as SHD's speakers did.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile

Engine = Literal["espeak-ng", "espeak-ng-klatt", "festival-diphone", "festival-hts"]
ENGINES: tuple[Engine, ...] = ("espeak-ng", "espeak-ng-klatt", "festival-diphone", "festival-hts")
APT_PACKAGES = (
    "espeak-ng",
    "festival",
    "festvox-kallpc16k",
    "festvox-kdlpc16k",
    "festvox-us-slt-hts",
)

ENGLISH = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GERMAN = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
# SHD's class names (extra/keys), umlaut spelt out; label = index.
KEYS = (
    *ENGLISH,
    "null",
    "eins",
    "zwei",
    "drei",
    "vier",
    "fuenf",
    "sechs",
    "sieben",
    "acht",
    "neun",
)
# Festival has no German voice: English letter-to-sound spellings of the German words.
GERMAN_FOR_FESTIVAL = (
    "nool", "eyens", "tsvye", "dry", "fear", "finf", "zex", "zeeben", "ahkt", "noyn",
)  # fmt: skip
ESPEAK_ENGLISH_ACCENTS = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
    "en-029", "en-us-nyc",
)  # fmt: skip
FESTIVAL_VOICE_DIR = Path("/usr/share/festival/voices")
FESTIVAL_VOICES: dict[str, Engine] = {
    "kal_diphone": "festival-diphone",
    "ked_diphone": "festival-diphone",
    "cmu_us_slt_arctic_hts": "festival-hts",
}


@dataclasses.dataclass(frozen=True)
class Voice:
    """One synthetic speaker: ``engine`` and ``name`` (espeak-ng variant or festival voice)."""

    engine: Engine
    name: str

    @property
    def id(self) -> str:
        return f"{self.engine}/{self.name}"


@dataclasses.dataclass(frozen=True)
class Prosody:
    """Per-utterance synthesis settings: ``rate`` (speed factor, 1 = engine default),
    ``pitch`` (espeak-ng 0-99; festival ignores it, augmentation shifts pitch instead),
    ``accent`` (espeak-ng English voice for English words)."""

    rate: float = 1.0
    pitch: int = 50
    accent: str = "en-us"


def _espeak_variant_dir() -> Path:
    for root in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/share"):
        d = Path(root) / "espeak-ng-data" / "voices" / "!v"
        if d.is_dir():
            return d
    raise FileNotFoundError(
        "espeak-ng voice variants not found; install them with `apt-get install espeak-ng`"
    )


@cache
def available_voices() -> tuple[Voice, ...]:
    """Every installed voice, sorted by id; empty for an engine that is not installed."""
    voices: list[Voice] = []
    if shutil.which("espeak-ng"):
        for f in sorted(_espeak_variant_dir().iterdir()):
            klatt = "klatt" in f.read_text(errors="ignore").lower()
            voices.append(Voice("espeak-ng-klatt" if klatt else "espeak-ng", f.name))
    if shutil.which("text2wave"):
        installed = {p.name for p in FESTIVAL_VOICE_DIR.glob("*/*") if p.is_dir()}
        voices += [Voice(e, n) for n, e in FESTIVAL_VOICES.items() if n in installed]
    return tuple(sorted(voices, key=lambda v: v.id))


def missing_engines() -> list[Engine]:
    """Engines with no installed voice."""
    have = {v.engine for v in available_voices()}
    return [e for e in ENGINES if e not in have]


def _read_mono(path: Path) -> tuple[np.ndarray, int]:
    audio, rate = soundfile.read(path, dtype="float64", always_2d=True)
    return audio.mean(axis=1), int(rate)


def synthesize(label: int, voice: Voice, prosody: Prosody) -> tuple[np.ndarray, int]:
    """Say digit ``label`` (0-9 English, 10-19 German) in ``voice``.

    Returns float64 (T,) mono audio and its sample rate (16, 22.05 or 32 kHz by engine).
    Deterministic: the same arguments give the same samples.
    """
    if not 0 <= label < len(KEYS):
        raise ValueError(f"label must be in [0, {len(KEYS)}), got {label}")
    german = label >= 10
    with tempfile.TemporaryDirectory(prefix="s5rf-tts-") as tmp:
        wav = Path(tmp) / "word.wav"
        if voice.engine.startswith("espeak-ng"):
            base = "de" if german else prosody.accent
            word = GERMAN[label - 10] if german else ENGLISH[label]
            cmd = ["espeak-ng", "-v", f"{base}+{voice.name}", "-s", str(round(175 * prosody.rate)),
                   "-p", str(prosody.pitch), "-w", str(wav), word]  # fmt: skip
            subprocess.run(cmd, check=True, capture_output=True)
        else:
            word = GERMAN_FOR_FESTIVAL[label - 10] if german else ENGLISH[label]
            cmd = ["text2wave", "-eval", f"(voice_{voice.name})",
                   "-eval", f"(Parameter.set 'Duration_Stretch {1 / prosody.rate:.4f})",
                   "-o", str(wav)]  # fmt: skip
            subprocess.run(cmd, input=word.encode(), check=True, capture_output=True)
        return _read_mono(wav)
