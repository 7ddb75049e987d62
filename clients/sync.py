"""Blocking client: the async client run on a private event loop, one call at a time.

Use it from plain scripts; inside a running event loop use ``AsyncClient`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterable, Iterator
from typing import Generic, TypeVar

import numpy as np

from clients.aio import T0, AsyncClient, AsyncSession, Late
from clients.retry import DEFAULT_RETRY, Retry
from clients.schemas import EventsResult, ModelDetail, ModelSummary, SessionInfo
from clients.stream import AsyncStream, Batch

R = TypeVar("R")
Handle = TypeVar("Handle", AsyncSession, AsyncStream)


class Client:
    """``with Client("http://127.0.0.1:8000") as c: c.infer("digits-cochlea", events)``."""

    def __init__(self, url: str = "http://127.0.0.1:8000", *, timeout_s: float = 30.0,
                 retry: Retry = DEFAULT_RETRY, binary: bool = True):
        self._loop = asyncio.new_event_loop()
        self.aio = AsyncClient(url, timeout_s=timeout_s, retry=retry, binary=binary)

    def _run(self, awaitable: Awaitable[R]) -> R:
        task = asyncio.ensure_future(awaitable, loop=self._loop)
        try:
            return self._loop.run_until_complete(task)
        except BaseException:
            # Ctrl-C stops the loop, not the call: cancel it and let it end (its finally
            # blocks close what it opened), then raise what interrupted it
            task.cancel()
            with contextlib.suppress(BaseException):
                self._loop.run_until_complete(task)
            raise

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._run(self.aio.aclose())
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def wait_ready(self, timeout_s: float = 300.0) -> None:
        self._run(self.aio.wait_ready(timeout_s))

    def models(self) -> list[ModelSummary]:
        return self._run(self.aio.models())

    def model(self, name: str) -> ModelDetail:
        return self._run(self.aio.model(name))

    def infer(self, model: str, events: np.ndarray, *, t0_us: T0 = 0,
              include_spikes: bool = False, top_k: int = 5) -> EventsResult:
        return self._run(self.aio.infer(model, events, t0_us=t0_us,
                                        include_spikes=include_spikes, top_k=top_k))

    def open_session(self, model: str, *, t0_us: T0 = 0, late: Late | None = None) -> Session:
        return Session(self, self._run(self.aio.open_session(model, t0_us=t0_us, late=late)))

    def resume_session(self, session_id: str, token: str) -> Session:
        return Session(self, self._run(self.aio.resume_session(session_id, token)))

    def stream(self, model: str | None = None, *, session: tuple[str, str] | None = None,
               t0_us: T0 = 0, late: Late | None = None, include_spikes: bool = False,
               top_k: int = 5, window: int = 8) -> Stream:
        return Stream(self, self.aio.stream(model, session=session, t0_us=t0_us, late=late,
                                            include_spikes=include_spikes, top_k=top_k,
                                            window=window))


class _Twin(Generic[Handle]):
    """A blocking twin of the async handle ``aio``, run on ``client``'s event loop."""

    def __init__(self, client: Client, aio: Handle):
        self._client = client
        self.aio: Handle = aio

    @property
    def id(self) -> str:
        return self.aio.id

    @property
    def token(self) -> str:
        return self.aio.token


class Session(_Twin[AsyncSession]):
    """Blocking twin of ``AsyncSession``; ``aio`` is the async handle (id, token, next_seq)."""

    def send(self, events: np.ndarray | None = None, *, until_us: int | None = None,
             flush: bool = False, include_spikes: bool = False, top_k: int = 5) -> EventsResult:
        return self._client._run(self.aio.send(events, until_us=until_us, flush=flush,
                                               include_spikes=include_spikes, top_k=top_k))

    def info(self) -> SessionInfo:
        return self._client._run(self.aio.info())

    def reset(self) -> SessionInfo:
        return self._client._run(self.aio.reset())

    def close(self) -> None:
        self._client._run(self.aio.close())


class Stream(_Twin[AsyncStream]):
    """Blocking twin of ``AsyncStream``: ``with c.stream("m") as s: for r in s.run(...)``."""

    def __enter__(self) -> Stream:
        self._client._run(self.aio.__aenter__())
        return self

    @property
    def reconnects(self) -> int:
        return self.aio.reconnects

    @property
    def resent(self) -> int:
        """Frames sent again after a reconnect."""
        return self.aio.resent

    def __exit__(self, *exc: object) -> None:
        self._client._run(self.aio.close())

    def run(self, batches: Iterable[Batch | np.ndarray]) -> Iterator[EventsResult]:
        results = self.aio.run(batches)
        try:
            while True:
                try:
                    yield self._client._run(anext(results))
                except StopAsyncIteration:
                    return
        finally:
            self._client._run(results.aclose())
