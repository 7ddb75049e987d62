import numpy as np

from model import hippo


def legs_by_definition(N: int) -> np.ndarray:
    """HiPPO-LegS straight from Gu et al. 2020, eq. (LegS), element by element."""
    A = np.zeros((N, N))
    for n in range(N):
        for k in range(N):
            if n > k:
                A[n, k] = -np.sqrt(2 * n + 1) * np.sqrt(2 * k + 1)
            elif n == k:
                A[n, k] = -(n + 1)
    return A


def test_hippo_legs_matches_the_definition():
    for N in (1, 4, 9):
        np.testing.assert_allclose(hippo.hippo_legs(N), legs_by_definition(N))


def test_dplr_diagonalises_the_normal_part():
    N = 8
    lam, V = hippo.dplr_hippo(N)
    p = np.sqrt(np.arange(N) + 0.5)
    normal = legs_by_definition(N) + np.outer(p, p)
    np.testing.assert_allclose(V @ np.diag(lam) @ V.conj().T, normal, atol=1e-10)
    np.testing.assert_allclose(lam.real, -0.5)
    np.testing.assert_allclose(V.conj().T @ V, np.eye(N), atol=1e-10)
    # Eigenvalues of the normal matrix, computed independently, agree as a set.
    independent = np.linalg.eigvals(normal)
    np.testing.assert_allclose(independent[np.argsort(independent.imag)],
                               lam[np.argsort(lam.imag)], atol=1e-8)


def test_block_eigen_repeats_the_spectrum_block_diagonally():
    lam, Vinv = hippo.block_eigen(12, 3)
    small, V = hippo.dplr_hippo(4)
    np.testing.assert_allclose(lam, np.tile(small, 3))
    np.testing.assert_allclose(Vinv[4:8, 4:8], V.conj().T)
    assert np.all(Vinv[:4, 4:] == 0)


def test_log_steps_are_log_uniform_in_range():
    import jax

    steps = np.exp(np.asarray(hippo.init_log_step(jax.random.PRNGKey(0), 4000, 0.004, 0.1)))
    assert steps.min() >= 0.004 and steps.max() <= 0.1
    # log-uniform: the median is the geometric mean of the range
    assert abs(np.log(np.median(steps)) - np.log(np.sqrt(0.004 * 0.1))) < 0.1
