"""Tests for paperlib.experiments.granziol: each protocol against a direct computation (dense
eigendecompositions, the single-run library calls it loops over, closed forms), in float64."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from paperlib import rmt  # noqa: E402
from paperlib.experiments import granziol as gx  # noqa: E402

SIZES = (5, 4, 3)


def _data(seed=0, n=16, folds=None):
    rng = np.random.default_rng(seed)
    shape = (n,) if folds is None else (folds, n)
    X = jnp.asarray(rng.standard_normal((*shape, SIZES[0])))
    y = jnp.asarray(rng.integers(0, SIZES[-1], shape).astype(np.int32))
    return X, y


def test_interval_margins_closed_form():
    np.testing.assert_allclose(gx.interval_margins([0.9, 1.3], 0.8, 1.2), [[0.1, 0.3], [0.5, -0.1]])


def test_curvature_sweep_matches_dense_eigendecompositions():
    X, y = _data()
    theta = rmt.init_mlp(jax.random.PRNGKey(0), SIZES)
    masks = rmt.random_subset_masks(jax.random.PRNGKey(1), 16, [3, 16], 2)
    sw = gx.curvature_sweep(theta, X, y, SIZES, masks, jax.random.PRNGKey(2), 39, top_steps=39)
    H = lambda w: np.asarray(jax.hessian(lambda t: rmt.weighted_loss(t, X, y, w, SIZES))(theta))
    ev, vec = np.linalg.eigh(H(jnp.ones(16)))
    assert sw.lam == pytest.approx(ev[-1], rel=1e-8)
    assert abs(float(np.asarray(sw.u) @ vec[:, -1])) == pytest.approx(1.0, rel=1e-6)
    u = np.asarray(sw.u)
    for d in range(2):
        Hb = H(masks[0, d])
        e = np.linalg.eigvalsh(Hb)
        assert sw.top[0, d] == pytest.approx(e[-1], rel=1e-7)
        assert e[0] - 1e-9 <= sw.bottom[0, d] <= e[-1]  # a Ritz value from the Krylov space of u
        assert sw.rayleigh[0, d] == pytest.approx(u @ Hb @ u, rel=1e-8)
    # B = N: the batch is the full data and u its eigenvector (Lanczos stops at once)
    np.testing.assert_allclose([sw.top[1], sw.rayleigh[1]], ev[-1] * np.ones((2, 2)), rtol=1e-8)
    mean, se = gx.control_variate_excess(sw)
    np.testing.assert_allclose(mean, (sw.top - sw.rayleigh).mean(1))
    assert np.all(se >= 0)


def test_mean_batch_sharpness_matches_eigvalsh():
    X, y = _data(n=10)
    theta = rmt.init_mlp(jax.random.PRNGKey(3), SIZES)
    key = jax.random.PRNGKey(4)
    mean, se = gx.mean_batch_sharpness(theta, X, y, SIZES, [2, 10], 3, key, 39)
    masks = rmt.random_subset_masks(jax.random.split(key)[0], 10, [2, 10], 3)
    tops = [[np.linalg.eigvalsh(np.asarray(jax.hessian(
        lambda t: rmt.weighted_loss(t, X, y, masks[a, d], SIZES))(theta)))[-1] for d in range(3)]
        for a in range(2)]
    np.testing.assert_allclose(mean, np.mean(tops, 1), rtol=1e-7)
    assert se[1] == pytest.approx(0.0, abs=1e-9)  # B = N: every batch is the full data


def test_lr_sweep_and_per_seed_slopes():
    X, y = _data(n=24)
    theta = rmt.init_mlp(jax.random.PRNGKey(5), SIZES)
    keys = jax.random.split(jax.random.PRNGKey(6), 2)
    loss0 = float(jnp.mean(rmt.per_sample_loss(theta, X, y, SIZES)))
    alphas, at_edge = gx.lr_sweep("sgd", theta, X, y, SIZES, [2, 8], keys, 20, (1e-3, 1e3), 10, loss0)
    lo, hi = rmt.max_stable_lr("sgd", theta, X, y, SIZES, jnp.array([2, 8]), keys, 20, 8, (1e-3, 1e3), 10,
                               loss0)
    np.testing.assert_allclose(alphas, np.sqrt(np.asarray(lo) * np.asarray(hi)))
    assert not at_edge
    slopes = gx.per_seed_slopes(np.array([2, 8]), alphas)
    np.testing.assert_allclose(slopes, np.log(alphas[:, 1] / alphas[:, 0]) / np.log(4.0))


def test_train_folds_rule_table_and_evaluate_equal_single_runs():
    X, y = _data(n=16, folds=2)
    Xt, yt = _data(seed=1, n=8, folds=2)
    th0s = jax.vmap(lambda k: rmt.init_mlp(k, SIZES))(jax.random.split(jax.random.PRNGKey(7), 2))
    keys = jax.random.split(jax.random.PRNGKey(8), 2)
    table = gx.rule_table("sgd", [0.1, 0.2], [2, 8], th0s, (X, y, Xt, yt), keys, SIZES, 2)
    for rule, factor in (("linear", 4.0), ("sqrt", 2.0)):
        for k, base in enumerate((0.1, 0.2)):
            for f in range(2):
                for b, (B, lr) in enumerate(((2, base), (8, base * factor))):
                    th = rmt.train("sgd", th0s[f], X[f], y[f], SIZES, B, 2, lr, keys[f], decay=True)
                    ref = 100 * float(rmt.accuracy(th, Xt[f], yt[f], SIZES))
                    assert table[rule][k, b, f] == pytest.approx(ref, abs=1e-9)
    thetas = gx.train_folds("sgd", 2, [0.1], th0s, X, y, keys, SIZES, 2)
    _, ce = gx.evaluate(thetas, Xt, yt, SIZES)
    ref = float(jnp.mean(rmt.per_sample_loss(thetas[0, 1], Xt[1], yt[1], SIZES)))
    assert ce[0, 1] == pytest.approx(ref, rel=1e-10)


def test_validated_base_picks_the_lowest_validation_loss():
    X, y = _data(n=16, folds=2)
    Xv, yv = _data(seed=2, n=8, folds=2)
    th0s = jax.vmap(lambda k: rmt.init_mlp(k, SIZES))(jax.random.split(jax.random.PRNGKey(9), 2))
    keys = jax.random.split(jax.random.PRNGKey(10), 2)
    grid = np.array([1e-3, 0.3, 1e3])
    k, ce = gx.validated_base("sgd", grid, th0s, (X, y), (Xv, yv), keys, SIZES, 3, batch_size=4)
    thetas = gx.train_folds("sgd", 4, grid, th0s, X, y, keys, SIZES, 3)
    ref = np.array([[float(jnp.mean(rmt.per_sample_loss(thetas[i, f], Xv[f], yv[f], SIZES)))
                     for f in range(2)] for i in range(3)])
    ref = np.where(np.isfinite(ref), ref, np.inf).mean(1)
    assert k == int(np.argmin(ref))


def test_exact_extremes_and_learner_vs_polyak_with_a_full_krylov_space():
    key = jax.random.PRNGKey(11)
    X, _ = gx.linear_curvature_batches(key, 40, 6, 2)
    L, mu = gx.exact_nonzero_extremes(X)
    for i in range(2):
        ev = np.linalg.eigvalsh(np.asarray(X[i]).T @ np.asarray(X[i]) / 6)
        nonzero = ev[ev > 1e-10 * ev[-1]]
        assert L[i] == pytest.approx(nonzero[-1], rel=1e-10) and mu[i] == pytest.approx(nonzero[0], rel=1e-8)
    # m = B + 1 Lanczos steps span the B nonzero eigenvectors and the null node: the learner is exact
    lr_err, mom_err, kappa = gx.learner_vs_polyak(key, 40, 6, 2, 7)
    np.testing.assert_allclose(lr_err, 0.0, atol=1e-6)
    np.testing.assert_allclose(mom_err, 0.0, atol=1e-6)
    np.testing.assert_allclose(kappa, L / mu)


def test_kaniel_paige_momentum_steps_is_the_first_guaranteed_m():
    eigs = np.linspace(0.05, 5.0, 60)
    cos = 0.1
    m = gx.kaniel_paige_momentum_steps(eigs, cos, 0.10)
    mom = lambda lo: ((np.sqrt(5.0) - np.sqrt(lo)) / (np.sqrt(5.0) + np.sqrt(lo))) ** 2
    ok = lambda k: mom(0.05 + rmt.kaniel_paige_bottom_bound(eigs, cos, k)) >= 0.9 * mom(0.05)
    assert m is not None and m > 1 and ok(m) and not ok(m - 1)
    assert gx.kaniel_paige_momentum_steps(eigs, cos, 0.10, max_steps=m - 1) is None


def test_learner_seed_runs_match_a_direct_run():
    X, y = _data(n=16)
    Xt, yt = _data(seed=3, n=8)
    key = jax.random.PRNGKey(12)
    runs, ok, acc = gx.learner_seed_runs("polyak", key, 2, (X, y, Xt, yt), SIZES, 4, 2, 8, 5)
    ks = jax.random.fold_in(key, 1)
    th = rmt.init_mlp(jax.random.fold_in(ks, 1), SIZES)
    r = rmt.train_with_learner(th, X, y, SIZES, 4, 2, jax.random.fold_in(ks, 2), 8, 5, rule="polyak")
    np.testing.assert_allclose(runs[1][1].theta, r.theta, rtol=1e-10)
    assert acc[1] == pytest.approx(100 * float(rmt.accuracy(r.theta, Xt, yt, SIZES)))
    l0 = float(jnp.mean(rmt.per_sample_loss(th, X, y, SIZES)))
    assert runs[1][0] == pytest.approx(l0)
    assert ok[1] == bool(np.all(np.isfinite(r.losses)) and float(r.losses[-1]) < l0)
