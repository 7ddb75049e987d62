"""Cochlea speed: ours against lauscher (the package that made SHD), side by side, one run.

    python -m bench.cochlea [--seconds 0.2] [--channels 700]

lauscher's hair-cell and bushy-cell stages are pure-Python loops (a multiprocessing pool over
channels), so it is timed on a short clip; ours is also timed on a full 1 s word (the fixed
47,998-sample length the dataset uses), where lauscher would take minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from model import cochlea

FS = cochlea.SAMPLE_RATE
MATRIX = "transfer matrix (once per length)"
SPIKES = "spikes"
REPEATS = 5


def vowel(seconds: float) -> np.ndarray:
    """A gliding 140 Hz harmonic series with two formant regions, 8 Hz amplitude modulation."""
    t = np.arange(int(seconds * FS)) / FS
    phase = 2 * np.pi * np.cumsum(140 * (1 + 0.2 * t)) / FS
    k = np.arange(1, 40)[:, None]
    boost = 1 + 3 * (((k * 140 > 700) & (k * 140 < 1200)) | (k * 140 > 2200))
    return np.sum(np.sin(k * phase) / k * boost, axis=0) * (1 + np.sin(2 * np.pi * 8 * t))


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def ours(signal: np.ndarray, channels: int, seed: int = 0) -> dict[str, float]:
    """Seconds per stage; the transfer matrix is built first (cached per length)."""
    fs = FS // 2
    _, t_matrix = timed(lambda: cochlea.membrane_filters(signal.size, FS, channels))
    bm, t_bm = timed(lambda: cochlea.basilar_membrane(signal, FS, channels))
    prob, t_hc = timed(lambda: cochlea.hair_cell(bm, fs))
    raster, t_bc = timed(lambda: cochlea.bushy_cells(prob, fs, np.random.default_rng(seed)))
    return {MATRIX: t_matrix, "basilar membrane": t_bm,
            "hair cell": t_hc, "bushy cells": t_bc, SPIKES: float(raster.sum())}  # fmt: skip


def lauscher_stages(signal: np.ndarray, channels: int) -> dict[str, float]:
    from lauscher.audiowaves import MonoAudioWave
    from lauscher.transformations import BasilarMembrane, BushyCell, HairCell

    bm, t_bm = timed(lambda: BasilarMembrane(channels=channels)(MonoAudioWave(signal, FS)))
    prob, t_hc = timed(lambda: HairCell()(bm))
    spikes, t_bc = timed(lambda: BushyCell()(prob))
    n_spikes = float(spikes.spike_times.size)
    return {MATRIX: 0.0, "basilar membrane": t_bm, "hair cell": t_hc, "bushy cells": t_bc,
            SPIKES: n_spikes}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=0.2, help="short clip for lauscher")
    parser.add_argument("--channels", type=int, default=cochlea.CHANNELS)
    args = parser.parse_args()

    word = vowel(args.seconds)
    signal = cochlea.prepare_waveform(word, FS, n_samples=word.size)
    ours(signal[:4800], 8)  # compile the numba kernels outside the timings
    mine = ours(signal, args.channels)
    ref = lauscher_stages(signal.copy(), args.channels)
    print(f"# cochlea, {args.seconds} s clip, {args.channels} channels; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
          "(lauscher: a process pool over all CPUs; ours: one thread)")  # fmt: skip
    print(f"{'stage':36s} {'lauscher s':>11s} {'ours s':>9s} {'speed-up':>9s}")
    for stage in mine:
        if stage == SPIKES:
            continue
        a, b = ref[stage], mine[stage]
        ratio = f"{a / b:8.0f}x" if a else "       --"
        print(f"{stage:36s} {a:11.3f} {b:9.3f} {ratio}")
    total_ref = sum(v for k, v in ref.items() if k != SPIKES)
    total = sum(v for k, v in mine.items() if k != SPIKES)
    cached = total - mine[MATRIX]
    print(f"{'total, first clip of a length':36s} {total_ref:11.3f} {total:9.3f} "
          f"{total_ref / total:8.0f}x")  # fmt: skip
    print(f"{'total, later clips (matrix cached)':36s} {total_ref:11.3f} {cached:9.3f} "
          f"{total_ref / cached:8.0f}x")  # fmt: skip
    print(
        f"{'spikes (same model, different draws)':36s} {ref['spikes']:11.0f} {mine['spikes']:9.0f}"
    )

    signal = cochlea.prepare_waveform(vowel(0.8), FS)
    runs = [ours(signal, args.channels, seed) for seed in range(REPEATS)]
    stages = [k for k in runs[0] if k not in (SPIKES, MATRIX)]
    median = {k: float(np.median([r[k] for r in runs])) for k in stages}
    print(f"\n# ours on a full word (0.8 s sound in the fixed {cochlea.CLIP_SAMPLES}-sample clip),"
          f" median of {REPEATS} words")  # fmt: skip
    print(f"transfer matrix once: {runs[0][MATRIX]:.2f} s; then per word: "
          f"{sum(median.values()):.3f} s (" + ", ".join(f"{k} {v:.3f}" for k, v in median.items())
          + f"; {runs[0][SPIKES]:.0f} spikes)")

if __name__ == "__main__":
    main()
