"""Recorded speakers: every layout found with the right labels and speakers, clear errors, and
the dataset generator's ``recorded`` engine (held-out speakers, labels, takes, resuming)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from model import recorded_speech as rs
from model import speech_data as sd
from model.datasets import open_dataset
from model.events import COCHLEA_DTYPE

RATE = 8_000  # FSDD's rate: the top of the cochlea's band stays silent, as it does for them


def _word(path: Path, label: int, speaker: int) -> None:
    """A 0.4 s two-tone burst, distinct per label and speaker, as 16-bit PCM."""
    t = np.arange(int(0.4 * RATE)) / RATE
    tone = np.sin(2 * np.pi * (300 + 40 * label) * t) + np.sin(2 * np.pi * (900 + 25 * speaker) * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, RATE, (8000 * tone * np.hanning(t.size)).astype(np.int16))


@pytest.fixture(scope="module")
def fsdd(tmp_path_factory) -> Path:
    """FSDD's flat layout: three speakers, digits 0-3, two takes each."""
    root = tmp_path_factory.mktemp("fsdd")
    for s, speaker in enumerate(("ann", "bob", "cy")):
        for label in range(4):
            for n in range(2):
                _word(root / "recordings" / f"{label}_{speaker}_{n}.wav", label, s)
    (root / "README.md").write_text("not a take")
    return root


def test_fsdd_and_audiomnist_names_give_label_and_speaker(fsdd: Path, tmp_path: Path) -> None:
    takes = rs.find_takes(str(fsdd))
    assert len(takes) == 24 and rs.speakers(str(fsdd)) == ("ann", "bob", "cy")
    assert rs.Take("recordings/3_bob_1.wav", 3, "bob") in takes
    assert [t.path for t in rs.words(str(fsdd), "cy")[2]] == [
        "recordings/2_cy_0.wav", "recordings/2_cy_1.wav"]
    assert list(rs.words(str(fsdd), "cy")) == [0, 1, 2, 3]
    _word(tmp_path / "data" / "07" / "9_07_12.wav", 9, 7)  # AudioMNIST: data/<speaker>/
    assert rs.find_takes(str(tmp_path)) == (rs.Take("data/07/9_07_12.wav", 9, "07"),)


def test_heidelberg_digits_names_give_shd_labels_and_one_speaker_in_both_languages(
        tmp_path: Path) -> None:
    _word(tmp_path / "audio" / "lang-german_speaker-04_trial-3_digit-7.wav", 17, 4)
    _word(tmp_path / "audio" / "lang-english_speaker-04_trial-0_digit-7.wav", 7, 4)
    _word(tmp_path / "audio" / "lang-english_speaker-11_trial-2_digit-0.wav", 0, 11)
    assert rs.find_takes(str(tmp_path)) == (
        rs.Take("audio/lang-english_speaker-04_trial-0_digit-7.wav", 7, "hd-04"),
        rs.Take("audio/lang-english_speaker-11_trial-2_digit-0.wav", 0, "hd-11"),
        rs.Take("audio/lang-german_speaker-04_trial-3_digit-7.wav", 17, "hd-04"))
    assert list(rs.words(str(tmp_path), "hd-04")) == [7, 17]


def test_speaker_folders_take_any_class_key_german_included(tmp_path: Path) -> None:
    _word(tmp_path / "anna" / "fuenf" / "a.wav", 15, 0)
    _word(tmp_path / "anna" / "zero" / "b.wav", 0, 0)
    assert rs.find_takes(str(tmp_path)) == (rs.Take("anna/fuenf/a.wav", 15, "anna"),
                                            rs.Take("anna/zero/b.wav", 0, "anna"))


def test_speech_commands_digit_words_are_takes_and_its_other_words_are_skipped(
        tmp_path: Path) -> None:
    commands = tmp_path / "speech_commands_v0.02"
    _word(commands / "seven" / "0a7c2a8d_nohash_1.wav", 7, 0)
    _word(commands / "zero" / "b87bdb22_nohash_0.wav", 0, 1)
    _word(commands / "bed" / "0a7c2a8d_nohash_0.wav", 3, 0)  # a word that is no class
    _word(commands / "_background_noise_" / "pink_noise.wav", 3, 2)
    assert rs.find_takes(str(tmp_path)) == (
        rs.Take("speech_commands_v0.02/seven/0a7c2a8d_nohash_1.wav", 7, "0a7c2a8d"),
        rs.Take("speech_commands_v0.02/zero/b87bdb22_nohash_0.wav", 0, "b87bdb22"))


@pytest.mark.parametrize(("layout", "message"), [
    ("anna/fuenff/a.wav", "folder 'fuenff' is not a class key"),
    ("notes.txt", "no recorded takes under"),
])
def test_a_misspelt_class_or_no_take_is_an_error(tmp_path: Path, layout: str,
                                                 message: str) -> None:
    if layout.endswith(".wav"):
        _word(tmp_path / layout, 0, 0)
    else:
        (tmp_path / layout).touch()
    with pytest.raises(ValueError, match=message):
        rs.find_takes(str(tmp_path))
    with pytest.raises(ValueError, match="is not a directory"):
        rs.find_takes(str(tmp_path / "missing"))


