"""Readiness: 503 with Retry-After until every bucket is compiled, then 200."""

from __future__ import annotations

import gc
import re
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from server.app import create_app
from server.registry import ModelRegistry
from server.settings import Settings
from tests.server.conftest import COCHLEA, DVS, wait_ready


class SlowToWarm(ModelRegistry):
    """The shared registry, whose warm-up waits until the test lets it finish."""

    def __init__(self, registry: ModelRegistry):
        super().__init__(list(registry))
        self.release = threading.Event()

    def warm(self, with_spikes: bool) -> None:
        self.release.wait(30)
        super().warm(with_spikes)


def test_model_routes_wait_for_the_warm_up(base_settings: Settings,
                                           registry: ModelRegistry) -> None:
    slow = SlowToWarm(registry)
    with TestClient(create_app(base_settings.model_copy(update={"retry_after_s": 3}),
                               slow)) as client:
        assert client.get("/healthz").json() == {"status": "ok", "models": [COCHLEA, DVS],
                                                 "detail": None}  # loaded, while warming
        warming = client.get("/readyz")
        assert warming.status_code == 503 and warming.headers["Retry-After"] == "3"
        assert warming.json()["status"] == "warming"
        r = client.post("/v1/sessions", json={"model": COCHLEA})
        assert r.status_code == 503 and "warming up" in r.json()["detail"]
        assert client.get(f"/v1/models/{COCHLEA}").status_code == 200  # the card is known
        slow.release.set()
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert client.post("/v1/sessions", json={"model": COCHLEA}).status_code == 201
        assert "s5rf_compilations" in client.get("/metrics").text


class FailsToWarm(ModelRegistry):
    def warm(self, with_spikes: bool) -> None:
        raise RuntimeError("RESOURCE_EXHAUSTED: out of memory while compiling")


def test_a_failed_warm_up_is_logged_and_fails_liveness_instead_of_warming_for_ever(
        base_settings: Settings, registry: ModelRegistry,
        caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(create_app(base_settings, FailsToWarm(list(registry)))) as client:
        deadline = time.monotonic() + 30
        while (live := client.get("/healthz")).status_code == 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert live.status_code == 500 and "out of memory" in live.json()["detail"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "failed"
        # Waiting will not help: no Retry-After, and the reason, on every model route.
        r = client.post("/v1/sessions", json={"model": COCHLEA})
        assert r.status_code == 503 and "Retry-After" not in r.headers
        assert "cannot serve: warm-up failed" in r.json()["detail"]
        assert "out of memory" in r.json()["detail"]
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_json({"model": COCHLEA})
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_bytes()
        assert closed.value.code == 4503 and closed.value.reason.startswith("this server cannot")
    assert any(r.message == "warmup_failed" and r.exc_info for r in caplog.records)


def test_warm_up_ends_by_freezing_the_start_up_objects_and_tuning_the_collector(
        base_settings: Settings, registry: ModelRegistry) -> None:
    assert gc.get_freeze_count() == 0
    before = gc.get_threshold()
    tuned = base_settings.model_copy(update={"gc_freeze": True,
                                             "gc_thresholds": (40_000, 15, 90)})
    with TestClient(create_app(tuned, registry)) as client:
        wait_ready(client)
        # the models' objects were alive then: a full collection no longer walks them
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold() == (40_000, 15, 90)
        metrics = client.get("/metrics").text
        assert 'python_gc_collections_total{generation="2"}' in metrics
        assert "process_cpu_seconds_total" in metrics
    # and at shutdown the process's collector is as it was
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before


def test_the_test_apps_leave_the_collector_alone(client: TestClient) -> None:
    assert gc.get_freeze_count() == 0


def test_garbage_collections_are_timed_while_the_app_runs(base_settings: Settings,
                                                          registry: ModelRegistry) -> None:
    before = len(gc.callbacks)
    with TestClient(create_app(base_settings, registry)) as client:
        assert len(gc.callbacks) == before + 1
        gc.collect()
        count = re.search(r's5rf_gc_pause_seconds_count\{generation="2"\} (\S+)',
                          client.get("/metrics").text)
        assert count is not None and float(count[1]) >= 1
    assert len(gc.callbacks) == before


def test_requests_are_counted_by_route_template_and_a_known_method(client: TestClient) -> None:
    client.get("/v1/models")
    client.request("ZZZ", "/v1/no-such-route")  # a method only a made-up client sends
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text("not json")  # closed 4400
        with pytest.raises(WebSocketDisconnect):
            ws.receive_bytes()
    metrics = client.get("/metrics").text
    assert 's5rf_requests_total{method="GET",route="/v1/models",status="200"}' in metrics
    assert 'method="other",route="unmatched"' in metrics and "ZZZ" not in metrics
    assert 's5rf_requests_total{method="WS",route="/v1/stream",status="4400"}' in metrics


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/", "/v1/models"])
def test_head_answers_as_get_without_a_body(client: TestClient, path: str) -> None:
    """Uptime checks and `curl -I` send HEAD (FastAPI's routes alone answered 405)."""
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    metrics = client.get("/metrics").text  # counted by its route, as a GET is
    assert re.search(rf's5rf_requests_total{{method="HEAD",route="{re.escape(path)}",'
                     r'status="200"} [1-9]', metrics), path


@pytest.mark.parametrize("access_log", [True, False])
def test_the_access_log_has_a_line_per_request_when_asked(
        make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture,
        access_log: bool) -> None:
    client = make_client(access_log=access_log)
    with caplog.at_level("INFO", logger="s5rf.access"):
        caplog.clear()  # the start-up's /readyz polls
        client.get("/v1/models/nope", params={"q": "secret"})
        created = client.post("/v1/sessions", json={"model": COCHLEA}).json()
    lines = [r.fields for r in caplog.records if r.name == "s5rf.access"]  # type: ignore[attr-defined]
    if not access_log:
        assert lines == []
        return
    assert [{k: v for k, v in line.items() if k != "ms"} for line in lines] == [
        {"method": "GET", "path": "/v1/models/nope", "route": "/v1/models/{name}",
         "status": 404, "client": "testclient:50000"},
        {"method": "POST", "path": "/v1/sessions", "route": "/v1/sessions", "status": 201,
         "client": "testclient:50000"}]
    assert all(line["ms"] > 0 for line in lines)
    assert created["token"] not in caplog.text and "secret" not in caplog.text


def test_head_through_uvicorn_keeps_the_connection(live_url: str) -> None:
    """uvicorn, not the test client, decides from the method whether a body must follow."""
    with httpx.Client(base_url=live_url) as http:
        for path in ("/healthz", "/", "/healthz"):  # one kept-alive connection for all
            head = http.head(path)
            assert head.status_code == 200 and head.content == b"", path
            assert int(head.headers["content-length"]) == len(http.get(path).content), path


def test_a_model_that_lost_its_state_table_fails_liveness_and_refuses_for_good(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a call took a model's slot table with it (StateLost), the replica cannot serve
    again: liveness fails, so the orchestrator restarts it, and routes say why meanwhile."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    engine = runtime.registry.get(COCHLEA).engine
    monkeypatch.setattr(engine, "lost", "a failed call took the slot table with it: OOM")
    live = client.get("/healthz")
    assert live.status_code == 500 and f"model {COCHLEA!r}: a failed call" in live.json()["detail"]
    r = client.post("/v1/sessions", json={"model": COCHLEA})
    assert r.status_code == 503 and "Retry-After" not in r.headers
    assert r.json()["detail"].startswith(f"this server cannot serve: model {COCHLEA!r}")
