"""Tests for paperlib.smc against independent truth: dense Gaussian conditioning, scipy densities,
brute-force enumeration of backward paths, finite differences of the exact Kalman likelihood and
exact smoothed moments (Cardoso et al. 2023, arXiv 2301.00900)."""

import itertools

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from paperlib import smc  # noqa: E402

LG = smc.LINEAR_GAUSSIAN


@pytest.fixture(scope="module")
def scalar():
    p = smc.scalar_lg_params(0.9, 1.0, 1.0, 1.0)
    _, ys = smc.simulate(jax.random.PRNGKey(0), LG, p, 20, smc.lg_observation_sampler)
    return p, ys


@pytest.fixture(scope="module")
def bivariate():
    p = smc.lg_params([[0.8, 0.2], [-0.1, 0.7]], [[1.0, 0.3], [0.3, 0.5]], [[1.0, 0.5]], [[0.7]],
                      [0.5, -1.0], [[2.0, 0.4], [0.4, 1.0]])
    _, ys = smc.simulate(jax.random.PRNGKey(1), LG, p, 7, smc.lg_observation_sampler)
    return p, ys


# ---------------------------------------------------------------------------------- exact reference


@pytest.mark.parametrize("model", ["scalar", "bivariate"])
def test_rts_matches_dense_conditioning(model, request):
    p, ys = request.getfixturevalue(model)
    rts, dense = smc.rts_smoother(p, ys[:8]), smc.dense_gaussian_smoother(p, ys[:8])
    for got, want in zip(rts, dense):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10, atol=1e-12)
    assert smc.exact_cross_moment(rts) == pytest.approx(smc.exact_cross_moment(dense), rel=1e-12)
    assert smc.exact_second_moment(rts) == pytest.approx(smc.exact_second_moment(dense), rel=1e-12)


def test_model_densities_match_scipy(bivariate):
    p, _ = bivariate
    x, xn, y = np.array([0.3, -0.2]), np.array([1.1, 0.4]), np.array([0.9])
    P = [np.asarray(v) for v in p]
    assert LG.log_initial(jnp.asarray(x), p) == pytest.approx(stats.multivariate_normal(P[4], P[5]).logpdf(x))
    assert LG.log_transition(jnp.asarray(x), jnp.asarray(xn), p) == pytest.approx(
        stats.multivariate_normal(P[0] @ x, P[1]).logpdf(xn))
    assert LG.log_observation(jnp.asarray(xn), jnp.asarray(y), p) == pytest.approx(
        stats.multivariate_normal(P[2] @ xn, P[3]).logpdf(y))
    sv = smc.sv_params(-1.0, 0.9, 0.3)
    sd0 = 0.3 / np.sqrt(1 - 0.81)
    assert smc.STOCHASTIC_VOLATILITY.log_initial(jnp.array([0.2]), sv) == pytest.approx(stats.norm(-1, sd0).logpdf(0.2))
    assert smc.STOCHASTIC_VOLATILITY.log_transition(jnp.array([0.2]), jnp.array([-0.5]), sv) == pytest.approx(
        stats.norm(-1 + 0.9 * 1.2, 0.3).logpdf(-0.5))
    assert smc.STOCHASTIC_VOLATILITY.log_observation(jnp.array([0.2]), jnp.array([0.7]), sv) == pytest.approx(
        stats.norm(0, np.exp(0.1)).logpdf(0.7))


def test_fisher_identity_against_finite_differences(scalar):
    """(S_xy - a S_xx)/q from exact smoothed moments equals d/da of the Kalman log-likelihood."""
    _, ys = scalar
    build = lambda th: smc.scalar_lg_params(th[0], 1.0, 1.0, 1.0, p0=1.0 / (1 - 0.81))
    a, eps = 0.9, 1e-6
    sm = smc.rts_smoother(build(jnp.array([a])), ys)
    m, v, cc = np.asarray(sm.means[:, 0]), np.asarray(sm.covs[:, 0, 0]), np.asarray(sm.cross_covs[:, 0, 0])
    s_xy, s_xx = np.sum(cc + m[:-1] * m[1:]), np.sum(v[:-1] + m[:-1] ** 2)
    ll = lambda a: float(smc.kalman_filter(build(jnp.array([a])), ys).log_likelihood)
    assert s_xy - a * s_xx == pytest.approx((ll(a + eps) - ll(a - eps)) / (2 * eps), rel=1e-6)
    score = smc.fisher_score_functional(smc.reparametrize(LG, build))
    got = score.step(jnp.array([0.5]), jnp.array([1.3]), ys[1], jnp.array([a]))
    assert float(got[0]) == pytest.approx((1.3 - a * 0.5) * 0.5)


