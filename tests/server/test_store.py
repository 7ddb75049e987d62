"""Shared session store (Redis): two apps act as two replicas of one server.

Any replica serves any session with the same results as one; a stale copy is reloaded, never
merged; a retried batch that landed is answered with its first result, not applied twice,
also when the store's answer came too late;
an evicted copy in use is reloaded; records expire; the state export of one server continues
on another.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from collections.abc import Callable
from typing import Any

import httpx
import msgpack
import numpy as np
import orjson
import pytest
import redis
import websockets
from fastapi.testclient import TestClient
from websockets.exceptions import ConnectionClosed

from model.events import make_events
from scripts.topology import Redis
from server.errors import ApiError
from server.inference import process_chunk
from server.routes.sessions import STATE_TYPE
from server.runtime import Runtime
from server.schemas import ChunkOptions
from server.store import StaleVersion, StoredSession, StoreUnavailable, UnconfirmedWrite
from server.store_redis import RedisStore
from tests.clients.proxy import Proxy
from tests.server.conftest import COCHLEA, DVS, ClientFactory, cochlea_recording, columns
from tests.server.test_errors import state_of
from tests.server.test_stream import recv, seq_frames, ws_url


@pytest.fixture
def pair(make_client: ClientFactory, redis_server: Redis,
         prefix: str) -> tuple[TestClient, TestClient]:
    settings = {"session_store": redis_server.url, "session_store_prefix": prefix}
    return make_client(**settings), make_client(**settings)


def open_on(client: TestClient, model: str = COCHLEA) -> tuple[str, dict[str, str]]:
    r = client.post("/v1/sessions", json={"model": model})
    assert r.status_code == 201, r.text
    return r.json()["id"], {"X-Session-Token": r.json()["token"]}


def feed(client: TestClient, sid: str, headers: dict[str, str], events: np.ndarray,
         **opts: Any) -> dict[str, Any]:
    r = client.post(f"/v1/sessions/{sid}/events", json={**columns(events), **opts},
                    headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def stream(clients: list[TestClient], events: np.ndarray, cuts: int = 6) -> dict[str, Any]:
    """Open a session on the first client, send batch i to clients[i % len(clients)]."""
    sid, headers = open_on(clients[0])
    chunks = np.array_split(events, cuts)
    result: dict[str, Any] = {}
    for i, chunk in enumerate(chunks):
        result = feed(clients[i % len(clients)], sid, headers, chunk, seq=i,
                      flush=i == cuts - 1)
    return result


def totals(result: dict[str, Any]) -> dict[str, Any]:
    """What a stream has seen so far, however it was cut into batches."""
    return {"bins": result["bins"]["total"], "spikes": result["spikes"]["total"],
            "synops": result["synops"]["total"], "label": result["label"],
            "accepted": result["events"]["total_accepted"],
            "dropped": result["events"]["total_dropped"]}


def assert_same_stream(got: dict[str, Any], want: dict[str, Any]) -> None:
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-6)
    assert totals(got) == totals(want)


def test_batches_alternating_between_replicas_match_one_replica(
        pair: tuple[TestClient, TestClient]) -> None:
    a, b = pair
    events = cochlea_recording(seed=51)
    alternating = stream([a, b], events)
    assert_same_stream(alternating, stream([a], events))
    assert alternating["events"]["total_accepted"] == len(events)


def test_retried_batch_that_landed_is_acknowledged_not_applied_again(
        pair: tuple[TestClient, TestClient]) -> None:
    a, b = pair
    events = cochlea_recording(seed=52)
    sid, headers = open_on(a)
    feed(a, sid, headers, events[:150], seq=0)
    first = feed(a, sid, headers, events[150:300], seq=1)
    retry = b.post(f"/v1/sessions/{sid}/events", json={**columns(events[150:300]), "seq": 1},
                   headers=headers)  # as if replica a died before answering
    assert retry.status_code == 409 and "already applied" in retry.json()["detail"]
    applied = retry.json()["applied"]
    assert {k: v for k, v in applied.items() if k != "server_time_ms"} == \
        {k: v for k, v in first.items() if k != "server_time_ms"}
    info = b.get(f"/v1/sessions/{sid}", headers=headers).json()
    assert info["events_accepted"] == 300 and info["seq"] == 1
    last = feed(b, sid, headers, events[300:], seq=2, flush=True)
    ref_id, ref_headers = open_on(a)
    feed(a, ref_id, ref_headers, events[:300])
    assert_same_stream(last, feed(a, ref_id, ref_headers, events[300:], flush=True))


def test_a_copy_far_behind_the_store_takes_what_the_stored_session_takes(
        make_client: ClientFactory, redis_server: Redis, prefix: str) -> None:
    settings = {"session_store": redis_server.url, "session_store_prefix": prefix,
                "max_bins_per_request": 45}  # 1 ms bins: at most 41 a batch
    a, b = make_client(**settings), make_client(**settings)
    events = cochlea_recording(seed=58)
    cuts = [np.flatnonzero(events["t"] >= t)[0] for t in (20_000, 50_000, 80_000, 110_000)]
    batches = np.split(events, cuts)
    sid, headers = open_on(a)
    feed(a, sid, headers, batches[0])
    for batch in batches[1:-1]:  # a's copy falls 90 bins behind
        feed(b, sid, headers, batch)
    last = feed(a, sid, headers, batches[-1], flush=True)  # 110-150 ms: 41 bins from the store
    ref_id, ref_headers = open_on(b)
    for batch in batches[:-1]:
        feed(b, ref_id, ref_headers, batch)
    assert_same_stream(last, feed(b, ref_id, ref_headers, batches[-1], flush=True))


def stale_on_second(a: TestClient, b: TestClient,
                    events: np.ndarray) -> tuple[str, dict[str, str]]:
    """A session fed its first 300 events (seq 0-2) so that ``b``'s cached copy is one version
    behind the store."""
    sid, headers = open_on(a)
    feed(a, sid, headers, events[:100], seq=0)
    feed(b, sid, headers, events[100:200], seq=1)  # b now caches the session
    feed(a, sid, headers, events[200:300], seq=2)  # b's copy is now one version behind
    return sid, headers


def test_stale_copy_is_reloaded_not_merged(pair: tuple[TestClient, TestClient]) -> None:
    a, b = pair
    events = cochlea_recording(seed=53)
    sid, headers = stale_on_second(a, b, events)
    last = feed(b, sid, headers, events[300:], seq=3, flush=True)  # refused, reloaded, redone
    assert last["events"]["total_accepted"] == len(events)
    ref_id, ref_headers = open_on(a)
    assert_same_stream(last, feed(a, ref_id, ref_headers, events, flush=True))


def test_a_websocket_resume_reports_the_stores_seq_not_a_stale_copys(
        pair: tuple[TestClient, TestClient]) -> None:
    a, b = pair
    sid, headers = stale_on_second(a, b, cochlea_recording(seed=54))
    with b.websocket_connect("/v1/stream") as ws:
        ws.send_text(orjson.dumps({"session": sid, "token": headers["X-Session-Token"]}).decode())
        opened = orjson.loads(ws.receive_bytes())
    assert opened["resumed"] and opened["seq"] == 2 and opened["events_accepted"] == 300


def test_a_copy_behind_that_computes_the_stored_record_is_not_taken_for_its_writer(
        pair: tuple[TestClient, TestClient]) -> None:
    """Replica b's copy is a version behind when it applies the batch a just applied (no
    seq, no bin closed): the record it computes is the one a stored, byte for byte. Its write
    is a rival's all the same, so b reloads and applies the batch again: both count."""
    a, b = pair
    sid, headers = open_on(a)
    assert b.get(f"/v1/sessions/{sid}", headers=headers).status_code == 200  # b caches v1
    batch = {"t": [100, 200], "channel": [1, 2]}  # both in the open first bin
    for replica in (a, b):
        r = replica.post(f"/v1/sessions/{sid}/events", json=batch, headers=headers)
        assert r.status_code == 200, r.text
    assert r.json()["events"]["total_accepted"] == 4
    assert a.get(f"/v1/sessions/{sid}", headers=headers).json()["events_accepted"] == 4


