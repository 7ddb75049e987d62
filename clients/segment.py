"""Cut a continuous event stream into utterances by its activity, so that each is scored from
a zero state, as the networks were trained (docs/api.md, "Continuous streams").

A window of ``window_us`` (on a grid from t = 0) is *active* when it holds events at
``min_rate_hz`` or more. An utterance starts ``preroll_us`` before its first active window (the
quiet lead-in every training recording has) and ends ``hangover_us`` after the end of its last
one, once the stream has moved that far without another, or ``max_us`` after its start where
the stream never falls quiet (the next one then starts there). It goes to the server as a
reset to its start, its events, and a flush after its last event, whose result is its
decision: the one ``/infer`` gives its events alone. Events between utterances (a sensor's
background activity: spontaneous cochlea spikes, DVS noise) are not sent;
``Segmenter.idle`` counts them.

The cut does not depend on how the stream arrives: the same events pushed in any pieces give
the same utterances.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from clients.replay import Utterance
from clients.stream import Batch
from clients.wire import SensorKind


@dataclasses.dataclass(frozen=True)
class Gate:
    """When a stream is active. The rate suits both shipped sensors: their silence runs at
    about 500 events/s (spontaneous spikes of 700 cochlea channels, shot noise of 34 × 34
    pixels), a spoken word or a saccade at 5,000 to 35,000."""

    min_rate_hz: float = 2_500.0
    window_us: int = 20_000
    hangover_us: int = 200_000  # longer than the pauses inside a word, or between saccades
    preroll_us: int = 100_000
    max_us: int | None = None  # a decision at least this often from a stream never quiet

    def __post_init__(self) -> None:
        if self.min_rate_hz <= 0 or self.window_us <= 0:
            raise ValueError("min_rate_hz and window_us must be positive")
        if self.hangover_us < 0 or self.preroll_us < 0:
            raise ValueError("hangover_us and preroll_us must not be negative")
        # A cut must hold the window that started it, or it could hold no event at all.
        if self.max_us is not None and self.max_us <= self.preroll_us + self.window_us:
            raise ValueError("max_us must be longer than preroll_us + window_us")

    @property
    def min_events(self) -> float:
        """Events that make one window active."""
        return self.min_rate_hz * self.window_us / 1e6


# Each shipped sensor's, measured with scripts/continuous_stream.py (docs/api.md): the
# cochlea networks average their readout over 1 s recordings in which the word ends early, so
# their decision wants more of the quiet around it; N-MNIST's saccades fill their 0.3 s, and
# a camera that never stops moving is best decided in pieces not much longer.
SENSOR_GATES: dict[SensorKind, Gate] = {
    "cochlea": Gate(hangover_us=400_000, preroll_us=200_000, max_us=2_000_000),
    "dvs": Gate(max_us=500_000),
}


class Segmenter:
    """Push sorted event arrays as they come (each at or after the one before) and send the
    batches returned, in order. Events are held until their window closes: a later event or
    ``advance(until_us)`` (call it through a silence without events) closes it."""

    def __init__(self, gate: Gate = Gate()) -> None:
        self.gate = gate
        self.idle = 0  # events between utterances, not sent
        self._window: int | None = None  # the open window's index
        self._open: list[np.ndarray] = []  # its events
        self._held: list[np.ndarray] = []  # while idle: the closed windows' events in reach
        self._start_us: int | None = None  # the open utterance's start
        self._active_end_us = 0  # the end of its last active window
        self._free_us = 0  # the end of the utterance before: the next starts no earlier
        self._last_t: int | None = None
        self._out: list[Batch] = []
        self._pending: list[np.ndarray] = []  # the open utterance's events, not yet returned
        self._reset: int | None = None  # its start, not yet returned

    def push(self, events: np.ndarray) -> list[Batch]:
        """The batches to send for ``events``, sorted by ``t`` and at or after the last."""
        t = events["t"]
        if not len(t):
            return []
        if np.any(np.diff(t) < 0) or (self._last_t is not None and t[0] < self._last_t):
            raise ValueError("events must be sorted by t, each push at or after the last")
        self._last_t = int(t[-1])
        windows = t // self.gate.window_us
        bounds = np.flatnonzero(np.diff(windows)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(t)], strict=True):
            self._close_before(int(windows[lo]))
            self._window = int(windows[lo])
            self._open.append(events[lo:hi])
        return self._batches()

    def advance(self, until_us: int) -> list[Batch]:
        """The stream's time has reached ``until_us`` with no more events before it."""
        if self._last_t is not None and until_us < self._last_t:
            raise ValueError(f"until_us {until_us} is before an event already pushed")
        self._last_t = until_us
        self._close_before(until_us // self.gate.window_us)
        return self._batches()

    def close(self) -> list[Batch]:
        """The stream is over: an open utterance ends here."""
        if self._window is not None:
            self._close_before(self._window + 1)
        if self._start_us is not None:
            self._end()
        self.idle += sum(len(e) for e in self._held)
        self._held = []
        return self._batches()

    def _close_before(self, window: int) -> None:
        """Decide every window before ``window``: the open one, then the empty ones."""
        w = self.gate.window_us
        if self._window is not None and self._window < window:
            events = np.concatenate(self._open)
            self._open, k, self._window = [], self._window, None
            if len(events) >= self.gate.min_events:
                if self._start_us is None:
                    self._begin(k * w)
                self._active_end_us = (k + 1) * w
            self._take(events)
        # Windows without events are quiet: the utterance ends once its end has passed.
        if self._start_us is not None and window * w >= self._end_us():
            self._end()
        if self._start_us is None:
            self._forget_before(window * w - self.gate.preroll_us)

    def _begin(self, first_active_us: int) -> None:
        start = max(first_active_us - self.gate.preroll_us, self._free_us)
        self._start_us = self._reset = start
        self._forget_before(start)
        self._pending, self._held = self._held, []

    def _take(self, events: np.ndarray) -> None:
        """A closed window's events: the utterance's up to its end, the rest held."""
        if self._start_us is None:
            self._held.append(events)
            return
        inside = int(np.searchsorted(events["t"], self._end_us()))
        if inside:
            self._pending.append(events[:inside])
        if inside < len(events):
            self._end()
            self._held.append(events[inside:])

    def _end_us(self) -> int:
        """Where the open utterance ends unless another window turns active before."""
        assert self._start_us is not None
        end = self._active_end_us + self.gate.hangover_us
        return end if self.gate.max_us is None else min(end, self._start_us + self.gate.max_us)

    def _end(self) -> None:
        self._free_us = self._end_us()
        self._flush_pending(end=True)
        self._start_us = None

    def _forget_before(self, t_us: int) -> None:
        """While idle, events before ``t_us`` are out of any utterance's reach."""
        kept = []
        for events in self._held:
            cut = int(np.searchsorted(events["t"], t_us))
            self.idle += cut
            if cut < len(events):
                kept.append(events[cut:])
        self._held = kept

    def _flush_pending(self, end: bool = False) -> None:
        """Return the open utterance's events so far; ``end``: with the flush that ends it
        (bins up to its last event, as ``/infer`` of its events alone)."""
        events = np.concatenate(self._pending) if self._pending else None
        self._pending = []
        if end or events is not None:
            self._out.append(Batch(events, flush=end, reset=self._reset))
            self._reset = None

    def _batches(self) -> list[Batch]:
        if self._start_us is not None:
            self._flush_pending()
        out, self._out = self._out, []
        return out


def utterances_of(events: np.ndarray, gate: Gate = Gate()) -> list[Utterance]:
    """A whole recording's utterances: events sorted by ``t``."""
    segmenter = Segmenter(gate)
    found: list[Utterance] = []
    parts: list[np.ndarray] = []
    for batch in segmenter.push(events) + segmenter.close():
        if batch.reset is not None:
            parts, start = [], batch.reset
        if batch.events is not None:
            parts.append(batch.events)
        if batch.flush:
            found.append(Utterance(np.concatenate(parts) if parts else events[:0], int(start)))
    return found
