"""/v1/sessions: a client's stream state on one model."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from server.decode import JSON, RAW, media_type, read_body
from server.deps import ReadyDep, SessionDep, find_model
from server.encode import describe
from server.errors import ApiError
from server.results import session_info
from server.schemas import (
    SessionCreate,
    SessionCreated,
    SessionInfo,
    SessionReset,
    origin_us,
)
from server.state_codec import OtherModel, SnapshotError, decode, encode

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
STATE_TYPE = "application/vnd.s5rf.session-state+msgpack"
STATE_TYPES = (STATE_TYPE, RAW)  # what GET .../state answers, or any bytes named as such
ERRORS: dict[int | str, dict[str, object]] = {
    403: {"description": "Missing or wrong X-Session-Token"},
    404: {"description": "Unknown or expired session"},
}


@router.post("", status_code=201, responses={404: {"description": "Unknown model"},
                                             503: {"description": "Session cap reached"}})
async def create_session(body: SessionCreate, runtime: ReadyDep) -> SessionCreated:
    """Open a session on a model; keep the returned token."""
    model = find_model(runtime, body.model)
    session = await runtime.sessions.create(model, origin_us(body.t0_us), body.late)
    info = session_info(session, runtime.settings.session_ttl_s)
    return SessionCreated(**info.model_dump(), token=session.token)


@router.get("/{session_id}", responses=ERRORS)
async def get_session(session: SessionDep, runtime: ReadyDep) -> SessionInfo:
    """Where a session stands: bins, last timestamp, probabilities, cumulative spikes."""
    async with runtime.sessions.locked(session) as session:
        await runtime.sessions.validate(session)
    return session_info(session, runtime.settings.session_ttl_s)


@router.post("/{session_id}/reset", responses=ERRORS, openapi_extra={"requestBody": {
    "required": False, "content": {JSON: {"schema": SessionReset.model_json_schema()}}}})
async def reset_session(request: Request, session: SessionDep,
                        runtime: ReadyDep) -> SessionInfo:
    """Restart a session's stream with a zero state, from its origin or a new one (a live
    sensor's clock has moved on: the next utterance's start, or its first event)."""
    # Read here, not by FastAPI: a body it refused would answer before the session is found
    # (a 422 for an unknown session) and the refusal would not count as the session's use.
    doc = (await read_body(request, runtime.settings.max_body_bytes)).strip()
    try:  # no body, or JSON null: the session's own origin
        body = None if doc in (b"", b"null") else SessionReset.model_validate_json(doc)
    except ValidationError as exc:
        raise ApiError(422, describe(exc, "body")) from exc
    session = await runtime.sessions.reset(session, None if body is None else body.t0_us)
    return session_info(session, runtime.settings.session_ttl_s)


@router.delete("/{session_id}", status_code=204, response_class=Response, responses=ERRORS)
async def delete_session(session: SessionDep, runtime: ReadyDep) -> Response:
    """Close a session and free its state slot."""
    await runtime.sessions.delete(session, "deleted")
    return Response(status_code=204)


@router.get("/{session_id}/state", response_class=Response, responses={
    **ERRORS, 200: {"content": {STATE_TYPE: {}}, "description": "The session's snapshot"}})
async def export_state(session: SessionDep, runtime: ReadyDep) -> Response:
    """Export a session's whole stream state (versioned msgpack) to import elsewhere."""
    async with runtime.sessions.locked(session) as session:
        await runtime.sessions.validate(session)
        blob = encode(await runtime.sessions.snapshot(session))
    return Response(blob, media_type=STATE_TYPE)


@router.put("/{session_id}/state", responses={
    **ERRORS, 409: {"description": "Snapshot of another model or another version"},
    415: {"description": f"Not sent as {STATE_TYPE} (or {RAW})"},
    422: {"description": "Not a readable snapshot of this model's state"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        STATE_TYPE: {"schema": {"type": "string", "format": "binary"}}}}})
async def import_state(request: Request, session: SessionDep, runtime: ReadyDep) -> SessionInfo:
    """Continue an exported stream in this session (same model and version)."""
    media_type(request.headers.get("content-type"), STATE_TYPES)
    blob = await read_body(request, runtime.settings.max_body_bytes)
    model = session.model
    try:
        snap = decode(blob, model.name, model.version)
    except OtherModel as exc:
        raise ApiError(409, f"{exc}; import it into a session of that model") from exc
    except SnapshotError as exc:
        raise ApiError(422, f"{exc}; send the body of GET /v1/sessions/{{id}}/state") from exc
    session = await runtime.sessions.import_state(session, snap)
    return session_info(session, runtime.settings.session_ttl_s)
