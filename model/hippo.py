"""Initialisation of S5-RF parameters: HiPPO-LegS eigenvalues, V^-1 B projections, log steps.

Pure numpy/JAX functions; every array is float32 unless stated otherwise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def hippo_legs(N: int) -> np.ndarray:
    """HiPPO-LegS matrix A (N, N): A_nk = -sqrt(2n+1)sqrt(2k+1) for n > k, -(n+1) for n = k."""
    q = np.sqrt(1.0 + 2.0 * np.arange(N))
    A = np.tril(q[:, None] * q[None, :]) - np.diag(np.arange(N))
    return -A


def dplr_hippo(N: int) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal part of the normal-plus-low-rank HiPPO-LegS decomposition.

    A + P P^T (with P_n = sqrt(n + 1/2)) is normal: -1/2 I plus a skew-symmetric matrix S.
    Returns Lambda (complex128, (N,)) = -1/2 + i*eig(-iS) and its eigenvectors V
    (complex128, (N, N)), so that A + P P^T = V diag(Lambda) V^*.
    """
    p = np.sqrt(np.arange(N) + 0.5)
    normal = hippo_legs(N) + p[:, None] * p[None, :]
    lambda_re = np.mean(np.diagonal(normal))
    lambda_im, V = np.linalg.eigh(normal * -1j)
    return lambda_re + 1j * lambda_im, V


def block_eigen(neurons: int, blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """Block-diagonal HiPPO spectrum: Lambda (complex128, (neurons,)) and V^-1 = V^* as a
    block-diagonal matrix (complex128, (neurons, neurons))."""
    size = neurons // blocks
    lam, V = dplr_hippo(size)
    Vinv = np.zeros((neurons, neurons), dtype=np.complex128)
    for b in range(blocks):
        Vinv[b * size : (b + 1) * size, b * size : (b + 1) * size] = V.conj().T
    return np.tile(lam, blocks), Vinv


def block_eigvecs(neurons: int, blocks: int) -> np.ndarray:
    """Block-diagonal eigenvector matrix V (complex64, (neurons, neurons))."""
    _, Vinv = block_eigen(neurons, blocks)
    return Vinv.conj().T.astype(np.complex64)


def init_projection(key: jax.Array, n_out: int, n_in: int, Vinv: np.ndarray) -> jax.Array:
    """Complex input projection V^-1 W with W ~ lecun-normal (truncated, fan-in n_in) for
    real and imaginary parts, each of variance 1/n_in as in the reference code. Returns
    float32 (n_out, n_in, 2): real and imaginary parts."""
    # batch_axis: the real/imaginary axis is two draws, not part of the fan-in (which would
    # halve the variance)
    W = jax.nn.initializers.lecun_normal(in_axis=-1, out_axis=-2, batch_axis=0)(
        key, (2, n_out, n_in))
    VW = jnp.asarray(Vinv, jnp.complex64) @ (W[0] + 1j * W[1])
    return jnp.stack([VW.real, VW.imag], axis=-1).astype(jnp.float32)


def init_log_step(key: jax.Array, n: int, eta_min: float, eta_max: float) -> jax.Array:
    """log Delta, uniform in [log eta_min, log eta_max): float32 (n,)."""
    return jax.random.uniform(
        key, (n,), minval=np.log(eta_min), maxval=np.log(eta_max), dtype=jnp.float32
    )
