"""The session table: who holds which slot of which engine, with tokens, caps and expiry.

A session's recurrent state lives in its engine's slot table (device memory); everything else
(the binner's open-bin buffer, counters, the latest probabilities, the client's sequence
number) lives in the ``Session`` object, kept in this process's ``LocalSessions``.

With a shared ``StateStore`` (Redis, reached through ``SharedSessions``) the local sessions are a
hot cache: every accepted batch is saved to the shared store before it is acknowledged, a
session unknown here is loaded from it, and a cached session whose write was refused (another
replica advanced it, or the store was down) is marked ``stale`` and reloaded before its next
use. Evicting a cached session loses nothing, so at the slot cap the least recently used idle
one makes room.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from typing import Any, TypeVar

import jax
import numpy as np

from model.binning import BinnerState, LatePolicy
from model.events import EventError
from server.batcher import Batcher
from server.errors import ApiError, busy
from server.feeds import Feeds
from server.metrics import Metrics
from server.registry import LoadedModel
from server.schemas import T0, origin_us
from server.settings import Settings
from server.shared_sessions import SharedSessions
from server.state_codec import SessionSnapshot, SnapshotError, Totals, decode, encode
from server.store import StaleVersion, StateStore, StoredSession, token_digest

log = logging.getLogger("s5rf.server")
T = TypeVar("T")


async def shielded(change: Coroutine[Any, Any, T]) -> T:
    """Run ``change`` to its end even if the caller is cancelled (a client hanging up): a
    change cut between the engine's call and the session's bookkeeping would leave the two out
    of step. The caller still gets its outcome when it is not cancelled."""
    return await asyncio.shield(asyncio.ensure_future(change))


@dataclasses.dataclass
class Session:
    """One client's stream on one model. ``log_probs`` float32 (C,) is the latest output.

    ``ack`` is the JSON result of batch ``seq`` (answered again if that batch is retried);
    ``store_version`` is the shared store's record version this copy was loaded or saved as
    (the model's ``version`` is its network's checksum, ``ModelCard.version``).
    """

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
    ack: bytes = b""
    store_version: int = 0
    stale: bool = False
    alive: bool = True
    last_used: float = dataclasses.field(default_factory=time.monotonic)
    used_before: float = dataclasses.field(init=False)  # the use before (a new one: its opening)
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.used_before = self.last_used

    def touch(self) -> None:
        self.used_before, self.last_used = self.last_used, time.monotonic()


def fresh_stream(model: LoadedModel, t0_us: int | None) -> tuple[BinnerState, Totals, np.ndarray]:
    """Binner, counters and output of a stream that has seen nothing (uniform probabilities)."""
    C, L = model.card.architecture.n_classes, model.card.architecture.n_layers
    totals = Totals(spikes=np.zeros(L, np.int64))
    return (BinnerState.start(model.card.input, t0_us), totals,
            np.full(C, -np.log(C), np.float32))


def _check_fits(model: LoadedModel, snap: SessionSnapshot, state: object) -> None:
    """422 unless an imported snapshot fits ``model``: its arrays have the shapes and dtypes of
    ``state`` (a state row of the model) and its output and counters, and its binner could
    come from this model's input (its events are binned without further checks)."""
    arch = model.card.architecture
    want = [(a.shape, a.dtype) for a in jax.tree_util.tree_leaves(state)]
    got = [(np.shape(a), np.asarray(a).dtype) for a in jax.tree_util.tree_leaves(snap.state)]
    if got != want:
        raise ApiError(422, f"the snapshot's state arrays {got} do not fit model "
                            f"{model.name!r}, whose state is {want}")
    outputs = {"log_probs": (snap.log_probs, (arch.n_classes,), np.float32),
               "totals.spikes": (snap.totals.spikes, (arch.n_layers,), np.int64)}
    for name, (array, shape, dtype) in outputs.items():
        if array.shape != shape or array.dtype != dtype:
            raise ApiError(422, f"the snapshot's {name} is {array.dtype} {array.shape}; model "
                                f"{model.name!r} needs {np.dtype(dtype)} {shape}")
    if snap.sensor != model.card.input.sensor:
        raise ApiError(422, f"the snapshot holds {snap.sensor} events; model {model.name!r} "
                            f"takes {model.card.input.sensor} events")
    try:
        snap.binner.check(model.card.input)
    except EventError as exc:
        raise ApiError(422, f"the snapshot's open-bin buffer is not valid: {exc}") from exc


