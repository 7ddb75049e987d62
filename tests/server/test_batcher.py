"""server/batcher.py: stopping answers every chunk it holds; long chunks run in pieces."""

from __future__ import annotations

import asyncio
from typing import Any

import jax
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
        batcher = Batcher(model, max_wait_s=30.0, metrics=Metrics(),  # a long gathering wait
                          max_step_bins=256)
        batcher.start()
        bins = np.zeros((1, model.card.input.features), np.float32)
        pending = asyncio.ensure_future(batcher.submit(0, bins, False))
        await asyncio.sleep(0.1)  # the batcher takes the chunk and waits for more
        assert batcher._queue.empty() and not pending.done()
        await batcher.stop()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(pending, 5)

    asyncio.run(run())


def test_a_long_chunk_is_stepped_in_pieces_others_run_between_and_the_result_is_the_same(
        registry: ModelRegistry) -> None:
    model = registry.get(COCHLEA)
    assert model is not None
    F = model.card.input.features
    bins = (np.random.default_rng(3).random((100, F)) < 0.3).astype(np.float32)

    async def run() -> tuple[Any, Any, list[str]]:
        whole = Batcher(model, max_wait_s=0.0, metrics=Metrics(), max_step_bins=1000)
        pieces = Batcher(model, max_wait_s=0.0, metrics=Metrics(), max_step_bins=8)
        for b in (whole, pieces):
            b.start()
        order: list[str] = []

        async def timed(name: str, work: Any) -> Any:
            result = await work
            order.append(name)
            return result

        await whole.reset(1)
        await whole.reset(2)
        one = await whole.submit(1, bins, True)
        long, _ = await asyncio.gather(
            timed("long", pieces.submit(2, bins, True)),
            timed("short", pieces.submit(3, bins[:1], False)))
        for b in (whole, pieces):
            await b.stop()
        return one, long, order

    one, long, order = asyncio.run(run())
    assert order == ["short", "long"]  # it did not wait for the 13 pieces of the long one
    np.testing.assert_allclose(long.log_probs, one.log_probs, atol=1e-5)
    np.testing.assert_array_equal(long.spike_counts, one.spike_counts)
    assert long.spikes is not None and one.spikes is not None
    for a, b in zip(long.spikes, one.spikes, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("failure", ["error", "cancelled"])
def test_a_failed_or_cancelled_long_chunk_puts_the_slot_back_as_it_was(
        registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    model = registry.get(COCHLEA)
    assert model is not None
    engine, F = model.engine, model.card.input.features
    bins = np.ones((40, F), np.float32)  # three pieces of at most 16 bins
    step, calls = engine.step, []

    async def run() -> tuple[Any, Any]:
        loop = asyncio.get_running_loop()
        batcher = Batcher(model, max_wait_s=0.0, metrics=Metrics(), max_step_bins=16)
        batcher.start()
        await batcher.reset(4)
        await batcher.submit(4, bins[:5], False)
        before = await batcher.read(4)

        def third_fails(*args: Any, **kwargs: Any) -> Any:  # on the engine's thread
            calls.append(1)
            if len(calls) == 3:
                if failure == "error":
                    raise RuntimeError("device lost")
                loop.call_soon_threadsafe(chunk.cancel)  # e.g. the request went away
            return step(*args, **kwargs)

        monkeypatch.setattr(engine, "step", third_fails)
        chunk = asyncio.ensure_future(batcher.submit(4, bins, False))
        expected = RuntimeError if failure == "error" else asyncio.CancelledError
        with pytest.raises(expected):
            await chunk
        monkeypatch.undo()
        after = await batcher.read(4)
        await batcher.stop()
        return before, after

    before, after = asyncio.run(run())
    assert len(calls) == 3
    for a, b in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after),
                    strict=True):
        np.testing.assert_array_equal(a, b)