def test_two_writers_of_one_version_never_both_succeed(redis_server: Redis,
                                                       prefix: str) -> None:
    async def race() -> list[BaseException | None]:
        store = RedisStore(redis_server.url, prefix, ttl_s=60, timeout_s=2.0)
        base = StoredSession(version=1, model=COCHLEA, token_sha256="t", snapshot=b"v1")
        await store.save("s", base)
        writes = [StoredSession(version=2, model=COCHLEA, token_sha256="t", snapshot=s)
                  for s in (b"from-a", b"from-b")]
        outcomes = await asyncio.gather(*(store.save("s", w) for w in writes),
                                        return_exceptions=True)
        stored = await store.load("s")
        await store.close()
        assert stored is not None and stored.version == 2
        assert stored.snapshot in (b"from-a", b"from-b")
        return [o if isinstance(o, BaseException) else None for o in outcomes]

    outcomes = asyncio.run(race())
    assert sorted(type(o).__name__ for o in outcomes) == ["NoneType", "StaleVersion"]
    assert any(isinstance(o, StaleVersion) for o in outcomes)


def test_a_write_resent_after_its_reply_was_lost_is_not_taken_for_a_rival(
        redis_server: Redis, prefix: str) -> None:
    async def resend() -> None:
        store = RedisStore(redis_server.url, prefix, ttl_s=60, timeout_s=2.0)
        ours = StoredSession(version=1, model=COCHLEA, token_sha256="t", snapshot=b"v1",
                             ack=b"r1")
        await store.save("s", ours)
        await store.save("s", ours)  # the same script again, as redis-py resends it
        with pytest.raises(StaleVersion):  # the same version with other contents is a rival's
            await store.save("s", StoredSession(version=1, model=COCHLEA, token_sha256="t",
                                                snapshot=b"other", ack=b"r1"))
        with pytest.raises(StaleVersion):  # and so is another write of the very same contents
            await store.save("s", StoredSession(version=1, model=COCHLEA, token_sha256="t",
                                                snapshot=b"v1", ack=b"r1"))
        await store.close()

    asyncio.run(resend())


