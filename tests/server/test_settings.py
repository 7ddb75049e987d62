"""Settings: every one an S5RF_* variable documented in docs/api.md, read as documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

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


@pytest.mark.parametrize(("name", "value"), [
    ("batch_max_wait_ms", "inf"), ("session_ttl_s", "inf"), ("session_ttl_s", "nan"),
    ("session_ttl_s", "0.0001"), ("log_level", "chatty"),
    ("session_ttl_s", "1e17"),  # past the shared store's largest expiry: 500s for ever
    ("host", ""),  # an unset ${HOST} in a compose file would bind every interface
])
def test_values_that_would_fail_later_are_refused_at_start(
        monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(f"S5RF_{name.upper()}", value)
    with pytest.raises(ValidationError, match=name):
        Settings()


def test_the_log_level_is_read_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S5RF_LOG_LEVEL", "debug")
    assert Settings().log_level == "DEBUG"
