"""Response bodies: pydantic models and error details serialised with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from server.errors import ApiError


def json_response(body: BaseModel | dict[str, Any], status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    data = body.model_dump() if isinstance(body, BaseModel) else body
    return Response(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    headers=headers, media_type="application/json")


def describe(exc: ValidationError | RequestValidationError, where: str = "") -> str:
    """One line per invalid field: ``where.field: message``; a body that is not JSON, or not
    a JSON object, is said so."""
    parts = []
    for err in exc.errors():
        if err["type"] == "json_invalid":
            return f"the body is not valid JSON: {err.get('ctx', {}).get('error', err['msg'])}"
        if tuple(err["loc"]) in ((), ("body",)) and err["type"] in (
                "model_attributes_type", "model_type", "dict_type"):
            return "the body must be a JSON object (content-type: application/json)"
        loc = ".".join(str(x) for x in (*([where] if where else []), *err["loc"]))
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return json_response({"detail": exc.detail, **exc.body}, exc.status, exc.headers)


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's own 422s, in the same ``{"detail": "<message>"}`` shape as ours."""
    assert isinstance(exc, RequestValidationError)
    return json_response({"detail": describe(exc)}, 422)
