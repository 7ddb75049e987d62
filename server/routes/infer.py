"""Event batches: a session's next events, or a whole recording at once."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from server.decode import CONTENT_TYPES, JSON, O, decode, media_type, read_body, with_fields
from server.deps import ModelDep, ReadyDep, SessionDep
from server.encode import json_response
from server.inference import infer_recording, process_chunk
from server.registry import LoadedModel
from server.runtime import Runtime
from server.schemas import ChunkBody, ChunkOptions, EventsResult, InferBody, InferOptions

router = APIRouter(tags=["inference"])
OFFLOAD_BYTES = 1 << 20

ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"description": "Body or event count over the limit"},
    415: {"description": "Unsupported content type"},
    422: {"description": "Invalid events or options; the detail says what and where"},
    503: {"description": "Warming up, or no free slot; see Retry-After"},
}


def body_doc(schema: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI request body: JSON columns + options, or binary events (options in the query)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"required": True, "content": {
        JSON: {"schema": schema.model_json_schema()},
        CONTENT_TYPES[1]: binary, CONTENT_TYPES[2]: binary}}}


async def read_events(request: Request, runtime: Runtime, model: LoadedModel,
                      query: O) -> tuple[np.ndarray, O]:
    """Decode the body into events and merge its option fields over the query's."""
    settings = runtime.settings
    kind = media_type(request.headers.get("content-type"))
    body = await read_body(request, settings.max_body_bytes)
    args = (body, kind, model.card.input.sensor, settings.max_events_per_request)
    # A big body would hold up every other session's chunks on the event loop.
    big = len(body) > OFFLOAD_BYTES
    events, fields = await asyncio.to_thread(decode, *args) if big else decode(*args)
    return events, with_fields(query, fields, "body")


@router.post("/v1/sessions/{session_id}/events", response_model=EventsResult,
             openapi_extra=body_doc(ChunkBody),
             responses={**ERRORS, 403: {"description": "Wrong token"},
                        404: {"description": "Unknown session"},
                        409: {"description": "seq already applied"}})
async def post_events(request: Request, session: SessionDep, runtime: ReadyDep,
                      query: Annotated[ChunkOptions, Query()]) -> Response:
    """Feed a session its next batch of events; get probabilities and spike statistics."""
    events, opts = await read_events(request, runtime, session.model, query)
    result = await process_chunk(session, events, opts, runtime.sessions)
    return json_response(result)


@router.post("/v1/models/{name}/infer", response_model=EventsResult,
             openapi_extra=body_doc(InferBody),
             responses={**ERRORS, 404: {"description": "Unknown model"}})
async def infer(request: Request, model: ModelDep, runtime: ReadyDep,
                query: Annotated[InferOptions, Query()]) -> Response:
    """Classify a whole recording (every bin closed at its end), without a session."""
    events, opts = await read_events(request, runtime, model, query)
    result = await infer_recording(model, events, opts, runtime.batchers[model.name],
                                   runtime.settings, runtime.metrics)
    return json_response(result)
