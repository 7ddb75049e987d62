"""Sample recordings shipped beside each checkpoint, for the dashboard, README and tests.

Layout: ``samples/<checkpoint-name>/<label_name>-<i>.npy`` (a structured array in the wire
dtype) plus ``index.json``: ``[{"file", "label", "label_name", "source", "predicted"}, ...]``,
where ``predicted`` is the checkpoint's top class for the whole recording when the samples
were exported (so tests and demos know what a correct server answers, right or wrong).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field, TypeAdapter

from model.datasets import EventDataset
from model.errors import InputError

INDEX_FILE = "index.json"


class Sample(BaseModel):
    """One entry of ``index.json``."""

    file: str = Field(description="File name inside the model's samples folder (.npy).")
    label: int | None = Field(default=None, description="True class index, if known.")
    label_name: str | None = Field(default=None, description="True class label, if known.")
    source: str = Field(default="", description="Where the recording comes from.")
    predicted: int | None = Field(
        default=None, description="The model's top class for the whole recording at export.")


_INDEX = TypeAdapter(list[Sample])


def export_samples(ds: EventDataset, out: Path, per_class: int,
                   predict: Callable[[np.ndarray], int], seed: int = 0,
                   max_events: int | None = None,
                   among: np.ndarray | None = None) -> list[Sample]:
    """Copy ``per_class`` recordings of every class (seeded choice) from ``ds`` into ``out``,
    recording ``predict(events)`` for each.

    Only the recordings whose indices are in ``among`` (all when None) are candidates; those
    without events (nothing to play) or with more than ``max_events`` (to keep the repo
    small) are skipped; InputError, with nothing written, when that leaves none.
    """
    rng = np.random.default_rng(seed)
    candidates = np.arange(len(ds)) if among is None else among
    chosen: list[tuple[Sample, np.ndarray]] = []
    for label, name in enumerate(ds.keys):
        members = rng.permutation(np.intersect1d(candidates, np.flatnonzero(ds.labels == label)))
        taken = 0
        for i in members:
            if taken == per_class:
                break
            events, _ = ds[int(i)]
            if not len(events) or (max_events is not None and len(events) > max_events):
                continue
            chosen.append((Sample(file=f"{name}-{taken}.npy", label=label, label_name=name,
                                  source=f"{ds.path.name}[{int(i)}]", predicted=predict(events)),
                           events))
            taken += 1
    if not chosen:  # refused before anything is written
        raise InputError(f"{ds.path} has no recording with events" + (
            f" and at most {max_events} of them" if max_events is not None else ""))
    out.mkdir(parents=True, exist_ok=True)
    for sample, events in chosen:
        np.save(out / sample.file, events)
    index = [sample for sample, _ in chosen]
    (out / INDEX_FILE).write_bytes(_INDEX.dump_json(index, indent=1) + b"\n")
    return index


def read_index(folder: Path) -> list[Sample]:
    """The entries of ``folder/index.json``; none when there is no index. Raises pydantic's
    ValidationError for an index that is not a list of samples."""
    path = folder / INDEX_FILE
    return _INDEX.validate_json(path.read_bytes()) if path.is_file() else []
