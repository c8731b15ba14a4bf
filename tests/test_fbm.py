"""Tests for paperlib.fbm against independent truth: quadrature of the defining integrals (scipy),
closed forms, Monte-Carlo with standard errors, and the float64 reference values of the research brief
(Daems et al. 2024, arXiv 2310.12975; brief /work/shared/papers/fbm_sde_vi.md, Sec. 3)."""

import jax

jax.config.update("jax_enable_x64", True)

import math  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import integrate, special  # noqa: E402

from paperlib import fbm  # noqa: E402

GRID5 = fbm.gamma_grid(5, gamma_max=20.0)
QUAD = dict(epsabs=1e-13, epsrel=1e-11, limit=200)


# --------------------------------------------------------------------------------------------
# Independent quadrature of the defining integrals (Sec. 2.4 of the brief / Prop. 5)
# --------------------------------------------------------------------------------------------


def _quad(f, a, b, **kw):
    return integrate.quad(f, a, b, **{**QUAD, **kw})[0]


def _b_integrand(t, g, H, kind):
    """E[B_H(t) Y_hat(t)] as a single integral over the driving noise, by quadrature."""
    a = H + 0.5
    recent = _quad(lambda v: np.exp(-g * v), 0.0, t, weight="alg", wvar=(a - 1.0, 0.0)) / special.gamma(a)
    if kind == "II":
        return recent
    past = _quad(lambda u: ((t + u) ** (a - 1) - u ** (a - 1)) * (np.exp(-g * (t + u)) - np.exp(-g * u)), 0.0, np.inf)
    return recent + past / special.gamma(a)


def _a_integrand(t, gi, gj, kind):
    """E[Y_hat_i(t) Y_hat_j(t)] by quadrature over the driving noise."""
    recent = _quad(lambda s: np.exp(-(gi + gj) * (t - s)), 0.0, t)
    if kind == "II":
        return recent
    # e^{-g(t+u)} - e^{-gu} = e^{-gu} expm1(-g t), written without cancellation
    past = np.expm1(-gi * t) * np.expm1(-gj * t) * _quad(lambda u: np.exp(-(gi + gj) * u), 0.0, np.inf)
    return recent + past


def _var_integrand(t, H, kind):
    a = H + 0.5
    recent = _quad(lambda v: 1.0, 0.0, t, weight="alg", wvar=(2 * a - 2, 0.0))
    if kind == "II":
        return recent / special.gamma(a) ** 2
    # (t+u)^(a-1) - u^(a-1) = u^(a-1) expm1((a-1) log1p(t/u)), written without cancellation at large u
    ratio = lambda u: np.expm1((a - 1) * np.log1p(t / u)) ** 2 if u > 0 else (1.0 if a < 1 else np.inf)  # noqa: E731
    if a < 1:  # the integrand ~ u^(2a-2) at 0: carry that factor as a quadrature weight on [0, t]
        near = _quad(ratio, 0.0, t, weight="alg", wvar=(2 * a - 2, 0.0))
    else:
        near = _quad(lambda u: ((t + u) ** (a - 1) - u ** (a - 1)) ** 2, 0.0, t)
    far = _quad(lambda u: u ** (2 * a - 2) * ratio(u), t, np.inf)
    return (recent + near + far) / special.gamma(a) ** 2


@pytest.mark.parametrize("kind", ["I", "II"])
@pytest.mark.parametrize("H, T", [(0.2, 1.5), (0.7, 1.5), (0.3, 6.0), (0.8, 1.0), (0.05, 1.0), (0.95, 1.0)])
def test_b_matches_quadrature(kind, H, T):
    g = np.array([0.05, 0.3, 2.0, 7.0, 50.0])
    b = np.asarray(fbm.omega_system(g, H, T, kind).b)
    ref = np.array([_quad(lambda t: _b_integrand(t, gk, H, kind), 0.0, T) for gk in g])
    np.testing.assert_allclose(b, ref, rtol=1e-6)


@pytest.mark.parametrize("kind", ["I", "II"])
def test_A_and_c_match_quadrature(kind):
    g = np.array([0.05, 0.7, 20.0])
    T = 1.5
    A = np.asarray(fbm.omega_system(g, 0.3, T, kind).A)
    ref = np.array([[_quad(lambda t: _a_integrand(t, gi, gj, kind), 0.0, T) for gj in g] for gi in g])
    np.testing.assert_allclose(A, ref, rtol=1e-6)
    for H in (0.2, 0.7):
        c = float(fbm.omega_system(g, H, T, kind).c)
        assert c == pytest.approx(_quad(lambda t: _var_integrand(t, H, kind), 0.0, T), rel=1e-6)


