"""The answers the API gives about a stream: a batch's result and a session's state."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from model.binning import BinnerResult
from server.batcher import SlotStep
from server.registry import LoadedModel
from server.schemas import LayerStats, SessionInfo
from server.sessions import Session
from server.state_codec import Totals


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one batch did: binning, the engine's outputs (None when no bin closed) and the
    stream's totals and output afterwards."""

    fed: BinnerResult
    step: SlotStep | None
    first_bin: int
    batch_spikes: np.ndarray
    batch_synops: int
    totals: Totals
    log_probs: np.ndarray


def firing_rates(spikes: np.ndarray, neurons: tuple[int, ...], bins: int) -> list[float]:
    """Spikes / (neurons × bins) per layer; 0 before any bin."""
    if bins == 0:
        return [0.0] * len(neurons)
    # plain floats: numpy's per-call overhead dwarfs a division per layer
    return [s / (n * bins) for s, n in zip(spikes.tolist(), neurons, strict=True)]


def probabilities(log_probs: np.ndarray) -> np.ndarray:
    """float64 (C,) summing to 1."""
    p = np.exp(log_probs.astype(np.float64))
    return p / p.sum()


def decision(labels: list[str], probs: np.ndarray, bins: int) -> str | None:
    """The most probable label, or None before the first bin closes: the probabilities are
    still uniform, and argmax would name the first class on no evidence."""
    return labels[int(probs.argmax())] if bins else None


def build_result(model: LoadedModel, outcome: Outcome, session_id: str | None, seq: int | None,
                 top_k: int, start: float) -> dict[str, Any]:
    """The ``EventsResult`` body as a plain dict: built field by field on the hot path, since
    constructing and dumping the pydantic model cost more than the engine step per 20 ms chunk."""
    labels = model.card.labels
    neurons = model.card.architecture.neurons
    probs = probabilities(outcome.log_probs)
    order = np.argsort(-probs, kind="stable")[:top_k].tolist()
    p = probs.tolist()
    n_batch, n_total = len(outcome.fed.bins), outcome.fed.state.closed
    rasters = None
    if outcome.step is not None and outcome.step.spikes is not None:
        rasters = []
        for i, layer in enumerate(outcome.step.spikes):
            b, n = np.nonzero(layer)
            rasters.append({"layer": i, "bin": (b + outcome.first_bin).tolist(),
                            "neuron": n.tolist()})
    totals, fed = outcome.totals, outcome.fed
    return {
        "model": model.name, "version": model.version, "session": session_id, "seq": seq,
        "probabilities": p, "label": decision(labels, probs, n_total),
        "top_k": [{"label": labels[i], "index": i, "probability": p[i]} for i in order],
        "bins": {"batch": n_batch, "total": n_total},
        # integer counts, as the schema's SpikeCounts declares
        "spikes": {"batch": outcome.batch_spikes.tolist(), "total": totals.spikes.tolist()},
        "firing_rate": {"batch": firing_rates(outcome.batch_spikes, neurons, n_batch),
                        "total": firing_rates(totals.spikes, neurons, n_total)},
        "synops": {"batch": outcome.batch_synops, "total": totals.synops},
        "events": {"accepted": fed.accepted, "dropped": fed.dropped,
                   "total_accepted": totals.events_accepted,
                   "total_dropped": totals.events_dropped, "pending": len(fed.state.pending)},
        "last_t_us": fed.state.last_t,
        "server_time_ms": (time.perf_counter() - start) * 1e3,
        "rasters": rasters,
    }


def session_info(session: Session, ttl_s: float) -> SessionInfo:
    model = session.model
    probs = probabilities(session.log_probs)
    # idle before this request, which is use too (the TTL starts again: expires_in_s)
    idle = session.last_used - session.used_before
    totals = session.totals
    return SessionInfo(
        id=session.id, model=model.name, version=model.version, late=session.late,
        t0_us=session.binner.t0_us, bins=session.binner.closed,
        last_t_us=session.binner.last_t, pending_events=len(session.binner.pending),
        events_accepted=totals.events_accepted, events_dropped=totals.events_dropped,
        seq=session.seq, probabilities=probs.tolist(),
        label=decision(model.card.labels, probs, session.binner.closed),
        totals=LayerStats(spikes=totals.spikes.tolist(),
                          firing_rate=firing_rates(totals.spikes, model.card.architecture.neurons,
                                                   session.binner.closed)),
        synops=totals.synops, idle_s=idle,
        expires_in_s=max(0.0, ttl_s - (time.monotonic() - session.last_used)))
