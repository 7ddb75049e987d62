"""The session table: who holds which slot of which engine, with tokens, caps and expiry.

A session's recurrent state lives in its engine's slot table (device memory); everything else
(the binner's open-bin buffer, counters, the latest probabilities, the client's sequence
number) lives in the ``Session`` object. Sessions are kept behind ``SessionStore`` so another
store (Redis) can replace the in-memory one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import Iterator, Mapping
from typing import Protocol

import numpy as np

from model.binning import BinnerState, LatePolicy
from server.batcher import Batcher
from server.errors import ApiError, busy
from server.metrics import Metrics
from server.registry import LoadedModel
from server.settings import Settings
from server.state_codec import SessionSnapshot, Totals

log = logging.getLogger("s5rf.server")


@dataclasses.dataclass
class Session:
    """One client's stream on one model. ``log_probs`` float32 (C,) is the latest output."""

    id: str
    token: str
    model: LoadedModel
    slot: int
    late: LatePolicy
    t0_us: int | None
    binner: BinnerState
    totals: Totals
    log_probs: np.ndarray
    seq: int = -1
    alive: bool = True
    last_used: float = dataclasses.field(default_factory=time.monotonic)
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)

    def touch(self) -> None:
        self.last_used = time.monotonic()


def fresh_stream(model: LoadedModel, t0_us: int | None) -> tuple[BinnerState, Totals, np.ndarray]:
    """Binner, counters and output of a stream that has seen nothing (uniform probabilities)."""
    C, L = model.card.architecture.n_classes, model.card.architecture.n_layers
    totals = Totals(spikes=np.zeros(L, np.int64))
    return (BinnerState.start(model.card.input, t0_us), totals,
            np.full(C, -np.log(C), np.float32))


class SessionStore(Protocol):
    """Where sessions are kept, by id."""

    def get(self, session_id: str) -> Session | None: ...
    def put(self, session: Session) -> None: ...
    def pop(self, session_id: str) -> Session | None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Session]: ...


class MemoryStore:
    """Sessions in a dict of this process."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def put(self, session: Session) -> None:
        self._sessions[session.id] = session

    def pop(self, session_id: str) -> Session | None:
        return self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))


class SessionManager:
    """Creates, authorises, resets, deletes and expires sessions."""

    def __init__(self, settings: Settings, batchers: Mapping[str, Batcher], metrics: Metrics,
                 store: SessionStore | None = None):
        self.settings = settings
        self.batchers = batchers
        self.metrics = metrics
        self.store: SessionStore = store if store is not None else MemoryStore()

    async def create(self, model: LoadedModel, t0_us: int | None,
                     late: LatePolicy | None) -> Session:
        """A new session with a zeroed state row; 503 + Retry-After at the session cap."""
        slot = self._take_slot(model)
        try:
            await self.batchers[model.name].call(model.engine.reset, slot)
        except BaseException:
            model.slots.give(slot)
            raise
        binner, totals, log_probs = fresh_stream(model, t0_us)
        return self._add(Session(id=secrets.token_urlsafe(12), token=secrets.token_urlsafe(24),
                                 model=model, slot=slot, t0_us=t0_us, binner=binner,
                                 totals=totals, log_probs=log_probs,
                                 late=late or self.settings.late_default))

    async def snapshot(self, session: Session) -> SessionSnapshot:
        """The session's whole stream state (call it holding ``session.lock``)."""
        model = session.model
        row = await self.batchers[model.name].call(model.engine.read, session.slot)
        return SessionSnapshot(
            model=model.name, version=model.version, sensor=model.card.input.sensor,
            late=session.late, origin=session.t0_us, seq=session.seq, binner=session.binner,
            totals=session.totals, log_probs=session.log_probs, state=row)

    async def restore(self, model: LoadedModel, snap: SessionSnapshot) -> Session:
        """A new session (new id and token) continuing the snapshot's stream."""
        slot = self._take_slot(model)
        try:
            await self.batchers[model.name].call(model.engine.write, slot, snap.state)
        except BaseException:
            model.slots.give(slot)
            raise
        return self._add(Session(id=secrets.token_urlsafe(12), token=secrets.token_urlsafe(24),
                                 model=model, slot=slot, t0_us=snap.origin, binner=snap.binner,
                                 totals=snap.totals, log_probs=snap.log_probs, late=snap.late,
                                 seq=snap.seq))

    def _take_slot(self, model: LoadedModel) -> int:
        if len(self.store) >= self.settings.max_sessions:
            raise busy(f"the server holds its maximum of {self.settings.max_sessions} sessions; "
                       "delete idle sessions or retry later", self.settings.retry_after_s)
        slot = model.slots.take()
        if slot is None:
            raise busy(f"model {model.name!r} has no free state slot; retry later",
                       self.settings.retry_after_s)
        return slot

    def _add(self, session: Session) -> Session:
        self.store.put(session)
        self.metrics.active_sessions.labels(model=session.model.name).inc()
        log.info("session_opened", extra={"fields": {
            "session": session.id, "model": session.model.name, "slot": session.slot}})
        return session

    def authorize(self, session_id: str, token: str | None) -> Session:
        """The session, if the token matches: 404 unknown id, 403 missing or wrong token."""
        session = self.store.get(session_id)
        if session is None:
            raise ApiError(404, f"no session {session_id!r}: it never existed, was deleted "
                                "or expired after being idle; create a new one")
        if token is None or not secrets.compare_digest(token, session.token):
            raise ApiError(403, "missing or wrong X-Session-Token for this session")
        session.touch()
        return session

    async def reset(self, session: Session) -> None:
        """Start the stream again from its origin: zero state, empty buffer and counters."""
        await self.batchers[session.model.name].call(session.model.engine.reset, session.slot)
        session.binner, session.totals, session.log_probs = fresh_stream(session.model,
                                                                         session.t0_us)
        session.seq = -1

    def delete(self, session: Session, reason: str) -> None:
        """Forget the session and free its slot."""
        if self.store.pop(session.id) is None:
            return
        session.alive = False
        session.model.slots.give(session.slot)
        self.metrics.active_sessions.labels(model=session.model.name).dec()
        log.info("session_closed", extra={"fields": {"session": session.id, "reason": reason}})

    def expire(self, now: float) -> int:
        """Delete sessions idle for longer than the TTL (not those busy with a request)."""
        expired = [s for s in self.store
                   if now - s.last_used > self.settings.session_ttl_s and not s.lock.locked()]
        for session in expired:
            self.delete(session, "expired")
        return len(expired)

    async def expiry_loop(self) -> None:
        """Run ``expire`` every ``expiry_interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(self.settings.expiry_interval_s)
            self.expire(time.monotonic())

    def close_all(self) -> None:
        for session in self.store:
            self.delete(session, "shutdown")
