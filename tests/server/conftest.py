"""Fixtures: two tiny random-init checkpoints (cochlea and DVS), one warmed model registry
shared by every app of the run, in-process clients, a real uvicorn server on loopback, and
Redis (also behind a proxy that can answer late) for the shared session store."""

from __future__ import annotations

import os

os.environ["JAX_PLATFORMS"] = "cpu"  # before jax is imported anywhere

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jax
import numpy as np
import pytest
import redis
import uvicorn
from fastapi.testclient import TestClient

from cli.serve import uvicorn_options
from model.checkpoint import ModelCard, load, save
from model.events import make_events
from model.network import init_params
from model.spec import InputSpec, preset_config
from scripts.topology import Redis
from server.app import create_app
from server.registry import ModelRegistry, build_model
from server.settings import Settings
from tests.clients.proxy import Proxy

COCHLEA = "tiny-cochlea"
DVS = "tiny-dvs"


COCHLEA_SPEC = InputSpec(sensor="cochlea", dt_us=1000, channels=16)
DVS_SPEC = InputSpec(sensor="dvs", dt_us=2000, width=8, height=8, pool=2)


def write_tiny(root: Path, name: str, spec: InputSpec, n_classes: int, seed: int,
               gain: float) -> None:
    """A random-init tiny network whose input projections are scaled by ``gain`` so that its
    layers spike on the test recordings (at init they stay silent, and every stream's output
    would be the uniform distribution, whatever the server did with its state)."""
    cfg = preset_config("tiny", n_in=spec.features, n_classes=n_classes)
    card = ModelCard(name=name, architecture=cfg, input=spec,
                     labels=[f"class{i}" for i in range(n_classes)],
                     metrics={"accuracy": 0.0, "command": "random init (tests)"})
    params = init_params(jax.random.PRNGKey(seed), cfg)
    params = {**params, "layers": tuple({**layer, "B": layer["B"] * gain}
                                        for layer in params["layers"])}
    save(root / name, card, params)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checkpoints")
    write_tiny(root, COCHLEA, COCHLEA_SPEC, 4, seed=1, gain=6)
    write_tiny(root, DVS, DVS_SPEC, 3, seed=2, gain=8)
    return root


@pytest.fixture(scope="session")
def base_settings(checkpoints: Path) -> Settings:
    return Settings(checkpoints=checkpoints, session_buckets=(1, 16, 64), bin_buckets=(1, 16),
                    max_sessions=64, max_concurrent_infer=4, batch_max_wait_ms=2.0,
                    expiry_interval_s=0.05,
                    gc_freeze=False, gc_thresholds=None)  # many apps, one process


@pytest.fixture(scope="session")
def registry(checkpoints: Path, base_settings: Settings) -> ModelRegistry:
    """Built and compiled once; apps share it (one app runs at a time)."""
    reg = ModelRegistry([build_model(load(checkpoints / n), base_settings)
                         for n in (COCHLEA, DVS)])
    reg.warm(with_spikes=True)
    return reg


def wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 60
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the app never became ready"
        time.sleep(0.01)


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(base_settings: Settings, registry: ModelRegistry) -> Iterator[ClientFactory]:
    """Build a started, ready in-process client with setting overrides."""
    opened: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        settings = base_settings.model_copy(update=overrides)
        client = TestClient(create_app(settings, registry))
        client.__enter__()
        opened.append(client)
        wait_ready(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    return make_client()


@pytest.fixture
def make_live(base_settings: Settings, registry: ModelRegistry) -> Iterator[Callable[..., str]]:
    """Start a real uvicorn server on a free loopback port, in a thread; returns its URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(**overrides: object) -> str:
        settings = base_settings.model_copy(update=overrides)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        options = uvicorn_options(settings.model_copy(update={"host": "127.0.0.1", "port": port}))
        config = uvicorn.Config(create_app(settings, registry), **options, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "uvicorn never became ready"
            time.sleep(0.02)

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_url(make_live: Callable[..., str]) -> str:
    return make_live()


def cochlea_recording(seed: int, n: int = 400, duration_us: int = 150_000) -> np.ndarray:
    """Sorted random cochlea events over ``duration_us`` on 16 channels."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, duration_us, n))
    return make_events("cochlea", t=t, channel=rng.integers(0, 16, n))


def dvs_recording(seed: int, n: int = 400, duration_us: int = 150_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, duration_us, n))
    return make_events("dvs", t=t, x=rng.integers(0, 8, n), y=rng.integers(0, 8, n),
                       p=rng.integers(0, 2, n))


def columns(events: np.ndarray) -> dict[str, list[int]]:
    """JSON columns of an event array."""
    return {name: events[name].tolist() for name in events.dtype.names or ()}


@pytest.fixture
def prefix(redis_server: Redis) -> Iterator[str]:
    """A key prefix of this test alone, deleted afterwards."""
    value = f"s5rf-test-{uuid.uuid4().hex[:8]}:"
    yield value
    client = redis.Redis(port=redis_server.port)
    keys = list(client.scan_iter(f"{value}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def slow_redis(redis_server: Redis) -> Iterator[Proxy]:
    """Redis behind a proxy that can answer late."""
    proxy = Proxy(redis_server.port)
    yield proxy
    proxy.close()
