"""What the shared session store costs per batch: memory vs Redis, side by side.

Two ``s5rf serve`` processes on the same checkpoint, one per store
(``S5RF_SESSION_STORE=memory`` and the Redis URL), measured in alternating rounds. S sessions
stream concurrently, each sending ``--batches`` batches of ``--batch-ms`` of random sensor
events flat out (the next as soon as the previous is answered), so the server still batches
across sessions. With Redis every
batch also reads the session's state row, encodes it and writes it with the check-and-set
script before it is answered. Reported: the snapshot size; per S, client-side latency per
batch (p50, p99), batches/s sustained (from the first batch sent to the last answered: opening
and closing the sessions are not timed) and the Redis/memory ratios; then the store's own
steps timed alone (read the row, encode, check-and-set) on the CPU, as the servers run.

    python -m bench.store [--checkpoints checkpoints] [--model digits-dvs] [--sessions 1 8 32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jax
import numpy as np
import redis

from bench.common import best_time, print_table
from model.binning import BinnerState
from model.checkpoint import discover, read_card
from model.checkpoint import load as load_checkpoint
from model.events import make_events
from model.spec import InputSpec
from model.streaming import Engine
from scripts.topology import ready, start_replica, wait_until
from server.state_codec import SessionSnapshot, Totals, encode
from server.store import StoredSession
from server.store_redis import RedisStore

SERVER_ENV = {"S5RF_SESSION_BUCKETS": "[1,8,32]", "S5RF_BIN_BUCKETS": "[4,16]",
              "S5RF_WARM_SPIKES": "false", "S5RF_MAX_SESSIONS": "64"}


def batch_events(spec: InputSpec, rng: np.random.Generator, t0: int, span_us: int,
                 n: int) -> np.ndarray:
    """``n`` random events of the model's sensor in [t0, t0 + span_us), sorted."""
    t = np.sort(rng.integers(t0, t0 + span_us, n))
    if spec.sensor == "cochlea":
        return make_events("cochlea", t=t, channel=rng.integers(0, spec.channels or 1, n))
    return make_events("dvs", t=t, x=rng.integers(0, spec.width or 1, n),
                       y=rng.integers(0, spec.height or 1, n), p=rng.integers(0, 2, n))


async def one_session(client: httpx.AsyncClient, model: str, spec: InputSpec, seed: int,
                      batches: int, batch_us: int, n_events: int,
                      latencies: list[float]) -> tuple[float, float]:
    """Open a session, send its batches, close it; when its first batch was sent and its
    last one answered."""
    r = await client.post("/v1/sessions", json={"model": model})
    r.raise_for_status()
    sid, headers = r.json()["id"], {"X-Session-Token": r.json()["token"]}
    rng = np.random.default_rng(seed)
    first = time.perf_counter()
    for i in range(batches):
        ev = batch_events(spec, rng, i * batch_us, batch_us, n_events)
        body = {name: ev[name].tolist() for name in ev.dtype.names or ()}
        start = time.perf_counter()
        r = await client.post(f"/v1/sessions/{sid}/events", headers=headers,
                              json={**body, "seq": i})
        latencies.append(time.perf_counter() - start)
        r.raise_for_status()
    last = time.perf_counter()
    await client.delete(f"/v1/sessions/{sid}", headers=headers)
    return first, last


async def load(url: str, model: str, spec: InputSpec, sessions: int, batches: int,
               batch_us: int, n_events: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=sessions + 4)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        spans = await asyncio.gather(*(one_session(client, model, spec, s, batches, batch_us,
                                                   n_events, latencies)
                                       for s in range(sessions)))
        firsts, lasts = zip(*spans, strict=True)
        return latencies, max(lasts) - min(firsts)


async def snapshot_bytes(url: str, model: str) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        r = await client.post("/v1/sessions", json={"model": model})
        r.raise_for_status()
        state = await client.get(f"/v1/sessions/{r.json()['id']}/state",
                                 headers={"X-Session-Token": r.json()["token"]})
        return len(state.content)


@contextlib.contextmanager
def server(store: str, args: argparse.Namespace, work: Path) -> Iterator[str]:
    """A ready ``s5rf serve`` on ``store`` (its keys, under a fresh prefix, deleted after)."""
    prefix = f"s5rf-bench-{uuid.uuid4().hex[:8]}:"
    replica = start_replica(args.checkpoints, store, prefix, work / f"{store[:5]}.log",
                            SERVER_ENV)
    try:
        wait_until(lambda: ready(replica.url), f"server ({store})", 600)
        yield replica.url
    finally:
        replica.proc.terminate()
        replica.proc.wait(30)
        if store != "memory":
            client = redis.Redis.from_url(store)
            keys = list(client.scan_iter(f"{prefix}*"))
            if keys:
                client.delete(*keys)