@pytest.mark.parametrize("H", [0.2, 0.5, 0.7, 0.9])
def test_variance_factor_matches_quadrature(H):
    assert float(fbm.variance_factor(H)) == pytest.approx(_var_integrand(1.0, H, "I"), rel=1e-8)


def test_brief_b_fixtures():
    """Brief C2, T = 1.5 (printed to 7 digits)."""
    for kind, values in [("I", (1.296022, 0.266989)), ("II", (1.153611, 0.407938))]:
        got = (float(fbm.omega_system(jnp.array([0.3]), 0.2, 1.5, kind).b[0]),
               float(fbm.omega_system(jnp.array([2.0]), 0.7, 1.5, kind).b[0]))
        np.testing.assert_allclose(got, values, atol=5e-7)


@pytest.mark.parametrize("kind, T, H, omega, decimals", [
    ("I", 6.0, 0.3, [0.78371, -0.09288, 0.47869, 0.06908, 1.20410], 5),
    ("I", 6.0, 0.7, [2.29798, -1.69848, 0.37683, -0.69424, 0.07688], 5),
    ("II", 1.0, 0.3, [28.174, -38.351, 13.262, -2.292, 1.772], 3),
    ("II", 1.0, 0.7, [-0.935, 3.268, -1.771, 0.116, -0.315], 3),
])
def test_brief_omega_fixtures(kind, T, H, omega, decimals):
    """Brief Sec. 3 reference omega (float64, K = 5, gamma_max = 20), to the printed precision."""
    got = np.asarray(fbm.optimal_omega(GRID5, H, T, kind))
    np.testing.assert_allclose(got, omega, atol=0.5 * 10.0**-decimals + 1e-12)


def test_omega_solves_normal_equations_and_is_optimal():
    rng = np.random.default_rng(0)
    for kind, T in (("I", 6.0), ("II", 1.0)):
        for H in (0.3, 0.7):
            system = fbm.omega_system(GRID5, H, T, kind)
            w = fbm.optimal_omega(GRID5, H, T, kind)
            np.testing.assert_allclose(system.A @ w, system.b, rtol=1e-8, atol=1e-10 * float(jnp.abs(system.b).max()))
            e_star = float(fbm.approximation_error(system, w))
            for _ in range(20):
                d = rng.normal(size=5) * 10.0 ** rng.uniform(-4, 0)
                assert float(fbm.approximation_error(system, w + d)) >= e_star - 1e-12 * float(system.c)


def test_relative_error_table_type_II():
    """Brief C3 (type II, T = 1, gamma_max = 20, K = 5), two significant digits."""
    for H, ref in [(0.1, 0.229), (0.3, 7.8e-3), (0.4, 7.2e-4), (0.6, 9.5e-5), (0.8, 1.0e-4)]:
        got = float(fbm.optimal_relative_error(fbm.omega_system(GRID5, H, 1.0, "II")))
        assert got == pytest.approx(ref, rel=0.03)


def test_error_non_increasing_on_nested_grids_and_finite():
    """Brief C4: fixed ratio r = 4, K = 1, 5, 13, 17 (nested grids: each contains the previous); no NaN even
    where Q e^z overflows (gamma T up to 4^16)."""
    for kind in ("I", "II"):
        for H in (0.2, 0.9):
            errs = np.array([float(fbm.optimal_relative_error(fbm.omega_system(fbm.gamma_grid(K, ratio=4.0), H, 1.0, kind)))
                             for K in (1, 5, 13, 17)])
            assert np.all(np.isfinite(errs)) and np.all(errs >= 0)
            assert np.all(np.diff(errs) <= 1e-10)
    got = float(fbm.optimal_relative_error(fbm.omega_system(fbm.gamma_grid(13, ratio=4.0), 0.7, 1.0, "II")))
    assert got == pytest.approx(1.1e-7, rel=0.05)


