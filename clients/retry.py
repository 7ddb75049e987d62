"""Retry policy: exponential backoff with full jitter, honouring the server's Retry-After."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator


@dataclasses.dataclass(frozen=True)
class Retry:
    """Up to ``attempts`` retries after the first try, waiting a random time in
    ``[0, min(max_s, base_s * 2**n)]`` before retry n (full jitter spreads reconnecting
    clients out)."""

    attempts: int = 6
    base_s: float = 0.05
    max_s: float = 5.0

    def delays(self) -> Iterator[float]:
        for n in range(self.attempts):
            yield random.uniform(0, min(self.max_s, self.base_s * 2**n))

    @staticmethod
    def wait(delay: float, retry_after_s: float | None) -> float:
        """The delay, but at least what the server asked for (capped at a minute)."""
        return max(delay, min(retry_after_s or 0.0, 60.0))


DEFAULT_RETRY = Retry()
