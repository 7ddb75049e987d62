"""The session table's side of the shared store: its failures as API answers, and the batches
of saves it never confirmed.

A store that is down is answered 503 with Retry-After (nothing was changed, or, for a write
whose answer never came, it may have been). Such a write's batch is counted once a later load
finds that very record stored: then it landed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator

from server.errors import busy
from server.store import StateStore, StoredSession, StoreUnavailable, UnconfirmedWrite

log = logging.getLogger("s5rf.server")


@dataclasses.dataclass(frozen=True)
class Unconfirmed:
    """A save the shared store did not confirm: ``count`` counts its batch if a later load
    finds exactly ``record`` stored (the store's own test of a resent write: same version and
    write id). ``since``: when, on the monotonic clock."""

    record: StoredSession
    count: Callable[[], None]
    since: float


class SharedSessions:
    """``StateStore`` calls as the session table makes them (see the module's docstring)."""

    def __init__(self, store: StateStore, retry_after_s: int):
        self.store = store
        self.retry_after_s = retry_after_s
        # By session id, not on the cached copy, which may be evicted before the session is
        # loaded again.
        self._unconfirmed: dict[str, Unconfirmed] = {}

    async def load(self, session_id: str) -> StoredSession | None:
        with self._errors():
            record = await self.store.load(session_id)
        pending = self._unconfirmed.pop(session_id, None)
        if pending is not None and record == pending.record:
            pending.count()
        return record

    async def version(self, session_id: str) -> int:
        with self._errors():
            return await self.store.version(session_id)

    async def save(self, session_id: str, record: StoredSession, on_landed: Callable[[], None]
                   | None, now: float) -> None:
        """``StateStore.save``; a write the store did not confirm is remembered (from ``now``)
        so that ``on_landed`` runs if a later load finds it stored."""
        with self._errors():
            try:
                await self.store.save(session_id, record)
            except UnconfirmedWrite:
                self._unconfirmed.pop(session_id, None)
                if on_landed is not None:
                    self._unconfirmed[session_id] = Unconfirmed(record, on_landed, now)
                raise

    async def delete(self, session_id: str) -> None:
        with self._errors():
            await self.store.delete(session_id)

    async def touch(self, session_id: str) -> None:
        """Restart the record's TTL; a store that is down changes nothing here (the caller has
        its answer already)."""
        with contextlib.suppress(StoreUnavailable):
            await self.store.touch(session_id)

    def forget_unconfirmed(self, before: float) -> None:
        """Drop unconfirmed saves older than ``before`` (their records expire with their
        sessions)."""
        for session_id, pending in list(self._unconfirmed.items()):
            if pending.since < before:
                del self._unconfirmed[session_id]

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except UnconfirmedWrite as exc:
            log.warning("store_unconfirmed", extra={"fields": {"error": str(exc)}})
            raise busy("the session store is unavailable or did not answer in time, so this "
                       "change may or may not have been saved: resend a batch with the same seq "
                       "(one already applied is answered 409 with its result); without a seq, "
                       "read the session first", self.retry_after_s) from exc
        except StoreUnavailable as exc:
            log.warning("store_unavailable", extra={"fields": {"error": str(exc)}})
            raise busy("the session store is unavailable; nothing was changed, retry later",
                       self.retry_after_s) from exc
