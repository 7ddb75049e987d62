"""Training-step time per preset and scan: sequential ``lax.scan`` vs associative scan.

    python -m bench.train_step [--presets shd ssc] [--batch 32] [--bins 250]
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

from bench.common import best_time, print_table
from model.network import init_params
from model.spec import PRESETS, preset_config
from model.training import make_optimizer, make_train_step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["shd", "ssc"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--bins", type=int, default=250)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for name in args.presets:
        cfg = preset_config(name, 140, 20)
        opt = make_optimizer(PRESETS[name].train, 1000)
        params = init_params(jax.random.PRNGKey(0), cfg)
        state = opt.init(params)
        x = (rng.random((args.batch, args.bins, 140)) < 0.05).astype(np.float32)
        lengths = np.full(args.batch, args.bins, np.int32)
        targets = np.eye(20, dtype=np.float32)[rng.integers(0, 20, args.batch)]
        weights = np.ones(args.batch, np.float32)
        times = {}
        for scan in ("sequential", "associative"):
            step = make_train_step(cfg, opt, scan)
            key = jax.random.PRNGKey(1)

            def run(step=step, args=(params, state, x, lengths, targets, weights, key)) -> None:
                jax.block_until_ready(step(*args))

            times[scan] = best_time(run, repeats=3, number=2)
        seq, par = times["sequential"], times["associative"]
        rows.append((name, args.batch, args.bins, seq * 1e3, args.batch / seq, par * 1e3,
                     args.batch / par, par / seq))
    print_table(
        f"training step, {jax.default_backend()} ({os.cpu_count()} cores)",
        ["preset", "batch", "bins", "sequential ms", "samples/s", "associative ms",
         "samples/s", "associative/sequential"],
        rows,
    )


if __name__ == "__main__":
    main()
