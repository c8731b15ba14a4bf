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


def test_kalman_mle_batch_matches_scipy_and_certifies():
    """Three-parameter MLE (a, log q, log r) against scipy's L-BFGS-B from another start; a record
    whose maximum sits outside the box is not certified."""
    ys = cx.lg_records(jax.random.PRNGKey(3), P, 1, 60)  # one record: each scipy run compiles anew
    got = cx.kalman_mle_batch(cx.MLE_STARTS, ys)
    want = smc.kalman_mle(cx.lg_build, [0.8, 0.1, -0.1], ys[0],
                          bounds=[(-0.99, 0.99), (-5.0, 3.0), (-5.0, 3.0)])
    np.testing.assert_allclose(np.asarray(got.theta[0]), want, atol=1e-5)
    assert cx.certified(got, cx.LEARN_LOWER, cx.LEARN_UPPER).all()
    assert float(got.max_abs_gradient.max()) < 1e-6 and float(got.max_eigenvalue.max()) < 0
    tight = cx.certified(got, cx.LEARN_LOWER, np.asarray(got.theta).min(0) + 1e-3)
    assert not tight.any()  # the box excludes every MLE


def test_scalar_kalman_log_likelihood_matches_the_matrix_filter(recs):
    for theta in ([0.9, 0.0, 0.0], [-0.3, 0.7, -1.2]):
        want = smc.kalman_filter(cx.lg_build(jnp.array(theta)), recs[1]).log_likelihood
        got = cx._kalman_log_likelihood(jnp.array(theta), recs[1])
        assert float(got) == pytest.approx(float(want), rel=1e-12)
    assert float(cx._kalman_log_likelihood(jnp.array([1.2, 0.0, 0.0]), recs[1])) == -np.inf


def test_fisher_preconditioner_inverts_the_observed_information(recs):
    prec = cx.fisher_preconditioner([0.9, 0.0, 0.0], recs)
    hessian = jax.jit(jax.hessian(cx._kalman_log_likelihood))  # forward-over-reverse, one compile
    hess = np.mean([np.asarray(hessian(jnp.array([0.9, 0.0, 0.0]), y)) for y in recs], 0)
    np.testing.assert_allclose(prec @ (-hess / 20), np.eye(3), atol=1e-6)
    assert np.all(np.linalg.eigvalsh(prec) > 0)


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
    lo, hi = cx.LEARN_LOWER, cx.LEARN_UPPER
    run = cx.learn_lg(jax.random.PRNGKey(6), recs, [0.5, 0.0, 0.0], [4, 8], 4, 20, 0.5, lo, hi)
    assert set(run.polyak) == {("paris", 4), ("ppg", 4), ("paris", 8)}
    assert run.thetas[("ppg", 4)].shape == (3, 21, 3)
    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(6), 8), 3)
    direct = smc.score_ascent(keys, cx.LG_LEARN, [0.5, 0.0, 0.0], recs, 8, 2, n_steps=20,
                              step_size=0.5, lower=lo, upper=hi, driver="paris")
    np.testing.assert_allclose(run.polyak[("paris", 8)], np.asarray(direct.polyak), rtol=1e-12)


def _cfg(**kw):
    from types import SimpleNamespace
    base = dict(ppg_particles=[8, 16], ppg_chains=[20, 20], slope_particles=[8, 16],
                rollout_burn_ins=[0, 1], ppg_iterations=4, k_values=[1, 2],
                learn_paris_particles=[8, 16], learn_ppg_particles=8)
    return SimpleNamespace(**{**base, **kw})


@pytest.mark.parametrize("bad", [dict(ppg_particles=[8, 32], ppg_chains=[20, 20]),
                                 dict(slope_particles=[16, 8]), dict(rollout_burn_ins=[0, 4]),
                                 dict(k_values=[2, 4]), dict(learn_ppg_particles=32)])
def test_validate_rejects_bad_knobs(bad):
    cx.validate(_cfg())
    with pytest.raises(ValueError):
        cx.validate(_cfg(**bad))