def _recipe(root: Path, **changes) -> sd.Recipe:
    recipe = sd.Recipe(seed=2, n_train=6, n_test=2, channels=16, engines=(sd.RECORDED,),
                       recordings=str(root), recorded_test=("bob",))
    return dataclasses.replace(recipe, **changes)


def test_held_out_speakers_are_test_voices_and_labels_cycle_their_words(fsdd: Path) -> None:
    recipe = _recipe(fsdd)
    splits = recipe.split_voices(recipe.voices())
    assert [v.id for v in splits["test"]] == ["recorded/bob"]
    assert [v.name for v in splits["train"]] == ["ann", "cy"]
    utts = [sd.utterance(recipe, "train", i, splits["train"]) for i in range(8)]
    assert [u.label for u in utts] == [0, 1, 2, 3, 0, 1, 2, 3]  # the words they recorded
    for u in utts:
        assert u.take in {t.path for t in rs.words(str(fsdd), u.voice.name)[u.label]}
        assert u.prosody == sd.Prosody()  # augmentation alone varies speed and pitch


def test_an_unknown_held_out_speaker_or_no_recordings_is_refused_leaving_nothing(
        fsdd: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"held-out speakers \['zed'\] have no take"):
        list(sd.generate(_recipe(fsdd, recorded_test=("zed",)), tmp_path / "d"))
    with pytest.raises(ValueError, match="recorded speakers need a folder of recordings"):
        list(sd.generate(_recipe(fsdd, recordings=""), tmp_path / "d"))
    with pytest.raises(ValueError, match=r"none of the voices of recorded is a test voice .*"
                                         r"or hold a recorded speaker out"):
        list(sd.generate(_recipe(fsdd, recorded_test=()), tmp_path / "d"))
    assert not (tmp_path / "d").exists()


def test_recorded_speakers_take_their_turn_after_the_synthesisers(
        fsdd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synthetic = (sd.Voice("espeak-ng", "m1"), sd.Voice("freetts", "kevin"))
    monkeypatch.setattr(sd, "available_voices", lambda: synthetic)
    recipe = _recipe(fsdd, engines=())
    voices = recipe.split_voices(recipe.voices())["train"]
    assert sd.turns(voices) == ["espeak-ng", "freetts", "recorded"]
    assert [sd.utterance(recipe, "train", i, voices).voice.engine for i in range(6)] == [
        "espeak-ng", "freetts", "recorded"] * 2


def test_recorded_turns_give_recorded_speakers_k_turns_and_their_words_still_cycle(
        fsdd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synthetic = (sd.Voice("espeak-ng", "m1"), sd.Voice("freetts", "kevin"))
    monkeypatch.setattr(sd, "available_voices", lambda: synthetic)
    recipe = _recipe(fsdd, engines=(), recorded_turns=3)
    voices = recipe.split_voices(recipe.voices())["train"]
    assert sd.turns(voices, 3) == ["espeak-ng", "freetts"] + ["recorded"] * 3
    utts = [sd.utterance(recipe, "train", i, voices) for i in range(15)]
    assert [u.voice.engine for u in utts] == ["espeak-ng", "freetts", *["recorded"] * 3] * 3
    assert [u.label for u in utts if u.voice.engine == "recorded"] == [0, 1, 2, 3, 0, 1, 2, 3, 0]
    assert [u.label for u in utts if u.voice.engine == "freetts"] == [0, 1, 2]  # as with one turn


def test_the_cli_writes_recorded_turns_into_the_recipe(fsdd: Path, tmp_path: Path) -> None:
    from cli.main import main

    assert main(["data", "speech", "--out", str(tmp_path), "--train", "2", "--test", "1",
                 "--channels", "16", "--workers", "1", "--engines", "recorded", "--recordings",
                 str(fsdd), "--recorded-test", "bob", "--recorded-turns", "2"]) == 0
    assert json.loads((tmp_path / "recipe.json").read_text())["recorded_turns"] == 2


def test_generate_writes_recorded_takes_with_their_speakers(fsdd: Path, tmp_path: Path) -> None:
    recipe = _recipe(fsdd)
    for _ in sd.generate(recipe, tmp_path, workers=1):
        pass
    for split, speakers in (("train", {"ann", "cy"}), ("test", {"bob"})):
        with open_dataset(tmp_path / f"{split}.h5") as ds:
            assert len(ds) == recipe.count(split)
            assert set(ds.extra("engine")) == {"recorded"} and set(ds.extra("voice")) <= speakers
            takes = [json.loads(s)["take"] for s in ds.extra("settings")]
            assert [t.split("_")[1] for t in takes] == list(ds.extra("voice"))
            assert [int(t.split("/")[-1][0]) for t in takes] == list(ds.labels)
            ev, _ = ds[0]
            assert ev.dtype == COCHLEA_DTYPE and ev.size > 0
    assert json.loads((tmp_path / "recipe.json").read_text())["takes"] == 24
    # a corpus that gained a take is another dataset: resuming on it is refused
    extra = fsdd / "recordings" / "0_ann_9.wav"
    _word(extra, 0, 0)
    rs.find_takes.cache_clear()
    try:
        with pytest.raises(ValueError, match="takes differ"):
            list(sd.generate(recipe, tmp_path, workers=1))
    finally:
        extra.unlink()
        rs.find_takes.cache_clear()
