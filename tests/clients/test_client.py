"""Sync and async clients against a real server: typed results and mapped errors."""

from __future__ import annotations

import asyncio
import warnings

import httpx
import numpy as np
import pytest

from clients import (
    AlreadyApplied,
    AsyncClient,
    Batch,
    Client,
    ClientError,
    Forbidden,
    InvalidEvents,
    NotFound,
    Retry,
    ServerError,
    TooLarge,
    Unavailable,
    UnsupportedMediaType,
)
from clients.errors import Conflict, RateLimited, error_for, from_close, from_response
from model.events import make_events
from tests.server.conftest import COCHLEA, DVS, cochlea_recording, dvs_recording

NO_RETRY = Retry(attempts=0)


def test_models_sessions_and_infer_binary_and_json_agree(live_url: str) -> None:
    events = dvs_recording(seed=41)
    with Client(live_url) as binary, Client(live_url, binary=False) as as_json:
        names = {m.name: m for m in binary.models()}
        assert names[DVS].input.width == 8 and names[COCHLEA].labels[0] == "class0"
        wire = binary.model(DVS).wire_dtype
        assert np.dtype([tuple(f) for f in wire]) == events.dtype
        whole = binary.infer(DVS, events)
        assert whole.session is None and whole.events.total_accepted == len(events)
        for client in (binary, as_json):
            session = client.open_session(DVS)
            for piece in np.array_split(events, 3):
                result = session.send(piece)
            last = session.send(flush=True)
            assert result.seq == 2 and last.seq == 3
            np.testing.assert_allclose(last.probabilities, whole.probabilities, atol=1e-6)
            info = session.info()
            assert info.seq == 3 and info.events_accepted == len(events)
            assert session.reset().bins == 0 and session.aio.next_seq == 0
            moved = session.reset(t0_us=np.int64(events["t"][0]))  # a numpy integer too
            assert moved.t0_us == events["t"][0] and session.reset("first_event").t0_us is None
            session.close()
            session.close()  # already gone: nothing to do


def test_async_client_resumes_a_session_by_id_and_token(live_url: str) -> None:
    events = cochlea_recording(seed=42)

    async def run() -> None:
        async with AsyncClient(live_url) as client:
            first = await client.open_session(COCHLEA, late="drop")
            await first.send(events[:200])
            again = await client.resume_session(first.id, first.token)
            assert again.next_seq == 1
            last = await again.send(events[200:], flush=True)
            whole = await client.infer(COCHLEA, events)
            assert last.seq == 1
            np.testing.assert_allclose(last.probabilities, whole.probabilities, atol=1e-6)

    asyncio.run(run())


def test_a_session_exported_and_imported_continues_its_stream_and_seq(live_url: str) -> None:
    events = cochlea_recording(seed=43)
    with Client(live_url) as client:
        whole = client.infer(COCHLEA, events)
        source = client.open_session(COCHLEA)
        source.send(events[:150])
        state = source.export_state()
        source.close()
        moved = client.open_session(COCHLEA)
        moved.send(events[:40])  # a stream of its own, which the import replaces
        info = moved.import_state(state)
        assert (info.seq, info.events_accepted, moved.aio.next_seq) == (0, 150, 1)
        last = moved.send(events[150:], flush=True)
        np.testing.assert_allclose(last.probabilities, whole.probabilities, atol=1e-6)
        with pytest.raises(Conflict, match="snapshot is of"):
            client.open_session(DVS).import_state(state)
        with pytest.raises(InvalidEvents, match="not a readable"):
            moved.import_state(state[:-9])
        assert moved.info().events_accepted == len(events)