def test_kalman_mle_is_a_maximum(scalar):
    _, ys = scalar
    build = lambda th: smc.scalar_lg_params(th[0], 1.0, 1.0, 1.0, p0=1.0 / (1 - 0.81))
    a_hat = smc.kalman_mle(build, [0.5], ys, bounds=[(-0.99, 0.99)])[0]
    ll = lambda a: float(smc.kalman_filter(build(jnp.array([a])), ys).log_likelihood)
    assert ll(a_hat) >= max(ll(a_hat - 1e-4), ll(a_hat + 1e-4))


# ---------------------------------------------------------------------------------- samplers


@pytest.mark.parametrize("n", [5, 50])
def test_categorical_inverse_cdf_is_exact(n):
    logits = jnp.log(jnp.arange(1.0, n + 1)).at[1].set(-jnp.inf)
    draws = np.asarray(smc.categorical_inverse_cdf(jax.random.PRNGKey(3), jnp.stack([logits, logits[::-1]]), 100000))
    for row, lg in zip(draws, (logits, logits[::-1])):
        p = np.asarray(jax.nn.softmax(lg))
        counts = np.bincount(row, minlength=n)
        assert counts[p == 0].sum() == 0
        chi2 = np.sum((counts[p > 0] - 1e5 * p[p > 0]) ** 2 / (1e5 * p[p > 0]))
        assert stats.chi2(np.sum(p > 0) - 1).sf(chi2) > 1e-4


def test_backward_logits_match_numpy():
    p = smc.scalar_lg_params(0.7, 0.5, 1.0, 1.0)
    rng = np.random.default_rng(0)
    x, xn, lw = rng.normal(size=(6, 1)), rng.normal(size=(4, 1)), rng.normal(size=6)
    want = lw[None, :] + stats.norm(0.7 * x[:, 0][None, :], np.sqrt(0.5)).logpdf(xn[:, 0][:, None])
    got = smc.backward_logits(LG, p, jnp.asarray(lw), jnp.asarray(x), jnp.asarray(xn))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)


def test_particle_filter_likelihood_and_means(scalar):
    p, ys = scalar
    kf = smc.kalman_filter(p, ys)
    ll, means = smc.particle_filter(jax.random.split(jax.random.PRNGKey(4), 20), LG, p, ys, 2000)
    se = float(ll.std()) / np.sqrt(20)
    assert abs(float(ll.mean() - kf.log_likelihood)) < 4 * se + 0.02
    np.testing.assert_allclose(np.asarray(means.mean(0)), np.asarray(kf.filtered_means), atol=0.03)


def _brute_force_cross_moment(sweep, n_backward):
    """E[sum_t x_t x_{t+1} (new path) | system] by enumerating every b_T and every choice u_0..u_{T-1} in {1..K}."""
    x, J, w = np.asarray(sweep.particles), np.asarray(sweep.backward), np.asarray(jax.nn.softmax(sweep.final_log_weights))
    T = J.shape[0]
    total = 0.0
    for b_last in range(x.shape[1]):
        for us in itertools.product(range(n_backward), repeat=T):
            idx = [b_last]
            for t in range(T - 1, -1, -1):
                idx.append(J[t, idx[-1], us[t]])
            path = x[np.arange(T + 1), idx[::-1], 0]
            total += w[b_last] * np.sum(path[:-1] * path[1:]) / n_backward ** T
    return total


@pytest.mark.parametrize("conditional", [False, True])
def test_paris_estimate_is_the_backward_path_average(scalar, conditional):
    """Rao-Blackwell identity: the sweep's estimate equals E[h(new path) | particle system] exactly."""
    p, ys = scalar
    ys = ys[:5]
    reference = jnp.linspace(-1.0, 1.0, 5)[:, None]
    sweeps = smc.paris_sweep(jax.random.split(jax.random.PRNGKey(5), 2), LG, smc.CROSS_MOMENT, p, ys, reference,
                             3, 2, conditional)
    for r in range(2):
        one = jax.tree.map(lambda a: a[r], sweeps)
        assert float(one.estimate[0]) == pytest.approx(_brute_force_cross_moment(one, 2), rel=1e-10)
        if conditional:
            np.testing.assert_array_equal(np.asarray(one.particles[:, -1]), np.asarray(reference))
    one = jax.tree.map(lambda a: a[0], sweeps)
    paths = smc.redraw_paths(jax.random.PRNGKey(6), one, 2, 20000)
    h = jax.vmap(lambda q: smc.evaluate_functional(smc.CROSS_MOMENT, q, ys, p))(paths)[:, 0]
    assert abs(float(h.mean() - one.estimate[0])) < 4 * float(h.std()) / np.sqrt(20000)


