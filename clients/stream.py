"""WebSocket streaming (``WS /v1/stream``) that survives lost connections.

Every frame carries a sequence number (binary frames in their ``frame_header``, JSON frames
as a ``seq`` field) and stays buffered until the server acknowledges it with its result. When
the connection drops the stream reconnects with backoff, resumes the same session, forgets
the frames the server reports applied (its ``seq``) and sends the rest again; a resent frame
that had landed after all is refused with 409, which acknowledges it. So no frame is lost and
none is applied twice. At most ``window`` frames are in flight, and none after a flush until
the flush is answered: the server keeps the result of the last applied frame only, so an
utterance's decision is never lost with a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import queue
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
    Sequence,
)
from typing import TYPE_CHECKING, Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from clients import wire
from clients.errors import (
    RETRYABLE,
    AlreadyApplied,
    ClientError,
    ConnectionLost,
    ServerError,
    StreamClosed,
    error_for,
    from_close,
)
from clients.retry import Retry
from clients.schemas import EventsResult, SessionCreated

if TYPE_CHECKING:
    from clients.aio import T0, AsyncClient, Late


@dataclasses.dataclass(frozen=True)
class Batch:
    """One frame: sorted events (or none) with an optional watermark or flush, and maybe a
    reset before it (a new utterance: a zero state from this origin, or ``"first_event"``)."""

    events: np.ndarray | None = None
    until_us: int | None = None
    flush: bool = False
    reset: T0 | None = None


Batches = Iterable[Batch | np.ndarray] | AsyncIterable[Batch | np.ndarray]
_END = Batch()  # sentinel: the caller's batches are exhausted


class AsyncStream:
    """``async with client.stream("model") as s: async for r in s.run(batches): ...``."""

    def __init__(self, client: AsyncClient, *, model: str | None,
                 session: tuple[str, str] | None, t0_us: T0, late: Late | None,
                 include_spikes: bool, top_k: int, window: int):
        if (model is None) == (session is None):
            raise ValueError("give either a model (new session) or session=(id, token)")
        if window < 1:
            raise ValueError(f"window must be at least 1 frame in flight, not {window}")
        self.client = client
        self.window = window
        self._options: dict[str, Any] = {"include_spikes": include_spikes, "top_k": top_k,
                                         "frame_header": client.binary}
        self._create: dict[str, Any] = {"model": model, "t0_us": wire.as_t0(t0_us)}
        if late is not None:
            self._create["late"] = late
        self._resume = session
        self.session: SessionCreated | None = None
        self.reconnects = 0
        self.resent = 0  # frames sent again after a reconnect
        self._ws: ClientConnection | None = None
        self._unacked: dict[int, bytes | str] = {}  # seq -> frame, in sending order
        self._frame_seqs: list[int] = []  # seq of each frame sent on this connection
        self._flush: int | None = None  # seq of the last flush frame sent
        self._resent: set[int] = set()  # seqs sent again on this connection
        self._delays: Iterator[float] | None = None  # the retry budget being spent
        self._next_seq = 0
        self._closing = False  # close() was called: a closed connection is no drop

    @property
    def id(self) -> str:
        return self._opened().id

    @property
    def token(self) -> str:
        return self._opened().token

    def _opened(self) -> SessionCreated:
        if self.session is None:
            raise ClientError("the stream is not open: use it in `async with client.stream(...) "
                              "as s` (`with` for the blocking Client)")
        return self.session

    async def __aenter__(self) -> AsyncStream:
        self._closing = False
        await self._connect()  # (nothing was sent yet: no lost answer to recover)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection; the session lives on until it expires (or is deleted). A
        ``run`` in another task ends (with ``StreamClosed``) instead of reconnecting."""
        self._closing = True
        if self._ws is not None:
            await self._ws.close()

    async def run(self, batches: Batches) -> AsyncGenerator[EventsResult, None]:
        """Send the batches in order and yield each one's result as soon as it arrives,
        resuming after drops. Replies are read while the next batch is awaited, so a paced
        source (a live sensor, a replay at speed 1) gets each result without waiting for
        later batches."""
        if isinstance(batches, np.ndarray):
            raise TypeError("run() takes an iterable of batches (event arrays or Batch), not one "
                            "event array: wrap it, run([events])")
        self._opened()
        source = _aiter(batches)
        pull: asyncio.Task[Batch | np.ndarray] | None = None  # the next batch, awaited
        reply: asyncio.Task[str | bytes] | None = None  # the next message, awaited
        exhausted, resend = False, False
        try:
            while True:
                try:
                    if resend:
                        resend = False
                        await self._resend()
                    if pull is None and not exhausted and self._may_send():
                        pull = asyncio.ensure_future(anext(source, _END))
                    if pull is None and not self._unacked:
                        return
                    if reply is None and self._unacked:
                        assert self._ws is not None
                        reply = asyncio.ensure_future(self._ws.recv())
                    await asyncio.wait([t for t in (reply, pull) if t is not None],
                                       return_when=asyncio.FIRST_COMPLETED)
                    if reply is not None and reply.done():
                        message, reply = reply.result(), None
                        result = self._receive(message)
                        if result is not None:
                            self._delays = None  # progress: a later drop starts a new budget
                            yield result
                    elif pull is not None and pull.done():
                        if pull.exception() is not None:
                            break  # raised below, outside the reconnecting handler
                        batch, pull = pull.result(), None
                        if batch is _END:
                            exhausted = True
                            continue
                        await self._send_batch(batch)
                except (ConnectionClosed, OSError) as exc:
                    # What arrived before the drop still counts: a refused frame must be
                    # raised, not taken for applied because a later one moved the seq on.
                    for message in await self._received_before_drop(reply, exc):
                        result = self._receive(message)
                        if result is not None:
                            self._delays = None
                            yield result
                    reply = None
                    _raise_if_refused(exc)
                    self._stop_if_closed(exc)
                    self.reconnects += 1
                    await asyncio.sleep(self._next_delay(exc))
                    self._stop_if_closed(exc)
                    lost = await self._connect()
                    if self._closing:  # closed while connecting: the new connection too
                        await self.close()
                        self._stop_if_closed(exc)
                    resend = True
                    if lost is not None:
                        yield lost
            assert pull is not None
            pull.result()  # the caller's source failed: its own error, not a dropped connection
        finally:
            _discard(reply)
            _discard(pull)

    def _may_send(self) -> bool:
        """Room in the window, and no flush awaiting its answer: were the connection lost
        with frames after it applied, a resume would return theirs, not the flush's."""
        return len(self._unacked) < self.window and self._flush not in self._unacked

    def _stop_if_closed(self, exc: BaseException) -> None:
        if self._closing:
            raise StreamClosed("the stream was closed while running") from exc

    async def _received_before_drop(self, reply: asyncio.Task[str | bytes] | None,
                                    exc: BaseException) -> list[str | bytes]:
        """The messages of the dropped connection not yet handled: the awaited reply if it
        came, then those still buffered (a closed connection's ``recv`` returns them before it
        raises; cancelling a pending one loses nothing)."""
        messages = []
        if reply is not None:
            reply.cancel()  # (if still waiting) and let it end: one recv at a time
            await asyncio.gather(reply, return_exceptions=True)
            if not reply.cancelled() and reply.exception() is None:
                messages.append(reply.result())
        if isinstance(exc, ConnectionClosed) and self._ws is not None:
            with contextlib.suppress(ConnectionClosed, OSError):
                while True:
                    messages.append(await self._ws.recv())
        return messages

    async def _send_batch(self, batch: Batch | np.ndarray) -> None:
        """Number the batch, keep its frame until it is acknowledged, and send it."""
        seq = self._next_seq
        self._next_seq += 1
        self._unacked[seq] = encode_frame(seq, batch, self.client.binary)
        if isinstance(batch, Batch) and batch.flush:
            self._flush = seq
        await self._send(seq)

    async def _resend(self) -> None:
        """Send every unacknowledged frame again, in order (on a resumed connection)."""
        for seq in list(self._unacked):
            self.resent += 1
            self._resent.add(seq)
            await self._send(seq)

    async def _send(self, seq: int) -> None:
        assert self._ws is not None
        self._frame_seqs.append(seq)
        await self._ws.send(self._unacked[seq])

    def _receive(self, raw: str | bytes) -> EventsResult | None:
        """A message: a result (acknowledging its frame and those before), or a refused
        frame, raised unless it is a resent frame that had landed (409)."""
        message = json.loads(raw)
        if message.get("type") == "result":
            result = EventsResult.model_validate(message)
            self._ack(result.seq)
            return result
        seq = self._frame_seqs[message["frame"]]
        error = error_for(message["status"], message["detail"], message)
        # A 409 for a frame sent only once means another writer used its seq: a real refusal.
        if not isinstance(error, AlreadyApplied) or seq not in self._resent:
            raise error
        self._ack(seq)
        applied = error.applied
        return EventsResult.model_validate(applied) if applied and applied.get("seq") == seq \
            else None

    def _ack(self, seq: int | None) -> None:
        for done in [s for s in self._unacked if seq is not None and s <= seq]:
            del self._unacked[done]

    async def _connect(self) -> EventsResult | None:
        """Open (or, once open, resume) the session, retrying with backoff; then forget the
        frames the server has applied. Returns the result of the last applied frame when its
        answer was lost with the old connection (those of earlier ones are not kept)."""
        if self.session is not None:
            first: dict[str, Any] = {"session": self.id, "token": self.token}
        elif self._resume is not None:
            first = {"session": self._resume[0], "token": self._resume[1]}
        else:
            first = self._create
        url = self.client.url.replace("http", "ws", 1) + "/v1/stream"
        if "session" in first:  # a load balancer routes the resumed session to its replica
            url += f"?session={first['session']}"
        while True:
            ws: ClientConnection | None = None
            sent = False
            try:
                ws = await connect(url, max_size=None, open_timeout=self.client.timeout_s)
                await ws.send(json.dumps({**first, **self._options}))
                sent = True
                opened = json.loads(await asyncio.wait_for(ws.recv(), self.client.timeout_s))
                break
            except (ConnectionClosed, OSError, InvalidHandshake, TimeoutError) as exc:
                if ws is not None:  # an answer that never came: do not leave it open
                    await ws.close()
                _raise_if_refused(exc)
                if sent and "session" not in first and _refusal(exc) is None:
                    # As for HTTP: the server may have created the session, so opening
                    # again would leave one behind, holding a slot until it expires.
                    raise ConnectionLost(f"the connection to {url} broke after the session "
                                         f"was asked for, so it may exist: {exc!r}") from exc
                self._stop_if_closed(exc)
                await asyncio.sleep(self._next_delay(exc, url))
                self._stop_if_closed(exc)
        self._ws = ws
        self.session = SessionCreated.model_validate(opened)
        applied = opened.get("applied")
        lost = (EventsResult.model_validate(applied)
                if applied and applied.get("seq") == self.session.seq
                and self.session.seq in self._unacked else None)
        self._next_seq = max(self._next_seq, self.session.seq + 1)
        unacked = len(self._unacked)
        self._ack(self.session.seq)
        if len(self._unacked) < unacked:  # frames landed while cut off: progress, as a result
            self._delays = None
        self._frame_seqs = []
        self._resent = set()
        return lost

    def _next_delay(self, exc: BaseException, url: str = "") -> float:
        """How long to wait before the next connection attempt, from one budget of retries
        that only a result renews (a server that drops every frame is not retried for ever);
        at least what the server asked for when it said it was busy. Out of retries, the
        server's last refusal, or ConnectionLost."""
        if self._delays is None:
            self._delays = self.client.retry.delays()
        delay = next(self._delays, None)
        refusal = _refusal(exc)
        if delay is None:
            raise refusal or ConnectionLost(
                f"could not reach {url or self.client.url} after "
                f"{self.client.retry.attempts} retries: {exc!r}") from exc
        return Retry.wait(delay, refusal.retry_after_s if refusal is not None else None)


