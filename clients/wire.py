"""The documented wire format (docs/wire-format.md), defined here so the client needs neither
the server nor the model packages. tests/clients/test_wire.py checks these dtypes against
model.events, so the two never drift.

Events are numpy structured arrays, packed little-endian: ``t`` (int64 µs) with ``channel``
(cochlea) or ``x``, ``y``, ``p`` (DVS). A binary body is ``events.tobytes()``; a binary frame of
a ``frame_header`` WebSocket stream is a 25-byte header (seq, until_us and a reset's origin as
int64 LE, -1 for none or, for the origin, the batch's first event; then a flags byte, 1: flush,
2: reset) followed by that body.
"""

from __future__ import annotations

import struct
from typing import Literal

import numpy as np

SensorKind = Literal["cochlea", "dvs"]
T0 = int | Literal["first_event"]  # a bin origin (µs), or the first event's time

COCHLEA_DTYPE = np.dtype([("t", "<i8"), ("channel", "<u2")])
DVS_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])
EVENT_DTYPES: dict[SensorKind, np.dtype] = {"cochlea": COCHLEA_DTYPE, "dvs": DVS_DTYPE}
FRAME_HEADER = struct.Struct("<qqqB")
FLUSH, RESET = 1, 2


def sensor_of(events: np.ndarray) -> SensorKind:
    """The sensor an event array belongs to, from its field names (tonic's cochlea arrays
    name the channel ``x`` and have no ``y``)."""
    names = set(events.dtype.names or ())
    if {"t", "x", "y", "p"} <= names:
        return "dvs"
    if {"t", "channel"} <= names or ({"t", "x"} <= names and "y" not in names):
        return "cochlea"
    raise ValueError(f"events need fields (t, channel), tonic's (t, x, p) or (t, x, y, p); got "
                     f"{events.dtype}")


def _column(events: np.ndarray, name: str) -> np.ndarray:
    """Field ``name`` of the events; tonic's ``x`` for a cochlea's channel."""
    return events["x"] if name == "channel" and "channel" not in (events.dtype.names or ()) \
        else events[name]


def to_wire(events: np.ndarray) -> np.ndarray:
    """The events in their sensor's wire dtype (no copy when they already are); ValueError
    for a value the wire dtype cannot hold, which a cast would silently change (the server
    refuses it in a JSON body)."""
    dtype = EVENT_DTYPES[sensor_of(events)]
    if events.dtype == dtype:
        return events
    out = np.empty(len(events), dtype)
    for name in dtype.names or ():
        column = _column(events, name)
        with np.errstate(invalid="ignore"):  # NaN or inf: refused below
            out[name] = column
        changed = np.flatnonzero(out[name] != column)
        if len(changed):
            i = int(changed[0])
            raise ValueError(f"{name} value {column[i]} at index {i} does not fit the wire "
                             f"format's {dtype[name]}")
    return out


def body(events: np.ndarray) -> bytes:
    """A binary (application/octet-stream) body."""
    return to_wire(events).tobytes()


def header_frame(seq: int | None, events: np.ndarray | None, *, until_us: int | None = None,
                 flush: bool = False, reset: T0 | None = None) -> bytes:
    """A binary frame of a ``frame_header`` stream: events (or none) with their options."""
    origin = -1 if reset is None or reset == "first_event" else int(reset)
    flags = (FLUSH if flush else 0) | (RESET if reset is not None else 0)
    header = FRAME_HEADER.pack(-1 if seq is None else seq,
                               -1 if until_us is None else until_us, origin, flags)
    return header if events is None else header + body(events)


def columns(events: np.ndarray) -> dict[str, list[int]]:
    """JSON columns: ``{"t": [...], "channel": [...]}`` or ``{"t", "x", "y", "p"}``."""
    return {name: _column(events, name).tolist()
            for name in EVENT_DTYPES[sensor_of(events)].names or ()}


def as_t0(t0_us: T0) -> T0:
    """``t0_us`` for a JSON body: a numpy integer (``events["t"][0]``) is no JSON number."""
    return t0_us if t0_us == "first_event" else int(t0_us)
