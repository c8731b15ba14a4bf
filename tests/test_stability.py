"""Tests for paperlib.stability against brute-force enumeration over batches, plain-numpy Jacobians,
closed forms (1-D criterion of Wu, Ma & E 2018; GD's 2/lambda_max; the imbalance identity) and
Monte Carlo."""

import itertools

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from paperlib import stability as st  # noqa: E402


def _instance(n, p, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)) * rng.uniform(0.3, 2.0, (n, 1))


def _enumerated_operator(g, eta, B, replacement):
    """E_I[(I - eta H_I) kron (I - eta H_I)] by listing every batch (plain numpy)."""
    n, p = g.shape
    Hs = np.einsum("ia,ib->iab", g, g)
    batches = (list(itertools.product(range(n), repeat=B)) if replacement
               else list(itertools.combinations(range(n), B)))
    T = np.zeros((p * p, p * p))
    for I in batches:
        A = np.eye(p) - eta * Hs[list(I)].mean(0)
        T += np.kron(A, A) / len(batches)
    return T


def _bisect_max_stable(g, B, replacement, hi=100.0):
    lo = 0.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        rho = np.max(np.abs(np.linalg.eigvals(_enumerated_operator(g, mid, B, replacement))))
        lo, hi = (mid, hi) if rho <= 1 + 1e-12 else (lo, mid)
    return lo


@pytest.mark.parametrize("B,replacement", [(1, True), (2, True), (3, True), (1, False), (2, False), (3, False)])
def test_operator_equals_enumeration_over_batches(B, replacement):
    g = _instance(5, 3, seed=B + 10 * replacement)
    T = st.second_moment_operator(st.rank_one_hessians(g), 0.37, B, replacement)
    np.testing.assert_allclose(np.asarray(T), _enumerated_operator(g, 0.37, B, replacement), atol=1e-13)


def test_sampling_constant_and_validation():
    assert st.sampling_constant(10, 1, False) == 1.0 and st.sampling_constant(10, 10, False) == 0.0
    assert st.sampling_constant(10, 4, True) == 0.25
    assert st.sampling_constant(10, 4, False) == pytest.approx(6 / 36)
    for bad in [(0, 1, True), (5, 0, True), (5, 6, False), (5.0, 1, True)]:
        with pytest.raises(ValueError):
            st.sampling_constant(*bad)
    with pytest.raises(ValueError):
        st.second_moment_operator(np.ones((3, 2)), 0.1, 1)


@pytest.mark.parametrize("B,replacement", [(1, True), (2, True), (2, False), (3, False)])
def test_max_stable_lr_matches_bisection_on_enumerated_operator(B, replacement):
    g = _instance(4, 3, seed=20 + B)
    eta = st.max_stable_lr(st.rank_one_hessians(g), B, replacement)
    assert eta == pytest.approx(_bisect_max_stable(g, B, replacement), rel=1e-8)


def test_gd_limit_is_two_over_lambda_max():
    g = _instance(6, 4, seed=3)
    H = g.T @ g / 6
    assert st.max_stable_lr(st.rank_one_hessians(g), 6, False) == pytest.approx(2 / np.linalg.eigvalsh(H)[-1], rel=1e-10)


def test_rank_deficient_H_is_handled():
    """p > n: null directions of H never move, so eta* is that of the range (here n = 2, p = 4)."""
    g = _instance(2, 4, seed=4)
    Q, _ = np.linalg.qr(g.T)  # (4, 2) basis of the range
    eta_full = st.max_stable_lr(st.rank_one_hessians(g), 1)
    eta_range = st.max_stable_lr(st.rank_one_hessians(g @ Q), 1)
    assert eta_full == pytest.approx(eta_range, rel=1e-10)


def test_trace_condition_b1_and_its_batch_dependence():
    """B = 1: Tr H <= 2/eta* (equality for collinear equal-norm g_i); B = 2: only Tr H <= 2/(c eta*)."""
    ratios = {1: [], 2: []}
    for s in range(60):
        rng = np.random.default_rng(100 + s)
        g = _instance(int(rng.integers(2, 6)), int(rng.integers(1, 4)), seed=200 + s)
        Hs = st.rank_one_hessians(g)
        trH = np.trace(np.asarray(Hs).mean(0))
        for B in (1, 2):
            eta = st.max_stable_lr(Hs, B, True)
            ratios[B].append(trH * eta / 2)
            assert trH <= st.trace_bound(eta, g.shape[0], B, True) * (1 + 1e-9)
            assert float(st.trace_condition_ratio(Hs, eta, B, True)) <= 1 + 1e-9
    assert max(ratios[1]) <= 1 + 1e-9
    u = np.ones((4, 3)) / np.sqrt(3)  # collinear, equal norms: SGD = GD
    assert np.trace(u.T @ u / 4) * st.max_stable_lr(st.rank_one_hessians(u), 1) / 2 == pytest.approx(1.0, rel=1e-10)
    assert max(ratios[2]) > 1.0  # the B-free form fails for B = 2


