"""Client tests run against the server tests' real uvicorn on loopback (same tiny checkpoints,
imported rather than duplicated), optionally behind a proxy that breaks connections."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.clients.proxy import Proxy
from tests.server.conftest import (  # noqa: F401  (fixtures, registered by import)
    base_settings,
    checkpoints,
    live_url,
    make_live,
    prefix,
    registry,
    slow_redis,
)


@pytest.fixture
def proxy(live_url: str) -> Iterator[Proxy]:  # noqa: F811
    """A connection-breaking proxy in front of a live server."""
    p = Proxy(int(live_url.rsplit(":", 1)[1]))
    yield p
    p.close()
