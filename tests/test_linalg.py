"""Tests for paperlib.linalg against closed forms and dense numpy eigendecompositions."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from paperlib import linalg  # noqa: E402


def _psd_with_spectrum(eigs, seed=0):
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigs), len(eigs))))
    return (Q * np.asarray(eigs)) @ Q.T


def _quartic(A):
    """L(theta) = 1/2 theta^T A theta + sum theta^4 / 4, Hessian A + diag(3 theta^2) in closed form."""
    return lambda t: 0.5 * t @ A @ t + jnp.sum(t**4) / 4


def test_hvp_and_hessian_match_closed_form():
    rng = np.random.default_rng(1)
    A = _psd_with_spectrum(rng.uniform(0.1, 3, 7))
    theta, v = rng.standard_normal(7), rng.standard_normal(7)
    H_true = A + np.diag(3 * theta**2)
    loss = _quartic(A)
    np.testing.assert_allclose(linalg.hvp(loss, jnp.asarray(theta), jnp.asarray(v)), H_true @ v, rtol=1e-12)
    np.testing.assert_allclose(linalg.hvp_operator(loss, jnp.asarray(theta))(jnp.asarray(v)), H_true @ v, rtol=1e-12)
    np.testing.assert_allclose(linalg.hessian(loss, jnp.asarray(theta)), H_true, rtol=1e-12, atol=1e-12)


def test_gauss_newton_and_gram_of_linear_model():
    """f = <w, x>: J = X, G = X^T X / n; multi-output f = W x: G = I_k kron (X^T X / n)."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((9, 4))
    w = jnp.asarray(rng.standard_normal(4))
    J = linalg.output_jacobian(lambda t, x: t @ x, w, jnp.asarray(X))
    np.testing.assert_allclose(linalg.gauss_newton(J), X.T @ X / 9, rtol=1e-12)
    W = jnp.asarray(rng.standard_normal(12))  # k = 3 outputs, row-major W (3, 4)
    J3 = linalg.output_jacobian(lambda t, x: t.reshape(3, 4) @ x, W, jnp.asarray(X))
    assert J3.shape == (9, 3, 12)
    np.testing.assert_allclose(linalg.gauss_newton(J3), np.kron(np.eye(3), X.T @ X / 9), atol=1e-12)
    # nonzero spectrum of the Gram matrix equals that of G
    K_eig = np.sort(np.linalg.eigvalsh(np.asarray(linalg.gram(J3))))[-12:]
    np.testing.assert_allclose(K_eig, np.sort(np.linalg.eigvalsh(np.kron(np.eye(3), X.T @ X / 9))), rtol=1e-10)


def test_sharpness_measures():
    eigs = np.array([0.0, 0.5, 1.0, 4.0])
    s = linalg.sharpness(jnp.asarray(_psd_with_spectrum(eigs)))
    np.testing.assert_allclose([s.trace, s.frobenius, s.lambda_max], [5.5, np.sqrt(17.25), 4.0], rtol=1e-12)


def test_power_iteration_finds_top_eigenpair():
    eigs = np.linspace(0.1, 1.0, 30)
    eigs[-1] = 2.0
    A = jnp.asarray(_psd_with_spectrum(eigs, seed=3))
    res = linalg.power_iteration(lambda v: A @ v, jnp.ones(30), max_iters=2000, tol=1e-12)
    assert abs(float(res.eigenvalue) - 2.0) < 1e-10
    np.testing.assert_allclose(np.asarray(A @ res.vector), 2.0 * np.asarray(res.vector), atol=1e-10)
    assert int(res.iterations) < 2000


