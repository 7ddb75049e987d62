"""API errors: one exception type carrying the HTTP status, the message and extra headers.

Every error body is ``{"detail": "<what is wrong and how to fix it>"}``.
"""

from __future__ import annotations


class ApiError(Exception):
    """An error answered with ``status``; ``detail`` says what is wrong and where."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def busy(detail: str, retry_after_s: int) -> ApiError:
    """503 with Retry-After: a cap is reached; the same request may succeed later."""
    return ApiError(503, detail, {"Retry-After": str(retry_after_s)})