def test_scaled_upper_gamma_no_overflow_and_accurate():
    for a in (0.55, 0.8, 1.2, 1.45):
        for z in (0.5, 5.0, 15.0, 19.99, 20.0, 35.0, 300.0):
            ref = special.gammaincc(a, z) * math.exp(z)
            assert float(fbm.scaled_upper_gamma(a, z)) == pytest.approx(ref, rel=1e-12)
        for z in (800.0, 5000.0):  # e^z overflows float64; Q e^z ~ z^{a-1}/Gamma(a) (1 + (a-1)/z)
            approx = z ** (a - 1) / special.gamma(a) * (1 + (a - 1) / z)
            assert float(fbm.scaled_upper_gamma(a, z)) == pytest.approx(approx, rel=1e-5)
    f32 = fbm.scaled_upper_gamma(jnp.float32(0.8), jnp.float32(120.0))
    assert np.isfinite(float(f32))
    w32 = fbm.optimal_omega(jnp.asarray(GRID5, jnp.float32), jnp.float32(0.7), 6.0, "I")
    assert np.all(np.isfinite(np.asarray(w32)))


@pytest.mark.parametrize("H", [0.01, 0.03, 0.97, 0.99])
def test_extreme_hurst_is_finite(H):
    for kind, T in (("I", 6.0), ("II", 1.0)):
        err = float(fbm.optimal_relative_error(fbm.omega_system(GRID5, H, T, kind)))
        assert 0.0 <= err <= 1.0 and np.all(np.isfinite(np.asarray(fbm.optimal_omega(GRID5, H, T, kind))))


def test_gradient_in_hurst():
    """Brief C10 and central differences (dsum(omega)/dH, float64)."""
    for kind, T, refs in (("II", 1.0, {0.3: -11.7054, 0.7: -1.92088}), ("I", 6.0, {0.3: -10.4675, 0.7: -2.11299})):
        f = jax.jit(jax.value_and_grad(lambda h: fbm.optimal_omega(GRID5, h, T, kind).sum()))
        for H, ref in refs.items():  # one compile per kind: value and gradient together
            grad = float(f(H)[1])
            eps = 1e-5
            fd = (float(f(H + eps)[0]) - float(f(H - eps)[0])) / (2 * eps)
            assert grad == pytest.approx(fd, rel=1e-6)
            assert grad == pytest.approx(ref, abs=6e-5 * abs(ref))


# --------------------------------------------------------------------------------------------
# Covariances and samplers
# --------------------------------------------------------------------------------------------


def test_rl_covariance_matches_quadrature():
    for H in (0.3, 0.7):
        a = H + 0.5
        for t, s in ((0.4, 1.0), (1.0, 1.0), (0.05, 2.0)):
            lo, hi = min(t, s), max(t, s)
            if hi == lo:
                ref = _quad(lambda u: 1.0, 0.0, lo, weight="alg", wvar=(0.0, 2 * a - 2))
            else:
                ref = _quad(lambda u: (hi - u) ** (a - 1), 0.0, lo, weight="alg", wvar=(0.0, a - 1))
            ref /= special.gamma(a) ** 2
            assert float(fbm.rl_covariance(t, s, H)) == pytest.approx(ref, rel=1e-8)


def test_mafbm_covariance_integrates_to_quadratic_form():
    """int_0^T Var(B_hat(t)) dt = omega' A omega (two independent routes to the same number)."""
    for kind, T in (("I", 6.0), ("II", 1.0)):
        w = fbm.optimal_omega(GRID5, 0.3, T, kind)
        system = fbm.omega_system(GRID5, 0.3, T, kind)
        var = lambda t: float(fbm.mafbm_covariance(jnp.array([t]), jnp.array([t]), GRID5, w, kind)[0, 0])  # noqa: E731
        assert _quad(var, 0.0, T, epsrel=1e-10) == pytest.approx(float(w @ system.A @ w), rel=1e-8)


def test_mafbm_covariance_brief_table():
    """Brief C5: T = 1, K = 5, gamma_max = 20, grid 0.1..1: Var(1) and max relative deviation."""
    ts = np.linspace(0.1, 1.0, 10)
    for H, var_I, dev_I, var_II, dev_II in ((0.3, 1.377, 0.016, 1.2374, 0.0125), (0.7, 0.884, 0.112, 0.8453, 0.0024)):
        wI = fbm.optimal_omega(GRID5, H, 1.0, "I")
        CI = np.asarray(fbm.mafbm_covariance(ts, ts, GRID5, wI, "I"))
        EI = np.asarray(fbm.fbm_covariance(ts[:, None], ts[None, :], H, fbm.variance_factor(H)))
        assert CI[-1, -1] == pytest.approx(var_I, abs=1e-3)
        assert np.abs(CI - EI).max() / np.abs(EI).max() == pytest.approx(dev_I, abs=1.5e-3)
        wII = fbm.optimal_omega(GRID5, H, 1.0, "II")
        CII = np.asarray(fbm.mafbm_covariance(ts, ts, GRID5, wII, "II"))
        EII = fbm.rl_covariance(ts[:, None], ts[None, :], H)
        assert CII[-1, -1] == pytest.approx(var_II, abs=1e-4)
        assert np.abs(CII - EII).max() / np.abs(EII).max() == pytest.approx(dev_II, abs=5e-4)


