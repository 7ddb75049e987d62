"""``s5rf serve``: flags override the S5RF_* environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import build_parser, main
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


@pytest.mark.parametrize(("env", "flags", "line"), [
    ({"S5RF_PORT": "abc"}, [], "s5rf serve: S5RF_PORT 'abc': Input should be a valid integer, "
                                  "unable to parse string as an integer"),
    ({}, ["--port", "70000"],
     "s5rf serve: --port 70000: Input should be less than or equal to 65535"),
    ({"S5RF_SESSION_BUCKETS": "1,2"}, [],
     "s5rf serve: S5RF_SESSION_BUCKETS is not JSON (Extra data: line 1 column 2 (char 1)): "
     "give a list as JSON, e.g. [1, 4, 8]"),
])
def test_a_bad_setting_is_one_line_and_exit_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        env: dict[str, str], flags: list[str], line: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", *flags]) == 2
    assert capsys.readouterr().err == line + "\n"


def test_checkpoints_that_cannot_load_stop_serve_before_it_binds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from server import logs

    monkeypatch.setattr(logs, "configure", lambda level: None)  # the process's, not a test's
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.json").write_text('{"name": 3}')
    assert main(["serve", "--checkpoints", str(tmp_path / "missing"), "--port", "9"]) == 2
    assert capsys.readouterr().err.startswith("s5rf serve: no checkpoint under ")
    assert main(["serve", "--checkpoints", str(tmp_path), "--port", "9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("s5rf serve: ") and err.count("\n") == 1  # one line
    assert "model.json is not a valid model card: name: Input should be a valid string" in err


def test_a_port_in_use_stops_serve_before_its_warm_up(
        checkpoints: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One line and exit 2 at once (it was an error log line, then minutes of compiling and
    exit 3)."""
    import socket

    import uvicorn

    from server import logs

    monkeypatch.setattr(logs, "configure", lambda level: None)  # the process's, not a test's
    monkeypatch.setattr(uvicorn.Server, "run", lambda *a, **k: pytest.fail("uvicorn started"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--checkpoints", str(checkpoints), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"s5rf serve: cannot listen on 127.0.0.1:{port}: Address already in "
                          "use; set --port") and err.count("\n") == 1