def test_monte_carlo_second_moment_matches_operator():
    g = _instance(4, 2, seed=7)
    Hs = st.rank_one_hessians(g)
    eta, steps, runs = 0.3, 6, 40000
    T = _enumerated_operator(g, eta, 2, False)
    delta0 = np.tile([1.0, -0.5], (runs, 1))
    S = np.outer(delta0[0], delta0[0]).ravel()
    exact = [np.trace((np.linalg.matrix_power(T, t) @ S).reshape(2, 2)) for t in range(steps + 1)]
    sq = st.linearized_sgd_sq_norms(Hs, eta, 2, False, jax.random.PRNGKey(0), jnp.asarray(delta0), steps)
    assert sq.shape == (runs, steps + 1)
    np.testing.assert_allclose(np.asarray(sq).mean(0), exact, rtol=0.02)


def test_one_dimensional_criterion_and_2018_toy():
    """At x = 1 the toy has h = (0.2, 3.8): GD stable (|1 - 1.4| < 1), SGD unstable (1.75 > 1) at eta 0.7."""
    assert not st.stable_1d([0.2, 3.8], 0.7, 1) and st.stable_1d([0.2, 3.8], 0.7, 2, replacement=False)
    assert st.stable_1d([2.0, 2.0], 0.7, 1)
    assert st.criterion_1d([0.2, 3.8], 0.7, 1) == pytest.approx((1 - 0.7 * 2) ** 2 + 0.49 * 1.8**2, rel=1e-14)
    np.testing.assert_allclose(np.asarray(st.toy_hessians(1.0)).ravel(), [0.2, 3.8], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(st.toy_hessians(0.0)).ravel(), [2.0, 2.0], rtol=1e-12)
    T = st.second_moment_operator(st.toy_hessians(1.0), 0.7, 1)  # 1 x 1: the 1-D criterion itself
    assert float(T[0, 0]) == pytest.approx(st.criterion_1d([0.2, 3.8], 0.7, 1), rel=1e-12)
    keys = jax.random.split(jax.random.PRNGKey(0), 20)
    gd = st.toy_run(1 + 1e-5, 0.7, 300, keys, sgd=False)
    sgd = st.toy_run(1 + 1e-5, 0.7, 300, keys, sgd=True)
    assert np.all(np.abs(np.asarray(gd) - 1) < 1e-6) and np.mean(np.abs(np.asarray(sgd)) < 1e-3) >= 0.9


def test_dln_trace_and_imbalance_identity():
    rng = np.random.default_rng(8)
    d, n = 6, 5
    X, theta = rng.standard_normal((n, d)), rng.standard_normal(2 * d)
    a, b = theta[:d], theta[d:]
    J = np.concatenate([b * X, a * X], axis=1)  # g_i = (b * x_i, a * x_i)
    assert float(st.dln_trace(jnp.asarray(theta), jnp.asarray(X))) == pytest.approx(np.trace(J.T @ J / n), rel=1e-12)
    sh = st.gauss_newton_sharpness(st.dln_predict, jnp.asarray(theta), jnp.asarray(X))
    np.testing.assert_allclose([sh.trace, sh.lambda_max], [np.trace(J.T @ J / n), np.linalg.eigvalsh(J.T @ J / n)[-1]],
                               rtol=1e-12)
    y, eta = rng.standard_normal(n), 0.05
    run = st.train(st.dln_predict, jnp.asarray(theta), jnp.asarray(X), jnp.asarray(y), [eta], steps=1,
                   batch_size=None, key=jax.random.PRNGKey(0), record_every=1)
    a1, b1 = np.split(np.asarray(run.theta[0]), 2)
    gbeta = X.T @ (X @ (a * b) - y) / n
    np.testing.assert_allclose(a1**2 - b1**2, (a**2 - b**2) * (1 - eta**2 * gbeta**2), rtol=1e-12)
    assert float(st.dln_balance(st.dln_imbalanced_init(jax.random.PRNGKey(1), 50, 4.0, 0.3))) == pytest.approx(4.0)


def test_relu_trace_path_norm_and_shapes():
    rng = np.random.default_rng(9)
    m, d, n = 4, 3, 7
    X, theta = rng.standard_normal((n, d)), rng.standard_normal(m * (d + 1))
    a, W = theta[:m], theta[m:].reshape(m, d)
    Z = X @ W.T
    J = np.concatenate([np.maximum(Z, 0), ((a * (Z > 0))[:, :, None] * X[:, None, :]).reshape(n, -1)], 1)
    assert float(st.relu_trace(jnp.asarray(theta), jnp.asarray(X))) == pytest.approx(np.trace(J.T @ J / n), rel=1e-12)
    assert float(st.relu_predict(jnp.asarray(theta), jnp.asarray(X[0]))) == pytest.approx(a @ np.maximum(W @ X[0], 0))
    assert float(st.relu_path_norm(jnp.asarray(theta), d)) == pytest.approx(np.sum(np.abs(a) * np.linalg.norm(W, axis=1)))
    Xs = st.sphere_inputs(jax.random.PRNGKey(0), 10, 5)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(Xs), axis=1), np.sqrt(5), rtol=1e-12)


