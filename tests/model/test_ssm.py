import jax
import jax.numpy as jnp
import numpy as np
import pytest

from model.ssm import DISCRETIZE, heaviside, scan_associative, scan_sequential, spike


def test_discretizations_match_closed_forms():
    lam = jnp.array([-0.5 + 2.0j], jnp.complex64)
    delta = jnp.array([0.1], jnp.float32)
    a, b = DISCRETIZE["dirac"](lam, delta)
    np.testing.assert_allclose(a, np.exp(lam * 0.1), rtol=1e-6)
    np.testing.assert_allclose(b, 0.1, rtol=1e-6)
    a, b = DISCRETIZE["zoh"](lam, delta)
    np.testing.assert_allclose(b, (np.exp(lam * 0.1) - 1) / lam, rtol=1e-5)
    a, b = DISCRETIZE["bilinear"](lam, delta)
    np.testing.assert_allclose(a, (1 + 0.05 * lam) / (1 - 0.05 * lam), rtol=1e-6)
    np.testing.assert_allclose(b, 0.1 / (1 - 0.05 * lam), rtol=1e-6)


def test_heaviside_has_the_multi_gaussian_surrogate_gradient():
    x = jnp.array([-1.0, 0.0, 0.3, 2.0])
    np.testing.assert_array_equal(heaviside(x), [0, 0, 1, 1])
    g = jax.grad(lambda v: heaviside(v).sum())(x)

    def gauss(v, mu, s):
        return np.exp(-0.5 * ((v - mu) / s) ** 2)

    want = 1.15 * gauss(x, 0, 0.5) - 0.15 * gauss(x, 0.5, 3.0) - 0.15 * gauss(x, -0.5, 3.0)
    np.testing.assert_allclose(g, want, rtol=1e-5)
    assert g[1] == g.max() > 0.8
    assert g[0] < 0  # the multi-Gaussian's negative side lobes


def test_spike_thresholds_the_real_part_at_one():
    x = jnp.array([1.01 + 5j, 0.99 - 5j, 3j], jnp.complex64)
    np.testing.assert_array_equal(spike(x), [1, 0, 0])


def _driving_inputs(seed: int, T: int = 400, S: int = 4, P: int = 64):
    rng = np.random.default_rng(seed)
    lam = -rng.uniform(0.01, 0.2, P) + 1j * rng.uniform(-1, 1, P)
    a = np.broadcast_to(np.exp(lam), (T, S, P)).astype(np.complex64)
    b = (rng.normal(0, 0.3, (T, S, P)) + 1j * rng.normal(0, 0.3, (T, S, P))).astype(np.complex64)
    x0 = (rng.normal(size=(S, P)) + 0j).astype(np.complex64)
    return jnp.asarray(a), jnp.asarray(b), jnp.asarray(x0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_associative_scan_agrees_with_the_step_by_step_reference(seed):
    a, b, x0 = _driving_inputs(seed)
    ref = scan_sequential(a, b, x0)
    fast = scan_associative(a, b, x0)
    np.testing.assert_allclose(fast, ref, atol=2e-5, rtol=1e-4)
    s_ref, s_fast = np.asarray(spike(ref)), np.asarray(spike(fast))
    assert s_ref.mean() > 0.05, "inputs must drive the neurons into spiking"
    assert (s_ref == s_fast).mean() >= 0.9999