def test_lanczos_orthonormal_and_exact_at_full_dimension():
    rng = np.random.default_rng(4)
    eigs = np.concatenate([rng.uniform(0, 1, 38), [5.0, 9.0]])
    A = jnp.asarray(_psd_with_spectrum(eigs, seed=5))
    v0 = jnp.asarray(rng.standard_normal(40))
    res = linalg.lanczos(lambda v: A @ v, v0, 40)
    Q = np.asarray(res.basis)
    np.testing.assert_allclose(Q @ Q.T, np.eye(40), atol=1e-12)
    T = np.asarray(linalg.tridiagonal(res.alphas, res.betas))
    np.testing.assert_allclose(Q @ np.asarray(A) @ Q.T, T, atol=1e-10)
    np.testing.assert_allclose(np.asarray(linalg.ritz(res).nodes), np.sort(eigs), atol=1e-10)
    top = linalg.lanczos_top_eigenvalues(lambda v: A @ v, v0, 25, k=2)
    np.testing.assert_allclose(np.asarray(top), [9.0, 5.0], rtol=1e-10)


def test_ritz_weights_are_gauss_quadrature():
    """sum_k w_k x_k^j = v^T A^j v / |v|^2 exactly for j < 2m (here m = 6, j = 0..3)."""
    rng = np.random.default_rng(6)
    A = _psd_with_spectrum(rng.uniform(0, 2, 20), seed=7)
    v0 = rng.standard_normal(20)
    r = linalg.ritz(linalg.lanczos(lambda v: jnp.asarray(A) @ v, jnp.asarray(v0), 6))
    u = v0 / np.linalg.norm(v0)
    for j in range(4):
        np.testing.assert_allclose(float(np.sum(r.weights * r.nodes**j)), u @ np.linalg.matrix_power(A, j) @ u,
                                   rtol=1e-10)


def test_hutchinson_is_exact_for_diagonal_and_unbiased_with_correct_stderr():
    key = jax.random.PRNGKey(0)
    D = jnp.diag(jnp.arange(1.0, 11.0))
    est = linalg.hutchinson_trace(lambda v: D @ v, 10, key, 8)
    assert abs(float(est.mean) - 55.0) < 1e-12 and float(est.stderr) < 1e-12
    A = _psd_with_spectrum(np.random.default_rng(8).uniform(0, 3, 50), seed=9)
    k = 4000
    est = linalg.hutchinson_trace(lambda v: jnp.asarray(A) @ v, 50, key, k)
    se_closed = np.sqrt(2 * (np.sum(A * A) - np.sum(np.diag(A) ** 2)) / k)
    assert abs(float(est.mean) - np.trace(A)) < 4 * se_closed
    assert abs(float(est.stderr) / se_closed - 1) < 0.1
    g = linalg.hutchinson_trace(lambda v: jnp.asarray(A) @ v, 50, key, k, distribution="gaussian")
    assert abs(float(g.mean) - np.trace(A)) < 4 * np.sqrt(2 * np.sum(A * A) / k)


def test_bad_input_raises():
    with pytest.raises(ValueError):
        linalg.hutchinson_trace(lambda v: v, 3, jax.random.PRNGKey(0), 1)
    with pytest.raises(ValueError):
        linalg.hutchinson_trace(lambda v: v, 3, jax.random.PRNGKey(0), 4, distribution="cauchy")
    with pytest.raises(ValueError):
        linalg.lanczos(lambda v: v, jnp.ones(3), 4)
    with pytest.raises(ValueError):
        linalg.power_iteration(lambda v: v, jnp.ones(3), max_iters=0)


def test_ritz_survives_an_invariant_subspace():
    """A rank-3 matrix with 10 Lanczos steps: Ritz values after the breakdown would be round-off garbage;
    ``ritz`` discards them and reproduces the nonzero spectrum and the quadrature weights."""
    rng = np.random.default_rng(2)
    U, _ = np.linalg.qr(rng.standard_normal((20, 3)))
    A = jnp.asarray((U * np.array([3.0, 1.0, -2.0])) @ U.T)
    res = linalg.lanczos(lambda v: A @ v, jnp.asarray(rng.standard_normal(20)), 10)
    r = linalg.ritz(res)
    np.testing.assert_allclose([r.nodes[-1], r.nodes[0]], [3.0, -2.0], rtol=1e-10)
    np.testing.assert_allclose(r.weights.sum(), 1.0, rtol=1e-12)
    lam, u = linalg.top_ritz_pair(res)
    np.testing.assert_allclose(abs(float(np.asarray(u) @ U[:, 0])), 1.0, rtol=1e-8)
