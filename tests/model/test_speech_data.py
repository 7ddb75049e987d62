"""The spoken-digits generator: valid SHD files from every engine, voice-disjoint splits,
SHD's labels and keys, and recordings that depend only on the seed."""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model import digit_words, speech_synth
from model import speech_data as sd
from model.datasets import open_dataset
from model.events import COCHLEA_DTYPE

pytestmark = pytest.mark.engines

SMALL = sd.Recipe(seed=3, n_train=8, n_test=3, channels=16)


INSTALL = Path(__file__).parents[2] / "scripts" / "install_speech_engines.sh"


def _install_engines() -> list[speech_synth.Engine]:
    """Install the engines once if any is missing; returns the engines still missing."""
    if speech_synth.missing_engines() and shutil.which("apt-get"):
        subprocess.run(["bash", str(INSTALL)], capture_output=True, check=False, timeout=900)
        speech_synth.available_voices.cache_clear()
    return speech_synth.missing_engines()


@pytest.fixture(scope="module")
def voices() -> tuple[speech_synth.Voice, ...]:
    missing = _install_engines()
    if missing:
        pytest.skip(f"speech engines {missing} are not installed and could not be; run "
                    f"`sudo bash {INSTALL.relative_to(INSTALL.parents[1])}`")
    return speech_synth.available_voices()


