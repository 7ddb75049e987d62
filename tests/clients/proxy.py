"""A TCP proxy on loopback that can break connections the way networks do.

``cut()`` aborts every open connection (both directions, mid-stream). ``swallow(n)`` lets the
next ``n`` server->client transmissions vanish with their connection: the request reached
the server and was applied, but the client never hears back. ``hold(n, s, marker)`` delivers
the answers to the next ``n`` requests that contain ``marker`` ``s`` seconds late: the request
was applied, and its answer comes after the client stopped waiting. ``request_lines`` holds the
first line of each connection's first request, as a load balancer would route it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class Proxy:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.connections = 0
        self.request_lines: list[str] = []
        self._swallow = 0
        self._hold: tuple[int, float, bytes] = (0, 0.0, b"")
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self._thread.start()
        started.wait(10)

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        started.set()
        self._loop.run_forever()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Abort every open connection now."""
        self._loop.call_soon_threadsafe(self._abort_all)

    def stop_listening(self) -> None:
        """Refuse new connections from now on (open ones stay)."""
        self._loop.call_soon_threadsafe(self._server.close)

    def swallow(self, n: int = 1) -> None:
        """Drop the next ``n`` server->client transmissions, aborting their connections."""
        self._loop.call_soon_threadsafe(setattr, self, "_swallow", n)

    def hold(self, n: int, seconds: float, marker: bytes = b"") -> None:
        """Answer the next ``n`` requests containing ``marker`` ``seconds`` late."""
        self._loop.call_soon_threadsafe(setattr, self, "_hold", (n, seconds, marker))

    def _abort_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, client_r: asyncio.StreamReader,
                      client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        pair = {client_w, server_w}
        self._writers |= pair
        late: list[float] = []  # delays owed to this connection's next answers

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                       downstream: bool) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                first = True
                while data := await src.read(1 << 16):
                    if first and not downstream:
                        self.request_lines.append(data.split(b"\r\n", 1)[0].decode())
                    first = False
                    if downstream and self._swallow > 0:
                        self._swallow -= 1
                        for w in pair:
                            w.transport.abort()
                        return
                    n, seconds, marker = self._hold
                    if not downstream and n > 0 and marker in data:
                        self._hold = (n - 1, seconds, marker)
                        late.append(seconds)
                    if downstream and late:
                        await asyncio.sleep(late.pop(0))
                    dst.write(data)
                    await dst.drain()
            for w in pair:
                w.transport.abort()

        await asyncio.gather(pipe(client_r, server_w, False), pipe(server_r, client_w, True))
        self._writers -= pair

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _shut(self) -> None:
        """Abort the connections and end their pipes (a held answer may still be sleeping)."""
        self._abort_all()
        self._server.close()
        pipes = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pipes:
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
