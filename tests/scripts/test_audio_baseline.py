"""scripts/audio_baseline.py: spectrograms of the dataset's own utterances, SpecAugment's
masks, and the GRU's result scored per engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model import speech_data as sd
from model.cochlea import CLIP_SAMPLES, SAMPLE_RATE, prepare_waveform
from model.datasets import open_dataset
from model.events import make_events
from scripts.audio_baseline import (
    as_batches,
    features_of,
    hair_cell_rates,
    main,
    spec_augment,
    spike_counts,
)

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


@pytest.mark.parametrize("front_end", ["log-mel", "spike-counts"])
def test_each_front_end_reads_the_datasets_utterance_at_its_place(speech: Path,
                                                                    front_end: str) -> None:
    x, labels, engines = features_of(speech, ESPEAK, "train", 6, front_end, 8, workers=1)
    with open_dataset(speech / "train.h5") as ds:
        assert labels.tolist() == ds.labels.tolist()
        assert engines.tolist() == ds.extra("engine").tolist()
    assert x.shape == (6, 100, 8) and np.isfinite(x).all()  # 1 s clips, a frame every 10 ms


def test_spikes_are_counted_in_their_frame_and_channel_group() -> None:
    events = make_events("cochlea", t=np.array([0, 9_999, 10_000, 995_000, 2_000_000]),
                         channel=np.array([0, 3, 4, 15, 1]))
    counts = spike_counts(events, channels=16, bands=4, frames=100)
    expected = np.zeros((100, 4))
    expected[0, 0], expected[1, 1], expected[99, 3] = 2, 1, 1  # the last is past the clip
    np.testing.assert_array_equal(counts, np.log1p(expected).astype(np.float32))


def test_hair_cell_rates_follow_the_tones_place_on_the_membrane() -> None:
    t = np.arange(CLIP_SAMPLES // 2) / SAMPLE_RATE
    low, high = (prepare_waveform(np.sin(2 * np.pi * f * t), SAMPLE_RATE) for f in (300, 6000))
    rates = {f: hair_cell_rates(s, channels=32, bands=4) for f, s in ((300, low), (6000, high))}
    assert rates[300].shape == (100, 4)
    # channel 0 is the highest frequency: the low tone drives the last group most
    assert rates[300][10:40].mean(0).argmax() > rates[6000][10:40].mean(0).argmax()


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
                   "--bands", "16", "--hidden", "8", "--layers", "1", "--workers", "1",
                   "--json", str(out)])
    assert result["test_recordings"] == 3 and [r["epoch"] for r in result["log"]] == [1, 2]
    assert result["per_engine"]["espeak-ng"]["samples"] == 3
    assert json.loads(out.read_text())["test_accuracy"] == result["test_accuracy"]


def test_channel_groups_must_divide_the_cochleas_channels(speech: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--data", str(speech), "--train", "6", "--test", "3", "--front-end", "hair-cell",
              "--bands", "5"])
    assert "--bands 5 does not divide the cochlea's 16 channels" in capsys.readouterr().err
