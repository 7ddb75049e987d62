"""The shared session-state store: where replicas keep sessions so any of them can serve any.

``memory`` (the default) has no shared store: a session lives only in its process. With
``redis://…`` every accepted batch is written to Redis before it is acknowledged, as one
``StoredSession`` record with a version number; a write names the version it started from and
fails with ``StaleVersion`` if another replica got there first. Records expire after the
session TTL unless written or read (a version check) again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from typing import Protocol


class StoreUnavailable(Exception):
    """The store cannot be reached; the request may succeed later."""


class UnconfirmedWrite(StoreUnavailable):
    """A write the store did not confirm: it may have been stored or not."""


class StaleVersion(Exception):
    """The record changed since it was read (another replica advanced the session)."""


@dataclasses.dataclass(frozen=True)
class StoredSession:
    """One session as the store holds it.

    ``version`` counts writes (1 after creation); ``model`` names the checkpoint;
    ``token_sha256`` authorises clients on any replica without storing the token; ``snapshot``
    is ``state_codec.encode``'s blob; ``ack`` is the JSON result of the last batch with a seq,
    returned again if that batch is retried; ``write`` names this record apart from every
    other, so a resent write is told from another replica's, even one with the same contents.
    """

    version: int
    model: str
    token_sha256: str
    snapshot: bytes
    ack: bytes = b""
    write: str = dataclasses.field(default_factory=lambda: secrets.token_hex(8))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class StateStore(Protocol):
    """Versioned session records by id (every method may raise ``StoreUnavailable``)."""

    async def load(self, session_id: str) -> StoredSession | None: ...

    async def version(self, session_id: str) -> int:
        """The record's version, 0 when there is none. A read is use: the TTL starts again, as
        it does for a session held in memory."""
        ...

    async def save(self, session_id: str, record: StoredSession) -> None:
        """Write ``record`` if the stored version is ``record.version - 1`` (0: no record),
        else raise ``StaleVersion``; the record expires after the TTL unless saved again.
        Raises ``UnconfirmedWrite`` when the store may or may not have written it."""
        ...

    async def touch(self, session_id: str) -> None:
        """Restart the record's TTL, as any use of the session does."""
        ...

    async def delete(self, session_id: str) -> None: ...

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` if the store does not answer (checked at start-up)."""
        ...

    async def close(self) -> None: ...


def open_store(url: str, prefix: str, ttl_s: float, timeout_s: float) -> StateStore | None:
    """The shared store named by ``S5RF_SESSION_STORE``: None for ``memory``."""
    if url == "memory":
        return None
    from server.store_redis import RedisStore

    return RedisStore(url, prefix, ttl_s, timeout_s)
