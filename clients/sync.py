"""Blocking client: the async client run on a private event loop, one call at a time.

Use it from plain scripts; inside a running event loop use ``AsyncClient`` instead.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import threading
from collections.abc import Awaitable, Iterable, Iterator
from typing import Generic, TypeVar

import numpy as np

from clients.aio import T0, AsyncClient, AsyncSession, Late
from clients.errors import ClientError
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
        if self._loop.is_closed():
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never to run: no "was never awaited" warning
            raise ClientError("the client is closed: make a new Client")
        task = self._loop.create_task(_awaited(awaitable))
        if (threading.current_thread() is not threading.main_thread()
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
            return self._loop.run_until_complete(task)  # its own Ctrl-C handling, or none here
        # Ctrl-C cancels the running call, whose finally blocks end it cleanly, and is raised
        # once the loop is back: raised wherever the loop happened to be, it could land inside
        # asyncio's own bookkeeping and leave the call unable to finish, or the loop stopped
        # under the next call (asyncio.Runner still raises it in place once the call is
        # done). A second Ctrl-C while the call winds down is raised at once.
        interrupted = False

        def on_sigint(signum: int, frame: object) -> None:
            nonlocal interrupted
            if interrupted:
                raise KeyboardInterrupt
            interrupted = True
            task.cancel()
            self._loop.call_soon_threadsafe(lambda: None)  # wake a loop waiting in select

        signal.signal(signal.SIGINT, on_sigint)
        try:
            result = self._loop.run_until_complete(task)
        except BaseException as exc:
            # However the cancelled call ended (cancelled, or an error its cancellation caused:
            # a StopAsyncIteration would end a `for` over a stream's results quietly), what
            # happened is Ctrl-C.
            if interrupted:
                raise KeyboardInterrupt from (
                    None if isinstance(exc, asyncio.CancelledError) else exc)
            raise
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if interrupted:
            raise KeyboardInterrupt
        return result

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the client (its connections and event loop); closing it again does nothing."""
        if self._loop.is_closed():
            return
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


async def _awaited(awaitable: Awaitable[R]) -> R:
    """A coroutine of any awaitable (``anext``'s and ``aclose``'s are not): a task of it."""
    return await awaitable


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
             flush: bool = False, include_spikes: bool = False, top_k: int = 5,
             reset: T0 | None = None) -> EventsResult:
        return self._client._run(self.aio.send(events, until_us=until_us, flush=flush,
                                               include_spikes=include_spikes, top_k=top_k,
                                               reset=reset))

    def info(self) -> SessionInfo:
        return self._client._run(self.aio.info())

    def reset(self, t0_us: T0 | None = None) -> SessionInfo:
        return self._client._run(self.aio.reset(t0_us))

    def export_state(self) -> bytes:
        return self._client._run(self.aio.export_state())

    def import_state(self, state: bytes) -> SessionInfo:
        return self._client._run(self.aio.import_state(state))

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