def test_paris_is_consistent(scalar):
    """Large N: within 4 s.e. plus a bias allowance of 0.5 (PaRIS bias at N = 400, T = 20 is ~0.3)."""
    p, ys = scalar
    exact = smc.exact_cross_moment(smc.rts_smoother(p, ys))
    big = smc.paris(jax.random.split(jax.random.PRNGKey(7), 40), LG, smc.CROSS_MOMENT, p, ys, 400, 2)[:, 0]
    assert abs(float(big.mean()) - exact) < 4 * float(big.std()) / np.sqrt(40) + 0.5


def test_one_data_set_per_replicate_matches_separate_runs(scalar):
    p, ys = scalar
    batch = jnp.stack([ys, 0.5 * ys, -ys])
    keys = jax.random.split(jax.random.PRNGKey(13), 3)
    together = smc.paris(keys, LG, smc.CROSS_MOMENT, p, batch, 8, 2)
    for r in range(3):
        alone = smc.paris(keys[r:r + 1], LG, smc.CROSS_MOMENT, p, batch[r], 8, 2)
        np.testing.assert_allclose(np.asarray(together[r]), np.asarray(alone[0]), rtol=1e-12)
    exact = smc.exact_cross_moment(jax.vmap(smc.rts_smoother, in_axes=(None, 0))(p, batch))
    assert exact[1] == pytest.approx(smc.exact_cross_moment(smc.rts_smoother(p, batch[1])), rel=1e-12)
    with pytest.raises(ValueError, match="one per replicate"):
        smc.paris(keys[:2], LG, smc.CROSS_MOMENT, p, batch, 8, 2)


def test_ppg_removes_the_bias_on_a_tiny_model():
    """The PPG path chain leaves the smoothing law invariant for any N >= 2: with N = 3 its late
    iterates are unbiased for the exact (RTS) value, while PaRIS (iteration 0) is biased."""
    p = smc.scalar_lg_params(0.9, 1.0, 1.0, 1.0)
    _, ys = smc.simulate(jax.random.PRNGKey(9), LG, p, 6, smc.lg_observation_sampler)
    exact = smc.exact_second_moment(smc.rts_smoother(p, ys))
    est = smc.ppg(jax.random.split(jax.random.PRNGKey(10), 4000), LG, smc.SECOND_MOMENT, p, ys, 3, 2, 25)[..., 0]
    late = est[:, 16:].mean(1)
    assert abs(float(late.mean()) - exact) < 4 * float(late.std()) / np.sqrt(4000)
    assert abs(float(est[:, 0].mean()) - exact) > 5 * float(est[:, 0].std()) / np.sqrt(4000)
    np.testing.assert_allclose(np.asarray(smc.rollout(est[..., None], 15)[:, 0]), np.asarray(late), rtol=1e-12)


def test_score_ascent_with_ppg_reaches_the_kalman_mle_and_paris_does_not(scalar):
    """Learning the observation variance r (T = 20, N = 4): the PPG-driven Polyak average is within
    4 s.e. (over chains) of the exact Kalman MLE; the PaRIS-driven one, from the same compiled
    program (one driver per chain), is off by more than 6 s.e."""
    _, ys = scalar
    build = lambda th: smc.scalar_lg_params(0.9, 1.0, 1.0, th[0], p0=1.0 / (1 - 0.81))
    r_mle = smc.kalman_mle(build, [1.0], ys, bounds=[(0.05, 10.0)])[0]
    model = smc.reparametrize(LG, build)
    drivers = ["ppg"] * 12 + ["paris"] * 12
    run = smc.score_ascent(jax.random.split(jax.random.PRNGKey(11), 24), model, [2.0], ys, 4, 2,
                           n_steps=600, step_size=2.0, lower=0.05, upper=10.0, driver=drivers)
    ppg, paris = np.asarray(run.polyak[:12, 0]), np.asarray(run.polyak[12:, 0])
    se = lambda v: v.std(ddof=1) / np.sqrt(len(v))
    assert abs(ppg.mean() - r_mle) < 4 * se(ppg)
    assert abs(paris.mean() - r_mle) > 6 * se(paris)


def test_grid_smoother_matches_kalman(bivariate, scalar):
    """Quadrature reference (scalar state) = RTS cross moment and Kalman log-likelihood."""
    p, ys = scalar
    got = smc.grid_smoother(LG, smc.CROSS_MOMENT, p, ys, jnp.linspace(-20.0, 20.0, 300))
    rts = smc.rts_smoother(p, ys)
    assert float(got.estimate[0]) == pytest.approx(smc.exact_cross_moment(rts), rel=1e-9)
    assert float(got.log_likelihood) == pytest.approx(float(rts.log_likelihood), rel=1e-10)
    got2 = smc.grid_smoother(LG, smc.SECOND_MOMENT, p, ys, jnp.linspace(-20.0, 20.0, 300))
    assert float(got2.estimate[0]) == pytest.approx(smc.exact_second_moment(rts), rel=1e-9)


