"""A checkpoint on a continuous stream: its samples one after another in one session, as a
live sensor streams them, each decided at its end, with and without a reset per utterance.

The networks were trained on isolated recordings from a zero state, the readout averaged over
the recording. On a live stream without resets every decision averages the readout over all
bins since the session's origin, and the network's state carries the utterances before. With
a reset at each utterance's start (``POST /v1/sessions/{id}/reset`` with that start as the new
origin, or ``"first_event"``), each one is scored as it is alone. The samples are shuffled,
each played ``--passes`` times, with ``--gap-ms`` of silence (no events) between them. The
stream is stepped one utterance (and the silence before it) at a time with ``advance``, the
function a session's engine runs, so each decision is the probabilities a session reports.

    python scripts/continuous_stream.py --checkpoint checkpoints/digits-dvs \\
        --samples samples/digits-dvs [--passes 3] [--gap-ms 0 500] [--json F]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np

from model.binning import bin_recording
from model.checkpoint import Checkpoint, load
from model.network import advance, initial_state


def utterances(ckpt: Checkpoint, samples: Path, passes: int,
               seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The samples (index.json) binned from their own start, shuffled in each pass: bins
    float32 (T_i, F) per utterance, and their labels."""
    index = json.loads((samples / "index.json").read_text())
    order = np.concatenate([np.random.default_rng(seed + p).permutation(len(index))
                            for p in range(passes)])
    bins = [bin_recording(np.load(samples / index[i]["file"]), ckpt.card.input, 0)
            for i in order]
    return bins, np.array([index[i]["label"] for i in order])


def session_log_probs(ckpt: Checkpoint, bins: list[np.ndarray], gap_bins: int,
                      reset: bool) -> np.ndarray:
    """float32 (N, C): what a session reports at the end of each utterance. One jitted shape:
    each step is the silence before an utterance and the utterance, padded (padding changes
    nothing)."""
    cfg, params = ckpt.cfg, ckpt.params
    width = gap_bins + max(len(b) for b in bins)
    step = jax.jit(lambda state, x, valid: advance(params, state, x, valid, cfg))
    state = initial_state(cfg, 1)
    out = []
    for i, word in enumerate(bins):
        gap = 0 if reset or i == 0 else gap_bins  # a reset starts at the utterance
        if reset:
            state = initial_state(cfg, 1)
        x = np.zeros((1, width, word.shape[1]), np.float32)
        x[0, gap : gap + len(word)] = word
        valid = np.arange(width)[None] < gap + len(word)
        state, result = step(state, x, valid)
        out.append(np.asarray(result["log_probs"][0]))
    return np.stack(out)


def accuracy(log_probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(log_probs.argmax(axis=1) == labels))


def measure(ckpt: Checkpoint, samples: Path, passes: int, gaps_ms: list[float],
            seed: int) -> dict[str, Any]:
    bins, labels = utterances(ckpt, samples, passes, seed)
    dt_ms = ckpt.card.input.dt_us / 1e3
    isolated = accuracy(session_log_probs(ckpt, bins, 0, reset=True), labels)
    rows = [{"gap_ms": gap, "no_reset": accuracy(session_log_probs(
        ckpt, bins, round(gap / dt_ms), reset=False), labels),
        "reset_per_utterance": isolated} for gap in gaps_ms]
    return {"checkpoint": ckpt.card.name, "utterances": len(labels), "passes": passes,
            "mean_utterance_ms": float(np.mean([len(b) for b in bins]) * dt_ms), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--samples", type=Path, required=True, help="a folder with index.json")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--gap-ms", type=float, nargs="+", default=[0.0, 500.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    result = measure(load(args.checkpoint), args.samples, args.passes, args.gap_ms, args.seed)
    print(f"{result['checkpoint']}: {result['utterances']} utterances "
          f"(mean {result['mean_utterance_ms']:.0f} ms)")
    for row in result["rows"]:
        print(f"  silence {row['gap_ms']:6.0f} ms between them: no reset "
              f"{row['no_reset']:6.1%}, reset per utterance {row['reset_per_utterance']:6.1%}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
