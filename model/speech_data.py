"""The spoken-digits dataset: SHD's 20 classes from synthetic voices and, where given, recorded
speakers (model/recorded_speech.py), augmented, cochlea-encoded.

Recipe -> per-utterance specs (pure functions of the seed and the index) -> recordings cached
one file each (resumable; an interrupted run picks up where it stopped, a larger count extends
it) -> ``train.h5`` / ``test.h5`` in the SHD layout with ``recipe.json`` beside them.

Splits are by voice: a test voice is never heard in training. Every sample stores its
``engine`` and ``voice`` in ``extra/`` so training can also hold out a whole engine. Recorded
speakers are the voices of one more engine, ``recorded``, which takes its turn after the
synthesisers; the recipe names its held-out speakers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from model import audio_augment as aug
from model import recorded_speech
from model.cochlea import CHANNELS, encode_draws, prepare_waveform, read_audio
from model.datasets import write_shd
from model.digit_words import KEYS
from model.errors import InputError
from model.speech_synth import (
    ENGINES,
    ESPEAK_ENGLISH_ACCENTS,
    Engine,
    Prosody,
    Voice,
    available_voices,
    synthesize,
)
from model.workers import spawn_pool

Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")
RECORDED: Engine = "recorded"
# Test voices by name, so that installing another voice never moves one between splits: every
# fifth voice of each engine (sorted by name) as installed for the first datasets, then one of
# the Czech speakers added later. Any other voice is a training voice. One speaker under several
# names (SAME_SPEAKER) stays on one side: where most of its names were first, a tie in test.
TEST_VOICES = frozenset({
    "espeak-ng/Annie", "espeak-ng/Gene", "espeak-ng/Gene2", "espeak-ng/Lee", "espeak-ng/Storm",
    "espeak-ng/aunty", "espeak-ng/f1", "espeak-ng/f4", "espeak-ng/iven2", "espeak-ng/linda",
    "espeak-ng/m5", "espeak-ng/paul", "espeak-ng/robosoft4", "espeak-ng/sandro",
    "espeak-ng/travis",
    "espeak-ng-klatt/caleb", "espeak-ng-klatt/robosoft", "espeak-ng-klatt/robosoft3",
    "festival-diphone/pc_diphone", "festival-diphone/czech_machac",
})  # fmt: skip
# Voices that are one speaker under several names: FreeTTS's kevin and kevin16 and festival's
# kal_diphone are all CMU's KAL diphone database (8 and 16 kHz); espeak-ng variants whose vocal
# tract (formants, tone, voicing, ...) differs in at most one setting, counting neither what
# every utterance draws anew (pitch, speed) or the room adds (echo) nor the voice source (klatt,
# flutter): tests/model/test_speech_data.py finds them in the installed variant files.
SAME_SPEAKER = (
    frozenset({"freetts/kevin", "freetts/kevin16", "festival-diphone/kal_diphone"}),
    frozenset({"espeak-ng/Gene", "espeak-ng/Gene2"}),
    frozenset({"espeak-ng/Mr serious", "espeak-ng/Tweaky", "espeak-ng/john"}),
    frozenset({"espeak-ng/max", "espeak-ng/RicishayMax", "espeak-ng/robosoft8"}),
    frozenset({"espeak-ng/aunty", "espeak-ng/f4"}),
    frozenset({"espeak-ng/croak", "espeak-ng/fast", "espeak-ng-klatt/klatt",
               "espeak-ng-klatt/klatt2", "espeak-ng-klatt/klatt3", "espeak-ng-klatt/klatt4",
               "espeak-ng-klatt/klatt5", "espeak-ng-klatt/klatt6"}),
    frozenset({"espeak-ng-klatt/robosoft3", "espeak-ng/robosoft4"}),
    frozenset({"espeak-ng/Diogo", "espeak-ng/Henrique", "espeak-ng/Hugo", "espeak-ng/michel",
               "espeak-ng/miguel"}),
    frozenset({"espeak-ng/RicishayMax2", "espeak-ng/RicishayMax3"}),
    frozenset({"espeak-ng/anika", "espeak-ng/anikaRobot"}),
    frozenset({"espeak-ng-klatt/edward", "espeak-ng-klatt/edward2"}),
    frozenset({"espeak-ng/iven", "espeak-ng/iven3", "espeak-ng/iven4"}),
    frozenset({"espeak-ng/m8", "espeak-ng/robosoft6"}),
)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that determines the dataset; saved as recipe.json."""

    seed: int = 0
    n_train: int = 10_000
    n_test: int = 2_000
    channels: int = CHANNELS
    rate_range: tuple[float, float] = (0.75, 1.35)
    pitch_range: tuple[int, int] = (15, 85)
    # Training speakers made from the espeak-ng voices: formants moved by one vocal-tract
    # factor from this range, each then by up to ±formant_jitter more; (1, 1): voices as they
    # are. Test voices are never warped, so the test split does not depend on it.
    formant_range: tuple[float, float] = (1.0, 1.0)
    formant_jitter: float = 0.0
    # The engines whose voices speak; empty: every installed synthesiser. Recorded speakers
    # speak whenever there are recordings; ("recorded",) alone: no synthesiser.
    engines: tuple[Engine, ...] = ()
    # A folder of recorded takes (model/recorded_speech.py; "": none), whose speakers are the
    # voices of the ``recorded`` engine, and those of them held out for the test split.
    recordings: str = ""
    recorded_test: tuple[str, ...] = ()
    # Of every round of turns, recorded speakers take this many after one per synthesiser:
    # recorded speech is what a live sensor hears, so it can outweigh any one engine.
    recorded_turns: int = 1
    augment: aug.AugmentConfig = dataclasses.field(default_factory=aug.AugmentConfig)
    # Each training recording encoded this many times, the cochlea's stochastic spike stage
    # drawn anew each time (the sound, basilar membrane and hair cells once): a network that
    # fits one draw's nerve noise has not learnt the word. A test recording has one draw, as a
    # sensor gives.
    spike_draws: int = 1

    def __post_init__(self) -> None:
        """Refuse a recipe that would write an empty or ill-defined dataset, however it was
        made: by the CLI (whose argument types check only the counts), in Python, or read
        from a recipe.json."""
        for name in ("n_train", "n_test", "channels", "spike_draws", "recorded_turns"):
            if (value := getattr(self, name)) < 1:
                raise InputError(f"the recipe's {name} must be at least 1, not {value}")
        for name, (lo, hi) in (("rate_range", self.rate_range),
                               ("formant_range", self.formant_range)):
            if not 0 < lo <= hi:
                raise InputError(f"the recipe's {name} ({lo}, {hi}) must have 0 < LO <= HI")
        if not 0 <= self.pitch_range[0] <= self.pitch_range[1] <= 99:
            raise InputError(f"the recipe's pitch_range {self.pitch_range} must have "
                             "0 <= LO <= HI <= 99 (espeak-ng's pitch)")
        if self.formant_jitter < 0:
            raise InputError(f"the recipe's formant_jitter must not be negative, not "
                             f"{self.formant_jitter}")

    def count(self, split: Split) -> int:
        return self.n_train if split == "train" else self.n_test

    def draws(self, split: Split) -> int:
        return self.spike_draws if split == "train" else 1

    def voices(self) -> tuple[Voice, ...]:
        """The installed voices of the recipe's engines, then its recorded speakers, sorted
        by id; an engine with no voice, or a held-out speaker who is not among the recorded
        ones, is an error (the dataset would be another one)."""
        voices = available_voices()
        if self.engines:  # ("recorded",): no synthesiser
            synthesisers = set(self.engines) - {RECORDED}
            if missing := synthesisers - {v.engine for v in voices}:
                raise InputError(f"engines {sorted(missing)} have no installed voice: run "
                                 "scripts/install_speech_engines.sh")
            voices = tuple(v for v in voices if v.engine in synthesisers)
        if not self.recordings:
            if self.recorded_test or RECORDED in self.engines:
                raise InputError("recorded speakers need a folder of recordings")
            return voices
        speakers = recorded_speech.speakers(self.recordings)
        if unknown := sorted(set(self.recorded_test) - set(speakers)):
            raise InputError(f"held-out speakers {unknown} have no take in {self.recordings}; "
                             f"its speakers are {', '.join(speakers)}")
        recorded = tuple(Voice(RECORDED, s) for s in speakers)
        return tuple(sorted((*voices, *recorded), key=lambda v: v.id))

    def split_voices(self, voices: Sequence[Voice]) -> dict[Split, tuple[Voice, ...]]:
        """Voices per split: the synthetic ones named in TEST_VOICES and the held-out
        recorded speakers go to test, every other one to train."""
        test = {*TEST_VOICES, *(f"{RECORDED}/{s}" for s in self.recorded_test)}
        return {
            "train": tuple(v for v in voices if v.id not in test),
            "test": tuple(v for v in voices if v.id in test),
        }

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, described: dict[str, Any]) -> Recipe:
        """The recipe of a recipe.json (``describe``'s output; its voice lists are not part
        of the recipe: they are what was installed). A setting added since the file was
        written takes its default, which is what that recipe did."""

        def fields(kind: type, values: dict[str, Any]) -> dict[str, Any]:
            return {f.name: tuple(values[f.name]) if isinstance(values[f.name], list)
                    else values[f.name] for f in dataclasses.fields(kind) if f.name in values}

        augment = aug.AugmentConfig(**fields(aug.AugmentConfig, described["augment"]))
        return cls(**{**fields(cls, described), "augment": augment})


