"""Tests for paperlib.experiments.daems (the protocols of the Daems et al. 2024 notebook) against
closed
forms: the quadrature kernels at H = 1/2 and on the diagonal, the Bonferroni threshold, the s.e. of
second moments and stds by Monte Carlo, the shrinkage slope, the clip baselines."""

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import special  # noqa: E402

from paperlib import fbm  # noqa: E402
from paperlib.experiments import daems as ex  # noqa: E402


@pytest.mark.parametrize("t, g", [(0.4, 0.3), (1.5, 7.0)])
def test_kernels_at_brownian_hurst(t, g):
    """H = 1/2: B = W on [0, t], so E[W(t) Y_hat(t)] = int_0^t e^{-g(t-s)} ds = (1 - e^{-g t})/g for
    both types (type I's past part vanishes: (t+u)^0 - u^0 = 0)."""
    assert ex.kernel_b(t, g, 0.5, "II") == pytest.approx(-np.expm1(-g * t) / g, rel=1e-10)
    assert ex.kernel_b(t, g, 0.5, "I") == pytest.approx(-np.expm1(-g * t) / g, rel=1e-10)


@pytest.mark.parametrize("H", [0.3, 0.7])
def test_kernel_var_closed_forms(H):
    t = 1.3
    assert ex.kernel_var(t, H, "I") == pytest.approx(
        float(fbm.variance_factor(H)) * t ** (2 * H), rel=1e-8
    )
    ref_II = t ** (2 * H) / (2 * H * special.gamma(H + 0.5) ** 2)
    assert ex.kernel_var(t, H, "II") == pytest.approx(ref_II, rel=1e-10)


def test_kernel_a_closed_forms():
    t, gi, gj = 0.8, 0.5, 4.0
    s = gi + gj
    assert ex.kernel_a(t, gi, gj, "II") == pytest.approx(-np.expm1(-s * t) / s, rel=1e-10)
    ref_I = (
        2 - np.exp(-gi * t) - np.exp(-gj * t)
    ) / s  # E[(Y_i(t) - Y_i(0))(Y_j(t) - Y_j(0))], stationary
    assert ex.kernel_a(t, gi, gj, "I") == pytest.approx(ref_I, rel=1e-10)


def test_closed_form_error_is_small():
    g = np.array([0.3, 9.0])
    assert ex.closed_form_error(g, [(0.3, 1.5)], "II") < 1e-8
    assert ex.closed_form_error(g, [(0.7, 1.5)], "I") < 1e-6


def test_printed_precision_deviation():
    assert ex.printed_precision_deviation(
        [0.3644, 0.0271], [0.364, 0.027], [3, 3]
    ) == pytest.approx(0.8)
    assert ex.printed_precision_deviation([0.3656], [0.364], [3]) > 1


def test_bonferroni_z():
    assert ex.bonferroni_z(1, 0.05) == pytest.approx(1.959964, rel=1e-6)
    assert ex.bonferroni_z(100, 0.01) == pytest.approx(special.ndtri(1 - 0.01 / 200), rel=1e-12)


def test_second_moment_se_matches_the_spread_over_repeats():
    """The Gaussian s.e. sqrt((C_ij^2 + C_ii C_jj)/N) equals the spread of the estimate over
    repeats."""
    rng = np.random.default_rng(0)
    C = np.array([[1.0, 0.6], [0.6, 2.0]])
    L = np.linalg.cholesky(C)
    ests = []
    for _ in range(400):
        emp, ref, se = ex.second_moment_z(rng.normal(size=(200, 2)) @ L.T, C)
        ests.append(emp)
    np.testing.assert_allclose(ref, [1.0, 0.6, 2.0])
    np.testing.assert_allclose(np.std(ests, axis=0, ddof=1), se, rtol=0.12)


def test_std_and_se_matches_the_spread_over_repeats():
    rng = np.random.default_rng(1)
    stds, ses = [], []
    for _ in range(400):
        s, se = ex.std_and_se(rng.normal(scale=[1.0, 3.0], size=(500, 2)))
        stds.append(s)
        ses.append(se)
    np.testing.assert_allclose(np.mean(stds, axis=0), [1.0, 3.0], rtol=0.01)
    np.testing.assert_allclose(np.std(stds, axis=0, ddof=1), np.mean(ses, axis=0), rtol=0.12)


def test_shrinkage_slopes():
    true_h = [0.25, 0.75]
    assert ex.shrinkage_slopes(true_h, np.array([[0.25], [0.75]])) == pytest.approx([1.0])
    np.testing.assert_allclose(
        ex.shrinkage_slopes(true_h, np.array([[0.45, 0.5], [0.55, 0.5]])), [0.2, 0.0]
    )


def test_clip_baselines():
    train = np.zeros((4, 3, 2))
    test = np.array([[[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]] * 2)
    base = ex.clip_baselines(train, test)
    assert base["training mean frame"][0] == pytest.approx(2 / 6)
    assert base["clip's own time average"][0] == pytest.approx(
        np.mean((test[0] - test[0].mean(0)) ** 2)
    )


def test_increment_autocov_error_small_for_exact_fbm():
    paths = np.asarray(fbm.sample_fbm_cholesky(jax.random.PRNGKey(0), 0.7, 128, 1.0, 4000))
    assert ex.increment_autocov_error(paths, 0.7, 1.0) < 0.05
    assert ex.increment_autocov_error(paths, 0.7, 2.0) > 0.4  # a wrong scale is seen


def test_timed_returns_the_result():
    sec, res = ex.timed(lambda: np.arange(3), repeats=2)
    assert sec >= 0 and list(res) == [0, 1, 2]


def test_scaled_eigen_ratio():
    assert ex.scaled_eigen_ratio(np.array([[4.0, 0.0], [0.0, 9.0]])) == pytest.approx(1.0)
    assert ex.scaled_eigen_ratio(np.array([[1.0, 0.5], [0.5, 1.0]])) == pytest.approx(0.5 / 1.5)
