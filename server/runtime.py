"""Everything one running app holds, built in the lifespan and reached through deps.py."""

from __future__ import annotations

import dataclasses

from server.batcher import Batcher
from server.metrics import Metrics
from server.registry import ModelRegistry
from server.sessions import SessionManager
from server.settings import Settings


@dataclasses.dataclass
class Runtime:
    settings: Settings
    registry: ModelRegistry
    metrics: Metrics
    batchers: dict[str, Batcher]
    sessions: SessionManager
    ready: bool = False
    failure: str | None = None  # why warm-up failed: the process is alive but will never serve