def test_server_errors_become_typed_exceptions(make_live) -> None:  # type: ignore[no-untyped-def]
    url = make_live(max_sessions=1, max_body_bytes=4096)
    events = cochlea_recording(seed=43)
    with Client(url, retry=NO_RETRY) as client:
        with pytest.raises(NotFound, match="no model 'nope'"):
            client.infer("nope", events)
        session = client.open_session(COCHLEA)
        with pytest.raises(Unavailable) as busy:
            client.open_session(COCHLEA)
        assert busy.value.retry_after_s is not None and busy.value.retry_after_s >= 1
        with pytest.raises(Unavailable) as ws_busy, client.stream(COCHLEA):  # 4503
            pass
        assert ws_busy.value.retry_after_s == busy.value.retry_after_s  # the close reason's
        with pytest.raises(InvalidEvents, match="sorted"):
            session.send(events[::-1])
        with pytest.raises(TooLarge):
            session.send(cochlea_recording(seed=1, n=1000))
        # the refused batches left their numbers, 0 and 1, unused
        assert session.send(events[:10]).seq == 2
        stale = client.resume_session(session.id, session.token)
        session.send(events[10:20])
        session.send(events[20:30])
        with pytest.raises(AlreadyApplied, match="seq 3 was already applied") as replay:
            stale.send(events[30:40])  # numbered 3, but batch 3 was another one
        assert replay.value.last_seq == 4 and replay.value.applied is None
        assert stale.send(events[30:40]).seq == 5  # renumbered after the last applied
        with pytest.raises(AlreadyApplied) as taken:  # numbered 5, which was stale's batch:
            session.send(events[40:50])  # its result is not this one's, though its seq is
        assert taken.value.applied is not None and taken.value.applied["seq"] == 5
        assert session.info().events_accepted == 40  # nothing lost unsaid
        with pytest.raises(Forbidden):
            client.resume_session(session.id, "wrong")
        with pytest.raises(NotFound):
            client.resume_session("missing", "token")
        with pytest.raises(UnsupportedMediaType):
            asyncio.run(_post_text(url, session.id, session.token))


async def _post_text(url: str, session_id: str, token: str) -> None:
    async with AsyncClient(url, retry=NO_RETRY) as client:
        await client.request("POST", f"/v1/sessions/{session_id}/events", content=b"t,channel",
                             headers={"content-type": "text/csv", "x-session-token": token})


def test_error_bodies_map_by_status_with_retry_after() -> None:
    error = from_response(429, b'{"detail": "slow down"}', {"retry-after": "3"})
    assert isinstance(error, RateLimited) and error.retry_after_s == 3.0
    assert str(error) == "429: slow down"
    odd = from_response(418, b"teapot", {})
    assert odd.status == 418 and "teapot" in str(odd)


def test_connection_refused_is_retried_then_reported() -> None:
    from clients import ConnectionLost

    with httpx.Client() as probe, pytest.raises(httpx.ConnectError):
        probe.get("http://127.0.0.1:9/healthz")
    with Client("http://127.0.0.1:9", retry=Retry(attempts=2, base_s=0.001)) as client, \
            pytest.raises(ConnectionLost, match="after 2 retries"):
        client.models()


@pytest.mark.parametrize(("answers", "outcome"), [
    (["warming", "warming", "ready"], None),  # waits through the warm-up
    (["502", "nginx", "ready"], None),  # behind a proxy whose replicas are restarting
    (["warming", "failed"], Unavailable),  # a failed warm-up is not waited out
])
def test_wait_ready_waits_out_a_warm_up_longer_than_the_retry_budget(
        answers: list[str], outcome: type[Exception] | None) -> None:
    """A first start compiles for a minute or two; requests alone give up after ~30 s."""
    asked = []

    def readyz(request: httpx.Request) -> httpx.Response:
        status = answers[min(len(asked), len(answers) - 1)]
        asked.append(status)
        if status == "502":
            return httpx.Response(502, text="<html>Bad Gateway</html>")
        if status == "nginx":  # its own page, no health body
            return httpx.Response(503, text="<html>Service Unavailable</html>")
        code = 200 if status == "ready" else 503
        return httpx.Response(code, json={"status": status, "models": [], "detail": None},
                              headers={"Retry-After": "0"})

    async def run() -> None:
        async with AsyncClient("http://s5rf.test", retry=Retry(attempts=0)) as client:
            await client.aclose()
            client._http = httpx.AsyncClient(base_url="http://s5rf.test",
                                             transport=httpx.MockTransport(readyz))
            if outcome is None:
                await client.wait_ready(5)
            else:
                with pytest.raises(outcome):
                    await client.wait_ready(5)

    asyncio.run(run())
    assert asked == answers


