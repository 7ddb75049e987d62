"""``s5rf serve``: run the inference server with uvicorn; flags override S5RF_* settings."""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from server.settings import Settings


STARTUP_FAILED = 3  # as uvicorn.run exits when the app's start-up fails


class UvicornOptions(TypedDict):
    host: str
    port: int
    ws_max_size: int
    ws_per_message_deflate: bool


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve every checkpoint over HTTP and WebSocket")
    p.add_argument("--host", help="bind address (default 127.0.0.1, env S5RF_HOST)")
    p.add_argument("--port", type=int, help="port (default 8000, env S5RF_PORT)")
    p.add_argument("--checkpoints", type=Path,
                   help="directory of checkpoints (default checkpoints, env S5RF_CHECKPOINTS)")
    p.set_defaults(func=run)


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment settings with the given flags on top; InputError naming each bad value's
    variable (or flag) in one line."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from model.errors import InputError
    from server.settings import Settings

    overrides = {k: getattr(args, k) for k in ("host", "port", "checkpoints")
                 if getattr(args, k) is not None}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise InputError("; ".join(
            f"{_source(str(err['loc'][0]), overrides)} {err['input']!r}: {err['msg']}"
            for err in exc.errors())) from exc
    except SettingsError as exc:  # not JSON where a list is expected; only its message
        field = re.search(r'field "(\w+)"', str(exc))  # names the field
        name = f"S5RF_{field[1].upper()}" if field else "a S5RF_ variable"
        raise InputError(f"{name} is not JSON ({exc.__cause__}): give a list as JSON, e.g. "
                         "[1, 4, 8]") from exc


def _source(field: str, flags: dict[str, object]) -> str:
    return f"--{field}" if field in flags else f"S5RF_{field.upper()}"


def uvicorn_options(settings: Settings) -> UvicornOptions:
    """How uvicorn serves the app (``s5rf serve`` and the tests' live servers alike)."""
    return {
        "host": settings.host, "port": settings.port,
        # Frames up to twice the cap reach the app, which refuses them with close code 4413
        # and a reason; only bigger ones are cut off by the protocol itself (1009).
        "ws_max_size": 2 * settings.max_body_bytes,
        # No permessage-deflate: packed events barely compress, and deflating every frame
        # both ways cost more CPU than the model step at 20 ms chunks (bench.server_load).
        "ws_per_message_deflate": False,
    }


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (as uvicorn binds one); InputError in one line if it
    cannot be (a port in use, an address this machine does not have)."""
    from model.errors import InputError

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # uvicorn's backlog; bound alone, another SO_REUSEADDR bind succeeds
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; set --port "
                         "or S5RF_PORT (--host, S5RF_HOST) to a free one") from exc
    return sock


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from server import logs
    from server.app import create_app
    from server.registry import load_registry

    settings = settings_from(args)
    logs.configure(settings.log_level)
    # Loaded, then the port bound, before uvicorn starts the app and its warm-up (the long
    # part): a checkpoint that cannot be loaded or a port in use is one line and exit 2, not
    # a failed start-up after minutes of compiling.
    registry = load_registry(settings)
    sock = listening_socket(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    logging.getLogger("s5rf.server").info("listening", extra={"fields": {
        "url": f"http://{f'[{host}]' if ':' in host else host}:{port}"}})  # uvicorn's is off
    config = uvicorn.Config(create_app(settings, registry), **uvicorn_options(settings),
                            log_config=None, access_log=False)
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a server stops: exit 0
        server.run(sockets=[sock])
    return 0 if server.started else STARTUP_FAILED
