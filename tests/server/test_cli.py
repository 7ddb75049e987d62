"""``s5rf serve``: flags override the S5RF_* environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import build_parser
from cli.serve import settings_from


def test_flags_override_environment_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S5RF_PORT", "9001")
    monkeypatch.setenv("S5RF_SESSION_TTL_S", "12")
    args = build_parser().parse_args(["serve", "--checkpoints", "ckpts", "--host", "0.0.0.0"])
    settings = settings_from(args)
    assert (settings.host, settings.port, settings.checkpoints) == ("0.0.0.0", 9001,
                                                                     Path("ckpts"))
    assert settings.session_ttl_s == 12
    assert settings_from(build_parser().parse_args(["serve", "--port", "7"])).port == 7
