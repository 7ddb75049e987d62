"""Settings: every one an S5RF_* variable documented in docs/api.md, read as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import Settings

API_DOC = Path(__file__).parents[2] / "docs" / "api.md"


def test_every_setting_is_documented() -> None:
    doc = API_DOC.read_text()
    missing = [name for name in Settings.model_fields if f"`S5RF_{name.upper()}" not in doc]
    assert not missing, f"settings missing from docs/api.md: {missing}"


def test_null_in_the_environment_unsets_an_optional_setting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S5RF_GC_THRESHOLDS", "null")
    monkeypatch.setenv("S5RF_COMPILATION_CACHE", "null")
    settings = Settings()
    assert settings.gc_thresholds is None and settings.compilation_cache is None
    monkeypatch.setenv("S5RF_GC_THRESHOLDS", "[700, 10, 10]")
    assert Settings().gc_thresholds == (700, 10, 10)
