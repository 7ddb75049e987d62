"""Session lifecycle: auth, reset, delete, TTL expiry, the session cap (also under concurrent
opens), reused slots of deleted sessions, and no recompilation."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from server.errors import ApiError
from server.inference import infer_recording, process_chunk
from server.registry import ModelRegistry
from server.runtime import Runtime
from server.schemas import ChunkOptions, InferOptions
from server.state_codec import decode
from tests.server.conftest import COCHLEA, DVS, cochlea_recording, columns, dvs_recording
from tests.server.test_errors import feed_good, open_session, state_of


def test_tokens_guard_sessions(client: TestClient) -> None:
    a, a_headers = open_session(client)
    b, _ = open_session(client)
    assert client.get(f"/v1/sessions/{a}", headers=a_headers).status_code == 200
    assert client.get(f"/v1/sessions/{a}").status_code == 403
    assert client.get(f"/v1/sessions/{a}", headers={"X-Session-Token": "x"}).status_code == 403
    latin1 = client.get(f"/v1/sessions/{a}", headers={"X-Session-Token": "t\xe9".encode("latin-1")})
    assert latin1.status_code == 403 and "X-Session-Token" in latin1.json()["detail"]
    r = client.post(f"/v1/sessions/{b}/events", json={}, headers=a_headers)
    assert r.status_code == 403 and "X-Session-Token" in r.json()["detail"]
    assert client.get("/v1/sessions/unknown", headers=a_headers).status_code == 404


def test_a_session_reports_how_long_it_was_idle_before_this_request(client: TestClient) -> None:
    r = client.post("/v1/sessions", json={"model": DVS})
    assert r.json()["idle_s"] == 0.0  # a new session has had no use before its opening
    sid, headers = open_session(client)
    time.sleep(0.2)
    info = client.get(f"/v1/sessions/{sid}", headers=headers).json()
    assert info["idle_s"] >= 0.2  # was the microseconds since this very request began
    ttl = client.app.state.runtime.settings.session_ttl_s  # type: ignore[attr-defined]
    assert ttl - 0.1 < info["expires_in_s"] <= ttl  # this request is use too


def test_a_stream_silent_for_longer_than_one_batch_may_close_catches_up_by_watermarks(
        make_client: Any) -> None:
    client = make_client(max_bins_per_request=50)
    sid, headers = open_session(client)
    dt = client.get(f"/v1/models/{COCHLEA}").json()["input"]["dt_us"]
    feed_good(client, sid, headers, cochlea_recording(seed=5)[:20])
    later = {"t": [130 * dt], "channel": [1]}
    r = client.post(f"/v1/sessions/{sid}/events", json=later, headers=headers)
    assert r.status_code == 422 and f"each at most {50 * dt} us past the last" in r.text
    for until in (50 * dt, 100 * dt):
        assert client.post(f"/v1/sessions/{sid}/events", json={"until_us": until},
                           headers=headers).status_code == 200
    r = client.post(f"/v1/sessions/{sid}/events", json=later, headers=headers)
    assert r.status_code == 200, r.text


def test_new_session_reports_uniform_probabilities_no_decision_and_its_origin(
        client: TestClient) -> None:
    r = client.post("/v1/sessions", json={"model": COCHLEA, "t0_us": "first_event"})
    info = r.json()
    assert r.status_code == 201 and info["t0_us"] is None and info["bins"] == 0
    np.testing.assert_allclose(info["probabilities"], [0.25] * 4, atol=1e-6)
    assert info["label"] is None  # argmax of uniform would name class 0 on no evidence
    headers = {"X-Session-Token": info["token"]}
    url = f"/v1/sessions/{info['id']}/events"
    open_bin = client.post(url, json={"t": [5000], "channel": [1]}, headers=headers).json()
    assert open_bin["bins"]["total"] == 0 and open_bin["label"] is None
    assert len(open_bin["top_k"]) == 4  # the probabilities are still listed
    closed = client.post(url, json={"t": [7500], "channel": [2]}, headers=headers).json()
    assert closed["label"] == closed["top_k"][0]["label"]
    info = client.get(f"/v1/sessions/{info['id']}", headers=headers).json()
    assert info["t0_us"] == 5000 and info["bins"] == 2 and info["last_t_us"] == 7500
    assert info["pending_events"] == 1 and info["events_accepted"] == 2
    assert info["label"] == closed["label"]
    reset = client.post(f"/v1/sessions/{info['id']}/reset", headers=headers).json()
    assert reset["label"] is None


def test_reset_replays_to_the_same_result(client: TestClient) -> None:
    events = cochlea_recording(seed=11)
    sid, headers = open_session(client)
    url = f"/v1/sessions/{sid}/events"
    first = client.post(url, json={**columns(events), "flush": True, "seq": 3},
                        headers=headers).json()
    info = client.post(f"/v1/sessions/{sid}/reset", headers=headers).json()
    assert info["bins"] == 0 and info["seq"] == -1 and info["events_accepted"] == 0
    again = client.post(url, json={**columns(events), "flush": True, "seq": 0},
                        headers=headers).json()
    assert again["probabilities"] == first["probabilities"]
    assert again["spikes"] == first["spikes"]


@pytest.mark.parametrize(("body", "detail"), [
    (b"{", "the body is not valid JSON: "),
    (b"[]", "the body must be a JSON object"),
    (b'{"t0_us": "5"}', "body.t0_us: must be an integer"),
])
def test_a_reset_body_is_read_after_the_session_is_found(
        client: TestClient, body: bytes, detail: str) -> None:
    """As for /events: 404, then 403, then 422; and a refusal is use (the TTL starts again)."""
    sid, headers = open_session(client)
    json_type = {"content-type": "application/json"}
    post = functools.partial(client.post, content=body)
    assert post("/v1/sessions/nope/reset", headers={**headers, **json_type}).status_code == 404
    assert post(f"/v1/sessions/{sid}/reset",
                headers={"X-Session-Token": "wrong", **json_type}).status_code == 403
    time.sleep(0.3)
    refused = post(f"/v1/sessions/{sid}/reset", headers={**headers, **json_type})
    assert refused.status_code == 422 and refused.json()["detail"].startswith(detail)
    assert client.get(f"/v1/sessions/{sid}", headers=headers).json()["idle_s"] < 0.2


def test_reset_to_a_new_origin_serves_a_live_sensor_whose_clock_moved_on(
        client: TestClient) -> None:
    """A sensor's clock runs on: reset to the next utterance's start (or its first event)
    and it is scored as the same recording alone; back to the old origin it is 100 s of
    bins past the per-request cap; a refused reset changes nothing."""
    events = cochlea_recording(seed=12)
    infer = f"/v1/models/{COCHLEA}/infer"
    alone = {t0: client.post(infer, json={**columns(events), "t0_us": t0}).json()
             for t0 in (0, "first_event")}
    later = events.copy()
    sid, headers = open_session(client, t0_us=100_000_000)
    url = f"/v1/sessions/{sid}/events"
    later["t"] = events["t"] + 100_000_000
    first = client.post(url, json={**columns(later), "flush": True}, headers=headers).json()
    later["t"] = events["t"] + 200_000_000
    reset = f"/v1/sessions/{sid}/reset"
    assert client.post(reset, headers=headers).json()["t0_us"] == 100_000_000  # its own
    as_null = client.post(reset, content=b"null", headers={**headers,
                                                           "content-type": "application/json"})
    assert as_null.json()["t0_us"] == 100_000_000  # JSON null: no body
    too_far = client.post(url, json=columns(later), headers=headers)
    assert too_far.status_code == 422 and "watermark" in too_far.text
    for body in ({"t0_us": -1}, {"t0_us": 5, "late": "drop"}):
        refused = client.post(reset, json=body, headers=headers)
        assert refused.status_code == 422, body
    assert client.get(f"/v1/sessions/{sid}", headers=headers).json()["t0_us"] == 100_000_000
    for origin, alone_as, t0_after in ((200_000_000, 0, 200_000_000),
                                       ("first_event", "first_event", int(later["t"][0]))):
        info = client.post(reset, json={"t0_us": origin}, headers=headers).json()
        assert info["t0_us"] == (None if origin == "first_event" else origin)
        again = client.post(url, json={**columns(later), "flush": True}, headers=headers)
        assert again.status_code == 200, again.text
        np.testing.assert_allclose(again.json()["probabilities"],
                                   alone[alone_as]["probabilities"], atol=1e-6)
        info = client.get(f"/v1/sessions/{sid}", headers=headers).json()
        assert info["t0_us"] == t0_after and info["events_accepted"] == len(events)
    np.testing.assert_allclose(first["probabilities"], alone[0]["probabilities"], atol=1e-6)
    assert alone[0]["probabilities"] != alone["first_event"]["probabilities"]  # bins differ


def test_a_batch_with_reset_starts_a_new_utterance_in_the_same_request(
        client: TestClient) -> None:
    """``reset`` on a batch: zero state and counters from the new origin, applied with the
    batch (seq goes on); JSON or a binary body's query; refused, it changes nothing."""
    events = cochlea_recording(seed=13)
    infer = f"/v1/models/{COCHLEA}/infer"
    alone = {t0: client.post(infer, json={**columns(events), "t0_us": t0}).json()
             for t0 in (0, "first_event")}
    sid, headers = open_session(client)
    url = f"/v1/sessions/{sid}/events"
    feed_good(client, sid, headers, events, seq=0, flush=True)
    later = events.copy()
    later["t"] += 100_000_000
    again = feed_good(client, sid, headers, later, seq=1, flush=True, reset=100_000_000)
    np.testing.assert_allclose(again["probabilities"], alone[0]["probabilities"], atol=1e-6)
    info = state_of(client, sid, headers)
    assert (info["seq"], info["t0_us"], info["events_accepted"]) == (1, 100_000_000, len(events))
    before = info
    for bad in ({"reset": int(later["t"][0]) + 1, "seq": 2},  # its first event is before it
                {"reset": -3, "seq": 2}):
        r = client.post(url, json={**columns(later), **bad}, headers=headers)
        assert r.status_code == 422, r.text
        assert state_of(client, sid, headers) == before
    later["t"] += 100_000_000
    r = client.post(url, content=later.tobytes(), headers={
        **headers, "content-type": "application/octet-stream"},
        params={"reset": "first_event", "flush": "true", "seq": 2})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["probabilities"], alone["first_event"]["probabilities"],
                               atol=1e-6)
    assert state_of(client, sid, headers)["t0_us"] == later["t"][0]


