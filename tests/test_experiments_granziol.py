"""Tests for paperlib.experiments.granziol: each protocol against a direct computation (dense
eigendecompositions, the single-run library calls it loops over, closed forms), in float64."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from paperlib import rmt  # noqa: E402
from paperlib.experiments import granziol as gx  # noqa: E402

SIZES = (5, 4, 3)


def _data(seed=0, n=16, folds=None):
    rng = np.random.default_rng(seed)
    shape = (n,) if folds is None else (folds, n)
    X = jnp.asarray(rng.standard_normal((*shape, SIZES[0])))
    y = jnp.asarray(rng.integers(0, SIZES[-1], shape).astype(np.int32))
    return X, y


@jax.jit
def _dense_hessian(theta, X, y, w):
    """Dense Hessian of the masked batch loss, one compile per shape (eager jax.hessian compiles
    every primitive anew and costs seconds)."""
    return jax.hessian(lambda t: rmt.weighted_loss(t, X, y, w, SIZES))(theta)


def test_interval_margins_closed_form():
    np.testing.assert_allclose(gx.interval_margins([0.9, 1.3], 0.8, 1.2), [[0.1, 0.3], [0.5, -0.1]])


def test_curvature_sweep_matches_dense_eigendecompositions():
    X, y = _data()
    theta = rmt.init_mlp(jax.random.PRNGKey(0), SIZES)
    masks = rmt.random_subset_masks(jax.random.PRNGKey(1), 16, [3, 16], 2)
    sw = gx.curvature_sweep(theta, X, y, SIZES, masks, jax.random.PRNGKey(2), 39, top_steps=39)
    H = lambda w: np.asarray(_dense_hessian(theta, X, y, w))
    ev, vec = np.linalg.eigh(H(jnp.ones(16)))
    assert sw.lam == pytest.approx(ev[-1], rel=1e-8)
    assert abs(float(np.asarray(sw.u) @ vec[:, -1])) == pytest.approx(1.0, rel=1e-6)
    u = np.asarray(sw.u)
    for d in range(2):
        Hb = H(masks[0, d])
        e = np.linalg.eigvalsh(Hb)
        assert sw.top[0, d] == pytest.approx(e[-1], rel=1e-7)
        assert e[0] - 1e-9 <= sw.bottom[0, d] <= e[-1]  # a Ritz value from the Krylov space of u
        assert sw.rayleigh[0, d] == pytest.approx(u @ Hb @ u, rel=1e-8)
    # B = N: the batch is the full data and u its eigenvector (Lanczos stops at once)
    np.testing.assert_allclose([sw.top[1], sw.rayleigh[1]], ev[-1] * np.ones((2, 2)), rtol=1e-8)
    mean, se = gx.control_variate_excess(sw)
    np.testing.assert_allclose(mean, (sw.top - sw.rayleigh).mean(1))
    assert np.all(se >= 0)


def test_mean_batch_sharpness_matches_eigvalsh():
    X, y = _data(n=10)
    theta = rmt.init_mlp(jax.random.PRNGKey(3), SIZES)
    key = jax.random.PRNGKey(4)
    mean, se = gx.mean_batch_sharpness(theta, X, y, SIZES, [2, 10], 3, key, 39)
    masks = rmt.random_subset_masks(jax.random.split(key)[0], 10, [2, 10], 3)
    tops = [[np.linalg.eigvalsh(np.asarray(_dense_hessian(theta, X, y, masks[a, d])))[-1]
             for d in range(3)]
        for a in range(2)]
    np.testing.assert_allclose(mean, np.mean(tops, 1), rtol=1e-7)
    assert se[1] == pytest.approx(0.0, abs=1e-9)  # B = N: every batch is the full data


def test_lr_sweep_and_per_seed_slopes():
    X, y = _data(n=24)
    theta = rmt.init_mlp(jax.random.PRNGKey(5), SIZES)
    keys = jax.random.split(jax.random.PRNGKey(6), 2)
    loss0 = float(jnp.mean(rmt.per_sample_loss(theta, X, y, SIZES)))
    alphas, at_edge = gx.lr_sweep("sgd", theta, X, y, SIZES, [2, 8], keys, 20, (1e-3, 1e3), 10, loss0)
    lo, hi = rmt.max_stable_lr("sgd", theta, X, y, SIZES, jnp.array([2, 8]), keys, 20, 8, (1e-3, 1e3), 10,
                               loss0)
    np.testing.assert_allclose(alphas, np.sqrt(np.asarray(lo) * np.asarray(hi)))
    assert not at_edge
    slopes = gx.per_seed_slopes(np.array([2, 8]), alphas)
    np.testing.assert_allclose(slopes, np.log(alphas[:, 1] / alphas[:, 0]) / np.log(4.0))


def test_train_folds_rule_table_and_evaluate_equal_single_runs():
    X, y = _data(n=16, folds=2)
    Xt, yt = _data(seed=1, n=8, folds=2)
    th0s = jax.vmap(lambda k: rmt.init_mlp(k, SIZES))(jax.random.split(jax.random.PRNGKey(7), 2))
    keys = jax.random.split(jax.random.PRNGKey(8), 2)
    table = gx.rule_table({"sgd": [0.1, 0.2], "adam": [0.01]}, [2, 8], th0s, (X, y, Xt, yt), keys,
                          SIZES, 2)
    assert table["sgd"]["linear"].shape == (2, 2, 2) and table["adam"]["sqrt"].shape == (1, 2, 2)
    # single runs (one rmt.train each) for a sample of the grid: (optimizer, rule, base index, fold)
    for opt, rule, k, f, base in (("sgd", "linear", 1, 1, 0.2), ("sgd", "sqrt", 0, 0, 0.1),
                                  ("adam", "sqrt", 0, 1, 0.01), ("adam", "linear", 0, 0, 0.01)):
        for b, (B, lr) in enumerate(((2, base), (8, base * {"linear": 4.0, "sqrt": 2.0}[rule]))):
            th = rmt.train(opt, th0s[f], X[f], y[f], SIZES, B, 2, lr, keys[f], decay=True)
            ref = 100 * float(rmt.accuracy(th, Xt[f], yt[f], SIZES))
            assert table[opt][rule][k, b, f] == pytest.approx(ref, abs=1e-9)
    thetas = gx.train_folds(["sgd", "adam"], 2, [0.1, 0.01], th0s, X, y, keys, SIZES, 2)
    np.testing.assert_allclose(thetas[1, 0], rmt.train("adam", th0s[0], X[0], y[0], SIZES, 2, 2,
                                                       0.01, keys[0], decay=True), rtol=1e-12)
    _, ce = gx.evaluate(thetas, Xt, yt, SIZES)
    ref = float(jnp.mean(rmt.per_sample_loss(thetas[0, 1], Xt[1], yt[1], SIZES)))
    assert ce[0, 1] == pytest.approx(ref, rel=1e-10)


def test_validated_base_picks_the_lowest_validation_loss():
    X, y = _data(n=16, folds=2)
    Xv, yv = _data(seed=2, n=8, folds=2)
    th0s = jax.vmap(lambda k: rmt.init_mlp(k, SIZES))(jax.random.split(jax.random.PRNGKey(9), 2))
    keys = jax.random.split(jax.random.PRNGKey(10), 2)
    grid = {"sgd": np.array([1e-3, 0.3, 1e3]), "adam": np.array([1e-4, 0.03])}
    got = gx.validated_base(grid, th0s, (X, y), (Xv, yv), keys, SIZES, 3, batch_size=4)
    for opt, lrs in grid.items():
        ref = np.array([[float(jnp.mean(rmt.per_sample_loss(
            rmt.train(opt, th0s[f], X[f], y[f], SIZES, 4, 3, lr, keys[f], decay=True), Xv[f], yv[f],
            SIZES))) for f in range(2)] for lr in lrs])
        ref = np.where(np.isfinite(ref), ref, np.inf).mean(1)
        assert got[opt][0] == int(np.argmin(ref))
        np.testing.assert_allclose(got[opt][1], ref, rtol=1e-8)


def test_exact_extremes_and_learner_vs_polyak_with_a_full_krylov_space():
    key = jax.random.PRNGKey(11)
    X, _ = gx.linear_curvature_batches(key, 40, 6, 2)
    L, mu = gx.exact_nonzero_extremes(X)
    for i in range(2):
        ev = np.linalg.eigvalsh(np.asarray(X[i]).T @ np.asarray(X[i]) / 6)
        nonzero = ev[ev > 1e-10 * ev[-1]]
        assert L[i] == pytest.approx(nonzero[-1], rel=1e-10) and mu[i] == pytest.approx(nonzero[0], rel=1e-8)
    # m = B + 1 Lanczos steps span the B nonzero eigenvectors and the null node: the learner is exact
    lr_err, mom_err, kappa = gx.learner_vs_polyak(key, 40, 6, 2, 7)
    np.testing.assert_allclose(lr_err, 0.0, atol=1e-6)
    np.testing.assert_allclose(mom_err, 0.0, atol=1e-6)
    np.testing.assert_allclose(kappa, L / mu)


def test_kaniel_paige_momentum_steps_is_the_first_guaranteed_m():
    eigs = np.linspace(0.05, 5.0, 60)
    cos = 0.1
    m = gx.kaniel_paige_momentum_steps(eigs, cos, 0.10)
    mom = lambda lo: ((np.sqrt(5.0) - np.sqrt(lo)) / (np.sqrt(5.0) + np.sqrt(lo))) ** 2
    ok = lambda k: mom(0.05 + rmt.kaniel_paige_bottom_bound(eigs, cos, k)) >= 0.9 * mom(0.05)
    assert m is not None and m > 1 and ok(m) and not ok(m - 1)
    assert gx.kaniel_paige_momentum_steps(eigs, cos, 0.10, max_steps=m - 1) is None


def test_learner_seed_runs_match_a_direct_run():
    X, y = _data(n=16)
    Xt, yt = _data(seed=3, n=8)
    key = jax.random.PRNGKey(12)
    runs, ok, acc = gx.learner_seed_runs("polyak", key, 2, (X, y, Xt, yt), SIZES, 4, 2, 8, 5)
    ks = jax.random.fold_in(key, 1)
    th = rmt.init_mlp(jax.random.fold_in(ks, 1), SIZES)
    r = rmt.train_with_learner(th, X, y, SIZES, 4, 2, jax.random.fold_in(ks, 2), 8, 5, rule="polyak")
    np.testing.assert_allclose(runs[1][1].theta, r.theta, rtol=1e-10)
    assert acc[1] == pytest.approx(100 * float(rmt.accuracy(r.theta, Xt, yt, SIZES)))
    l0 = float(jnp.mean(rmt.per_sample_loss(th, X, y, SIZES)))
    assert runs[1][0] == pytest.approx(l0)
    assert ok[1] == bool(np.all(np.isfinite(r.losses)) and float(r.losses[-1]) < l0)


# ------------------------------------------------------------------------- notebook protocols


def _cfg(**over):
    from types import SimpleNamespace

    base = dict(hidden=[8], slq_hidden=[8], synthetic_batch_sizes=[1, 2, 4, 8, 16, 32], wigner_N=100,
                curvature_batch_sizes=[1, 16], lr_batch_sizes=[4], density_batch_sizes=[0, 8],
                density_steps=50)
    return SimpleNamespace(**{**base, **over})


def test_validate_rejects_inconsistent_settings_before_compute():
    gx.validate(_cfg())
    for bad in (dict(synthetic_batch_sizes=[1, 2, 4]), dict(wigner_N=20), dict(lr_batch_sizes=[2000]),
                dict(density_batch_sizes=[1500]), dict(slq_hidden=[80]), dict(slq_hidden=[1]),
                dict(density_steps=10**4)):
        with pytest.raises(ValueError):
            gx.validate(_cfg(**bad))


def test_wigner_check_formula_and_switch_from_the_closed_forms():
    B = [2, 8, 32, 128, 512]
    wig = gx.wigner_check(jax.random.PRNGKey(0), 30, 600, B, 2, spike=3.0, bstar_target=48.0)
    sigma2_pop = 9.0 * 48 / 30 * 599 / 600
    assert wig.tops.shape == (5, 2) and wig.sigma2_pop == pytest.approx(sigma2_pop)
    np.testing.assert_allclose(wig.predicted, rmt.wigner_lambda_max(3.0, 30, sigma2_pop, np.array(B), 600)[0])
    assert wig.bstar == pytest.approx(600 / (1 + 599 * 9.0 / (30 * sigma2_pop)))
    assert wig.predicted_switch == int(np.sum(np.array(B) < wig.bstar))
    s2 = 30 * sigma2_pop * (600 - np.array(B)) / (np.array(B) * 599.0)
    m = wig.tops.mean(1)
    closer = np.abs(m - 3 - s2 / 3) < np.abs(m - 2 * np.sqrt(s2))
    assert wig.measured_switch == (int(np.argmax(closer)) if closer.any() else 5)
    wis = gx.wishart_check(jax.random.PRNGKey(1), 20, [64], spike=5.0, draws=3)
    assert wis.tops.shape == (1, 3) and wis.bstar == pytest.approx(20 / 16)
    np.testing.assert_allclose(wis.predicted, 5 * (1 + (20 / 64) / 4))


def test_checkpoint_is_sgd_from_the_split_key():
    X, y = _data(n=12)
    key = jax.random.PRNGKey(2)
    th = gx.checkpoint(key, X, y, SIZES, 2)
    k_init, k_train = jax.random.split(key)
    ref = rmt.train("sgd", rmt.init_mlp(k_init, SIZES), X, y, SIZES, 32, 2, 0.1, k_train)
    np.testing.assert_allclose(th, ref, rtol=1e-12)


def test_slq_check_against_dense_eigenvalues():
    X, y = _data(n=20)
    theta = rmt.init_mlp(jax.random.PRNGKey(3), SIZES)
    s = gx.slq_check(theta, X, y, SIZES, jax.random.PRNGKey(4), 2, 39, 400)
    ev = np.linalg.eigvalsh(np.asarray(_dense_hessian(theta, X, y, jnp.ones(20))))
    np.testing.assert_allclose(s.eigs, ev, atol=1e-12)
    np.testing.assert_allclose(s.arpack_top5, ev[::-1][:5], rtol=1e-8)
    np.testing.assert_allclose(s.ours_top5, ev[::-1][:5], rtol=1e-6)
    assert s.nodes.max() == pytest.approx(ev[-1], rel=1e-8)
    for m, target in ((s.moment1, ev.mean()), (s.moment2, np.mean(ev**2))):  # Hutchinson, 4 s.e.
        assert abs(m.mean() - target) < 4 * m.std(ddof=1) / np.sqrt(len(m))


def test_batch_spectra_keys_and_ritz_values_inside_the_spectrum():
    X, y = _data(n=10)
    theta = rmt.init_mlp(jax.random.PRNGKey(5), SIZES)
    sp = gx.batch_spectra(theta, X, y, SIZES, [3, 0], jax.random.PRNGKey(6), 2, 10)
    assert sorted(sp) == [3, 10]
    lo, hi = gx.ritz_extremes(sp)[10]
    ev = np.linalg.eigvalsh(np.asarray(_dense_hessian(theta, X, y, jnp.ones(10))))
    assert ev[0] - 1e-9 <= lo <= hi <= ev[-1] + 1e-9  # Ritz values lie inside the spectrum
    np.testing.assert_allclose(np.asarray(sp[3].weights).sum(1), 1.0, rtol=1e-10)


def test_spectra_figures_and_edges_table_smoke():
    import matplotlib

    matplotlib.use("Agg")
    from paperlib import linalg

    ritz = lambda a: linalg.Ritz(jnp.array([[a, 1.0, 2.0]]), jnp.array([[0.2, 0.5, 0.3]]))
    sp = {10: ritz(-0.5), 3: ritz(-1.0)}
    assert "| 3 | -1 | 2 |" in gx.edges_table(sp, 10) and "B = none" in gx.edges_table(sp, 10)
    gx.density_figure(sp, 10, "t")
    gx.ggn_spectra_figure({(c, b): ritz(-0.1) for c in rmt.CURVATURES for b in (10, 3)}, (10, 3))


def test_curvature_vs_batch_slope_and_relative_errors():
    X, y = _data()  # the shapes of test_curvature_sweep: its compiled Lanczos runs are reused
    theta = rmt.init_mlp(jax.random.PRNGKey(9), SIZES)
    cv = gx.curvature_vs_batch(theta, X, y, SIZES, [3, 16], 2, jax.random.PRNGKey(10),
                               jax.random.PRNGKey(11), 39, top_steps=39)
    np.testing.assert_allclose(cv.below, np.mean(cv.sweep.top < cv.sweep.lam * (1 - 1e-3), 1))
    np.testing.assert_allclose(cv.excess, (cv.sweep.top - cv.sweep.rayleigh).mean(1))
    # an exact 1/B excess (with the finite-population factor) has slope -1
    B, N = np.array([2.0, 4, 8, 16, 64]), 200
    exact = cv._replace(batch_sizes=B, excess=3.0 * (N - B) / (N - 1) / B, excess_se=0.1 / B)
    Bf, a, se = gx.excess_slope(exact, N, 4)
    np.testing.assert_array_equal(Bf, [4, 8, 16, 64])
    assert a == pytest.approx(-1.0, abs=1e-10) and se > 0
    err, err_se = gx.wigner_relative_errors(exact, {"x": 2.0}, N)
    pred = np.asarray(rmt.wigner_lambda_max(cv.sweep.lam, 1, 2.0, B, N)[0])
    np.testing.assert_allclose(err["x"], (cv.sweep.lam + exact.excess) / pred - 1)
    np.testing.assert_allclose(err_se["x"], exact.excess_se / pred)


def test_linear_proxy_and_lr_exponents_equal_the_direct_calls():
    key = jax.random.PRNGKey(12)
    lin = gx.linear_proxy(key, 40, [1, 2, 64], 30, 2, lambda1=4.0)
    h = jnp.ones(40).at[0].set(4.0)
    lo, hi = rmt.linear_ms_max_lr(key, h, jnp.array([1, 2, 64]), 30, 64, 2, (1e-4, 10.0), 14)
    np.testing.assert_allclose(lin.alpha, np.sqrt(np.asarray(lo) * np.asarray(hi)))
    assert lin.B_crit == pytest.approx(47 / 4) and lin.trace == 43
    assert lin.slope == pytest.approx(np.log(lin.alpha[1] / lin.alpha[0]) / np.log(2.0))
    assert gx.alpha_at_32(np.array([1.0, 2.0, 3.0]), [16, 32, 64]) == 2.0
    assert gx.alpha_at_32(np.array([1.0, 8.0]), [4, 128]) == pytest.approx(8.0 / 2)


def test_rule_contrasts_and_fold_statistics_by_hand():
    acc = {"linear": np.zeros((2, 3, 4)), "sqrt": np.ones((2, 3, 4))}
    acc["linear"][:, 2] = 1.0  # acc(128) - acc(32) = 1 under the linear rule
    c = gx.rule_contrasts(acc, "linear")
    assert c.band.shape == (4, 2, 6)
    np.testing.assert_allclose(c.band[0, 0], [1.5, 0.5, 0.5, 1.5, 2.5, 2.5])
    np.testing.assert_allclose(c.gain, 0.0)
    np.testing.assert_allclose(c.drop["linear"], 1.0)
    np.testing.assert_allclose(c.drop["sqrt"], 0.0)
    st = gx.over_folds(np.full(4, 2.0), n_test=100)
    assert st["mean"] == 2.0 and st["se"] == pytest.approx(1 / np.sqrt(48)) and st["n"] == 4


def test_declared_gaps_and_their_texts():
    assert gx.declared_gap("c5.mlp.adam_slope", "smoke", "x") == "x"
    assert gx.declared_gap("c5.mlp.adam_slope", "default", "x") is None
    assert gx.declared_gap("c1.wigner.switch", "smoke", "x") is None
    assert "z = 1.0, 3.0" in gx.interval_text("a", -1.1, 0.1, -1.2, -0.8, 8, "batches")
    assert gx.error_text([1, 4], [0.5, -0.1], "w").startswith("relative errors +50, -10% at B = 1, 4")
    ok, acc = np.array([True, False]), np.array([90.0, 80.0])
    div, low = gx.learner_text(ok, acc, 95.0)
    assert div.startswith("1 of the 2 runs") and "worst 15.00 points" in low
    assert gx.p_near_b_text({100: 0.122}).startswith("worst error 12.2% at P = 100")


# ------------------------------------------------------------------------- real data (issue 20)


def _tiny_cifar(n=24, n_test=10, size=8, classes=4, seed=0):
    from paperlib.image_sets import ImageSet

    rng = np.random.default_rng(seed)
    img = lambda k: rng.integers(0, 256, (k, size, size, 3), dtype=np.uint8)
    lab = lambda k: rng.integers(0, classes, k).astype(np.int64)
    return ImageSet("cifar100", img(n), lab(n), img(n_test), lab(n_test))


def test_preprocess_cifar_scales_normalises_and_subsets():
    real = _tiny_cifar()
    X, y, Xt, yt = gx.preprocess_cifar(real, 10, seed=3)
    keep = np.sort(np.random.default_rng(3).permutation(24)[:10])
    ref = (real.X_train[keep] / 255.0 - gx.CIFAR_MEAN) / gx.CIFAR_STD
    np.testing.assert_allclose(X, ref, rtol=1e-6)
    assert X.dtype == np.float32 and Xt.shape == (10, 8, 8, 3)
    np.testing.assert_array_equal(y, real.y_train[keep])
    with pytest.raises(ValueError):
        gx.preprocess_cifar(real, 25, seed=0)


def test_convnet_logits_match_a_numpy_convolution():
    arch = (4, 4, 2, (3,), 5)
    theta = rmt.init_convnet(jax.random.PRNGKey(0), arch, dtype=jnp.float64)
    assert theta.size == rmt.convnet_num_params(arch) == 3 * 3 * 2 * 3 + 3 + 3 * 5 + 5
    X = np.random.default_rng(1).standard_normal((2, 4, 4, 2))
    t = np.asarray(theta)
    W, b = t[:54].reshape(3, 3, 2, 3), t[54:57]
    Wd, bd = t[57:72].reshape(3, 5), t[72:]
    pad = np.pad(X, ((0, 0), (1, 1), (1, 1), (0, 0)))
    conv = np.zeros((2, 4, 4, 3))
    for i in range(4):
        for j in range(4):
            conv[:, i, j] = np.einsum("nhwc,hwco->no", pad[:, i:i + 3, j:j + 3], W) + b
    h = np.maximum(conv, 0).reshape(2, 2, 2, 2, 2, 3).mean((2, 4))  # 2x2 average pooling
    ref = h.mean((1, 2)) @ Wd + bd
    np.testing.assert_allclose(rmt.convnet_logits(theta, X, arch), ref, rtol=1e-10)


def test_real_rule_runs_on_a_tiny_synthetic_set():
    real = _tiny_cifar()
    acc = gx.real_rule_runs(real, 24, 1, jax.random.PRNGKey(2), widths=(4,), batch_sizes=(4, 8))
    assert set(acc) == set(gx.REAL_BASE_LR)
    for rules in acc.values():
        assert set(rules) == {"linear", "sqrt"}
        for a in rules.values():
            assert a.shape == (2,) and np.all((0 <= a) & (a <= 100))
        assert rules["linear"][0] == rules["sqrt"][0]  # the base batch size: the same run
    table = gx.real_rule_table(acc, "cifar100", 24, 1, batch_sizes=(4, 8))
    assert "| SGD | linear |" in table
    assert gx.load_cifar(False) is None
