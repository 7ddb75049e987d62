"""API errors: one exception type carrying the HTTP status, the message and extra headers.

Every error body is ``{"detail": "<what is wrong and how to fix it>"}``, plus any fields the
error carries (a retried batch's 409 carries the result it got the first time).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered with ``status``; ``detail`` says what is wrong and where."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None,
                 body: dict[str, Any] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.body = body or {}  # fields added beside "detail"


def busy(detail: str, retry_after_s: int) -> ApiError:
    """503 with Retry-After: a cap is reached; the same request may succeed later."""
    return ApiError(503, detail, {"Retry-After": str(retry_after_s)})

