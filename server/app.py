"""The app factory: ``create_app(settings, registry)``.

The checkpoints are loaded before the app (``s5rf serve``: ``load_registry``, so one that
cannot load stops it before the port is bound). The lifespan starts one
micro-batcher per model and the session-expiry task, and compiles every bucketed program in a
worker thread, then freezes the start-up objects out of the garbage collector's view and sets
its thresholds; /readyz turns 200 and the model routes open when that is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from server.batcher import Batcher
from server.encode import api_error_handler, validation_error_handler
from server.errors import ApiError
from server.head import HeadAsGet
from server.metrics import Metrics, RequestMetrics
from server.registry import ModelRegistry
from server.routes import dashboard, health, infer, models, samples, sessions, stream
from server.runtime import Runtime
from server.schemas import ErrorBody
from server.sessions import SessionManager
from server.settings import Settings
from server.store import StateStore, StoreUnavailable, open_store

log = logging.getLogger("s5rf.server")


def create_app(settings: Settings, registry: ModelRegistry) -> FastAPI:
    """Build the app serving ``registry``'s models as ``settings`` say."""
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics.watch(registry)
        batchers = {m.name: Batcher(m, settings.batch_max_wait_ms / 1e3, metrics,
                                    settings.max_bins_per_step) for m in registry}
        shared = open_store(settings.session_store, settings.session_store_prefix,
                            settings.session_ttl_s, settings.session_store_timeout_s)
        runtime = Runtime(settings=settings, registry=registry, metrics=metrics,
                          batchers=batchers,
                          sessions=SessionManager(settings, batchers, metrics, shared=shared))
        app.state.runtime = runtime
        if shared is not None:
            await _check_store(shared)
        for batcher in batchers.values():
            batcher.start()
        expiry = asyncio.create_task(runtime.sessions.expiry_loop())
        warm = asyncio.create_task(_warm(runtime))
        warm.add_done_callback(functools.partial(_warm_ended, runtime))
        thresholds = gc.get_threshold()
        try:
            with metrics.timing_gc():
                yield
        finally:
            # the collector is the process's: leave it as it was found (tests run many apps)
            gc.set_threshold(*thresholds)
            if settings.gc_freeze:
                gc.unfreeze()
            for task in (warm, expiry):
                task.cancel()
            await asyncio.gather(warm, expiry, return_exceptions=True)
            runtime.sessions.close_all()
            if shared is not None:
                await shared.close()
            for batcher in batchers.values():
                await batcher.stop()
            log.info("server_stopped")

    app = FastAPI(title="s5rf-serve", version="1", lifespan=lifespan,
                  summary="Streaming inference for S5-RF spiking networks on event streams")
    app.add_middleware(HeadAsGet)
    app.add_middleware(RequestMetrics, metrics=metrics, access_log=settings.access_log)
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    for module in (health, models, sessions, infer, stream, samples, dashboard):
        app.include_router(module.router)
    app.openapi = functools.partial(_openapi_with_error_bodies, app, app.openapi)  # type: ignore[method-assign]
    return app


def _openapi_with_error_bodies(app: FastAPI, build: Callable[[], dict[str, Any]]
                               ) -> dict[str, Any]:
    """FastAPI's schema with every error answer documented as the ``ErrorBody`` the handlers
    send: FastAPI's own 422 is a list of pydantic errors, which ``validation_error_handler``
    turns into one line, and the other error codes had no body at all."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = build()
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for operations in schema["paths"].values():
        for operation in operations.values():
            for code, response in operation.get("responses", {}).items():
                if code[0] not in "45":
                    continue
                ref = response.get("content", {}).get("application/json", {}).get(
                    "schema", {}).get("$ref", "")
                if "content" not in response or ref.endswith("/HTTPValidationError"):
                    response["content"] = error
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    components["ErrorBody"] = ErrorBody.model_json_schema()
    app.openapi_schema = schema
    return schema


def _warm_ended(runtime: Runtime, warm: asyncio.Task[None]) -> None:
    """A failed warm-up is logged and fails liveness (a restart may cure it): otherwise the
    server stayed 'warming' for ever, alive to every probe, and said nothing."""
    if warm.cancelled() or (exc := warm.exception()) is None:
        return
    runtime.warm_up_failure = f"warm-up failed: {exc!r}"
    log.error("warmup_failed", exc_info=exc)


async def _check_store(shared: StateStore) -> None:
    """Say at start-up whether the shared store answers: a mistyped address would otherwise
    show only as the first session's 503. Serving starts either way (it may come up later)."""
    try:
        await shared.ping()
    except StoreUnavailable as exc:
        log.warning("session_store_unreachable", extra={"fields": {"error": str(exc)}})
    else:
        log.info("session_store_connected")


async def _warm(runtime: Runtime) -> None:
    start = time.perf_counter()
    await asyncio.to_thread(runtime.registry.warm, runtime.settings.warm_spikes)
    if runtime.settings.gc_freeze:
        # What is alive now lives as long as the server (~600k objects once JAX has compiled
        # everything); left in the collector's view, every full collection walks all of it.
        gc.collect()
        gc.freeze()
    if runtime.settings.gc_thresholds is not None:
        # Rarer young collections: a request's objects are mostly gone by then, instead of
        # promoted to the old generation whose growth triggers the full collections.
        gc.set_threshold(*runtime.settings.gc_thresholds)
    runtime.ready = True
    log.info("server_ready", extra={"fields": {
        "models": [m.name for m in runtime.registry],
        "warmup_s": round(time.perf_counter() - start, 2)}})