@pytest.fixture(scope="module")
def generated(voices, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("speech")
    for _ in sd.generate(SMALL, out, workers=1):
        pass
    return out


def test_every_engine_speaks_every_language_in_every_orthography(voices) -> None:
    # The first voice of each engine and of each orthography an engine reads (Czech and
    # German spellings have accents; MBROLA's German voices say English words two ways).
    speakers = {(v.engine, speech_synth.reading_language(v)): v for v in reversed(voices)}
    if (no_english := speech_synth.Voice("mbrola", "de7")) in voices:
        speakers[("mbrola", "German spellings")] = no_english
    for voice in speakers.values():
        for label in (7, 17):
            word = sd.clean_word(label, voice, speech_synth.Prosody())
            assert 0.1 < word.size / sd.aug.WORK_RATE < 1.5, (voice, label)
            assert np.abs(word).max() > 0.01


def test_test_voices_are_never_training_voices(voices) -> None:
    splits = SMALL.split_voices(voices)
    assert not set(splits["train"]) & set(splits["test"])
    assert set(splits["train"]) | set(splits["test"]) == set(voices)
    assert {v.engine for v in splits["train"]} == set(speech_synth.ENGINES)
    assert len(splits["test"]) >= 0.15 * len(voices)


def test_one_speaker_under_several_names_stays_in_one_split() -> None:
    for names in sd.SAME_SPEAKER:
        assert len({name in sd.TEST_VOICES for name in names}) == 1, names


def test_the_names_of_one_speaker_are_one_person() -> None:
    """extra/speaker numbers people: kevin, kevin16 and kal_diphone are CMU's one KAL."""
    kal = {sd.speaker_of(v) for v in ("freetts/kevin", "freetts/kevin16",
                                       "festival-diphone/kal_diphone")}
    assert len(kal) == 1 and sd.speaker_of("espeak-ng/en") == "espeak-ng/en"


# Variant-file settings that make no other speaker: drawn per utterance (pitch, speed and
# espeak-ng's fast_test2), added by the room (echo), the voice source (klatt, flutter), labels.
NOT_VOCAL_TRACT = {"name", "language", "gender", "pitch", "speed", "fast_test2", "echo",
                   "klatt", "flutter"}


def _vocal_tract(variant: Path) -> dict[tuple[str, ...], tuple[str, ...]]:
    """An espeak-ng variant's settings by slot (a keyword; a formant with its number)."""
    settings = {}
    for line in variant.read_text(errors="ignore").lower().splitlines():
        words = line.split("//")[0].split()
        if not words or words[0].startswith("#") or words[0] in NOT_VOCAL_TRACT:
            continue
        slot = tuple(words[:2]) if words[0] == "formant" else (words[0],)
        settings[slot] = tuple(words[len(slot):])
    return settings


def test_espeak_variants_one_setting_apart_are_one_speaker(voices) -> None:
    # Chained: a variant near a near-duplicate is the same speaker too, and variants that
    # change nothing of the vocal tract join the default voice (None).
    ids = {v.name: v.id for v in voices if v.engine.startswith("espeak-ng")}
    tracts = {v: _vocal_tract(speech_synth._espeak_variant_dir() / n) for n, v in ids.items()}
    tracts[None] = {}
    speaker = {v: {v} for v in tracts}
    for a, b in itertools.combinations(tracts, 2):
        if sum(tracts[a].get(k) != tracts[b].get(k) for k in {*tracts[a], *tracts[b]}) <= 1:
            merged = speaker[a] | speaker[b]
            speaker.update(dict.fromkeys(merged, merged))
    listed = {name: group for group in sd.SAME_SPEAKER for name in group}
    for group in {frozenset(g - {None}) for g in speaker.values()}:
        if len(group) > 1:
            assert group <= listed.get(next(iter(group)), set()), sorted(group)


def test_a_newly_installed_voice_trains_and_moves_no_other_voice(voices) -> None:
    newcomer = speech_synth.Voice("festival-diphone", "aaa_new_diphone")
    before, after = SMALL.split_voices(voices), SMALL.split_voices((newcomer, *voices))
    assert after["test"] == before["test"]
    assert set(after["train"]) == {newcomer, *before["train"]}


def test_utterances_cycle_engines_and_all_20_labels(voices) -> None:
    train = SMALL.split_voices(voices)["train"]
    n = len(speech_synth.ENGINES) * 20
    utts = [sd.utterance(SMALL, "train", i, train) for i in range(n)]
    assert {(u.voice.engine, u.label) for u in utts} == {
        (e, label) for e in speech_synth.ENGINES for label in range(20)
    }
    assert sd.utterance(SMALL, "train", 5, train) == utts[5]  # independent of the split size


def test_generate_writes_shd_files_with_labels_keys_and_sources(generated: Path, voices) -> None:
    engines_seen = set()
    for split in sd.SPLITS:
        n = SMALL.count(split)
        with open_dataset(generated / f"{split}.h5") as ds:
            assert len(ds) == n and ds.sensor == "cochlea" and ds.channels == SMALL.channels
            assert ds.keys == list(digit_words.KEYS)
            assert ds.keys[0] == "zero" and ds.keys[10] == "null" and ds.keys[19] == "neun"
            engines, names = ds.extra("engine"), ds.extra("voice")
            expect = [
                sd.utterance(SMALL, split, i, SMALL.split_voices(voices)[split]) for i in range(n)
            ]
            assert list(ds.labels) == [u.label for u in expect]
            assert list(engines) == [u.voice.engine for u in expect]
            assert list(names) == [u.voice.name for u in expect]
            settings = [json.loads(x) for x in ds.extra("settings")]
            assert list(ds.extra("noise")) == [x["augment"].get("noise", "none")
                                               for x in settings]
            assert set(ds.extra("noise")) <= {"white", "pink", "babble", "none"}
            for i in range(n):
                ev, _ = ds[i]
                assert ev.dtype == COCHLEA_DTYPE and ev.size > 0
                assert ev["channel"].max() < SMALL.channels and ev["t"].max() < 1_000_000
            engines_seen |= set(engines)
    assert engines_seen == set(speech_synth.ENGINES)
    recipe = json.loads((generated / "recipe.json").read_text())
    assert recipe["seed"] == SMALL.seed and recipe["n_train"] == SMALL.n_train


def test_a_regenerated_recording_is_identical(generated: Path) -> None:
    cached = generated / "cache" / "train" / "000001.npz"
    before = np.load(cached)["events"]
    cached.unlink()
    progress = list(sd.generate(SMALL, generated, workers=1))
    assert progress[0] == (0, 1)  # resumed: only the missing recording was made
    assert np.array_equal(np.load(cached)["events"], before)


def test_the_audio_of_a_recording_encodes_to_its_events(generated: Path, voices) -> None:
    """make_audio is the recording up to the cochlea: a front end reading its audio reads the
    dataset's own utterances (scripts/audio_baseline.py)."""
    from model.audio_augment import WORK_RATE
    from model.cochlea import audio_to_events

    test_voices = SMALL.split_voices(voices)["test"]
    audio, settings, rng = sd.make_audio(SMALL, sd.utterance(SMALL, "test", 2, test_voices),
                                         test_voices)
    with np.load(generated / "cache" / "test" / "000002.npz") as cached:
        assert json.loads(json.dumps(settings)) == json.loads(str(cached["meta"]))["augment"]
        events = audio_to_events(audio, WORK_RATE, rng, channels=SMALL.channels)
        assert np.array_equal(events, cached["events"])


def test_spike_draws_add_training_samples_after_the_single_draw_ones(generated: Path,
                                                                   tmp_path: Path) -> None:
    """With spike_draws=2, train.h5 holds the single-draw recipe's samples, then every
    recording again with the spike stage drawn anew; the test split keeps one draw."""
    drawn = dataclasses.replace(SMALL, n_test=1, spike_draws=2)
    list(sd.generate(drawn, tmp_path, workers=1))
    n = SMALL.n_train
    with open_dataset(tmp_path / "train.h5") as twice, \
            open_dataset(generated / "train.h5") as once, \
            open_dataset(tmp_path / "test.h5") as test:
        assert len(twice) == 2 * n and len(test) == 1
        np.testing.assert_array_equal(twice.extra("draw"), [0] * n + [1] * n)
        np.testing.assert_array_equal(test.extra("draw"), [0])
        np.testing.assert_array_equal(twice.labels, np.tile(once.labels, 2))
        for field in ("engine", "voice", "settings"):
            np.testing.assert_array_equal(twice.extra(field), np.tile(once.extra(field), 2))
        for i in range(n):
            assert np.array_equal(twice[i][0], once[i][0])
            assert not np.array_equal(twice[n + i][0], once[i][0])
    with pytest.raises(ValueError, match=r"different recipe \(spike_draws differ"):
        list(sd.generate(SMALL, tmp_path))


def test_a_different_recipe_is_refused_in_the_same_directory(generated: Path) -> None:
    with pytest.raises(ValueError, match="different recipe"):
        list(sd.generate(sd.Recipe(seed=4, n_train=8, n_test=3, channels=16), generated))


def test_recordings_of_other_engine_versions_are_not_mixed_in(generated: Path,
                                                               monkeypatch) -> None:
    """An upgraded synthesiser says the same words differently: resuming is refused."""
    recorded = json.loads((generated / "recipe.json").read_text())["packages"]
    assert recorded["espeak-ng"] == sd.package_versions(["espeak-ng"])["espeak-ng"]
    assert "mbrola" not in sd.package_versions(["festival-hts"])  # only what the engines use
    monkeypatch.setattr(sd, "package_versions",
                        lambda engines: {**recorded, "espeak-ng": "99:upgraded"})
    with pytest.raises(ValueError, match="packages differ: espeak-ng"):
        list(sd.generate(SMALL, generated, workers=1))
    # a cache from before versions were recorded is taken as made with the current ones
    monkeypatch.undo()
    cached = generated / "cache" / "recipe.json"
    before = json.loads(cached.read_text())
    cached.write_text(json.dumps({k: v for k, v in before.items() if k != "packages"}))
    list(sd.generate(SMALL, generated, workers=1))
    assert json.loads(cached.read_text())["packages"] == before["packages"]
    # and one that recorded a package no engine of the recipe uses
    cached.write_text(json.dumps({**before, "packages": {**before["packages"],
                                                         "festvox-unused": "0:other"}}))
    list(sd.generate(SMALL, generated, workers=1))


def test_pending_skips_cached_recordings_and_interleaves_the_splits(tmp_path: Path) -> None:
    recipe = sd.Recipe(n_train=10, n_test=2)
    (tmp_path / "cache" / "train").mkdir(parents=True)
    (tmp_path / "cache" / "train" / "000000.npz").touch()
    order = sd.pending(recipe, tmp_path)
    assert ("train", 0) not in order and len(order) == 11
    assert order.index(("test", 1)) == 5  # midway through train, not at either end


def test_a_short_reverberation_in_a_large_room_still_gets_a_room() -> None:
    # Sabine's formula cannot reach 0.1 s in a 10 x 8 x 4 m room; a smaller room is drawn.
    for seed in range(20):
        h = sd.aug.room_impulse_response(sd.aug.WORK_RATE, 0.1, np.random.default_rng(seed))
        assert np.isfinite(h).all() and np.abs(h).max() > 0


def test_a_recipe_reads_back_from_its_recipe_json(generated: Path) -> None:
    described = json.loads((generated / "recipe.json").read_text())
    assert sd.Recipe.from_json(described) == SMALL


def test_festival_crashing_on_a_stretch_still_says_the_word(voices) -> None:
    # festival 2.5's lp_diphone segfaults saying "tu" (two) at exactly this stretch
    lp = speech_synth.Voice("festival-diphone", "lp_diphone")
    if lp not in voices:
        pytest.skip("festvox-italp16k is not installed")
    audio, rate = speech_synth.synthesize(2, lp, speech_synth.Prosody(rate=1 / 0.7788))
    assert rate == 16_000 and 0.1 < audio.size / rate < 1.5


@pytest.mark.parametrize(
    ("engine", "label", "same", "different"),
    [
        ("freetts", 3, sd.Prosody(rate=0.8, pitch=20, accent="en-gb", formants=(90,)), None),
        ("festival-diphone", 3, sd.Prosody(pitch=20, accent="en-gb", formants=(90,)),
         sd.Prosody(rate=1.2)),
        ("espeak-ng", 13, sd.Prosody(accent="en-gb"), sd.Prosody(pitch=80)),
        ("espeak-ng", 13, sd.Prosody(accent="en-gb"), sd.Prosody(formants=(90, 110))),
    ],
)
def test_words_are_cached_under_the_prosody_their_engine_reads(
    voices, engine: str, label: int, same: sd.Prosody, different: sd.Prosody | None
) -> None:
    voice = next(v for v in voices if v.engine == engine)
    speech_synth._synthesize.cache_clear()
    default, _ = speech_synth.synthesize(label, voice, sd.Prosody())
    assert not default.flags.writeable  # the cache's copy cannot be changed by a caller
    assert speech_synth.synthesize(label, voice, same)[0] is default
    speech_synth._synthesize.cache_clear()  # synthesised afresh, the ignored fields change nothing
    np.testing.assert_array_equal(speech_synth.synthesize(label, voice, same)[0], default)
    if different is not None:  # and the fields it reads do change the word
        changed, _ = speech_synth.synthesize(label, voice, different)
        assert changed.shape != default.shape or not np.array_equal(changed, default)


def test_warping_moves_only_the_formant_frequencies() -> None:
    variant = "name male3\npitch 80 122\nformant 1  96  97 100\nformant 3 96 103 100\n"
    warped = speech_synth.warp_formants(variant, (50, 200))
    assert warped.splitlines() == ["name male3", "pitch 80 122", "formant 1 48 97 100",
                                   "formant 2 200 100 100", "formant 3 96 103 100"]
    # lines with a frequency offset (a fifth field) or only some fields keep them all
    odd = "name andy\nformant 1 100 100 100 120\nformant 2 80 85\n"
    assert speech_synth.warp_formants(odd, (110, 50)).splitlines() == [
        "name andy", "formant 1 110 100 100 120", "formant 2 40 85"]


def test_a_lower_vocal_tract_factor_lowers_the_spectrum(voices) -> None:
    voice = speech_synth.Voice("espeak-ng", "m3")

    def centroid(prosody: sd.Prosody) -> float:
        audio, rate = speech_synth.synthesize(3, voice, prosody)
        spectrum = np.abs(np.fft.rfft(audio))
        return float(spectrum @ np.fft.rfftfreq(audio.size, 1 / rate) / spectrum.sum())

    unwarped = centroid(sd.Prosody())
    assert centroid(sd.Prosody(formants=(100,) * 5)) == unwarped
    assert centroid(sd.Prosody(formants=(80,) * 5)) < 0.95 * unwarped
    assert centroid(sd.Prosody(formants=(120,) * 5)) > 1.05 * unwarped


def test_warped_speakers_are_espeak_training_utterances_and_change_nothing_else(voices) -> None:
    plain, warped = sd.Recipe(), sd.Recipe(formant_range=(0.85, 1.2), formant_jitter=0.06)
    splits = SMALL.split_voices(voices)
    for split in sd.SPLITS:
        for i in range(40):
            a = sd.utterance(plain, split, i, splits[split])
            b = sd.utterance(warped, split, i, splits[split])
            assert dataclasses.replace(b.prosody, formants=()) == a.prosody
            assert (b.voice, b.label) == (a.voice, a.label)
            if split == "train" and a.voice.engine.startswith("espeak-ng"):
                assert len(b.prosody.formants) == 5
                assert all(0.85 * 0.94 * 100 - 1 <= f <= 1.2 * 1.06 * 100 + 1
                           for f in b.prosody.formants)
            else:
                assert b.prosody.formants == ()


def test_a_cache_from_before_a_new_setting_counts_it_as_its_default(tmp_path: Path) -> None:
    described = sd.describe(SMALL, ())
    (tmp_path / "cache").mkdir()
    old = {k: v for k, v in described.items() if not k.startswith("formant")}
    (tmp_path / "cache" / "recipe.json").write_text(json.dumps(old))
    sd._check_recipe(described, tmp_path)  # the same recipe: accepted
    assert sd.Recipe.from_json(old) == SMALL  # and it reads back as the same recipe
    warped = sd.describe(dataclasses.replace(SMALL, formant_jitter=0.1), ())
    with pytest.raises(ValueError, match="formant_jitter differ"):
        sd._check_recipe(warped, tmp_path)


def test_a_recipe_can_keep_to_some_engines(voices) -> None:
    recipe = dataclasses.replace(SMALL, engines=("espeak-ng", "freetts"))
    assert {v.engine for v in recipe.voices()} == {"espeak-ng", "freetts"}
    assert set(recipe.voices()) == {v for v in voices if v.engine in recipe.engines}
    picked = {sd.utterance(recipe, "train", i, recipe.split_voices(recipe.voices())["train"]).voice
              for i in range(12)}
    assert {v.engine for v in picked} == {"espeak-ng", "freetts"}
    assert sd.Recipe.from_json(sd.describe(recipe, recipe.voices())) == recipe


def test_a_recipe_engine_without_voices_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sd, "available_voices", lambda: (speech_synth.Voice("espeak-ng", "m1"),))
    with pytest.raises(ValueError, match=r"\['pico'\] have no installed voice"):
        dataclasses.replace(SMALL, engines=("espeak-ng", "pico")).voices()


