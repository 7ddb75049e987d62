"""Streaming ``advance`` throughput vs the offline scan on the same work.

For S sessions and chunks of T bins, the streaming engine advances every session by T bins
per call (state gathered from and scattered to its slot table, outputs copied to the host).
Beside it: the bare jitted ``advance`` on the same (S, T) chunk (state passed in and out),
and the offline scan over the same S recordings of N*T bins in one call. SHD preset,
sequential scan.

    python -m bench.advance [--preset shd] [--calls 20] [--sessions 1 8 64] [--bins 1 10 50]
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

from bench.common import best_time, print_table
from model.network import advance, init_params, initial_state, run_offline
from model.spec import preset_config
from model.streaming import Engine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="shd")
    ap.add_argument("--calls", type=int, default=20, help="chunks per session per timing")
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 8, 64])
    ap.add_argument("--bins", type=int, nargs="+", default=[1, 10, 50], help="bins per chunk")
    args = ap.parse_args()
    cfg = preset_config(args.preset, 140, 20)
    params = init_params(jax.random.PRNGKey(0), cfg)
    rng = np.random.default_rng(0)
    offline = jax.jit(lambda p, b, n: run_offline(p, b, n, cfg)[1]["log_probs"])
    bare = jax.jit(lambda p, s, b, v: advance(p, s, b, v, cfg))
    rows = []
    for S in args.sessions:
        for T in args.bins:
            engine = Engine(cfg, params, capacity=S, session_buckets=(S,), bin_buckets=(T,))
            engine.warmup()
            slots = list(range(1, S + 1))
            n_calls = max(1, args.calls * 10 // T) if T < 10 else args.calls
            chunks = (rng.random((n_calls, S, T, 140)) < 0.05).astype(np.float32)

            def stream(engine=engine, slots=slots, chunks=chunks) -> None:
                for c in chunks:
                    engine.step(slots, list(c))

            whole = np.ascontiguousarray(chunks.transpose(1, 0, 2, 3).reshape(S, -1, 140))
            lengths = np.full(S, whole.shape[1])

            def batch(whole=whole, lengths=lengths) -> None:
                jax.block_until_ready(offline(params, whole, lengths))

            state, valid = initial_state(cfg, S), np.ones((S, T), bool)

            def bare_calls(chunks=chunks, state=state, valid=valid) -> None:
                s = state
                for c in chunks:
                    s, out = bare(params, s, c, valid)
                jax.block_until_ready(out)

            t_stream = best_time(stream, repeats=3, number=1) / n_calls
            t_bare = best_time(bare_calls, repeats=3, number=1) / n_calls
            t_off = best_time(batch, repeats=3, number=1) / n_calls
            bins_per_s = S * T / t_stream
            rows.append((S, T, t_stream * 1e3, t_bare * 1e3, bins_per_s, S * T / t_off,
                         t_bare / t_stream, t_off / t_stream))
    print_table(
        f"advance throughput, {args.preset} preset, {jax.default_backend()} "
        f"({os.cpu_count()} cores)",
        ["sessions S", "bins T", "engine ms/call", "bare advance ms/call",
         "session-bins/s (engine)", "session-bins/s (offline)", "engine vs bare",
         "engine vs offline"],
        rows,
    )


if __name__ == "__main__":
    main()
