"""Prometheus metrics of one app, in a registry of its own (so tests can build many apps)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import logging
import time
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.registry import ModelRegistry

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclasses.dataclass(frozen=True)
class ModelSeries:
    """One model's labelled series, looked up once (``labels()`` locks and hashes per call)."""

    queue_delay: Histogram
    batch_sessions: Histogram
    step_seconds: Histogram
    events: Counter
    dropped: Counter
    bins: Counter
    spikes: Counter


class Metrics:
    """Every metric the server exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, memory, open files
        GCCollector(registry=r)  # python_gc_collections_total by generation
        self.requests = Counter("s5rf_requests", "HTTP requests and WS connections",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("s5rf_request_seconds", "Request latency", ["route", "method"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch_sessions = Histogram(
            "s5rf_batch_sessions", "Session chunks per engine step (one gathered batch, run as "
            "one call or several)", ["model"], buckets=BATCH_BUCKETS, registry=r)
        self.queue_delay = Histogram("s5rf_queue_delay_seconds",
                                     "Time a chunk waited for its engine call", ["model"],
                                     buckets=LATENCY_BUCKETS, registry=r)
        self.step_seconds = Histogram("s5rf_engine_step_seconds",
                                      "Engine step duration (all its calls)", ["model"],
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.active_sessions = Gauge("s5rf_active_sessions", "Live sessions", ["model"],
                                     registry=r)
        self.events = Counter("s5rf_events", "Events accepted (sessions and /infer)", ["model"],
                              registry=r)
        self.dropped = Counter("s5rf_events_dropped", "Late events dropped", ["model"],
                               registry=r)
        self.bins = Counter("s5rf_bins", "Time bins processed (sessions and /infer)", ["model"],
                            registry=r)
        self.spikes = Counter("s5rf_spikes", "Neuron spikes", ["model"], registry=r)
        self.compilations = Gauge("s5rf_compilations", "Engine programs compiled", ["model"],
                                  registry=r)
        self.gc_pause = Histogram("s5rf_gc_pause_seconds",
                                  "Garbage collections (the whole process stops)", ["generation"],
                                  buckets=LATENCY_BUCKETS, registry=r)
        self._series: dict[str, ModelSeries] = {}

    def of(self, model: str) -> ModelSeries:
        """The per-model series of ``model``."""
        series = self._series.get(model)
        if series is None:
            series = self._series[model] = ModelSeries(
                *(getattr(self, f.name).labels(model=model)
                  for f in dataclasses.fields(ModelSeries)))
        return series

    def watch(self, models: ModelRegistry) -> None:
        """Report each engine's compilation counter and start every model's series at 0."""
        for m in models:
            self.compilations.labels(model=m.name).set_function(
                functools.partial(getattr, m.engine, "compilations"))
            self.active_sessions.labels(model=m.name).set(0)
            for counter in (self.events, self.dropped, self.bins, self.spikes):
                counter.labels(model=m.name).inc(0)

    @contextlib.contextmanager
    def timing_gc(self) -> Iterator[None]:
        """Time every garbage collection of the process into ``gc_pause`` while inside."""
        by_generation = [self.gc_pause.labels(generation=str(g)) for g in range(3)]
        started = 0.0

        def callback(phase: str, info: dict[str, int]) -> None:
            nonlocal started
            if phase == "start":
                started = time.perf_counter()
            else:
                by_generation[info["generation"]].observe(time.perf_counter() - started)

        gc.callbacks.append(callback)
        try:
            yield
        finally:
            gc.callbacks.remove(callback)

    def render(self) -> bytes:
        return generate_latest(self.registry)


access = logging.getLogger("s5rf.access")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


class RequestMetrics:
    """ASGI middleware: count and time every HTTP request by its route template, and with
    ``access_log`` log it too (one JSON line: method, path, route, status, ms, client)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: bool = False):
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            # a label value per method a client makes up would grow without bound
            method = scope["method"] if scope["method"] in HTTP_METHODS else "other"
            seconds = time.perf_counter() - start
            self.metrics.requests.labels(route=route, method=method, status=str(status)).inc()
            self.metrics.latency.labels(route=route, method=method).observe(seconds)
            if self.access_log:  # the path, not the query: it may be long, and says no more
                client = scope.get("client")
                access.info("request", extra={"fields": {
                    "method": scope["method"], "path": scope["path"], "route": route,
                    "status": status, "ms": round(seconds * 1e3, 3),
                    "client": f"{client[0]}:{client[1]}" if client else None}})
