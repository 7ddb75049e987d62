"""A session snapshot round-trips and a restored session continues the stream exactly."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.routes.sessions import STATE_TYPE
from server.runtime import Runtime
from server.state_codec import SnapshotError, decode, encode
from tests.server.conftest import COCHLEA, cochlea_recording
from tests.server.test_errors import feed_good, open_session


def test_restored_session_continues_the_same_stream(client: TestClient) -> None:
    events = cochlea_recording(seed=31)
    first, rest = events[:170], events[170:]
    sid, headers = open_session(client, late="drop")
    feed_good(client, sid, headers, first, seq=4)
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    session = runtime.sessions.local.get(sid)
    assert session is not None
    model = session.model
    blob = client.portal.call(runtime.sessions.snapshot, session)  # type: ignore[union-attr]
    wire = encode(blob)
    snap = decode(wire, model.name, model.version)
    assert snap.seq == 4 and snap.late == "drop" and len(snap.binner.pending) > 0
    np.testing.assert_array_equal(snap.binner.pending, session.binner.pending)

    async def restore() -> str:
        return (await runtime.sessions.restore(model, snap)).id

    copy_id = client.portal.call(restore)  # type: ignore[union-attr]
    copy = runtime.sessions.local.get(copy_id)
    assert copy is not None
    copy_headers = {"X-Session-Token": copy.token}
    original = feed_good(client, sid, headers, rest, flush=True)
    restored = feed_good(client, copy_id, copy_headers, rest, flush=True)
    for key in ("probabilities", "bins", "spikes", "synops", "events"):
        assert restored[key] == original[key], key
    assert client.get(f"/v1/sessions/{copy_id}", headers=copy_headers).json()["seq"] == 4


def test_decode_refuses_other_weights_and_garbage(client: TestClient) -> None:
    sid, _ = open_session(client)
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    session = runtime.sessions.local.get(sid)
    assert session is not None
    wire = encode(client.portal.call(runtime.sessions.snapshot, session))  # type: ignore[union-attr]
    with pytest.raises(SnapshotError, match="not tiny-cochlea@000"):
        decode(wire, COCHLEA, "000")
    version = session.model.version
    with pytest.raises(SnapshotError, match="not a readable"):
        decode(b"\x93garbage", COCHLEA, version)
    with pytest.raises(SnapshotError, match="not a map"):
        decode(msgpack.packb(5), COCHLEA, version)
    doc = msgpack.unpackb(wire)
    with pytest.raises(SnapshotError, match="format 3"):
        decode(msgpack.packb({**doc, "format": 3}), COCHLEA, version)
    no_comp = {k: v for k, v in doc["state"].items() if k != "comp"}
    with pytest.raises(SnapshotError, match=r"state\.comp: missing"):
        decode(msgpack.packb({**doc, "state": no_comp}), COCHLEA, version)
    with pytest.raises(SnapshotError, match="seq"):
        decode(msgpack.packb({**doc, "seq": "7"}), COCHLEA, version)
    with pytest.raises(SnapshotError, match="cannot hold"):
        decode(msgpack.packb({**doc, "log_probs": {**doc["log_probs"], "shape": [9]}}),
               COCHLEA, version)
    with pytest.raises(SnapshotError, match="dtype"):
        decode(msgpack.packb({**doc, "log_probs": {**doc["log_probs"], "dtype": "|O"}}),
               COCHLEA, version)


def test_a_format_1_snapshot_continues_as_the_session_it_was_taken_from(
        client: TestClient) -> None:
    """Snapshots taken before the readout's sum was compensated (no ``comp``, a float32 bin
    count) still import: as the same snapshot with a zero compensation and its count."""
    events = cochlea_recording(seed=32)
    sid, headers = open_session(client)
    feed_good(client, sid, headers, events[:200])
    doc = msgpack.unpackb(client.get(f"/v1/sessions/{sid}/state", headers=headers).content)
    state = doc["state"]
    count = np.frombuffer(state["count"]["data"], np.int32)
    zero = np.zeros(len(state["comp"]["data"]) // 4, "<f4").tobytes()
    uncompensated = {**doc, "state": {**state, "comp": {**state["comp"], "data": zero}}}
    old = {**doc, "format": 1, "state": {
        **{k: v for k, v in state.items() if k != "comp"},
        "count": {"dtype": "<f4", "shape": [], "data": count.astype("<f4").tobytes()}}}
    results = []
    for snapshot in (uncompensated, old):
        copy, copy_headers = open_session(client)
        put = client.put(f"/v1/sessions/{copy}/state", content=msgpack.packb(snapshot),
                         headers={**copy_headers, "content-type": STATE_TYPE})
        assert put.status_code == 200, put.text
        results.append(feed_good(client, copy, copy_headers, events[200:], flush=True))
    original = feed_good(client, sid, headers, events[200:], flush=True)
    for key in ("probabilities", "bins", "spikes", "synops", "events"):
        assert results[1][key] == results[0][key], key
    np.testing.assert_allclose(results[1]["probabilities"], original["probabilities"],
                               atol=1e-6)
    nan = {**old, "state": {**old["state"], "count": {
        "dtype": "<f4", "shape": [], "data": np.float32("nan").tobytes()}}}
    with pytest.raises(SnapshotError, match="no float32 bin count"):
        decode(msgpack.packb(nan), COCHLEA, doc["version"])