def test_ar1_kl_optimum_zeroes_the_expected_gradient(scalar):
    """E_phi[grad log q_lambda*] = 0, by Monte Carlo over exact posterior paths (dense conditioning)."""
    p, ys = scalar
    ys = ys[:8]
    lam = smc.ar1_inclusive_kl_optimum(*smc.rts_smoother(p, ys)[:3])
    dense = smc.dense_gaussian_smoother(p, ys)
    cov = _dense_posterior_cov(p, ys)  # the full joint posterior covariance (tridiagonal precision)
    np.testing.assert_allclose(np.diag(cov), np.asarray(dense.covs)[:, 0, 0], rtol=1e-10)
    paths = np.random.default_rng(0).multivariate_normal(np.asarray(dense.means)[:, 0], cov, 100000)[..., None]
    g = jax.vmap(lambda q: smc.evaluate_functional(smc.ar1_variational_functional(), q, ys, jnp.asarray(lam)))(
        jnp.asarray(paths))
    z = np.asarray(g.mean(0)) / (np.asarray(g.std(0)) / np.sqrt(1e5))
    assert np.all(np.abs(z) < 4.5)


def _dense_posterior_cov(p, ys):
    """Posterior covariance of x_{0:T} (scalar model) from the prior and observation precisions."""
    a, q, r, p0 = float(p.A[0, 0]), float(p.Q[0, 0]), float(p.R[0, 0]), float(p.P0[0, 0])
    T1 = ys.shape[0]
    prec = np.zeros((T1, T1))
    prec[0, 0] = 1 / p0
    for t in range(T1 - 1):
        prec[t:t + 2, t:t + 2] += np.array([[a * a, -a], [-a, 1.0]]) / q
    prec += np.eye(T1) / r
    return np.linalg.inv(prec)


# ---------------------------------------------------------------------------------- input checks


def test_bad_inputs_raise(scalar):
    p, ys = scalar
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    with pytest.raises(ValueError, match="n_particles"):
        smc.paris(keys, LG, smc.CROSS_MOMENT, p, ys, 1, 2)
    with pytest.raises(ValueError, match="n_backward"):
        smc.paris(keys, LG, smc.CROSS_MOMENT, p, ys, 8, 0)
    with pytest.raises(ValueError, match="positive definite"):
        smc.lg_params(0.9, -1.0, 1.0, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="shape"):
        smc.lg_params([[0.9, 0.1]], 1.0, 1.0, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="roll-out"):
        smc.rollout(jnp.zeros((3, 5, 1)), 4, 4)
    with pytest.raises(ValueError, match="driver"):
        smc.score_ascent(keys, LG, [0.5], ys, 8, driver="em")
    with pytest.raises(ValueError, match="driver"):
        smc.score_ascent(keys, LG, [0.5], ys, 8, driver=["ppg"])
    with pytest.raises(ValueError, match="preconditioner"):
        smc.score_ascent(keys, LG, [0.5], ys, 8, preconditioner=[[-1.0]])


def test_preconditioner_scales_the_step(scalar):
    """P = 2 I with step size 1 is the same run as P = I with step size 2 (one compiled program)."""
    _, ys = scalar
    model = smc.reparametrize(LG, lambda th: smc.scalar_lg_params(0.9, 1.0, 1.0, th[0], p0=1 / 0.19))
    keys = jax.random.split(jax.random.PRNGKey(12), 2)
    run = lambda size, prec: smc.score_ascent(keys, model, [2.0], ys, 4, 2, n_steps=5, step_size=size,
                                              lower=0.05, upper=10.0, preconditioner=prec).thetas
    np.testing.assert_allclose(run(1.0, [[2.0]]), run(2.0, None), rtol=1e-12)


def test_markov_score_climbing_reaches_the_ar1_kl_optimum(scalar):
    """MSC driven by PPG: the Polyak average of (phi, c, log s) lands on the exact inclusive-KL optimum
    of the Gaussian AR(1) family, computed from RTS moments; (m, log s0) start at their optimum. The
    record is centred (any data are valid for smoothing) so that (phi, c) are not ill-conditioned."""
    p, ys = scalar
    ys = ys - ys.mean()
    lam_star = smc.ar1_inclusive_kl_optimum(*smc.rts_smoother(p, ys)[:3])
    lam0 = lam_star + np.array([0.0, 0.0, -0.3, 0.3, 0.3])
    run = smc.markov_score_climbing(jax.random.split(jax.random.PRNGKey(12), 8), LG, p,
                                    smc.ar1_variational_functional(), lam0, ys, 16, 2, n_steps=600, step_size=0.1,
                                    step_decay=0.5)
    np.testing.assert_allclose(np.asarray(run.polyak.mean(0))[2:], lam_star[2:], atol=0.03)
