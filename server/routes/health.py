"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from server.deps import RuntimeDep
from server.encode import json_response
from server.schemas import HealthStatus

router = APIRouter(tags=["health"])


@router.get("/healthz", responses={500: {"model": HealthStatus}})
async def healthz(runtime: RuntimeDep) -> Response:
    """Liveness: the process answers and can serve: 500 once its warm-up failed or a model
    lost its sessions' state table (a restart may cure either)."""
    names = [m.name for m in runtime.registry]
    if runtime.failure is not None:
        return json_response(HealthStatus(status="failed", models=names,
                                          detail=runtime.failure), 500)
    return json_response(HealthStatus(status="ok", models=names))


@router.get("/readyz", responses={503: {"model": HealthStatus}})
async def readyz(runtime: RuntimeDep) -> Response:
    """Readiness: 200 once every model is loaded and every bucket compiled, else 503."""
    names = [m.name for m in runtime.registry]
    if runtime.failure is not None:
        return json_response(HealthStatus(status="failed", models=names,
                                          detail=runtime.failure), 503)
    if not runtime.ready:
        return json_response(HealthStatus(status="warming", models=names), 503,
                             {"Retry-After": str(runtime.settings.retry_after_s)})
    return json_response(HealthStatus(status="ready", models=names))


@router.get("/metrics", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