def test_engines_without_a_test_voice_are_refused_before_anything_is_made(
        tmp_path: Path, capsys) -> None:
    """FreeTTS and pico hold no held-out voice: their test split would have no speaker."""
    from cli.main import main

    assert main(["data", "speech", "--out", str(tmp_path / "d"), "--engines", "freetts",
                 "--train", "2", "--test", "2"]) == 2
    err = capsys.readouterr().err  # one line, without a progress bar drawn first
    assert err.startswith("s5rf data: none of the voices of freetts is a test voice")
    assert err.count("\n") == 1 and not (tmp_path / "d").exists()


def test_an_unknown_engine_is_refused_before_anything_is_made(tmp_path: Path, capsys) -> None:
    from cli.main import main

    assert main(["data", "speech", "--out", str(tmp_path / "d"), "--engines", "espeak-ng",
                 "flite"]) == 2
    assert capsys.readouterr().err.startswith("s5rf data: unknown engines ['flite']")
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(("change", "message"), [
    ({"spike_draws": 0}, "spike_draws must be at least 1, not 0"),
    ({"n_test": 0}, "n_test must be at least 1"),
    ({"rate_range": (1.2, 0.8)}, r"rate_range \(1.2, 0.8\) must have 0 < LO <= HI"),
    ({"formant_range": (0.0, 1.1)}, "formant_range"),
    ({"pitch_range": (20, 120)}, "pitch_range"),
    ({"formant_jitter": -0.1}, "formant_jitter must not be negative"),
    ({"recorded_turns": 0}, "recorded_turns must be at least 1, not 0"),
])
def test_a_recipe_that_would_make_an_empty_or_ill_defined_dataset_is_refused(
        change: dict[str, object], message: str) -> None:
    from model.errors import InputError

    with pytest.raises(InputError, match=message):
        dataclasses.replace(SMALL, **change)


def test_a_reversed_formant_range_is_refused_by_the_cli_before_anything_is_made(
        tmp_path: Path, capsys) -> None:
    from cli.main import main

    assert main(["data", "speech", "--out", str(tmp_path / "d"), "--formants", "1.1",
                 "0.9"]) == 2
    assert "formant_range (1.1, 0.9) must have 0 < LO <= HI" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_the_cli_starts_without_the_synthesisers() -> None:
    # s5rf builds every command's parser at start; the synthesisers (numpy, soundfile) load
    # only when a data command runs.
    code = "import sys; from cli.main import build_parser; build_parser(); " \
           "sys.exit('model.speech_synth' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_workers_leave_no_temporary_files_behind(tmp_path: Path, voices,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Warped espeak-ng voices need a data folder per worker; the pool's workers are
    terminated at its end, so the folders live in one the generator removes itself."""
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the spawned workers' too
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    recipe = sd.Recipe(seed=5, n_train=2, n_test=1, channels=16, engines=("espeak-ng",),
                       formant_range=(0.9, 1.1))
    for _ in sd.generate(recipe, tmp_path / "warped", workers=2):
        pass
    assert list(scratch.iterdir()) == []
