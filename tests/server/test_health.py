"""Readiness: 503 with Retry-After until every bucket is compiled, then 200."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from server.app import create_app
from server.registry import ModelRegistry
from server.settings import Settings
from tests.server.conftest import COCHLEA


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
        assert client.get("/healthz").json() == {"status": "ok", "models": []}
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
