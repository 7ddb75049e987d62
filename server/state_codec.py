"""The one serialised form of a session: engine state row + binner + counters, versioned.

A snapshot is msgpack: ``{"format": 2, "model", "version", "sensor", "late", "origin",
"seq", "binner": {"t0_us", "closed", "last_t", "pending"}, "totals": {...}, "log_probs",
"state": {"layers": [...], "li", "sum", "comp", "count"}}``. Arrays are ``{"dtype", "shape",
"data"}`` with little-endian dtype strings; pending events are the wire format of the sensor's
dtype. Decoding reads format 1 too (no "comp", a float32 "count": snapshots taken before the
readout's sum was compensated) and refuses other formats, and a snapshot of another model or
of another version of it (``ModelCard.version``: weights, architecture, input spec).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

import msgpack
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model.binning import MAX_T_US, BinnerState, LatePolicy
from model.events import EVENT_DTYPES, SensorKind
from model.network import State
from server.schemas import Micros

FORMAT = 2


@dataclasses.dataclass
class Totals:
    """Cumulative counters of one stream.

    spikes int64 (L,) per layer; input_activity counts every closed bin's active entries (the
    input spikes the network saw); synops counts synaptic operations (NeuroBench).
    """

    events_accepted: int = 0
    events_dropped: int = 0
    input_activity: int = 0
    synops: int = 0
    spikes: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))


class SnapshotError(ValueError):
    """A snapshot that cannot be restored; the message says why."""


class OtherModel(SnapshotError):
    """A readable snapshot of another model or of another version of it."""


@dataclasses.dataclass(frozen=True)
class SessionSnapshot:
    """Everything needed to continue a stream elsewhere.

    ``origin`` is the session's configured t0 (None: the first event); ``state`` is the
    engine's row: {"layers": (complex64 (P,), ...), "li": float32 (C,), "sum": float32 (C,),
    "comp": float32 (C,), "count": int32 ()}.
    """

    model: str
    version: str
    sensor: SensorKind
    late: LatePolicy
    origin: int | None
    seq: int
    binner: BinnerState
    totals: Totals
    log_probs: np.ndarray
    state: State


def _pack_array(a: np.ndarray) -> dict[str, Any]:
    a = np.asarray(a, dtype=np.asarray(a).dtype.newbyteorder("<"), order="C")  # keeps 0-d
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def _unpack_array(a: _Array) -> np.ndarray:
    dtype = np.dtype(a.dtype)
    if len(a.data) != int(np.prod(a.shape)) * dtype.itemsize:
        raise SnapshotError(f"an array of shape {a.shape} and dtype {a.dtype} cannot hold "
                            f"{len(a.data)} bytes")
    return np.frombuffer(a.data, dtype=dtype).reshape(a.shape).copy()


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


# Upper bounds as the API's: a counter past int64 or a time past MAX_T_US would be taken in and
# then break every later batch of the session (msgpack and orjson stop at 64-bit integers).
Count = Annotated[int, Field(ge=0, lt=2**63)]


class _Array(_Strict):
    dtype: Literal["<c8", "<f4", "<i4", "<i8"]
    shape: list[Annotated[int, Field(ge=0, le=1 << 20)]] = Field(max_length=2)
    data: bytes


class _Binner(_Strict):
    t0_us: Micros | None
    closed: Micros
    last_t: Annotated[int, Field(ge=-1, le=MAX_T_US)]
    pending: bytes


class _Totals(_Strict):
    events_accepted: Count
    events_dropped: Count
    input_activity: Count
    synops: Count
    spikes: _Array


class _State(_Strict):
    layers: list[_Array]
    li: _Array
    sum: _Array
    comp: _Array | None = None  # absent in format 1
    count: _Array


class _Snapshot(_Strict):
    """The msgpack document, validated before anything is built from it."""

    format: Literal[1, 2]
    model: str
    version: str
    sensor: SensorKind
    late: LatePolicy
    origin: Micros | None
    seq: Annotated[int, Field(ge=-1, le=MAX_T_US)]
    binner: _Binner
    totals: _Totals
    log_probs: _Array
    state: _State


def encode(snap: SessionSnapshot) -> bytes:
    state = snap.state
    return msgpack.packb({
        "format": FORMAT, "model": snap.model, "version": snap.version, "sensor": snap.sensor,
        "late": snap.late, "origin": snap.origin, "seq": snap.seq,
        "binner": {"t0_us": snap.binner.t0_us, "closed": snap.binner.closed,
                   "last_t": snap.binner.last_t,
                   "pending": np.ascontiguousarray(snap.binner.pending).tobytes()},
        "totals": {"events_accepted": snap.totals.events_accepted,
                   "events_dropped": snap.totals.events_dropped,
                   "input_activity": snap.totals.input_activity, "synops": snap.totals.synops,
                   "spikes": _pack_array(snap.totals.spikes)},
        "log_probs": _pack_array(snap.log_probs),
        "state": {"layers": [_pack_array(np.asarray(x)) for x in state["layers"]],
                  **{k: _pack_array(np.asarray(state[k]))
                     for k in ("li", "sum", "comp", "count")}},
    })


def decode(blob: bytes, model: str, version: str) -> SessionSnapshot:
    """Parse a snapshot meant for ``model`` at ``version``.

    Raises OtherModel for a snapshot of another model or version, SnapshotError for anything
    unreadable.
    """
    try:
        raw = msgpack.unpackb(blob)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise SnapshotError(f"not a readable session snapshot: {exc}") from exc
    if not isinstance(raw, dict):
        raise SnapshotError("not a session snapshot: the document is not a map")
    if raw.get("format") not in (1, FORMAT):
        raise SnapshotError(f"snapshot format {raw.get('format')!r}; this server reads 1 and "
                            f"{FORMAT}")
    if (raw.get("model"), raw.get("version")) != (model, version):
        raise OtherModel(f"the snapshot is of {raw.get('model')}@{raw.get('version')}, "
                         f"not {model}@{version}")
    try:
        d = _Snapshot.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise SnapshotError(f"not a valid session snapshot: "
                            f"{'.'.join(map(str, error['loc']))}: {error['msg']}") from exc
    if (d.state.comp is None) != (d.format == 1):
        raise SnapshotError("not a valid session snapshot: state.comp: "
                            + ("missing" if d.state.comp is None else "not in format 1"))
    dtype = EVENT_DTYPES[d.sensor]
    if len(d.binner.pending) % dtype.itemsize:
        raise SnapshotError(f"pending events of {len(d.binner.pending)} bytes are not whole "
                            f"{d.sensor} events")
    b, t = d.binner, d.totals
    return SessionSnapshot(
        model=d.model, version=d.version, sensor=d.sensor, late=d.late, origin=d.origin,
        seq=d.seq,
        binner=BinnerState(t0_us=b.t0_us, closed=b.closed, last_t=b.last_t,
                           pending=np.frombuffer(b.pending, dtype).copy()),
        totals=Totals(events_accepted=t.events_accepted, events_dropped=t.events_dropped,
                      input_activity=t.input_activity, synops=t.synops,
                      spikes=_unpack_array(t.spikes)),
        log_probs=_unpack_array(d.log_probs),
        state=_state(d.state),
    )


def _state(s: _State) -> State:
    """The engine row of a snapshot; one of format 1 gets a zero compensation and its float
    bin count as the integer it holds."""
    total, count = _unpack_array(s.sum), _unpack_array(s.count)
    if s.comp is None:
        if count.dtype != np.float32 or not np.all((count >= 0) & (count < 2**31)):
            raise SnapshotError(f"not a valid format 1 snapshot: state.count {count!r} is no "
                                "float32 bin count")
        comp, count = np.zeros_like(total), np.rint(count).astype(np.int32)
    else:
        comp = _unpack_array(s.comp)
    return {"layers": tuple(_unpack_array(x) for x in s.layers), "li": _unpack_array(s.li),
            "sum": total, "comp": comp, "count": count}
