"""scripts/real_speaker.py: every word under every seed, and an accuracy that adds them up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from model.checkpoint import load, read_card
from model.digit_words import ENGLISH, KEYS
from scripts.real_speaker import main, score


@pytest.fixture
def digits(tmp_path: Path) -> Path:
    """Stand-ins for the ten prompts: 8 kHz bursts of harmonics, a different band each."""
    folder = tmp_path / "digits"
    folder.mkdir()
    t = np.arange(2400) / 8000
    for n in range(10):
        burst = sum(np.sin(2 * np.pi * f * t) for f in range(200 + 300 * n, 600 + 300 * n, 100))
        soundfile.write(folder / f"{n}.wav", 0.1 * burst, 8000)
    return folder


def test_every_word_is_scored_under_every_seed(digits: Path, ckpt: Path) -> None:
    result = score(load(ckpt), digits, seeds=2)
    assert list(result["predictions"]) == list(ENGLISH)
    assert all(len(p) == 2 and set(p) <= set(KEYS) for p in result["predictions"].values())
    correct = [p == w for w, ps in result["predictions"].items() for p in ps]
    assert result["recordings"] == 20
    assert result["accuracy"] == np.mean(correct)
    digit = [KEYS.index(p) in (n, n + 10) for n, ps in enumerate(result["predictions"].values())
             for p in ps]
    assert result["digit_accuracy"] == np.mean(digit) >= result["accuracy"]
    assert result["words_right_under_every_seed"] == sum(
        all(p == w for p in ps) for w, ps in result["predictions"].items())


def test_a_missing_take_is_named(digits: Path, ckpt: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (digits / "7.wav").unlink()
    with pytest.raises(SystemExit, match=r"7\.wav is missing$"):
        score(load(ckpt), digits, seeds=1)
    monkeypatch.setattr("scripts.real_speaker.DIGITS", digits)  # the Asterisk prompts' folder
    with pytest.raises(SystemExit, match="apt-get install asterisk-core-sounds-en-wav"):
        score(load(ckpt), digits, seeds=1)


def test_german_takes_under_other_names_are_scored_as_the_german_words(
        digits: Path, ckpt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GCompris' layout: digit n in U003n.ogg; a stand-in network that answers each label."""
    from types import SimpleNamespace

    from model import evaluation

    for n in range(10):
        audio, rate = soundfile.read(digits / f"{n}.wav")
        soundfile.write(digits / f"U003{n}.ogg", audio, rate)
    monkeypatch.setattr(evaluation, "predict", lambda params, cfg, spec, data: SimpleNamespace(
        predicted=data.labels))
    result = score(load(ckpt), digits, seeds=1, language="de", names="U003{n}.ogg",
                   speaker="a German man")
    assert result["predictions"] == {w: [w] for w in KEYS[10:]}  # fünf as fuenf
    assert result["accuracy"] == 1.0 and result["language"] == "de"
    assert result["speaker"] == f"a German man: {digits}"


def test_the_card_records_the_accuracy(digits: Path, ckpt: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["real_speaker.py", "--checkpoint", str(ckpt), "--digits",
                                     str(digits), "--seeds", "1", "--update-card"])
    main()
    recorded = read_card(ckpt).metrics["real_speaker"]
    assert recorded["recordings"] == 10 and recorded["seeds"] == 1
    assert recorded["accuracy"] == score(load(ckpt), digits, seeds=1)["accuracy"]
    assert "--update-card" in recorded["command"]
    monkeypatch.setattr("sys.argv", ["real_speaker.py", "--checkpoint", str(ckpt), "--digits",
                                     str(digits), "--seeds", "1", "--update-card", "other"])
    main()
    assert read_card(ckpt).metrics["other"]["recordings"] == 10
    assert read_card(ckpt).metrics["real_speaker"] == recorded  # another key leaves it be


@pytest.mark.parametrize(("shift", "accuracy"), [(0, 1.0), (10, 0.0)])
def test_each_prediction_is_paired_with_its_word(digits: Path, ckpt: Path, shift: int,
                                                 accuracy: float,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in network that answers each word (shift 0) or its German twin (shift 10):
    the table must pair every answer with the word it was given."""
    from types import SimpleNamespace

    from model import evaluation

    monkeypatch.setattr(evaluation, "predict", lambda params, cfg, spec, data: SimpleNamespace(
        predicted=(data.labels + shift) % len(KEYS)))
    result = score(load(ckpt), digits, seeds=2)
    assert result["predictions"] == {w: [KEYS[KEYS.index(w) + shift]] * 2 for w in ENGLISH}
    assert result["accuracy"] == accuracy and result["digit_accuracy"] == 1.0
    assert result["words_right_under_every_seed"] == (10 if shift == 0 else 0)