def measure(url: str, args: argparse.Namespace, spec: InputSpec,
            sessions: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, batches/s) of one round."""
    lat, wall = asyncio.run(load(url, args.model, spec, sessions, args.batches,
                                 args.batch_ms * 1000, args.events))
    return (float(np.percentile(lat, 50)) * 1e3, float(np.percentile(lat, 99)) * 1e3,
            len(lat) / wall)


def store_parts(args: argparse.Namespace) -> list[tuple[str, float]]:
    """Milliseconds of each step the Redis store adds to a batch, timed alone in this process:
    reading the state row, encoding the snapshot, the check-and-set round trip."""
    ckpt = load_checkpoint(args.checkpoints / args.model)
    engine = Engine(ckpt.cfg, ckpt.params, capacity=2, session_buckets=(1,), bin_buckets=(4,))
    engine.warmup()
    C, L = ckpt.cfg.n_classes, ckpt.cfg.n_layers
    snap = SessionSnapshot(model=args.model, version="bench", sensor=ckpt.card.input.sensor,
                           late="reject", origin=None, seq=0,
                           binner=BinnerState.start(ckpt.card.input, None),
                           totals=Totals(spikes=np.zeros(L, np.int64)),
                           log_probs=np.zeros(C, np.float32), state=engine.read(1))
    blob = encode(snap)

    async def saves(n: int) -> float:
        store = RedisStore(args.redis, f"s5rf-bench-{uuid.uuid4().hex[:8]}:", ttl_s=60,
                           timeout_s=2.0)
        start = time.perf_counter()
        for v in range(1, n + 1):
            await store.save("parts", StoredSession(v, args.model, "token", blob))
        elapsed = (time.perf_counter() - start) / n
        await store.delete("parts")
        await store.close()
        return elapsed

    return [("read state row", best_time(lambda: engine.read(1), number=100) * 1e3),
            ("encode snapshot", best_time(lambda: encode(snap), number=100) * 1e3),
            ("check-and-set in Redis", asyncio.run(saves(500)) * 1e3)]


def best(rounds: tuple[tuple[float, float, float], ...]) -> tuple[float, float, float]:
    """The lowest p50 and p99 and the highest throughput over the rounds."""
    p50, p99, bps = zip(*rounds, strict=True)
    return min(p50), min(p99), max(bps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    ap.add_argument("--model", help="checkpoint name (default: the first found)")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--batches", type=int, default=40, help="batches per session")
    ap.add_argument("--batch-ms", type=int, default=20, help="sensor time per batch")
    ap.add_argument("--events", type=int, default=200, help="events per batch")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per store")
    args = ap.parse_args()
    jax.config.update("jax_platforms", "cpu")  # the servers' platform (scripts/topology.py)
    cards = {c.name: c for c in map(read_card, discover(args.checkpoints))}
    args.model = args.model or next(iter(cards))
    spec = cards[args.model].input
    rows = []
    with tempfile.TemporaryDirectory() as tmp, \
            server("memory", args, Path(tmp)) as mem_url, \
            server(args.redis, args, Path(tmp)) as redis_url:
        for url in (mem_url, redis_url):  # warm the HTTP path
            asyncio.run(load(url, args.model, spec, 1, 5, args.batch_ms * 1000, args.events))
        print(f"snapshot: {asyncio.run(snapshot_bytes(redis_url, args.model)):,} bytes "
              "per session")
        for S in args.sessions:
            # Rounds alternate between the two servers and the best of each is kept, so a
            # busy machine slows both alike rather than whichever ran second.
            mem, red = zip(*((measure(mem_url, args, spec, S), measure(redis_url, args, spec, S))
                             for _ in range(args.rounds)), strict=True)
            (m50, m99, mbps), (r50, r99, rbps) = best(mem), best(red)
            rows.append((S, m50, r50, r50 / m50, m99, r99, mbps, rbps, rbps / mbps))
    print_table(
        f"per batch, memory vs Redis: {args.model}, {args.events} events / {args.batch_ms} ms "
        f"per batch, {os.cpu_count()} cores (server and client share them)",
        ["sessions", "p50 ms mem", "p50 ms redis", "p50 ratio", "p99 ms mem", "p99 ms redis",
         "batches/s mem", "batches/s redis", "throughput ratio"], rows)
    print_table(f"the Redis store's steps alone, {args.model}", ["step", "ms"],
                store_parts(args))


if __name__ == "__main__":
    main()
