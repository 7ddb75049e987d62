"""The one binning function: events -> fixed-width time bins, offline and streamed.

Bins are ``dt_us`` wide and aligned to a time origin ``t0_us``: bin ``k`` holds events with
``t0_us + k*dt_us <= t < t0_us + (k+1)*dt_us``. A bin *closes* when an event at or past its
end arrives, when a watermark ``until_us`` reaches its end, or on ``flush`` (which closes
every bin up to and including the one holding the latest event). Offline binning is a
stream fed everything at once with ``flush``, so a recording binned offline and the same
recording streamed in any cut-up produce identical bins.

Ordering rule: events within one batch must be sorted by ``t`` (non-decreasing); an unsorted
batch is rejected, naming the first out-of-order index. Across batches, events may arrive in
any order as long as they fall in a bin that is still open; events in an already closed bin
are *late*: rejected, or dropped and counted when the caller asks for that policy.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import numba
import numpy as np

from model.events import EventError, OutOfRange, empty_events
from model.spec import InputSpec

LatePolicy = Literal["reject", "drop"]
# The latest timestamp (µs, about 146,000 years) and origin accepted: sums of two of them and a
# bin width stay inside int64, so bin ends never wrap around.
MAX_T_US = 2**62


def validate_events(events: np.ndarray, spec: InputSpec) -> None:
    """Raise EventError unless every event fits the spec's sensor and the batch is sorted.

    Checks, in this order, each naming the first offending index: timestamps outside
    [0, MAX_T_US], coordinates out of range, unsorted timestamps.
    """
    if events.dtype.names is None or not set(events.dtype.names) >= _fields(spec):
        raise EventError(
            f"{spec.sensor} events need fields {sorted(_fields(spec))}, got {events.dtype.names}"
        )
    if len(events) == 0:
        return
    t = events["t"]
    outside, unsorted = _time_violations(t, MAX_T_US)
    if outside >= 0 and t[outside] < 0:
        raise EventError(f"negative timestamp {t[outside]} at index {outside}")
    if outside >= 0:
        raise EventError(f"timestamp {t[outside]} at index {outside} is past {MAX_T_US} "
                         "(2**62 us); timestamps are microseconds since the sensor started")
    if spec.sensor == "cochlea":
        _check_range(events["channel"], spec.channels, "channel")
    else:
        _check_range(events["x"], spec.width, "x")
        _check_range(events["y"], spec.height, "y")
        _check_range(events["p"], 2, "p (polarity)", EventError)  # no place on the sensor
    if unsorted >= 0:
        i = unsorted
        raise EventError(
            f"events must be sorted by t: t[{i}]={t[i]} < t[{i - 1}]={t[i - 1]}; "
            "sort the batch before sending it"
        )


# Streamed batches are small (tens to thousands of events): one compiled pass per check
# instead of several numpy calls, whose fixed cost dominated the server's per-message work.
@numba.njit(cache=True)
def _time_violations(t: np.ndarray, t_max: int) -> tuple[int, int]:
    """First index with t outside [0, t_max] and first with t[i] < t[i - 1]; -1 where there
    is none."""
    outside, unsorted = -1, -1
    for i in range(len(t)):
        if outside < 0 and (t[i] < 0 or t[i] > t_max):
            outside = i
        if unsorted < 0 and i > 0 and t[i] < t[i - 1]:
            unsorted = i
    return outside, unsorted


@numba.njit(cache=True)
def _first_at_or_above(values: np.ndarray, size: int) -> int:
    for i in range(len(values)):
        if values[i] >= size:
            return i
    return -1


# Counts saturate here on every path, so datasets can hold them as uint8 and a streamed bin
# equals an offline one.
MAX_COUNT = 255


@numba.njit(cache=True)
def _count_into(out: np.ndarray, t: np.ndarray, index: np.ndarray, features: np.ndarray,
                t0_us: int, dt_us: int, start_bin: int, binarize: bool) -> int:
    """Add events sorted by ``t`` to ``out[bin - start_bin, features[index]]``; return how many
    entries turned active (nonzero): the input spikes of SynOps, which fire once per entry
    whatever its count. Sorted times let the bin advance by comparison: a division per event
    cost more than the rest of the loop."""
    activated = 0
    k = 0
    end = t0_us + (start_bin + 1) * dt_us
    for i in range(len(t)):
        while t[i] >= end:
            k += 1
            end += dt_us
        f = features[index[i]]
        if out[k, f] == 0.0:
            activated += 1
        if not binarize:
            if out[k, f] < MAX_COUNT:
                out[k, f] += 1.0
        else:
            out[k, f] = 1.0
    return activated


def _fields(spec: InputSpec) -> set[str]:
    return {"t", "channel"} if spec.sensor == "cochlea" else {"t", "x", "y", "p"}


def _check_range(values: np.ndarray, size: int | None, name: str,
                 error: type[EventError] = OutOfRange) -> None:
    assert size is not None
    i = _first_at_or_above(values, size)
    if i >= 0:
        raise error(f"{name} {values[i]} at index {i} is out of range [0, {size})")


def feature_index(events: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """Each event's input feature as ``features[index]``: the channel through the pooling
    table (no copy of the channel column), or the flat (polarity, y, x) index of the pooled
    grid through the identity."""
    if spec.sensor == "cochlea":
        assert spec.channels is not None
        return events["channel"], _pooling_table(spec.channels, spec.downsample)
    assert spec.width is not None and spec.height is not None
    w, h = spec.width // spec.pool, spec.height // spec.pool
    x = events["x"].astype(np.int64) // spec.pool
    y = events["y"].astype(np.int64) // spec.pool
    flat = events["p"].astype(np.int64) * (w * h) + y * w + x
    return flat, _pooling_table(spec.features, 1)


@functools.cache
def _pooling_table(size: int, factor: int) -> np.ndarray:
    """int64 (size,): i // factor."""
    return np.arange(size, dtype=np.int64) // factor