def test_bias_records_split_one_pool_with_exact_values():
    got = cx.bias_records(jax.random.PRNGKey(7), P, {"a": 2, "b": 3}, 10)
    pool = cx.lg_records(jax.random.PRNGKey(7), P, 5, 10)
    np.testing.assert_array_equal(np.asarray(got["b"][0]), np.asarray(pool[2:]))
    np.testing.assert_allclose(got["a"][1], cx.lg_exact_cross_moment(P, pool[:2]), rtol=1e-12)
    sizes = cx.record_sizes(_cfg(slope_particles=[8, 16, 32], slope_chains=30, equal_budget_runs=5,
                                 rb_records=2))
    assert sizes == {("ppg", 8): 20, ("ppg", 16): 20, ("paris", 32): 30, "equal": 5, "rb": 2}


def test_paris_slope_and_ppg_summary_on_known_errors():
    rng = np.random.default_rng(2)
    errs = {N: -100.0 / N + 0.01 * rng.normal(size=200) for N in (8, 16, 32)}
    fit = cx.paris_slope(errs)
    assert fit.slope == pytest.approx(-1.0, abs=0.01) and fit.runs == [200] * 3
    d0 = -5.0 + rng.normal(size=300)
    pp = cx.ppg_summary({8: np.stack([d0, 0.5 * d0, 0.25 * d0], 1)})
    assert pp.ratio[0] == pytest.approx(0.5) and pp.last[0] == pytest.approx(0.25 * d0.mean())
    assert pp.reduction.shape == (1, 2, 2) and np.all(pp.reduction[0, :, 0] > 0)


def test_rollout_study_against_direct_runs(recs):
    exact = cx.lg_exact_cross_moment(P, recs)
    errs = np.arange(15.0).reshape(3, 5)
    got = cx.rollout_study(jax.random.PRNGKey(8), P, errs, [0, 2], 4, recs, exact)
    np.testing.assert_allclose(got.rollout[:, 1], errs[:, 3:].mean(1))
    keys = jax.random.split(jax.random.PRNGKey(8), 3)
    direct = np.asarray(smc.paris(keys, cx.LG, smc.CROSS_MOMENT, P, recs, 80, 2)[:, 0]) - exact
    np.testing.assert_allclose(got.equal, direct, rtol=1e-12)
    assert got.table.count("\n") == 4


def test_plot_helpers_draw():
    rng = np.random.default_rng(3)
    fit = cx.paris_slope({N: -50.0 / N + rng.normal(size=30) for N in (8, 16)})
    figs = [cx.plot_paris_bias(fit, 50),
            cx.plot_bias_by_iteration({8: np.ones(3)}, {8: np.ones(3)}, "y", "t", True),
            cx.plot_rao_blackwell(rng.normal(size=(4, 3)) ** 2, 4),
            cx.plot_variance_by_k({1: rng.random((3, 6)), 2: rng.random((3, 6))}, 3),
            cx.plot_learning({("ppg", 8): rng.normal(size=(2, 5, 3))}, np.zeros((2, 3)), 2, 50)]
    from types import SimpleNamespace
    figs.append(cx.plot_rollout(SimpleNamespace(rollout=rng.normal(size=(5, 2)),
                                                equal=rng.normal(size=5), budget_n=80), [0, 1], 4))
    for f in figs:
        assert f.axes


def test_learning_study_offsets_from_the_kept_mles(recs):
    theta = np.array([[0.8, 0.1, -0.1], [0.0, 0.0, 0.0], [0.9, -0.2, 0.3]])  # any points will do
    mle = cx.MLE(theta, np.zeros(3), np.zeros(3), -np.ones(3))
    keep = np.array([True, False, True])
    got = cx.learning_study(jax.random.PRNGKey(9), recs, mle, keep, [4, 8], 4, 20)
    prec = cx.fisher_preconditioner([0.9, 0.0, 0.0], recs[keep])
    direct = cx.learn_lg(jax.random.PRNGKey(9), recs[keep], [0.5, np.log(2.0), np.log(2.0)],
                         [4, 8], 4, 20, 0.5, cx.LEARN_LOWER, cx.LEARN_UPPER, prec)
    want = direct.polyak[("ppg", 4)] - np.asarray(mle.theta)[keep]
    np.testing.assert_allclose(got.offset[("ppg", 4)], want, rtol=1e-12)
    np.testing.assert_allclose(got.distance[("paris", 8)],
                               np.linalg.norm(got.offset[("paris", 8)], axis=1))
