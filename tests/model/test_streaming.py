import itertools

import jax
import numpy as np
import pytest

from model.network import init_params, run_offline
from model.spec import ModelConfig
from model.streaming import Engine, StateLost, bucket_for

CFG = ModelConfig(n_in=12, n_classes=3, neurons=(16, 16), blocks=4)


@pytest.fixture(scope="module")
def engine():
    params = init_params(jax.random.PRNGKey(0), CFG)
    params = {**params, "layers": tuple({**p, "B": p["B"] * 6} for p in params["layers"])}
    e = Engine(CFG, params, capacity=6, session_buckets=(1, 4), bin_buckets=(2, 8))
    e.warmup(with_spikes=(False, True))
    return e


def recording(seed, T=21):
    return (np.random.default_rng(seed).random((T, CFG.n_in)) < 0.4).astype(np.float32)


def test_bucket_for_picks_the_smallest_that_fits():
    assert [bucket_for(n, (1, 8, 64)) for n in (0, 1, 2, 8, 9, 65)] == [1, 1, 8, 8, 64, 64]


def test_sessions_streamed_together_in_chunks_match_offline_runs(engine):
    slots = [1, 2, 3, 4, 5]
    for s in slots:
        engine.reset(s)
    recs = [recording(s, T=15 + s) for s in slots]
    cuts = [0, 3, 4, 13, 40]
    last = None
    for lo, hi in itertools.pairwise(cuts):
        last = engine.step(slots, [r[lo:hi] for r in recs])
    for s, r, got in zip(slots, recs, last.log_probs, strict=True):
        _, want = run_offline(engine.params, r[None], np.array([len(r)]), CFG)
        np.testing.assert_allclose(got, want["log_probs"][0], atol=1e-5, err_msg=f"slot {s}")


def test_no_compilation_after_warmup(engine):
    before = engine.compilations
    engine.reset(1)
    engine.step([1, 2, 3], [recording(0, 1), recording(1, 7), recording(2, 20)], with_spikes=True)
    engine.write(2, engine.read(1))
    assert engine.compilations == before


def test_warmup_compiles_only_the_shapes_a_cell_cap_lets_step_call():
    params = init_params(jax.random.PRNGKey(0), CFG)
    capped = Engine(CFG, params, capacity=6, session_buckets=(1, 4), bin_buckets=(2, 8),
                    max_cells=8)  # (4, 8) is over the cap: batches of 8-bin chunks go 1 by 1
    capped.warmup()
    compiled = capped.compilations
    # steps (1, 2), (4, 2), (1, 8); reset; read and write of 1 row and of 4
    assert compiled == 3 + 1 + 2 + 2
    capped.step([1, 2, 3], [recording(0, 8)] * 3)
    capped.step([1, 2, 3], [recording(0, 2)] * 3)
    assert capped.compilations == compiled


def test_padding_rows_do_not_touch_other_sessions(engine):
    for s in range(1, 7):
        engine.reset(s)
    engine.step([3, 4, 5, 6], [recording(10 + s) for s in range(4)])  # states that are not 0
    before = {s: engine.read(s) for s in (3, 4, 5, 6)}
    assert all(np.abs(layer).sum() > 0 for layer in before[6]["layers"])
    engine.step([1, 2], [recording(4), recording(5)])  # 2 sessions in a 4-row call: 2 padding
    for s, snapshot in before.items():
        for a, b in zip(jax.tree_util.tree_leaves(snapshot),
                        jax.tree_util.tree_leaves(engine.read(s)), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"slot {s}")


def test_state_read_and_written_back_resumes_identically(engine):
    engine.reset(1)
    engine.reset(2)
    r = recording(5)
    engine.step([1], [r[:10]])
    engine.write(2, engine.read(1))
    a, b = engine.step([1], [r[10:]]), engine.step([2], [r[10:]])
    np.testing.assert_array_equal(a.log_probs, b.log_probs)


