"""Exceptions mapped from the server's error bodies (``{"detail": ...}``) and close codes."""

from __future__ import annotations

import json
import re
from typing import Any


class ClientError(Exception):
    """Base of every error this client raises."""


class ConnectionLost(ClientError):
    """The server could not be reached again within the retry budget."""


class StreamClosed(ClientError):
    """The stream was closed (``close()``, or leaving its ``async with``) while a ``run`` was
    sending: the run ends instead of reconnecting."""


class ServerError(ClientError):
    """The server refused a request; ``detail`` says what is wrong and how to fix it."""

    status = 0

    def __init__(self, detail: str, body: dict[str, Any] | None = None,
                 retry_after_s: float | None = None):
        super().__init__(f"{self.status}: {detail}" if self.status else detail)
        self.detail = detail
        self.body = body or {}
        self.retry_after_s = retry_after_s
        self.resent = False  # the answer to a request sent again after a failed attempt


class Forbidden(ServerError):
    """Missing or wrong session token."""

    status = 403


class NotFound(ServerError):
    """Unknown model, or a session that never existed, was deleted or expired."""

    status = 404


class Conflict(ServerError):
    """The session cannot take this request as it stands: another replica advanced it at the
    same time (nothing was applied; retry), or a snapshot of another model or weights."""

    status = 409


class AlreadyApplied(Conflict):
    """A batch's ``seq`` was already applied: ``last_seq`` is the last applied one, and
    ``applied`` the batch's result when it was that one."""

    @property
    def last_seq(self) -> int:
        return int(self.body["last_seq"])

    @property
    def applied(self) -> dict[str, Any] | None:
        applied = self.body.get("applied")
        return applied if isinstance(applied, dict) else None


class TooLarge(ServerError):
    """Body, frame or event count over the server's limit: send smaller batches."""

    status = 413


class UnsupportedMediaType(ServerError):
    status = 415


class InvalidEvents(ServerError):
    """Malformed, unsorted, late or out-of-range events, invalid options, or an imported
    state that is not a snapshot of the session's model."""

    status = 422


class RateLimited(ServerError):
    status = 429


class Unavailable(ServerError):
    """Warming up, or a session or slot cap reached; retry after ``retry_after_s``."""

    status = 503


BY_STATUS: dict[int, type[ServerError]] = {
    cls.status: cls for cls in (Forbidden, NotFound, Conflict, TooLarge,
                                UnsupportedMediaType, InvalidEvents, RateLimited, Unavailable)
}
RETRYABLE = (RateLimited, Unavailable)

# WebSocket close codes 44xx/45xx mirror the HTTP status (docs/api.md); 4400 is a bad open
# message, 4408 an open timeout and 4410 a session deleted while connected; 1009 is the
# protocol's own "message too big".
CLOSE_STATUS = {1009: 413, 4400: 422, 4403: 403, 4404: 404, 4408: 422, 4409: 409, 4410: 404,
                4413: 413, 4503: 503}


def error_for(status: int, detail: str, body: dict[str, Any] | None = None,
              retry_after_s: float | None = None) -> ServerError:
    cls = BY_STATUS.get(status)
    if cls is Conflict and body is not None and isinstance(body.get("last_seq"), int):
        cls = AlreadyApplied  # a replay: only those 409s name the last applied seq
    if cls is None:
        error = ServerError(f"{status}: {detail}", body, retry_after_s)
        error.status = status
        return error
    return cls(detail, body, retry_after_s)


def from_response(status: int, content: bytes, headers: dict[str, str]) -> ServerError:
    """The exception for an HTTP error response."""
    try:
        body = json.loads(content)
    except ValueError:
        body = {"detail": content.decode(errors="replace")}
    if not isinstance(body, dict):
        body = {"detail": str(body)}
    retry = headers.get("retry-after")
    # /readyz's body says what it is in `status`, its `detail` is null
    detail = body.get("detail") or body.get("status") or f"HTTP {status}"
    return error_for(status, str(detail), body,
                     float(retry) if retry and retry.replace(".", "", 1).isdigit() else None)


def from_close(code: int, reason: str) -> ServerError | None:
    """The exception for a WebSocket close code the server chose, or None for other codes; a
    4503's reason starts with the wait it asks for (``retry after N s: ...``)."""
    status = CLOSE_STATUS.get(code)
    if not status:
        return None
    wait = _RETRY_AFTER.match(reason)
    return error_for(status, reason or f"closed with code {code}",
                     retry_after_s=float(wait[1]) if wait else None)


_RETRY_AFTER = re.compile(r"retry after (\d+(?:\.\d+)?) s: ")