def test_a_reset_batch_whose_step_fails_puts_the_state_back(
        client: TestClient, registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reset zeroes the engine row before the step: when the step fails, the row is put
    back, so the stream goes on from where it was as if the batch had never come."""
    events = cochlea_recording(seed=14)
    head, tail = events[:200], events[200:]
    runs = []
    for fail in (False, True):
        sid, headers = open_session(client)
        feed_good(client, sid, headers, head)
        before = state_of(client, sid, headers)
        if fail:
            model = registry.get(COCHLEA)
            assert model is not None

            def broken(*args: Any, **kwargs: Any) -> Any:
                raise RuntimeError("device lost")

            monkeypatch.setattr(model.engine, "step", broken)
            with pytest.raises(RuntimeError, match="device lost"):  # a 500 to a real client
                client.post(f"/v1/sessions/{sid}/events", headers=headers,
                            json={**columns(tail), "reset": 0, "flush": True})
            monkeypatch.undo()
            assert state_of(client, sid, headers) == before
        runs.append(feed_good(client, sid, headers, tail, flush=True))
    assert runs[0]["probabilities"] == runs[1]["probabilities"]
    assert runs[0]["spikes"] == runs[1]["spikes"]


def test_delete_frees_the_session(client: TestClient) -> None:
    sid, headers = open_session(client)
    assert client.delete(f"/v1/sessions/{sid}", headers=headers).status_code == 204
    assert client.get(f"/v1/sessions/{sid}", headers=headers).status_code == 404


def test_idle_sessions_expire_after_the_ttl(make_client: Any) -> None:
    # polls 4x per TTL: a stall of up to 3/4 of a second on a busy box cannot expire "busy"
    client = make_client(session_ttl_s=1.0, expiry_interval_s=0.05)
    idle, idle_headers = open_session(client)
    busy, busy_headers = open_session(client)
    for _ in range(8):  # keep one session in use
        time.sleep(0.25)
        assert client.get(f"/v1/sessions/{busy}", headers=busy_headers).status_code == 200
    assert client.get(f"/v1/sessions/{idle}", headers=idle_headers).status_code == 404
    metrics = client.get("/metrics").text
    assert f's5rf_active_sessions{{model="{COCHLEA}"}} 1.0' in metrics


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_refused_requests_and_frames_are_use_that_keeps_a_session_alive(
        make_client: Any, request: pytest.FixtureRequest, store: str) -> None:
    """Refusals never reach the shared store, which must hear of them all the same: each
    keeps its session alive past the TTL that ends an idle one, with either store."""
    shared = {} if store == "memory" else {
        "session_store": request.getfixturevalue("redis_server").url,
        "session_store_prefix": request.getfixturevalue("prefix")}
    client = make_client(session_ttl_s=1.0, expiry_interval_s=0.05, **shared)
    idle, idle_headers = open_session(client)
    refusals = {
        "bad body": lambda sid, h: client.post(f"/v1/sessions/{sid}/events",
                                               json={"t": [5], "channel": "x"}, headers=h),
        "bad query": lambda sid, h: client.post(f"/v1/sessions/{sid}/events?top_k=0",
                                                json={"t": [5], "channel": [1]}, headers=h),
        "seq applied": lambda sid, h: client.post(f"/v1/sessions/{sid}/events",
                                                  json={"seq": 0}, headers=h),
    }
    kept = {}
    for kind in refusals:
        kept[kind] = open_session(client)
        assert client.post(f"/v1/sessions/{kept[kind][0]}/events", json={"seq": 0},
                           headers=kept[kind][1]).status_code == 200
    sid, headers = open_session(client)
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json({"session": sid, "token": headers["X-Session-Token"]})
        ws.receive_bytes()
        for _ in range(6):  # 1.8 s, refusals only
            time.sleep(0.3)
            for kind, refuse in refusals.items():
                assert refuse(*kept[kind]).status_code in (409, 422), kind
            ws.send_text('{"t": [5], "channel": "x"}')
            assert orjson.loads(ws.receive_bytes())["status"] == 422
    for kind, (kept_id, kept_headers) in kept.items():
        r = client.get(f"/v1/sessions/{kept_id}", headers=kept_headers)
        assert r.status_code == 200, kind
    assert client.get(f"/v1/sessions/{sid}", headers=headers).status_code == 200  # WS frames
    assert client.get(f"/v1/sessions/{idle}", headers=idle_headers).status_code == 404


def test_session_cap_answers_503_with_retry_after(make_client: Any) -> None:
    client = make_client(max_sessions=2, retry_after_s=7)
    first, headers = open_session(client)
    open_session(client)
    r = client.post("/v1/sessions", json={"model": DVS})
    assert r.status_code == 503 and r.headers["Retry-After"] == "7"
    assert "maximum of 2 sessions" in r.json()["detail"]
    client.delete(f"/v1/sessions/{first}", headers=headers)
    assert client.post("/v1/sessions", json={"model": DVS}).status_code == 201


def test_no_recompilation_after_warmup(client: TestClient, registry: ModelRegistry) -> None:
    before = {m.name: m.engine.compilations for m in registry}
    rng = np.random.default_rng(5)
    for model, recording in ((COCHLEA, cochlea_recording), (DVS, dvs_recording)):
        events = recording(seed=12, n=600, duration_us=400_000)  # up to 200+ bins: split calls
        for spikes in (False, True):
            r = client.post(f"/v1/models/{model}/infer",
                            json={**columns(events), "include_spikes": spikes})
            assert r.status_code == 200
            sid, headers = open_session(client, model=model)
            cuts = np.sort(rng.choice(len(events), 6, replace=False))
            for piece in np.split(events, cuts):
                r = client.post(f"/v1/sessions/{sid}/events?include_spikes={str(spikes).lower()}",
                                content=piece.tobytes(),
                                headers={**headers, "content-type": "application/octet-stream"})
                assert r.status_code == 200, r.text
            client.post(f"/v1/sessions/{sid}/reset", headers=headers)
            client.delete(f"/v1/sessions/{sid}", headers=headers)
    assert {m.name: m.engine.compilations for m in registry} == before
    assert f's5rf_compilations{{model="{COCHLEA}"}} {float(before[COCHLEA])}' in \
        client.get("/metrics").text


def test_rasters_list_each_layers_spikes_by_absolute_bin(client: TestClient) -> None:
    events = cochlea_recording(seed=13)
    sid, headers = open_session(client)
    half = len(events) // 2
    url = f"/v1/sessions/{sid}/events"
    a = client.post(url, json={**columns(events[:half]), "include_spikes": True},
                    headers=headers).json()
    b = client.post(url, json={**columns(events[half:]), "include_spikes": True, "flush": True},
                    headers=headers).json()
    for result in (a, b):
        assert [len(r["bin"]) for r in result["rasters"]] == result["spikes"]["batch"]
        assert all(type(n) is int for n in result["spikes"]["batch"] + result["spikes"]["total"])
    assert min(b["rasters"][0]["bin"], default=a["bins"]["total"]) >= a["bins"]["total"]
    whole = client.post(f"/v1/models/{COCHLEA}/infer",
                        json={**columns(events), "include_spikes": True}).json()
    assert sorted(zip(whole["rasters"][0]["bin"], whole["rasters"][0]["neuron"], strict=True)) \
        == sorted(zip(a["rasters"][0]["bin"] + b["rasters"][0]["bin"],
                      a["rasters"][0]["neuron"] + b["rasters"][0]["neuron"], strict=True))
    neurons = 32
    assert whole["firing_rate"]["total"][0] == whole["spikes"]["total"][0] / (
        neurons * whole["bins"]["total"])


def test_a_handle_to_a_deleted_session_never_touches_its_reused_slot(client: TestClient) -> None:
    """A request holding a session that is deleted before it takes the lock (its slot already
    given to a new session) is answered 404 and leaves the new session as it was."""
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    old, old_headers = open_session(client)
    stale = runtime.sessions.local.get(old)
    assert stale is not None
    client.delete(f"/v1/sessions/{old}", headers=old_headers)
    new, new_headers = open_session(client)
    reused = runtime.sessions.local.get(new)
    assert reused is not None and reused.slot == stale.slot  # the scenario under test
    feed_good(client, new, new_headers, cochlea_recording(seed=14)[:200])
    before = state_of(client, new, new_headers)

    async def use_stale() -> list[int]:
        statuses = []
        try:
            await runtime.sessions.reset(stale)
        except ApiError as exc:
            statuses.append(exc.status)
        try:
            async with runtime.sessions.locked(stale) as session:
                await runtime.sessions.snapshot(session)
        except ApiError as exc:
            statuses.append(exc.status)
        try:
            await process_chunk(stale, cochlea_recording(seed=15), ChunkOptions(flush=True),
                                runtime.sessions)
        except ApiError as exc:
            statuses.append(exc.status)
        return statuses

    assert client.portal.call(use_stale) == [404, 404, 404]  # type: ignore[union-attr]
    assert state_of(client, new, new_headers) == before


def test_concurrent_opens_never_exceed_the_session_cap(make_client: Any) -> None:
    client = make_client(max_sessions=3)
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    model = runtime.registry.get(COCHLEA)
    assert model is not None

    async def open_many() -> list[int]:
        outcomes = await asyncio.gather(*(runtime.sessions.create(model, 0, None)
                                          for _ in range(8)), return_exceptions=True)
        return sorted(o.status if isinstance(o, ApiError) else 201 for o in outcomes)

    assert client.portal.call(open_many) == [201] * 3 + [503] * 5  # type: ignore[union-attr]
    assert len(runtime.sessions.local) == 3


def test_infer_calls_have_their_own_per_model_cap(make_client: Any) -> None:
    """``max_concurrent_infer`` caps /infer per model, and sessions never take its slots."""
    client = make_client(max_sessions=2)
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    model = runtime.registry.get(COCHLEA)
    assert model is not None
    open_session(client)
    open_session(client)  # the session cap reached
    body = columns(cochlea_recording(seed=16))
    assert client.post(f"/v1/models/{COCHLEA}/infer", json=body).status_code == 200
    running = []  # as if the maximum of /infer calls were in flight
    while (slot := model.infer_slots.take()) is not None:
        running.append(slot)
    assert len(running) == runtime.settings.max_concurrent_infer
    r = client.post(f"/v1/models/{COCHLEA}/infer", json=body)
    assert r.status_code == 503 and "as many /infer calls" in r.json()["detail"]
    bad = {"t": [0, 10**15], "channel": [1, 2]}  # a time jump past max_bins_per_request
    # refused before any binning: a call over the cap costs the server nothing
    assert client.post(f"/v1/models/{COCHLEA}/infer", json=bad).status_code == 503
    assert client.post(f"/v1/models/{DVS}/infer",
                       json=columns(dvs_recording(seed=16))).status_code == 200
    for slot in running[1:]:  # one slot free: a refused recording must give it back
        model.infer_slots.give(slot)
    big_bad = {"t": [*range(60_000), 10**15], "channel": [1] * 60_001}  # binned in a thread
    for _ in range(runtime.settings.max_concurrent_infer + 1):
        assert client.post(f"/v1/models/{COCHLEA}/infer", json=bad).status_code == 422
        assert client.post(f"/v1/models/{COCHLEA}/infer", json=big_bad).status_code == 422
    assert client.post(f"/v1/models/{COCHLEA}/infer", json=body).status_code == 200
    model.infer_slots.give(running[0])
    assert client.post(f"/v1/models/{COCHLEA}/infer", json=body).status_code == 200


def test_a_watermark_closes_the_bins_before_it_and_top_k_ranks_the_classes(
        client: TestClient) -> None:
    sid, headers = open_session(client)  # tiny-cochlea: 1 ms bins from t0 = 0
    url = f"/v1/sessions/{sid}/events"
    r = client.post(url, json={"t": [100, 2500], "channel": [1, 2]}, headers=headers).json()
    assert r["bins"] == {"batch": 2, "total": 2} and r["events"]["pending"] == 1
    r = client.post(url, json={"until_us": 5000}, headers=headers).json()
    assert r["bins"] == {"batch": 3, "total": 5} and r["events"]["pending"] == 0
    assert r["last_t_us"] == 2500
    events = cochlea_recording(seed=17)
    events["t"] += 5000
    r = client.post(url, json={**columns(events), "flush": True, "top_k": 3},
                    headers=headers).json()
    top, probs = r["top_k"], r["probabilities"]
    assert len(set(probs)) == len(probs)  # no ties: the ranking is the probabilities' order
    assert [t["index"] for t in top] == [int(i) for i in np.argsort(probs)[::-1][:3]]
    assert [t["label"] for t in top] == [f"class{t['index']}" for t in top]
    assert r["label"] == top[0]["label"]


def test_the_late_policy_defaults_to_the_setting(make_client: Any) -> None:
    client = make_client(late_default="drop")
    sid, headers = open_session(client)
    url = f"/v1/sessions/{sid}/events"
    client.post(url, json={"t": [5000], "channel": [1]}, headers=headers)
    r = client.post(url, json={"t": [100, 6000], "channel": [1, 2]}, headers=headers).json()
    assert r["events"]["dropped"] == 1 and r["events"]["accepted"] == 1


@pytest.mark.parametrize("change", ["reset", "import"])
def test_a_change_whose_client_hangs_up_is_carried_through(client: TestClient, change: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A reset or state import cancelled after the engine's call (the client hung up) still
    brings the session's bookkeeping along: the stream continues as one that was not cut."""
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    events = cochlea_recording(seed=16)
    source, source_headers = open_session(client)
    feed_good(client, source, source_headers, events[:300])
    exported = client.get(f"/v1/sessions/{source}/state", headers=source_headers).content
    sid, headers = open_session(client)
    feed_good(client, sid, headers, events[300:])  # a state that the change replaces
    session = runtime.sessions.local.get(sid)
    assert session is not None
    snap = decode(exported, COCHLEA, session.model.version)
    batcher = runtime.sessions.batchers[COCHLEA]
    real_call, called, release = batcher._call, asyncio.Event(), asyncio.Event()

    async def call_then_park(fn: Any, *args: Any) -> Any:
        out = await real_call(fn, *args)
        if fn in (session.model.engine.reset, session.model.engine.write):
            called.set()
            await release.wait()
        return out

    async def hang_up() -> None:
        monkeypatch.setattr(batcher, "_call", call_then_park)
        request = asyncio.ensure_future(runtime.sessions.reset(session) if change == "reset"
                                        else runtime.sessions.import_state(session, snap))
        await called.wait()
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        release.set()
        async with runtime.sessions.locked(session):  # the change has let the lock go
            monkeypatch.setattr(batcher, "_call", real_call)

    client.portal.call(hang_up)  # type: ignore[union-attr]
    like, like_headers = open_session(client)
    if change == "import":
        feed_good(client, like, like_headers, events[:300])
    assert ({k: v for k, v in state_of(client, sid, headers).items() if k not in ("id", "seq")}
            == {k: v for k, v in state_of(client, like, like_headers).items()
                if k not in ("id", "seq")})
    rest = events[300:] if change == "import" else events
    got = feed_good(client, sid, headers, rest, flush=True)
    want = feed_good(client, like, like_headers, rest, flush=True)
    assert got["probabilities"] == want["probabilities"] and got["spikes"] == want["spikes"]


def test_an_infer_whose_client_hangs_up_is_counted(client: TestClient,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """/infer's step runs on (shielded) when its caller is cancelled: its events count."""
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    events = cochlea_recording(seed=18)
    batcher = runtime.sessions.batchers[COCHLEA]
    real_submit, stepped, release = batcher.submit, asyncio.Event(), asyncio.Event()

    async def submit_then_park(*args: Any) -> Any:
        out = await real_submit(*args)
        stepped.set()
        await release.wait()
        return out

    async def hang_up() -> None:
        monkeypatch.setattr(batcher, "submit", submit_then_park)
        request = asyncio.ensure_future(infer_recording(
            batcher.model, events, InferOptions(), batcher, runtime.settings, runtime.metrics))
        await stepped.wait()
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        release.set()
        deadline = time.monotonic() + 10
        while counted not in runtime.metrics.render().decode() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the step ends on its own
        monkeypatch.setattr(batcher, "submit", real_submit)

    counted = f's5rf_events_total{{model="{COCHLEA}"}} {float(len(events))}'
    client.portal.call(hang_up)  # type: ignore[union-attr]
    assert counted in client.get("/metrics").text
