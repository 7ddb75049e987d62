"""Spoken digits from the Debian speech synthesisers: engines, their voices, one call per word.

An *engine* is a synthesis method, so a model can be tested on a method it never heard:
``espeak-ng`` (formant), ``espeak-ng-klatt`` (espeak-ng's Klatt synthesiser variants),
``festival-diphone`` (diphone concatenation: American, Italian, Finnish and Czech speakers,
one of them a boy),
``festival-hts`` (statistical parametric), ``freetts`` (FreeTTS, a Java diphone synthesiser
with its own prosody and signal processing), ``mbrola`` (MBROLA's diphone databases, each cut
from one real speaker's recordings: three American, one British and eight German speakers,
driven by espeak-ng) and ``pico`` (SVOX Pico, the HMM synthesiser of Android's first speech
engine: an American, a British, a German and an Italian voice). A *voice* is one speaker-like
timbre of an engine; it says both the English and the German digits, as SHD's speakers did.
A voice with no German (or no English) reads spellings of the words in its own orthography,
which gives accented speakers.

espeak-ng can also move a voice's formants (``Prosody.formants``): the same voice with a
longer or shorter vocal tract, a new speaker for every utterance if asked.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np

from model.cochlea import read_audio
from model.digit_words import ENGLISH, GERMAN, KEYS

Engine = Literal["espeak-ng", "espeak-ng-klatt", "festival-diphone", "festival-hts", "freetts",
                 "mbrola", "pico", "recorded"]
# The synthesisers. Appended, never reordered: a dataset's engines take turns in this order,
# then ``recorded`` (real speakers' takes: model/recorded_speech.py, speech_data.RECORDED).
ENGINES: tuple[Engine, ...] = (
    "espeak-ng", "espeak-ng-klatt", "festival-diphone", "festival-hts", "freetts", "mbrola",
    "pico",
)  # fmt: skip
# The 20 words (labels 0-19) spelt for a reader of each language's orthography.
SPELLINGS: dict[str, tuple[str, ...]] = {
    "en": (*ENGLISH,
           "nool", "eyens", "tsvye", "dry", "fear", "finf", "zex", "zeeben", "ahkt", "noyn"),
    "it": ("ziro", "uan", "tu", "tri", "for", "faiv", "siks", "seven", "eit", "nain",
           "nul", "ains", "zvai", "drai", "fir", "fiunf", "seks", "siben", "akt", "noin"),
    "fi": ("siirou", "uan", "tuu", "trii", "foo", "faiv", "siks", "seven", "eit", "nain",
           "nul", "ains", "tsvai", "drai", "fiir", "fynf", "seks", "siiben", "aht", "noin"),
    "cs": ("zírou", "uan", "tů", "trí", "fór", "fajf", "siks", "sevn", "ejt", "najn",
           "nul", "ajns", "cvaj", "draj", "fír", "fynf", "zeks", "zíbn", "acht", "nojn"),
    "de": ("sierou", "wann", "tuh", "srie", "foa", "feif", "sicks", "sewwen", "ejt", "nein",
           *GERMAN),
}  # fmt: skip
# Festival reads bytes; its Czech voices read ISO 8859-2 (UTF-8 makes them say other words).
TEXT_ENCODING = {"en": "ascii", "it": "ascii", "fi": "ascii", "cs": "iso-8859-2"}
ESPEAK_ENGLISH_ACCENTS = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
    "en-029", "en-us-nyc",
)  # fmt: skip
FESTIVAL_VOICE_DIR = Path("/usr/share/festival/voices")
# Festival voice -> (engine, language of its letter-to-sound rules). Not the Catalan HTS voice:
# its words sit in a second of breath noise that silence trimming cannot cut.
FESTIVAL_VOICES: dict[str, tuple[Engine, str]] = {
    "kal_diphone": ("festival-diphone", "en"),
    "ked_diphone": ("festival-diphone", "en"),
    "lp_diphone": ("festival-diphone", "it"),
    "pc_diphone": ("festival-diphone", "it"),
    "czech_dita": ("festival-diphone", "cs"),
    "czech_krb": ("festival-diphone", "cs"),
    "czech_machac": ("festival-diphone", "cs"),
    "czech_ph": ("festival-diphone", "cs"),
    "hy_fi_mv_diphone": ("festival-diphone", "fi"),
    "suo_fi_lj_diphone": ("festival-diphone", "fi"),
    "cmu_us_slt_arctic_hts": ("festival-hts", "en"),
}
MBROLA_DIR = Path("/usr/share/mbrola")
MBROLA_VOICES = ("de1", "de2", "de3", "de4", "de5", "de6", "de7", "de8", "en1", "us1", "us2",
                 "us3")  # the English and German databases Debian packages
PICO_LANG_DIR = Path("/usr/share/pico/lang")
PICO_VOICES = ("de-DE", "en-GB", "en-US", "it-IT")  # one speaker each
FREETTS_JAR = Path("/usr/share/java/freetts.jar")
FREETTS_VOICES = ("kevin", "kevin16")  # 8 kHz and 16 kHz diphone voices
# One short JVM per word: the quick compiler and a serial collector halve its CPU time and
# leave the audio identical.
JVM_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:CICompilerCount=1")


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
    ``accent`` (espeak-ng English voice for English words), ``formants`` (espeak-ng: the
    frequencies of formants 1, 2, ... in percent of the voice's own; empty: unchanged)."""

    rate: float = 1.0
    pitch: int = 50
    accent: str = "en-us"
    formants: tuple[int, ...] = ()


