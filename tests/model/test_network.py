import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.network import advance, init_params, initial_state
from model.spec import ModelConfig

CFG = ModelConfig(n_in=24, n_classes=5, neurons=(16, 16, 16), blocks=4, dropout=0.2)


def driven_params(cfg: ModelConfig, gain: float = 6.0):
    """Random-init parameters with the input projections scaled so the layers spike."""
    p = init_params(jax.random.PRNGKey(3), cfg)
    layers = tuple({**lay, "B": lay["B"] * gain} for lay in p["layers"])
    return {**p, "layers": layers}


PARAMS = driven_params(CFG)
RNG = np.random.default_rng(0)
RECORDING = (RNG.random((2, 60, CFG.n_in)) < 0.3).astype(np.float32)


STEP = jax.jit(lambda p, s, b, v: advance(p, s, b, v, CFG))


def run_chunks(cuts: list[int]):
    """Stream the recording in chunks, each padded to one shape (as the server does)."""
    state = initial_state(CFG, 2)
    readouts, counts = [], 0
    for lo, hi in zip([0, *cuts], [*cuts, 60], strict=True):
        chunk = np.zeros_like(RECORDING)
        chunk[:, : hi - lo] = RECORDING[:, lo:hi]
        valid = np.arange(60)[None, :].repeat(2, 0) < hi - lo
        state, out = STEP(PARAMS, state, chunk, valid)
        readouts.append(np.asarray(out["readout"])[:, : hi - lo])
        counts = counts + np.asarray(out["spike_counts"])
    return np.concatenate(readouts, axis=1), np.asarray(out["log_probs"]), counts


WHOLE = run_chunks([])


def test_the_network_spikes_on_this_input():
    assert (WHOLE[2] > 0).all()


@given(st.lists(st.integers(1, 59), max_size=8, unique=True).map(sorted))
def test_streaming_in_any_chunks_equals_the_whole_recording(cuts):
    readout, log_probs, counts = run_chunks(cuts)
    np.testing.assert_allclose(readout, WHOLE[0], atol=1e-5)
    np.testing.assert_allclose(log_probs, WHOLE[1], atol=1e-5)
    np.testing.assert_array_equal(counts, WHOLE[2])


def test_hours_of_small_chunks_keep_the_mean_readout_to_float32_precision():
    """A stream an hour in (900,000 bins, a readout sum near 1e7 where float32's step is 1)
    goes on in 5-bin calls: the compensated sum keeps what plain float32 additions round
    away (each call's error of up to half a unit piles up), and the bin count stays exact
    past 2**24, where a float32 count would stall or undercount."""
    state, _ = STEP(PARAMS, initial_state(CFG, 2), RECORDING, np.ones((2, 60), bool))
    start_sum = np.array([[1.1e7, -9.3e6, 2.5e5, 7.7e6, -1.3e7]] * 2, np.float32)
    state = {**state, "sum": jnp.asarray(start_sum), "count": jnp.full((2,), 2**24 - 3, jnp.int32)}
    exact, bins = start_sum.astype(np.float64), 2**24 - 3
    for i in range(400):
        chunk = RECORDING[:, i % 12 * 5 : i % 12 * 5 + 5]
        state, out = STEP(PARAMS, state, chunk, np.ones((2, 5), bool))
        exact += np.asarray(out["readout"], np.float64).sum(axis=1)
        bins += 5
    assert np.asarray(state["count"]).tolist() == [bins, bins]
    kept = np.asarray(state["sum"], np.float64) - np.asarray(state["comp"], np.float64)
    np.testing.assert_allclose(kept, exact, rtol=0, atol=2.0)  # plain float32: errors of ~40
    np.testing.assert_allclose(np.asarray(out["log_probs"]),
                               jax.nn.log_softmax(exact / bins, axis=-1), atol=1e-6)


def test_padding_bins_leave_the_state_untouched():
    state = initial_state(CFG, 2)
    s1, out1 = advance(PARAMS, state, RECORDING[:, :10], np.ones((2, 10), bool), CFG)
    padded = np.concatenate([RECORDING[:, :10], np.ones((2, 5, CFG.n_in), np.float32)], axis=1)
    valid = np.zeros((2, 15), bool)
    valid[:, :10] = True
    s2, out2 = advance(PARAMS, state, padded, valid, CFG)
    for a, b in zip(jax.tree_util.tree_leaves(s1), jax.tree_util.tree_leaves(s2), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(out1["spike_counts"], out2["spike_counts"])


def test_associative_and_sequential_paths_agree_on_the_network():
    valid = np.ones((2, 60), bool)
    _, seq = advance(PARAMS, initial_state(CFG, 2), RECORDING, valid, CFG, scan="sequential")
    _, par = advance(PARAMS, initial_state(CFG, 2), RECORDING, valid, CFG, scan="associative")
    np.testing.assert_allclose(par["readout"], seq["readout"], atol=1e-4)


def test_rasters_sum_to_the_spike_counts():
    _, out = advance(PARAMS, initial_state(CFG, 2), RECORDING, np.ones((2, 60), bool), CFG,
                     with_spikes=True)
    sums = np.stack([s.sum(axis=(1, 2)) for s in out["spikes"]], axis=-1)
    np.testing.assert_array_equal(sums, out["spike_counts"])


@pytest.mark.parametrize("disc", ["dirac", "zoh", "bilinear"])
def test_gradient_reaches_every_parameter_through_the_surrogate(disc):
    cfg = ModelConfig(n_in=24, n_classes=5, neurons=(16, 16, 16), blocks=4, discretization=disc)
    params = driven_params(cfg)

    def loss(p):
        _, out = advance(p, initial_state(cfg, 2), RECORDING, np.ones((2, 60), bool), cfg,
                         dropout_key=jax.random.PRNGKey(0))
        return -out["log_probs"][:, 0].sum()

    grads = jax.grad(loss)(params)
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        assert jnp.all(jnp.isfinite(g)), path
        assert jnp.abs(g).max() > 0, f"no gradient reaches {jax.tree_util.keystr(path)}"


def test_synaptic_ops_count_fan_out_and_the_skip_path():
    from model.network import synaptic_ops

    # CFG: 24 inputs -> 16 -> 16 (skip) -> 16 -> 5 classes
    ops = synaptic_ops(np.array([10]), np.array([[2, 3, 4]]), CFG)
    # inputs x 16, layer spikes x fan-outs (16, 16, 5), and layer 0's spikes skip on to layer 2
    assert ops.tolist() == [10 * 16 + 2 * 16 + 3 * 16 + 4 * 5 + 2 * 16]
    assert float(synaptic_ops(10, np.array([2, 3, 4]), CFG)) == ops[0]
    # four layers: layer 0's spikes reach layers 1, 2 and 3 (skips add up), layer 1's 2 and 3
    deep = ModelConfig(n_in=24, n_classes=5, neurons=(8, 12, 16, 20), blocks=4)
    assert float(synaptic_ops(10, np.array([1, 2, 3, 4]), deep)) == \
        10 * 8 + 1 * (12 + 16 + 20) + 2 * (16 + 20) + 3 * 20 + 4 * 5
    no_skip = ModelConfig(n_in=24, n_classes=5, neurons=(8, 12, 16, 20), blocks=4, skip=False)
    assert float(synaptic_ops(10, np.array([1, 2, 3, 4]), no_skip)) == \
        10 * 8 + 1 * 12 + 2 * 16 + 3 * 20 + 4 * 5
