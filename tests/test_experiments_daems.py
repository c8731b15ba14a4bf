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


# ---------------------------------------------------------------------------------------------
# Notebook protocols (settings, tables, sweeps, plots)
# ---------------------------------------------------------------------------------------------

GRID5 = fbm.gamma_grid(5, gamma_max=20.0)
SMOKE = dict(bridge_panels=[[0.7, 0.0]], bridge_steps=600, bridge_batch=32, bridge_width=32,
             eval_paths=4096, hurst_values=[0.3, 0.75], hurst_seeds=2, hurst_steps=150,
             hurst_batch=16, hurst_obs=8, mc_paths=4000, speed_lengths=[256],
             cholesky_max_length=1024, timing_K=[5], timing_widths=[32], video_sequences=64,
             video_frames=5, video_canvas=20, video_steps=100, video_seeds=1, video_latents=2,
             video_width=16, video_features=8, video_batch=8)


@pytest.mark.parametrize("bad", [dict(bridge_panels=[[1.2, 0.0]]), dict(hurst_values=[0.5, 0.7]),
                                 dict(mc_paths=10), dict(speed_lengths=[100]),
                                 dict(video_batch=128)])
def test_validate(bad):
    from types import SimpleNamespace

    ex.validate(SimpleNamespace(**SMOKE))
    with pytest.raises(ValueError):
        ex.validate(SimpleNamespace(**{**SMOKE, **bad}))


def test_markdown_table():
    assert ex.markdown_table(["a", "b"], [[1, "x"]]) == "| a | b |\n|---|---|\n| 1 | x |"


def test_c3_rows_and_fixture_deviation_against_the_brief():
    """The brief's C3 rows (type II, T = 1, K = 5, gamma_max = 20) and its omega fixture."""
    eps, riem = ex.c3_rows(GRID5, [0.1, 0.3, 0.4, 0.6, 0.8])
    np.testing.assert_allclose(eps, [0.229, 7.8e-3, 7.2e-4, 9.5e-5, 1.0e-4], rtol=0.05)
    assert ex.printed_precision_deviation(riem, [0.364, 0.197, 0.436, 0.027, 0.019], [3] * 5) <= 1
    fixture = [("II", 1.0, 0.7, [-0.935, 3.268, -1.771, 0.116, -0.315], 3)]
    assert ex.omega_fixture_deviation(GRID5, fixture) <= 1.0
    assert ex.omega_fixture_deviation(GRID5, [fixture[0][:3] + ([0.0] * 5, 3)]) > 1.0


def test_error_vs_K_and_table_ratios():
    """Nested grids: eps_rel non-increasing over odd K; the brief's C4 entries at K = 1, 5."""
    eps, riem, resolution = ex.error_vs_K([1, 3, 5], (0.3, 0.7))
    assert all(np.all(np.diff(v, axis=1) <= 1e-12) for v in eps.values())
    assert np.all(np.isnan(riem["I"][:, 0])) and set(resolution) == {3, 5}
    C4 = {("II", 0.3): [.031, .029, .017, 8.4e-3], ("I", 0.3): [.12, .092, .046, .019]}
    ratios = ex.table_ratios(eps, [1, 3, 5], (0.3, 0.7), C4)
    assert len(ratios) == 6 and np.all(np.abs(np.array(ratios) - 1) < 0.1)


def test_exact_covariance_diagonals():
    ts = np.array([0.5, 1.0])
    for H in (0.3, 0.7):
        np.testing.assert_allclose(np.diag(ex.exact_covariance(ts, H, "I")),
                                   float(fbm.variance_factor(H)) * ts ** (2 * H), rtol=1e-12)
        np.testing.assert_allclose(np.diag(ex.exact_covariance(ts, H, "II")),
                                   ts ** (2 * H) / (2 * H * special.gamma(H + 0.5) ** 2), rtol=1e-12)


