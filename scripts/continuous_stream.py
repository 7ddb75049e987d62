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

A third way needs no knowledge of where the utterances are: the stream cut where its
activity rises (``clients.segment``, what ``s5rf replay --segment`` does), a reset at each
cut. Each utterance is then decided by the cut that holds most of its events (a cut holding
two utterances gives both one decision; an utterance with no cut is wrong).

    python scripts/continuous_stream.py --checkpoint checkpoints/digits-dvs \\
        --samples samples/digits-dvs [--passes 3] [--gap-ms 0 500] [--json F]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np

from clients.segment import SENSOR_GATES, Gate, utterances_of
from model.binning import bin_recording
from model.checkpoint import Checkpoint, load
from model.network import advance, initial_state


def utterances(samples: Path, passes: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The samples (index.json), shuffled in each pass: their events, each from its own
    start, and their labels."""
    index = json.loads((samples / "index.json").read_text())
    order = np.concatenate([np.random.default_rng(seed + p).permutation(len(index))
                            for p in range(passes)])
    events = [np.load(samples / index[i]["file"]) for i in order]
    return events, np.array([index[i]["label"] for i in order])


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


def segmented_log_probs(ckpt: Checkpoint, events: list[np.ndarray], starts_us: np.ndarray,
                        gate: Gate) -> tuple[np.ndarray, int]:
    """float32 (N, C): each utterance's decision when the stream (utterance i's events from
    ``starts_us[i]`` on) is cut by its activity (NaN where no cut holds it), and the number
    of cuts."""
    stream = np.concatenate(events)  # each sorted by t; the starts keep them apart
    stream["t"] += np.repeat(starts_us, [len(e) for e in events])
    cuts = utterances_of(stream, gate)
    if not cuts:
        return np.full((len(events), len(ckpt.card.labels)), np.nan, np.float32), 0
    decided = session_log_probs(ckpt, [bin_recording(c.events, ckpt.card.input, c.t0_us)
                                       for c in cuts], 0, reset=True)
    # Cut k holds the stream's events from its start to its last event.
    cut_starts, cut_ends = np.array([[c.t0_us, int(c.events["t"][-1]) + 1] for c in cuts]).T
    out = []
    for lo, hi in itertools.pairwise(np.cumsum([0] + [len(e) for e in events])):
        t = stream["t"][lo:hi]  # utterance i's events
        held = np.searchsorted(t, cut_ends) - np.searchsorted(t, cut_starts)
        out.append(decided[held.argmax()] if held.max() > 0
                   else np.full(decided.shape[1], np.nan, np.float32))
    return np.stack(out), len(cuts)


def accuracy(log_probs: np.ndarray, labels: np.ndarray) -> float:
    """Of the rows, those decided (no NaN) and right."""
    decided = ~np.isnan(log_probs).any(axis=1)
    return float(np.mean(decided & (log_probs.argmax(axis=1) == labels)))


def measure(ckpt: Checkpoint, samples: Path, passes: int, gaps_ms: list[float],
            seed: int) -> dict[str, Any]:
    events, labels = utterances(samples, passes, seed)
    bins = [bin_recording(e, ckpt.card.input, 0) for e in events]
    dt_us = ckpt.card.input.dt_us
    gate = SENSOR_GATES[ckpt.card.input.sensor]
    isolated = accuracy(session_log_probs(ckpt, bins, 0, reset=True), labels)
    lengths = np.array([len(b) for b in bins])
    rows = []
    for gap in gaps_ms:
        gap_bins = round(gap * 1e3 / dt_us)
        # where session_log_probs puts each utterance: after the ones before and their gaps
        starts = (np.r_[0, np.cumsum(lengths)[:-1]] + gap_bins * np.arange(len(bins))) * dt_us
        cut, n_cuts = segmented_log_probs(ckpt, events, starts, gate)
        rows.append({"gap_ms": gap, "no_reset": accuracy(session_log_probs(
            ckpt, bins, gap_bins, reset=False), labels), "reset_per_utterance": isolated,
            "reset_at_activity": accuracy(cut, labels), "cuts": n_cuts})
    return {"checkpoint": ckpt.card.name, "utterances": len(labels), "passes": passes,
            "mean_utterance_ms": float(lengths.mean() * dt_us / 1e3),
            "gate": dataclasses.asdict(gate), "rows": rows}


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
              f"{row['no_reset']:6.1%}, reset per utterance {row['reset_per_utterance']:6.1%}, "
              f"reset where the activity rises {row['reset_at_activity']:6.1%} "
              f"({row['cuts']} cuts)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
