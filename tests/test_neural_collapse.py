"""Tests of paperlib.neural_collapse against independent truths (brute force, closed forms, geometry)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

from paperlib import neural_collapse as nc  # noqa: E402


def test_simplex_etf_has_unit_columns_with_equal_negative_cosines():
    k = 5
    E = nc.simplex_etf(k)
    gram = E.T @ E
    np.testing.assert_allclose(np.diag(gram), 1.0, atol=1e-14)
    np.testing.assert_allclose(gram[~np.eye(k, dtype=bool)], -1 / (k - 1), atol=1e-14)
    # the same frame built another way: centred one-hot vectors, normalised
    centred = np.eye(k) - 1 / k
    centred /= np.linalg.norm(centred, axis=0)
    np.testing.assert_allclose(gram, centred.T @ centred, atol=1e-14)


def test_nc1_is_zero_for_collapsed_features_and_matches_a_loop_otherwise():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), [4, 5, 6])
    means = rng.normal(size=(3, 7))
    assert float(nc.nc1(jnp.asarray(means[labels]), labels, 3)) < 1e-20
    X = means[labels] + 0.1 * rng.normal(size=(15, 7))
    mu = np.stack([X[labels == c].mean(0) for c in range(3)])
    sw = sum(np.outer(x - mu[c], x - mu[c]) for x, c in zip(X, labels)) / 15
    sb = sum(np.outer(m - X.mean(0), m - X.mean(0)) for m in mu) / 3
    want = np.trace(sw @ np.linalg.pinv(sb)) / 3
    np.testing.assert_allclose(float(nc.nc1(jnp.asarray(X), labels, 3)), want, rtol=1e-10)


def test_gram_and_nc3_metrics_vanish_on_their_frames_and_not_elsewhere():
    k = 4
    E = nc.simplex_etf(k)
    Q = np.linalg.qr(np.random.default_rng(1).normal(size=(6, 6)))[0][:, :k]
    rows = 2.5 * (Q @ E).T  # a rotated, scaled ETF in R^6
    assert float(nc.gram_distance(rows, np.eye(k) - 1 / k)) < 1e-14
    assert float(nc.nc3(rows, 0.3 * rows, np.eye(k) - 1 / k)) < 1e-14
    assert float(nc.gram_distance(rows, np.eye(k))) > 0.1  # an ETF is not an orthogonal frame
    lengths = np.array([3.0, 2.0, 1.0, 1.0])
    ortho = lengths[:, None] * Q.T
    assert float(nc.gram_distance(ortho, np.diag(lengths ** 2))) < 1e-14


def _brute_force_class(nk, total, depth, lam_w, lam_h):
    """Minimise the per-class objective over (s, a) on a grid, then polish: an independent check."""
    def f(s, a):
        sig = s ** depth
        return nk / (2 * total) * (sig * a - 1) ** 2 + lam_w * depth * s ** 2 / 2 + lam_h * nk * a ** 2 / 2
    s, a = np.meshgrid(np.linspace(0, 3, 1201), np.linspace(0, 3, 1201), indexing="ij")
    i = np.unravel_index(np.argmin(f(s, a)), s.shape)
    from scipy.optimize import minimize
    res = minimize(lambda p: f(*p), [s[i], a[i]], method="Nelder-Mead",
                   options=dict(xatol=1e-12, fatol=1e-16, maxiter=20000))
    return res.x


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_gof_closed_form_matches_a_brute_force_minimisation_per_class(depth):
    counts, lam = np.array([40.0, 20.0, 10.0, 3.0]), 5e-3
    gof = nc.gof_closed_form(counts, depth, lam, lam)
    for k, nk in enumerate(counts):
        s, a = _brute_force_class(nk, counts.sum(), depth, lam, lam)
        np.testing.assert_allclose(gof.w_sq[k], s ** (2 * depth), rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(gof.h_sq[k], a ** 2, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(gof.wh[k], s ** depth * a, rtol=1e-5, atol=1e-9)


def test_gof_closed_form_collapses_a_class_whose_count_is_too_small():
    gof = nc.gof_closed_form([100.0, 1.0], 1, 0.05, 0.05)  # M = 1: x = sqrt(n_k/b) - 1 < 0
    assert gof.x[1] == 0.0 and gof.w_sq[1] == 0.0 and gof.x[0] > 0


def test_layers_compose_to_the_network_output_and_frozen_layers_are_identities():
    s = nc.make_setting("mse", 2, 4, 1e-3, 1e-3, 0.1)
    p = nc.init_params(jax.random.key(0), s, 6, 5, 3, 0.5)
    np.testing.assert_array_equal(p.hidden[:2], np.stack([np.eye(5)] * 2))
    feats, cls = nc.layers(p)
    out = p.H @ p.hidden[0].T @ p.hidden[1].T @ p.hidden[2].T @ p.last.T
    for j in range(4):
        np.testing.assert_allclose(feats[j] @ cls[j].T, out, atol=1e-12)


def test_train_reaches_the_closed_form_one_layer_mse_optimum_and_keeps_frozen_layers():
    """Balanced bias-free MSE, M = 1: the optimum objective is K * g(x*) with g of gof_closed_form."""
    k, per, lam = 3, 4, 1e-2
    counts = np.full(k, per)
    labels = np.repeat(np.arange(k), per)
    s = nc.make_setting("mse", 1, 2, lam, lam, 0.1)
    p0 = nc.init_params(jax.random.key(3), s, k * per, 4, k, 0.5)
    p, _ = nc.train(p0, np.eye(k)[labels], s, 6000)
    gof = nc.gof_closed_form(counts, 1, lam, lam)
    n = counts.sum()
    want = np.sum(counts / (2 * n) * (1 - gof.wh) ** 2 + lam / 2 * gof.w_sq + lam / 2 * counts * gof.h_sq)
    np.testing.assert_allclose(float(nc.objective(p, np.eye(k)[labels], s)), want, rtol=1e-10)
    np.testing.assert_array_equal(p.hidden, p0.hidden)  # the frozen identity did not move


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="loss"):
        nc.make_setting("hinge", 1, 2, 1e-3, 1e-3, 0.1)
    with pytest.raises(ValueError, match="depth"):
        nc.make_setting("mse", 3, 2, 1e-3, 1e-3, 0.1)
    with pytest.raises(ValueError, match="positive"):
        nc.make_setting("mse", 1, 2, 0.0, 1e-3, 0.1)
    with pytest.raises(ValueError, match="width"):
        nc.init_params(jax.random.key(0), nc.make_setting("ce", 1, 1, 1e-3, 1e-3, 0.1), 4, 2, 3, 0.1)
    with pytest.raises(ValueError):
        nc.gof_closed_form([3.0, -1.0], 1, 1e-3, 1e-3)


def test_nc1_from_scatter_matches_nc1():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(4), 5)
    X = rng.normal(size=(4, 6))[labels] + 0.2 * rng.normal(size=(20, 6))
    sw, sb = nc.scatter_matrices(jnp.asarray(X), labels, 4)
    np.testing.assert_allclose(nc.nc1_from_scatter(np.stack([sw] * 2), np.stack([sb] * 2), 4),
                               float(nc.nc1(jnp.asarray(X), labels, 4)), rtol=1e-10)
