"""WS /v1/stream: a session over one connection, with backpressure and resumption.

Protocol (docs/api.md): the first text message is a ``StreamOpen``; the server answers
``{"type": "opened", ...session}``; then every binary frame (packed events, after a header
holding seq and options with ``frame_header``) or JSON frame (columns + options) is applied
in order and answered with ``{"type": "result", ...}`` (every ``result_every`` frames and on
flush) or ``{"type": "error", "status", "detail", "frame"}``, which changed nothing and keeps
the connection open. Fatal problems close the connection with a 44xx code mirroring the HTTP
status. A reader task moves frames into a bounded queue; when it is full the server stops
reading, so a fast client is slowed down by TCP, not buffered. One connection streams into a
session at a time: a resume stops the previous one's reading and waits until it has applied
the frames it had read (then closes it with 4409; server/feeds.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct

import numpy as np
import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.types import Message

from model.binning import MAX_T_US
from model.events import EventError, SensorKind
from server.decode import JSON, RAW, decode, with_fields
from server.deps import RuntimeDep, cannot_serve, find_model
from server.encode import describe
from server.errors import ApiError
from server.feeds import Feed
from server.inference import process_chunk
from server.results import session_info
from server.runtime import Runtime
from server.schemas import ChunkOptions, SessionCreated, StreamOpen, origin_us
from server.sessions import Session

router = APIRouter(tags=["stream"])
log = logging.getLogger("s5rf.server")

CLOSE_BAD_OPEN = 4400
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_OPEN_TIMEOUT = 4408
CLOSE_CONFLICT = 4409
CLOSE_GONE = 4410
CLOSE_TOO_LARGE = 4413
CLOSE_BUSY = 4503
CLOSE_INTERNAL = 1011
# Binary frames of a `frame_header` stream: seq, until_us (-1: none), the reset's origin (-1:
# the batch's first event) and flags (bit 0: flush, bit 1: reset).
FRAME_HEADER = struct.Struct("<qqqB")
FLUSH, RESET = 1, 2


class StreamClosed(Exception):
    """End the connection with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket, runtime: RuntimeDep) -> None:
    """Stream events to a session and receive a result per processed frame."""
    await websocket.accept()
    code = 1000
    try:
        opened = await _receive_open(websocket, runtime)
        try:
            session = await _find_or_create(opened, runtime)
            async with runtime.sessions.feeds.hold(session.id) as feed:
                session = await _announce(websocket, runtime, session, opened)
                await _serve(websocket, runtime, session, opened, feed)
        except ApiError as exc:
            raise _refused(runtime, exc) from exc
    except StreamClosed as closed:
        code = closed.code
        with contextlib.suppress(Exception):  # the peer may be gone already
            await websocket.close(code, _close_reason(closed.reason))
    except WebSocketDisconnect:
        pass
    except Exception:  # a bug or an engine failure: log it, tell the client, keep serving
        code = CLOSE_INTERNAL
        log.exception("stream_failed")
        with contextlib.suppress(Exception):
            await websocket.close(code, "internal error")
    finally:
        runtime.metrics.requests.labels(route="/v1/stream", method="WS", status=str(code)).inc()


def _busy(runtime: Runtime, detail: str) -> StreamClosed:
    """4503, its reason led by the wait (a close frame has no Retry-After header, and the
    reason's end may be cut): ``retry after N s: detail``."""
    return StreamClosed(CLOSE_BUSY, f"retry after {runtime.settings.retry_after_s} s: {detail}")


def _refused(runtime: Runtime, exc: ApiError) -> StreamClosed:
    """The close that mirrors an HTTP error of opening or resuming a session."""
    if exc.status == 503:  # a cap reached, or the shared store down: retry later
        return _busy(runtime, exc.detail)
    code = {403: CLOSE_FORBIDDEN, 404: CLOSE_NOT_FOUND, 409: CLOSE_CONFLICT,
            422: CLOSE_BAD_OPEN}.get(exc.status, CLOSE_INTERNAL)
    return StreamClosed(code, exc.detail)


def _close_reason(reason: str) -> str:
    """At most the 123 UTF-8 bytes a close frame allows (reasons echo client-sent ids), cut on
    a character boundary."""
    return reason.encode()[:123].decode(errors="ignore")


