"""Annotated dependencies: the runtime, a model by name, an authorised session.

All are ``async def``: FastAPI runs plain ``def`` dependencies in a thread pool, one thread
hop each per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header
from fastapi.exceptions import RequestValidationError
from starlette.requests import HTTPConnection

from server.errors import ApiError, busy
from server.registry import LoadedModel
from server.runtime import Runtime
from server.sessions import Session


async def get_runtime(conn: HTTPConnection) -> Runtime:
    runtime: Runtime = conn.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def cannot_serve(failure: str) -> str:
    """Why a server that will never serve again refuses every model route."""
    return f"this server cannot serve: {failure}; see /healthz, and use another replica"


async def get_ready_runtime(runtime: RuntimeDep) -> Runtime:
    """The runtime, or 503 while the engines are still compiling (with Retry-After), or
    once it cannot serve (without: waiting will not help)."""
    if runtime.failure is not None:
        raise ApiError(503, cannot_serve(runtime.failure))
    if not runtime.ready:
        raise busy("the models are still warming up; retry shortly",
                   runtime.settings.retry_after_s)
    return runtime


ReadyDep = Annotated[Runtime, Depends(get_ready_runtime)]


def find_model(runtime: Runtime, name: str) -> LoadedModel:
    model = runtime.registry.get(name)
    if model is None:
        known = ", ".join(m.name for m in runtime.registry) or "none"
        raise ApiError(404, f"no model {name!r}; models served: {known}")
    return model


async def get_model(name: str, runtime: RuntimeDep) -> LoadedModel:
    return find_model(runtime, name)


ModelDep = Annotated[LoadedModel, Depends(get_model)]


async def get_session(
    session_id: str,
    runtime: ReadyDep,
    x_session_token: Annotated[str | None, Header(description="Token from session creation.")]
    = None,
) -> AsyncIterator[Session]:
    session = await runtime.sessions.authorize(session_id, x_session_token)
    try:
        yield session
    except (ApiError, RequestValidationError):
        await runtime.sessions.refused(session)
        raise


SessionDep = Annotated[Session, Depends(get_session)]
