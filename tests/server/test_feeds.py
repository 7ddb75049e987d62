"""server/feeds.py: one connection feeds a session at a time, and a take-over cannot hang."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from server.errors import ApiError
from server.feeds import Feed, Feeds
from server.routes.stream import CLOSE_CONFLICT, StreamClosed, _serve
from server.schemas import StreamOpen


def test_a_second_hold_stops_the_first_and_waits_until_it_lets_go() -> None:
    async def run() -> list[str]:
        feeds, seen = Feeds(take_over_timeout_s=5, retry_after_s=1), []
        first_holds = asyncio.Event()

        async def first() -> None:
            async with feeds.hold("s") as feed:
                first_holds.set()
                while not feed.stopping:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.05)  # still applying what it read
                seen.append("first let go")

        async def second() -> None:
            await first_holds.wait()
            async with feeds.hold("s"):
                seen.append("second holds")

        await asyncio.gather(first(), second())
        assert "s" not in feeds
        return seen

    assert asyncio.run(run()) == ["first let go", "second holds"]


def test_of_several_waiting_holds_the_last_wins_and_only_one_holds_at_a_time() -> None:
    async def run() -> tuple[list[bool], int]:
        feeds, holding, most = Feeds(take_over_timeout_s=5, retry_after_s=1), [0], [0]

        async def connection(delay: float) -> bool:
            await asyncio.sleep(delay)
            async with feeds.hold("s") as feed:
                holding[0] += 1
                most[0] = max(most[0], holding[0])
                for _ in range(20):  # serving until taken over, or the test's end
                    if feed.stopping:
                        break
                    await asyncio.sleep(0.01)
                holding[0] -= 1
                return not feed.stopping

        served = await asyncio.gather(connection(0), connection(0.05), connection(0.05))
        return served, most[0]

    served, most = asyncio.run(run())
    assert served[0] is False and sorted(served[1:]) == [False, True] and most == 1


def test_a_previous_connection_that_never_lets_go_is_answered_503() -> None:
    async def run() -> None:
        feeds = Feeds(take_over_timeout_s=0.05, retry_after_s=7)
        async with feeds.hold("s"):
            with pytest.raises(ApiError) as refused:
                async with feeds.hold("s"):
                    pass
        assert refused.value.status == 503 and "previous connection" in refused.value.detail

    asyncio.run(run())


def test_stop_cuts_a_send_the_peer_does_not_take() -> None:
    async def run() -> None:
        feed = Feed()

        async def send() -> None:
            async with asyncio.timeout(None) as feed.sending:
                await asyncio.Event().wait()  # a full TCP buffer: never drains

        sending = asyncio.create_task(send())
        await asyncio.sleep(0.01)
        feed.stop()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sending, 1)

    asyncio.run(run())


def test_a_connection_taken_over_before_it_reads_ends_with_4409_instead_of_hanging() -> None:
    """Its reader is cancelled before it first runs, so the reader's own code never marks the
    end of the frames."""

    class Socket:
        async def receive(self) -> dict[str, Any]:
            await asyncio.Event().wait()  # a client that sends nothing more
            raise AssertionError

    async def run() -> None:
        feed = Feed()
        feed.stop()
        runtime = SimpleNamespace(settings=SimpleNamespace(ws_queue_size=2))
        with pytest.raises(StreamClosed) as closed:
            await asyncio.wait_for(
                _serve(Socket(), runtime, None, StreamOpen(model="m"), feed),  # type: ignore[arg-type]
                1)
        assert closed.value.code == CLOSE_CONFLICT
        assert feed.reader is not None and feed.reader.cancelled()

    asyncio.run(run())
