"""Which WebSocket connection streams into which session: one at a time, the latest wins.

A resume takes the session over from the connection still feeding it (its peer is usually
gone): that connection stops reading, applies the frames it had read, sends nothing more, and
only then does the resume report the session's position. Feeds are kept by session id, not on
the ``Session`` object, so a session evicted and reloaded from the shared store is still
guarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

from server.errors import busy


@dataclasses.dataclass(eq=False)
class Feed:
    """One connection's hold on a session. ``done`` is set once every frame it read has been
    applied; ``stopping`` once another connection has taken the session over."""

    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    stopping: bool = False
    reader: asyncio.Task[None] | None = None
    sending: asyncio.Timeout | None = None

    def stop(self) -> None:
        """Stop reading, and cut short a send the peer is not taking (a full TCP buffer would
        hold the take-over until the ping timeout)."""
        self.stopping = True
        if self.reader is not None:
            self.reader.cancel()
        if self.sending is not None:
            self.sending.reschedule(asyncio.get_running_loop().time())

    def start_reading(self, reader: asyncio.Task[None]) -> None:
        """Attach the connection's reader task; one stopped before it started never reads."""
        self.reader = reader
        if self.stopping:
            reader.cancel()


class Feeds:
    """The feeds of this process's WebSocket connections, by session id."""

    def __init__(self, take_over_timeout_s: float, retry_after_s: int):
        self.take_over_timeout_s = take_over_timeout_s
        self.retry_after_s = retry_after_s
        self._by_session: dict[str, Feed] = {}

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._by_session

    @contextlib.asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[Feed]:
        """Become the connection feeding ``session_id``, after the one before it has applied
        what it read; 503 if it does not finish in time. Of several waiting, the last wins."""
        while (previous := self._by_session.get(session_id)) is not None:
            previous.stop()
            try:
                async with asyncio.timeout(self.take_over_timeout_s):
                    await previous.done.wait()
            except TimeoutError as exc:
                raise busy("the session's previous connection is still applying its frames",
                           self.retry_after_s) from exc
        # No await between the check above and this claim: two resumes cannot both hold it.
        self._by_session[session_id] = feed = Feed()
        try:
            yield feed
        finally:
            if self._by_session.get(session_id) is feed:
                del self._by_session[session_id]
            feed.done.set()
