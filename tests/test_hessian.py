"""Tests of paperlib.hessian against independent truths (finite differences, closed forms, scipy)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.sparse.linalg import LinearOperator, eigsh

jax.config.update("jax_enable_x64", True)

from paperlib import hessian as hs  # noqa: E402
from paperlib import rmt  # noqa: E402

SIZES = (3, 4, 3)  # P = 31


@pytest.fixture(scope="module")
def net():
    X = jax.random.normal(jax.random.key(1), (12, 3))
    y = jnp.arange(12) % 3
    theta = rmt.init_mlp(jax.random.key(2), SIZES) * 1.5
    return theta, X, y


@pytest.fixture(scope="module")
def split(net):
    return hs.dense_curvatures(*net, SIZES, chunk=8)


def test_dense_hessian_matches_jax_hessian_and_central_differences_of_the_gradient(net, split):
    theta, X, y = net
    H = np.asarray(split[0])
    np.testing.assert_allclose(H, hs.exact_hessian(theta, X, y, SIZES), atol=1e-13)
    grad = jax.grad(hs.mean_loss)
    eps = 1e-5
    column = lambda e: (grad(theta + eps * e, X, y, SIZES) - grad(theta - eps * e, X, y, SIZES)) / (2 * eps)
    fd = jax.jit(jax.vmap(column))(jnp.eye(theta.size))
    np.testing.assert_allclose(H, fd, atol=1e-8)


def test_split_adds_up_and_g_is_positive_semidefinite(split):
    H, G, R = (np.asarray(a) for a in split)
    assert np.abs(H - G - R).max() < 1e-10 * np.abs(H).max()
    assert np.abs(R).max() > 1e-3 * np.abs(H).max()  # away from a minimum R is not negligible
    assert np.linalg.eigvalsh(G)[0] > -1e-12 * np.abs(G).max()


def test_gauss_newton_matches_the_closed_form_of_a_linear_softmax_model():
    """No hidden layer: f = x W + b, so R = 0 and H = G = (1/N) sum_i (A_i kron x~_i x~_i^T) with
    A_i = diag p_i - p_i p_i^T and x~ = (x, 1), in the (W row-major, b) parameter order."""
    sizes = (2, 3)
    X = jax.random.normal(jax.random.key(3), (5, 2))
    y = jnp.array([0, 1, 2, 0, 1])
    theta = rmt.init_mlp(jax.random.key(4), sizes)
    H, G, R = (np.asarray(a) for a in hs.dense_curvatures(theta, X, y, sizes, chunk=4))
    p = np.asarray(jax.nn.softmax(rmt.mlp_logits(theta, X, sizes)))
    want = np.zeros((9, 9))
    for xi, pi in zip(np.asarray(X), p):
        A = np.diag(pi) - np.outer(pi, pi)
        want[:6, :6] += np.kron(np.outer(xi, xi), A)
        want[:6, 6:] += np.kron(xi[:, None], A)
        want[6:, :6] += np.kron(xi[None, :], A)
        want[6:, 6:] += A
    want /= len(p)
    np.testing.assert_allclose(G, want, atol=1e-14)
    np.testing.assert_allclose(H, want, atol=1e-14)
    assert np.abs(R).max() < 1e-15


def test_top_eigenvalues_agree_between_eigh_lanczos_and_scipy_eigsh(net, split):
    theta, X, y = net
    eigs = hs.descending_eigenvalues(split[0])
    lanczos = hs.top_eigenvalues_lanczos(theta, X, y, SIZES, jax.random.key(5), theta.size, 3)
    np.testing.assert_allclose(lanczos, eigs[:3], rtol=1e-9)
    matvec = jax.jit(hs.hessian_matvec(theta, X, y, SIZES))
    op = LinearOperator((theta.size,) * 2, dtype=np.float64,
                        matvec=lambda v: np.asarray(matvec(jnp.asarray(v.ravel(), jnp.float64))))
    ref = np.sort(eigsh(op, k=3, which="LA", tol=1e-12)[0])[::-1]
    np.testing.assert_allclose(ref, eigs[:3], rtol=1e-9)


def test_outlier_count_finds_the_number_of_spikes_of_a_spiked_wishart_matrix():
    """Bulk: a white Wishart matrix (eigenvalues in [(1 - sqrt q)^2, (1 + sqrt q)^2] sigma^2, q = 0.25),
    plus c spikes of size 20-60 on orthogonal directions: exactly c eigenvalues detach."""
    rng = np.random.default_rng(0)
    p, n = 200, 800
    Z = rng.standard_normal((n, p)) / np.sqrt(n)
    for c in (1, 3, 7):
        U = np.linalg.qr(rng.standard_normal((p, c)))[0]
        A = Z.T @ Z + (U * np.linspace(20, 60, c)) @ U.T
        assert hs.outlier_count(np.linalg.eigvalsh(A), window=20) == c


def test_outlier_count_on_a_smooth_bulk_and_its_limit_with_exact_zeros_and_bad_input():
    bulk = 0.01 * np.linspace(1.0, 0.5, 40)
    eigs = np.concatenate([[5.0, 4.0], bulk, np.zeros(50), -1e-9 * np.ones(5)])
    assert hs.outlier_count(eigs, window=10) == 2
    # the documented limit: exact zeros inside the window end the nonzero part with an infinite gap
    assert hs.outlier_count(np.concatenate([[5.0, 4.0, 0.01, 0.009], np.zeros(50)]), window=10) == 4
    with pytest.raises(ValueError):
        hs.outlier_count(eigs, window=len(eigs))
    with pytest.raises(ValueError):
        hs.outlier_count(-np.abs(eigs), window=3)


def test_near_zero_fraction_and_barrier_on_hand_made_inputs():
    assert hs.near_zero_fraction([1.0, 0.5, 1e-4, -1e-4, 2e-3], rel=1e-3) == 0.4
    assert hs.barrier([0.2, 0.1, 0.05]) == 0.0
    assert hs.barrier([0.1, 0.5, 0.2]) == pytest.approx(0.3)


def test_segment_reproduces_the_loss_at_its_ends_and_the_top_eigenvalue_at_its_midpoint(net):
    theta, X, y = net
    other = theta + 0.1 * jax.random.normal(jax.random.key(6), theta.shape)
    seg = hs.segment(theta, other, X, y, SIZES, [0.0, 0.5, 1.0], jax.random.key(7), theta.size)
    assert seg.loss[0] == pytest.approx(float(hs.mean_loss(theta, X, y, SIZES)), rel=1e-12)
    assert seg.loss[-1] == pytest.approx(float(hs.mean_loss(other, X, y, SIZES)), rel=1e-12)
    mid = hs.exact_hessian(0.5 * (theta + other), X, y, SIZES)
    assert seg.top[1] == pytest.approx(hs.descending_eigenvalues(mid)[0], rel=1e-9)