def _espeak_variant_dir() -> Path:
    for root in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/share"):
        d = Path(root) / "espeak-ng-data" / "voices" / "!v"
        if d.is_dir():
            return d
    raise FileNotFoundError(
        "espeak-ng voice variants not found; install them with `apt-get install espeak-ng`"
    )


@functools.cache
def available_voices() -> tuple[Voice, ...]:
    """Every installed voice, sorted by id; empty for an engine that is not installed."""
    voices: list[Voice] = []
    if shutil.which("espeak-ng"):
        for f in sorted(_espeak_variant_dir().iterdir()):
            klatt = "klatt" in f.read_text(errors="ignore").lower()
            voices.append(Voice("espeak-ng-klatt" if klatt else "espeak-ng", f.name))
    if shutil.which("text2wave"):
        installed = {p.name for p in FESTIVAL_VOICE_DIR.glob("*/*") if p.is_dir()}
        voices += [Voice(e, n) for n, (e, _) in FESTIVAL_VOICES.items() if n in installed]
    if FREETTS_JAR.exists() and shutil.which("java"):
        voices += [Voice("freetts", n) for n in FREETTS_VOICES]
    if shutil.which("espeak-ng") and shutil.which("mbrola"):
        voices += [Voice("mbrola", n) for n in MBROLA_VOICES if (MBROLA_DIR / n).is_dir()]
    if shutil.which("pico2wave"):
        voices += [Voice("pico", n) for n in PICO_VOICES if any(PICO_LANG_DIR.glob(f"{n}_*"))]
    return tuple(sorted(voices, key=lambda v: v.id))


def missing_engines() -> list[Engine]:
    """Engines with no installed voice."""
    have = {v.engine for v in available_voices()}
    return [e for e in ENGINES if e not in have]


def synthesize(label: int, voice: Voice, prosody: Prosody) -> tuple[np.ndarray, int]:
    """Say digit ``label`` (0-9 English, 10-19 German) in ``voice``.

    Returns float64 (T,) mono audio, read-only, and its sample rate (8 to 32 kHz by voice).
    Deterministic: the same arguments give the same samples, so words are cached per process
    under the prosody the engine reads (freetts reads none of it: 40 distinct words in all).
    """
    if not 0 <= label < len(KEYS):
        raise ValueError(f"label must be in [0, {len(KEYS)}), got {label}")
    return _synthesize(label, voice, _prosody_read_by(voice.engine, prosody, german=label >= 10))


def reading_language(voice: Voice) -> str | None:
    """The orthography ``voice`` reads the words in (a key of SPELLINGS), or None for an
    espeak-ng voice, which speaks English and German natively."""
    if voice.engine.startswith("festival"):
        return FESTIVAL_VOICES[voice.name][1]
    if voice.engine == "mbrola":
        return "de" if voice.name.startswith("de") else "en"
    if voice.engine == "pico":
        return voice.name[:2]
    return "en" if voice.engine == "freetts" else None


def _prosody_read_by(engine: Engine, prosody: Prosody, german: bool) -> Prosody:
    """The part of ``prosody`` that changes ``engine``'s audio; the rest set to defaults."""
    if engine == "freetts":
        return Prosody()
    if engine.startswith("festival"):
        return Prosody(rate=prosody.rate)
    if engine in ("mbrola", "pico"):
        return Prosody(rate=prosody.rate, pitch=prosody.pitch)
    return dataclasses.replace(prosody, accent=Prosody.accent) if german else prosody


WARPED = "s5rf-warped"  # the generated variant's name in the private data directory
_FORMANT = re.compile(r"^\s*formant\s+(\d+)((?:\s+-?\d+)+)\s*$")


def warp_formants(variant: str, scales: tuple[int, ...]) -> str:
    """An espeak-ng variant file's text with formant n's frequency (n = 1, 2, ...) scaled by
    ``scales[n - 1]`` percent; its other fields (height, width, frequency offset, as many as
    the line gives) and every other line kept."""
    formants = {n: [100, 100, 100] for n in range(1, len(scales) + 1)}
    kept = []
    for line in variant.splitlines():
        if m := _FORMANT.match(line):
            formants[int(m[1])] = [int(v) for v in m[2].split()]
        else:
            kept.append(line)
    for n, scale in enumerate(scales, 1):
        formants[n][0] = round(formants[n][0] * scale / 100)
    return "\n".join([*kept, *(" ".join(map(str, ["formant", n, *fields]))
                               for n, fields in sorted(formants.items()))]) + "\n"


