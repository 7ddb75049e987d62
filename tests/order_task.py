"""A small synthetic temporal task for the training, evaluation and baseline tests.

Each recording is two bursts of cochlea events on two channel bands; the class is the order
of the bands (and which pair), so every class has the same spike statistics overall and only
the timing tells them apart: a network must remember the first burst to classify.
"""

from __future__ import annotations

import numpy as np

from model.events import make_events


def order_task(n: int, rng: np.random.Generator, *, channels: int = 40, classes: int = 4,
               duration_us: int = 200_000, rate_hz: float = 1000.0
               ) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` recordings (COCHLEA_DTYPE, sorted) and their labels int64 (n,).

    Class c uses band pair c // 2 (bands of ``channels // classes`` channels) and plays the
    pair in order (c % 2 == 0) or reversed.
    """
    band = channels // classes
    labels = rng.integers(0, classes, n)
    recordings = []
    for c in labels:
        pair = (2 * (c // 2)) % classes
        bands = (pair, pair + 1) if c % 2 == 0 else (pair + 1, pair)
        half = duration_us // 2
        t_parts, ch_parts = [], []
        for k, b in enumerate(bands):
            count = rng.poisson(rate_hz * band * half * 1e-6)
            t_parts.append(rng.integers(k * half, (k + 1) * half, count))
            ch_parts.append(rng.integers(b * band, (b + 1) * band, count))
        t, ch = np.concatenate(t_parts), np.concatenate(ch_parts)
        order = np.argsort(t, kind="stable")
        recordings.append(make_events("cochlea", t=t[order], channel=ch[order]))
    return recordings, labels
