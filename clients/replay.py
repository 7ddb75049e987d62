"""Replay a recording to a model: cut it into time chunks, send them at sensor pace (or flat
out) over a session (HTTP) or a stream (WebSocket), and report each result as it comes.

A recording is one or more utterances, each scored on its own: its first batch starts the
stream again (a reset; the session opens at the first one's origin) with bins aligned to its
origin, and its last batch flushes, so each one's final result is the one ``/infer`` gives
for it alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
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
    utterance: int = 0  # which one the result belongs to
    last: bool = False  # the result of its flush: the utterance's decision


@dataclasses.dataclass(frozen=True)
class Utterance:
    """A part of a recording scored on its own, from a zero state with bins aligned to
    ``t0_us``. events: sorted by ``t``, all at or after ``t0_us``."""

    events: np.ndarray
    t0_us: int


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


@dataclasses.dataclass(frozen=True)
class Item:
    """One batch of a replay, due once the sensor's clock passes ``end_us``."""

    end_us: int
    batch: Batch
    utterance: int


def items_of(utterances: Sequence[Utterance], chunk_us: int) -> Iterator[Item]:
    """Each utterance's time chunks and its silences' watermarks, the first resetting the
    stream to its origin (but the first utterance's: the session opens there), then a flush."""
    for i, utterance in enumerate(utterances):
        reset = None if i == 0 else utterance.t0_us
        end_us = utterance.t0_us
        for end_us, chunk in with_watermarks(
                time_chunks(utterance.events, utterance.t0_us, chunk_us), utterance.t0_us,
                chunk_us):
            batch = Batch(until_us=end_us, reset=reset) if chunk is None \
                else Batch(chunk, reset=reset)
            yield Item(end_us, batch, i)
            reset = None
        yield Item(end_us, Batch(flush=True, reset=reset), i)


async def paced(items: Iterator[Item], speed: float | None,
                clock: Callable[[], float] = time.perf_counter) -> AsyncIterator[Item]:
    """Yield each item once its end time has passed on the sensor's clock, run ``speed``
    times faster than real time (``None``: no waiting); the clock starts at the first
    item: its first event, or a watermark's step before it."""
    start = first = None
    for item in items:
        if speed is not None:
            if start is None:
                events = item.batch.events
                first = int(events["t"][0]) if events is not None \
                    else item.end_us - SILENCE_STEP_US
                start = clock()
            assert first is not None
            await asyncio.sleep(max(0.0, start + (item.end_us - first) / 1e6 / speed - clock()))
        yield item


async def replay(client: AsyncClient, model: str, utterances: Sequence[Utterance], *,
                 transport: Transport = "ws", speed: float | None = None,
                 chunk_us: int = 10_000, top_k: int = 5) -> AsyncIterator[Progress]:
    """Stream the utterances (one after another in time) to ``model`` on a new session;
    yield a Progress per batch (a silence's watermarks included), each utterance's last
    answering its flush."""
    if not utterances:
        raise ValueError("nothing to replay: give at least one utterance")
    if chunk_us < 1:
        raise ValueError(f"chunk_us must be at least 1 µs, not {chunk_us}")
    items = paced(items_of(utterances, chunk_us), speed)
    t0_us = utterances[0].t0_us
    if transport == "http":
        session = await client.open_session(model, t0_us=t0_us)
        sent = 0
        try:
            async for item in items:
                batch = item.batch
                start = time.perf_counter()
                sent += 0 if batch.events is None else len(batch.events)
                result = await session.send(batch.events, until_us=batch.until_us,
                                            flush=batch.flush, reset=batch.reset, top_k=top_k)
                yield Progress(result, sent, _ms_since(start), 0, item.utterance, batch.flush)
        finally:
            await session.close()
        return
    sent_at: dict[int, tuple[float, int, Item]] = {}  # seq -> (send time, events by then, item)

    async def batches() -> AsyncIterator[Batch]:
        total = 0
        async for item in items:
            total += 0 if item.batch.events is None else len(item.batch.events)
            sent_at[len(sent_at)] = (time.perf_counter(), total, item)
            yield item.batch

    async with client.stream(model, t0_us=t0_us, top_k=top_k) as stream:
        try:
            async for result in stream.run(batches()):
                assert result.seq is not None
                at, total, item = sent_at[result.seq]
                yield Progress(result, total, _ms_since(at), stream.reconnects, item.utterance,
                               item.batch.flush)
        finally:
            assert stream.session is not None
            await AsyncSession(client, stream.session, stream.token).close()


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1e3
