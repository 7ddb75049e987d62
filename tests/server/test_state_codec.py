"""A session snapshot round-trips and a restored session continues the stream exactly."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from fastapi.testclient import TestClient

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
    session = runtime.sessions.store.get(sid)
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
    copy = runtime.sessions.store.get(copy_id)
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
    session = runtime.sessions.store.get(sid)
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
    with pytest.raises(SnapshotError, match="format 2"):
        decode(msgpack.packb({**doc, "format": 2}), COCHLEA, version)
    with pytest.raises(SnapshotError, match="seq"):
        decode(msgpack.packb({**doc, "seq": "7"}), COCHLEA, version)
    with pytest.raises(SnapshotError, match="cannot hold"):
        decode(msgpack.packb({**doc, "log_probs": {**doc["log_probs"], "shape": [9]}}),
               COCHLEA, version)
    with pytest.raises(SnapshotError, match="dtype"):
        decode(msgpack.packb({**doc, "log_probs": {**doc["log_probs"], "dtype": "|O"}}),
               COCHLEA, version)
