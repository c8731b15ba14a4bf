"""Tests for paperlib.experiments.ma against independent truth: quadrature of the Sign-RIP
expectation, numpy loops on truncated operators, brute-force thresholds and parameter counts."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import integrate, stats  # noqa: E402
from types import SimpleNamespace  # noqa: E402

from paperlib import matrix_sensing as ms  # noqa: E402
from paperlib.experiments import ma as ex  # noqa: E402


@pytest.mark.parametrize("p, nu, size", [(0.0, 1.0, 1.0), (0.3, 1.0, 1.0), (0.3, 10.0, 0.5),
                                         (1.0, 2.0, 1.0)])
def test_phi_matches_quadrature(p, nu, size):
    """E[sign(g − s) g]/‖X‖ for g ~ N(0, ‖X‖²), s = 0 w.p. 1 − p and N(0, ν²) w.p. p: the inner mean
    over g is 2‖X‖² pdf(s; ‖X‖) (integration by parts), the outer one over s by quadrature."""
    inner = lambda s: 2 * size ** 2 * stats.norm.pdf(s, scale=size)  # noqa: E731
    dirty = integrate.quad(lambda s: inner(s) * stats.norm.pdf(s, scale=nu), -np.inf, np.inf)[0]
    expected = ((1 - p) * inner(0.0) + p * dirty) / size
    assert ex.phi_closed_form(p, nu, size) == pytest.approx(expected, abs=1e-9)
    g = np.linspace(-12 * size, 12 * size, 400001)  # the inner identity itself, on a grid
    assert np.trapezoid(np.sign(g - 0.3) * g * stats.norm.pdf(g, scale=size), g) == pytest.approx(
        inner(0.3), abs=1e-4)  # the jump of sign on the grid costs ~1e-5


def test_signrip_terms_average_to_phi():
    cases = [(0.0, 1.0, 1.0), (0.5, 3.0, 1.0)]
    terms = ex.signrip_terms(jax.random.PRNGKey(0), 20000, 4, cases)
    se = terms.std(0, ddof=1) / np.sqrt(terms.shape[0])
    assert np.all(np.abs(terms.mean(0) - ex.phi_closed_form(*np.array(cases).T)) < 4 * se)


def test_instance_thresholds_by_brute_force():
    grid = [10, 20, 30, 40]
    rel = np.array([[0.5, 1e-9, 0.5, 1e-9],   # fails at 30: threshold 40
                    [1e-9, 1e-9, 1e-9, 1e-9],  # 10
                    [0.5, 0.5, 0.5, 0.5]])    # never: censored at 50
    np.testing.assert_array_equal(ex.instance_thresholds(rel, grid, 1e-6, 50.0), [40, 10, 50])
    np.testing.assert_array_equal(ex.instance_thresholds(rel[None], grid, 1.0, 50.0),
                                  [[10, 10, 10]])


def test_psd_parameters_count_a_full_psd_matrix_and_rank_one():
    for d in (3, 7, 20):
        assert ex.psd_parameters(d, d) == d * (d + 1) // 2
        assert ex.psd_parameters(d, 1) == d


def test_sample_sweep_matches_subgm_on_truncated_operators():
    key = jax.random.PRNGKey(2)
    rel = ex.sample_sweep(key, d=4, r=1, cond=1.0, ranks=[1, 2], m_grid=[20, 40], instances=2,
                          p_out=0.2, outlier_scale=5.0, alpha=1e-2, eta0=0.1, rho=0.98, steps=40)
    inst = ex.make_instance(jax.random.fold_in(key, 1), 4, 1, 40, 1.0, 0.2, 5.0, 0.0, 0.0)
    y = np.asarray(inst.y0 + inst.s_out)[:20]
    A = np.asarray(inst.op.A)[:20].reshape(20, -1)
    U = np.asarray(ms.small_init(inst.key, 4, 2, 1e-2, 2))
    for t in range(40):
        Q = (A.T @ (np.sign(A @ (U @ U.T).ravel() - y) / 20)).reshape(4, 4)
        U = U - 0.1 * 0.98 ** t * (Q + Q.T) @ U
    M = np.asarray(inst.truth.M)
    assert rel[1, 1, 0] == pytest.approx(np.linalg.norm(U @ U.T - M) / np.linalg.norm(M), rel=1e-9)


# the shapes below (d = 4, m = 40, r = 1, 20 steps, four or two runs) are shared by the tests of
# this file, so that each jitted loop compiles once


def test_dense_noise_loss_at_the_truth_is_the_mean_absolute_noise():
    inst = ex.make_instance(jax.random.PRNGKey(4), 4, 1, 40, 1.0, 0.0, 1.0, 0.0, 0.0)
    out = ex.dense_noise(inst, [0.5, 1.0], 0.5, 1e-2, 0.1, 0.98, 20, 0.01, 0.99)
    noise = [np.asarray(ms.gaussian_noise(jax.random.fold_in(inst.key, 50 + j), 40, p, 0.5))
             for j, p in enumerate([0.5, 1.0])]
    np.testing.assert_allclose(out["f_star"], [np.mean(np.abs(s)) for s in noise], rtol=1e-10)
    U = np.asarray(inst.truth.U * jnp.sqrt(inst.truth.s))
    assert ex.l1_loss(inst.op, inst.y0, jnp.asarray(U)) < 1e-12


def test_l2_runs_match_a_numpy_least_squares_loop():
    inst = ex.make_instance(jax.random.PRNGKey(5), 4, 1, 40, 1.0, 0.2, 3.0, 0.0, 0.0)
    y = np.asarray(inst.y0 + inst.s_out)
    out = ex.l2_runs(inst, jnp.asarray(y) * jnp.ones((4, 1)), 1, 0.1, 0.2, 20)  # 4 equal runs
    A, M = np.asarray(inst.op.A).reshape(40, -1), np.asarray(inst.truth.M)
    U = np.asarray(ms.small_init(inst.key, 4, 1, 0.1))
    for _ in range(20):
        E = (A.T @ ((A @ (U @ U.T).ravel() - y) / 40)).reshape(4, 4)
        U = U - 0.2 * 0.5 * (E + E.T) @ U
    np.testing.assert_allclose(out[:, -1], np.linalg.norm(U @ U.T - M), rtol=1e-9)


def test_growth_budget_is_the_log_ratio_over_the_sign_rip_rate():
    """exp(2φσ_r B/‖M*‖) = 1/α with φ = √(2/π)(1 − p)."""
    B = ex.growth_budget(1e-3, 1.5, 0.2, 0.5)
    phi = np.sqrt(2 / np.pi) * 0.8
    assert np.exp(2 * phi * 0.5 * B / 1.5) == pytest.approx(1e3, rel=1e-12)
    M = np.diag([1.0, 0.5, 0.0])  # sigma_r = 0.5 for r = 2, cond = 2; ||M||_F = sqrt(1.25)
    inst = [SimpleNamespace(truth=SimpleNamespace(M=M))]
    cfg = SimpleNamespace(alpha=1e-3, eta0=0.1, rho=0.99, r=2, cond=2.0, fractions=[0.0, 0.2],
                          p_out=0.1)
    want = ex.growth_budget(1e-3, np.sqrt(1.25), 0.2, 0.5)
    assert ex.budget_note(inst, cfg) == (f"‖M*‖_F = {np.sqrt(1.25):.4f}; step budget 10.0; growth "
                                         f"needs ≈ {want:.1f} at p=0.2")


def test_threshold_summary_by_brute_force():
    grid, ranks = [10, 20, 30], [1, 2, 4]
    rel = np.array([[[1e-7, 1e-7, 1e-7], [0.5, 1e-3, 1e-3], [0.5, 0.5, 1e-3]],
                    [[0.5, 1e-7, 1e-7], [0.5, 0.5, 1e-3], [0.5, 0.5, 0.5]]])
    th = ex.threshold_summary(rel, grid, ranks, 6, 1e-3)  # tol 1e-2, censoring at 40
    assert (th.tol, th.beyond) == (pytest.approx(1e-2), 40)
    np.testing.assert_array_equal(th.m_c, [[10, 20, 30], [20, 30, 40]])
    np.testing.assert_array_equal(th.m_exact, [[10, 40, 40], [20, 40, 40]])
    np.testing.assert_allclose(th.exact_any, [5 / 6, 0, 0])
    np.testing.assert_array_equal(th.diff, [[10, 20], [10, 20]])
    np.testing.assert_allclose(th.ratio, [[2, 3], [1.5, 2]])
    np.testing.assert_allclose(th.params, [11 / 6, 18 / 6])  # 6·2 − 1, 6·4 − 6 over 6


def test_outlier_noise_and_dense_runs_match_their_single_run_protocols():
    key = jax.random.PRNGKey(7)
    inst = ex.outlier_instances(key, 2, 4, 1, 40, 1.0, 0.2, 5.0)
    ref = ex.make_instance(jax.random.fold_in(key, 1), 4, 1, 40, 1.0, 0.2, 5.0, 0.0, 0.0)
    np.testing.assert_array_equal(inst[1].s_out, ref.s_out)
    runs = ex.outlier_runs(inst, [1, 4], 1e-2, [1.0, 0.1, 1e-2], 0.3, 0.95, 200)
    y = jnp.broadcast_to(ref.y0 + ref.s_out, (5, 40))
    alone = ex.subgm_runs(ref, y, [1, 4, 4, 4, 4], [1e-2, 1e-2, 1.0, 0.1, 1e-2], 0.3, 0.95, 200)
    np.testing.assert_allclose(runs.rank_runs[1], alone[:2], rtol=1e-12)
    np.testing.assert_allclose(runs.large[1], alone[2], rtol=1e-12)
    np.testing.assert_allclose(runs.floors[1], alone[2:, -1], rtol=1e-12)
    slope = np.diff(np.log(alone[3:, -1]))[0] / np.diff(np.log([0.1, 1e-2]))[0]  # two points
    assert runs.floor_slopes[1] == pytest.approx(slope, rel=1e-9)
    norm = float(np.linalg.norm(ref.truth.M))
    assert runs.t_grow[1, 0] == np.flatnonzero(alone[0] <= 0.1 * norm)[0]
    nr = ex.noise_runs(inst, [0.0, 0.3], 1.0, 1, 1e-2, 0.3, 0.95, 200, 0.2, 20)
    assert nr.l1.shape == (2, 4, 201) and nr.l2.shape == (2, 4, 21)
    np.testing.assert_array_equal(nr.frac_l1[1, 1], nr.l1[1, 2:, -1])  # Gaussian block second
    np.testing.assert_array_equal(nr.l1[:, 0], nr.l1[:, 2])  # p = 0: clean data in both models
    assert np.all(nr.frac_l2[:, 0, 1] > 10 * nr.frac_l1[:, 0, 1])  # SubGM recovers, l2 GD does not
    dn = ex.dense_runs(inst, [0.5, 1.0], 1.0, 1e-2, 0.3, 0.97, 20, 0.01, 0.99)
    single = ex.dense_noise(inst[1], [0.5, 1.0], 1.0, 1e-2, 0.3, 0.97, 20, 0.01, 0.99)
    np.testing.assert_array_equal(dn["f_star"][1], single["f_star"])
    np.testing.assert_array_equal(dn["below"], dn["f_local"] < dn["f_star"])


def test_figures_and_text_draw():
    cfg = SimpleNamespace(steps=50, l2_steps=20, ranks=[1, 2, 4], alpha=1e-3, d=4, r=1, m=40,
                          p_out=0.2, rho=0.97, floor_alphas=[1.0, 1e-2, 1e-3], seeds=2,
                          fractions=[0.0, 0.4], nu=1.0, dense_fractions=[0.5, 0.9],
                          m_grid=[10, 20, 30], sweep_seeds=2)
    t = np.arange(51.0)
    curves = np.broadcast_to(np.exp(-0.1 * t), (2, 3, 51))
    runs = ex.OutlierRuns(curves, curves[:, 0], np.full((2, 3), 1e-3), np.full(2, 0.1),
                          np.full((2, 3), 5), np.ones(2))
    nr = ex.NoiseRuns(curves[:, :2].repeat(2, 1), np.ones((2, 4, 21)), np.full((2, 2, 2), 1e-9),
                      np.ones((2, 2, 2)))
    dn = {"err": np.full((2, 2), 1e-9), "err_local": np.full((2, 2), 1e-2),
          "below": np.array([[False, True], [False, False]])}
    rel = np.full((2, 3, 3), 1e-7)
    th = ex.threshold_summary(rel, cfg.m_grid, cfg.ranks, cfg.d, cfg.alpha)
    for fig in (ex.overparam_figure(runs, cfg), ex.noise_figure(nr, cfg), ex.dense_figure(dn, cfg),
                ex.samples_figure(rel, th, cfg)):
        assert fig.axes
        plt.close(fig)
    assert "10 ± 0" in ex.samples_markdown(th, cfg)
    assert ex.threshold_report(th, cfg.ranks).count("\n") == 3
