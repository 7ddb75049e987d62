"""scripts/audio_baseline.py: spectrograms of the dataset's own utterances, SpecAugment's
masks, and the GRU's result scored per engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model import speech_data as sd
from model.datasets import open_dataset
from scripts.audio_baseline import as_batches, main, spec_augment, spectrograms

pytestmark = pytest.mark.engines

ESPEAK = sd.Recipe(seed=5, n_train=6, n_test=3, channels=16, engines=("espeak-ng",))


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed: scripts/install_speech_engines.sh")
    out = tmp_path_factory.mktemp("speech")
    for _ in sd.generate(ESPEAK, out, workers=1):
        pass
    return out


def test_each_spectrogram_is_of_the_datasets_utterance_at_its_place(speech: Path) -> None:
    x, labels, engines = spectrograms(ESPEAK, "train", 6, mels=16, workers=1)
    with open_dataset(speech / "train.h5") as ds:
        assert labels.tolist() == ds.labels.tolist()
        assert engines.tolist() == ds.extra("engine").tolist()
    assert x.shape[0] == 6 and x.shape[2] == 16 and np.isfinite(x).all()
    assert x.shape[1] == 100  # clips of 47,998 samples at 48 kHz, a frame every 10 ms


def test_masks_cover_at_most_their_width_and_leave_the_input_alone() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 50, 20)).astype(np.float32) + 10  # no zero before masking
    masked = spec_augment(x, rng, max_time=4, max_bands=3)
    assert (x > 0).all()
    zero = masked == 0
    frames = zero.all(axis=2).sum(axis=1)  # whole frames masked per recording
    bands = zero.all(axis=1).sum(axis=1)
    assert frames.max() == 4 and bands.max() == 3 and frames.min() == 0
    assert (zero == (zero.all(axis=2, keepdims=True) | zero.all(axis=1, keepdims=True))).all()


def test_batches_hold_every_recording_once_and_pad_with_weight_zero() -> None:
    x = np.arange(10, dtype=np.float32)[:, None, None] * np.ones((10, 3, 2), np.float32)
    y = np.arange(10)
    seen = []
    for xb, lengths, yb, w in as_batches(x, y, 4, np.random.default_rng(1)):
        assert xb.shape == (4, 3, 2) and (lengths == 3).all()
        np.testing.assert_array_equal(xb[:, 0, 0], yb)
        seen += yb[w > 0].tolist()
    assert sorted(seen) == list(range(10)) and seen != list(range(10))


def test_the_result_is_scored_per_engine(speech: Path, tmp_path: Path) -> None:
    out = tmp_path / "audio.json"
    result = main(["--data", str(speech), "--train", "6", "--test", "3", "--epochs", "2",
                   "--mels", "16", "--hidden", "8", "--layers", "1", "--workers", "1",
                   "--json", str(out)])
    assert result["test_recordings"] == 3 and [r["epoch"] for r in result["log"]] == [1, 2]
    assert result["per_engine"]["espeak-ng"]["samples"] == 3
    assert json.loads(out.read_text())["test_accuracy"] == result["test_accuracy"]
