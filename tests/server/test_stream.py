"""WS /v1/stream over real uvicorn: open, per-frame errors, cadence, resumption, close codes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from clients import Client, Retry, TooLarge
from server.errors import ApiError
from server.routes.stream import read_frames
from tests.server.conftest import COCHLEA, cochlea_recording, columns


def ws_url(live_url: str) -> str:
    return live_url.replace("http", "ws") + "/v1/stream"


async def recv(ws: Any) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), 30))


async def close_code(live_url: str, first: str | bytes) -> tuple[int, str]:
    async with websockets.connect(ws_url(live_url)) as ws:
        await ws.send(first)
        with pytest.raises(ConnectionClosed) as info:
            await recv(ws)
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


def test_bad_open_messages_close_with_documented_codes(live_url: str) -> None:
    async def run() -> None:
        assert (await close_code(live_url, "{nope"))[0] == 4400
        assert (await close_code(live_url, b"\x00" * 10))[0] == 4400
        assert (await close_code(live_url, '{"late": "never"}'))[0] == 4400
        code, reason = await close_code(live_url, f'{{"model": "{COCHLEA}", "top_k": "3"}}')
        assert code == 4400 and "top_k: Input should be a valid integer" in reason
        code, reason = await close_code(live_url, '{"model": "missing"}')
        assert code == 4404 and "missing" in reason
        assert (await close_code(live_url, '{"session": "x", "token": "y"}'))[0] == 4404
        code, reason = await close_code(live_url, '{"session": "x", "token": "y", "model": "m"}')
        assert (code, reason) == (4400, "`model` is for opening a new session; resume one with "
                                        "`session` and `token` alone")
        code, reason = await close_code(
            live_url, '{"session": "x", "token": "y", "model": "m", "t0_us": 0, "late": "drop"}')
        assert code == 4400 and reason.startswith("`late`, `model`, `t0_us` are for opening")
        # the reason echoes the id: a long non-ASCII one still closes with the right code
        code, reason = await close_code(live_url, orjson.dumps({"session": "é" * 100,
                                                                "token": "y"}).decode())
        assert code == 4404 and len(reason.encode()) <= 123

    asyncio.run(run())


def test_frame_errors_keep_the_connection_and_the_state(live_url: str) -> None:
    events = cochlea_recording(seed=21)
    half = len(events) // 2

    async def run() -> None:
        async with websockets.connect(ws_url(live_url)) as ws:
            await ws.send(orjson.dumps({"model": COCHLEA}).decode())
            opened = await recv(ws)
            await ws.send(events[:half].tobytes())
            first = await recv(ws)
            await ws.send(b"\x00" * 7)  # not whole events
            error = await recv(ws)
            assert error == {"type": "error", "status": 422, "frame": 1,
                             "detail": error["detail"]}
            assert "not a whole number" in error["detail"]
            await ws.send(orjson.dumps({"t": [0], "channel": [0]}).decode())  # late
            assert (await recv(ws))["status"] == 422
            await ws.send(orjson.dumps({"flush": "yes"}).decode())  # JSON is not guessed at
            assert (await recv(ws))["detail"] == "frame.flush: Input should be a valid boolean"
            await ws.send(orjson.dumps({**columns(events[half:]), "flush": True}).decode())
            last = await recv(ws)
        assert first["type"] == last["type"] == "result"
        assert last["events"]["total_accepted"] == len(events)
        assert last["session"] == opened["id"]

    asyncio.run(run())


@pytest.mark.parametrize(("refusal", "code"), [
    (ApiError(503, "the session store is unavailable; nothing was changed"), 4503),
    (ApiError(409, "session 'x' is being advanced by another replica at the same time"), 4409),
])
def test_a_frame_refused_for_the_sessions_sake_ends_the_stream_before_later_frames(
        live_url: str, monkeypatch: pytest.MonkeyPatch, refusal: ApiError, code: int) -> None:
    """Frame 1 is refused for a reason that is not the frame's own (a store failure, a rival
    writer): frame 2, already read, must not be applied without it."""
    from server.routes import stream

    apply = stream.process_chunk

    async def refuse_seq_1(session: Any, events: Any, opts: Any, sessions: Any) -> Any:
        if opts.seq == 1:
            raise refusal
        return await apply(session, events, opts, sessions)

    monkeypatch.setattr(stream, "process_chunk", refuse_seq_1)
    frame = seq_frames(cochlea_recording(seed=25), 3)

    async def run() -> tuple[int | None, dict[str, Any]]:
        async with websockets.connect(ws_url(live_url)) as ws:
            await ws.send(orjson.dumps({"model": COCHLEA}).decode())
            opened = await recv(ws)
            await ws.send(frame(0))
            await recv(ws)
            await ws.send(frame(1))
            await ws.send(frame(2))
            with pytest.raises(ConnectionClosed) as closed:
                await recv(ws)
        headers = {"X-Session-Token": opened["token"]}
        async with httpx.AsyncClient(base_url=live_url) as http:
            info = (await http.get(f"/v1/sessions/{opened['id']}", headers=headers)).json()
        return (closed.value.rcvd.code if closed.value.rcvd else None), info

    closed_with, info = asyncio.run(run())
    assert closed_with == code
    assert info["seq"] == 0  # frame 2 was not applied


def test_resume_after_a_dropped_connection_continues_the_same_stream(live_url: str) -> None:
    events = cochlea_recording(seed=22)
    cuts = [0, 100, 250, len(events)]

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        async with websockets.connect(ws_url(live_url)) as ws:
            await ws.send(orjson.dumps({"model": COCHLEA, "result_every": 2}).decode())
            opened = await recv(ws)
            await ws.send(orjson.dumps({**columns(events[:100]), "seq": 0}).decode())
            await ws.send(orjson.dumps({**columns(events[100:250]), "seq": 1}).decode())
            pushed = await recv(ws)  # result_every=2: only after the second frame
            assert pushed["frame"] == 1 and pushed["seq"] == 1
        resume = {"session": opened["id"], "token": opened["token"]}
        async with websockets.connect(ws_url(live_url)) as ws:
            await ws.send(orjson.dumps(resume).decode())
            again = await recv(ws)
            assert again["resumed"] and again["seq"] == 1 and again["id"] == opened["id"]
            await ws.send(orjson.dumps({**columns(events[100:250]), "seq": 1}).decode())
            assert (await recv(ws))["status"] == 409  # the replayed frame is refused
            await ws.send(orjson.dumps({**columns(events[250:]), "seq": 2,
                                        "flush": True}).decode())
            resumed_last = await recv(ws)
        async with websockets.connect(ws_url(live_url)) as ws:
            await ws.send(orjson.dumps({**resume, "token": "wrong"}).decode())
            with pytest.raises(ConnectionClosed) as info:
                await recv(ws)
            assert info.value.rcvd is not None and info.value.rcvd.code == 4403
        async with websockets.connect(ws_url(live_url)) as ws:  # was a 1011 and a traceback
            await ws.send(orjson.dumps({**resume, "token": "é"}).decode())
            with pytest.raises(ConnectionClosed) as info:
                await recv(ws)
            assert info.value.rcvd is not None and info.value.rcvd.code == 4403
        async with websockets.connect(ws_url(live_url)) as ws:
            await ws.send(orjson.dumps({"model": COCHLEA}).decode())
            await recv(ws)
            for lo, hi in itertools.pairwise(cuts):
                await ws.send(orjson.dumps({**columns(events[lo:hi]),
                                            "flush": hi == len(events)}).decode())
                straight = await recv(ws)
        return resumed_last, straight

    resumed_last, straight = asyncio.run(run())
    np.testing.assert_allclose(resumed_last["probabilities"], straight["probabilities"],
                               atol=1e-6)
    assert resumed_last["spikes"]["total"] == straight["spikes"]["total"]


SLOW_STEPS = {"batch_max_wait_ms": 100.0}  # each frame waits 0.1 s: a resume lands mid-stream


def seq_frames(events: np.ndarray, n: int) -> Callable[[int], str]:
    """JSON frame ``seq`` of the recording cut into ``n`` pieces, the last one flushing."""
    pieces = np.array_split(events, n)
    return lambda seq: orjson.dumps({**columns(pieces[seq]), "seq": seq,
                                     "flush": seq == n - 1}).decode()


def test_a_resume_stops_the_connection_still_streaming_and_reports_a_final_position(
        make_live: Callable[..., str]) -> None:
    live_url = make_live(**SLOW_STEPS)
    events = cochlea_recording(seed=24, n=2000, duration_us=300_000)
    pieces = np.array_split(events, 20)
    frame = seq_frames(events, len(pieces))

    async def run() -> tuple[int, list[int], int | None, dict[str, Any]]:
        async with websockets.connect(ws_url(live_url)) as old:
            await old.send(orjson.dumps({"model": COCHLEA}).decode())
            opened = await recv(old)
            for seq in range(len(pieces)):  # the server is still busy with these when ...
                await old.send(frame(seq))
            resume = {"session": opened["id"], "token": opened["token"]}
            headers = {"X-Session-Token": opened["token"]}
            async with websockets.connect(ws_url(live_url)) as new:  # ... the client resumes
                await new.send(orjson.dumps(resume).decode())
                position = (await recv(new))["seq"]
                async with httpx.AsyncClient(base_url=live_url) as http:
                    later = []
                    for _ in range(3):
                        await asyncio.sleep(0.1)
                        info = await http.get(f"/v1/sessions/{opened['id']}", headers=headers)
                        later.append(info.json()["seq"])
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await recv(old)
                for seq in range(position + 1, len(pieces)):
                    await new.send(frame(seq))
                    last = await recv(new)
        old_code = closed.value.rcvd.code if closed.value.rcvd is not None else None
        return position, later, old_code, last

    position, later, old_code, last = asyncio.run(run())
    assert position < len(pieces) - 1  # it took over mid-stream
    assert later == [position] * 3  # nothing of the old connection's is applied after it
    assert old_code == 4409
    whole = httpx.post(f"{live_url}/v1/models/{COCHLEA}/infer", json=columns(events)).json()
    np.testing.assert_allclose(last["probabilities"], whole["probabilities"], atol=1e-5)
    assert last["events"]["total_accepted"] == len(events)


def test_of_two_resumes_at_once_the_last_streams_and_the_other_is_closed(
        make_live: Callable[..., str]) -> None:
    """One connection feeds a session at a time, however many resume it together."""
    live_url = make_live(**SLOW_STEPS)
    events = cochlea_recording(seed=25, n=2000, duration_us=300_000)
    n = 12
    frame = seq_frames(events, n)

    async def silent_or_closed(ws: Any) -> int | None:
        """The close code of a connection closed within 2 s, else None."""
        try:
            await asyncio.wait_for(ws.recv(), 2)
        except TimeoutError:
            return None
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else -1
        raise AssertionError("a resumed connection was sent something unasked")

    async def resume(ws: Any, opened: dict[str, Any]) -> int | None:
        """The position the resume is told, None if it is closed first."""
        await ws.send(orjson.dumps({"session": opened["id"],
                                    "token": opened["token"]}).decode())
        try:
            return int((await recv(ws))["seq"])
        except ConnectionClosed:
            return None

    async def run() -> tuple[list[int | None], dict[str, Any]]:
        async with websockets.connect(ws_url(live_url)) as first:
            await first.send(orjson.dumps({"model": COCHLEA}).decode())
            opened = await recv(first)
            for seq in range(n):
                await first.send(frame(seq))
            async with websockets.connect(ws_url(live_url)) as b, \
                    websockets.connect(ws_url(live_url)) as c:
                positions = await asyncio.gather(resume(b, opened), resume(c, opened))
                codes = await asyncio.gather(silent_or_closed(b), silent_or_closed(c))
                winner, position = ((b, positions[0]) if codes[0] is None
                                    else (c, positions[1]))
                assert position is not None
                for seq in range(position + 1, n):
                    await winner.send(frame(seq))
                    last = await recv(winner)
        return codes, last

    codes, last = asyncio.run(run())
    assert sorted(codes, key=str) == [4409, None]
    whole = httpx.post(f"{live_url}/v1/models/{COCHLEA}/infer", json=columns(events)).json()
    np.testing.assert_allclose(last["probabilities"], whole["probabilities"], atol=1e-5)
    assert last["events"]["total_accepted"] == len(events)


def test_the_reader_stops_reading_while_the_frame_queue_is_full() -> None:
    """Backpressure: frames wait in the socket (and so in TCP) while the queue is full."""

    class Socket:  # the one call the reader makes
        reads = 0

        async def receive(self) -> dict[str, Any]:
            self.reads += 1
            return {"type": "websocket.receive", "bytes": b"\x00" * 10}

    async def run() -> tuple[int, int]:
        socket, queue = Socket(), asyncio.Queue[Any](2)
        reader = asyncio.create_task(read_frames(socket, queue))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        while_full = socket.reads  # two queued, the third waiting for room
        await queue.get()
        await asyncio.sleep(0.05)
        reader.cancel()
        return while_full, socket.reads

    assert asyncio.run(run()) == (3, 4)


def test_a_fast_sender_is_answered_in_order(live_url: str) -> None:
    """More frames than the queue holds: nothing is lost or reordered."""
    events = cochlea_recording(seed=23, n=2000, duration_us=300_000)
    pieces = np.array_split(events, 40)

    async def run() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url(live_url)) as ws:
            await ws.send(orjson.dumps({"model": COCHLEA}).decode())
            await recv(ws)
            for piece in pieces:
                await ws.send(piece.tobytes())
            return [await recv(ws) for _ in pieces]

    results = asyncio.run(run())
    assert [r["frame"] for r in results] == list(range(len(pieces)))
    assert results[-1]["events"]["total_accepted"] == len(events)


def test_an_oversized_frame_closes_the_stream_and_the_client_raises_too_large(
        make_live: Callable[..., str]) -> None:
    """Frames over ``max_body_bytes`` get close code 4413 from the app (up to twice the cap;
    beyond, the protocol's 1009): either way the client raises TooLarge, not reconnects."""
    url = make_live(max_body_bytes=2000)
    over = cochlea_recording(seed=22, n=300)  # 3,000 bytes
    far_over = cochlea_recording(seed=23, n=700)  # 7,000 bytes

    async def close_of(frame: bytes) -> int:
        async with websockets.connect(ws_url(url)) as ws:
            await ws.send(orjson.dumps({"model": COCHLEA}).decode())
            await recv(ws)
            await ws.send(frame)
            with pytest.raises(ConnectionClosed) as info:
                await recv(ws)
        assert info.value.rcvd is not None
        return info.value.rcvd.code

    assert asyncio.run(close_of(over.tobytes())) == 4413
    assert asyncio.run(close_of(far_over.tobytes())) == 1009
    for events in (over, far_over):
        with Client(url, retry=Retry(attempts=2, base_s=0.01)) as client, \
                client.stream(COCHLEA) as stream, pytest.raises(TooLarge):
            list(stream.run([events]))


def test_no_open_message_in_time_and_a_deleted_session_close_with_their_codes(
        make_live: Callable[..., str]) -> None:
    url = make_live(ws_open_timeout_s=0.3)

    async def silent() -> int:
        async with websockets.connect(ws_url(url)) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await recv(ws)
        assert info.value.rcvd is not None
        return info.value.rcvd.code

    async def deleted_while_connected() -> tuple[int, str]:
        async with websockets.connect(ws_url(url)) as ws:
            await ws.send(orjson.dumps({"model": COCHLEA}).decode())
            opened = await recv(ws)
            async with httpx.AsyncClient(base_url=url) as http:
                r = await http.delete(f"/v1/sessions/{opened['id']}",
                                      headers={"X-Session-Token": opened["token"]})
                assert r.status_code == 204
            await ws.send(cochlea_recording(seed=24)[:50].tobytes())
            with pytest.raises(ConnectionClosed) as info:
                await recv(ws)
        assert info.value.rcvd is not None
        return info.value.rcvd.code, info.value.rcvd.reason

    assert asyncio.run(silent()) == 4408
    code, reason = asyncio.run(deleted_while_connected())
    assert code == 4410 and "deleted or expired" in reason


def test_frames_over_the_event_cap_are_refused_binary_or_json_and_change_nothing(
        make_live: Callable[..., str]) -> None:
    url = make_live(max_events_per_request=100)
    events = cochlea_recording(seed=24, n=300)

    async def run() -> None:
        async with websockets.connect(ws_url(url)) as ws:
            await ws.send(orjson.dumps({"model": COCHLEA}).decode())
            await recv(ws)
            for frame in (events[:101].tobytes(), orjson.dumps(columns(events[:101])).decode()):
                await ws.send(frame)
                error = await recv(ws)
                assert error["status"] == 413, error
                assert "101 events in one request is over the limit of 100" in error["detail"]
            for piece in (events[:100], events[100:200], events[200:]):
                await ws.send(piece.tobytes())
                last = await recv(ws)
        assert last["events"]["total_accepted"] == len(events)

    asyncio.run(run())
