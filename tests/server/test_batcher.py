"""server/batcher.py: stopping the batcher answers every chunk it holds."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from server.batcher import Batcher
from server.metrics import Metrics
from server.registry import ModelRegistry
from tests.server.conftest import COCHLEA


def test_stop_cancels_the_chunks_it_was_gathering_instead_of_leaving_them_waiting(
        registry: ModelRegistry) -> None:
    model = registry.get(COCHLEA)
    assert model is not None

    async def run() -> None:
        batcher = Batcher(model, max_wait_s=30.0, metrics=Metrics())  # a long gathering wait
        batcher.start()
        bins = np.zeros((1, model.card.input.features), np.float32)
        pending = asyncio.ensure_future(batcher.submit(0, bins, False))
        await asyncio.sleep(0.1)  # the batcher takes the chunk and waits for more
        assert batcher._queue.empty() and not pending.done()
        await batcher.stop()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(pending, 5)

    asyncio.run(run())
