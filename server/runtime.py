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
    warm_up_failure: str | None = None

    @property
    def failure(self) -> str | None:
        """Why this process, alive, will never serve again (a restart may): its warm-up
        failed, or a model's engine lost its slot table."""
        if self.warm_up_failure is not None:
            return self.warm_up_failure
        return next((f"model {m.name!r}: {m.engine.lost}" for m in self.registry
                     if m.engine.lost is not None), None)
