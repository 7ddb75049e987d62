"""The maths of one RF layer: discretisation, the spike non-linearity, and the linear scan.

Layout: time-major. ``a``, ``b`` and states are complex64 with shape (T, S, P) for T time
bins, S sequences (batch or sessions) and P neurons.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from model.spec import Discretization, ScanMethod


def discretize_dirac(Lambda: jax.Array, Delta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Exact solution for Dirac (spike) inputs: Lambda_bar = exp(Lambda Delta), B_bar = Delta.

    Lambda complex64 (P,), Delta float32 (P,) -> (Lambda_bar (P,), B_scale (P,)), complex64.
    The input projection B is applied before the scan, so B_bar is a per-neuron scale.
    """
    return jnp.exp(Lambda * Delta), Delta.astype(Lambda.dtype)


def discretize_zoh(Lambda: jax.Array, Delta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Zero-order hold: Lambda_bar = exp(Lambda Delta), B_bar = (Lambda_bar - 1) / Lambda."""
    Lambda_bar = jnp.exp(Lambda * Delta)
    return Lambda_bar, (Lambda_bar - 1.0) / Lambda


def discretize_bilinear(Lambda: jax.Array, Delta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Bilinear (Tustin): Lambda_bar = (1 + Delta/2 Lambda) / (1 - Delta/2 Lambda)."""
    inv = 1.0 / (1.0 - Delta / 2.0 * Lambda)
    return inv * (1.0 + Delta / 2.0 * Lambda), inv * Delta


DISCRETIZE: dict[Discretization, Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]] = {
    "dirac": discretize_dirac,
    "zoh": discretize_zoh,
    "bilinear": discretize_bilinear,
}


def _multi_gaussian(x: jax.Array, h: float = 0.15, sigma: float = 0.5, s: float = 6.0) -> jax.Array:
    """Multi-Gaussian surrogate derivative (Yin et al. 2021) with the paper's h, sigma, s."""

    def g(mu: float, std: float) -> jax.Array:
        return jnp.exp(-0.5 * ((x - mu) / std) ** 2)

    return (1.0 + h) * g(0.0, sigma) - h * g(sigma, s * sigma) - h * g(-sigma, s * sigma)


@jax.custom_vjp
def heaviside(x: jax.Array) -> jax.Array:
    """Heaviside(x) = 1 where x > 0, with the multi-Gaussian surrogate gradient."""
    return (x > 0).astype(x.dtype)


def _heaviside_fwd(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return heaviside(x), x


def _heaviside_bwd(x: jax.Array, g: jax.Array) -> tuple[jax.Array]:
    return (g * _multi_gaussian(x),)


heaviside.defvjp(_heaviside_fwd, _heaviside_bwd)


def spike(states: jax.Array) -> jax.Array:
    """RF spike: Heaviside(Re(x) - 1); float32, same shape as ``states``."""
    return heaviside(states.real - 1.0)


def scan_sequential(a: jax.Array, b: jax.Array, x0: jax.Array) -> jax.Array:
    """Reference recurrence x_t = a_t x_{t-1} + b_t, one step at a time.

    a, b complex64 (T, S, P); x0 complex64 (S, P). Returns x complex64 (T, S, P).
    """

    def step(x: jax.Array, ab: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        x = ab[0] * x + ab[1]
        return x, x

    _, xs = jax.lax.scan(step, x0, (a, b))
    return xs


def _compose(
    left: tuple[jax.Array, jax.Array], right: tuple[jax.Array, jax.Array]
) -> tuple[jax.Array, jax.Array]:
    """Composition of affine maps x -> a x + b (left applied first)."""
    a_l, b_l = left
    a_r, b_r = right
    return a_r * a_l, a_r * b_l + b_r


def scan_associative(a: jax.Array, b: jax.Array, x0: jax.Array) -> jax.Array:
    """The same recurrence as a parallel (associative) scan over time; shapes as above."""
    b = b.at[0].add(a[0] * x0)
    _, xs = jax.lax.associative_scan(_compose, (a, b), axis=0)
    return xs


SCANS: dict[ScanMethod, Callable[[jax.Array, jax.Array, jax.Array], jax.Array]] = {
    "sequential": scan_sequential,
    "associative": scan_associative,
}


def default_scan() -> ScanMethod:
    """The faster scan for this backend: a sequential scan on CPU (the parallel scan's extra
    work costs more than its depth saves on few cores; see bench/), associative elsewhere."""
    return "sequential" if jax.default_backend() == "cpu" else "associative"