def speaker_of(voice_id: str) -> str:
    """The person a voice is: the first name of its SAME_SPEAKER group, or the voice itself."""
    return next((min(group) for group in SAME_SPEAKER if voice_id in group), voice_id)


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One recording to make: digit ``label`` said by ``voice`` with ``prosody``; for a
    recorded speaker, their ``take`` (its path under the recipe's recordings) instead."""

    split: Split
    index: int
    label: int
    voice: Voice
    prosody: Prosody
    take: str = ""


def _rng(recipe: Recipe, split: Split, index: int, stream: int) -> np.random.Generator:
    """Streams: 0 the utterance, 1 its audio and first spike draw, 2 formants, 2 + k (k >= 1)
    spike draw k + 1."""
    return np.random.default_rng([recipe.seed, SPLITS.index(split), index, stream])


def turns(voices: Sequence[Voice], recorded_turns: int = 1) -> list[Engine]:
    """The engines of ``voices`` in the order they take turns: utterance ``i`` of a split is
    spoken by ``turns(voices)[i % len(turns(voices))]``; recorded speakers come last, with
    ``recorded_turns`` turns."""
    synthesisers = [e for e in ENGINES if any(v.engine == e for v in voices)]
    recorded = any(v.engine == RECORDED for v in voices)
    return synthesisers + [RECORDED] * (recorded_turns if recorded else 0)


def utterance(recipe: Recipe, split: Split, index: int, voices: Sequence[Voice]) -> Utterance:
    """The ``index``-th utterance of a split; independent of the split's size, so a larger
    count only adds utterances. Engines take turns (each synthesiser equally represented
    however many voices it has, the recorded speakers ``recipe.recorded_turns`` times as often)
    and labels cycle within each engine: all 20 for a synthesiser, the words recorded by the
    split's speakers for the recorded engine."""
    rng = _rng(recipe, split, index, 0)
    engines = turns(voices, recipe.recorded_turns)
    turn = index % len(engines)
    engine: Engine = engines[turn]
    mine = [v for v in voices if v.engine == engine]
    if engine == RECORDED:  # the split's nth recorded utterance
        nth = (index // len(engines)) * recipe.recorded_turns + turn - engines.index(RECORDED)
        return _recorded_utterance(recipe, split, index, nth, mine, rng)
    label = (index // len(engines)) % len(KEYS)
    prosody = Prosody(
        rate=round(float(rng.uniform(*recipe.rate_range)), 3),
        pitch=int(rng.integers(recipe.pitch_range[0], recipe.pitch_range[1] + 1)),
        accent=str(rng.choice(ESPEAK_ENGLISH_ACCENTS)),
        formants=_formants(recipe, split, index, engine),
    )
    return Utterance(split, index, label, mine[int(rng.integers(len(mine)))], prosody)


def _recorded_utterance(recipe: Recipe, split: Split, index: int, nth: int,
                        speakers: Sequence[Voice], rng: np.random.Generator) -> Utterance:
    """The split's ``nth`` recorded utterance: the label cycles over the words the split's
    speakers recorded, then a speaker who said it and one of their takes are drawn. Its
    prosody is the default: speed and pitch vary by augmentation alone."""
    said = {v: recorded_speech.words(recipe.recordings, v.name) for v in speakers}
    labels = sorted(set().union(*said.values()))
    label = labels[nth % len(labels)]
    mine = [v for v in speakers if label in said[v]]
    voice = mine[int(rng.integers(len(mine)))]
    takes = said[voice][label]
    return Utterance(split, index, label, voice, Prosody(),
                     takes[int(rng.integers(len(takes)))].path)


def _formants(recipe: Recipe, split: Split, index: int, engine: Engine) -> tuple[int, ...]:
    """Formant 1-5 frequencies in percent for a warped training speaker, or () for none.
    Drawn from a stream of their own, so the other draws are those of an unwarped recipe."""
    if (split != "train" or not engine.startswith("espeak-ng")
            or (recipe.formant_range == (1.0, 1.0) and not recipe.formant_jitter)):
        return ()
    rng = _rng(recipe, split, index, 2)
    tract = rng.uniform(*recipe.formant_range)
    jitter = rng.uniform(-recipe.formant_jitter, recipe.formant_jitter, 5)
    return tuple(round(float(100 * tract * (1 + j))) for j in jitter)


def clean_word(label: int, voice: Voice, prosody: Prosody) -> np.ndarray:
    """Synthesised word, silence-trimmed, at WORK_RATE. float64 (T,)."""
    return aug.as_word(*synthesize(label, voice, prosody))


def recorded_word(recipe: Recipe, take: str) -> np.ndarray:
    """A recorded take (its path under ``recipe.recordings``), silence-trimmed, at
    WORK_RATE. float64 (T,)."""
    return aug.as_word(*read_audio(Path(recipe.recordings) / take))


def babble(recipe: Recipe, voices: Sequence[Voice], rng: np.random.Generator,
           n: int) -> np.ndarray:
    """3-6 overlapping words by espeak-ng voices of the same split (by its recorded speakers
    where it has no synthetic voice). float64 (n,)."""
    pool = ([v for v in voices if v.engine.startswith("espeak-ng")]
            or [v for v in voices if v.engine != RECORDED])
    ids = {v.id for v in voices}
    takes = [] if pool else [t.path for t in recorded_speech.find_takes(recipe.recordings)
                             if f"{RECORDED}/{t.speaker}" in ids]
    out = np.zeros(n)
    for _ in range(int(rng.integers(3, 7))):
        if takes:
            w = recorded_word(recipe, takes[int(rng.integers(len(takes)))])[:n]
        else:
            voice = pool[int(rng.integers(len(pool)))]
            prosody = Prosody(float(rng.uniform(0.8, 1.3)), int(rng.integers(10, 90)))
            w = clean_word(int(rng.integers(len(KEYS))), voice, prosody)[:n]
        start = int(rng.integers(0, n - w.size + 1))
        out[start : start + w.size] += w * rng.uniform(0.5, 1.5) / (np.std(w) + 1e-12)
    return out


def make_audio(recipe: Recipe, utt: Utterance, voices: Sequence[Voice]
               ) -> tuple[np.ndarray, dict[str, Any], np.random.Generator]:
    """Synthesise (or read) and augment one utterance: float64 (T,) at ``aug.WORK_RATE``, the
    augmentation's settings, and the utterance's generator as the augmentation left it (the
    cochlea's spike stage draws from it next)."""
    rng = _rng(recipe, utt.split, utt.index, 1)
    word = (recorded_word(recipe, utt.take) if utt.take
            else clean_word(utt.label, utt.voice, utt.prosody))
    audio, settings = aug.augment(
        word, rng, lambda r, n: babble(recipe, voices, r, n), recipe.augment, aug.WORK_RATE
    )
    return audio, settings, rng


def make_recording(
    recipe: Recipe, utt: Utterance, voices: Sequence[Voice]
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Synthesise (or read), augment and encode one utterance: COCHLEA_DTYPE events of each
    of its spike draws (``recipe.draws``; the first as a single-draw recipe makes it) and its
    metadata."""
    audio, settings, rng = make_audio(recipe, utt, voices)
    rngs = [rng, *(_rng(recipe, utt.split, utt.index, 2 + k)
                   for k in range(1, recipe.draws(utt.split)))]
    draws = encode_draws(prepare_waveform(audio, aug.WORK_RATE), rngs, channels=recipe.channels)
    meta = {
        "label": utt.label,
        "engine": utt.voice.engine,
        "voice": utt.voice.name,
        "prosody": dataclasses.asdict(utt.prosody),
        "augment": settings,
        **({"take": utt.take} if utt.take else {}),
    }
    return draws, meta


def _cache_path(out: Path, split: Split, index: int) -> Path:
    return out / "cache" / split / f"{index:06d}.npz"


def _draw_key(k: int) -> str:
    """A cached recording's array of spike draw ``k`` (the first keeps its older name)."""
    return f"events_{k}" if k else "events"


def _use_tempdir(folder: str) -> None:
    """A worker's initializer: its temporary files go under ``folder``."""
    tempfile.tempdir = folder


def _make_and_cache(job: tuple[Recipe, Path, Split, int, tuple[Voice, ...]]) -> None:
    recipe, out, split, index, voices = job
    draws, meta = make_recording(recipe, utterance(recipe, split, index, voices), voices)
    path = _cache_path(out, split, index)
    tmp = path.with_suffix(".tmp.npz")
    arrays: dict[str, Any] = {_draw_key(k): d for k, d in enumerate(draws)}
    np.savez(tmp, **arrays, meta=json.dumps(meta))
    os.replace(tmp, path)  # atomic: a killed worker never leaves a half-written recording


def pending(recipe: Recipe, out: Path) -> list[tuple[Split, int]]:
    """Recordings not yet cached, train and test interleaved so both grow together."""
    todo = {s: [i for i in range(recipe.count(s)) if not _cache_path(out, s, i).exists()]
            for s in SPLITS}  # fmt: skip
    ratio = max(len(todo["train"]), 1) / max(len(todo["test"]), 1)
    keyed = [(i * ratio if s == "test" else i, s, i) for s in SPLITS for i in todo[s]]
    return [(s, i) for _, s, i in sorted(keyed, key=lambda k: (k[0], k[1]))]


def describe(recipe: Recipe, voices: Sequence[Voice]) -> dict[str, Any]:
    """The recipe plus the voices of each split: what recipe.json records. The voices matter
    because utterances are drawn from the installed ones."""
    splits = recipe.split_voices(voices)
    described = {**recipe.to_json(), "voices": {s: [v.id for v in splits[s]] for s in SPLITS}}
    if recipe.recordings:  # a corpus that grew (or lost takes) is another dataset
        described["takes"] = len(recorded_speech.find_takes(recipe.recordings))
    return json.loads(json.dumps(described))  # tuples as lists, as read back


# The Debian packages (by name prefix, model/speech_packages.txt) each engine speaks with.
ENGINE_PACKAGES: dict[str, tuple[str, ...]] = {
    "espeak-ng": ("espeak-ng",), "espeak-ng-klatt": ("espeak-ng",),
    "festival-diphone": ("festival", "festvox-"), "festival-hts": ("festival", "festvox-"),
    "freetts": ("freetts",), "mbrola": ("mbrola", "espeak-ng"), "pico": ("libttspico",),
    RECORDED: (),
}


def package_versions(engines: Sequence[str]) -> dict[str, str]:
    """The installed Debian version of each speech package the ``engines`` use: an upgraded
    synthesiser or voice says the same words differently."""
    listed = (Path(__file__).with_name("speech_packages.txt")).read_text().splitlines()
    prefixes = tuple(p for engine in engines for p in ENGINE_PACKAGES[engine])
    names = [name for line in listed if (name := line.split("#")[0].strip())
             and name.startswith(prefixes)]
    if not names:
        return {}  # (dpkg-query without names lists every package)
    try:
        query = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\n", *names],
                               capture_output=True, text=True, check=False)
    except FileNotFoundError:  # not Debian: nothing to record
        return {}
    return dict(sorted(line.split(" ", 1) for line in query.stdout.splitlines()
                       if line.count(" ") == 1))


def _check_recipe(described: dict[str, Any], out: Path) -> None:
    """Refuse to mix cached recordings of different recipes or engine versions (only the
    counts may change; a cache from before versions were recorded takes the current ones)."""
    path = out / "cache" / "recipe.json"
    if path.exists():
        stored = json.loads(path.read_text())
        # read back as from_json does, so a setting added since counts as its default
        now = described.get("packages", {})
        # compared where both record a package: one of an engine this recipe does not use
        # (recorded by an earlier version of this code), or none (older still), is not
        recorded = stored.get("packages", {})
        old = json.loads(json.dumps(Recipe.from_json(stored).to_json())) | {
            "voices": stored["voices"], "takes": stored.get("takes"),
            "packages": {k: recorded.get(k, v) for k, v in now.items()}}
        counts = ("n_train", "n_test")
        differs = [k for k in described if k not in counts and old.get(k) != described[k]]
        if differs:
            packages = old["packages"]
            changed = sorted(p for p in {*packages, *now} if packages.get(p) != now.get(p))
            raise InputError(
                f"{out} holds recordings of a different recipe ({', '.join(differs)} differ"
                + (f": {', '.join(changed)}" if "packages" in differs and changed else "")
                + "); use another --out or delete it")
    path.write_text(json.dumps(described, indent=2))


def generate(recipe: Recipe, out: str | Path, workers: int = 2) -> Iterator[tuple[int, int]]:
    """Make every missing recording with ``workers`` processes, yielding (done, total) as
    they finish; then write train.h5, test.h5 and recipe.json."""
    out = Path(out)
    # Looked up once, here: the workers draw from the voices recipe.json records, even if an
    # engine is installed while they run.
    voices = recipe.voices()
    splits = recipe.split_voices(voices)
    for split in SPLITS:
        if recipe.count(split) and not splits[split]:
            held_out = sorted({voice.split("/")[0] for voice in TEST_VOICES})
            raise InputError(f"none of the voices of {', '.join(recipe.engines) or 'the engines'}"
                             f" is a {split} "
                             f"voice (the held-out test voices are of {', '.join(held_out)}"
                             + (", and the recorded speakers of --recorded-test"
                                if recipe.recordings else "")
                             + "); add an engine that has one"
                             + (" or hold a recorded speaker out" if recipe.recordings else ""))
    described = describe(recipe, voices) | {
        "packages": package_versions(sorted({v.engine for v in voices}))}
    for split in SPLITS:  # only once the recipe is known to be good: a refusal leaves nothing
        (out / "cache" / split).mkdir(parents=True, exist_ok=True)
    _check_recipe(described, out)
    jobs = [(recipe, out, s, i, splits[s]) for s, i in pending(recipe, out)]
    yield 0, len(jobs)
    if jobs:
        # The workers' temporary files (espeak-ng's data folders for warped voices) go in
        # one folder removed here: a pool's workers are terminated, not let run atexit.
        with tempfile.TemporaryDirectory(prefix="s5rf-speech-") as scratch, \
                spawn_pool(max(1, workers), _use_tempdir, (scratch,)) as pool:
            for done, _ in enumerate(pool.imap_unordered(_make_and_cache, jobs), 1):
                yield done, len(jobs)
    (out / "recipe.json").unlink(missing_ok=True)  # no recipe vouches for half-written splits
    for split in SPLITS:
        write_split(recipe, out, split)
    # Beside the files it describes, written last: it always matches train.h5 and test.h5.
    (out / "recipe.json").write_text(json.dumps(described, indent=2))


def write_split(recipe: Recipe, out: Path, split: Split) -> Path:
    """Gather the cached recordings of a split into ``out/{split}.h5`` (SHD layout): each
    recording's first spike draw, then (``recipe.draws`` > 1) each one's second, and so on;
    ``extra/draw`` numbers them, so the first N samples are the single-draw recipe's."""
    n_draws = recipe.draws(split)
    draws: list[list[np.ndarray]] = [[] for _ in range(n_draws)]
    labels, engines, names, noises, settings = [], [], [], [], []
    for i in range(recipe.count(split)):
        with np.load(_cache_path(out, split, i)) as f:
            meta = json.loads(str(f["meta"]))
            for k in range(n_draws):
                draws[k].append(f[_draw_key(k)])
        labels.append(meta["label"])
        engines.append(meta["engine"])
        names.append(meta["voice"])
        noises.append(meta["augment"].get("noise", "none"))
        settings.append(json.dumps({k: meta[k] for k in ("prosody", "augment", "take")
                                    if k in meta}))
    # One number per person of the recipe's voices, so the same ones in both splits: voices
    # that are one speaker under several names (SAME_SPEAKER) share it.
    people = sorted({speaker_of(v.id) for v in recipe.voices()})
    speaker = [people.index(speaker_of(f"{e}/{n}")) for e, n in zip(engines, names, strict=True)]
    path = out / f"{split}.h5"
    tmp = path.with_suffix(".tmp.h5")
    write_shd(
        tmp,
        [events for draw in draws for events in draw],
        labels * n_draws,
        keys=KEYS,
        channels=recipe.channels,
        extra={
            "engine": np.array(engines * n_draws),
            "voice": np.array(names * n_draws),
            "speaker": np.asarray(speaker * n_draws, dtype=np.uint16),
            "noise": np.array(noises * n_draws),  # white, pink, babble or none
            "settings": np.array(settings * n_draws),
            "draw": np.repeat(np.arange(n_draws), len(labels)),
        },
    )
    os.replace(tmp, path)  # readers never see a half-written file
    return path
