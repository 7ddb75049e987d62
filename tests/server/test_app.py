"""Every HTTP route of the app's OpenAPI schema is in docs/api.md's endpoint table."""

from __future__ import annotations

import re
from pathlib import Path

from server.app import create_app
from server.registry import ModelRegistry
from server.settings import Settings

API_DOC = Path(__file__).parents[2] / "docs" / "api.md"


def _unnamed(text: str) -> str:
    """Path parameters without their names: the docs say {id} where the code says {session_id}."""
    return re.sub(r"\{[^}]*\}", "{}", text)


def test_every_route_is_documented() -> None:
    doc = _unnamed(API_DOC.read_text())
    paths = create_app(Settings(), ModelRegistry([])).openapi()["paths"]
    missing = sorted(p for p in paths
                     for method in paths[p] if f"{method.upper()} {_unnamed(p)}" not in doc)
    assert not missing, f"routes missing from docs/api.md: {missing}"


def test_every_error_answer_is_documented_as_the_body_the_server_sends() -> None:
    schema = create_app(Settings(), ModelRegistry([])).openapi()
    bodies = {"#/components/schemas/ErrorBody", "#/components/schemas/HealthStatus"}
    errors = {f"{method.upper()} {path} {code}":
              response["content"]["application/json"]["schema"]["$ref"]
              for path, operations in schema["paths"].items()
              for method, operation in operations.items()
              for code, response in operation["responses"].items() if code[0] in "45"}
    assert errors and set(errors.values()) <= bodies, errors
    assert "GET /v1/models/{name} 404" in errors
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert schema["components"]["schemas"]["ErrorBody"]["required"] == ["detail"]
