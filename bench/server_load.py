"""Load on the inference server: N sessions streaming over WS and HTTP, against the raw engine
and a naive stateless server.

A server process (``s5rf serve``) holds one random-init model (``--preset``, 140 input
channels, 20 classes, dt 4 ms). Every session streams its own synthetic recording in chunks
of ``--chunk-ms``, either at sensor pace (one chunk per chunk period) or flat out (the next
chunk as soon as the previous answer arrives). For each transport and N we report the per-chunk
latency (p50, p99, client side), events/s and session-bins/s, and the ratio of the latter to
the raw jitted ``Engine.step`` on the same work (N sessions x one chunk per call) in this
process. The naive alternative keeps no state: each chunk re-sends the whole recording so far
to ``/v1/models/NAME/infer`` (useful work counted: only the new bins and events).

    python -m bench.server_load [--sessions 1 16 128] [--duration-s 1] [--chunk-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import jax
import numpy as np
import orjson
import websockets

from bench.common import best_time, print_table
from model.checkpoint import ModelCard, save
from model.events import make_events
from model.network import init_params
from model.spec import InputSpec, preset_config
from model.streaming import Engine

CHANNELS, DOWNSAMPLE, CLASSES, DT_US = 700, 5, 20, 4000
SESSION_BUCKETS, BIN_BUCKETS = (1, 16, 128), (1, 8, 64)
NAME = "bench"
Runner = Callable[[str, list[np.ndarray], float | None, list[float]], Awaitable[None]]


def recording(seed: int, duration_s: float, rate_hz: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(duration_s * rate_hz)
    t = np.sort(rng.integers(0, int(duration_s * 1e6), n))
    return make_events("cochlea", t=t, channel=rng.integers(0, CHANNELS, n))


def chunks_of(events: np.ndarray, chunk_us: int) -> list[np.ndarray]:
    edges = np.searchsorted(events["t"], np.arange(chunk_us, events["t"][-1] + chunk_us,
                                                   chunk_us))
    return np.split(events, edges)


@contextlib.contextmanager
def server(root: Path, port: int) -> Iterator[str]:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "S5RF_WARM_SPIKES": "false",
           "S5RF_MAX_SESSIONS": "1024", "S5RF_SESSION_BUCKETS": str(list(SESSION_BUCKETS)),
           "S5RF_BIN_BUCKETS": str(list(BIN_BUCKETS)), "S5RF_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--checkpoints",
                             str(root), "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, one per session: the load
    generator shares the server's CPUs, and httpx alone tops out near 230 requests/s on 2."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> bytes:
        """The response body; raises unless the status is 2xx."""
        head = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.writer.write(f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: "
                          f"{len(body)}\r\n{head}\r\n".encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        data = await self.reader.readexactly(length)
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {path}: {status} {data[:200]!r}")
        return data

    def close(self) -> None:
        self.writer.close()


async def open_session(conn: Connection) -> tuple[str, dict[str, str]]:
    r = orjson.loads(await conn.request("POST", "/v1/sessions",
                                        orjson.dumps({"model": NAME}),
                                        {"content-type": "application/json"}))
    return r["id"], {"X-Session-Token": r["token"]}


async def http_session(url: str, chunks: list[np.ndarray], pace_s: float | None,
                       latencies: list[float]) -> None:
    conn = await Connection.open(url)
    sid, auth = await open_session(conn)
    headers = {**auth, "content-type": "application/octet-stream"}
    start = time.perf_counter()
    for i, chunk in enumerate(chunks):
        await pace(start, i, pace_s)
        t = time.perf_counter()
        await conn.request("POST", f"/v1/sessions/{sid}/events", chunk.tobytes(), headers)
        latencies.append(time.perf_counter() - t)
    await conn.request("DELETE", f"/v1/sessions/{sid}", headers=auth)
    conn.close()


async def ws_session(url: str, chunks: list[np.ndarray], pace_s: float | None,
                     latencies: list[float]) -> None:
    async with websockets.connect(url.replace("http", "ws") + "/v1/stream",
                                  max_size=None) as ws:
        await ws.send(orjson.dumps({"model": NAME}).decode())
        opened = orjson.loads(await ws.recv())
        start = time.perf_counter()
        for i, chunk in enumerate(chunks):
            await pace(start, i, pace_s)
            t = time.perf_counter()
            await ws.send(chunk.tobytes())
            reply = orjson.loads(await ws.recv())
            assert reply["type"] == "result", reply
            latencies.append(time.perf_counter() - t)
    conn = await Connection.open(url)
    await conn.request("DELETE", f"/v1/sessions/{opened['id']}",
                       headers={"X-Session-Token": opened["token"]})
    conn.close()


async def naive_session(url: str, chunks: list[np.ndarray], pace_s: float | None,
                        latencies: list[float]) -> None:
    conn = await Connection.open(url)
    start = time.perf_counter()
    for i in range(len(chunks)):
        await pace(start, i, pace_s)
        so_far = np.concatenate(chunks[: i + 1])
        t = time.perf_counter()
        await conn.request("POST", f"/v1/models/{NAME}/infer", so_far.tobytes(),
                           {"content-type": "application/octet-stream"})
        latencies.append(time.perf_counter() - t)
    conn.close()


async def pace(start: float, i: int, pace_s: float | None) -> None:
    if pace_s is not None:
        await asyncio.sleep(max(0.0, start + i * pace_s - time.perf_counter()))


async def load(url: str, run: Runner, recordings: list[list[np.ndarray]],
               pace_s: float | None) -> tuple[list[float], float]:
    latencies: list[float] = []
    start = time.perf_counter()
    await asyncio.gather(*(run(url, rec, pace_s, latencies) for rec in recordings))
    return latencies, time.perf_counter() - start


def raw_engine_rate(engine: Engine, n: int, bins_per_chunk: int, features: int) -> float:
    """Session-bins/s of the bare jitted step: n sessions advanced by one chunk per call."""
    chunk = (np.random.default_rng(0).random((bins_per_chunk, features)) < 0.05).astype(
        np.float32)
    slots = list(range(1, n + 1))
    seconds = best_time(lambda: engine.step(slots, [chunk] * n), repeats=3, number=5)
    return n * bins_per_chunk / seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="shd")
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 16, 128])
    ap.add_argument("--duration-s", type=float, default=1.0, help="recording length")
    ap.add_argument("--chunk-ms", type=float, default=20.0)
    ap.add_argument("--rate-hz", type=float, default=10_000, help="events per second")
    ap.add_argument("--transports", nargs="+", default=["ws", "http", "naive http"],
                    choices=["ws", "http", "naive http"])
    ap.add_argument("--naive-max-sessions", type=int, default=16,
                    help="skip the naive server above this many sessions (its cost is O(t^2))")
    args = ap.parse_args()

    features = CHANNELS // DOWNSAMPLE
    cfg = preset_config(args.preset, n_in=features, n_classes=CLASSES)
    params = init_params(jax.random.PRNGKey(0), cfg)
    spec = InputSpec(sensor="cochlea", dt_us=DT_US, channels=CHANNELS, downsample=DOWNSAMPLE)
    chunk_us = int(args.chunk_ms * 1000)
    bins_per_chunk = chunk_us // DT_US
    engine = Engine(cfg, params, capacity=max(args.sessions), session_buckets=SESSION_BUCKETS,
                    bin_buckets=BIN_BUCKETS)
    engine.warmup()

    transports: dict[str, Runner] = {"ws": ws_session, "http": http_session,
                                     "naive http": naive_session}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        card = ModelCard(name=NAME, architecture=cfg, input=spec,
                         labels=[str(i) for i in range(CLASSES)])
        save(Path(tmp) / NAME, card, params)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with server(Path(tmp), port) as url:
            for n in args.sessions:
                recordings = [chunks_of(recording(seed, args.duration_s, args.rate_hz), chunk_us)
                              for seed in range(n)]
                events = sum(len(c) for rec in recordings for c in rec)
                bins = n * int(args.duration_s * 1e6) // DT_US
                raw = raw_engine_rate(engine, n, bins_per_chunk, features)
                for name in args.transports:
                    run = transports[name]
                    if name.startswith("naive") and n > args.naive_max_sessions:
                        continue
                    for pace_name, pace_s in (("sensor", args.chunk_ms / 1e3), ("flat out", None)):
                        lat, wall = asyncio.run(load(url, run, recordings, pace_s))
                        rows.append([name, n, pace_name, 1e3 * float(np.percentile(lat, 50)),
                                     1e3 * float(np.percentile(lat, 99)), events / wall,
                                     bins / wall, bins / wall / raw])
    print_table(
        f"s5rf serve under load: {args.preset} preset, {features} features, chunks of "
        f"{args.chunk_ms:g} ms ({bins_per_chunk} bins), {args.rate_hz:g} events/s per sensor, "
        f"{os.cpu_count()} CPUs ({jax.default_backend()})",
        ["transport", "sessions", "pace", "p50 ms", "p99 ms", "events/s", "session-bins/s",
         "vs raw step"], rows)


if __name__ == "__main__":
    main()