async def _receive_open(websocket: WebSocket, runtime: Runtime) -> StreamOpen:
    try:
        text = await asyncio.wait_for(websocket.receive_text(),
                                      runtime.settings.ws_open_timeout_s)
    except TimeoutError as exc:
        raise StreamClosed(CLOSE_OPEN_TIMEOUT, "no open message in time") from exc
    except KeyError as exc:  # a binary frame where the open message belongs
        raise StreamClosed(CLOSE_BAD_OPEN, "the first message must be JSON text") from exc
    try:
        opened = StreamOpen.model_validate(orjson.loads(text))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        detail = describe(exc) if isinstance(exc, ValidationError) else "invalid JSON"
        raise StreamClosed(CLOSE_BAD_OPEN, f"bad open message: {detail}") from exc
    if opened.session is None and opened.model is None:
        raise StreamClosed(CLOSE_BAD_OPEN, "give `model` to open or `session` to resume")
    opening = sorted({"model", "t0_us", "late"} & opened.model_fields_set)
    if opened.session is not None and opening:
        # Taken, they would be ignored: the session keeps its own model, origin and policy.
        fields = ", ".join(f"`{name}`" for name in opening)
        raise StreamClosed(CLOSE_BAD_OPEN, f"{fields} {'is' if len(opening) == 1 else 'are'} for "
                                           "opening a new session; resume one with `session` "
                                           "and `token` alone")
    if runtime.failure is not None:
        raise StreamClosed(CLOSE_BUSY, _close_reason(cannot_serve(runtime.failure)))
    if not runtime.ready:
        raise _busy(runtime, "the models are still warming up")
    return opened


async def _find_or_create(opened: StreamOpen, runtime: Runtime) -> Session:
    """The session to resume (its token checked) or a new one on the named model."""
    if opened.session is not None:
        return await runtime.sessions.authorize(opened.session, opened.token)
    assert opened.model is not None  # _receive_open checked that one of them is given
    model = find_model(runtime, opened.model)
    return await runtime.sessions.create(model, origin_us(opened.t0_us), opened.late)


async def _announce(websocket: WebSocket, runtime: Runtime, session: Session,
                    opened: StreamOpen) -> Session:
    """Answer ``opened`` with the session's position; returns the live copy of ``session``.

    A resume is answered only once the connection before it has applied what it read, and
    from the shared store's record, not a cached copy that may be behind or never saved: the
    client drops the frames up to the seq it is told.
    """
    resumed = opened.session is not None
    if resumed:
        async with runtime.sessions.locked(session) as session:
            await runtime.sessions.validate(session)
    info = session_info(session, runtime.settings.session_ttl_s)
    # A resuming client may have lost the answer to its last applied frame with the connection.
    applied = orjson.loads(session.ack) if resumed and session.ack else None
    await websocket.send_bytes(orjson.dumps({
        "type": "opened", "resumed": resumed, "applied": applied,
        **SessionCreated(**info.model_dump(), token=session.token).model_dump()}))
    return session


async def _serve(websocket: WebSocket, runtime: Runtime, session: Session,
                 opened: StreamOpen, feed: Feed) -> None:
    """Apply frames in order until the peer closes or another connection takes the session
    over; frames already read are applied even if the peer is gone (a resuming client finds
    them in the session's ``seq``), and once taken over nothing more is sent."""
    queue: asyncio.Queue[Message | None] = asyncio.Queue(runtime.settings.ws_queue_size)
    reader = asyncio.create_task(read_frames(websocket, queue))
    reader.add_done_callback(lambda _: _end_of_frames(queue))
    feed.start_reading(reader)
    connected = True
    # The connection's options, validated once: building a pydantic model per frame is costly.
    opts = ChunkOptions(include_spikes=opened.include_spikes, top_k=opened.top_k)
    try:
        frame = 0
        while (message := await queue.get()) is not None:
            reply = await _apply(message, frame, runtime, session, opened, opts)
            frame += 1
            if reply is not None and connected and not feed.stopping:
                try:
                    async with asyncio.timeout(None) as feed.sending:  # a take-over cuts it
                        await websocket.send_bytes(orjson.dumps(reply))
                except (WebSocketDisconnect, RuntimeError, OSError, TimeoutError):
                    connected = False
                finally:
                    feed.sending = None
            if reader.done() and queue.empty():  # stopped with a full queue: no end marker
                break
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    if feed.stopping:
        raise StreamClosed(CLOSE_CONFLICT, "the session was resumed on another connection")


