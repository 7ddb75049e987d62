"""scripts/continuous_stream.py: a session's decisions at each utterance's end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from model.checkpoint import Checkpoint, load
from model.streaming import run_offline
from scripts.continuous_stream import main, session_log_probs, utterances

REPO = Path(__file__).resolve().parents[2]
DVS = REPO / "checkpoints" / "digits-dvs"  # a trained network: its outputs tell the words apart
SAMPLES = REPO / "samples" / "digits-dvs"


def alone(ckpt: Checkpoint, bins: np.ndarray) -> np.ndarray:
    _, out = run_offline(ckpt.cfg, ckpt.params, bins[None], np.array([len(bins)]))
    return np.asarray(out["log_probs"][0])


def test_reset_per_utterance_decides_each_as_alone_and_without_one_as_one_long_session() -> None:
    model = load(DVS)
    bins, labels = utterances(model, SAMPLES, passes=2, seed=0)
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
                 "--gap-ms", "0", "40", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["utterances"] == 20 and [r["gap_ms"] for r in result["rows"]] == [0, 40]
    # the shipped samples are ones the network gets right alone; one session mixes them up
    assert all(r["reset_per_utterance"] == 1.0 > r["no_reset"] for r in result["rows"])
