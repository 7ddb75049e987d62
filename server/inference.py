"""Events -> bins -> engine -> result, for a session's batch or a whole recording.

A batch is binned with the pure ``feed`` first; only when that succeeds does the engine step,
and only after the step are the session's binner, counters and sequence number replaced. The
step and the commit run in a task shielded from the request's cancellation, so a client that
hangs up mid-request never leaves the engine state and the session's bookkeeping out of step.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import numpy as np
import orjson

from model.binning import BinnerResult, BinnerState, LatePolicy, TooManyBins, feed
from model.events import EventError
from model.network import synaptic_ops
from server.batcher import Batcher
from server.errors import ApiError, busy
from server.metrics import Metrics
from server.registry import LoadedModel
from server.results import Outcome, build_result
from server.schemas import ChunkOptions, InferOptions, origin_us
from server.sessions import Session, SessionManager, fresh_stream, shielded
from server.settings import Settings
from server.state_codec import Totals
from server.store import StaleVersion

OFFLOAD_EVENTS = 50_000


async def process_chunk(session: Session, events: np.ndarray, opts: ChunkOptions,
                        sessions: SessionManager) -> dict[str, Any]:
    """Apply one batch of events to a session, all or nothing, and describe the result.

    With a shared store the new state is saved there before the result is returned; a batch
    whose ``seq`` was already applied is refused with 409, carrying the result it got then.
    """
    return await shielded(_locked_apply(session, events, opts, sessions))


async def _locked_apply(session: Session, events: np.ndarray, opts: ChunkOptions,
                        sessions: SessionManager) -> dict[str, Any]:
    start = time.perf_counter()
    model, settings = session.model, sessions.settings
    async with sessions.locked(session) as session:
        for attempt in range(2):  # after a conflict, once more from the state saved elsewhere
            await sessions.refresh(session)
            if opts.seq is not None and opts.seq <= session.seq:
                raise _already_applied(session, opts.seq)
            origin = session.t0_us if opts.reset is None else origin_us(opts.reset)
            binner, totals, log_probs = (
                (session.binner, session.totals, session.log_probs) if opts.reset is None
                else fresh_stream(model, origin))
            try:
                fed = _feed(binner, events, model, opts.until_us, opts.flush, session.late,
                            settings)
            except ApiError:
                # A cached copy that another replica moved on refuses what the stored session
                # takes (a time jump of the bins in between): ask the store before answering.
                version = session.store_version
                await sessions.validate(session)
                if attempt or session.store_version == version:
                    raise
                continue
            batcher = sessions.batchers[model.name]
            advance = functools.partial(_advance, model, batcher, session.slot, fed, binner,
                                        totals, log_probs, opts.include_spikes)
            if opts.reset is None:
                outcome = await advance()
            else:
                async with batcher.restoring(session.slot):
                    await batcher.reset(session.slot)
                    outcome = await advance()
            result = build_result(model, outcome, session.id, opts.seq, opts.top_k, start)
            session.binner, session.totals, session.log_probs = fed.state, outcome.totals, \
                outcome.log_probs
            session.t0_us = origin
            if opts.seq is not None:
                session.seq = opts.seq
                session.ack = orjson.dumps(result)
            # Counted once saved; a batch whose save went unconfirmed, once seen stored.
            count = functools.partial(_count, sessions.metrics, model, outcome)
            try:
                await sessions.persist(session, count)
                break
            except StaleVersion as exc:
                if attempt:
                    raise ApiError(409, f"session {session.id!r} is being advanced by another "
                                        "replica at the same time; nothing was applied, "
                                        "retry") from exc
        session.touch()
    count()
    return result


def _already_applied(session: Session, seq: int) -> ApiError:
    """409 naming the last applied seq (what tells a replay from other conflicts), with the
    batch's result when it was the last one."""
    body: dict[str, Any] = {"last_seq": session.seq}
    if seq == session.seq and session.ack:
        body["applied"] = orjson.loads(session.ack)
    return ApiError(409, f"seq {seq} was already applied (last applied seq is "
                         f"{session.seq}); send the next batch with a higher seq", body=body)


async def infer_recording(model: LoadedModel, events: np.ndarray, opts: InferOptions,
                          batcher: Batcher, settings: Settings, metrics: Metrics,
                          ) -> dict[str, Any]:
    """Run a whole recording from a zero state through the streaming engine, flushing at the
    end, on a temporary slot: the same path, and so the same numbers, as a session."""
    start = time.perf_counter()
    slot = model.infer_slots.take()  # before any work: a call over the cap costs nothing
    if slot is None:
        raise busy(f"model {model.name!r} is already running as many /infer calls as it may "
                   "at once (S5RF_MAX_CONCURRENT_INFER); retry later", settings.retry_after_s)
    binner, totals, log_probs = fresh_stream(model, origin_us(opts.t0_us))
    bin_all = functools.partial(_feed_recording, binner, events, model, settings)
    binning: asyncio.Future[BinnerResult] | None = None
    try:
        if len(events) > OFFLOAD_EVENTS:  # in a thread, so streaming sessions are not held up
            binning = asyncio.ensure_future(asyncio.to_thread(bin_all))
            fed = await asyncio.shield(binning)
        else:
            fed = bin_all()
    except BaseException:  # refused, or the caller left: the slot is free once binning is
        if binning is None:
            model.infer_slots.give(slot)
        else:
            binning.add_done_callback(functools.partial(_release_slot, model, slot))
        raise
    outcome = await shielded(_infer_on_slot(model, batcher, slot, fed, binner, totals,
                                            log_probs, opts.include_spikes, metrics))
    return build_result(model, outcome, None, None, opts.top_k, start)


