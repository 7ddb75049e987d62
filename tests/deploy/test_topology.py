"""The compose topology for real, on loopback: two ``s5rf serve`` processes, Redis, nginx.

Built once for the module (scripts/topology.py) on a tiny checkpoint. Redis is a redis-server
of the test's own on a free port when one is on PATH (so it can be stopped), else the shared
one on 127.0.0.1:6379 under a key prefix of this run. The replica-killing test runs last.
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import asyncio
import shutil
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import redis
import websockets
from websockets.asyncio.client import ClientConnection

from model.events import make_events
from scripts.topology import Redis, Topology, nginx_binary, redis_answers, topology
from tests.server.conftest import COCHLEA, COCHLEA_SPEC, write_tiny

MODEL = COCHLEA
REPLICA_ENV = {  # small compile set: these replicas start in seconds
    "S5RF_SESSION_BUCKETS": "[1,8]", "S5RF_BIN_BUCKETS": "[1,16]", "S5RF_WARM_SPIKES": "false",
    "S5RF_MAX_SESSIONS": "16", "S5RF_RETRY_AFTER_S": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"}
NO_NGINX = "nginx is not installed (apt-get install nginx; .ci/run does)"


def test_a_replica_that_cannot_start_fails_the_topology_at_once(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """An empty checkpoints folder stops `s5rf serve` at start: reported then, not after the
    readiness timeout (its exit status, not a TimeoutError)."""
    work = tmp_path_factory.mktemp("broken")
    (work / "checkpoints").mkdir()
    with pytest.raises(RuntimeError, match="exited with status"), topology(
            work / "checkpoints", work, Redis(6379), n_replicas=2, with_nginx=False,
            replica_env=REPLICA_ENV, timeout_s=600):
        pass


@pytest.fixture(scope="module")
def top(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    work = tmp_path_factory.mktemp("topology")
    if shutil.which("redis-server") is not None:
        store = Redis.start(work / "redis")
    elif redis_answers("127.0.0.1", 6379):
        store = Redis(6379)
    elif nginx_binary() is None:
        pytest.skip("neither Redis (redis-server, or one on 127.0.0.1:6379) nor nginx here")
    else:
        pytest.skip("no Redis: redis-server is not on PATH and nothing answers on "
                    "127.0.0.1:6379 (apt-get install redis-server)")
    write_tiny(work / "checkpoints", MODEL, COCHLEA_SPEC, 4, seed=1, gain=6)
    try:
        with topology(work / "checkpoints", work, store, replica_env=REPLICA_ENV) as built:
            yield built
            if store.proc is None:
                shared = redis.Redis(port=store.port)
                keys = list(shared.scan_iter(f"{built.key_prefix}*"))
                if keys:
                    shared.delete(*keys)
    finally:
        store.stop()


def recording(seed: int, n: int = 600, duration_us: int = 200_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, duration_us, n))
    return make_events("cochlea", t=t, channel=rng.integers(0, 16, n))


def body(events: np.ndarray, **opts: Any) -> dict[str, Any]:
    return {"t": events["t"].tolist(), "channel": events["channel"].tolist(), **opts}


def open_session(url: str) -> tuple[str, dict[str, str]]:
    r = httpx.post(f"{url}/v1/sessions", json={"model": MODEL}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["id"], {"X-Session-Token": r.json()["token"]}


def send(url: str, sid: str, headers: dict[str, str], events: np.ndarray, seq: int,
         flush: bool = False, patience_s: float = 20) -> dict[str, Any]:
    """Send batch ``seq`` until it is acknowledged: 200, or 409 carrying its first result."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            r = httpx.post(f"{url}/v1/sessions/{sid}/events", headers=headers, timeout=10,
                           json=body(events, seq=seq, flush=flush))
            if r.status_code == 200:
                result: dict[str, Any] = r.json()
                return result
            if r.status_code == 409 and "applied" in r.json():
                applied: dict[str, Any] = r.json()["applied"]
                return applied
            assert r.status_code in (502, 503, 504), r.text
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"batch {seq} never acknowledged"
        time.sleep(0.2)


def reference(url: str, events: np.ndarray) -> dict[str, Any]:
    """The whole recording in one batch on one replica: the uninterrupted run."""
    sid, headers = open_session(url)
    return send(url, sid, headers, events, seq=0, flush=True)


def assert_same_stream(got: dict[str, Any], want: dict[str, Any], n_events: int) -> None:
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-6)
    for key in ("bins", "spikes", "synops"):
        assert got[key]["total"] == want[key]["total"], key
    assert got["events"]["total_accepted"] == want["events"]["total_accepted"] == n_events
    assert got["events"]["total_dropped"] == 0


def test_batches_sent_alternately_to_both_replicas_match_one_replica(top: Topology) -> None:
    events = recording(seed=61)
    urls = [r.url for r in top.replicas]
    sid, headers = open_session(urls[0])
    chunks = np.array_split(events, 6)
    for i, chunk in enumerate(chunks):
        last = send(urls[i % 2], sid, headers, chunk, seq=i, flush=i == len(chunks) - 1)
    assert_same_stream(last, reference(urls[0], events), len(events))


