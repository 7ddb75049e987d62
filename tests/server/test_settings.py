"""Every setting is an S5RF_* variable documented in docs/api.md's settings table."""

from __future__ import annotations

from pathlib import Path

from server.settings import Settings

API_DOC = Path(__file__).parents[2] / "docs" / "api.md"


def test_every_setting_is_documented() -> None:
    doc = API_DOC.read_text()
    missing = [name for name in Settings.model_fields if f"`S5RF_{name.upper()}" not in doc]
    assert not missing, f"settings missing from docs/api.md: {missing}"