def test_a_batch_whose_save_was_not_confirmed_is_resent_and_applied_once(
        make_client: ClientFactory, slow_redis: Proxy, prefix: str) -> None:
    replica = make_client(session_store=f"redis://127.0.0.1:{slow_redis.port}",
                          session_store_prefix=prefix, session_store_timeout_s=0.3)
    events = cochlea_recording(seed=57)
    sid, headers = open_on(replica)
    feed(replica, sid, headers, events[:150], seq=0)
    slow_redis.hold(2, seconds=1.0, marker=b"EVALSHA")  # stored, but every answer too late
    body = {**columns(events[150:300]), "seq": 1}
    r = replica.post(f"/v1/sessions/{sid}/events", json=body, headers=headers)
    assert r.status_code == 503 and "may or may not have been saved" in r.json()["detail"], r.text
    resent = replica.post(f"/v1/sessions/{sid}/events", json=body, headers=headers)
    assert resent.status_code == 409 and resent.json()["applied"]["seq"] == 1, resent.text
    last = feed(replica, sid, headers, events[300:], seq=2, flush=True)
    # The batch that landed unconfirmed is counted once it is known to have landed.
    assert events_counted(replica) == len(events) == last["events"]["total_accepted"]
    ref_id, ref_headers = open_on(replica)
    assert_same_stream(last, feed(replica, ref_id, ref_headers, events, flush=True))


@pytest.mark.parametrize("evicted", [False, True])
def test_a_batch_without_seq_whose_save_was_not_confirmed_is_counted_once_read_back(
        make_client: ClientFactory, slow_redis: Proxy, prefix: str, evicted: bool) -> None:
    """Without a seq the client reads the session after the 503 (as it says): that read
    finds the very record the replica saved, so the batch, applied, is counted; also when the
    replica evicted its copy at the slot cap first, and the read loads the session anew."""
    replica = make_client(session_store=f"redis://127.0.0.1:{slow_redis.port}",
                          session_store_prefix=prefix, session_store_timeout_s=0.3,
                          max_sessions=2)
    events = cochlea_recording(seed=59)
    sid, headers = open_on(replica)
    feed(replica, sid, headers, events[:150])
    slow_redis.hold(2, seconds=1.0, marker=b"EVALSHA")  # stored, but every answer too late
    r = replica.post(f"/v1/sessions/{sid}/events", json=columns(events[150:300]),
                     headers=headers)
    assert r.status_code == 503 and "may or may not have been saved" in r.json()["detail"], r.text
    assert events_counted(replica) == 150
    if evicted:
        open_on(replica)
        open_on(replica)  # at the cap: the idle copy of sid makes room
        assert replica.app.state.runtime.sessions.local.get(sid) is None  # type: ignore[attr-defined]
    read = replica.get(f"/v1/sessions/{sid}", headers=headers)
    assert read.status_code == 200 and read.json()["events_accepted"] == 300, read.text
    assert events_counted(replica) == 300
    last = feed(replica, sid, headers, events[300:], flush=True)
    assert events_counted(replica) == len(events) == last["events"]["total_accepted"]


