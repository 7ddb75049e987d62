"""``SharedSessions``: the store's failures as 503s, and when an unconfirmed save counts."""

from __future__ import annotations

import asyncio

import pytest

from server.errors import ApiError
from server.shared_sessions import SharedSessions
from server.store import StoredSession, StoreUnavailable, UnconfirmedWrite


class ScriptedStore:
    """Holds one record per id; ``fail`` is raised by the next call, once."""

    def __init__(self) -> None:
        self.records: dict[str, StoredSession] = {}
        self.fail: Exception | None = None
        self.touched: list[str] = []

    def _maybe_fail(self) -> None:
        if self.fail is not None:
            fail, self.fail = self.fail, None
            raise fail

    async def load(self, session_id: str) -> StoredSession | None:
        self._maybe_fail()
        return self.records.get(session_id)

    async def version(self, session_id: str) -> int:
        self._maybe_fail()
        record = self.records.get(session_id)
        return 0 if record is None else record.version

    async def save(self, session_id: str, record: StoredSession) -> None:
        self.records[session_id] = record  # written, whatever the answer says
        self._maybe_fail()

    async def touch(self, session_id: str) -> None:
        self._maybe_fail()
        self.touched.append(session_id)

    async def delete(self, session_id: str) -> None:
        self._maybe_fail()
        self.records.pop(session_id, None)

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


def record(version: int) -> StoredSession:
    return StoredSession(version=version, model="m", token_sha256="t", snapshot=b"s")


def test_an_unconfirmed_save_counts_once_a_load_finds_it_and_not_otherwise() -> None:
    async def run() -> list[str]:
        store, counted = ScriptedStore(), []
        shared = SharedSessions(store, retry_after_s=2)
        store.fail = UnconfirmedWrite("timed out")
        with pytest.raises(ApiError) as refused:
            await shared.save("a", record(1), lambda: counted.append("a"), now=10.0)
        assert refused.value.status == 503 and "may or may not" in refused.value.detail
        assert refused.value.headers == {"Retry-After": "2"}
        store.fail = UnconfirmedWrite("timed out")
        with pytest.raises(ApiError):
            await shared.save("b", record(1), lambda: counted.append("b"), now=10.0)
        store.records["b"] = record(1)  # the same version, another replica's write
        assert await shared.load("b") == store.records["b"] and counted == []
        assert await shared.load("a") == store.records["a"]
        await shared.load("a")  # counted once, not on every load
        return counted

    assert asyncio.run(run()) == ["a"]


def test_unconfirmed_saves_older_than_the_ttl_are_forgotten() -> None:
    async def run() -> list[int]:
        store, counted = ScriptedStore(), []
        shared = SharedSessions(store, retry_after_s=1)
        for i, now in enumerate((5.0, 20.0)):
            store.fail = UnconfirmedWrite("timed out")
            with pytest.raises(ApiError):
                await shared.save(f"s{i}", record(1), lambda i=i: counted.append(i), now=now)
        shared.forget_unconfirmed(before=10.0)
        await shared.load("s0")
        await shared.load("s1")
        return counted

    assert asyncio.run(run()) == [1]


def test_a_store_that_is_down_is_a_503_and_a_touch_changes_nothing() -> None:
    async def run() -> None:
        store = ScriptedStore()
        shared = SharedSessions(store, retry_after_s=3)
        for call in (lambda: shared.load("s"), lambda: shared.version("s"),
                     lambda: shared.delete("s")):
            store.fail = StoreUnavailable("connection refused")
            with pytest.raises(ApiError, match="nothing was changed") as refused:
                await call()
            assert refused.value.status == 503
        store.fail = StoreUnavailable("connection refused")
        await shared.touch("s")  # the refusal it follows is the answer
        await shared.touch("s")
        assert store.touched == ["s"]

    asyncio.run(run())
