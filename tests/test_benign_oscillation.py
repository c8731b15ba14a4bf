"""Tests of paperlib.benign_oscillation against independent truths (loops, finite differences,
closed-form statistics, a hand-computed step)."""

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from paperlib import benign_oscillation as bo  # noqa: E402

FEATS = bo.features(5, 1.0, 0.1, 0.3)


def _naive_output(W, x):
    """f(W, x) by explicit loops over signs, neurons and patches."""
    W, x = np.asarray(W), np.asarray(x)
    m, total = W.shape[1], 0.0
    for j, sign in enumerate([1.0, -1.0]):
        for r in range(m):
            for p in range(x.shape[0]):
                total += sign * max(float(W[j, r] @ x[p]), 0.0) ** 2 / m
    return total


def _tiny():
    data = bo.sample(jax.random.key(1), FEATS, 6, 4)
    return bo.init(jax.random.key(2), 3, 5, 0.5), data


def test_output_matches_a_per_patch_loop():
    W, data = _tiny()
    got = np.asarray(bo.outputs(W, data.x))
    np.testing.assert_allclose(got, [_naive_output(W, x) for x in data.x], rtol=1e-12, atol=1e-14)


def test_closed_form_gradient_matches_autodiff_and_finite_differences():
    W, data = _tiny()
    x, y = data.x[0], data.y[0]
    grad, margin = bo.loss_grad(W, x, y)
    np.testing.assert_allclose(grad, jax.grad(bo.sample_loss)(W, x, y), rtol=1e-10, atol=1e-12)
    assert np.isclose(margin, y * _naive_output(W, x), rtol=1e-12)
    eps, E = 1e-6, np.zeros(W.shape)
    for idx in [(0, 0, 0), (0, 2, 1), (1, 1, 3), (1, 0, 4)]:
        E[:] = 0.0
        E[idx] = eps
        fd = (bo.sample_loss(W + E, x, y) - bo.sample_loss(W - E, x, y)) / (2 * eps)
        assert np.isclose(float(fd), float(grad[idx]), rtol=1e-6, atol=1e-9)


def test_sample_statistics_match_the_closed_form():
    n, n_strong = 20000, 15000
    data = bo.sample(jax.random.key(3), FEATS, n, n_strong)
    x, y, strong = map(np.asarray, data)
    assert strong.sum() == n_strong  # exact strong fraction
    assert abs(y.mean()) < 4 / np.sqrt(n)  # Rademacher labels
    np.testing.assert_array_equal(x[:, 0], np.where(strong[:, None], y[:, None] * FEATS.strong, 0))
    np.testing.assert_array_equal(x[:, 1], y[:, None] * FEATS.weak)  # weak feature everywhere
    cov = x[:, 2].T @ x[:, 2] / n
    want = FEATS.noise_std ** 2 * np.diag([0.0, 0.0, 1.0, 1.0, 1.0])  # orthogonal to u and v
    assert np.all(np.abs(cov - want) <= 5 * FEATS.noise_std ** 2 * np.sqrt(2 / n))
    assert abs(x[:, 2].mean()) < 5 * FEATS.noise_std / np.sqrt(3 * n)


def test_one_sgd_step_matches_a_hand_computed_update():
    W = jnp.array([[[0.5, 0.2, 0.0]], [[-0.1, 0.3, 0.0]]])  # m = 1, d = 3
    x = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.2]])
    # f = 0.5^2 + 0.02^2 - 0.03^2 = 0.2495; grads -4(1 - f)(0.5 u + 0.02 v), +4(1 - f)(0.03 v)
    new, margin = bo.sgd_step(W, x, jnp.float64(1.0), 0.1)
    assert np.isclose(margin, 0.2495, rtol=1e-12)
    want = [[[0.6501, 0.2006004, 0.0]], [[-0.1, 0.2990994, 0.0]]]
    np.testing.assert_allclose(new, want, rtol=1e-12, atol=1e-14)


def test_accuracy_and_coefficients_match_direct_computations():
    W, data = _tiny()
    naive = np.mean([y * _naive_output(W, x) > 0 for x, y in zip(data.x, data.y)])
    assert np.isclose(bo.accuracy(W, data), naive)
    coef = np.asarray(bo.coefficients(W, FEATS.weak))
    np.testing.assert_allclose(coef, np.asarray(W)[:, :, 1] * 0.1 * np.array([[1.0], [-1.0]]))


def test_vmapped_runs_equal_separate_runs():
    keys = jax.random.split(jax.random.key(4), (3, 3))
    data = jax.jit(jax.vmap(lambda k: bo.sample(k, FEATS, 6, 4)))(keys[:, 0])
    W0 = jax.jit(jax.vmap(lambda k: bo.init(k, 3, 5, 0.3)))(keys[:, 1])
    eta = jnp.array([0.5, 0.2, 0.05])
    W, trace = bo.run_many(W0, data, FEATS, eta, keys[:, 2], steps=40, record_every=10)
    for i in range(3):
        one = jax.tree.map(lambda a: a[i], data)
        Wi, ti = bo.run_sgd(W0[i], one, FEATS, eta[i], keys[i, 2], steps=40, record_every=10)
        np.testing.assert_allclose(W[i], Wi, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(trace.margin[i], ti.margin, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(trace.drawn[i], ti.drawn)
    first = jax.tree.map(lambda a: a[0], data)  # the first margin is that of the start
    assert np.isclose(trace.margin[0, 0], first.y[trace.drawn[0, 0]]
                      * _naive_output(W0[0], first.x[trace.drawn[0, 0]]), rtol=1e-12)
    assert trace.strong_coef.shape == (3, 4, 2, 3)
