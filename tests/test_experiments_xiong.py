"""Tests for paperlib.experiments.xiong against independent truth: numpy GD loops on tiny problems
and synthetic error curves with known slopes and rates."""

import jax

jax.config.update("jax_enable_x64", True)

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from types import SimpleNamespace  # noqa: E402

from paperlib import matrix_sensing as ms  # noqa: E402
from paperlib.experiments import xiong as ex  # noqa: E402


def test_sublinear_summary_recovers_known_slopes():
    """err = (a + 2ηt)^-2 has err^{-1/2} slope 2η; the bound ratio is err/(j⁴/(n−r)) by design."""
    t = np.arange(4001.0)
    eta = 0.2
    err = np.stack([(5.0 + 2 * eta * t) ** -2.0, 2 * (3.0 + 2 * eta * t) ** -2.0])
    j2 = np.sqrt(err * 3 / 2.0)  # j⁴/(n − r) = err/2 with n − r = 3
    out = ex.sublinear_summary(err, j2, n=5, r=2, t_from=2000)
    np.testing.assert_allclose(out["slope"], [2 * eta, 2 * eta / np.sqrt(2)], rtol=1e-10)
    np.testing.assert_allclose(out["bound"], [2.0, 2.0], rtol=1e-12)
    expected = [np.polyfit(np.log(t[2000:]), np.log(e[2000:]), 1)[0] for e in err]
    np.testing.assert_allclose(out["loglog"], expected, rtol=1e-10)
    assert -2.0 < out["loglog"][0] < -1.99


def test_rate_helpers_over_runs():
    t = np.arange(3000.0)
    err = np.stack([np.exp(-0.03 * t), np.exp(-0.05 * t)])[None]
    np.testing.assert_allclose(ms.tail_rates(err, 1e-26, 1e-3), [[0.03, 0.05]], rtol=1e-10)
    np.testing.assert_allclose(ex.half_rate_ratio(err, 1e-26, 1e-3), [[1.0, 1.0]], rtol=1e-10)
    bent = np.exp(-0.03 * t - 1e-5 * t ** 2)  # rate grows with t: lower-half rate > upper-half rate
    assert ex.half_rate_ratio(bent, 1e-26, 1e-3) > 1.05


def _numpy_sym_gd(A, w, y, M, X, eta, steps):
    Amat = A.reshape(A.shape[0], -1)
    errs = []
    for _ in range(steps):
        errs.append(np.sum((X @ X.T - M) ** 2))
        E = (Amat.T @ (w * (Amat @ (X @ X.T).ravel() - y))).reshape(M.shape)
        X = X - eta * 0.5 * (E + E.T) @ X
    errs.append(np.sum((X @ X.T - M) ** 2))
    return np.array(errs)


def test_symmetric_sweep_matches_numpy_loops():
    key = jax.random.PRNGKey(3)
    sweep = ex.symmetric_sweep(key, n=5, r=1, m=40, cond=1.0, eta=0.2, ks=[1, 2],
                               alphas=[0.1, 0.3], seeds=2, steps=30)
    assert sweep.err.shape == (2, 2, 2, 2, 31)
    kp, ki = jax.random.split(jax.random.fold_in(key, 1))
    truth, op, y = ex.symmetric_problem(kp, 5, 1, 40, 1.0)
    X0 = np.asarray(ms.small_init(ki, 5, 2, 0.3, 2))
    M = np.asarray(truth.M)
    sensing = _numpy_sym_gd(np.asarray(op.A), np.asarray(op.w), np.asarray(y), M, X0, 0.2, 30)
    np.testing.assert_allclose(sweep.err[0, 1, 1, 1], sensing, rtol=1e-10)
    X, ident = X0.copy(), []
    for _ in range(31):
        ident.append(np.sum((X @ X.T - M) ** 2))
        X = X - 0.2 * (X @ X.T - M) @ X
    np.testing.assert_allclose(sweep.err[1, 1, 1, 1], ident, rtol=1e-10)


