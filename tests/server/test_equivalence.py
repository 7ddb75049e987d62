"""A recording gives /infer's probabilities however it is cut and however it is sent."""

from __future__ import annotations

import asyncio
import io
import itertools

import httpx
import numpy as np
import orjson
import pytest
import websockets
from fastapi.testclient import TestClient

from tests.server.conftest import COCHLEA, DVS, cochlea_recording, columns, dvs_recording
from tests.server.test_errors import open_session

RECORDINGS = {COCHLEA: cochlea_recording, DVS: dvs_recording}


def random_cuts(n: int, rng: np.random.Generator, pieces: int) -> list[int]:
    return [0, *sorted(rng.choice(np.arange(1, n), pieces - 1, replace=False)), n]


def infer(client: TestClient, model: str, events: np.ndarray) -> dict:
    r = client.post(f"/v1/models/{model}/infer", content=events.tobytes(),
                    headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("model", [COCHLEA, DVS])
def test_http_stream_in_random_cuts_matches_infer(client: TestClient, model: str) -> None:
    events = RECORDINGS[model](seed=3)
    expected = infer(client, model, events)
    rng = np.random.default_rng(0)
    for trial in range(3):
        session = client.post("/v1/sessions", json={"model": model}).json()
        headers = {"X-Session-Token": session["token"]}
        cuts = random_cuts(len(events), rng, pieces=5 + 4 * trial)
        for i, (lo, hi) in enumerate(itertools.pairwise(cuts)):
            last = i == len(cuts) - 2
            piece = events[lo:hi]
            if i % 2:  # alternate JSON and binary bodies
                r = client.post(f"/v1/sessions/{session['id']}/events",
                                json={**columns(piece), "flush": last}, headers=headers)
            else:
                r = client.post(f"/v1/sessions/{session['id']}/events?flush={str(last).lower()}",
                                content=piece.tobytes(),
                                headers={**headers, "content-type": "application/octet-stream"})
            assert r.status_code == 200, r.text
        result = r.json()
        np.testing.assert_allclose(result["probabilities"], expected["probabilities"], atol=1e-5)
        assert result["bins"]["total"] == expected["bins"]["total"]
        assert result["spikes"]["total"] == expected["spikes"]["total"]
        assert result["synops"]["total"] == expected["synops"]["total"]
        assert result["events"]["total_accepted"] == len(events)


def test_ws_stream_in_random_cuts_matches_infer(client: TestClient, live_url: str) -> None:
    events = cochlea_recording(seed=4)
    expected = infer(client, COCHLEA, events)
    cuts = random_cuts(len(events), np.random.default_rng(1), pieces=9)

    async def run() -> dict:
        async with websockets.connect(live_url.replace("http", "ws") + "/v1/stream") as ws:
            await ws.send(orjson.dumps({"model": COCHLEA}).decode())
            opened = orjson.loads(await ws.recv())
            assert opened["type"] == "opened" and not opened["resumed"]
            for lo, hi in itertools.pairwise(cuts[:-1]):
                await ws.send(events[lo:hi].tobytes())
            await ws.send(orjson.dumps({**columns(events[cuts[-2]:]), "flush": True}).decode())
            results = [orjson.loads(await ws.recv()) for _ in range(len(cuts) - 1)]
        assert [r["type"] for r in results] == ["result"] * (len(cuts) - 1)
        assert [r["frame"] for r in results] == list(range(len(cuts) - 1))
        return results[-1]

    last = asyncio.run(run())
    np.testing.assert_allclose(last["probabilities"], expected["probabilities"], atol=1e-5)
    assert last["spikes"]["total"] == expected["spikes"]["total"]
    async_check = httpx.get(f"{live_url}/v1/models/{COCHLEA}")
    assert async_check.status_code == 200


def test_npy_json_and_binary_bodies_give_the_same_answer(client: TestClient) -> None:
    events = cochlea_recording(seed=5)
    tonic = np.zeros(len(events), np.dtype([("x", "<i4"), ("t", "<f8")]))  # tonic's names
    tonic["x"], tonic["t"] = events["channel"], events["t"]
    buf = io.BytesIO()
    np.save(buf, tonic)
    answers = [
        infer(client, COCHLEA, events),
        client.post(f"/v1/models/{COCHLEA}/infer", content=buf.getvalue(),
                    headers={"content-type": "application/x-npy"}).json(),
        client.post(f"/v1/models/{COCHLEA}/infer", json=columns(events)).json(),
    ]
    for answer in answers[1:]:
        assert answer["probabilities"] == answers[0]["probabilities"]
        assert answer["events"] == answers[0]["events"]


def test_a_cameras_npy_body_is_refused_by_a_cochlea_model(client: TestClient) -> None:
    """Tonic's cochlea ``x`` is the channel only without a ``y``: a DVS file was played as
    a cochlea recording of its x coordinates."""
    buf = io.BytesIO()
    np.save(buf, dvs_recording(seed=7))
    refused = client.post(f"/v1/models/{COCHLEA}/infer", content=buf.getvalue(),
                          headers={"content-type": "application/x-npy"})
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("these are a camera's events (fields p, t, x, y)")


def test_a_dvs_polarity_may_be_json_booleans(client: TestClient) -> None:
    events = dvs_recording(seed=6)
    as_bools = {**columns(events), "p": [bool(p) for p in events["p"]]}
    answer = client.post(f"/v1/models/{DVS}/infer", json=as_bools)
    assert answer.status_code == 200, answer.text
    assert answer.json()["probabilities"] == infer(client, DVS, events)["probabilities"]


def test_a_big_recording_is_binned_off_the_event_loop_with_the_same_answer(
        client: TestClient) -> None:
    events = cochlea_recording(seed=6, n=120_000, duration_us=2_000_000)  # 12 Mb: threaded
    whole = infer(client, COCHLEA, events)
    assert whole["events"]["accepted"] == len(events) and whole["bins"]["total"] == 2000
    sid, headers = open_session(client)
    for i, piece in enumerate(np.array_split(events, 3)):
        r = client.post(f"/v1/sessions/{sid}/events", content=piece.tobytes(),
                        params={"flush": str(i == 2).lower()},
                        headers={**headers, "content-type": "application/octet-stream"})
    np.testing.assert_allclose(r.json()["probabilities"], whole["probabilities"], atol=1e-5)