def _max_z_score(paths, cov):
    """Largest |empirical - exact| covariance entry in units of its Gaussian standard error."""
    n = paths.shape[0]
    emp = paths.T @ paths / n
    se = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    mask = se > 0
    return np.max(np.abs(emp - cov)[mask] / se[mask])


@pytest.mark.parametrize("sampler", [fbm.sample_fbm_cholesky, fbm.sample_fbm_davies_harte])
def test_exact_fbm_samplers_covariance(sampler):
    n, N = 16, 20000
    for i, H in enumerate((0.2, 0.8)):
        paths = np.asarray(sampler(jax.random.PRNGKey(i), H, n, 2.0, N))
        assert paths.shape == (N, n + 1) and np.all(paths[:, 0] == 0)
        ts = np.linspace(0, 2.0, n + 1)[1:]
        cov = np.asarray(fbm.fbm_covariance(ts[:, None], ts[None, :], H))
        assert _max_z_score(paths[:, 1:], cov) < 4.5


def test_davies_harte_embedding_is_non_negative():
    for H in (0.02, 0.5, 0.95, 0.99):
        for n in (2, 8, 64):
            row = np.asarray(fbm.fgn_autocovariance(np.arange(n + 1), H))
            lam = np.fft.fft(np.concatenate([row, row[-2:0:-1]])).real
            assert lam.min() > -1e-12


def test_exact_mafbm_sampler_matches_analytic_covariance():
    for kind in ("I", "II"):
        w = fbm.optimal_omega(GRID5, 0.3, 1.0, kind)
        paths = np.asarray(fbm.sample_mafbm_exact(jax.random.PRNGKey(3), GRID5, w, 0.1, 10, 20000, kind))
        ts = np.linspace(0.1, 1.0, 10)
        cov = np.asarray(fbm.mafbm_covariance(ts, ts, GRID5, w, kind))
        assert _max_z_score(paths[:, 1:], cov) < 4.5


# --------------------------------------------------------------------------------------------
# SDE, KL, bridge
# --------------------------------------------------------------------------------------------


def test_euler_constant_control_brownian_case():
    """BM limit (gamma = 0, omega = 1): X(T) ~ N(cT, T) under u = c, and KL = c^2 T / 2 exactly."""
    c, dt, n = 0.7, 0.01, 100

    def one(k):
        return fbm.euler_maruyama(k, jnp.zeros(1), jnp.zeros((1, 1)), jnp.zeros(1), jnp.ones(1),
                                  lambda t, x: 0 * x, lambda t, x: jnp.ones_like(x), lambda t, x, y: c * jnp.ones(1), dt, n)

    paths = jax.vmap(one)(jax.random.split(jax.random.PRNGKey(0), 20000))
    xT = np.asarray(paths.x[:, -1, 0])
    assert abs(xT.mean() - c) < 4 * np.sqrt(1.0 / 20000)
    assert abs(xT.var() - 1.0) < 4 * np.sqrt(2.0 / 20000)
    np.testing.assert_allclose(np.asarray(paths.kl), 0.5 * c**2 * 1.0, rtol=1e-12)


def test_gaussian_path_kl_tends_to_girsanov():
    """KL between the Gaussian laws of X on a grid (exact type-II MA-fBM covariance, exact mean shift)
    tends to 1/2 c^2 T from below as the grid refines (data processing inequality; for type II the
    X-path determines W, for type I a shift of Y(0) mimics part of the control)."""
    w = fbm.optimal_omega(GRID5, 0.3, 1.0, "II")
    c, T = 1.3, 1.0
    kls = []
    for n in (5, 20, 100):
        ts = np.linspace(T / n, T, n)
        cov = fbm.mafbm_covariance(ts, ts, GRID5, w, "II")
        kls.append(float(fbm.gaussian_path_kl(fbm.constant_control_mean_shift(ts, GRID5, w, c), cov)))
    assert kls[0] < kls[1] < kls[2] <= 0.5 * c**2 * T * (1 + 1e-9)
    assert kls[2] == pytest.approx(0.5 * c**2 * T, rel=0.01)