def test_an_unconfirmed_batch_is_not_counted_when_the_store_holds_another_result(
        make_client: ClientFactory, slow_redis: Proxy, prefix: str) -> None:
    """Batch 1's save is answered too late, and when the replica reloads the session the
    record holds another result (as if another replica had written it): the batch is not
    counted here, where nothing shows that it landed."""
    replica = make_client(session_store=f"redis://127.0.0.1:{slow_redis.port}",
                          session_store_prefix=prefix, session_store_timeout_s=0.3)
    events = cochlea_recording(seed=61)
    sid, headers = open_on(replica)
    feed(replica, sid, headers, events[:150], seq=0)
    slow_redis.hold(2, seconds=1.0, marker=b"EVALSHA")
    body = {**columns(events[150:300]), "seq": 1}
    r = replica.post(f"/v1/sessions/{sid}/events", json=body, headers=headers)
    assert r.status_code == 503, r.text
    rival = redis.Redis(port=slow_redis.upstream_port)  # another writer replaces the record
    key = next(k for k in rival.scan_iter(f"{prefix}*") if sid.encode() in k)
    rival.hset(key, "ack", orjson.dumps({"seq": 1, "written_by": "another replica"}))
    resent = replica.post(f"/v1/sessions/{sid}/events", json=body, headers=headers)
    assert resent.status_code == 409, resent.text  # seq 1 stands in the record ...
    assert events_counted(replica) == 150  # ... but the result landed is not ours: not counted


def events_counted(client: TestClient) -> float:
    found = re.search(rf's5rf_events_total\{{model="{COCHLEA}"\}} (\S+)',
                      client.get("/metrics").text)
    return float(found[1]) if found else 0.0


def test_a_websocket_frame_the_store_failed_ends_the_connection_before_later_frames(
        make_live: Callable[..., str], slow_redis: Proxy, prefix: str) -> None:
    """Frame 1's save goes unconfirmed: answered by closing with 4503, so frame 2, already
    read, is not applied before it; the resumed session stands at frame 1 (it landed)."""
    url = make_live(session_store=f"redis://127.0.0.1:{slow_redis.port}",
                    session_store_prefix=prefix, session_store_timeout_s=0.3)
    events = cochlea_recording(seed=59)
    frame = seq_frames(events, 3)

    async def run() -> tuple[int, str, dict[str, Any]]:
        async with websockets.connect(ws_url(url)) as ws:
            await ws.send(orjson.dumps({"model": COCHLEA}).decode())
            opened = await recv(ws)
            await ws.send(frame(0))
            assert (await recv(ws))["seq"] == 0
            slow_redis.hold(2, seconds=1.0, marker=b"EVALSHA")  # stored, answered too late
            await ws.send(frame(1))
            await ws.send(frame(2))
            with pytest.raises(ConnectionClosed) as closed:
                await recv(ws)
        assert closed.value.rcvd is not None
        async with websockets.connect(ws_url(url)) as ws:
            await ws.send(orjson.dumps({"session": opened["id"],
                                        "token": opened["token"]}).decode())
            resumed = await recv(ws)
        return closed.value.rcvd.code, closed.value.rcvd.reason, resumed

    code, reason, resumed = asyncio.run(run())
    assert code == 4503 and reason.startswith("retry after ") and "may or may not" in reason
    assert resumed["seq"] == 1 and resumed["applied"]["seq"] == 1
    landed = sum(len(p) for p in np.array_split(events, 3)[:2])
    assert resumed["events_accepted"] == landed
    metrics = httpx.get(f"{url}/metrics").text  # frame 1 counted once the resume found it
    assert f's5rf_events_total{{model="{COCHLEA}"}} {float(landed)}' in metrics


