"""Connection loss mid-stream: retries and resumption apply every batch exactly once, so the
final probabilities equal an uninterrupted run's."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import websockets

from clients import AsyncClient, Batch, Client, EventsResult, Retry, wire
from tests.clients.proxy import Proxy
from tests.server.conftest import COCHLEA, DVS, cochlea_recording, dvs_recording

FAST = Retry(attempts=8, base_s=0.01, max_s=0.2)


def test_a_batch_whose_answer_was_lost_is_acknowledged_not_applied_twice(
        proxy: Proxy) -> None:
    events = cochlea_recording(seed=51)
    pieces = np.array_split(events, 4)
    with Client(proxy.url, retry=FAST) as client:
        whole = client.infer(COCHLEA, events)
        session = client.open_session(COCHLEA)
        session.send(pieces[0])
        proxy.swallow()  # batch 1 reaches the server; its answer is lost with the connection
        retried = session.send(pieces[1])
        assert retried.seq == 1 and retried.events.accepted == len(pieces[1])
        assert session.info().events_accepted == len(pieces[0]) + len(pieces[1])
        session.send(pieces[2])
        last = session.send(pieces[3], flush=True)
    assert proxy.connections >= 2  # it did reconnect
    assert last.events.total_accepted == len(events)
    np.testing.assert_allclose(last.probabilities, whole.probabilities, atol=1e-6)
    assert last.spikes.total == whole.spikes.total


def test_the_batch_after_one_whose_call_was_given_up_is_applied(proxy: Proxy) -> None:
    """A caller's timeout ends a send whose batch the server applied: the next batch is
    applied, not refused as a replay of its number, and info() says the first one landed."""
    events = cochlea_recording(seed=57)
    pieces = np.array_split(events, 3)

    async def run() -> None:
        async with AsyncClient(proxy.url, retry=FAST) as client:
            session = await client.open_session(COCHLEA)
            await session.send(pieces[0])
            proxy.hold(1, 1.0, b"/events")  # batch 1 is applied; its answer comes too late
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(session.send(pieces[1]), 0.3)
            last = await session.send(pieces[2], flush=True)
            assert last.seq == 2 and last.events.total_accepted == len(events)
            assert (await session.info()).seq == 2

    asyncio.run(run())


def test_websocket_stream_resumes_after_cuts_with_the_uninterrupted_result(
        proxy: Proxy) -> None:
    events = dvs_recording(seed=52, n=1500, duration_us=300_000)
    pieces = np.array_split(events, 30)
    batches = [*pieces, Batch(flush=True)]

    async def run() -> tuple[list[EventsResult], EventsResult, tuple[int, int]]:
        async with AsyncClient(proxy.url, retry=FAST) as client:
            whole = await client.infer(DVS, events)
            results = []
            async with client.stream(DVS, window=6) as stream:
                async for result in stream.run(batches):
                    results.append(result)
                    if len(results) in (4, 11):
                        proxy.cut()  # frames in flight: some landed, some not
                    if len(results) == 18:
                        proxy.swallow()  # the next results are lost with the connection
                info = await (await client.resume_session(stream.id, stream.token)).info()
            assert info.events_accepted == len(events) and info.seq == len(batches) - 1
            return results, whole, (stream.reconnects, stream.resent)

    results, whole, (reconnects, resent) = asyncio.run(run())
    assert reconnects >= 3 and resent > 0
    streams = [line for line in proxy.request_lines if "/v1/stream" in line]
    assert streams[0].startswith("GET /v1/stream ")  # opened: no session to route by yet
    assert len(streams) >= 1 + reconnects and \
        all(line.startswith("GET /v1/stream?session=") for line in streams[1:])
    seqs = [r.seq for r in results]
    assert seqs == sorted(set(seqs)) and seqs[-1] == len(batches) - 1  # in order, no repeats
    last = results[-1]
    assert last.events.total_accepted == len(events)
    np.testing.assert_allclose(last.probabilities, whole.probabilities, atol=1e-6)
    assert last.spikes.total == whole.spikes.total


def test_a_stream_rides_out_a_session_store_that_answers_too_late(
        make_live: Callable[..., str], slow_redis: Proxy, prefix: str) -> None:
    """Behind a replica whose Redis answers one save too late (stored, unconfirmed), the
    replica closes with 4503 before any later frame; the stream waits, resumes and ends with
    the uninterrupted result, every frame applied once and in order."""
    url = make_live(session_store=f"redis://127.0.0.1:{slow_redis.port}",
                    session_store_prefix=prefix, session_store_timeout_s=0.3, retry_after_s=1)
    events = cochlea_recording(seed=60, n=1200, duration_us=300_000)
    batches = [*np.array_split(events, 12), Batch(flush=True)]

    async def run() -> tuple[list[EventsResult], EventsResult, int]:
        async with AsyncClient(url, retry=FAST) as client:
            whole = await client.infer(COCHLEA, events)
            results = []
            async with client.stream(COCHLEA, window=4) as stream:
                async for result in stream.run(batches):
                    results.append(result)
                    if len(results) == 3:
                        slow_redis.hold(2, seconds=1.0, marker=b"EVALSHA")
            return results, whole, stream.reconnects

    results, whole, reconnects = asyncio.run(asyncio.wait_for(run(), 60))
    assert reconnects == 1
    assert [r.seq for r in results] == list(range(len(batches)))
    last = results[-1]
    assert last.events.total_accepted == len(events)
    np.testing.assert_allclose(last.probabilities, whole.probabilities, atol=1e-6)
    assert last.spikes.total == whole.spikes.total


def test_sync_stream_over_json_frames(live_url: str) -> None:
    events = cochlea_recording(seed=53)
    with Client(live_url, binary=False) as client:
        whole = client.infer(COCHLEA, events)
        with client.stream(COCHLEA) as stream:
            results = list(stream.run([*np.array_split(events, 5), Batch(flush=True)]))
            assert client.resume_session(stream.id, stream.token).info().seq == 5
            assert (stream.reconnects, stream.resent) == (0, 0)  # no cut on this connection
    assert [r.seq for r in results] == list(range(6))
    np.testing.assert_allclose(results[-1].probabilities, whole.probabilities, atol=1e-6)


def test_watermarked_batches_go_as_binary_frames_with_what_json_frames_give(
        live_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A live sensor's batches (events up to a watermark, then a flush) are binary frames in
    binary mode, not JSON columns, and end where a JSON stream of them ends, bin for bin."""
    from websockets.asyncio.client import ClientConnection

    events = dvs_recording(seed=56, n=900, duration_us=200_000)
    ends = range(20_000, 200_001, 20_000)
    batches = [Batch(events[(events["t"] >= end - 20_000) & (events["t"] < end)], until_us=end)
               for end in ends]
    sent: list[type] = []
    send = ClientConnection.send

    async def spy(self: ClientConnection, message: Any, *args: Any, **kwargs: Any) -> None:
        sent.append(type(message))
        await send(self, message, *args, **kwargs)

    monkeypatch.setattr(ClientConnection, "send", spy)
    last = []
    for binary in (True, False):
        sent.clear()
        with Client(live_url, binary=binary) as client, client.stream(DVS) as stream:
            results = list(stream.run([*batches, Batch(until_us=210_000, flush=True)]))
        assert sent[1:] == [bytes if binary else str] * (len(batches) + 1)  # after the open
        assert [r.bins.total for r in results[:-1]] == [end // 2000 for end in ends]
        last.append(results[-1])
    assert last[0].events.total_accepted == len(events)
    assert last[0].bins == last[1].bins and last[0].spikes == last[1].spikes
    np.testing.assert_allclose(last[0].probabilities, last[1].probabilities, atol=1e-6)


def test_utterances_streamed_with_a_reset_each_are_scored_as_alone_through_cuts(
        proxy: Proxy) -> None:
    """A live stream of utterances, each starting with ``Batch(reset=its start)``: each
    flush answers what the utterance alone gets, though the connection is cut twice (a
    resent reset frame is applied once, by its seq)."""
    words = [cochlea_recording(seed=61 + i, n=300, duration_us=200_000) for i in range(3)]
    batches = []
    for i, word in enumerate(words):
        start = i * 5_000_000  # one every 5 s on the sensor's clock
        shifted = word.copy()
        shifted["t"] += start
        pieces = np.array_split(shifted, 3)
        batches += [Batch(pieces[0], reset=start), Batch(pieces[1]),
                    Batch(pieces[2], flush=True)]

    async def run() -> tuple[list[EventsResult], list[EventsResult], int]:
        async with AsyncClient(proxy.url, retry=FAST) as client:
            alone = [await client.infer(COCHLEA, word) for word in words]
            results = []
            # one frame in flight: a result lost with a cut is the one a resume returns
            async with client.stream(COCHLEA, window=1) as stream:
                async for result in stream.run(batches):
                    results.append(result)
                    if len(results) in (2, 6):
                        proxy.cut()
            return alone, results, stream.reconnects

    alone, results, reconnects = asyncio.run(run())
    assert reconnects >= 2
    assert [r.seq for r in results] == list(range(9))
    flushes = {r.seq: r for r in results if r.seq is not None and r.seq % 3 == 2}
    for word, seq, expected in zip(words, (2, 5, 8), alone, strict=True):
        assert flushes[seq].events.total_accepted == len(word)  # counters start again
        np.testing.assert_allclose(flushes[seq].probabilities, expected.probabilities, atol=1e-6)


def test_every_flush_is_answered_through_cuts_with_a_full_window(proxy: Proxy) -> None:
    """The server keeps the result of its last applied frame only, so a stream sends nothing
    after a flush until the flush is answered: however the cuts fall, every utterance gets
    its decision, what it alone gets."""
    words = [cochlea_recording(seed=80 + i, n=120, duration_us=60_000) for i in range(12)]
    batches = []
    for i, word in enumerate(words):
        start = i * 100_000
        shifted = word.copy()
        shifted["t"] += start
        first, *rest, last = np.array_split(shifted, 4)
        batches += [Batch(first, reset=start), *rest, Batch(last, flush=True)]

    async def run() -> tuple[list[EventsResult], list[EventsResult], int]:
        async with AsyncClient(proxy.url, retry=FAST) as client:
            alone = [await client.infer(COCHLEA, word) for word in words]
            results = []
            async with client.stream(COCHLEA) as stream:  # the default window: 8 in flight
                async for result in stream.run(batches):
                    results.append(result)
                    if len(results) % 3 == 1:
                        proxy.swallow(2)  # answers lost, their frames applied
            return alone, results, stream.reconnects

    alone, results, reconnects = asyncio.run(run())
    assert reconnects >= 4
    seqs = [r.seq for r in results]
    assert seqs == sorted(set(seqs))  # in order, none twice
    flushes = {r.seq: r for r in results if r.seq is not None and r.seq % 4 == 3}
    assert sorted(flushes) == [4 * i + 3 for i in range(len(words))]
    for word, seq, expected in zip(words, sorted(flushes), alone, strict=True):
        assert flushes[seq].events.total_accepted == len(word)
        np.testing.assert_allclose(flushes[seq].probabilities, expected.probabilities, atol=1e-6)


def test_binary_frames_carry_seq_watermark_flush_and_reset_in_their_header(
        live_url: str) -> None:
    """The server side of ``frame_header``: a binary frame's seq, until_us, flush and reset
    act as a JSON frame's do (the same session position and result); a repeated seq is
    refused, and a frame too short for a header, with unknown flags, a reset origin without
    the reset flag or a field beyond HTTP's range is a 422 that changes nothing."""
    events = cochlea_recording(seed=54)
    t_mid = int(events["t"][200]) + 1
    first, second = events[events["t"] < t_mid], events[events["t"] >= t_mid]
    later = events.copy()
    later["t"] += 10_000_000  # the next utterance, 10 s on
    whole = httpx.post(f"{live_url}/v1/models/{COCHLEA}/infer", json=wire.columns(events)).json()

    async def run(binary: bool) -> list[dict[str, Any]]:
        async with websockets.connect(live_url.replace("http", "ws") + "/v1/stream") as ws:
            await ws.send(json.dumps({"model": COCHLEA, "frame_header": binary}))
            await ws.recv()
            if binary:
                header = wire.FRAME_HEADER
                frames: list[str | bytes] = [
                    wire.header_frame(4, first, until_us=t_mid), b"\x01\x02",
                    wire.header_frame(4, second),
                    header.pack(5, -1, -1, 4) + second.tobytes(),
                    header.pack(5, -1, 7, 0) + second.tobytes(),
                    wire.header_frame(5, second, until_us=2**62 + 1),
                    wire.header_frame(5, second, flush=True), wire.header_frame(None, None),
                    wire.header_frame(6, later, reset=10_000_000, flush=True)]
            else:
                frames = [json.dumps({"seq": 4, "until_us": t_mid, **wire.columns(first)}),
                          json.dumps({"seq": 5, "flush": True, **wire.columns(second)}),
                          json.dumps({}),
                          json.dumps({"seq": 6, "reset": 10_000_000, "flush": True,
                                      **wire.columns(later)})]
            replies = []
            for frame in frames:
                await ws.send(frame)
                replies.append(json.loads(await ws.recv()))
            return replies

    (applied, short, replayed, flags, origin, too_far, flushed, empty,
     again) = asyncio.run(run(True))
    assert applied["type"] == "result" and applied["seq"] == 4
    assert applied["bins"]["total"] == t_mid // 1000  # the watermark closed them
    assert short["status"] == 422 and "no 25-byte header" in short["detail"]
    assert replayed["status"] == 409 and replayed["applied"]["seq"] == 4
    assert replayed["applied"]["probabilities"] == applied["probabilities"]
    assert flags["status"] == 422 and "flags 0x04" in flags["detail"]
    assert origin["status"] == 422 and "no reset flag" in origin["detail"]
    # past HTTP's range: taken, it would have made the session's stored state unreadable
    assert too_far["status"] == 422 and "outside [0, 4611686018427387904]" in too_far["detail"]
    assert flushed["seq"] == 5 and flushed["events"]["total_accepted"] == len(events)
    assert empty["type"] == "result" and empty["seq"] is None and empty["events"]["accepted"] == 0
    # the reset started the stream again at 10 s: the same recording, the same answer
    assert again["seq"] == 6 and again["events"]["total_accepted"] == len(events)
    np.testing.assert_allclose(again["probabilities"], whole["probabilities"], atol=1e-6)
    np.testing.assert_allclose(flushed["probabilities"], whole["probabilities"], atol=1e-6)
    as_json = asyncio.run(run(False))
    keys = ("seq", "bins", "probabilities", "spikes", "events")
    for ours, theirs in zip((applied, flushed, empty, again), as_json, strict=True):
        assert {k: ours[k] for k in keys} == {k: theirs[k] for k in keys}


def test_each_result_arrives_while_a_paced_source_waits_for_its_next_batch(
        live_url: str) -> None:
    """A live sensor yields a batch only when its time comes: the result of the last one must
    not wait for the next (here the next comes only once that result is in)."""
    events = cochlea_recording(seed=55)
    pieces = np.array_split(events, 4)

    async def run() -> list[int]:
        answered = asyncio.Event()
        seqs: list[int] = []

        async def sensor() -> Any:
            for piece in pieces:
                answered.clear()
                yield piece
                await answered.wait()

        async with AsyncClient(live_url) as client, client.stream(COCHLEA) as stream:
            async for result in stream.run(sensor()):
                seqs.append(result.seq)
                answered.set()
        return seqs

    assert asyncio.run(asyncio.wait_for(run(), 60)) == [0, 1, 2, 3]


def test_a_blocking_source_gets_each_result_while_it_waits_for_its_next_batch(
        live_url: str) -> None:
    """The same with a plain iterator (a sensor's read loop; the blocking Client's only kind):
    it is pulled off the event loop, so the replies keep being read while it blocks."""
    import threading

    pieces = np.array_split(cochlea_recording(seed=57), 3)
    answered = threading.Event()
    waited: list[bool] = []

    threads = set()

    def sensor() -> Any:
        for piece in pieces:
            threads.add(threading.get_ident())
            answered.clear()
            yield piece
            waited.append(answered.wait(10))  # False: the result never came while blocked

    with Client(live_url) as client, client.stream(COCHLEA) as stream:
        for _ in stream.run(sensor()):
            answered.set()
    assert waited == [True, True, True]
    assert len(threads) == 1  # one thread of its own: an iterator bound to it keeps working


async def silent_sensor() -> Any:
    """The watermarks of a silent sensor, 100 a second for ten seconds."""
    for i in range(1000):
        yield Batch(until_us=(i + 1) * 10_000)
        await asyncio.sleep(0.01)


def test_a_stream_closed_from_another_task_ends_its_run_instead_of_reconnecting(
        live_url: str) -> None:
    from clients import StreamClosed

    async def run() -> tuple[int, int]:
        results = 0
        async with AsyncClient(live_url) as client, client.stream(COCHLEA) as stream:
            closer = asyncio.get_running_loop().call_later(
                0.3, lambda: asyncio.ensure_future(stream.close()))
            with pytest.raises(StreamClosed):
                async for _ in stream.run(silent_sensor()):
                    results += 1
            closer.cancel()
            return results, stream.reconnects

    results, reconnects = asyncio.run(asyncio.wait_for(run(), 30))
    assert 0 < results < 1000 and reconnects == 0


@pytest.fixture
def ctrl_c() -> Iterator[None]:
    """Python's own SIGINT handler during the test, whatever the process inherited: one started
    in the background by a non-interactive shell ignores SIGINT, and then ``interrupt_main``
    does nothing (as Ctrl-C does nothing to such a process)."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, inherited)


@pytest.mark.usefixtures("ctrl_c")
def test_ctrl_c_in_a_blocking_stream_is_raised_as_such(live_url: str) -> None:
    """It stopped the event loop under the running call, which then failed on its way out
    (RuntimeError: aclose(): asynchronous generator is already running); raised wherever the
    loop was, it could also land inside asyncio's bookkeeping and leave the call unable to
    finish (a hang). Interrupted at many moments, every one is a clean KeyboardInterrupt."""
    import _thread
    import threading
    import time

    def sensor() -> Any:
        for i in range(10_000):
            time.sleep(0.002)
            yield Batch(until_us=(i + 1) * 5_000)

    with Client(live_url) as client:
        for delay in np.random.default_rng(0).uniform(0.02, 0.2, 25):
            with client.stream(COCHLEA) as stream, pytest.raises(KeyboardInterrupt):
                threading.Timer(delay, _thread.interrupt_main).start()
                for _ in stream.run(sensor()):
                    pass
        assert client.models()  # the client still works


@pytest.mark.usefixtures("ctrl_c")
def test_ctrl_c_is_raised_whatever_the_interrupted_call_ends_with(live_url: str) -> None:
    """A call whose cancellation ends in another error still raises KeyboardInterrupt. Only
    a cancelled call's CancelledError was turned into it, so a StopAsyncIteration out of an
    interrupted ``anext`` would end a ``for`` over a stream's results quietly, as if the
    source had ended."""
    import _thread
    import threading

    async def ends_otherwise() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise StopAsyncIteration from None

    with Client(live_url) as client:
        threading.Timer(0.1, _thread.interrupt_main).start()
        with pytest.raises(KeyboardInterrupt) as raised:
            client._run(ends_otherwise())
        assert isinstance(raised.value.__cause__, StopAsyncIteration)
        assert client.models()


class Patient(Retry):
    """Half a second before every reconnection."""

    def delays(self) -> Any:
        return iter([0.5] * self.attempts)


def test_a_stream_closed_while_it_waits_to_reconnect_does_not_reconnect(proxy: Proxy) -> None:
    from clients import StreamClosed

    async def run() -> tuple[int, bool]:
        async with AsyncClient(proxy.url, retry=Patient()) as client, \
                client.stream(COCHLEA) as stream:
            async def cut_then_close() -> None:
                await asyncio.sleep(0.3)
                proxy.cut()
                await asyncio.sleep(0.25)  # within the half second before it reconnects
                await stream.close()

            closer = asyncio.ensure_future(cut_then_close())
            with pytest.raises(StreamClosed):
                async for _ in stream.run(silent_sensor()):
                    pass
            await closer
            return stream.reconnects, stream._ws is not None and stream._ws.state.name == "OPEN"

    reconnects, open_after = asyncio.run(asyncio.wait_for(run(), 30))
    assert not open_after and reconnects <= 1


def test_a_stream_closed_while_its_reconnections_fail_stops_trying(proxy: Proxy) -> None:
    """The retries inside a reconnection, each refused: close() ends them too."""
    from clients import StreamClosed

    async def run() -> None:
        async with AsyncClient(proxy.url, retry=Patient(attempts=10)) as client, \
                client.stream(COCHLEA) as stream:
            async def gone_then_close() -> None:
                await asyncio.sleep(0.3)
                proxy.stop_listening()
                await asyncio.sleep(0.05)
                proxy.cut()
                await asyncio.sleep(0.8)  # past run()'s wait: among the refused reconnections
                await stream.close()

            closer = asyncio.ensure_future(gone_then_close())
            with pytest.raises(StreamClosed):  # not ConnectionLost, 10 refusals later
                async for _ in stream.run(silent_sensor()):
                    pass
            await closer

    asyncio.run(asyncio.wait_for(run(), 30))


def test_arguments_a_stream_cannot_use_are_refused(live_url: str) -> None:
    events = cochlea_recording(seed=58)

    async def run() -> None:
        async with AsyncClient(live_url) as client:
            with pytest.raises(ValueError, match="window must be at least 1"):
                client.stream(COCHLEA, window=0)
            async with client.stream(COCHLEA, t0_us=events["t"][0]) as stream:  # numpy int
                with pytest.raises(TypeError, match="not one event array"):
                    async for _ in stream.run(events):
                        pass
            session = await client.open_session(COCHLEA, t0_us=events["t"][0])
            await session.close()

    asyncio.run(run())


def test_a_seq_another_writer_used_is_refused_not_taken_as_acknowledged(
        live_url: str) -> None:
    from clients import AlreadyApplied

    events = cochlea_recording(seed=56)

    async def run() -> None:
        async with AsyncClient(live_url) as client:
            session = await client.open_session(COCHLEA)
            async with client.stream(session=(session.id, session.token)) as stream:
                await session.send(events[:100])  # seq 0, by another writer of the session
                with pytest.raises(AlreadyApplied, match="seq 0 was already applied"):
                    async for _ in stream.run([events[100:200]]):  # also numbered 0
                        pass

    asyncio.run(run())


def test_a_server_that_drops_every_frame_is_not_retried_for_ever(live_url: str) -> None:
    """Each connection opens fine and drops at the first frame: the drops spend one retry
    budget (a result would renew it), so the stream ends with ConnectionLost."""
    from websockets.asyncio.server import serve

    from clients import ConnectionLost

    async def run() -> int:
        async with websockets.connect(live_url.replace("http", "ws") + "/v1/stream") as ws:
            await ws.send(json.dumps({"model": COCHLEA}))
            opened = await ws.recv()  # a real "opened", replayed by the flaky server
        connections = 0

        async def flaky(ws: Any) -> None:
            nonlocal connections
            connections += 1
            await ws.recv()
            await ws.send(opened)
            await ws.recv()
            await ws.close(1011, "internal error")

        async with serve(flaky, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            retry = Retry(attempts=3, base_s=0.001)
            async with AsyncClient(f"http://127.0.0.1:{port}", retry=retry) as client, \
                    client.stream(COCHLEA) as stream:
                with pytest.raises(ConnectionLost, match="after 3 retries"):
                    async for _ in stream.run([cochlea_recording(seed=57)]):
                        pass
        return connections

    assert asyncio.run(asyncio.wait_for(run(), 30)) == 4  # the first and three retries


def test_an_error_of_the_callers_source_is_raised_as_it_is(live_url: str) -> None:
    async def sensor() -> Any:
        yield cochlea_recording(seed=58)
        raise TimeoutError("the sensor stopped answering")

    async def run() -> int:
        async with AsyncClient(live_url) as client, client.stream(COCHLEA) as stream:
            with pytest.raises(TimeoutError, match="the sensor stopped answering"):
                async for _ in stream.run(sensor()):
                    pass
            return stream.reconnects

    assert asyncio.run(run()) == 0  # not taken for a dropped connection


def fake_result(opened: dict[str, Any], seq: int) -> str:
    """A result message for frame ``seq`` of the session ``opened`` describes."""
    layers = len(opened["totals"]["spikes"])
    return json.dumps({
        "type": "result", "model": opened["model"], "version": opened["version"],
        "session": opened["id"], "seq": seq, "probabilities": opened["probabilities"],
        "label": opened["label"], "top_k": [], "bins": {"batch": 0, "total": 0},
        "spikes": {"batch": [0.0] * layers, "total": [0.0] * layers},
        "firing_rate": {"batch": [0.0] * layers, "total": [0.0] * layers},
        "synops": {"batch": 0, "total": 0}, "last_t_us": 0, "server_time_ms": 0.1,
        "events": {"accepted": 1, "dropped": 0, "total_accepted": 1, "total_dropped": 0,
                   "pending": 0}})


def test_a_frame_refused_just_before_a_drop_is_raised_not_skipped(
        live_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Frame 0 is refused and frame 1 applied; both answers arrive while the client is still
    writing frame 2, and the connection drops. The resume's position (seq 1) must not be
    taken to acknowledge frame 0: its refusal was received, and is raised."""
    from websockets.asyncio.server import serve

    from clients import InvalidEvents
    from clients.stream import AsyncStream

    send = AsyncStream._send

    async def slow_third_frame(self: AsyncStream, seq: int) -> None:
        if seq == 2:
            await asyncio.sleep(0.2)  # a big frame still being written
        await send(self, seq)

    monkeypatch.setattr(AsyncStream, "_send", slow_third_frame)

    async def run() -> list[int]:
        async with websockets.connect(live_url.replace("http", "ws") + "/v1/stream") as ws:
            await ws.send(json.dumps({"model": COCHLEA}))
            opened = json.loads(await ws.recv())
        connections = 0

        async def dropping(ws: Any) -> None:
            nonlocal connections
            connections += 1
            await ws.recv()
            if connections > 1:  # the resume: seq 1 was applied
                await ws.send(json.dumps({**opened, "resumed": True, "seq": 1,
                                          "applied": json.loads(fake_result(opened, 1))}))
                async for frame in ws:
                    await ws.send(fake_result(opened, int.from_bytes(frame[:8], "little")))
                return
            await ws.send(json.dumps(opened))
            await ws.recv()
            await ws.recv()
            await ws.send(json.dumps({"type": "error", "status": 422, "frame": 0,
                                      "detail": "late events: bin 3 is already closed"}))
            await ws.send(fake_result(opened, 1))
            await asyncio.sleep(0.05)
            ws.transport.abort()

        events = cochlea_recording(seed=59)
        async with serve(dropping, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with AsyncClient(f"http://127.0.0.1:{port}",
                                   retry=Retry(attempts=3, base_s=0.001)) as client, \
                    client.stream(COCHLEA) as stream:
                got = []
                with pytest.raises(InvalidEvents, match="already closed"):
                    async for result in stream.run([events[:10], events[10:20],
                                                    events[20:30]]):
                        got.append(result.seq)
        return got

    assert asyncio.run(asyncio.wait_for(run(), 30)) == []


def test_a_new_stream_whose_open_went_unanswered_is_not_opened_twice(live_url: str) -> None:
    """The server may have created the session: another open would leave one behind."""
    from websockets.asyncio.server import serve

    from clients import ConnectionLost

    async def run() -> int:
        opens = 0

        async def silent(ws: Any) -> None:
            nonlocal opens
            await ws.recv()
            opens += 1
            ws.transport.abort()

        async with serve(silent, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with AsyncClient(f"http://127.0.0.1:{port}",
                                   retry=Retry(attempts=3, base_s=0.001)) as client:
                with pytest.raises(ConnectionLost, match="may exist"):
                    async with client.stream(COCHLEA):
                        pass
        return opens

    assert asyncio.run(asyncio.wait_for(run(), 30)) == 1