def test_linear_prior_covariance_matches_mafbm_covariance():
    ts = np.linspace(0.0, 2.0, 41)
    for kind in ("I", "II"):
        w = fbm.optimal_omega(GRID5, 0.7, 6.0, kind)
        ref = np.asarray(fbm.mafbm_covariance(ts, ts, GRID5, w, kind))
        np.testing.assert_allclose(fbm.linear_prior_covariance(ts, GRID5, w, 0.0, kind), ref, atol=1e-10)


def test_bridge_reference_values():
    """Brief C8/C9: log p(X(2)_obs = 0) and conditioned std at t = 0.5, 1, 1.5 (type I, T_omega = 6)."""
    ts = np.linspace(0.0, 2.0, 201)
    for H, logp, std_ma, std_unit in ((0.3, -1.2822, (0.836, 0.915, 0.838), (0.726, 0.790, 0.729)),
                                      (0.7, -1.2586, (0.439, 0.545, 0.445), (0.480, 0.585, 0.486))):
        w = fbm.optimal_omega(GRID5, H, 6.0, "I")
        cov = fbm.linear_prior_covariance(ts, GRID5, w, 0.0, "I")
        assert fbm.gaussian_log_evidence(cov[-1, -1], 0.01) == pytest.approx(logp, abs=1e-4)
        np.testing.assert_allclose(fbm.conditioned_std(cov, 200, 0.01)[[50, 100, 150]], std_ma, atol=1e-3)
        unit = np.asarray(fbm.fbm_covariance(ts[:, None], ts[None, :], H))
        np.testing.assert_allclose(fbm.conditioned_std(unit, 200, 0.01, pin_index=0)[[50, 100, 150]], std_unit, atol=1e-3)


def test_euler_bridge_optimum():
    """The best shared-control ELBO is below log p and tends to the continuous log p as dt -> 0 (BM case
    has the closed form log N(0; 0, T + s^2))."""
    exact = -0.5 * np.log(2 * np.pi * 2.01)
    gaps = []
    for dt in (0.02, 0.005, 0.0005):
        best, logp = fbm.euler_bridge_optimum([0.0], [1.0], 0.0, "II", dt, int(round(2 / dt)), 0.1)
        assert logp == pytest.approx(exact, rel=1e-12) and best < logp
        gaps.append(logp - best)
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.03


def test_euler_bridge_optimal_law():
    """The forward covariance of the LQR-optimal Euler posterior reproduces the Riccati value (two routes
    to the same ELBO), and in the BM case its std at t = 1 tends to the closed form sqrt(1 - 1/(2 + s^2))."""
    g = fbm.gamma_grid(5, gamma_max=20.0)
    for H, theta in ((0.3, 0.0), (0.8, 1.0)):
        w = np.asarray(fbm.optimal_omega(g, H, 6.0, "I"))
        std, elbo = fbm.euler_bridge_optimal_law(g, w, theta, "I", 0.01, 200, 0.1)
        assert elbo == pytest.approx(fbm.euler_bridge_optimum(g, w, theta, "I", 0.01, 200, 0.1)[0], abs=1e-10)
        assert std.shape == (201,) and std[0] == 0.0
        assert std[-1] >= abs(w.sum()) * np.sqrt(0.01) * (1 - 1e-12)  # a shared control cannot remove the last step's noise
    exact = np.sqrt(1.0 - 1.0 / 2.01)
    errs = [abs(fbm.euler_bridge_optimal_law([0.0], [1.0], 0.0, "II", dt, int(round(2 / dt)), 0.1)[0][int(round(1 / dt))] - exact)
            for dt in (0.01, 0.002)]
    assert errs[1] < errs[0] < 0.005


def test_best_hurst_elbo_single_end_observation():
    """One observation y at t = 2: y = 0 reproduces the bridge's Riccati optimum; any y stays below the
    Euler prior's exact log N(y; 0, Var X_n + s^2)."""
    g = fbm.gamma_grid(5, gamma_max=20.0)
    setup = fbm.HurstSetup(jnp.asarray(g), "I", 6.0, 0.7, 0.01, 200, 0.1)
    w = np.asarray(fbm.optimal_omega(g, 0.3, 6.0, "I"))
    best0, logp0 = fbm.euler_bridge_optimum(g, w, 0.7, "I", 0.01, 200, 0.1)
    assert fbm.best_hurst_elbo(np.zeros((1, 1)), 0.3, 1.0, setup) == pytest.approx(best0, abs=1e-10)
    total_var = np.exp(-2.0 * logp0) / (2 * np.pi)
    for y in (0.5, 2.0):
        logp = logp0 - 0.5 * y**2 / total_var
        assert fbm.best_hurst_elbo(np.array([[y]]), 0.3, 1.0, setup) < logp
    two = fbm.best_hurst_elbo(np.array([[0.5], [2.0]]), 0.3, 1.0, setup)
    assert two == pytest.approx(sum(fbm.best_hurst_elbo(np.array([[y]]), 0.3, 1.0, setup) for y in (0.5, 2.0)), rel=1e-12)


