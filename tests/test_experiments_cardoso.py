"""Tests for paperlib.experiments.cardoso against independent truth: per-record RTS values, grid
quadrature against the Kalman smoother, scipy's L-BFGS-B MLE, exact identities of the ratio and
contraction estimators, and the sampler run directly."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from paperlib import smc  # noqa: E402
from paperlib.experiments import cardoso as cx  # noqa: E402

P = smc.scalar_lg_params(0.9, 1.0, 1.0, 1.0)


@pytest.fixture(scope="module")
def recs():
    return cx.lg_records(jax.random.PRNGKey(0), P, 3, 20)


def test_records_are_independent_and_exact_values_per_record(recs):
    assert recs.shape == (3, 21, 1)
    assert not np.allclose(np.asarray(recs[0]), np.asarray(recs[1]))
    exact = cx.lg_exact_cross_moment(P, recs)
    for m in range(3):
        dense = smc.dense_gaussian_smoother(P, recs[m])
        assert exact[m] == pytest.approx(smc.exact_cross_moment(dense), rel=1e-10)


def test_centred_functional_on_the_grid_matches_kalman(recs):
    """The SV reference path (grid quadrature of the centred cross moment) on a linear-Gaussian
    record with c = 0 equals the RTS value."""
    got = smc.grid_smoother(smc.LINEAR_GAUSSIAN, cx.CENTRED_CROSS_MOMENT, P, recs[0],
                            jnp.linspace(-20.0, 20.0, 300), jnp.asarray(0.0))
    want = cx.lg_exact_cross_moment(P, recs[:1])[0]
    assert float(got.estimate[0]) == pytest.approx(want, rel=1e-9)


def test_sv_exact_is_grid_converged():
    sv = smc.sv_params(-1.02, 0.9702, 0.178)
    ys = cx.sv_records(jax.random.PRNGKey(1), sv, 2, 30)
    fine_grid = cx.sv_grid(sv, 400)
    coarse, fine = cx.sv_exact(sv, ys, cx.sv_grid(sv, 150)), cx.sv_exact(sv, ys, fine_grid)
    np.testing.assert_allclose(coarse, fine, rtol=1e-7)
    direct = smc.grid_smoother(cx.SV, cx.CENTRED_CROSS_MOMENT, sv, ys[1], fine_grid, sv.mu)
    assert fine[1] == pytest.approx(float(direct.estimate[0]), rel=1e-12)


def test_ppg_errors_are_estimates_minus_the_record_value(recs):
    exact = cx.lg_exact_cross_moment(P, recs)
    err = cx.ppg_errors(jax.random.PRNGKey(2), cx.LG, smc.CROSS_MOMENT, P, recs, exact, 4, 2, 2)
    keys = jax.random.split(jax.random.PRNGKey(2), 6)
    direct = smc.ppg(keys, cx.LG, smc.CROSS_MOMENT, P, jnp.repeat(recs, 2, 0), 4, 2, 2)[..., 0]
    want = np.asarray(direct).reshape(3, 2, 3) - exact[:, None, None]
    np.testing.assert_allclose(err, want, rtol=1e-12)


def test_contraction_and_reduction_on_known_errors():
    rng = np.random.default_rng(0)
    d0 = -5.0 + rng.normal(size=400)
    errs = np.stack([d0, 0.5 * d0, 0.25 * d0], 1)
    r, se = cx.contraction(errs)
    assert r == pytest.approx(0.5) and se == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(cx.reduction(errs, 0), 0.5 * np.abs(d0))  # |bias| falls by half


def test_ratio_of_means_standard_error_by_simulation():
    """Delta-method s.e. against the spread of the ratio over 4000 simulated data sets."""
    rng = np.random.default_rng(1)
    num = rng.gamma(4.0, 2.0, size=(4000, 30))
    den = rng.gamma(4.0, 1.0, size=(4000, 30))
    ratios, ses = np.array([cx.ratio_of_means(a, b) for a, b in zip(num, den)]).T
    assert ratios.mean() == pytest.approx(2.0, rel=0.01)
    assert ses.mean() == pytest.approx(ratios.std(), rel=0.08)


def test_kalman_mle_batch_matches_scipy():
    ys = cx.lg_records(jax.random.PRNGKey(3), P, 2, 60)
    got, grad, curv = cx.kalman_mle_batch(jnp.array([0.9, 0.0]), ys)
    for m in range(2):
        want = smc.kalman_mle(cx.lg_build, [0.8, 0.1], ys[m], bounds=[(-0.99, 0.99), (-3.0, 2.0)])
        np.testing.assert_allclose(np.asarray(got[m]), want, atol=1e-6)
    assert float(grad.max()) < 1e-6 and float(curv.max()) < 0


def test_rao_blackwell_identity_per_record(recs):
    out = cx.rao_blackwell(jax.random.PRNGKey(4), P, recs, 8, 4000)
    est, mean, se = (np.asarray(v) for v in out)
    assert np.all(np.abs(est - mean) < 4.5 * se)
    assert not np.allclose(est, est[0])  # one record per sweep


def test_online_variance_matches_direct_runs(recs):
    got = cx.online_variance_by_k(jax.random.PRNGKey(5), P, recs[:2], 8, [1], 30)[1]
    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(5), 1), 60)
    ys = jnp.repeat(recs[:2], 30, 0)
    est = np.asarray(smc.paris(keys, cx.LG, smc.CROSS_MOMENT, P, ys, 8, 1, online=True)[..., 0])
    np.testing.assert_allclose(got, est.reshape(2, 30, -1).var(1, ddof=1), rtol=1e-12)


def test_learn_lg_groups_drivers_and_records(recs):
    run = cx.learn_lg(jax.random.PRNGKey(6), recs, [0.5, 0.0], [4, 8], 4, 20, 0.5, [-0.99, -3.0],
                      [0.99, 2.0])
    assert set(run.polyak) == {("paris", 4), ("ppg", 4), ("paris", 8)}
    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(6), 8), 3)
    direct = smc.score_ascent(keys, cx.LG_LEARN, [0.5, 0.0], recs, 8, 2, n_steps=20, step_size=0.5,
                              lower=[-0.99, -3.0], upper=[0.99, 2.0], driver="paris")
    np.testing.assert_allclose(run.polyak[("paris", 8)], np.asarray(direct.polyak), rtol=1e-12)