@pytest.mark.parametrize(("idempotent", "calls"), [(True, 3), (False, 1)])
def test_a_proxys_502_and_504_are_retried_only_where_a_resend_is_safe(
        idempotent: bool, calls: int) -> None:
    """nginx answers 502/504 when the replica it sent a request to dies: a batch (it carries
    a seq) is sent again; a session's creation is not (it may have been made)."""
    answers = iter([502, 504, 200])
    seen = []

    def proxy(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return httpx.Response(next(answers), json={"detail": "upstream"})

    async def run() -> int:
        async with AsyncClient("http://s5rf.test", retry=Retry(attempts=3, base_s=0.001)) as c:
            await c.aclose()
            c._http = httpx.AsyncClient(base_url="http://s5rf.test",
                                        transport=httpx.MockTransport(proxy))
            return (await c.request("POST", "/v1/x", idempotent=idempotent)).status_code

    if idempotent:
        assert asyncio.run(run()) == 200
    else:
        with pytest.raises(ServerError) as refused:
            asyncio.run(run())
        assert refused.value.status == 502
    assert len(seen) == calls


def test_a_warm_up_outlasting_wait_ready_is_reported_as_such() -> None:
    """/readyz's body has a null detail: the error says what it waited for, not "None"."""
    def readyz(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"status": "warming", "models": [], "detail": None},
                              headers={"Retry-After": "0"})

    async def run() -> None:
        async with AsyncClient("http://s5rf.test") as client:
            await client.aclose()
            client._http = httpx.AsyncClient(base_url="http://s5rf.test",
                                             transport=httpx.MockTransport(readyz))
            with pytest.raises(Unavailable, match=r"^503: http://s5rf.test is still warming up "
                                                  r"after 0.2 s") as late:
                await client.wait_ready(0.2)
            assert late.value.body["status"] == "warming"

    asyncio.run(run())
    assert from_response(503, b'{"status": "warming", "detail": null}', {}).detail == "warming"


def test_a_url_without_its_scheme_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match=r"'127\.0\.0\.1:8000' is not an http:// or https:// URL"):
        Client("127.0.0.1:8000")


def test_a_closed_client_says_so_and_closes_again_quietly() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no coroutine left never awaited
        with Client("http://127.0.0.1:9") as client:
            client.close()  # inside its with: the exit closes it again
        with pytest.raises(ClientError, match="the client is closed"):
            client.models()


def test_a_stream_used_without_with_says_how_to_open_it() -> None:
    with Client("http://127.0.0.1:9") as client:
        stream = client.stream(COCHLEA)
        for use in (lambda: stream.id, lambda: list(stream.run([cochlea_recording(seed=1)]))):
            with pytest.raises(ClientError, match=r"the stream is not open: use it in `async "
                                                  r"with client.stream"):
                use()


def test_wait_ready_reports_a_server_it_never_reaches() -> None:
    from clients import ConnectionLost

    with Client("http://127.0.0.1:9", retry=Retry(attempts=2, base_s=0.001)) as client, \
            pytest.raises(ConnectionLost, match="could not be reached"):
        client.wait_ready(300)  # not waited on for minutes


def test_only_a_409_naming_the_last_applied_seq_is_a_replay() -> None:
    replay = error_for(409, "seq 3 was already applied", {"last_seq": 5})
    assert isinstance(replay, AlreadyApplied) and replay.last_seq == 5
    other = error_for(409, "being advanced by another replica; nothing was applied, retry",
                      {"detail": "..."})
    assert isinstance(other, Conflict) and not isinstance(other, AlreadyApplied)
    refused = from_close(4409, "model 'x' is not served on this replica")
    assert isinstance(refused, Conflict) and not isinstance(refused, AlreadyApplied)
    busy = from_close(4503, "retry after 7 s: the models are still warming up")
    assert isinstance(busy, Unavailable) and busy.retry_after_s == 7.0


def test_watermarks_close_bins_over_http_and_websocket(live_url: str) -> None:
    events = make_events("cochlea", t=np.array([100, 2500]), channel=np.array([1, 2]))
    with Client(live_url) as client:
        session = client.open_session(COCHLEA)  # 1 ms bins
        assert session.send(events).bins.total == 2
        assert session.send(until_us=5000).bins.total == 5
        # a watermark taken from the events themselves is a numpy integer
        assert session.send(until_us=events["t"][-1] + 4500).bins.total == 7
        with client.stream(COCHLEA) as stream:
            results = list(stream.run([events, Batch(until_us=5000),
                                       Batch(until_us=events["t"][-1] + 4500)]))
        assert [r.bins.total for r in results] == [2, 5, 7]