def test_stationary_fou_covariance_repeated_lags():
    lags = np.array([[0.0, 0.4], [-0.4, 0.0]])
    np.testing.assert_allclose(fbm.stationary_fou_covariance(lags, 0.7, 1.0),
                               fbm.stationary_fou_covariance(np.array([0.0, 0.4, 0.4, 0.0]), 0.7, 1.0).reshape(2, 2), rtol=1e-14)


def test_stationary_fou_covariance_brownian_case():
    lags = np.array([0.0, 0.3, 1.7])
    np.testing.assert_allclose(fbm.stationary_fou_covariance(lags, 0.5, 2.0), np.exp(-2.0 * lags) / 4.0, rtol=1e-7)


# --------------------------------------------------------------------------------------------
# The paper's Riemann baseline, the variogram estimator, the Euler covariance, the fOU band
# --------------------------------------------------------------------------------------------


def _hat(x, g, k):
    """Piecewise-linear hat of node k on the grid g (zero outside [g_0, g_-1])."""
    e = np.zeros(g.size)
    e[k] = 1.0
    return np.interp(x, g, e, left=0.0, right=0.0)


@pytest.mark.parametrize("H", [0.3, 0.7])
def test_omega_riemann_is_the_hat_quadrature_of_the_laplace_representation(H):
    """omega_k by brute-force quadrature: int phi_k mu dg (H < 1/2); -int phi_k' g^{1-a} dg /
    (Gamma(a) Gamma(2-a)) after integrating by parts (H > 1/2), phi_k the hat functions of the
    grid."""
    g, a = np.asarray(GRID5), H + 0.5
    ref = []
    for k in range(g.size):
        pieces = zip(g[:-1], g[1:])
        if H < 0.5:
            f = lambda x: _hat(x, g, k) * x ** (-a)  # noqa: E731
            total = sum(_quad(f, lo, hi) for lo, hi in pieces)
            ref.append(total / (special.gamma(a) * special.gamma(1 - a)))
        else:
            slope = lambda lo, hi: (_hat(hi, g, k) - _hat(lo, g, k)) / (hi - lo)  # noqa: E731
            total = sum(slope(lo, hi) * _quad(lambda x: x ** (1 - a), lo, hi) for lo, hi in pieces)
            ref.append(-total / (special.gamma(a) * special.gamma(2 - a)))
    np.testing.assert_allclose(fbm.omega_riemann(g, H), ref, rtol=1e-9)


def test_omega_riemann_reproduces_the_brief_C3_row():
    """Brief C3 (official omega_riemann, type II, T = 1, K = 5, gamma_max = 20), 3 digits."""
    for H, ref in [(0.1, 0.364), (0.3, 0.197), (0.4, 0.436), (0.6, 0.027), (0.8, 0.019)]:
        s = fbm.omega_system(GRID5, H, 1.0, "II")
        eps = float(fbm.approximation_error(s, fbm.omega_riemann(GRID5, H)) / s.c)
        assert eps == pytest.approx(ref, abs=5e-4)


@pytest.mark.parametrize("H", [0.25, 0.75])
def test_variogram_hurst_on_exact_fbm(H):
    """Exact fBM (Cholesky), 20 independent groups of 50 paths: the mean estimate is within 4 s.e.
    of H and the s.e. is small; i.i.d. noise is removed by the 2 noise_var correction."""
    paths = np.asarray(fbm.sample_fbm_cholesky(jax.random.PRNGKey(5), H, 64, 1.0, 1000))[:, 1:]
    noise_std = 0.5 * (1.0 / 64) ** H  # half the std of one increment
    noisy = paths + noise_std * np.random.default_rng(0).normal(size=paths.shape)
    for data, nv in ((paths, 0.0), (noisy, noise_std**2)):
        est = np.array([fbm.variogram_hurst(g, (1, 2), nv) for g in data.reshape(20, 50, 64)])
        se = est.std(ddof=1) / np.sqrt(est.size)
        assert se < 0.01
        assert abs(est.mean() - H) < 4 * se
    assert fbm.variogram_hurst(noisy, (1, 2), 0.0) < H - 0.05  # uncorrected noise biases H down