def test_a_session_whose_creation_was_not_confirmed_is_opened_again(
        make_client: ClientFactory, slow_redis: Proxy, prefix: str) -> None:
    replica = make_client(session_store=f"redis://127.0.0.1:{slow_redis.port}",
                          session_store_prefix=prefix, session_store_timeout_s=0.3)
    slow_redis.hold(2, seconds=1.0, marker=b"EVALSHA")
    r = replica.post("/v1/sessions", json={"model": COCHLEA})
    assert r.status_code == 503 and r.headers["retry-after"], r.text
    assert r.json()["detail"].endswith("open the session again"), r.text
    assert replica.get("/metrics").text.count('s5rf_active_sessions{model="tiny-cochlea"} 0.0') == 1
    sid, headers = open_on(replica)  # and the retry opens one
    assert feed(replica, sid, headers, cochlea_recording(seed=58))["events"]["accepted"] > 0


def test_a_write_whose_reply_came_too_late_is_resent_and_confirmed(
        redis_server: Redis, prefix: str, slow_redis: Proxy) -> None:
    proxy = slow_redis

    async def late() -> StoredSession | None:
        store = RedisStore(f"redis://127.0.0.1:{proxy.port}", prefix, ttl_s=60, timeout_s=0.3)
        proxy.hold(1, seconds=1.0, marker=b"EVALSHA")
        await store.save("s", StoredSession(version=1, model=COCHLEA, token_sha256="t",
                                            snapshot=b"v1"))
        stored = await store.load("s")
        proxy.hold(2, seconds=1.0, marker=b"EVALSHA")  # the resend is late too: unknown
        with pytest.raises(UnconfirmedWrite):
            await store.save("s", StoredSession(version=2, model=COCHLEA, token_sha256="t",
                                                snapshot=b"v2"))
        # Another replica advanced our late write before its resend: the resend reads as
        # stale, but ours was stored (and may be built on), so it is no plain conflict
        rival = RedisStore(redis_server.url, prefix, ttl_s=60, timeout_s=2.0)
        version = await rival.version("s")
        proxy.hold(1, seconds=1.0, marker=b"EVALSHA")
        ours = asyncio.ensure_future(store.save("s", StoredSession(
            version=version + 1, model=COCHLEA, token_sha256="t", snapshot=b"ours")))
        await asyncio.sleep(0.1)
        await rival.save("s", StoredSession(version=version + 2, model=COCHLEA,
                                            token_sha256="t", snapshot=b"ours, then rival"))
        with pytest.raises(UnconfirmedWrite):
            await ours
        await rival.close()
        await store.close()
        return stored

    stored = asyncio.run(late())
    assert stored is not None and (stored.version, stored.snapshot) == (1, b"v1")