def _release_slot(model: LoadedModel, slot: int, binning: asyncio.Future[BinnerResult]) -> None:
    model.infer_slots.give(slot)
    if not binning.cancelled():
        binning.exception()  # retrieved: no one awaits it any more


async def _infer_on_slot(model: LoadedModel, batcher: Batcher, slot: int, fed: BinnerResult,
                         binner: BinnerState, totals: Totals, log_probs: np.ndarray,
                         with_spikes: bool, metrics: Metrics) -> Outcome:
    """The recording's step on its slot, counted here: a caller that hung up (the step runs
    shielded) has had its events processed all the same."""
    try:
        await batcher.reset(slot)
        outcome = await _advance(model, batcher, slot, fed, binner, totals, log_probs,
                                 with_spikes)
    finally:
        model.infer_slots.give(slot)
    _count(metrics, model, outcome)
    return outcome


def _feed(binner: BinnerState, events: np.ndarray, model: LoadedModel, until_us: int | None,
          flush: bool, late: LatePolicy, settings: Settings) -> BinnerResult:
    """A session's batch; one that would close too many bins is refused in a session's terms
    (its origin, watermarks)."""
    try:
        fed = feed(binner, events, model.card.input, until_us=until_us, flush=flush,
                   late=late, max_new_bins=settings.max_bins_per_request)
    except TooManyBins as exc:
        raise ApiError(422, f"{exc}; check the timestamps' units (microseconds) and the "
                            "session's t0_us. If the sensor was really silent that long, "
                            "advance the stream first with watermarks (until_us), each at "
                            f"most {exc.limit * model.card.input.dt_us} us past the "
                            "last") from exc
    except EventError as exc:
        raise ApiError(422, str(exc)) from exc
    # The open bin holds a bin's events; only events piling up at one instant can grow it
    # without bound, batch after batch.
    if len(fed.state.pending) > settings.max_events_per_request:
        raise ApiError(413, f"the open bin would hold {len(fed.state.pending)} events, over the "
                            f"limit of {settings.max_events_per_request}; close it with "
                            "`until_us` or `flush`, or check the timestamps")
    return fed


def _feed_recording(binner: BinnerState, events: np.ndarray, model: LoadedModel,
                    settings: Settings) -> BinnerResult:
    """A whole recording, every bin closed (so none stays open); one too long for a request
    is refused in the terms of ``/infer``, which has no session to advance by watermarks."""
    try:
        return feed(binner, events, model.card.input, flush=True, late="reject",
                    max_new_bins=settings.max_bins_per_request)
    except TooManyBins as exc:
        raise ApiError(422, f"the recording spans {exc.bins} bins of "
                            f"{model.card.input.dt_us} us, over the {exc.limit} one request "
                            "may close (S5RF_MAX_BINS_PER_REQUEST); check the timestamps' "
                            "units (microseconds) and t0_us, or stream it through a session "
                            "in batches") from exc
    except EventError as exc:
        raise ApiError(422, str(exc)) from exc


async def _advance(model: LoadedModel, batcher: Batcher, slot: int, fed: BinnerResult,
                   before: BinnerState, totals: Totals, log_probs: np.ndarray,
                   with_spikes: bool) -> Outcome:
    """Step the engine on the closed bins (if any) and compute the new totals."""
    step = await batcher.submit(slot, fed.bins, with_spikes) if len(fed.bins) else None
    L = model.card.architecture.n_layers
    batch_spikes = step.spike_counts if step is not None else np.zeros(L, np.int64)
    batch_synops = round(float(synaptic_ops(fed.activity, batch_spikes,
                                            model.card.architecture)))
    new_totals = Totals(
        events_accepted=totals.events_accepted + fed.accepted,
        events_dropped=totals.events_dropped + fed.dropped,
        input_activity=totals.input_activity + fed.activity,
        synops=totals.synops + batch_synops,
        spikes=totals.spikes + batch_spikes,
    )
    return Outcome(fed=fed, step=step, first_bin=before.closed, batch_spikes=batch_spikes,
                   batch_synops=batch_synops, totals=new_totals,
                   log_probs=step.log_probs if step is not None else log_probs)


def _count(metrics: Metrics, model: LoadedModel, outcome: Outcome) -> None:
    series = metrics.of(model.name)
    series.events.inc(outcome.fed.accepted)
    series.dropped.inc(outcome.fed.dropped)
    series.bins.inc(len(outcome.fed.bins))
    series.spikes.inc(int(outcome.batch_spikes.sum()))