def test_euler_prior_covariance_matches_the_unrolled_linear_map():
    """Brute force: X_i of the Euler scheme as an explicit linear map of (Y(0), dW_0..dW_{n-1})."""
    K, n, dt, theta = 5, 12, 0.02, 0.7
    w = np.asarray(fbm.optimal_omega(GRID5, 0.3, 1.0, "I"))
    P0 = np.linalg.cholesky(1.0 / (GRID5[:, None] + GRID5[None, :]))
    Z = np.zeros((K + 1, K + n))  # coefficients of (Y(0) whitened, dW / sqrt(dt))
    Z[1:, :K] = P0
    rows = [Z[0].copy()]
    for i in range(n):
        x, y = Z[0], Z[1:]
        dy = -GRID5[:, None] * y * dt
        dy[:, K + i] += np.sqrt(dt)
        x = x - theta * x * dt + w @ dy
        Z = np.vstack([x, y + dy])
        rows.append(Z[0].copy())
    R = np.array(rows)
    np.testing.assert_allclose(fbm.euler_prior_covariance(GRID5, w, theta, "I", dt, n), R @ R.T,
                               rtol=1e-10, atol=1e-14)


def _fou_time_domain(tau, H, theta):
    """Stationary fOU autocovariance for H > 1/2 from the time domain: H(2H-1)/(2 theta)
    int |tau + w|^{2H-2} e^{-theta |w|} dw (the double integral over the fBM kernel |u-v|^{2H-2});
    the singularity at w = -tau is carried by algebraic quadrature weights on both sides."""
    p = 2 * H - 2
    f = lambda w: np.exp(-theta * abs(w))  # noqa: E731
    far = lambda w: abs(tau + w) ** p * f(w)  # noqa: E731
    total = (_quad(f, -tau - 1.0, -tau, weight="alg", wvar=(0.0, p))
             + _quad(f, -tau, -tau + 1.0, weight="alg", wvar=(p, 0.0))
             + _quad(far, -tau + 1.0, np.inf) + _quad(far, -np.inf, -tau - 1.0))
    return H * (2 * H - 1) / (2 * theta) * total


@pytest.mark.parametrize("H, theta", [(0.6, 1.0), (0.8, 1.0), (0.8, 2.5)])
def test_stationary_fou_covariance_against_the_time_domain_integral(H, theta):
    lags = np.array([0.0, 0.3, 1.0, 2.5])
    ref = [_fou_time_domain(t, H, theta) for t in lags]
    np.testing.assert_allclose(fbm.stationary_fou_covariance(lags, H, theta), ref, rtol=1e-6)


@pytest.mark.parametrize("H, theta", [(0.2, 1.0), (0.3, 2.0), (0.7, 0.5)])
def test_stationary_fou_variance_closed_form(H, theta):
    """Var of the stationary fOU driven by unit fBM: H Gamma(2H) theta^{-2H}, every H in (0, 1)."""
    ref = H * special.gamma(2 * H) * theta ** (-2 * H)
    got = fbm.stationary_fou_covariance(np.array([0.0]), H, theta)[0]
    assert got == pytest.approx(ref, rel=1e-7)


# --------------------------------------------------------------------------------------------
# Training loops against exact optima (tiny sizes)
# --------------------------------------------------------------------------------------------


def test_train_bridges_reaches_the_riccati_optimum():
    """Two panels in one vmapped loop, short horizon: the trained MC-ELBO is within 0.1 nats (plus
    3 s.e.) of the exact best shared-control Euler ELBO and not above it; the untrained control
    (u = 0) is far below (it must learn)."""
    g = fbm.gamma_grid(3, gamma_max=10.0)
    panels = [(0.3, 0.0), (0.7, 1.0)]
    omegas = jnp.stack([fbm.optimal_omega(g, H, 2.0, "I") for H, _ in panels])
    setup = fbm.BridgeSetup(jnp.asarray(g), omegas[0], 0.0, "I", 0.04, 25, 0.2)
    params, losses = fbm.train_bridges(jax.random.PRNGKey(0), setup, omegas, [0.0, 1.0], [16, 16],
                                       300, 32, 2e-2)
    assert losses.shape == (2, 300)
    for p, (H, theta) in enumerate(panels):
        panel = setup._replace(omega=omegas[p], theta=theta)
        best, _ = fbm.euler_bridge_optimum(g, np.asarray(omegas[p]), theta, "I", 0.04, 25, 0.2)
        _, elbo = fbm.bridge_posterior(jax.tree_util.tree_map(lambda a: a[p], params),
                                       jax.random.PRNGKey(1), panel, 4096)
        m, se = float(np.mean(elbo)), float(np.std(elbo) / np.sqrt(elbo.size))
        assert best - 0.1 - 3 * se < m < best + 3 * se
        assert -float(losses[p, 0]) < best - 0.5


