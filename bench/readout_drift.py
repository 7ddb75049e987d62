"""How far a long stream's probabilities drift from exact arithmetic, side by side: the
network's Kahan-compensated float32 readout sum against plain float32 additions.

A shipped recording is tiled into a stream of hours and advanced from a zero state a few bins
a call (a 20 ms frame at 4 ms bins), as the server's engine steps a live sensor. Each call's
readout comes back to the host and is also summed in float64, so the reference sees the very
same readout values and the table shows the accumulation's error alone. "Plain" is the same
step with the compensation dropped before every call.

    python -m bench.readout_drift --minutes 15 60 180
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from bench.common import print_table
from model import checkpoint
from model.binning import bin_recording
from model.network import advance, initial_state

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints" / "digits-cochlea")
    ap.add_argument("--sample", type=Path, default=ROOT / "samples" / "digits-cochlea" /
                    "acht-0.npy")
    ap.add_argument("--minutes", type=float, nargs="+", default=[15.0, 60.0, 180.0],
                    help="stream lengths at which to compare (one stream, read as it passes)")
    ap.add_argument("--chunk-bins", type=int, default=5, help="bins per call")
    args = ap.parse_args()
    ckpt = checkpoint.load(args.checkpoint)
    cfg, spec = ckpt.cfg, ckpt.card.input
    recording = bin_recording(np.load(args.sample), spec)
    n = args.chunk_bins
    chunks = [recording[lo:lo + n] for lo in range(0, len(recording) - n + 1, n)]
    valid = jnp.ones((1, n), bool)
    step = jax.jit(lambda s, b: advance(ckpt.params, s, b[None], valid, cfg))
    marks = sorted(round(m * 60e6 / spec.dt_us) // n for m in args.minutes)  # calls
    states = {"compensated": initial_state(cfg, 1), "plain": initial_state(cfg, 1)}
    exact = {k: np.zeros(cfg.n_classes) for k in states}
    errors: dict[str, list[float]] = {k: [] for k in states}
    for call in range(1, marks[-1] + 1):
        chunk = chunks[call % len(chunks)]
        for kind, state in states.items():
            if kind == "plain":
                state = {**state, "comp": jnp.zeros_like(state["comp"])}
            states[kind], out = step(state, chunk)
            exact[kind] += np.asarray(out["readout"][0], np.float64).sum(axis=0)
            if call in marks:
                mean = exact[kind] / (call * n)
                want = np.exp(mean - mean.max()) / np.exp(mean - mean.max()).sum()
                got = np.exp(np.asarray(out["log_probs"][0], np.float64))
                errors[kind].append(float(np.abs(got / got.sum() - want).max()))
    rows = [(f"{call * n * spec.dt_us / 60e6:g}", call * n, errors["compensated"][i],
             errors["plain"][i], errors["plain"][i] / max(errors["compensated"][i], 1e-12))
            for i, call in enumerate(marks)]
    print_table(f"probability drift, {args.checkpoint.name}, {n}-bin calls: max |p - p_float64|",
                ["minutes", "bins", "compensated", "plain float32", "plain / compensated"], rows)


if __name__ == "__main__":
    main()