def test_covariance_deviations_and_mc_check():
    """The brief's C5 deviations (K = 5) to their printed digits; Monte-Carlo z-scores of both
    samplers against their exact covariances stay within a Bonferroni bound."""
    ts = np.linspace(0.1, 1.0, 10)
    cov_ma, dev = ex.covariance_deviations(ts, [(5, 20.0)])
    assert ex.printed_precision_deviation([dev[5, "I", 0.3], dev[5, "II", 0.7]],
                                          [0.016, 0.0024], [3, 4]) <= 1.0
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    z, bias = ex.mafbm_mc_check(keys, GRID5, cov_ma, 1000)
    for emp, ref, se in z.values():
        assert np.max(np.abs(emp - ref) / se) < ex.bonferroni_z(len(emp) * 4)
    assert set(bias) == {"I", "II"}


def test_anchor_second_moments():
    out = ex.anchor_second_moments(jax.random.PRNGKey(0), 0, n=8, num_paths=2000)
    for emp, ref, se in out.values():
        assert len(emp) == 36 and np.max(np.abs(emp - ref) / se) < ex.bonferroni_z(72)


def test_hurst_gradient_check_agrees_with_central_differences():
    rows, dev = ex.hurst_gradient_check(GRID5, (("II", 1.0, {0.3: -11.7054}),))
    assert len(rows) == 1 and max(dev) < 1e-6
    assert float(rows[0][3]) == pytest.approx(-11.7054, abs=1e-4)  # the brief's value


def test_bridge_references_against_the_brief():
    """Brief C8 (log p) and C9 (conditioned std at t = 0.5, 1, 1.5) for H = 0.3, 0.7; the Euler gap
    shrinks as dt falls."""
    refs = ex.bridge_references(GRID5, dts=(0.01, 0.005))
    np.testing.assert_allclose([r[1] for r in refs], [-1.2822, -1.2586], atol=1e-4)
    np.testing.assert_allclose(np.concatenate([r[3] for r in refs]),
                               [0.836, 0.915, 0.838, 0.439, 0.545, 0.445], atol=5e-4)
    assert all(gp[1] < gp[0] for _, _, gp, _ in refs)


def test_girsanov_rows_and_euler_accumulator():
    """Type II: the grid KL increases with n towards 1/2 c^2 T; the Euler accumulator equals it."""
    rows = ex.girsanov_kl_rows(GRID5, 1.3, 1.0, ns=(10, 200))
    assert rows[0][2] < rows[1][2] == pytest.approx(0.5 * 1.3**2, rel=0.01)
    assert ex.euler_kl_accumulator(jax.random.PRNGKey(0), GRID5, 1.3, 1.0) == pytest.approx(
        0.5 * 1.3**2, rel=1e-12)


def test_sampler_speed_rows():
    rows = ex.sampler_speed_rows(iter(jax.random.split(jax.random.PRNGKey(0), 2)), GRID5, [16], 16,
                                 num_paths=100)
    assert [r[1] for r in rows][-1] == "Cholesky (ours)" and len(rows) == 4
    assert all(r[2] > 0 and np.isfinite(r[3]) for r in rows)


def test_training_ratio_and_tables():
    losses = np.array([[4.0, 3.0, 2.0, 1.0], [2.0, 2.0, 2.0, 3.0]])
    assert ex.training_ratio(losses, 1) == pytest.approx(1.5)
    assert np.isnan(ex.training_ratio(np.array([[1.0, np.nan]]), 1))
    assert ex.mean_se([1.0, 3.0]) == "2.000 ± 1.000"
    video = {"BM": dict(losses=losses, mse=np.array([0.1]), mse_se=np.array([0.01]), H=[0.5])}
    assert ex.video_table(video, {"mean": (0.2, 0.02)}, 1).count("\n") == 3
    hurst = dict(learned=np.array([[0.4, 0.5], [0.6, 0.5]]), variogram=np.array([[0.3, 0.3],
                                                                                [0.7, 0.7]]))
    slopes = {k: ex.shrinkage_slopes([0.3, 0.7], v) for k, v in hurst.items()}
    assert "variogram 1.000 ± 0.000" in ex.hurst_table(hurst, np.array([0.3, 0.7]), [np.nan] * 2,
                                                       slopes, 2)