def bin_events(
    events: np.ndarray, spec: InputSpec, t0_us: int, start_bin: int, n_bins: int
) -> tuple[np.ndarray, int]:
    """Bin events, sorted by ``t``, that all fall in bins ``[start_bin, start_bin + n_bins)``.

    Returns float32 (n_bins, spec.features), 1/0 when ``spec.binarize`` else counts (at most
    ``MAX_COUNT``), and how many of its entries are active (nonzero: the input spikes of
    SynOps), counted while binning.
    """
    out = np.zeros((n_bins, spec.features), dtype=np.float32)
    if not len(events):
        return out, 0
    t = events["t"]
    assert (t[0] - t0_us) // spec.dt_us >= start_bin, "events before the requested bins"
    assert (t[-1] - t0_us) // spec.dt_us < start_bin + n_bins, "events after them"
    index, features = feature_index(events, spec)
    activity = _count_into(out, t, index, features, t0_us, spec.dt_us, start_bin, spec.binarize)
    return out, activity


class TooManyBins(EventError):
    """A batch that would close more bins at once than ``feed`` was allowed to (the caller
    words what to do about it: it knows where the batch came from)."""

    def __init__(self, bins: int, limit: int):
        self.bins, self.limit = bins, limit
        super().__init__(f"this batch would close {bins} bins at once (limit {limit})")


@dataclasses.dataclass(frozen=True)
class BinnerState:
    """Where a stream stands: its origin, how many bins are closed, and the open-bin buffer.

    ``t0_us`` is None until the first event when the origin is "first_event". ``last_t`` is the
    latest timestamp seen (-1 before any event). ``pending`` holds events of open bins.
    """

    t0_us: int | None
    closed: int
    last_t: int
    pending: np.ndarray

    @classmethod
    def start(cls, spec: InputSpec, t0_us: int | None = 0) -> BinnerState:
        return cls(t0_us=t0_us, closed=0, last_t=-1, pending=empty_events(spec.sensor))

    def check(self, spec: InputSpec) -> None:
        """Raise EventError unless ``feed`` under ``spec`` could have left this state: a state
        from outside (an imported snapshot) is checked before any bin is built from it."""
        validate_events(self.pending, spec)
        if self.t0_us is None:
            if self.closed or self.last_t >= 0 or len(self.pending):
                raise EventError("a stream whose origin is still unset has seen no events")
            return
        if not len(self.pending):
            return
        t = self.pending["t"]
        open_from = self.t0_us + self.closed * spec.dt_us
        if t[0] < open_from:
            raise EventError(f"pending event at t={t[0]} us is in a closed bin (bins before "
                             f"{open_from} us are closed)")
        if t[-1] > self.last_t:
            raise EventError(f"pending event at t={t[-1]} us is after the stream's last "
                             f"timestamp {self.last_t} us")


@dataclasses.dataclass(frozen=True)
class BinnerResult:
    state: BinnerState
    bins: np.ndarray  # float32 (n_closed, features): bins closed by this batch, in order
    activity: int  # (bins > 0).sum(): input spikes, one per active entry of the closed bins
    accepted: int
    dropped: int