async def read_frames(websocket: WebSocket, queue: asyncio.Queue[Message | None]) -> None:
    """Move frames into the bounded queue; waiting on a full queue is the backpressure."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while (message := await websocket.receive())["type"] != "websocket.disconnect":
            await queue.put(message)


def _end_of_frames(queue: asyncio.Queue[Message | None]) -> None:
    """The reader has stopped, however it ended (a task cancelled before it ran never enters
    its body): mark the end of the queue. A full queue's last frame is its end instead, which
    ``_serve`` tells from the reader being done."""
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(None)


def _split_header(data: bytes, opts: ChunkOptions) -> tuple[bytes, ChunkOptions]:
    """A binary frame of a ``frame_header`` stream: seq, until_us, the reset's origin, flags,
    then packed events."""
    if len(data) < FRAME_HEADER.size:
        raise EventError(f"a frame of {len(data)} bytes has no {FRAME_HEADER.size}-byte header")
    seq, until_us, t0_us, flags = FRAME_HEADER.unpack_from(data)
    if flags & ~(FLUSH | RESET):
        raise EventError(f"the frame header's flags {flags:#04x} set bits other than flush (1) "
                         "and reset (2)")
    origin = _in_range("reset origin", t0_us)
    if origin is not None and not flags & RESET:
        raise EventError(f"the frame header has a reset origin ({t0_us}) but no reset flag (2)")
    return data[FRAME_HEADER.size:], opts.model_copy(update={
        "seq": _in_range("seq", seq), "until_us": _in_range("until_us", until_us),
        "flush": bool(flags & FLUSH),
        "reset": (origin if origin is not None else "first_event") if flags & RESET else None})


def _in_range(name: str, value: int) -> int | None:
    """A header field (-1: none) within the range HTTP's ``seq`` and ``until_us`` take: a
    larger one, taken, would make the session's stored state unreadable."""
    if value == -1:
        return None
    if not 0 <= value <= MAX_T_US:
        raise EventError(f"the frame header's {name} {value} is outside [0, {MAX_T_US}]")
    return value


def frame_events(data: bytes | None, text: str | None, header: bool, opts: ChunkOptions,
                 sensor: SensorKind, max_events: int) -> tuple[np.ndarray, ChunkOptions]:
    """A frame's events and options: a binary frame (``data``; after its header when the
    stream has ``frame_header``) or a JSON one (``text``), over the connection's ``opts``.
    ApiError 422 for a malformed frame."""
    if data is not None:
        if header:
            try:
                data, opts = _split_header(data, opts)
            except EventError as exc:
                raise ApiError(422, str(exc)) from exc
        events, _ = decode(data, RAW, sensor, max_events)
        return events, opts
    events, fields = decode((text or "").encode(), JSON, sensor, max_events)
    return events, with_fields(opts, fields, "frame")


async def _apply(message: Message, frame: int, runtime: Runtime, session: Session,
                 opened: StreamOpen, opts: ChunkOptions) -> dict[str, object] | None:
    """One frame -> the result to push (or None at this cadence), or an error reply."""
    settings = runtime.settings
    data: bytes | None = message.get("bytes")
    text: str | None = message.get("text")
    size = len(data if data is not None else (text or "").encode())
    if size > settings.max_body_bytes:
        raise StreamClosed(CLOSE_TOO_LARGE, f"a frame of {size} bytes is over the "
                                            f"{settings.max_body_bytes}-byte limit")
    try:
        events, opts = frame_events(data, text, opened.frame_header, opts,
                                    session.model.card.input.sensor,
                                    settings.max_events_per_request)
        result = await process_chunk(session, events, opts, runtime.sessions)
    except ApiError as exc:
        if exc.status == 404:
            raise StreamClosed(CLOSE_GONE, exc.detail) from exc
        # Refused for the session's sake, not the frame's: the frames read after it must not
        # be applied before it, so the connection ends unread. A 503 (the shared store
        # failed): the client resumes from the stored position and sends the rest again. A
        # 409 that is no replay (another replica advanced the session at the same moment,
        # or stored it with other checkpoints): the stream cannot go on as it was.
        if exc.status == 503:
            raise _busy(runtime, exc.detail) from exc
        if exc.status == 409 and "last_seq" not in exc.body:
            raise StreamClosed(CLOSE_CONFLICT, exc.detail) from exc
        await runtime.sessions.refused(session)
        return {"type": "error", "status": exc.status, "detail": exc.detail, "frame": frame,
                **exc.body}
    if (frame + 1) % opened.result_every and not opts.flush:
        return None
    return {"type": "result", "frame": frame, **result}