def test_asymmetric_sweep_vanilla_matches_numpy_and_the_step_keeps_the_product():
    key = jax.random.PRNGKey(4)
    sw = ex.asymmetric_sweep(key, n=5, r=1, m=60, cond=1.0, k=2, eta=0.2, alphas=[0.2, 0.3],
                             seeds=1, steps=40, steps_mod=300, switch_below=1e-3, c=1.0)
    truth, op, y, Ft, Gt = ex.asymmetric_problem(jax.random.fold_in(key, 0), 5, 1, 60, 1.0, 2)
    Amat, w = np.asarray(op.A).reshape(60, -1), np.asarray(op.w)
    F, G, M, errs = 0.3 * np.asarray(Ft), 0.1 * np.asarray(Gt), np.asarray(truth.M), []
    for _ in range(40):
        errs.append(np.sum((F @ G.T - M) ** 2))
        E = (Amat.T @ (w * (Amat @ (F @ G.T).ravel() - np.asarray(y)))).reshape(5, 5)
        F, G = F - 0.2 * E @ G, G - 0.2 * E.T @ F
    errs.append(np.sum((F @ G.T - M) ** 2))
    np.testing.assert_allclose(sw.vanilla[0, 1], errs, rtol=1e-10)
    assert np.all(sw.switch >= 0) and np.max(sw.jump) < 1e-12
    t = int(sw.switch[0, 1])
    before = min(t, 40) + 1
    np.testing.assert_allclose(sw.modified[0, 1, :before], sw.vanilla[0, 1, :before], rtol=1e-10)


def test_curse_of_symmetry_equal_factors_follow_a_numpy_symmetric_loop():
    key = jax.random.PRNGKey(5)
    out = ex.curse_of_symmetry(key, n=5, r=1, m=50, cond=1.0, k=2, eta=0.2, alpha=0.1, steps=25)
    kp, _ = jax.random.split(jax.random.fold_in(key, 0))
    truth, op, y = ex.symmetric_problem(kp, 5, 1, 50, 1.0)
    ke1, _, _ = jax.random.split(jax.random.fold_in(key, 99), 3)
    X0 = np.asarray(ms.small_init(ke1, 5, 2, 0.1))
    ref = _numpy_sym_gd(np.asarray(op.A), np.asarray(op.w), np.asarray(y), np.asarray(truth.M), X0,
                        0.2, 25)
    np.testing.assert_allclose(out["equal"], ref, rtol=1e-10)
    assert np.max(out["gap"]) < 1e-12


@pytest.mark.parametrize("change", [dict(alphas_sym=[0.1, 0.2]), dict(k_sym=[3, 4]),
                                    dict(alphas=[0.05, 0.2, 0.1]), dict(seeds=1)])
def test_validate_rejects_bad_settings(change):
    base = dict(n=20, r=2, m=100, cond=2.0, eta=0.2, seeds=2, k_sym=[2, 3],
                alphas_sym=[0.1, 0.2, 0.3], k_asym=4, alphas=[0.05, 0.1, 0.2], steps_sym=300,
                steps_asym=300, steps_mod=300, switch_below=1e-4)
    ex.validate(SimpleNamespace(**base), [0.05, 0.1, 0.2])
    with pytest.raises(ValueError):
        ex.validate(SimpleNamespace(**dict(base, **change)), [0.05, 0.1, 0.2])


T, ETA = 4000, 0.2
CFG = SimpleNamespace(n=6, r=1, m=100, eta=ETA, seeds=2, k_sym=[1, 2, 5],
                      alphas_sym=[0.1, 0.2, 0.3], k_asym=3, alphas=[0.05, 0.1, 0.2], steps_mod=T,
                      switch_below=1e-4)


