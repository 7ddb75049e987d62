"""HEAD for every GET route: FastAPI's routes, unlike Starlette's, answer HEAD with 405, and
uptime checks (and ``curl -I``) send HEAD to /healthz, /readyz and the dashboard."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """ASGI middleware: a HEAD request runs as a GET whose body is not sent (its headers,
    Content-Length included, are the GET's)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.start":
                # routed by now; the server reads the method when the answer starts: as a
                # GET's it would wait for the body Content-Length promises and drop the
                # connection without it
                scope["method"] = "HEAD"
            elif message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        # the same scope, not a copy: what the router writes in it (the route the metrics
        # label requests with) must reach the middleware outside this one
        scope["method"] = "GET"
        try:
            await self.app(scope, receive, headers_only)
        finally:
            scope["method"] = "HEAD"