def test_video_clips_and_plots_smoke():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train, test = ex.video_clips(3, 2, 4, 20, 0)
    assert train.shape == (3, 4, 400) and test.shape == (2, 4, 400)
    losses = np.ones((1, 20))
    video = {n: dict(recon=test, losses=losses, H=[0.5]) for n in ("BM", "MA-fBM")}
    eps = {k: np.full((1, 2), 0.1) for k in ("I", "II")}
    ts = np.linspace(0.1, 1.0, 3)
    cov = {(5, k, H): ex.exact_covariance(ts, H, k) for k in ("I", "II") for H in (0.3, 0.7)}
    bridge = {(0.7, 0.0): {k: np.ones(201) for k in ("std_paper", "std_ma", "std_opt", "std_emp")}
              | dict(xs=np.zeros((2, 201)))}
    hurst = dict(learned=np.full((2, 2), 0.5), variogram=np.full((2, 2), 0.5),
                 losses=np.ones((4, 30)))
    figs = [ex.plot_error_vs_K(eps, eps, [3, 5], (0.3,), {3: 1e-3, 5: 1e-15})[0],
            ex.plot_covariance_error(ts, cov), ex.plot_bridge(bridge, 10),
            ex.plot_hurst(hurst, np.array([0.3, 0.7]), [np.nan] * 2, 2),
            ex.plot_video(test, video, 20, 2)]
    assert all(isinstance(f, plt.Figure) for f in figs)
    plt.close("all")


def test_result_tables():
    ts = np.array([0.5, 1.0])
    cov = {(5, "I", 0.3): ex.exact_covariance(ts, 0.3, "I")}
    assert "1.0000 / 1.0000" not in ex.covariance_table(ts, cov, {(5, "I", 0.3): 0.0})
    r = dict(elbo=-1.0, se=0.1, best=-0.9, logp=-0.8, std_emp=np.ones(201), std_se=np.ones(201),
             std_ma=np.ones(201), std_opt=np.ones(201), std_paper=np.ones(201))
    assert ex.bridge_table({(0.3, 0.0): r}).count("\n") == 2
    text = ex.speed_tables([(16, "x", 10.0, 0.1)], [(32, 0, 0.01)])
    assert "| 32 | 0 (BM) | 10.0 |" in text and "| 16 | x | 10 | 0.100 |" in text


def test_b_fixture_values_equal_the_brief_c2():
    """One-speed b_1 against the brief's C2 values (independent float64 re-derivation)."""
    np.testing.assert_allclose(ex.b_fixture_values(), [1.296022, 0.266989, 1.153611, 0.407938],
                               atol=5e-7)


def test_report_helpers():
    assert "type I 2.50" in ex.mc_bias_note(3.5, 10, {"I": 2.5, "II": 1.0})
    hurst = {"learned": np.array([[0.3, 0.4], [0.7, 0.6]]), "variogram": np.array([[0.25], [0.75]])}
    H_star, slopes = ex.hurst_summary(hurst, np.array([0.25, 0.75]), None, 2, False)
    assert np.all(np.isnan(H_star)) and slopes["variogram"] == pytest.approx([1.0])
    np.testing.assert_allclose(slopes["learned"], [0.8, 0.4])  # sum (h - 1/2)(H - 1/2) / sum (H - 1/2)^2
    assert ex.c3_table([0.1], [0.2], [0.3]).count("\n") == 3
    assert "| I | 10 | 1.00000 |" in ex.kl_table([("I", 10, 0.5 * 1.3**2)], 1.3, 1.0)
    assert "-1.2822" in ex.reference_table([(0.3, -1.28221, [0.1, 0.05], None)])
    assert ex.gradient_table([["I", 6.0, 0.3, "1", "1", 1.0]]).count("\n") == 2
    clips = np.zeros((4, 5, 400))
    video = {"BM": dict(losses=np.ones((1, 10)), mse=np.ones(1), mse_se=np.ones(1), H=[0.5])}
    assert "4 training / 4 test clips, 5 frames of 20²" in ex.video_report(video, clips, clips, 10, 1, 2)