def lin(t, x):
    """A linear model, shared by the trainer tests so that equal configurations compile once."""
    return t @ x


def test_gd_trainer_matches_numpy_and_records_divergence():
    """Linear model: GD converges for eta < 2/lambda_max and diverges (recorded, not raised) above it."""
    rng = np.random.default_rng(10)
    X, w0 = rng.standard_normal((8, 3)), rng.standard_normal(3)
    y = X @ rng.standard_normal(3)
    lam = np.linalg.eigvalsh(X.T @ X / 8)[-1]
    run = st.train(lin, jnp.tile(w0, (2, 1)), jnp.asarray(X), jnp.asarray(y), [0.99 * 2 / lam, 1.01 * 2 / lam],
                   steps=4000, batch_size=None, key=jax.random.PRNGKey(0), record_every=100, blowup=1e4)
    assert not bool(run.diverged[0]) and float(run.final_loss[0]) < 1e-12
    assert bool(run.diverged[1]) and np.all(np.isfinite(np.asarray(run.theta[1])))
    w = w0.copy()
    for _ in range(100):
        w -= 0.1 * X.T @ (X @ w - y) / 8
    short = st.train(lin, jnp.asarray(w0), jnp.asarray(X), jnp.asarray(y), [0.1], steps=100, batch_size=None,
                     key=jax.random.PRNGKey(0), record_every=10)  # the configuration of the test below
    np.testing.assert_allclose(np.asarray(short.theta[0]), w, rtol=1e-12)
    with pytest.raises(ValueError):
        st.train(lin, jnp.asarray(w0), jnp.asarray(X), jnp.asarray(y), [0.1], steps=10, batch_size=None,
                 key=jax.random.PRNGKey(0), record_every=3)


def test_perturbation_growth_separates_stable_from_unstable():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((8, 3))
    w = rng.standard_normal(3)
    H = X.T @ X / 8
    lam, V = np.linalg.eigh(H)
    args = dict(direction=jnp.asarray(V[:, -1]), eps=1e-6, steps=200, batch_size=None, key=jax.random.PRNGKey(0))
    stable = st.perturbation_growth(lin, jnp.asarray(w), jnp.asarray(X), jnp.asarray(X @ w), 1.9 / lam[-1], **args)
    unstable = st.perturbation_growth(lin, jnp.asarray(w), jnp.asarray(X), jnp.asarray(X @ w), 2.1 / lam[-1], **args)
    assert float(stable) <= 1.0 and float(unstable) > 1e6


def test_mlp_curvature_matches_dense_hessians():
    from functools import partial

    widths = (3, 5, 2)
    f = partial(st.mlp_apply, widths=widths)
    theta = st.mlp_init(jax.random.PRNGKey(0), widths)
    rng = np.random.default_rng(12)
    X, Y = jnp.asarray(rng.standard_normal((6, 3))), jnp.asarray(rng.standard_normal((6, 2)))
    sample_hessian = jax.hessian(lambda t, x, y: 0.5 * jnp.sum((f(t, x) - y) ** 2))
    Hs = np.asarray(jax.jit(jax.vmap(sample_hessian, in_axes=(None, 0, 0)))(theta, X, Y))  # one compile
    H = Hs.mean(0)
    p = theta.shape[0]
    top = st.hessian_lambda_max(f, theta, X, Y, jax.random.PRNGKey(1), num_steps=p)
    assert float(top) == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-8)
    Sigma = np.einsum("iab,ibc->ac", Hs, Hs) / 6 - H @ H
    nu = st.nonuniformity(f, theta, X, Y, jax.random.PRNGKey(1), num_steps=p)
    assert float(nu) == pytest.approx(np.sqrt(np.linalg.eigvalsh(Sigma)[-1]), rel=1e-8)


def test_repeated_training_reuses_the_compiled_trainer_and_continues_exactly():
    """Two chunks of 50 GD steps equal one run of 100 (GD is deterministic) and compile once per configuration."""
    rng = np.random.default_rng(13)
    X, w0 = jnp.asarray(rng.standard_normal((8, 3))), jnp.asarray(rng.standard_normal(3))
    y = X @ jnp.asarray(rng.standard_normal(3))
    args = dict(batch_size=None, key=jax.random.PRNGKey(0), record_every=10)
    whole = st.train(lin, w0, X, y, [0.1], steps=100, **args)
    before = st._compiled_trainer.cache_info()
    first = st.train(lin, w0, X, y, [0.1], steps=50, **args)
    second = st.train(lin, first.theta, X, y, [0.1], steps=50, **args)
    after = st._compiled_trainer.cache_info()
    assert after.misses - before.misses == 1 and after.hits - before.hits == 1
    np.testing.assert_allclose(np.asarray(second.theta), np.asarray(whole.theta), rtol=1e-12)
