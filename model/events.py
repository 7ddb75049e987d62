"""The one event type: numpy structured arrays in tonic's field conventions.

Timestamps ``t`` are int64 microseconds. A cochlea (silicon cochlea, SHD) event carries a
``channel`` (tonic calls it ``x``); a DVS event carries pixel ``x``, ``y`` and polarity ``p``.
Both dtypes are packed little-endian and are also the binary wire format of the server
(documented in docs/wire-format.md): a request body is simply ``array.tobytes()``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from model.errors import InputError

SensorKind = Literal["cochlea", "dvs"]

COCHLEA_DTYPE = np.dtype([("t", "<i8"), ("channel", "<u2")])
DVS_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])

EVENT_DTYPES: dict[SensorKind, np.dtype] = {"cochlea": COCHLEA_DTYPE, "dvs": DVS_DTYPE}


class EventError(InputError):
    """Events that cannot be accepted; the message says what is wrong and where."""


class OutOfRange(EventError):
    """An event's channel or pixel beyond the sensor's size (a recording of another sensor)."""


def empty_events(sensor: SensorKind) -> np.ndarray:
    """A zero-length event array of the sensor's dtype."""
    return np.zeros(0, dtype=EVENT_DTYPES[sensor])


def make_events(sensor: SensorKind, **columns: np.ndarray) -> np.ndarray:
    """Build an event array from equal-length columns (``t`` and ``channel``, or ``t, x, y, p``).

    Raises EventError for missing or extra columns, mismatched lengths, or values that do not
    fit the field's integer type.
    """
    dtype = EVENT_DTYPES[sensor]
    names = list(dtype.names or ())
    missing = [n for n in names if n not in columns]
    extra = [n for n in columns if n not in names]
    if missing or extra:
        raise EventError(
            f"{sensor} events need columns {names}; missing {missing}, unexpected {extra}"
        )
    lengths = {n: len(columns[n]) for n in names}
    if len(set(lengths.values())) > 1:
        raise EventError(f"event columns have different lengths: {lengths}")
    out = np.empty(lengths[names[0]], dtype=dtype)
    for name in names:
        col = np.asarray(columns[name])
        info = np.iinfo(dtype[name])
        if col.dtype.kind == "f":
            if not np.all(np.isfinite(col)):
                bad = int(np.flatnonzero(~np.isfinite(col))[0])
                raise EventError(f"column {name!r} has a non-finite value at index {bad}")
            if np.any(col != np.floor(col)):
                bad = int(np.flatnonzero(col != np.floor(col))[0])
                raise EventError(f"column {name!r} must hold integers; index {bad} is {col[bad]}")
        elif col.dtype.kind not in "iub" and len(col):
            raise EventError(f"column {name!r} must be numeric, got {col.dtype}")
        if len(col):
            # float(2**63 - 1) rounds up to 2**63, which an int64 cannot hold
            over = col >= float(info.max) + 1 if col.dtype.kind == "f" else col > info.max
            if col.min() < info.min or over.any():
                bad = int(np.flatnonzero((col < info.min) | over)[0])
                value = int(col[bad])  # an integer (floats were checked), not 1.2e+21
                raise EventError(f"column {name!r} value {value} at index {bad} does not fit "
                                 f"its {dtype[name]} field [{info.min}, {info.max}]")
        out[name] = col
    return out


def as_events(array: np.ndarray, sensor: SensorKind) -> np.ndarray:
    """Convert a structured array with the sensor's field names (any int widths/order) to
    the canonical dtype. Accepts tonic's cochlea convention (``x`` for the channel, no ``y``);
    EventError for a camera's events (``x``, ``y``) given as a cochlea's."""
    names = set(array.dtype.names or ())
    if sensor == "cochlea" and "channel" not in names and "y" in names:
        raise EventError(f"these are a camera's events (fields {', '.join(sorted(names))}), not "
                         "a cochlea's (t, channel; tonic's t, x, p)")
    if sensor == "cochlea" and "channel" not in names and "x" in names:
        return make_events("cochlea", t=array["t"], channel=array["x"])
    wanted = EVENT_DTYPES[sensor].names or ()
    return make_events(sensor, **{n: array[n] for n in wanted if n in names})