def test_connections_redis_closed_are_reopened_not_reported_as_an_outage(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """What a Redis restart leaves behind: every pooled connection closed by the server."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH: the test kills every client of its own Redis")
    server = Redis.start(tmp_path_factory.mktemp("redis-restart"))

    async def run() -> list[StoredSession | None]:
        store = RedisStore(server.url, "s5rf-test:", ttl_s=60, timeout_s=2.0)
        await asyncio.gather(*(  # concurrent writes: several pooled connections
            store.save(f"s{i}", StoredSession(version=1, model=COCHLEA, token_sha256="t",
                                              snapshot=b"v1")) for i in range(4)))
        redis.Redis(port=server.port).client_kill_filter(_type="normal", skipme=True)
        loaded = await asyncio.gather(*(store.load(f"s{i}") for i in range(4)))
        await store.close()
        return list(loaded)

    try:
        loaded = asyncio.run(run())
    finally:
        server.stop()
    assert [r.snapshot if r is not None else None for r in loaded] == [b"v1"] * 4


def test_a_redis_that_refuses_writes_is_an_outage_that_clears_after_failover(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A demoted primary answers READONLY (a ResponseError, not a connection error): a 503
    while it lasts, and a promoted Redis at the same address is used at once."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH: the test demotes its own Redis")
    server = Redis.start(tmp_path_factory.mktemp("redis-readonly"))
    admin = redis.Redis(port=server.port)
    record = StoredSession(version=1, model=COCHLEA, token_sha256="t", snapshot=b"v1")

    async def run() -> tuple[list[type[Exception]], StoredSession | None]:
        store = RedisStore(server.url, "s5rf-test:", ttl_s=60, timeout_s=2.0)
        await store.save("s", record)
        pooled = {c["id"] for c in admin.client_list()} - {str(admin.client_id())}
        admin.replicaof("127.0.0.1", 1)  # demoted: a replica of nothing, refusing writes
        refused = []
        for call in (store.version("s"), store.save("s", record), store.delete("s")):
            try:
                await call
            except (StoreUnavailable, UnconfirmedWrite) as exc:
                refused.append(type(exc))
        # the connections to the demoted primary were dropped, not kept for the next call
        # (Redis sees a close a moment after the client makes it)
        for _ in range(100):
            if not (kept := pooled & {c["id"] for c in admin.client_list()}):
                break
            await asyncio.sleep(0.01)
        assert pooled and not kept
        admin.replicaof("no", "one")  # promoted again
        await store.save("s", StoredSession(version=2, model=COCHLEA, token_sha256="t",
                                            snapshot=b"v2"))
        loaded = await store.load("s")
        await store.close()
        return refused, loaded

    try:
        refused, loaded = asyncio.run(run())
    finally:
        server.stop()
    assert refused == [StoreUnavailable, UnconfirmedWrite, StoreUnavailable]
    assert loaded is not None and loaded.snapshot == b"v2"


def test_records_expire_hold_no_token_and_deletion_reaches_every_replica(
        pair: tuple[TestClient, TestClient], redis_server: Redis, prefix: str) -> None:
    a, b = pair
    sid, headers = open_on(a)
    feed(b, sid, headers, cochlea_recording(seed=54)[:50], seq=0)
    client = redis.Redis(port=redis_server.port)
    key = f"{prefix}session:{sid}"
    ttl_ms = a.app.state.runtime.settings.session_ttl_s * 1000  # type: ignore[attr-defined]
    assert 0 < client.pttl(key) <= ttl_ms
    client.pexpire(key, 5_000)
    assert b.get(f"/v1/sessions/{sid}", headers=headers).status_code == 200
    assert client.pttl(key) > 5_000  # reading a session keeps it alive, as in memory
    stored = [str(v) for v in client.hgetall(key).values()]
    assert not any(headers["X-Session-Token"] in v for v in stored)
    assert b.get(f"/v1/sessions/{sid}", headers={"X-Session-Token": "wrong"}).status_code == 403
    assert a.delete(f"/v1/sessions/{sid}", headers=headers).status_code == 204
    assert b.get(f"/v1/sessions/{sid}", headers=headers).status_code == 404


@pytest.mark.parametrize("reachable", [True, False])
def test_start_up_says_whether_the_shared_store_answers(
        make_client: ClientFactory, redis_server: Redis, prefix: str,
        caplog: pytest.LogCaptureFixture, reachable: bool) -> None:
    """A mistyped address shows in the log at start, not only as the first session's 503."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    port = redis_server.port if reachable else closed_port
    with caplog.at_level("INFO", logger="s5rf.server"):
        client = make_client(session_store=f"redis://127.0.0.1:{port}",
                             session_store_prefix=prefix)
    events = [r.message for r in caplog.records if r.message.startswith("session_store")]
    assert events == ["session_store_connected" if reachable else "session_store_unreachable"]
    assert client.get("/readyz").status_code == 200  # serving either way


def test_a_full_replica_evicts_idle_cached_sessions(make_client: ClientFactory,
                                                    redis_server: Redis, prefix: str) -> None:
    settings = {"session_store": redis_server.url, "session_store_prefix": prefix}
    a, small = make_client(**settings), make_client(max_sessions=2, **settings)
    opened = [open_on(a) for _ in range(3)]
    events = cochlea_recording(seed=55)
    for round_ in range(2):
        for sid, headers in opened:
            feed(small, sid, headers, events[round_ * 100:(round_ + 1) * 100], seq=round_)
    for sid, headers in opened:
        assert a.get(f"/v1/sessions/{sid}", headers=headers).json()["events_accepted"] == 200


def test_a_full_replica_evicts_a_session_no_websocket_streams_into_first(
        make_client: ClientFactory, redis_server: Redis, prefix: str) -> None:
    small = make_client(max_sessions=2, session_store=redis_server.url,
                        session_store_prefix=prefix)
    sessions = small.app.state.runtime.sessions  # type: ignore[attr-defined]
    with small.websocket_connect("/v1/stream") as ws:
        ws.send_text(orjson.dumps({"model": COCHLEA}).decode())
        streamed = orjson.loads(ws.receive_bytes())["id"]
        idle, _ = open_on(small)  # used after the streamed one, so less recently
        open_on(small)  # the replica is full: one of the two makes room
        assert sessions.local.get(streamed) is not None and sessions.local.get(idle) is None


def test_exported_state_continues_on_another_server(make_client: ClientFactory) -> None:
    one, two = make_client(), make_client()
    events = cochlea_recording(seed=56)
    sid, headers = open_on(one)
    feed(one, sid, headers, events[:170], seq=7)
    exported = one.get(f"/v1/sessions/{sid}/state", headers=headers)
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/vnd.s5rf.session-state+msgpack"
    moved, moved_headers = open_on(two)
    r = two.put(f"/v1/sessions/{moved}/state", content=exported.content,
                headers={**moved_headers, "content-type": STATE_TYPE})
    assert r.status_code == 200, r.text
    assert r.json()["seq"] == 7 and r.json()["events_accepted"] == 170
    assert_same_stream(feed(two, moved, moved_headers, events[170:], seq=8, flush=True),
                       feed(one, sid, headers, events[170:], seq=8, flush=True))


def test_import_refuses_other_models_and_garbage(client: TestClient) -> None:
    dvs, dvs_headers = open_on(client, DVS)
    blob = client.get(f"/v1/sessions/{dvs}/state", headers=dvs_headers).content
    sid, headers = open_on(client)
    as_state = {**headers, "content-type": STATE_TYPE}
    r = client.put(f"/v1/sessions/{sid}/state", content=blob, headers=as_state)
    assert r.status_code == 409 and f"snapshot is of {DVS}" in r.json()["detail"]
    r = client.put(f"/v1/sessions/{sid}/state", content=b"\x93junk", headers=as_state)
    assert r.status_code == 422 and "not a readable" in r.json()["detail"]
    for wrong in ({}, {"content-type": "application/json"}):  # a form or JSON is no snapshot
        r = client.put(f"/v1/sessions/{sid}/state", content=blob, headers={**headers, **wrong})
        assert r.status_code == 415 and STATE_TYPE in r.json()["detail"], r.text
    r = client.put(f"/v1/sessions/{sid}/state", content=blob,
                   headers={**headers, "content-type": "application/octet-stream"})
    assert r.status_code == 409, r.text  # read as a snapshot: bytes named as bytes
    assert client.get(f"/v1/sessions/{sid}", headers=headers).json()["seq"] == -1


def test_a_session_evicted_while_a_request_holds_it_is_reloaded_not_lost(
        pair: tuple[TestClient, TestClient]) -> None:
    """With a shared store, eviction (to make room) only drops the cached copy: a request
    that authorised the session before it was evicted continues it from the store."""
    a, _ = pair
    runtime: Runtime = a.app.state.runtime  # type: ignore[attr-defined]
    events = cochlea_recording(seed=57)
    sid, headers = open_on(a)
    feed(a, sid, headers, events[:150], seq=0)
    held = runtime.sessions.local.get(sid)
    assert held is not None
    runtime.sessions.evict(held, "evicted")

    async def continue_held() -> dict[str, Any]:
        return await process_chunk(held, events[150:], ChunkOptions(seq=1, flush=True),
                                   runtime.sessions)

    result = a.portal.call(continue_held)  # type: ignore[union-attr]
    assert result["events"]["total_accepted"] == len(events)
    ref_id, ref_headers = open_on(a)
    assert_same_stream(result, feed(a, ref_id, ref_headers, events, flush=True))


@pytest.mark.parametrize(("tamper", "words"), [
    (lambda doc: doc["binner"].update(pending=make_events(  # channel 99 of 16
        "cochlea", t=np.array([79_500]), channel=np.array([99])).tobytes()), "out of range"),
    (lambda doc: doc["binner"].update(pending=make_events(  # after the last event seen
        "cochlea", t=np.array([99_000]), channel=np.array([1])).tobytes()), "last timestamp"),
    (lambda doc: doc["binner"].update(pending=make_events(  # in a bin closed long ago
        "cochlea", t=np.array([10]), channel=np.array([1])).tobytes()), "closed bin"),
    (lambda doc: doc["totals"].update(spikes={"dtype": "<i8", "shape": [7],
                                              "data": bytes(56)}), "totals.spikes"),
    (lambda doc: doc["log_probs"].update(dtype="<f8", data=bytes(32)), "log_probs"),
    # numbers no later batch could carry on (they stop at 64 bits in msgpack and orjson)
    (lambda doc: doc["totals"].update(events_accepted=2**64 - 1), "totals.events_accepted"),
    (lambda doc: doc.update(seq=2**64 - 1), "seq"),
    (lambda doc: doc["binner"].update(last_t=2**63), "binner.last_t"),
])
def test_import_refuses_snapshots_that_do_not_fit_the_model(
        client: TestClient, tamper: Callable[[dict[str, Any]], None], words: str) -> None:
    """Imported events are binned without further checks, so they are checked on import."""
    sid, headers = open_on(client)
    feed(client, sid, headers, cochlea_recording(seed=58)[:200], seq=0)
    doc = msgpack.unpackb(client.get(f"/v1/sessions/{sid}/state", headers=headers).content)
    tamper(doc)
    before = state_of(client, sid, headers)
    r = client.put(f"/v1/sessions/{sid}/state", content=msgpack.packb(doc),
                   headers={**headers, "content-type": STATE_TYPE})
    assert r.status_code == 422 and words in r.json()["detail"], r.text
    assert state_of(client, sid, headers) == before


class SlowStore:
    """A shared store whose load of session "slow" waits for ``release``; others answer at
    once that there is no such session."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.loads: list[str] = []

    async def load(self, session_id: str) -> StoredSession | None:
        self.loads.append(session_id)
        if session_id == "slow":
            await self.release.wait()
        return None

    async def version(self, session_id: str) -> int:
        return 0

    async def save(self, session_id: str, record: StoredSession) -> None:
        pass

    async def delete(self, session_id: str) -> None:
        pass

    async def close(self) -> None:
        pass


def test_a_slow_load_from_the_store_holds_up_only_its_own_session() -> None:
    """When a replica takes over a dead one's sessions it loads many at once: one slow load
    must not queue the others behind it, while loads of one session still take turns."""
    from server.metrics import Metrics
    from server.sessions import SessionManager
    from server.settings import Settings

    async def run() -> tuple[int, list[str], list[int]]:
        shared = SlowStore()
        sessions = SessionManager(Settings(), {}, Metrics(), shared=shared)

        async def status(session_id: str) -> int:
            try:
                await sessions.authorize(session_id, "token")
            except ApiError as exc:
                return exc.status
            return 200

        slow = [asyncio.create_task(status("slow")) for _ in range(2)]
        await asyncio.sleep(0)
        other = await asyncio.wait_for(status("other"), 5)  # a deadlock guard, not a timing
        shared.release.set()
        return other, shared.loads, list(await asyncio.gather(*slow))

    other, loads, slow = asyncio.run(run())
    assert other == 404 and slow == [404, 404]
    assert loads == ["slow", "other", "slow"]  # the second load of "slow" waited for the first


@pytest.mark.parametrize(("error", "outage"), [
    (redis.exceptions.ResponseError("MISCONF Redis is configured to save RDB snapshots, but"),
     True),  # it cannot persist (a full disk): clears when Redis does
    (redis.exceptions.ResponseError("BUSY Redis is busy running a script"), True),
    (redis.exceptions.ReadOnlyError("You can't write against a read only replica."), True),
    (redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind"),
     False),  # a bug: a 500 with its traceback, not a retry
    (redis.exceptions.DataError("Invalid input of type: 'NoneType'"), False),
])
def test_only_redis_errors_that_clear_by_themselves_are_an_outage(error: Exception,
                                                                  outage: bool) -> None:
    from server.store_redis import _outage

    assert _outage(error) == outage
