"""Streaming ``feed`` per chunk vs plain numpy binning of the same events.

A synthetic cochlea recording (700 channels pooled to 140, dt 4 ms, ``--rate-hz`` events/s, as
in ``bench.server_load``) is cut into chunks of ``--chunk-ms`` and fed to one stream: ``feed``
validates each chunk, keeps the open bin's events for the next one and bins the closed bins.
Beside it, the vectorised numpy way to bin the same events, with none of the checks or the
open-bin bookkeeping: bin and feature indices by division, then a scatter into zeros.

    python -m bench.binning [--chunk-ms 20 100 250] [--rate-hz 10000]
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.common import best_time, print_table
from model.binning import BinnerState, feed
from model.events import make_events
from model.spec import InputSpec

SPEC = InputSpec(sensor="cochlea", channels=700, downsample=5, dt_us=4000)
DURATION_S = 10.0


def numpy_bins(events: np.ndarray, start_bin: int, n_bins: int) -> np.ndarray:
    out = np.zeros((n_bins, SPEC.features), np.float32)
    k = events["t"] // SPEC.dt_us - start_bin
    out[k, events["channel"] // SPEC.downsample] = 1.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunk-ms", type=float, nargs="+", default=[20.0, 100.0, 250.0])
    ap.add_argument("--rate-hz", type=float, default=10_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = int(DURATION_S * args.rate_hz)
    t = np.sort(rng.integers(0, int(DURATION_S * 1e6), n))
    events = make_events("cochlea", t=t, channel=rng.integers(0, SPEC.channels, n))
    rows = []
    for chunk_ms in args.chunk_ms:
        chunk_us = int(chunk_ms * 1000)
        edges = np.searchsorted(events["t"], np.arange(chunk_us, int(DURATION_S * 1e6),
                                                       chunk_us))
        chunks = np.split(events, edges)

        def stream(chunks: list[np.ndarray] = chunks) -> None:
            state = BinnerState.start(SPEC)
            for c in chunks:
                state = feed(state, c, SPEC).state

        def plain(chunks: list[np.ndarray] = chunks, chunk_us: int = chunk_us) -> None:
            span = -(-chunk_us // SPEC.dt_us) + 1  # bins a chunk can touch
            for i, c in enumerate(chunks):
                numpy_bins(c, i * chunk_us // SPEC.dt_us, span)

        ours = best_time(stream, repeats=5, number=3) / len(chunks)
        base = best_time(plain, repeats=5, number=3) / len(chunks)
        rows.append((chunk_ms, n / len(chunks), ours * 1e6, base * 1e6, base / ours))
    print_table(f"binning per chunk: a {DURATION_S:g} s cochlea recording at "
                f"{args.rate_hz:g} events/s, {SPEC.channels} -> {SPEC.features} channels, "
                f"dt {SPEC.dt_us} us",
                ["chunk ms", "events/chunk", "feed us/chunk", "numpy us/chunk",
                 "numpy / feed"], rows)


if __name__ == "__main__":
    main()
