"""Protocols of the Jacot notebook against single networks built and trained by hand."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
jax.config.update("jax_enable_x64", True)

import matplotlib.pyplot as plt  # noqa: E402

from paperlib import notebooks, ntk  # noqa: E402
from paperlib.experiments import jacot  # noqa: E402
from paperlib.image_sets import ImageSet  # noqa: E402

BETA = 0.1
X = ntk.circle(jnp.array([-2.0, -0.5, 1.0]))
Y = X[:, 0] * X[:, 1]
JACOBIAN_NTK = jax.jit(lambda p, a, b: ntk.empirical_ntk_jacobian(p, a, b, BETA))  # one compile per shape


def test_init_deviation_is_the_brute_force_jacobian_kernel_distance():
    key = jax.random.key(3)
    th_inf = ntk.kernels(X, depth=4, beta=BETA).ntk
    dev = jacot.init_deviation(key, X, th_inf, [6, 9], 2, beta=BETA, dtype=jnp.float64)
    for i, n in enumerate([6, 9]):
        for s, k in enumerate(jax.random.split(jax.random.fold_in(key, i), 2)):
            p = ntk.init_params(k, [2, n, n, n, 1])
            th = np.asarray(JACOBIAN_NTK(p, X, X))
            want = np.sum((th - np.asarray(th_inf)) ** 2) / np.sum(np.asarray(th_inf) ** 2)
            np.testing.assert_allclose(dev[i][s], want, rtol=1e-10)


def test_lazy_training_matches_a_hand_trained_network_and_kernel_gd():
    key, grid = jax.random.key(4), ntk.circle(jnp.linspace(-np.pi, np.pi, 5))
    x0 = grid[2:3]
    k_tt = ntk.kernels(X, depth=4, beta=BETA).ntk
    k_gt = ntk.kernels(grid, X, depth=4, beta=BETA).ntk
    data = jacot.TrainingSet(X, Y, k_tt, k_gt, 0.0)
    out = jacot.lazy_training(key, [7], 2, data, grid, x0, lr=0.5, steps=4, beta=BETA,
                              dtype=jnp.float64)[7]
    k = jax.random.split(jax.random.fold_in(key, 0), 2)[1]

    @jax.jit  # the second network by hand, one compiled program
    def by_hand(k):
        p = ntk.init_params(k, [2, 7, 7, 7, 1])
        pT = ntk.train(p, X, Y, lr=0.5, steps=4, beta=BETA).params
        f0g, f0x = ntk.apply(p, grid, BETA)[:, 0], ntk.apply(p, X, BETA)[:, 0]
        pred = ntk.kernel_predict(k_tt, k_gt, Y, f0x, f0g, lr=0.5, steps=4)
        return (ntk.empirical_ntk_jacobian(p, x0, grid, BETA)[0], ntk.apply(pT, grid, BETA)[:, 0],
                pred, ntk.apply(pT, X, BETA)[:, 0])

    th0, fT, pred, fTx = (np.asarray(t) for t in by_hand(k))
    np.testing.assert_allclose(out["th0"][1], th0, rtol=1e-10)
    np.testing.assert_allclose(out["to_kernel"][1], np.sqrt(np.mean((fT - pred) ** 2)), rtol=1e-9)
    loss = 0.5 * np.mean((fTx - np.asarray(Y)) ** 2)
    np.testing.assert_allclose(out["train_loss"][1], loss, rtol=1e-9)


def test_gaussian_limit_split_adds_up_to_the_trained_output():
    key, grid = jax.random.key(5), ntk.circle(jnp.linspace(-np.pi, np.pi, 7))
    fT, bias = jacot.gaussian_limit(key, {6: 4}, X, Y, grid, 6, 0.0, lr=0.5, steps=3, beta=BETA,
                                    dtype=jnp.float64)
    k = jax.random.split(jax.random.fold_in(key, 6), 4)[0]
    pT = jax.jit(lambda q: ntk.train(q, X, Y, lr=0.5, steps=3, beta=BETA).params)(
        ntk.init_params(k, [2, 6, 6, 6, 1]))
    np.testing.assert_allclose(fT[6][0], np.asarray(ntk.apply(pT, grid, BETA)[:, 0]), rtol=1e-10)
    b = bias[6]
    # plain mean = control variate + prior; nonlinear = plain - kernel - prior (all means)
    prior_mean = b["plain"][0] - b["cv"][0]
    np.testing.assert_allclose(b["plain"][0], b["lin"][0] + b["nonlin"][0] + prior_mean, rtol=1e-10)
    np.testing.assert_allclose(b["cv_s"].mean(), b["cv"][0], rtol=1e-10)


def test_pc_split_and_decay_rates_on_exact_kernel_gradient_descent():
    rng = np.random.default_rng(0)
    N, steps, lr = 6, 40, 0.5
    A = rng.standard_normal((N, N))
    K = A @ A.T
    lam, V = np.linalg.eigh(K / N)
    lam, V = lam[::-1], V[:, ::-1]
    shift = np.sqrt(N) * V[:, :2] @ np.array([0.3, -0.2])
    f0 = rng.standard_normal(N)
    r = [-shift]
    for _ in range(steps):
        r.append(r[-1] - lr * K @ r[-1] / N)  # residual of kernel GD: r <- (I - lr K/N) r
    outs = (f0 + shift + np.array(r))[None]
    rates = jacot.pc_decay_rates(outs, shift, V, lam, 2, lr)
    np.testing.assert_allclose(rates[0], lam[:2], rtol=1e-10)
    f2 = np.sqrt(N) * V[:, 1]
    g, h = jacot.pc_split(f0 + 0.5 * f2 - 0.5 * f2 * np.exp(-np.arange(3))[None, :, None], f2)
    np.testing.assert_allclose(g[0], 0.5 * np.exp(-np.arange(3)), rtol=1e-12)
    np.testing.assert_allclose(h[0], 0.0, atol=1e-12)


# ----------------------------------------------------------------------------- settings, data, plots

PROFILES = notebooks.profile_values(notebooks.NOTEBOOKS_DIR / "jacot2018_ntk.ipynb")
SMOKE = PROFILES["smoke"]


@pytest.mark.parametrize("change, message", [
    (dict(lazy_widths=[256, 512]), "at least 3 widths"),
    (dict(fig1_widths=[256, 2048]), "fig1_widths"),
    (dict(gauss_width=128), "gauss_width"),
    (dict(gauss_seeds=99), ">= 100"),
    (dict(pc_components=40), "pc_components"),
])
def test_validate_rejects_inconsistent_settings(change, message):
    for settings in PROFILES.values():
        jacot.validate(SimpleNamespace(**settings))
    with pytest.raises(ValueError, match=message):
        jacot.validate(SimpleNamespace(**dict(SMOKE, **change)))


def test_digit_images_reads_mnist_shaped_arrays_and_the_proxy():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 50)
    real = ImageSet("mnist", X, y, X[:5], y[:5])
    key = jax.random.key(1)
    x, lab = jacot.digit_images(key, 7, real)
    perm = np.asarray(jax.random.permutation(key, 50))[:7]
    assert x.shape == (7, 784) and lab.shape == (7,)
    np.testing.assert_array_equal(np.asarray(x), X[perm].reshape(7, -1) / 255.0)
    np.testing.assert_array_equal(lab, y[perm])
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    xp, labp = jacot.digit_images(key, 5)
    assert xp.shape == (5, 64) and float(xp.max()) <= 1.0 and labp.shape == (5,)
    assert jacot.data_name(real) == "MNIST" and "proxy" in jacot.data_name(None)
    with pytest.raises(ValueError, match="images"):
        jacot.digit_images(key, 51, real)


def test_monte_carlo_entries_are_products_and_brute_force_kernels():
    key, x = jax.random.key(6), X[:2]
    mc = jacot.monte_carlo(key, x, 5, 2, depth=4, beta=BETA, dtype=jnp.float64)
    p = ntk.init_params(jax.random.split(key, 2)[1], [2, 5, 5, 5, 1])
    f = np.asarray(ntk.apply(p, x, BETA)[:, 0])
    np.testing.assert_allclose(mc.products[1], [f[0] ** 2, f[0] * f[1], f[1] ** 2], rtol=1e-10)
    th = np.asarray(JACOBIAN_NTK(p, x, x))
    np.testing.assert_allclose(mc.ntk[1], th[np.triu_indices(2)], rtol=1e-10)
    k = ntk.kernels(x, depth=4, beta=BETA)
    np.testing.assert_allclose(mc.ntk_target, np.asarray(k.ntk)[np.triu_indices(2)], rtol=1e-14)


def test_closed_forms_agree_with_quadrature_and_spectra_have_the_polynomial_ranks():
    grid = ntk.circle(jnp.linspace(-np.pi, np.pi, 9))
    assert jacot.closed_vs_quadrature(grid, "relu", depth=3, beta=BETA) < 1e-10
    sp = jacot.pd_spectra(jax.random.key(0), 64, depth=4, beta=BETA, sphere_points=8)
    assert sp.identity_rank == 3 and sp.relu_rank_l1 == 3  # affine in x.x': modes 0, +-1
    assert sp.quadratic_ranks == [5, 9, 17, 33]              # 2^L + 1 Fourier modes
    assert min(ev.min() for ev in sp.relu.values()) > 0 and sp.sphere[0] > 0
    assert sp.beta0_odd < 1e-10                               # beta = 0, L = 2: odd modes vanish


def test_limit_band_pinches_at_the_data_and_fits_the_targets():
    g = jnp.array([-2.0, 0.5, 2.0])
    x = ntk.circle(g)
    y = x[:, 0] * x[:, 1]
    band = jacot.limit_band(x, y, x, depth=4, beta=BETA, lr=1.0, steps=200000)
    assert band.var_at_data <= 1e-10
    np.testing.assert_allclose(band.mean, np.asarray(y), atol=1e-8)
    np.testing.assert_allclose(band.sd, 0.0, atol=1e-5)
    unit = jacot.Band(np.zeros(4), np.ones(4), (0.0, 0.0), 0.0)
    assert jacot.band_fraction(np.array([0.0, 1.2, 1.3, -2.0]), unit) == 0.5  # P90 = 1.2816


def test_width_steps_and_beta_gap():
    dm, dse = jacot.width_steps({1: np.array([1.0, 3.0]), 2: np.array([0.0, 0.0])})
    np.testing.assert_allclose(dm, [-2.0])
    np.testing.assert_allclose(dse, [1.0])  # s.e. of the mean of (1, 3) is 1
    x = jnp.asarray(np.random.default_rng(1).random((6, 3)))
    lam = jacot.beta_gap(x, depth=3)
    for b, l12 in lam.items():
        k = np.asarray(ntk.kernels(x, depth=3, beta=b).ntk) / 6
        np.testing.assert_allclose(l12, np.linalg.eigvalsh(k)[::-1][:2], rtol=1e-12)


def test_fig3_run_starts_on_the_pc_and_plots_draw():
    x = jnp.asarray(np.random.default_rng(2).random((6, 3)))
    run = jacot.fig3_run(jax.random.key(0), x, [8], 2, 0.05, depth=4, lr=1.0, beta=BETA,
                         dtype=jnp.float64)
    np.testing.assert_allclose(run.g[8][:, 0], 0.5, atol=1e-12)
    np.testing.assert_allclose(run.h[8][:, 0], 0.0, atol=1e-12)
    np.testing.assert_allclose(run.theory, 0.5 * np.exp(-run.eigenvalues[1] * run.t))
    rates = jacot.PCRates(run.eigenvalues, np.full((2, 2), 0.1), np.zeros((2, 2)))
    start, hmax, gdev = jacot.fig3_measures(run)
    assert start < 1e-12 and hmax[8].shape == gdev[8].shape == (2,)
    assert "steps" in jacot.fig3_summary(run, hmax, gdev) and "0.1" in jacot.pc_summary(rates)
    sp = jacot.Spectra({2: np.ones(64)}, 3, np.ones(64), np.ones(3), 3, [5, 9, 17, 33], 0.0)
    assert sp.relu_min_ratio == 1.0 and "L=1" in jacot.spectra_summary(sp)
    gam = np.linspace(-np.pi, np.pi, 5)
    band = jacot.Band(np.zeros(5), np.ones(5), (0.0, 0.0), 0.0)
    lazy = {4: dict(th0=np.ones((2, 5)), thT=np.ones((2, 5)), change=np.zeros(2),
                    inflation=np.zeros(2), to_kernel=np.zeros(2), train_loss=np.zeros(2))}
    bias = {n: dict(cv=(0.1 / n, 0.01), lin=(0.0, 0.01), nonlin=(0.1, 0.01), S=3,
                    cv_s=np.full(3, 0.1 / n)) for n in (4, 16)}
    figs = [jacot.plot_fig3(run, np.arange(6), rates, 8, "MNIST"), jacot.plot_spectra(sp),
            jacot.plot_fig2(gam, {4: np.zeros((2, 5)), 9: np.ones((2, 5))}, band, [0.0], [0.0], 3),
            jacot.plot_fig1(lazy, [4], gam, np.ones(5), 3), jacot.plot_bias(bias, 0.0)]
    assert all(isinstance(f, plt.Figure) for f in figs)
    table = jacot.bias_table(bias, 0.0, 1.0)
    assert table.count("\n| ") == 3 and "width: -1.00" in table  # bias 0.1 / n: slope -1
    assert jacot.lazy_table(lazy).count("\n| ") == 1
    plt.close("all")


def test_fig1_training_set_and_the_text_helpers():
    grid = ntk.circle(jnp.linspace(-np.pi, np.pi, 5))
    d = jacot.fig1_training_set(jax.random.key(1), 4, grid, depth=3, beta=BETA)
    np.testing.assert_array_equal(d.y, d.x[:, 0] * d.x[:, 1])
    np.testing.assert_allclose(d.k_gt, ntk.kernels(grid, d.x, depth=3, beta=BETA).ntk, rtol=1e-14)
    lam = np.linalg.eigvalsh(np.asarray(d.k_tt) / 4)[-1]  # dense eigen-solver
    np.testing.assert_allclose(d.lambda_max, lam, rtol=1e-12)
    note = jacot.rates_note([1, 2, 4], dict(mean=-1.0, se=0.1, n=4), dict(mean=-0.3, se=0.1, n=4))
    assert "z = +0.00 against −1" in note and "z = +2.00 against −½" in note
    widening, text = jacot.beta_widening({0.1: np.array([4.0, 2.0]), 1.0: np.array([10.0, 1.0])})
    assert widening == 5.0 and "widens 5.0 times" in text  # (10 / 1) / (4 / 2)
    assert jacot.declared_gap("smoke")("fig3.g_approaches_theory")
    assert jacot.declared_gap("full")("fig3.g_approaches_theory") is None
    assert jacot.ensemble_sizes(SimpleNamespace(**SMOKE)) == {50: 100, 256: 100}
    cfg = SimpleNamespace(**PROFILES["default"])
    assert jacot.ensemble_sizes(cfg) == {50: 100, 128: 100, 256: 100, 512: 100}
    assert "proxy" not in jacot.fig1_proxy(cfg, "default") and "500, 1000" in jacot.fig1_proxy(
        cfg, "default")
    assert jacot.fig3_proxy(cfg, ImageSet("mnist", *[np.zeros((1, 2, 2))] * 4)) is None
    assert "8x8 digits" in jacot.fig3_proxy(cfg, None) and "100 networks" in jacot.bias_proxy(cfg)
    assert 0.0 < jacot.gauss_hermite_miss(grid, depth=3, beta=BETA) < 1e-2  # misses the kink
