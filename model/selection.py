"""Which recordings of dataset files a ``--filter`` keeps (conditions on their ``extra/``
metadata), and several files read as one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model.datasets import EventDataset
from model.errors import InputError


def parse_filter(expr: str | None) -> list[tuple[str, str, bool]]:
    """``"engine==espeak-ng"``, ``"engine!=espeak-ng"``, or several joined by commas (all must
    hold) -> [(field, value, keep_equal), ...]."""
    if not expr:
        return []
    rules = []
    for condition in expr.split(","):
        for op, equal in (("==", True), ("!=", False)):
            if op in condition:
                field, value = condition.split(op, 1)
                rules.append((field.strip(), value.strip(), equal))
                break
        else:
            raise InputError(f"filter {expr!r} must look like FIELD==VALUE or FIELD!=VALUE, "
                             "or several of them joined by commas")
    return rules


def select(ds: EventDataset, where: str | None) -> np.ndarray:
    """Indices of the samples of ``ds`` that ``where`` keeps (all when it is None)."""
    return select_files([ds], where)[0]


def select_files(datasets: Sequence[EventDataset], where: str | None) -> list[np.ndarray]:
    """``select`` over several files read as one dataset: the indices each file keeps. A
    filter's value need occur in one file only, and it must keep a recording of one."""
    keeps = [np.ones(len(ds), bool) for ds in datasets]
    for field, value, equal in parse_filter(where):
        values = [ds.extra(field).astype(str) for ds in datasets]
        if not any(value in v for v in values):
            # An exact match on a value no recording has is always a typo (engine==festival
            # for festival-diphone): it would select nothing, or silently everything.
            raise InputError(f"no recording has {field}={value!r}; its values are "
                             f"{', '.join(sorted(set(np.concatenate(values))))}")
        for keep, v in zip(keeps, values, strict=True):
            keep &= (v == value) == equal
    if not any(keep.any() for keep in keeps):
        files = file_names(datasets)
        total = sum(len(ds) for ds in datasets)
        raise InputError(f"{files} has no recordings" if where is None else
                         f"{where!r} keeps none of the {total} recordings of {files}")
    return [np.flatnonzero(keep) for keep in keeps]


def as_files(datasets: EventDataset | Sequence[EventDataset]) -> list[EventDataset]:
    """One file, or several read as one, as the list of them."""
    return [datasets] if isinstance(datasets, EventDataset) else list(datasets)


def file_names(datasets: Sequence[EventDataset]) -> str:
    """Several files read as one, as messages name them: their paths joined by " + "."""
    return " + ".join(str(ds.path) for ds in datasets)
