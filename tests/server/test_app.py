"""Every HTTP route of the app's OpenAPI schema is in docs/api.md's endpoint table."""

from __future__ import annotations

import re
from pathlib import Path

from server.app import create_app
from server.settings import Settings

API_DOC = Path(__file__).parents[2] / "docs" / "api.md"


def _unnamed(text: str) -> str:
    """Path parameters without their names: the docs say {id} where the code says {session_id}."""
    return re.sub(r"\{[^}]*\}", "{}", text)


def test_every_route_is_documented() -> None:
    doc = _unnamed(API_DOC.read_text())
    paths = create_app(Settings()).openapi()["paths"]
    missing = sorted(p for p in paths
                     for method in paths[p] if f"{method.upper()} {_unnamed(p)}" not in doc)
    assert not missing, f"routes missing from docs/api.md: {missing}"
