"""Bad input is refused with a status and a message saying what and where, and changes nothing."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.server.conftest import COCHLEA, DVS, cochlea_recording, columns

EVENTS = cochlea_recording(seed=7, n=300, duration_us=100_000)
FIRST, SECOND = EVENTS[EVENTS["t"] < 50_000], EVENTS[EVENTS["t"] >= 50_000]
RAW = {"content-type": "application/octet-stream"}
NPY = {"content-type": "application/x-npy"}


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def npz(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, events=array)
    return buf.getvalue()


def npy_declaring(count: int) -> bytes:
    """A .npy header promising ``count`` cochlea events, followed by two."""
    buf = io.BytesIO()
    header = {"descr": EVENTS.dtype.descr, "fortran_order": False, "shape": (count,)}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + EVENTS[:2].tobytes()


def unsorted() -> dict[str, Any]:
    body = columns(SECOND[:5])
    body["t"] = body["t"][::-1]
    return body


# (name, request kwargs, status, words the message must contain)
BAD: list[tuple[str, dict[str, Any], int, str]] = [
    ("unsorted", {"json": unsorted()}, 422, "sorted by t: t[1]="),
    ("negative t", {"json": {"t": [-5], "channel": [0]}}, 422, "negative timestamp -5 at index 0"),
    ("channel out of range", {"json": {"t": [60_000, 60_001], "channel": [3, 16]}}, 422,
     "channel 16 at index 1 is out of range [0, 16)"),
    ("fractional t", {"json": {"t": [60_000.5], "channel": [1]}}, 422, "must hold integers"),
    ("non-finite t", {"content": b'{"t": [NaN], "channel": [1]}',
                      "headers": {"content-type": "application/json"}}, 422, "not valid JSON"),
    ("mismatched columns", {"json": {"t": [60_000, 60_001], "channel": [1]}}, 422,
     "different lengths"),
    ("missing column", {"json": {"t": [60_000]}}, 422, "missing ['channel']"),
    ("DVS columns on a cochlea model", {"json": {"t": [1], "x": [1], "y": [1], "p": [0]}}, 422,
     "unexpected ['x', 'y', 'p']"),
    ("column not a list", {"json": {"t": 5, "channel": 1}}, 422, "must be a list"),
    ("bool channel", {"json": {"t": [60_000, 60_001], "channel": [1, True]}}, 422,
     "column 'channel' must hold integers, not true/false"),
    ("bool time", {"json": {"t": [True], "channel": [1]}}, 422,
     "column 't' must hold integers, not true/false"),
    ("nested column", {"json": {"t": [[1, 2]], "channel": [1]}}, 422, "flat list"),
    ("unknown option", {"json": {"flsuh": True}}, 422, "body.flsuh: Extra inputs"),
    ("bad option type", {"json": {"flush": "maybe"}}, 422, "body.flush"),
    # JSON values are not guessed at: a string, a number or a bool of the wrong type is refused
    ("option as a string", {"json": {"flush": "yes"}}, 422,
     "body.flush: Input should be a valid boolean"),
    ("seq as a string", {"json": {"seq": "3"}}, 422, "body.seq: Input should be a valid integer"),
    ("seq as a float", {"json": {"seq": 3.0}}, 422, "body.seq: Input should be a valid integer"),
    ("seq as a bool", {"json": {"seq": True}}, 422, "body.seq: Input should be a valid integer"),
    ("option as a number", {"json": {"include_spikes": 1}}, 422, "body.include_spikes"),
    ("bad query option", {"params": {"top_k": 0}, "content": b"", "headers": RAW}, 422, "top_k"),
    ("late event", {"json": {"t": [10_000], "channel": [1]}}, 422, "already closed"),
    ("time jump", {"json": {"t": [10**15], "channel": [1]}}, 422, "would close"),
    ("t past 2**62", {"json": {"t": [2**63 - 1], "channel": [1]}}, 422,
     "timestamp 9223372036854775807 at index 0 is past"),
    ("DVS events to a cochlea model", {"content": b"\x00" * 26, "headers": RAW}, 422,
     "26 bytes is not a whole number of 10-byte cochlea events ([('t', '<i8'), ('channel', "
     "'<u2')]); it is a whole number of 13-byte dvs events: this model takes cochlea events"),
    ("ragged binary", {"content": b"\x00" * 11, "headers": RAW}, 422,
     "not a whole number of 10-byte cochlea events"),
    ("npy of the wrong dtype", {"content": npy(np.arange(4)),
                                "headers": {"content-type": "application/x-npy"}}, 422,
     "1-d structured array"),
    ("npy garbage", {"content": b"not numpy", "headers": {"content-type": "application/x-npy"}},
     422, "not a readable .npy"),
    ("npz sent as npy", {"content": npz(SECOND[:5]), "headers": NPY}, 422,
     "not a readable .npy"),
    ("npy declaring 10**15 events", {"content": npy_declaring(10**15), "headers": NPY}, 413,
     "1000000000000000 events in one request is over the limit of 100"),
    ("npy shorter than its header", {"content": npy(SECOND[:5])[:-3], "headers": NPY}, 422,
     "declares 5 events of 10 bytes, but 47 bytes follow it"),
    ("float t of 2**63", {"json": {"t": [60_000.0, 2.0**63], "channel": [1, 1]}}, 422,
     "value 9223372036854775808 at index 1 does not fit its int64 field"),
    ("negative channel", {"json": {"t": [60_000], "channel": [-1]}}, 422,
     "'channel' value -1 at index 0 does not fit its uint16 field [0, 65535]"),
    ("bad content type", {"content": b"t,channel\n1,2", "headers": {"content-type": "text/csv"}},
     415, "text/csv"),
    ("body over the cap", {"content": b"\x00" * 2010, "headers": RAW}, 413, "limit"),
    ("too many events", {"content": b"\x00" * 1010, "headers": RAW}, 413, "over the limit of 100"),
    ("open bin over the cap", {"json": {"t": [int(FIRST["t"][99])] * 100, "channel": [1] * 100}},
     413, "the open bin would hold"),
    ("seq replay", {"json": {"seq": 1}}, 409, "seq 1 was already applied"),
]


def state_of(client: TestClient, sid: str, headers: dict[str, str]) -> dict[str, Any]:
    info = client.get(f"/v1/sessions/{sid}", headers=headers).json()
    return {k: v for k, v in info.items() if k not in ("idle_s", "expires_in_s")}


def feed_good(client: TestClient, sid: str, headers: dict[str, str], events: np.ndarray,
              **opts: Any) -> dict[str, Any]:
    r = client.post(f"/v1/sessions/{sid}/events", json={**columns(events), **opts},
                    headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def open_session(client: TestClient, **body: Any) -> tuple[str, dict[str, str]]:
    r = client.post("/v1/sessions", json={"model": COCHLEA, **body})
    assert r.status_code == 201, r.text
    return r.json()["id"], {"X-Session-Token": r.json()["token"]}


@pytest.fixture
def capped(make_client: Any) -> TestClient:
    return make_client(max_body_bytes=2000, max_events_per_request=100)


def test_bad_inputs_are_refused_and_change_nothing(capped: TestClient) -> None:
    client = capped
    sid, headers = open_session(client)
    feed_good(client, sid, headers, FIRST[:100], seq=1)
    for name, kwargs, status, words in BAD:
        before = state_of(client, sid, headers)
        r = client.post(f"/v1/sessions/{sid}/events", **{
            **kwargs, "headers": {**headers, **kwargs.get("headers", {})}})
        assert r.status_code == status, (name, r.text)
        assert words in r.json()["detail"], (name, r.json()["detail"])
        assert state_of(client, sid, headers) == before, name
    feed_good(client, sid, headers, FIRST[100:], seq=2)
    after_bad = feed_good(client, sid, headers, SECOND[:100], flush=True)

    ref, ref_headers = open_session(client)
    feed_good(client, ref, ref_headers, FIRST[:100])
    feed_good(client, ref, ref_headers, FIRST[100:])
    clean = feed_good(client, ref, ref_headers, SECOND[:100], flush=True)
    for key in ("probabilities", "bins", "spikes", "synops"):
        assert after_bad[key] == clean[key], key
    assert after_bad["events"]["total_accepted"] == clean["events"]["total_accepted"]


def test_dvs_pixel_out_of_range_names_the_field_and_index(client: TestClient) -> None:
    r = client.post(f"/v1/models/{DVS}/infer",
                    json={"t": [0, 1, 2], "x": [0, 1, 2], "y": [0, 9, 1], "p": [0, 1, 0]})
    assert r.status_code == 422
    assert r.json()["detail"] == "y 9 at index 1 is out of range [0, 8)"


def test_a_recording_too_long_for_infer_is_refused_in_infers_terms(client: TestClient) -> None:
    r = client.post(f"/v1/models/{COCHLEA}/infer", json={"t": [0, 10**15], "channel": [1, 2]})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "the recording spans" in detail and "through a session" in detail
    assert "watermark" not in detail  # /infer takes none


@pytest.mark.parametrize(("request_kwargs", "detail"), [
    ({"content": b'{"model": ', "headers": {"content-type": "application/json"}},
     "the body is not valid JSON: "),
    ({"content": b"model=x", "headers": {"content-type": "text/plain"}},
     "the body must be a JSON object (content-type: application/json)"),
    ({"json": {"model": COCHLEA, "t0_us": -1}},
     'body.t0_us: must be an integer from 0 to 4611686018427387904 (µs) or "first_event"'),
    ({"json": {"model": COCHLEA, "t0_us": "5"}},
     'body.t0_us: must be an integer from 0 to 4611686018427387904 (µs) or "first_event"'),
    ({"json": {"model": COCHLEA, "t0_us": 5.0}}, "body.t0_us: must be an integer"),
])
def test_bodies_fastapi_validates_are_refused_in_one_plain_line(
        client: TestClient, request_kwargs: dict[str, Any], detail: str) -> None:
    r = client.post("/v1/sessions", **request_kwargs)
    assert r.status_code == 422 and r.json()["detail"].startswith(detail), r.text


def test_query_options_are_text_and_converted(client: TestClient) -> None:
    """Only JSON values are strict: a query string has no other types than text."""
    sid, headers = open_session(client)
    r = client.post(f"/v1/sessions/{sid}/events", params={"flush": "true", "seq": "4"},
                    content=FIRST.tobytes(), headers={**headers, **RAW})
    assert r.status_code == 200, r.text
    assert r.json()["seq"] == 4 and r.json()["events"]["pending"] == 0


def test_drop_policy_counts_late_events_instead_of_refusing(client: TestClient) -> None:
    sid, headers = open_session(client, late="drop")
    feed_good(client, sid, headers, FIRST)
    late = FIRST[:10]
    result = feed_good(client, sid, headers, np.concatenate([late, SECOND[:5]]))
    assert result["events"]["dropped"] == 10 and result["events"]["accepted"] == 5
    assert result["events"]["total_dropped"] == 10
    assert result["events"]["total_accepted"] == len(FIRST) + 5


def test_unknown_model_is_404_with_the_served_names(client: TestClient) -> None:
    r = client.post("/v1/sessions", json={"model": "nope"})
    assert r.status_code == 404
    assert COCHLEA in r.json()["detail"] and DVS in r.json()["detail"]
    assert client.get("/v1/models/nope").status_code == 404
    assert client.post("/v1/models/nope/infer", json={}).status_code == 404


def test_a_timestamp_near_int64s_end_is_refused_not_binned_forever(client: TestClient) -> None:
    # With the origin at the first event, no time-jump guard stands before the binning loop,
    # whose bin ends would wrap around int64 and never pass the event.
    sid, headers = open_session(client, t0_us="first_event")
    r = client.post(f"/v1/sessions/{sid}/events", headers=headers,
                    json={"t": [2**63 - 1], "channel": [0], "flush": True})
    assert r.status_code == 422 and "is past" in r.json()["detail"], r.text
    r = client.post(f"/v1/models/{COCHLEA}/infer", params={"t0_us": "first_event"},
                    json={"t": [2**63 - 1], "channel": [0]})
    assert r.status_code == 422 and "is past" in r.json()["detail"], r.text
    assert state_of(client, sid, headers)["bins"] == 0


def test_events_before_the_origin_are_refused_as_such(client: TestClient) -> None:
    sid, headers = open_session(client, t0_us=5000)
    r = client.post(f"/v1/sessions/{sid}/events", json={"t": [4000], "channel": [1]},
                    headers=headers)
    assert r.status_code == 422
    assert r.json()["detail"] == ("event at index 0 (t=4000 us) is before the stream's origin "
                                  "t0_us=5000; send events at or after the origin")


def test_null_columns_count_as_absent(client: TestClient) -> None:
    """The schema declares the other sensor's columns nullable: sending them as null is fine."""
    sid, headers = open_session(client)
    r = client.post(f"/v1/sessions/{sid}/events", headers=headers,
                    json={"t": [100, 2500], "channel": [1, 2], "x": None, "y": None, "p": None})
    assert r.status_code == 200, r.text
    assert r.json()["events"]["accepted"] == 2
