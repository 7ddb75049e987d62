"""/v1/sessions: a client's stream state on one model."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response

from server.deps import ReadyDep, SessionDep, find_model
from server.inference import firing_rates, probabilities
from server.schemas import LayerStats, SessionCreate, SessionCreated, SessionInfo
from server.sessions import Session

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
ERRORS: dict[int | str, dict[str, object]] = {
    403: {"description": "Missing or wrong X-Session-Token"},
    404: {"description": "Unknown or expired session"},
}


def session_info(session: Session, ttl_s: float) -> SessionInfo:
    model = session.model
    probs = probabilities(session.log_probs)
    idle = time.monotonic() - session.last_used
    totals = session.totals
    return SessionInfo(
        id=session.id, model=model.name, version=model.version, late=session.late,
        t0_us=session.binner.t0_us, bins=session.binner.closed,
        last_t_us=session.binner.last_t, pending_events=len(session.binner.pending),
        events_accepted=totals.events_accepted, events_dropped=totals.events_dropped,
        seq=session.seq, probabilities=probs.tolist(),
        label=model.card.labels[int(probs.argmax())],
        totals=LayerStats(spikes=totals.spikes.tolist(),
                          firing_rate=firing_rates(totals.spikes, model.card.architecture.neurons,
                                                   session.binner.closed)),
        synops=totals.synops, idle_s=idle, expires_in_s=max(0.0, ttl_s - idle))


@router.post("", status_code=201, responses={404: {"description": "Unknown model"},
                                             503: {"description": "Session cap reached"}})
async def create_session(body: SessionCreate, runtime: ReadyDep) -> SessionCreated:
    """Open a session on a model; keep the returned token."""
    model = find_model(runtime, body.model)
    t0 = None if body.t0_us == "first_event" else body.t0_us
    session = await runtime.sessions.create(model, t0, body.late)
    info = session_info(session, runtime.settings.session_ttl_s)
    return SessionCreated(**info.model_dump(), token=session.token)


@router.get("/{session_id}", responses=ERRORS)
async def get_session(session: SessionDep, runtime: ReadyDep) -> SessionInfo:
    """Where a session stands: bins, last timestamp, probabilities, cumulative spikes."""
    return session_info(session, runtime.settings.session_ttl_s)


@router.post("/{session_id}/reset", responses=ERRORS)
async def reset_session(session: SessionDep, runtime: ReadyDep) -> SessionInfo:
    """Restart a session's stream from its origin with a zero state."""
    async with session.lock:
        await runtime.sessions.reset(session)
    return session_info(session, runtime.settings.session_ttl_s)


@router.delete("/{session_id}", status_code=204, response_class=Response, responses=ERRORS)
async def delete_session(session: SessionDep, runtime: ReadyDep) -> Response:
    """Close a session and free its state slot."""
    async with session.lock:
        runtime.sessions.delete(session, "deleted")
    return Response(status_code=204)