def test_redis_outage_is_a_clean_503_and_service_recovers(top: Topology) -> None:
    if top.redis.proc is None:
        pytest.skip("the shared Redis is never stopped, and redis-server is not on PATH to "
                    "start one of the test's own")
    url = top.nginx_url or top.replicas[0].url
    events = recording(seed=62)
    chunks = np.array_split(events, 6)
    sid, headers = open_session(url)
    for i in range(3):
        send(url, sid, headers, chunks[i], seq=i)
    top.redis.stop()
    try:
        r = httpx.post(f"{url}/v1/sessions/{sid}/events", headers=headers, timeout=10,
                       json=body(chunks[3], seq=3))
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "1"
        assert "session store is unavailable" in r.json()["detail"]
        assert "resend a batch with the same seq" in r.json()["detail"]  # its save failed
        assert httpx.post(f"{url}/v1/sessions", json={"model": MODEL},
                          timeout=10).status_code == 503
        assert httpx.get(f"{url}/v1/sessions/{sid}", headers=headers,
                         timeout=10).status_code == 503
    finally:
        top.redis.restart()
    for i in range(3, len(chunks)):  # the same replicas, never restarted
        last = send(url, sid, headers, chunks[i], seq=i, flush=i == len(chunks) - 1)
    assert_same_stream(last, reference(url, events), len(events))


@pytest.mark.skipif(nginx_binary() is None, reason=NO_NGINX)
def test_websocket_through_nginx_resumes_on_the_replica_its_session_hashes_to(
        top: Topology) -> None:
    assert top.nginx_url is not None
    ws_url = top.nginx_url.replace("http://", "ws://") + "/v1/stream"
    events = recording(seed=64)
    chunks = np.array_split(events, 4)

    async def frames(ws: ClientConnection, first: int, last: int) -> dict[str, Any]:
        reply: dict[str, Any] = {}
        for i in range(first, last):
            await ws.send(orjson.dumps(body(chunks[i], seq=i, flush=i == 3)).decode())
            reply = orjson.loads(await ws.recv())
            assert reply["type"] == "result", reply
        return reply

    async def run() -> tuple[dict[str, Any], str, list[str]]:
        async with websockets.connect(ws_url) as ws:
            await ws.send(orjson.dumps({"model": MODEL}).decode())
            opened = orjson.loads(await ws.recv())
            await frames(ws, 0, 2)
        sid, token = opened["id"], opened["token"]
        mark = top.log_mark()
        send(top.nginx_url or "", sid, {"X-Session-Token": token}, chunks[2], seq=2)
        by_path = top.served_by(f"/v1/sessions/{sid}/events", mark)
        mark = top.log_mark()
        async with websockets.connect(f"{ws_url}?session={sid}") as ws:
            await ws.send(orjson.dumps({"session": sid, "token": token}).decode())
            resumed = orjson.loads(await ws.recv())
            assert resumed["resumed"] and resumed["seq"] == 2
            last = await frames(ws, 3, 4)
        # by the whole URI: the opening connection ("/v1/stream", spread by request id) may
        # be logged only now, when it has closed
        by_query = [top.served_by(f"/v1/stream?session={sid}", mark)]
        for n in range(3):  # a coin flip between two replicas, unless the hash routes it
            mark = top.log_mark()
            resume = f"/v1/stream?session={sid}&n={n}"  # its own line, whenever it is logged
            async with websockets.connect(ws_url.removesuffix("/v1/stream") + resume) as ws:
                await ws.send(orjson.dumps({"session": sid, "token": token}).decode())
                assert orjson.loads(await ws.recv())["resumed"]
            by_query.append(top.served_by(resume, mark))
        return last, by_path, by_query

    last, by_path, by_query = asyncio.run(run())
    assert by_query == [by_path] * 4
    assert_same_stream(last, reference(top.replicas[0].url, events), len(events))


@pytest.mark.skipif(nginx_binary() is None, reason=NO_NGINX)
def test_killing_the_replica_serving_a_stream_loses_nothing(top: Topology) -> None:
    assert top.nginx_url is not None
    url = top.nginx_url
    events = recording(seed=63)
    chunks = np.array_split(events, 8)
    sid, headers = open_session(url)
    last: dict[str, Any] = {}
    path, mark = f"/v1/sessions/{sid}/events", top.log_mark()
    for i, chunk in enumerate(chunks):
        if i == 4:  # SIGKILL the replica that served batch 3, while batch 4 is on its way
            serving = top.served_by(path, mark)
            victim = next(r for r in top.replicas if r.address == serving)
            threading.Timer(0.005, victim.kill).start()
        mark = top.log_mark()
        last = send(url, sid, headers, chunk, seq=i, flush=i == len(chunks) - 1)
    survivor = next(r for r in top.replicas if r.proc.poll() is None)
    assert top.served_by(path, mark) == survivor.address
    assert_same_stream(last, reference(survivor.url, events), len(events))