def test_rasters_match_counts(engine):
    engine.reset(1)
    out = engine.step([1], [recording(6)], with_spikes=True)
    assert out.spikes is not None
    np.testing.assert_array_equal([s.sum() for s in out.spikes], out.spike_counts[0])
    assert out.spike_counts.sum() > 0


def test_a_long_chunk_batched_with_short_ones_steps_only_itself_past_them(engine, monkeypatch):
    """An /infer recording (many bins) and streaming chunks (a bin or two) in one step: the
    same outputs as stepping each alone, and after the first piece only the long row runs."""
    slots, chunks = [1, 2, 3], [recording(7, 30), recording(8, 1), recording(9, 2)]
    alone = []
    for slot, chunk in zip(slots, chunks, strict=True):
        engine.reset(slot)
        alone.append(engine.step([slot], [chunk], with_spikes=True))
    for slot in slots:
        engine.reset(slot)
    calls = []
    call = engine._call
    monkeypatch.setattr(engine, "_call", lambda s, *a: calls.append(list(s)) or call(s, *a))
    together = engine.step(slots, chunks, with_spikes=True)
    assert calls == [[1, 2, 3], [1], [1], [1]]  # 30 bins: pieces of 8, the last of 6
    for i, one in enumerate(alone):
        np.testing.assert_allclose(together.log_probs[i], one.log_probs[0], atol=1e-6)
        np.testing.assert_array_equal(together.spike_counts[i], one.spike_counts[0])
        assert together.spikes is not None and one.spikes is not None
        for layer, own in zip(together.spikes, one.spikes, strict=True):
            np.testing.assert_array_equal(layer[i, : len(chunks[i])], own[0])


def test_a_step_failing_after_its_first_call_leaves_every_row_as_it_was(engine, monkeypatch):
    """A step split into several calls (here a 21-bin chunk in pieces of 8) that fails midway
    restores the rows its earlier calls advanced, so the sessions can be stepped again."""
    slots, chunks = [1, 2], [recording(10), recording(11, 3)]
    for slot in slots:
        engine.reset(slot)
    engine.step(slots, [c[:2] for c in chunks])  # states that are not zero
    before = [engine.read(slot) for slot in slots]
    calls = []
    call = engine._call

    def fail_second(s, *a):
        calls.append(list(s))
        if len(calls) == 2:
            raise RuntimeError("engine failure")
        return call(s, *a)

    monkeypatch.setattr(engine, "_call", fail_second)
    with pytest.raises(RuntimeError, match="engine failure"):
        engine.step(slots, chunks)
    assert calls == [[1, 2], [1]]  # the first call advanced both rows
    for slot, row in zip(slots, before, strict=True):
        for a, b in zip(jax.tree_util.tree_leaves(row),
                        jax.tree_util.tree_leaves(engine.read(slot)), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"slot {slot}")


@pytest.mark.parametrize("consumed", [True, False])
def test_a_call_that_fails_having_consumed_the_table_says_so_from_then_on(monkeypatch, consumed):
    """The table is donated to the step: a failure inside its program (an accelerator out of
    memory) takes every session's state with it, and each later call says so; a failure that
    leaves the table (before the program ran) changes nothing."""
    e = Engine(CFG, init_params(jax.random.PRNGKey(0), CFG), capacity=2, session_buckets=(1,),
               bin_buckets=(2,))
    e.reset(1)
    real = e._step

    def fail(*args, **kwargs):
        if consumed:
            real(*args, **kwargs)  # the donated table's buffers are gone
        raise RuntimeError("RESOURCE_EXHAUSTED: out of memory")

    monkeypatch.setattr(e, "_step", fail)
    with pytest.raises(RuntimeError, match="out of memory"):
        e.step([1], [recording(1, 2)])
    monkeypatch.setattr(e, "_step", real)
    later = (lambda: e.read(1), lambda: e.reset(1), lambda: e.step([1], [recording(2, 2)]))
    if not consumed:
        assert e.lost is None
        for call in later:
            call()
        return
    assert "out of memory" in e.lost
    for call in later:
        with pytest.raises(StateLost, match="a failed call took the slot table with it"):
            call()