def encode_frame(seq: int, batch: Batch | np.ndarray, binary: bool) -> bytes | str:
    """One frame of a stream: packed events after a header holding ``seq`` and the batch's
    options (``binary``: the stream is opened with ``frame_header``), or a JSON frame of
    columns and options."""
    if isinstance(batch, np.ndarray):
        batch = Batch(batch)
    until_us = None if batch.until_us is None else int(batch.until_us)  # numpy ints too
    reset = None if batch.reset is None else wire.as_t0(batch.reset)
    if binary:
        return wire.header_frame(seq, batch.events, until_us=until_us, flush=batch.flush,
                                 reset=reset)
    fields: dict[str, Any] = {"seq": seq, "flush": batch.flush}
    if until_us is not None:
        fields["until_us"] = until_us
    if reset is not None:
        fields["reset"] = reset
    if batch.events is not None:
        fields.update(wire.columns(batch.events))
    return json.dumps(fields)


def _refusal(exc: BaseException) -> ServerError | None:
    """The server's reason for closing, when it closed on purpose with a 44xx/45xx code."""
    if isinstance(exc, ConnectionClosed) and exc.rcvd is not None:
        return from_close(exc.rcvd.code, exc.rcvd.reason)
    return None


def _raise_if_refused(exc: BaseException) -> None:
    """Raise the server's reason for closing unless it says to retry."""
    error = _refusal(exc)
    if error is not None and not isinstance(error, RETRYABLE):
        raise error from exc