def feed(
    state: BinnerState,
    events: np.ndarray,
    spec: InputSpec,
    *,
    until_us: int | None = None,
    flush: bool = False,
    late: LatePolicy = "reject",
    max_new_bins: int | None = None,
) -> BinnerResult:
    """Add a batch of events to a stream and close every bin that can be closed.

    Pure: ``state`` is not modified, so a caller that rejects the result keeps the old state.
    Raises EventError for invalid events, late events under the "reject" policy, or more than
    ``max_new_bins`` bins closed at once (a timestamp jump far into the future).
    """
    validate_events(events, spec)
    t0 = state.t0_us
    if t0 is None and len(events):
        t0 = int(events["t"][0])
    dropped = 0
    if len(events):
        assert t0 is not None
        dropped = _late_prefix(events, t0, state.closed, spec.dt_us, late)
        events = events[dropped:]
    last_t = max(state.last_t, int(events["t"][-1])) if len(events) else state.last_t
    close_to = _bins_to_close(state.closed, t0, last_t, spec.dt_us, until_us, flush,
                              has_events=len(events) > 0)
    n_new = close_to - state.closed
    if max_new_bins is not None and n_new > max_new_bins:
        raise TooManyBins(n_new, max_new_bins)

    merged = _concat(state.pending, events)
    if len(state.pending) and len(events) and events["t"][0] < state.pending["t"][-1]:
        # only a batch that reaches back into the open bins needs a merge; in-order streams
        # (the common case) are already sorted
        merged = merged[np.argsort(merged["t"], kind="stable")]
    if n_new > 0:
        assert t0 is not None
        cut = int(merged["t"].searchsorted(t0 + close_to * spec.dt_us))
        bins, activity = bin_events(merged[:cut], spec, t0, state.closed, n_new)
        merged = merged[cut:]
    else:
        bins, activity = np.zeros((0, spec.features), dtype=np.float32), 0
    # The open bin's events outlive the request: a view would keep its whole body alive.
    pending = merged if merged.base is None else merged.copy()
    new_state = BinnerState(t0_us=t0, closed=close_to, last_t=last_t, pending=pending)
    return BinnerResult(state=new_state, bins=bins, activity=activity, accepted=len(events),
                        dropped=dropped)


def _late_prefix(events: np.ndarray, t0: int, closed: int, dt_us: int,
                 late: LatePolicy) -> int:
    """How many of the sorted batch's first events fall in closed bins (the late ones are a
    prefix); EventError if there are any and the policy is to reject them."""
    n = int(events["t"].searchsorted(t0 + closed * dt_us))
    if n and late == "reject":
        t = int(events["t"][0])
        if t < t0:
            raise EventError(f"event at index 0 (t={t} us) is before the stream's origin "
                             f"t0_us={t0}; send events at or after the origin")
        raise EventError(f"event at index 0 (t={t} us) falls in bin {(t - t0) // dt_us}, which "
                         f"is already closed ({closed} bins closed); send events in time order")
    return n


def _bins_to_close(closed: int, t0: int | None, last_t: int, dt_us: int, until_us: int | None,
                   flush: bool, has_events: bool) -> int:
    """How many bins are closed after a batch: those before the latest event's bin, before
    the watermark, or, on flush, up to and including the latest event's bin."""
    close_to = closed
    if t0 is None:  # the origin comes with the first event: nothing to close before it
        return close_to
    if has_events:
        close_to = max(close_to, (last_t - t0) // dt_us)
    if until_us is not None:
        close_to = max(close_to, (until_us - t0) // dt_us)
    if flush and last_t >= t0:
        close_to = max(close_to, (last_t - t0) // dt_us + 1)
    return close_to


def _concat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a then b (same structured dtype), copied as raw records: np.concatenate and slice
    assignment convert structured arrays field by field (~20x slower for a 10k-event chunk)."""
    if not len(a):
        return b
    if not len(b):
        return a
    raw = np.dtype((np.void, a.dtype.itemsize))
    return np.concatenate([a.view(raw), b.view(raw)]).view(a.dtype)


def bin_recording(events: np.ndarray, spec: InputSpec, t0_us: int | None = 0) -> np.ndarray:
    """Bin a whole recording, closing every bin: float32 (T, features).

    ``t0_us=None`` aligns bins to the first event (the "first_event" origin).
    """
    return feed(BinnerState.start(spec, t0_us), events, spec, flush=True).bins
