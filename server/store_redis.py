"""Session records in Redis: one hash per session, written by an atomic check-and-set script.

Key ``{prefix}session:{id}`` holds ``version``, ``model``, ``token``, ``snapshot``, ``ack`` and
``write``. The Lua script compares the stored version with the writer's and replaces the whole
hash and its TTL in one step, so a record is never half-written and two replicas never both
advance a session from the same version. One round trip per write. A write whose record is
already stored (the same version and write id) succeeds again: a script whose reply a broken
connection lost or that answered too late is sent again (by redis-py, or by ``save``), and that
write must not read as another replica's. Contents cannot tell them apart: a replica whose
copy is behind may compute the very record another just stored (the same batch, no seq).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import cast

import redis.asyncio as aioredis
from redis import exceptions as rx
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from server.store import StaleVersion, StoredSession, StoreUnavailable, UnconfirmedWrite

_CHECK_AND_SET = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current == tonumber(ARGV[1]) and redis.call('HGET', KEYS[1], 'write') == ARGV[7] then
    redis.call('PEXPIRE', KEYS[1], ARGV[6])
    return 1
end
if current ~= tonumber(ARGV[1]) - 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'model', ARGV[2], 'token', ARGV[3],
           'snapshot', ARGV[4], 'ack', ARGV[5], 'write', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
"""

# An outage to the API (503 with Retry-After): connection loss and timeouts, and the
# server's refusals that clear when Redis does (READONLY after a failover, OOM, NOPERM,
# MASTERDOWN, LOADING, MISCONF when it cannot persist, BUSY, TRYAGAIN, CLUSTERDOWN). Any
# other Redis error (a wrong type, a script error) is a bug and stays a 500 with its
# traceback.
_DOWN = (rx.ConnectionError, rx.TimeoutError, OSError, rx.ReadOnlyError, rx.OutOfMemoryError,
         rx.NoPermissionError, rx.MasterDownError, rx.BusyLoadingError, rx.ClusterDownError,
         rx.TryAgainError)
_OUTAGE_REPLIES = ("MISCONF", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS")


def _outage(exc: BaseException) -> bool:
    return isinstance(exc, _DOWN) or (isinstance(exc, rx.ResponseError)
                                      and str(exc).startswith(_OUTAGE_REPLIES))


class RedisStore:
    """``StateStore`` on a Redis server (``redis://host:port/db``)."""

    def __init__(self, url: str, prefix: str, ttl_s: float, timeout_s: float):
        # Short timeouts: a Redis that is down must turn into a prompt 503, not a hung request.
        # One immediate retry on a fresh connection: after a Redis restart every pooled
        # connection is dead, and each would otherwise fail one request. Reads and deletes are
        # not retried on a timeout (the client would wait twice as long); a write is (save).
        self.client = aioredis.Redis.from_url(
            url, socket_connect_timeout=min(1.0, timeout_s), socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1, supported_errors=(rx.ConnectionError,)))
        self.prefix = prefix
        self.ttl_ms = int(ttl_s * 1000)
        self._cas = self.client.register_script(_CHECK_AND_SET)

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    @contextlib.asynccontextmanager
    async def _outages_as(self, error: type[Exception]) -> AsyncIterator[None]:
        """Raise an outage inside the block as ``error`` ("Redis: ..."); other Redis errors
        propagate as they are. After a failover the pooled connections still reach the
        demoted primary, which refuses every write: they are dropped, so the next call
        connects to whatever the address now names."""
        try:
            yield
        except (rx.RedisError, OSError) as exc:
            if not _outage(exc):
                raise
            if isinstance(exc, rx.ReadOnlyError):
                with contextlib.suppress(Exception):  # the outage is what gets reported
                    await self.client.connection_pool.disconnect()
            raise error(f"Redis: {exc}") from exc

    async def load(self, session_id: str) -> StoredSession | None:
        async with self._outages_as(StoreUnavailable):
            fields = cast(dict[bytes, bytes], await self.client.hgetall(self._key(session_id)))
        if not fields:
            return None
        return StoredSession(version=int(fields[b"version"]), model=fields[b"model"].decode(),
                             token_sha256=fields[b"token"].decode(),
                             snapshot=fields[b"snapshot"], ack=fields.get(b"ack", b""),
                             write=fields.get(b"write", b"").decode())

    async def version(self, session_id: str) -> int:
        key = self._key(session_id)
        async with self._outages_as(StoreUnavailable), \
                self.client.pipeline(transaction=False) as pipe:  # one round trip
            pipe.hget(key, "version")
            pipe.pexpire(key, self.ttl_ms)
            value, _ = await pipe.execute()
        return int(value) if value is not None else 0

    async def save(self, session_id: str, record: StoredSession) -> None:
        keys = [self._key(session_id)]
        args: list[bytes | str | int] = [record.version, record.model, record.token_sha256,
                                         record.snapshot, record.ack, self.ttl_ms,
                                         record.write]
        late = False
        # unconfirmed, a refusal too: a script that failed midway may have written
        async with self._outages_as(UnconfirmedWrite):
            try:
                saved = await self._cas(keys=keys, args=args)
            except rx.TimeoutError:
                # The script may have run with its reply late. Sent again it settles which:
                # it accepts the record it already stored and writes one it did not.
                late = True
                saved = await self._cas(keys=keys, args=args)
        if not saved and late:  # another replica wrote in between: over ours, or instead
            raise UnconfirmedWrite("Redis: a late write was overtaken by another replica's")
        if not saved:
            raise StaleVersion(session_id)

    async def touch(self, session_id: str) -> None:
        async with self._outages_as(StoreUnavailable):
            await self.client.pexpire(self._key(session_id), self.ttl_ms)

    async def delete(self, session_id: str) -> None:
        async with self._outages_as(StoreUnavailable):
            await self.client.delete(self._key(session_id))

    async def ping(self) -> None:
        async with self._outages_as(StoreUnavailable):
            await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()