@functools.cache
def _private_espeak_data() -> Path:
    """A directory holding an ``espeak-ng-data`` of links to the installed one, whose variant
    folder also takes the generated variant: espeak-ng reads variants only from its data
    path. One per process, removed at exit."""
    installed = _espeak_variant_dir().parent.parent
    root = Path(tempfile.mkdtemp(prefix="s5rf-espeak-"))
    atexit.register(shutil.rmtree, root, True)
    data = root / "espeak-ng-data"
    for source, target in ((installed, data), (installed / "voices", data / "voices"),
                           (installed / "voices" / "!v", data / "voices" / "!v")):
        target.mkdir()
        for entry in source.iterdir():
            if entry.name not in ("voices", "!v"):  # the folders made here instead
                (target / entry.name).symlink_to(entry)
    return root


@functools.lru_cache(maxsize=256)  # < 70 MB: words last < 1 s at <= 32 kHz
def _synthesize(label: int, voice: Voice, prosody: Prosody) -> tuple[np.ndarray, int]:
    german = label >= 10
    with tempfile.TemporaryDirectory(prefix="s5rf-tts-") as tmp:
        wav = Path(tmp) / "word.wav"
        if voice.engine.startswith("espeak-ng"):
            base = "de" if german else prosody.accent
            word = GERMAN[label - 10] if german else ENGLISH[label]
            variant, path = voice.name, []
            if prosody.formants:
                data = _private_espeak_data()
                own = (_espeak_variant_dir() / voice.name).read_text(errors="ignore")
                (data / "espeak-ng-data" / "voices" / "!v" / WARPED).write_text(
                    warp_formants(own, prosody.formants))
                variant, path = WARPED, [f"--path={data}"]
            cmd = ["espeak-ng", *path, "-v", f"{base}+{variant}",
                   "-s", str(round(175 * prosody.rate)), "-p", str(prosody.pitch),
                   "-w", str(wav), word]  # fmt: skip
            subprocess.run(cmd, check=True, capture_output=True)
        elif voice.engine == "freetts":
            # No rate option on its command line: augmentation's speed perturbation covers it.
            cmd = ["java", *JVM_FLAGS, "-jar", str(FREETTS_JAR), "-voice", voice.name,
                   "-dumpAudio", str(wav), "-text", _spelling(voice, label)]  # fmt: skip
            subprocess.run(cmd, check=True, capture_output=True)
        elif voice.engine == "mbrola":
            name = _mbrola_voice(voice.name, german)
            word = ENGLISH[label] if name.endswith("-en") else _spelling(voice, label)
            cmd = ["espeak-ng", "-v", name, "-s", str(round(175 * prosody.rate)),
                   "-p", str(prosody.pitch), "-w", str(wav), word]  # fmt: skip
            subprocess.run(cmd, check=True, capture_output=True)
        elif voice.engine == "pico":
            # Pico reads its prosody from markup: speed and pitch in percent of its own.
            markup = (f"<speed level='{round(100 * prosody.rate)}'>"
                      f"<pitch level='{70 + 3 * prosody.pitch // 5}'>"
                      f"{_spelling(voice, label)}</pitch></speed>")
            subprocess.run(["pico2wave", "-l", voice.name, "-w", str(wav), markup],
                           check=True, capture_output=True)  # fmt: skip
        else:
            text = _spelling(voice, label).encode(TEXT_ENCODING[FESTIVAL_VOICES[voice.name][1]])
            _festival(text, voice.name, 1 / prosody.rate, wav)
        audio, rate = read_audio(wav)
    audio.flags.writeable = False  # shared by every caller of the cache
    return audio, rate


def _spelling(voice: Voice, label: int) -> str:
    """Word ``label`` as ``voice`` reads it: spelt in its orthography (SPELLINGS), which is
    the word as written where that is the word's own language."""
    return SPELLINGS[reading_language(voice) or ("de" if label >= 10 else "en")][label]


def _mbrola_voice(name: str, german: bool) -> str:
    """espeak-ng's voice for MBROLA database ``name``: its own language, or for English words
    and a German database the ``-en`` voice that maps English phonemes onto it where espeak-ng
    has one (others read the German spelling)."""
    english_for_german = f"mb-{name}-en"
    if not german and name.startswith("de") and _espeak_has_voice(english_for_german):
        return english_for_german
    return f"mb-{name}"


def _espeak_has_voice(name: str) -> bool:
    return (_espeak_variant_dir().parent / "mb" / name).is_file()


def _festival(word: bytes, voice: str, stretch: float, wav: Path) -> None:
    """Say ``word`` with festival's ``text2wave``, durations scaled by ``stretch``.

    Festival 2.5's diphone voices crash (SIGSEGV) on a few words at a few exact stretches
    (lp_diphone and pc_diphone saying "tu" at 0.7788); a nudged stretch, the same on every
    run, says the word instead of ending the dataset's generation.
    """
    for attempt in (stretch, stretch * 1.01, stretch * 0.99, 1.0):
        cmd = ["text2wave", "-eval", f"(voice_{voice})",
               "-eval", f"(Parameter.set 'Duration_Stretch {attempt:.4f})", "-o", str(wav)]
        done = subprocess.run(cmd, input=word, capture_output=True, check=False)
        if done.returncode >= 0:
            done.check_returncode()  # an error that is not a crash is raised as it is
            return
    done.check_returncode()
