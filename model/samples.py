"""Sample recordings shipped beside each checkpoint, for the dashboard, README and tests.

Layout: ``samples/<checkpoint-name>/<label_name>-<i>.npy`` (a structured array in the wire
dtype) plus ``index.json``: ``[{"file", "label", "label_name", "source", "predicted"}, ...]``,
where ``predicted`` is the checkpoint's top class for the whole recording when the samples
were exported (so tests and demos know what a correct server answers, right or wrong).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from model.datasets import EventDataset

INDEX_FILE = "index.json"


def export_samples(ds: EventDataset, out: Path, per_class: int,
                   predict: Callable[[np.ndarray], int], seed: int = 0,
                   max_events: int | None = None) -> list[dict[str, object]]:
    """Copy ``per_class`` recordings of every class (seeded choice) from ``ds`` into ``out``,
    recording ``predict(events)`` for each.

    Recordings with more than ``max_events`` events are skipped, to keep the repo small.
    """
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    index: list[dict[str, object]] = []
    for label, name in enumerate(ds.keys):
        members = rng.permutation(np.flatnonzero(ds.labels == label))
        taken = 0
        for i in members:
            if taken == per_class:
                break
            events, _ = ds[int(i)]
            if max_events is not None and len(events) > max_events:
                continue
            file = f"{name}-{taken}.npy"
            np.save(out / file, events)
            index.append({"file": file, "label": label, "label_name": name,
                          "source": f"{ds.path.name}[{int(i)}]", "predicted": predict(events)})
            taken += 1
    (out / INDEX_FILE).write_text(json.dumps(index, indent=1) + "\n")
    return index


def read_index(folder: Path) -> list[dict[str, object]]:
    """The entries of ``folder/index.json``."""
    return list(json.loads((folder / INDEX_FILE).read_text()))