def _synthetic_sym():
    """k = r: exp(−0.02t); k > r: (k − r)(1 + 2ηt)^−2, whose err^{-1/2} slope is the closed form
    2η/√(k − r) exactly; ‖J‖² chosen so that err/(‖J‖⁴/(n − r)) = 2."""
    t = np.arange(T + 1.0)
    curves = [np.exp(-0.02 * t)] + [(k - 1) * (1 + 2 * ETA * t) ** -2.0 for k in CFG.k_sym[1:]]
    err = np.broadcast_to(np.stack(curves), (2, CFG.seeds, 3, 3, T + 1))
    return ex.SymSweep(err, np.sqrt(err * 5 / 2), None)


def _synthetic_asym():
    """Vanilla exp(−cα²t) (c = 3), k = r exp(−0.05t), after the step exp(−0.04t) for every α."""
    t = np.arange(T + 1.0)
    a = np.asarray(CFG.alphas)[:, None]
    vanilla = np.broadcast_to(np.exp(-3.0 * a ** 2 * t), (CFG.seeds, 3, T + 1))
    modified = np.broadcast_to(np.exp(-0.04 * t), (CFG.seeds, 3, T + 1))
    exact = np.broadcast_to(np.exp(-0.05 * t), (CFG.seeds, T + 1))
    return ex.AsymSweep(vanilla, exact, modified, np.full((CFG.seeds, 3), 100),
                        np.zeros((CFG.seeds, 3)))


def test_symmetric_analysis_on_curves_with_known_rates_and_slopes():
    an = ex.symmetric_analysis(_synthetic_sym(), CFG.k_sym, CFG.r, CFG.n, ETA)
    assert (an.i_r, an.i_over, an.k_over) == (0, [1, 2], [2, 5])
    np.testing.assert_allclose(an.target, [2 * ETA, 2 * ETA / 2], rtol=1e-12)
    for o in range(2):
        np.testing.assert_allclose(an.ratio[o], 1.0, rtol=1e-8)
        np.testing.assert_allclose(an.lin[o], 1.0, rtol=1e-8)
        np.testing.assert_allclose(an.floor[o], np.exp(-0.02 * T), rtol=1e-12)
        np.testing.assert_allclose(an.summ[o]["bound"], 2.0, rtol=1e-12)
        assert an.rate[o] == pytest.approx(0.02, rel=1e-8)


def test_asymmetric_analysis_on_curves_with_known_rates():
    an = ex.asymmetric_analysis(_synthetic_asym(), CFG.alphas, [0.1, 0.2])
    assert an.i_claim == [1, 2]
    np.testing.assert_allclose(an.van_rates, 3.0 * np.asarray(CFG.alphas) ** 2 * np.ones((2, 1)),
                               rtol=1e-8)
    np.testing.assert_allclose(an.ratio_a2, 3.0, rtol=1e-8)
    np.testing.assert_allclose(an.exact_rates, 0.05, rtol=1e-8)
    np.testing.assert_allclose(an.mod_rates, 0.04, rtol=1e-8)
    np.testing.assert_allclose(np.concatenate([an.lin.ravel(), an.exact_lin]), 1.0, rtol=1e-8)
    assert an.switch.shape == an.jump.shape == (2, 2)


def test_figures_and_table_draw():
    sym, asym = _synthetic_sym(), _synthetic_asym()
    san = ex.symmetric_analysis(sym, CFG.k_sym, CFG.r, CFG.n, ETA)
    aan = ex.asymmetric_analysis(asym, CFG.alphas, CFG.alphas)
    t = np.arange(T + 1.0)
    curse = {"equal": (1 + t) ** -2.0, "imbalanced": np.exp(-0.01 * t), "gap": np.zeros(T + 1)}
    for fig in (ex.symmetric_figure(sym, san, CFG), ex.alpha_figure(asym, aan, CFG),
                ex.modification_figure(asym, aan, CFG, CFG.alphas),
                ex.curse_figure(curse, CFG, 0.1)):
        assert len(fig.axes) >= 2
        plt.close(fig)
    table = ex.table1_markdown(san, aan, -1.9, CFG, CFG.alphas)
    assert table.count("\n") == 1 + 1 + 2 + 4 and "0.0200" in table
