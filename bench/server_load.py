"""Load on the inference server: sessions streaming over WS and HTTP, against the raw engine
and a naive stateless server, in the scenarios of the serving targets.

A server process (``s5rf serve``) holds one random-init model (``--preset``, 140 input
channels, 20 classes, dt 4 ms). Every session streams its own synthetic cochlea recording
(``--rate-hz`` events/s) in chunks, either at sensor pace (chunk i sent i chunk periods after
the session's start; sessions start staggered over one period, as independent sensors do) or
flat out (the next chunk as soon as the previous answer arrives). Connections are opened
before the clock starts. Scenarios, all in one table:

  throughput   each ``--chunk-ms`` x each ``--sessions``, flat out, per transport
  latency      ``--latency-sessions`` at sensor pace with ``--latency-chunk-ms`` chunks
  ramp         real-time WS sessions with ``--ramp-chunk-ms`` chunks, ``--ramp`` counts in
               turn, stopping at the first that falls behind (p99 latency over one period)

Latency is client side, from the chunk's scheduled send time (at sensor pace) to its answer,
so a server that falls behind shows it. ``vs raw step`` is session-bins/s over the bare
jitted ``Engine.step`` on the same work (N sessions x one chunk per call) in this process;
``late/early`` is the median latency of each recording's last quarter of chunks over its
first quarter (flat near 1 when the cost per chunk does not grow with the history). ``server
CPU`` and ``client CPU`` are the CPU time (all threads, user + system) the server process and
this load generator spent per chunk: where a scenario's time goes on a shared box; ``GC
pause`` is the time the server spent in garbage collections during the scenario (from its
``/metrics``), when every request waits. The
naive alternative keeps no state: each chunk re-sends the whole recording so far to
``/v1/models/NAME/infer`` (useful work counted: only the new bins and events). ``--servers``
adds the same scenarios on stand-ins (bench/stand_ins.py) that split the cost per message:
the server with a model step that does nothing, its stream route answering frames unread, and
a bare uvicorn app that answers each frame.

    python -m bench.server_load [--sessions 1 16 128] [--chunk-ms 20 100 250] [--chunks 10]
                                [--servers s5rf no-model ws-route uvicorn-echo]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jax
import numpy as np
import orjson
import psutil
import uvloop
import websockets

from bench.common import best_time, print_table
from clients.replay import time_chunks
from model.checkpoint import ModelCard, load, save
from model.events import make_events
from model.network import init_params
from model.spec import InputSpec, preset_config
from model.streaming import Engine
from scripts.topology import free_port, ready, wait_until
from server.registry import build_model
from server.settings import Settings

CHANNELS, DOWNSAMPLE, CLASSES, DT_US = 700, 5, 20, 4000
NAME = "bench"
TARGET_RATIO, TARGET_P99_S, TARGET_SESSIONS = 0.75, 0.020, 1000  # the serving targets
# A session's whole run; returns when its last answer came (before it closes the session).
Runner = Callable[[str, list[np.ndarray], "Clock", list[float]], Awaitable[float]]


def recording(seed: int, duration_s: float, rate_hz: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(duration_s * rate_hz)
    t = np.sort(rng.integers(0, int(duration_s * 1e6), n))
    return make_events("cochlea", t=t, channel=rng.integers(0, CHANNELS, n))


@dataclasses.dataclass(frozen=True)
class ServerKind:
    """How to start a server under load; ``whole_api``: it answers HTTP sessions and /metrics
    too, not only the stream protocol."""

    module: list[str]
    whole_api: bool = True


# The server under load, and the stand-ins that give its floors (bench/stand_ins.py).
SERVERS = {"s5rf": ServerKind(["cli.main", "serve"]),
           "no-model": ServerKind(["bench.stand_ins", "no-model"]),
           "ws-route": ServerKind(["bench.stand_ins", "ws-route"]),
           "uvicorn-echo": ServerKind(["bench.stand_ins", "uvicorn-echo"], whole_api=False)}


@contextlib.contextmanager
def server(kind: str, root: Path, port: int,
           max_sessions: int) -> Iterator[tuple[str, psutil.Process]]:
    # Room for every session, and for every naive client's /infer at once.
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "S5RF_WARM_SPIKES": "false",
           "S5RF_MAX_SESSIONS": str(max_sessions),
           "S5RF_MAX_CONCURRENT_INFER": str(max_sessions), "S5RF_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", *SERVERS[kind].module, "--checkpoints",
                             str(root), "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: ready(url), f"the {kind} server", 600, proc)
        yield url, psutil.Process(proc.pid)
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


@dataclasses.dataclass
class Clock:
    """When a session sends chunk i: ``start + phase + i * pace`` at sensor pace, else now.

    Every session waits at ``barrier`` (all connections open) before the clock starts, and at
    it again (every session answered) before it closes: a session closing while others still
    stream would slow their last chunks with work that is not part of the scenario."""

    barrier: asyncio.Barrier
    pace_s: float | None
    phase_s: float
    start: float = 0.0

    async def begin(self) -> None:
        await self.barrier.wait()
        self.start = time.perf_counter() + self.phase_s

    async def finish(self) -> float:
        """Now (the session's last answer came), once every session has had its last."""
        done = time.perf_counter()
        await self.barrier.wait()
        return done

    async def due(self, i: int) -> float:
        """Wait until chunk i is due; its scheduled time (for flat out: now)."""
        if self.pace_s is None:
            return time.perf_counter()
        at = self.start + i * self.pace_s
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        return at


async def http_session(url: str, chunks: list[np.ndarray], clock: Clock,
                       latencies: list[float]) -> float:
    conn = await Connection.open(url)
    sid, auth = await open_session(conn)
    headers = {**auth, "content-type": "application/octet-stream"}
    await clock.begin()
    for i, chunk in enumerate(chunks):
        t = await clock.due(i)
        await conn.request("POST", f"/v1/sessions/{sid}/events", chunk.tobytes(), headers)
        latencies.append(time.perf_counter() - t)
    done = await clock.finish()
    await conn.request("DELETE", f"/v1/sessions/{sid}", headers=auth)
    conn.close()
    return done


async def ws_session(url: str, chunks: list[np.ndarray], clock: Clock,
                     latencies: list[float]) -> float:
    async with websockets.connect(url.replace("http", "ws") + "/v1/stream", max_size=None,
                                  compression=None, open_timeout=None) as ws:
        await ws.send(orjson.dumps({"model": NAME}).decode())
        opened = orjson.loads(await ws.recv())
        await clock.begin()
        for i, chunk in enumerate(chunks):
            t = await clock.due(i)
            await ws.send(chunk.tobytes())
            reply = orjson.loads(await ws.recv())
            assert reply["type"] == "result", reply
            latencies.append(time.perf_counter() - t)
        done = await clock.finish()
    conn = await Connection.open(url)
    await conn.request("DELETE", f"/v1/sessions/{opened['id']}",
                       headers={"X-Session-Token": opened["token"]})
    conn.close()
    return done


async def naive_session(url: str, chunks: list[np.ndarray], clock: Clock,
                        latencies: list[float]) -> float:
    conn = await Connection.open(url)
    await clock.begin()
    for i in range(len(chunks)):
        so_far = np.concatenate(chunks[: i + 1])
        t = await clock.due(i)
        await conn.request("POST", f"/v1/models/{NAME}/infer", so_far.tobytes(),
                           {"content-type": "application/octet-stream"})
        latencies.append(time.perf_counter() - t)
    done = await clock.finish()
    conn.close()
    return done


TRANSPORTS: dict[str, Runner] = {"ws": ws_session, "http": http_session,
                                 "naive http": naive_session}


async def drive(url: str, run: Runner, recordings: list[list[np.ndarray]],
               pace_s: float | None) -> tuple[np.ndarray, float]:
    """Latencies (sessions, chunks) in seconds, and the wall time from the clock's start to
    the last answer (closing the sessions is not part of the work)."""
    n = len(recordings)
    barrier = asyncio.Barrier(n + 1)
    latencies: list[list[float]] = [[] for _ in recordings]
    runs = asyncio.gather(*(
        run(url, rec, Clock(barrier, pace_s, pace_s * i / n if pace_s else 0.0), lat)
        for i, (rec, lat) in enumerate(zip(recordings, latencies, strict=True))))
    await _unless_failed(barrier.wait(), runs)
    start = time.perf_counter()
    await _unless_failed(barrier.wait(), runs)  # the barrier is cyclic: every last answer
    ends = await runs
    return np.array(latencies), max(ends) - start


async def _unless_failed(wait: Awaitable[int], runs: asyncio.Future[list[float]]) -> None:
    """Await ``wait``, or raise the error of a session that failed: it never reaches the
    barrier, which would otherwise wait for it for ever."""
    waiting = asyncio.ensure_future(wait)
    either: list[asyncio.Future[Any]] = [waiting, runs]
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if not waiting.done():
        waiting.cancel()
        runs.result()  # a session's error


def raw_engine_rate(engine: Engine, n: int, bins_per_chunk: int, features: int) -> float:
    """Session-bins/s of the bare jitted step: n sessions advanced by one chunk per call."""
    chunk = (np.random.default_rng(0).random((bins_per_chunk, features)) < 0.05).astype(
        np.float32)
    slots = list(range(1, n + 1))
    seconds = best_time(lambda: engine.step(slots, [chunk] * n), repeats=3,
                        number=max(1, 640 // n))
    return n * bins_per_chunk / seconds


@dataclasses.dataclass
class Bench:
    """One server and one engine; ``measure`` runs a scenario and returns its table row."""

    kind: str  # a key of SERVERS
    url: str
    server: psutil.Process
    engine: Engine
    features: int
    rate_hz: float
    raw: dict[tuple[int, int], float] = dataclasses.field(default_factory=dict)

    def measure(self, scenario: str, transport: str, n: int, chunk_ms: float, n_chunks: int,
                sensor_pace: bool) -> tuple[list[object], bool]:
        """The row, and whether the sessions kept up with real time (p99 within a period)."""
        chunk_us = int(chunk_ms * 1000)
        bins_per_chunk = max(1, chunk_us // DT_US)  # of the raw step's chunk
        duration_s = n_chunks * chunk_ms / 1e3
        # At most 16 recordings, shared round robin; at rate_hz no window is empty.
        distinct = [[c for _, c in time_chunks(recording(seed, duration_s, self.rate_hz), 0,
                                               chunk_us)][:n_chunks]
                    for seed in range(min(n, 16))]
        recordings = [distinct[i % len(distinct)] for i in range(n)]
        pace_s = chunk_ms / 1e3 if sensor_pace else None
        server_cpu, client_cpu = cpu_seconds(self.server), time.process_time()
        gc_s = self.gc_pause_seconds()
        with uvloop_runner() as runner:
            lat, wall = runner.run(drive(self.url, TRANSPORTS[transport], recordings, pace_s))
        server_cpu = cpu_seconds(self.server) - server_cpu
        client_cpu = time.process_time() - client_cpu
        gc_s = self.gc_pause_seconds() - gc_s
        n_sent = sum(len(rec) for rec in recordings)
        events = sum(len(c) for rec in recordings for c in rec)
        bins = n_sent * chunk_us / DT_US  # 62.5 per 250 ms chunk: bins close as time passes
        if (n, bins_per_chunk) not in self.raw:
            self.raw[n, bins_per_chunk] = raw_engine_rate(self.engine, n, bins_per_chunk,
                                                          self.features)
        quarter = max(1, n_chunks // 4)
        p99 = float(np.percentile(lat, 99))
        ratio = bins / wall / self.raw[n, bins_per_chunk]
        kept_up = p99 <= chunk_ms / 1e3
        if self.kind != "s5rf" and scenario != "ramp":  # the targets are the server's
            verdict = ""
        elif scenario == "throughput":
            verdict = (f"{ratio / TARGET_RATIO:.2f}x of >= {TARGET_RATIO:g}"
                       if n == 128 and not transport.startswith("naive") else "")
        elif scenario == "latency":
            verdict = f"{p99 / TARGET_P99_S:.2f}x of <= {TARGET_P99_S * 1e3:g} ms"
        else:
            verdict = "kept up" if kept_up else "fell behind"
        row: list[object] = [
            self.kind, scenario, transport, n, chunk_ms, "sensor" if sensor_pace else "flat out",
            1e3 * float(np.median(lat)), 1e3 * p99, events / wall, bins / wall, ratio,
            float(np.median(lat[:, -quarter:]) / np.median(lat[:, :quarter])),
            1e3 * server_cpu / n_sent, 1e3 * client_cpu / n_sent, 1e3 * gc_s, verdict]
        print(" | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row),
              flush=True)
        return row, kept_up


    def gc_pause_seconds(self) -> float:
        """The time the server has spent in garbage collections so far (every generation);
        NaN for a stand-in without metrics."""
        if not SERVERS[self.kind].whole_api:
            return float("nan")
        return gc_pause_seconds(self.url)


def gc_pause_seconds(url: str) -> float:
    """The time a server has spent in garbage collections so far (every generation)."""
    found = re.findall(r"s5rf_gc_pause_seconds_sum\{[^}]*\} (\S+)",
                       httpx.get(f"{url}/metrics").text)
    if not found:
        raise RuntimeError("the server's /metrics has no s5rf_gc_pause_seconds")
    return sum(map(float, found))


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU time of a process, all its threads."""
    times = process.cpu_times()
    return times.user + times.system


@contextlib.contextmanager
def uvloop_runner() -> Iterator[asyncio.Runner]:
    """The load generator on uvloop, as the server is: it shares the server's CPUs."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        yield runner


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="shd")
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 16, 128])
    ap.add_argument("--chunk-ms", type=float, nargs="+", default=[20.0, 100.0, 250.0])
    ap.add_argument("--chunks", type=int, default=10, help="chunks per session and run")
    ap.add_argument("--rate-hz", type=float, default=10_000, help="events per second")
    ap.add_argument("--transports", nargs="+", default=["ws", "http", "naive http"],
                    choices=list(TRANSPORTS))
    ap.add_argument("--naive-max-sessions", type=int, default=16,
                    help="skip the naive server above this many sessions (its cost is O(t^2))")
    ap.add_argument("--scenarios", nargs="+", default=["throughput", "latency", "ramp"],
                    choices=["throughput", "latency", "ramp"])
    ap.add_argument("--latency-sessions", type=int, default=128)
    ap.add_argument("--latency-chunk-ms", type=float, default=100.0)
    ap.add_argument("--ramp", type=int, nargs="*",
                    default=[100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500],
                    help="real-time WS session counts, in turn until one falls behind")
    ap.add_argument("--ramp-chunk-ms", type=float, default=250.0)
    ap.add_argument("--ramp-chunks", type=int, default=8)
    ap.add_argument("--servers", nargs="+", default=["s5rf"], choices=list(SERVERS),
                    help="s5rf, and the stand-ins that give its floors: no-model (the model "
                         "step does nothing), ws-route (the stream route answers frames "
                         "unread) and uvicorn-echo (a bare app, a fixed reply per frame)")
    args = ap.parse_args()
    jax.config.update("jax_platforms", "cpu")  # the raw step runs where the server does

    features = CHANNELS // DOWNSAMPLE
    cfg = preset_config(args.preset, n_in=features, n_classes=CLASSES)
    params = init_params(jax.random.PRNGKey(0), cfg)
    spec = InputSpec(sensor="cochlea", dt_us=DT_US, channels=CHANNELS, downsample=DOWNSAMPLE)
    most = max([*args.sessions, args.latency_sessions, *args.ramp])

    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        card = ModelCard(name=NAME, architecture=cfg, input=spec,
                         labels=[str(i) for i in range(CLASSES)])
        save(Path(tmp) / NAME, card, params)
        # The raw engine is built as the server builds its own (default settings): same
        # buckets and call sizes.
        engine = build_model(load(Path(tmp) / NAME),
                             Settings(checkpoints=Path(tmp), max_sessions=most)).engine
        engine.warmup()
        kept: dict[str, int] = {}
        for kind in args.servers:
            with server(kind, Path(tmp), free_port(), most) as (url, process):
                bench = Bench(kind, url, process, engine, features, args.rate_hz)
                kept[kind] = run_scenarios(bench, args, rows)
    print_table(
        f"s5rf serve under load: {args.preset} preset, {features} features, dt "
        f"{DT_US // 1000} ms, {args.rate_hz:g} events/s per sensor, {os.cpu_count()} CPUs "
        f"({jax.default_backend()})",
        ["server", "scenario", "transport", "sessions", "chunk ms", "pace", "p50 ms", "p99 ms",
         "events/s", "session-bins/s", "vs raw step", "late/early", "server CPU ms/chunk",
         "client CPU ms/chunk", "GC pause ms", "vs target"], rows)
    print(f"throughput target: >= {TARGET_RATIO:g} of the raw step at 128 sessions; latency "
          f"target: p99 <= {TARGET_P99_S * 1e3:g} ms")
    for kind, n in kept.items() if "ramp" in args.scenarios and args.ramp else ():
        print(f"{kind}: real-time WS sessions kept up: {n} of the {TARGET_SESSIONS} targeted "
              f"({n / TARGET_SESSIONS:.2f}x)")


def run_scenarios(bench: Bench, args: argparse.Namespace, rows: list[list[object]]) -> int:
    """Append the rows of every chosen scenario on one server; returns the most real-time
    sessions that kept up in the ramp; a stand-in without the whole API only over WebSocket."""
    transports = [t for t in args.transports if SERVERS[bench.kind].whole_api or t == "ws"]
    for chunk_ms in args.chunk_ms if "throughput" in args.scenarios else []:
        for n in args.sessions:
            for name in transports:
                if name.startswith("naive") and n > args.naive_max_sessions:
                    continue
                rows.append(bench.measure("throughput", name, n, chunk_ms, args.chunks,
                                          False)[0])
    for name in transports if "latency" in args.scenarios else []:
        if not name.startswith("naive"):
            rows.append(bench.measure("latency", name, args.latency_sessions,
                                      args.latency_chunk_ms, args.chunks, True)[0])
    kept = 0
    for n in args.ramp if "ramp" in args.scenarios else []:
        row, kept_up = bench.measure("ramp", "ws", n, args.ramp_chunk_ms, args.ramp_chunks,
                                     True)
        rows.append(row)
        if not kept_up:
            break
        kept = n
    return kept


if __name__ == "__main__":
    main()