def test_elbo_optimal_hurst_matches_a_grid_search():
    """The Nelder-Mead optimum of best_hurst_elbo is at least the best value on an (H, sigma)
    grid."""
    g = fbm.gamma_grid(3, gamma_max=10.0)
    setup = fbm.HurstSetup(jnp.asarray(g), "I", 1.0, 0.5, 0.02, 5, 0.1)
    data = np.asarray(fbm.sample_fou_observations(jax.random.PRNGKey(2), 0.3, 0.5, 1.0, 0.02, 25, 5,
                                                  16, 0.1))
    H_opt, s_opt = fbm.elbo_optimal_hurst(data, setup)
    best = fbm.best_hurst_elbo(data, H_opt, s_opt, setup)
    grid = [(h, s) for h in np.linspace(0.1, 0.9, 9) for s in (0.7, 1.0, 1.4)]
    values = [fbm.best_hurst_elbo(data, h, s, setup) for h, s in grid]
    assert best >= max(values) - 1e-6
    h_grid = grid[int(np.argmax(values))][0]
    assert abs(H_opt - h_grid) <= 0.1 + 1e-9


def test_train_hurst_runs_learns_toward_the_elbo_optimum():
    """Two data sets (H = 0.2, 0.8) in one vmapped loop: the learned H orders them as their exact
    ELBO-optimal H* do (at this coarse dt both H* may sit above 1/2, the Euler shared-control bias of
    the notebook's Section 4), both moved from the start 0.5, and the runs' losses fall."""
    g = fbm.gamma_grid(3, gamma_max=10.0)
    setup = fbm.HurstSetup(jnp.asarray(g), "I", 1.0, 0.5, 0.02, 5, 0.1)
    datas = np.stack([np.asarray(fbm.sample_fou_observations(jax.random.PRNGKey(i), H, 0.5, 1.0,
                                                             0.02, 25, 5, 32, 0.1))
                      for i, H in enumerate((0.2, 0.8))])
    params, losses = fbm.train_hurst_runs(jax.random.PRNGKey(3), datas, setup, [8], 150, 8, 3e-2)
    learned = np.asarray(fbm.hurst_of(params))
    star = [fbm.elbo_optimal_hurst(d, setup)[0] for d in datas]
    assert star[1] > star[0] and learned[1] > learned[0] + 0.02
    assert np.all(np.abs(learned - 0.5) > 0.005)
    assert np.all(np.asarray(losses)[:, -15:].mean(1) < np.asarray(losses)[:, :15].mean(1))


@pytest.mark.parametrize("kind", ["I", "II"])
def test_numpy_twin_of_the_omega_system(kind):
    """omega_system_np / solve_gram_np equal the JAX closed forms and solver: A, b, c to 1e-10
    relative, eps_rel to 1e-10 absolute (1e-6 relative at K = 13, where A is singular to float64
    rounding), up to K = 13 on a ratio-4 grid (gamma T up to 4096)."""
    for K in (1, 5, 13):
        g = fbm.gamma_grid(K, ratio=4.0)
        for H in (0.1, 0.7, 0.95):
            ref, got = fbm.omega_system(g, H, 1.0, kind), fbm.omega_system_np(g, H, 1.0, kind)
            for x, y in zip(ref, got):
                np.testing.assert_allclose(y, np.asarray(x), rtol=1e-10)
            eps = 1.0 - got.b @ fbm.solve_gram_np(got.A, got.b) / got.c
            tol = 1e-10 if K < 13 else max(1e-10, 1e-6 * eps)  # K = 13: A singular to rounding
            assert eps == pytest.approx(float(fbm.optimal_relative_error(ref)), abs=tol)


def test_bad_input_raises():
    with pytest.raises(ValueError):
        fbm.omega_system(GRID5, 1.2, 1.0, "I")
    with pytest.raises(ValueError):
        fbm.omega_system(GRID5, 0.3, 1.0, "III")
    with pytest.raises(ValueError):
        fbm.gamma_grid(5)
    with pytest.raises(ValueError):
        fbm.check_euler_step(GRID5, 0.05)
    with pytest.raises(ValueError):
        fbm.omega_riemann(GRID5, 0.5)
    with pytest.raises(ValueError):
        fbm.variogram_hurst(np.zeros((3, 4)), (1,))
