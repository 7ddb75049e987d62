"""scripts/recorded_speakers.py: every take scored once, paired with its speaker and word,
speakers heard in training marked, and the card records the result."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile

from model import evaluation
from model.checkpoint import load, read_card, save
from model.digit_words import KEYS
from scripts.recorded_speakers import chosen_takes, main, score


@pytest.fixture
def takes(tmp_path: Path) -> Path:
    """FSDD's layout: speakers ann and bob, words 0-2, three takes each (8 kHz bursts)."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    t = np.arange(2400) / 8000
    for speaker in ("ann", "bob"):
        for n in range(3):
            burst = sum(np.sin(2 * np.pi * f * t) for f in range(300 + 300 * n, 700 + 300 * n, 100))
            for take in range(3):
                soundfile.write(folder / f"{n}_{speaker}_{take}.wav", 0.1 * burst, 8000)
    return folder


def test_takes_per_word_keeps_each_speakers_first_takes(takes: Path) -> None:
    chosen = chosen_takes(str(takes), 2)
    assert len(chosen) == 2 * 3 * 2
    assert {t.path for t in chosen if t.speaker == "bob" and t.label == 1} == {
        "1_bob_0.wav", "1_bob_1.wav"}
    assert len(chosen_takes(str(takes), None)) == 18
    assert {t.speaker for t in chosen_takes(str(takes), None, ["bob"])} == {"bob"}


@pytest.mark.parametrize(("shift", "accuracy"), [(0, 1.0), (10, 0.0)])
def test_each_prediction_is_paired_with_its_take(takes: Path, ckpt: Path, shift: int,
                                                 accuracy: float,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in network that answers each word (shift 0) or its German twin (shift 10)."""
    monkeypatch.setattr(evaluation, "predict", lambda params, cfg, spec, data:
                        SimpleNamespace(predicted=(data.labels + shift) % len(KEYS)))
    result = score(load(ckpt), str(takes), per_word=1, workers=1)
    assert result["takes"] == 6 and result["accuracy"] == accuracy
    for speaker in ("ann", "bob"):
        s = result["speakers"][speaker]
        assert (s["takes"], s["accuracy"], s["digit_accuracy"]) == (3, accuracy, 1.0)
        assert s["confusions"] == ({} if shift == 0 else
                                   {f"{KEYS[n]}->{KEYS[n + 10]}": 1 for n in range(3)})
    assert result["unseen_speakers_accuracy"] == accuracy


VOICES = {"train": ["espeak-ng/m1", "recorded/ann"], "test": ["recorded/bob"]}


# One training file's recipe, or each file's of several (the second without one).
@pytest.mark.parametrize("recipe", [{"voices": VOICES}, [{"voices": VOICES}, None]])
def test_speakers_heard_in_training_are_marked_and_left_out_of_unseen(
        takes: Path, ckpt: Path, recipe: object, monkeypatch: pytest.MonkeyPatch) -> None:
    trained = load(ckpt)
    save(ckpt, trained.card.model_copy(
        update={"provenance": {"data": {"recipe": recipe}}}), trained.params)
    ann = np.array([t.speaker == "ann" for t in chosen_takes(str(takes), 1)])
    monkeypatch.setattr(evaluation, "predict", lambda params, cfg, spec, data:
                        SimpleNamespace(predicted=np.where(ann, data.labels, 19)))
    result = score(load(ckpt), str(takes), per_word=1, workers=1)
    assert result["speakers"]["ann"]["heard_in_training"]
    assert not result["speakers"]["bob"]["heard_in_training"]
    assert result["unseen_speakers_accuracy"] == result["speakers"]["bob"]["accuracy"] == 0.0
    assert result["speakers"]["ann"]["accuracy"] == 1.0


def test_a_checkpoint_trained_on_data_without_a_recipe_heard_no_speaker(
        takes: Path, ckpt: Path) -> None:
    trained = load(ckpt)  # as `s5rf train` writes it for data that `s5rf data audio` made
    save(ckpt, trained.card.model_copy(update={"provenance": {"data": {"recipe": None}}}),
         trained.params)
    result = score(load(ckpt), str(takes), per_word=1, workers=1)
    assert not any(s["heard_in_training"] for s in result["speakers"].values())
    assert result["unseen_speakers_accuracy"] == result["accuracy"]


def test_the_card_records_the_result(takes: Path, ckpt: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["recorded_speakers.py", "--checkpoint", str(ckpt),
                                     "--recordings", str(takes), "--takes-per-word", "1",
                                     "--workers", "1", "--update-card"])
    main()
    recorded = read_card(ckpt).metrics["recorded_speakers"]
    assert recorded["takes"] == 6 and set(recorded["speakers"]) == {"ann", "bob"}
    again = score(load(ckpt), str(takes), per_word=1, workers=1)
    assert recorded["accuracy"] == again["accuracy"]  # seeded: the same spikes every run
    assert "--update-card" in recorded["command"]


def test_naming_no_speaker_of_the_corpus_is_an_error(takes: Path, ckpt: Path) -> None:
    with pytest.raises(SystemExit, match="no takes of zed"):
        score(load(ckpt), str(takes), speakers=["zed"], workers=1)
