"""Protocols of the Jacot notebook against single networks built and trained by hand."""

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from paperlib import ntk  # noqa: E402
from paperlib.experiments import jacot  # noqa: E402

BETA = 0.1
X = ntk.circle(jnp.array([-2.0, -0.5, 1.0]))
Y = X[:, 0] * X[:, 1]
JACOBIAN_NTK = jax.jit(lambda p, a, b: ntk.empirical_ntk_jacobian(p, a, b, BETA))  # one compile per shape


def test_init_deviation_is_the_brute_force_jacobian_kernel_distance():
    key = jax.random.key(3)
    th_inf = ntk.kernels(X, depth=4, beta=BETA).ntk
    dev = jacot.init_deviation(key, X, th_inf, [6, 9], 2, beta=BETA, dtype=jnp.float64)
    for i, n in enumerate([6, 9]):
        for s, k in enumerate(jax.random.split(jax.random.fold_in(key, i), 2)):
            p = ntk.init_params(k, [2, n, n, n, 1])
            th = np.asarray(JACOBIAN_NTK(p, X, X))
            want = np.sum((th - np.asarray(th_inf)) ** 2) / np.sum(np.asarray(th_inf) ** 2)
            np.testing.assert_allclose(dev[i][s], want, rtol=1e-10)


def test_lazy_training_matches_a_hand_trained_network_and_kernel_gd():
    key, grid = jax.random.key(4), ntk.circle(jnp.linspace(-np.pi, np.pi, 5))
    x0 = grid[2:3]
    k_tt = ntk.kernels(X, depth=4, beta=BETA).ntk
    k_gt = ntk.kernels(grid, X, depth=4, beta=BETA).ntk
    out = jacot.lazy_training(key, [7], 2, X, Y, grid, x0, k_tt, k_gt, lr=0.5, steps=4, beta=BETA,
                              dtype=jnp.float64)[7]
    k = jax.random.split(jax.random.fold_in(key, 0), 2)[1]
    p = ntk.init_params(k, [2, 7, 7, 7, 1])
    pT = jax.jit(lambda q: ntk.train(q, X, Y, lr=0.5, steps=4, beta=BETA).params)(p)
    th0 = np.asarray(JACOBIAN_NTK(p, x0, grid))[0]
    np.testing.assert_allclose(out["th0"][1], th0, rtol=1e-10)
    fT = np.asarray(ntk.apply(pT, grid, BETA)[:, 0])
    f0g, f0x = ntk.apply(p, grid, BETA)[:, 0], ntk.apply(p, X, BETA)[:, 0]
    pred = np.asarray(ntk.kernel_predict(k_tt, k_gt, Y, f0x, f0g, lr=0.5, steps=4))
    np.testing.assert_allclose(out["to_kernel"][1], np.sqrt(np.mean((fT - pred) ** 2)), rtol=1e-9)
    loss = 0.5 * np.mean((np.asarray(ntk.apply(pT, X, BETA)[:, 0]) - np.asarray(Y)) ** 2)
    np.testing.assert_allclose(out["train_loss"][1], loss, rtol=1e-9)


def test_gaussian_limit_split_adds_up_to_the_trained_output():
    key, grid = jax.random.key(5), ntk.circle(jnp.linspace(-np.pi, np.pi, 7))
    fT, bias = jacot.gaussian_limit(key, {6: 4}, X, Y, grid, 6, 0.0, lr=0.5, steps=3, beta=BETA,
                                    dtype=jnp.float64)
    k = jax.random.split(jax.random.fold_in(key, 6), 4)[0]
    pT = jax.jit(lambda q: ntk.train(q, X, Y, lr=0.5, steps=3, beta=BETA).params)(
        ntk.init_params(k, [2, 6, 6, 6, 1]))
    np.testing.assert_allclose(fT[6][0], np.asarray(ntk.apply(pT, grid, BETA)[:, 0]), rtol=1e-10)
    b = bias[6]
    # plain mean = control variate + prior; nonlinear = plain - kernel - prior (all means)
    prior_mean = b["plain"][0] - b["cv"][0]
    np.testing.assert_allclose(b["plain"][0], b["lin"][0] + b["nonlin"][0] + prior_mean, rtol=1e-10)
    np.testing.assert_allclose(b["cv_s"].mean(), b["cv"][0], rtol=1e-10)


def test_pc_split_and_decay_rates_on_exact_kernel_gradient_descent():
    rng = np.random.default_rng(0)
    N, steps, lr = 6, 40, 0.5
    A = rng.standard_normal((N, N))
    K = A @ A.T
    lam, V = np.linalg.eigh(K / N)
    lam, V = lam[::-1], V[:, ::-1]
    shift = np.sqrt(N) * V[:, :2] @ np.array([0.3, -0.2])
    f0 = rng.standard_normal(N)
    r = [-shift]
    for _ in range(steps):
        r.append(r[-1] - lr * K @ r[-1] / N)  # residual of kernel GD: r <- (I - lr K/N) r
    outs = (f0 + shift + np.array(r))[None]
    rates = jacot.pc_decay_rates(outs, shift, V, lam, 2, lr)
    np.testing.assert_allclose(rates[0], lam[:2], rtol=1e-10)
    f2 = np.sqrt(N) * V[:, 1]
    g, h = jacot.pc_split(f0 + 0.5 * f2 - 0.5 * f2 * np.exp(-np.arange(3))[None, :, None], f2)
    np.testing.assert_allclose(g[0], 0.5 * np.exp(-np.arange(3)), rtol=1e-12)
    np.testing.assert_allclose(h[0], 0.0, atol=1e-12)