class LocalSessions:
    """The sessions this process holds, by id: all of them, or with a shared store its
    cached copies."""

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


class KeyedLocks:
    """An asyncio lock per key, kept only while it is held or awaited."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class SessionManager:
    """Creates, authorises, resets, deletes and expires sessions."""

    def __init__(self, settings: Settings, batchers: Mapping[str, Batcher], metrics: Metrics,
                 shared: StateStore | None = None):
        self.settings = settings
        self.batchers = batchers
        self.metrics = metrics
        self.local = LocalSessions()
        self.shared = None if shared is None else SharedSessions(shared, settings.retry_after_s)
        self.feeds = Feeds(settings.ws_open_timeout_s, settings.retry_after_s)
        self._loading = KeyedLocks()
        self._opening = 0  # sessions holding a slot but not yet in the store

    async def create(self, model: LoadedModel, t0_us: int | None,
                     late: LatePolicy | None) -> Session:
        """A new session with a zeroed state row; 503 + Retry-After at the session cap."""
        async with self._new_slot(model) as slot:
            await self.batchers[model.name].reset(slot)
            binner, totals, log_probs = fresh_stream(model, t0_us)
            session = self._add(Session(
                id=secrets.token_urlsafe(12), token=secrets.token_urlsafe(24), model=model,
                slot=slot, t0_us=t0_us, binner=binner, totals=totals, log_probs=log_probs,
                late=late or self.settings.late_default))
        try:
            await self.persist(session)
        except BaseException as exc:
            self.evict(session, "not_saved")
            if isinstance(exc, ApiError) and exc.status == 503:
                # The client has no id to resend or read: a record the store may hold expires.
                raise busy("the session store is unavailable or did not answer in time; open "
                           "the session again", self.settings.retry_after_s) from exc
            raise
        return session

    async def snapshot(self, session: Session) -> SessionSnapshot:
        """The session's whole stream state (call it holding ``session.lock``)."""
        model = session.model
        row = await self.batchers[model.name].read(session.slot)
        return SessionSnapshot(
            model=model.name, version=model.version, sensor=model.card.input.sensor,
            late=session.late, origin=session.t0_us, seq=session.seq, binner=session.binner,
            totals=session.totals, log_probs=session.log_probs, state=row)

    async def restore(self, model: LoadedModel, snap: SessionSnapshot,
                      session_id: str | None = None, token: str | None = None) -> Session:
        """A session continuing the snapshot's stream (a new id and token unless given)."""
        async with self._new_slot(model) as slot:
            await self.batchers[model.name].write(slot, snap.state)
            return self._add(Session(
                id=session_id or secrets.token_urlsafe(12),
                token=token or secrets.token_urlsafe(24), model=model, slot=slot,
                t0_us=snap.origin, binner=snap.binner, totals=snap.totals,
                log_probs=snap.log_probs, late=snap.late, seq=snap.seq))

    async def replace(self, session: Session, snap: SessionSnapshot, ack: bytes = b"") -> None:
        """Make ``session`` continue ``snap``'s stream (call it holding ``session.lock``)."""
        model = session.model
        await self.batchers[model.name].write(session.slot, snap.state)
        session.binner, session.totals, session.log_probs = snap.binner, snap.totals, \
            snap.log_probs
        session.t0_us, session.late, session.seq, session.ack = snap.origin, snap.late, \
            snap.seq, ack

    async def import_state(self, session: Session, snap: SessionSnapshot) -> Session:
        """Replace the session's stream by an exported one; 422 if its arrays do not fit this
        model's state. Returns the live copy that was changed."""

        async def continue_snapshot(live: Session) -> None:
            model = live.model
            await self.validate(live)
            current = await self.batchers[model.name].read(live.slot)
            _check_fits(model, snap, current)
            await self.replace(live, snap)
            await self._persist_or_conflict(live)

        return await self._change(session, continue_snapshot)

    async def _change(self, session: Session,
                      change: Callable[[Session], Awaitable[None]]) -> Session:
        """Apply ``change`` to a live copy of ``session`` holding its lock, ``shielded``."""

        async def locked_change() -> Session:
            async with self.locked(session) as live:
                await change(live)
                return live

        return await shielded(locked_change())

    @contextlib.asynccontextmanager
    async def _new_slot(self, model: LoadedModel) -> AsyncIterator[int]:
        """A free slot for a session being opened, counted against the session cap from now
        on (concurrent opens all await the engine before the session is added), and given
        back if the opening fails."""
        slot = self._take_slot(model)
        self._opening += 1
        try:
            yield slot
        except BaseException:
            model.slots.give(slot)
            raise
        finally:
            self._opening -= 1

    def _take_slot(self, model: LoadedModel) -> int:
        cap = self.settings.max_sessions
        if len(self.local) + self._opening >= cap:
            self._make_room(None)
        if len(self.local) + self._opening >= cap:
            raise busy(f"the server holds its maximum of {cap} sessions; "
                       "delete idle sessions or retry later", self.settings.retry_after_s)
        slot = model.slots.take()
        if slot is None and self._make_room(model):
            slot = model.slots.take()
        if slot is None:
            raise busy(f"model {model.name!r} has no free state slot; retry later",
                       self.settings.retry_after_s)
        return slot

    def _make_room(self, model: LoadedModel | None) -> bool:
        """With a shared store, evict the least recently used idle session (of ``model``),
        one no WebSocket streams into if there is one (its next frame would reload it)."""
        if self.shared is None:
            return False
        idle = [s for s in self.local if not s.lock.locked()
                and (model is None or s.model is model)]
        if not idle:
            return False
        self.evict(min(idle, key=lambda s: (s.id in self.feeds, s.last_used)), "evicted")
        return True

    def _add(self, session: Session) -> Session:
        self.local.put(session)
        self.metrics.active_sessions.labels(model=session.model.name).inc()
        log.info("session_opened", extra={"fields": {
            "session": session.id, "model": session.model.name, "slot": session.slot}})
        return session

    async def authorize(self, session_id: str, token: str | None) -> Session:
        """The session, if the token matches: 404 unknown id, 403 missing or wrong token.

        A session this process does not hold is loaded from the shared store, if any.
        """
        session = self.local.get(session_id)
        if session is None and self.shared is not None:
            session = await self._load(session_id, token)
        if session is None:
            raise ApiError(404, f"no session {session_id!r}: it never existed, was deleted "
                                "or expired after being idle; create a new one")
        # as bytes: compare_digest refuses str with characters beyond ASCII (a header may hold
        # any latin-1 byte), which was a 500
        if token is None or not secrets.compare_digest(token.encode(), session.token.encode()):
            raise ApiError(403, "missing or wrong X-Session-Token for this session")
        session.touch()
        return session

    async def refused(self, session: Session) -> None:
        """A request on the session was refused: use all the same, so the TTL starts again
        here and in the shared store, which the refusal may never have reached (a store that
        is down then changes nothing: the refusal is the answer)."""
        session.touch()
        if self.shared is not None:
            await self.shared.touch(session.id)

    @contextlib.asynccontextmanager
    async def locked(self, session: Session) -> AsyncIterator[Session]:
        """Hold the lock of a live copy of ``session``.

        A session evicted since it was authorised (deleted, expired, or, with a shared store,
        evicted to make room) must not be used: its slot may already hold another session's
        state. With a shared store it is loaded again (the store still has it unless it was
        deleted); otherwise 404.
        """
        for _ in range(2):
            async with session.lock:
                if session.alive:
                    yield session
                    return
            if self.shared is None:
                break
            session = await self.authorize(session.id, session.token)
        raise ApiError(404, f"session {session.id!r} was deleted or expired")

    async def _load(self, session_id: str, token: str | None) -> Session | None:
        assert self.shared is not None
        # Two requests for one session must not both load it; loads of others go on meanwhile
        # (a replica taking over a dead one's sessions loads many at once).
        async with self._loading.hold(session_id):
            session = self.local.get(session_id)
            if session is not None:
                return session
            record = await self.shared.load(session_id)
            if record is None:
                return None
            if token is None or not secrets.compare_digest(token_digest(token),
                                                           record.token_sha256):
                raise ApiError(403, "missing or wrong X-Session-Token for this session")
            model, snap = self._decode(record)
            session = await self.restore(model, snap, session_id, token)
            session.store_version, session.ack = record.version, record.ack
            return session

    def _decode(self, record: StoredSession) -> tuple[LoadedModel, SessionSnapshot]:
        """The record's model and snapshot, for a model this server holds at the same version."""
        batcher = self.batchers.get(record.model)
        if batcher is None:
            raise ApiError(409, f"this session is on model {record.model!r}, which this replica "
                                "does not serve; route it to a replica that does")
        model = batcher.model
        try:
            return model, decode(record.snapshot, model.name, model.version)
        except SnapshotError as exc:
            raise ApiError(409, f"this session's stored state cannot continue here: {exc}; "
                                "run every replica with the same checkpoints") from exc

    async def refresh(self, session: Session) -> None:
        """Reload a stale session from the shared store (call it holding ``session.lock``)."""
        if not session.stale or self.shared is None:
            return
        record = await self.shared.load(session.id)
        if record is None:
            self.evict(session, "gone_from_store")
            raise ApiError(404, f"session {session.id!r} was deleted or expired")
        _, snap = self._decode(record)
        await self.replace(session, snap, record.ack)
        session.store_version, session.stale = record.version, False

    async def validate(self, session: Session) -> None:
        """Bring a cached session up to the shared store's version (hold ``session.lock``)."""
        if self.shared is None:
            return
        version = await self.shared.version(session.id)
        if version != session.store_version:
            session.stale = True
        await self.refresh(session)

    async def persist(self, session: Session,
                      on_landed: Callable[[], None] | None = None) -> None:
        """Save the session to the shared store as its next version (hold ``session.lock``).

        Raises ``StaleVersion`` if another replica saved it first, 503 if the store is down;
        either way the local copy is marked stale, so it is reloaded before its next use. A
        save whose answer never came may have landed: ``on_landed`` (counting the batch) runs
        if the reload finds this very record stored.
        """
        if self.shared is None:
            return
        try:
            snap = await self.snapshot(session)
            record = StoredSession(version=session.store_version + 1, model=session.model.name,
                                   token_sha256=token_digest(session.token),
                                   snapshot=encode(snap), ack=session.ack)
            await self.shared.save(session.id, record, on_landed, time.monotonic())
        except BaseException:
            session.stale = True
            raise
        session.store_version = record.version

    async def reset(self, session: Session, origin: T0 | None = None) -> Session:
        """Start the stream again from ``origin`` (µs or "first_event"; None: the session's
        own, as the live copy holds it), which becomes the session's: zero state, empty
        buffer and counters. Returns the live copy that was reset."""

        async def start_again(live: Session) -> None:
            await self.validate(live)
            await self.batchers[live.model.name].reset(live.slot)
            t0_us = live.t0_us if origin is None else origin_us(origin)
            live.t0_us = t0_us
            live.binner, live.totals, live.log_probs = fresh_stream(live.model, t0_us)
            live.seq, live.ack = -1, b""
            await self._persist_or_conflict(live)

        return await self._change(session, start_again)

    async def _persist_or_conflict(self, session: Session) -> None:
        try:
            await self.persist(session)
        except StaleVersion as exc:
            raise ApiError(409, f"session {session.id!r} was changed concurrently on another "
                                "replica; nothing was changed here, retry") from exc

    async def delete(self, session: Session, reason: str) -> None:
        """Forget the session everywhere: the shared store first, then this process."""

        async def forget(live: Session) -> None:
            if self.shared is not None:
                await self.shared.delete(live.id)
            self.evict(live, reason)

        await self._change(session, forget)

    def evict(self, session: Session, reason: str) -> None:
        """Forget the session in this process and free its slot (the shared store keeps it)."""
        if self.local.pop(session.id) is None:
            return
        session.alive = False
        session.model.slots.give(session.slot)
        self.metrics.active_sessions.labels(model=session.model.name).dec()
        log.info("session_closed", extra={"fields": {"session": session.id, "reason": reason}})

    def expire(self, now: float) -> int:
        """Evict sessions idle for longer than the TTL (not those busy with a request), and
        forget unconfirmed saves as old (their records expire with their sessions)."""
        ttl = self.settings.session_ttl_s
        expired = [s for s in self.local if now - s.last_used > ttl and not s.lock.locked()]
        for session in expired:
            self.evict(session, "expired")
        if self.shared is not None:
            self.shared.forget_unconfirmed(now - ttl)
        return len(expired)

    async def expiry_loop(self) -> None:
        """Run ``expire`` every ``expiry_interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(self.settings.expiry_interval_s)
            self.expire(time.monotonic())

    def close_all(self) -> None:
        for session in self.local:
            self.evict(session, "shutdown")
