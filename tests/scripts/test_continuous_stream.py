"""scripts/continuous_stream.py: a session's decisions at each utterance's end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from clients.segment import Gate
from model.binning import bin_recording
from model.checkpoint import Checkpoint, load
from model.network import run_offline
from scripts.continuous_stream import (
    main,
    segmented_log_probs,
    session_log_probs,
    utterances,
)

REPO = Path(__file__).resolve().parents[2]
DVS = REPO / "checkpoints" / "digits-dvs"  # a trained network: its outputs tell the words apart
SAMPLES = REPO / "samples" / "digits-dvs"


def alone(ckpt: Checkpoint, bins: np.ndarray) -> np.ndarray:
    _, out = run_offline(ckpt.params, bins[None], np.array([len(bins)]), ckpt.cfg)
    return np.asarray(out["log_probs"][0])


def test_reset_per_utterance_decides_each_as_alone_and_without_one_as_one_long_session() -> None:
    model = load(DVS)
    events, labels = utterances(SAMPLES, passes=2, seed=0)
    bins = [bin_recording(e, model.card.input, 0) for e in events]
    assert len(bins) == 40 and sorted(labels) == sorted([*range(10)] * 4)
    reset = session_log_probs(model, bins, gap_bins=0, reset=True)
    np.testing.assert_allclose(reset, [alone(model, b) for b in bins], atol=1e-5)
    gap = 7
    carried = session_log_probs(model, bins, gap_bins=gap, reset=False)
    for k in (1, 4, 40):  # the session so far: the first k utterances, silences between
        silence = np.zeros((gap, bins[0].shape[1]), np.float32)
        stream = np.concatenate([part for b in bins[:k] for part in (silence, b)][1:])
        np.testing.assert_allclose(carried[k - 1], alone(model, stream), atol=2e-3)  # shapes differ
    assert not np.allclose(carried[1:], reset[1:], atol=1e-3)  # the words before count


def test_main_writes_a_row_per_gap(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert main(["--checkpoint", str(DVS), "--samples", str(SAMPLES), "--passes", "1",
                 "--gap-ms", "0", "300", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["utterances"] == 20 and [r["gap_ms"] for r in result["rows"]] == [0, 300]
    # the shipped samples are ones the network gets right alone; one session mixes them up
    assert all(r["reset_per_utterance"] == 1.0 > r["no_reset"] for r in result["rows"])
    # back to back the stream never falls quiet: cut every max_us (0.5 s, 20 × 0.3 s of
    # stream). With 0.3 s of silence between them the cuts find every one, each three
    # saccades, and decide each as alone.
    quiet, apart = result["rows"]
    assert quiet["cuts"] == 12 and apart["cuts"] == 20 and apart["reset_at_activity"] == 1.0


def test_cuts_where_the_activity_rises_decide_each_utterance_by_the_cut_that_holds_it() -> None:
    model = load(DVS)
    events, _ = utterances(SAMPLES, passes=1, seed=0)
    starts = np.arange(1, len(events) + 1) * 1_000_000  # 0.7 s of silence before each
    cut, n_cuts = segmented_log_probs(model, events, starts, Gate())
    assert n_cuts == len(events)
    # each cut starts before its utterance's first event and holds all of it
    np.testing.assert_allclose(cut, [alone(model, bin_recording(
        e, model.card.input, -Gate().preroll_us + e["t"][0] // Gate().window_us
        * Gate().window_us)) for e in events], atol=1e-5)
    # back to back (each 0.3 s long), in one cut: each utterance gets its decision
    one, n_one = segmented_log_probs(model, events[:3], np.arange(3) * 300_000, Gate())
    assert n_one == 1 and (one == one[0]).all()
