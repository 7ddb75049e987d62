"""Replay a recording to a model: cut it into time chunks, send them at sensor pace (or flat
out) over a session (HTTP) or a stream (WebSocket), and report each result as it comes.

The session's bins are aligned to the recording's origin ``t0_us`` and the last batch
flushes, so the final result is the one ``/infer`` gives for the whole recording.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Literal

import numpy as np

from clients.aio import AsyncClient, AsyncSession
from clients.schemas import EventsResult
from clients.stream import Batch

Transport = Literal["ws", "http"]


@dataclasses.dataclass(frozen=True)
class Progress:
    """One result with what the client measured: events sent so far, the batch's round trip
    (ms) and the WebSocket reconnections so far (HTTP retries happen inside each request)."""

    result: EventsResult
    events_sent: int
    latency_ms: float
    reconnects: int


# Through a silence the stream's time still moves on, by a watermark at least this often:
# the batch after a long one would otherwise close every bin of it at once, past the
# server's max_bins_per_request (80 s at 4 ms bins by default).
SILENCE_STEP_US = 1_000_000


def time_chunks(events: np.ndarray, t0_us: int, chunk_us: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(end_us, events)`` of consecutive ``chunk_us`` windows from ``t0_us``, skipping empty
    ones. events: sorted by ``t``."""
    if not len(events):
        return
    t = events["t"]
    k = (t - t0_us) // chunk_us
    bounds = np.flatnonzero(np.diff(k)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(t)], strict=True):
        yield t0_us + (int(k[lo]) + 1) * chunk_us, events[lo:hi]


def with_watermarks(chunks: Iterator[tuple[int, np.ndarray]], t0_us: int, chunk_us: int,
                    step_us: int = SILENCE_STEP_US) -> Iterator[tuple[int, np.ndarray | None]]:
    """The chunks, and through a silence longer than ``step_us`` (before the first one, from
    the origin ``t0_us``, too) watermarks ``(until_us, None)`` every ``step_us``."""
    last_end = t0_us
    for end_us, chunk in chunks:
        mark = last_end + step_us
        while mark <= end_us - chunk_us:  # before this chunk's window opens
            yield mark, None
            mark += step_us
        yield end_us, chunk
        last_end = end_us


async def paced(items: Iterator[tuple[int, np.ndarray | None]], speed: float | None,
                clock: Callable[[], float] = time.perf_counter,
                ) -> AsyncIterator[tuple[int, np.ndarray | None]]:
    """Yield each item once its end time has passed on the sensor's clock, run ``speed``
    times faster than real time (``None``: no waiting); the clock starts at the first
    item: its first event, or a watermark's step before it."""
    start = first = None
    for end_us, chunk in items:
        if speed is not None:
            if start is None:
                first = int(chunk["t"][0]) if chunk is not None else end_us - SILENCE_STEP_US
                start = clock()
            assert first is not None
            await asyncio.sleep(max(0.0, start + (end_us - first) / 1e6 / speed - clock()))
        yield end_us, chunk


async def replay(client: AsyncClient, model: str, events: np.ndarray, *, t0_us: int,
                 transport: Transport = "ws", speed: float | None = None,
                 chunk_us: int = 10_000, top_k: int = 5) -> AsyncIterator[Progress]:
    """Stream ``events`` (sorted) to ``model`` on a new session; yield a Progress per batch
    (a silence's watermarks included), the last one answering the final flush."""
    items = paced(with_watermarks(time_chunks(events, t0_us, chunk_us), t0_us, chunk_us),
                  speed)
    if transport == "http":
        session = await client.open_session(model, t0_us=t0_us)
        sent = 0
        try:
            async for end_us, chunk in items:
                start = time.perf_counter()
                if chunk is None:
                    result = await session.send(until_us=end_us, top_k=top_k)
                else:
                    sent += len(chunk)
                    result = await session.send(chunk, top_k=top_k)
                yield Progress(result, sent, _ms_since(start), 0)
            start = time.perf_counter()
            yield Progress(await session.send(flush=True, top_k=top_k), sent, _ms_since(start), 0)
        finally:
            await session.close()
        return
    sent_at: dict[int, tuple[float, int]] = {}  # seq -> (send time, events sent by then)

    async def batches() -> AsyncIterator[Batch]:
        total = 0
        async for end_us, chunk in items:
            total += 0 if chunk is None else len(chunk)
            sent_at[len(sent_at)] = (time.perf_counter(), total)
            yield Batch(until_us=end_us) if chunk is None else Batch(chunk)
        sent_at[len(sent_at)] = (time.perf_counter(), total)
        yield Batch(flush=True)

    async with client.stream(model, t0_us=t0_us, top_k=top_k) as stream:
        try:
            async for result in stream.run(batches()):
                assert result.seq is not None
                at, total = sent_at[result.seq]
                yield Progress(result, total, _ms_since(at), stream.reconnects)
        finally:
            assert stream.session is not None
            await AsyncSession(client, stream.session, stream.token).close()


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1e3
