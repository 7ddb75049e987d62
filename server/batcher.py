"""Per-model micro-batcher: many sessions' chunks -> one jitted Engine.step, off the event loop.

Requests ``submit`` a chunk of closed bins for a slot and await its outputs. A single task per
model takes the first waiting chunk, gathers whatever else arrives within ``max_wait_s`` (up to
the largest session bucket), and runs ``Engine.step`` on the model's one worker thread. Every
other engine operation (reset, read, write) runs on that same thread, so they are ordered with
the steps and never block the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from model.network import State
from server.metrics import Metrics
from server.registry import LoadedModel

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class SlotStep:
    """One slot's outputs of an engine call.

    log_probs float32 (C,); spike_counts int64 (L,); spikes: per layer bool (T, P) or None.
    """

    log_probs: np.ndarray
    spike_counts: np.ndarray
    spikes: tuple[np.ndarray, ...] | None


@dataclasses.dataclass(frozen=True)
class _Job:
    slot: int
    bins: np.ndarray
    with_spikes: bool
    future: asyncio.Future[SlotStep]
    enqueued: float


class Batcher:
    """Gathers chunks for one model's engine. A slot must have at most one chunk in flight."""

    def __init__(self, model: LoadedModel, max_wait_s: float, metrics: Metrics,
                 max_step_bins: int):
        self.model = model
        self.max_wait_s = max_wait_s
        self.max_step_bins = max_step_bins
        self.max_batch = model.engine.session_buckets[-1]
        self.series = metrics.of(model.name)
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"engine-{model.name}")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"batcher-{self.model.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while not self._queue.empty():
            self._queue.get_nowait().future.cancel()
        self._executor.shutdown(wait=True)

    async def reset(self, slot: int) -> None:
        """Zero ``slot``'s state, in order with the steps."""
        await self._call(self.model.engine.reset, slot)

    async def read(self, slot: int) -> State:
        """``slot``'s state as host arrays, in order with the steps."""
        return await self._call(self.model.engine.read, slot)

    async def write(self, slot: int, row: State) -> None:
        """Overwrite ``slot``'s state, in order with the steps."""
        await self._call(self.model.engine.write, slot, row)

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        """Run an engine operation on the model's worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def submit(self, slot: int, bins: np.ndarray, with_spikes: bool) -> SlotStep:
        """Advance ``slot`` by ``bins`` float32 (T, F) in the next engine step.

        A chunk longer than ``max_step_bins`` (a whole /infer recording) is stepped in pieces,
        each an engine step of its own, so other sessions' chunks run in between instead of
        waiting for all of it; if a piece fails, the slot's state is put back as it was. (The
        engine cuts each step again, into calls of at most its largest bin bucket, for the
        compiled shapes, and puts its rows back itself if one of those calls fails.)
        """
        if len(bins) <= self.max_step_bins:
            return await self._submit_piece(slot, bins, with_spikes)
        async with self.restoring(slot):
            steps = [await self._submit_piece(slot, bins[lo : lo + self.max_step_bins],
                                              with_spikes)
                     for lo in range(0, len(bins), self.max_step_bins)]
        spikes = (tuple(np.concatenate(layer) for layer in zip(*(s.spikes or () for s in steps),
                                                                strict=True))
                  if with_spikes else None)
        counts = np.sum([s.spike_counts for s in steps], axis=0)
        return SlotStep(steps[-1].log_probs, counts, spikes)

    @contextlib.asynccontextmanager
    async def restoring(self, slot: int) -> AsyncIterator[None]:
        """Put ``slot``'s state back as it was if the block fails or is cancelled."""
        saved = await self.read(slot)
        try:
            yield
        except BaseException:
            await self.write(slot, saved)
            raise

    async def _submit_piece(self, slot: int, bins: np.ndarray, with_spikes: bool) -> SlotStep:
        future: asyncio.Future[SlotStep] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(slot, bins, with_spikes, future, time.perf_counter()))
        return await future

    async def _run(self) -> None:
        while True:
            jobs = [await self._queue.get()]
            try:
                if self.max_wait_s > 0 and self._queue.qsize() < self.max_batch - 1:
                    # One sleep for stragglers: a timed get per job costs a task and a timer.
                    await asyncio.sleep(self.max_wait_s)
                while len(jobs) < self.max_batch and not self._queue.empty():
                    jobs.append(self._queue.get_nowait())
                for flag in (False, True):  # with_spikes is a compile-time switch
                    group = [j for j in jobs
                             if j.with_spikes == flag and not j.future.cancelled()]
                    if group:
                        await self._step(group, flag)
            except asyncio.CancelledError:  # stopping: no taken job may wait forever
                for job in jobs:
                    job.future.cancel()
                raise

    async def _step(self, jobs: list[_Job], with_spikes: bool) -> None:
        start = time.perf_counter()
        for job in jobs:
            self.series.queue_delay.observe(start - job.enqueued)
        self.series.batch_sessions.observe(len(jobs))
        try:
            out = await self._call(self.model.engine.step, [j.slot for j in jobs],
                                  [j.bins for j in jobs], with_spikes)
        except Exception as exc:  # the engine failed: every waiting request gets the error
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        self.series.step_seconds.observe(time.perf_counter() - start)
        for i, job in enumerate(jobs):
            spikes = (tuple(layer[i, : len(job.bins)] for layer in out.spikes)
                      if out.spikes is not None else None)
            if not job.future.done():
                job.future.set_result(SlotStep(out.log_probs[i], out.spike_counts[i], spikes))