def _discard(task: asyncio.Task[Any] | None) -> None:
    """Cancel a task whose outcome is no longer wanted, without a never-retrieved warning."""
    if task is not None:
        task.cancel()
        if task.done() and not task.cancelled():
            task.exception()


async def _aiter(batches: Batches) -> AsyncIterator[Batch | np.ndarray]:
    if isinstance(batches, AsyncIterable):
        async for batch in batches:
            yield batch
        return
    if isinstance(batches, Sequence):  # in memory: nothing to wait for
        for batch in batches:
            yield batch
        return
    # Another iterator may block (a sensor's read loop): on the event loop it would hold back
    # the replies to batches already sent, so one thread of its own pulls it, one batch when
    # asked (an iterator bound to its thread keeps working). A daemon: a run that ends while
    # the source blocks does not keep the process alive (the batch it was waiting for is lost).
    loop = asyncio.get_running_loop()
    asks: queue.SimpleQueue[asyncio.Future[Any] | None] = queue.SimpleQueue()
    threading.Thread(target=_pull, args=(iter(batches), asks, loop), daemon=True,
                     name="s5rf-stream-source").start()
    try:
        while True:
            asks.put(answer := loop.create_future())
            if (batch := await answer) is _END:
                return
            yield batch
    finally:
        asks.put(None)


def _pull(items: Iterator[Batch | np.ndarray], asks: queue.SimpleQueue[Any],
          loop: asyncio.AbstractEventLoop) -> None:
    """The source thread: answer each asked-for future with the next batch (or the error)."""
    while (answer := asks.get()) is not None:
        try:
            item: Any = next(items, _END)
            failure = None
        except BaseException as exc:  # the caller's source failed: raised in the run
            item, failure = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed while this one waited
            loop.call_soon_threadsafe(_settle, answer, item, failure)
        if failure is not None:
            return


def _settle(answer: asyncio.Future[Any], item: Any, exc: BaseException | None) -> None:
    if answer.done():  # the run was cancelled meanwhile
        return
    if exc is not None:
        answer.set_exception(exc)
    else:
        answer.set_result(item)
