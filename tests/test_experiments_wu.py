"""Protocols of the Wu & Su notebook on a linear model, where every quantity has a closed form."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
jax.config.update("jax_enable_x64", True)

from paperlib import stability as st  # noqa: E402
from paperlib.experiments import wu as wx  # noqa: E402
from paperlib.image_sets import ImageSet  # noqa: E402

RNG = np.random.default_rng(0)
X = jnp.asarray(RNG.standard_normal((12, 3)))
Y = X @ jnp.asarray([1.0, -2.0, 0.5])


def lin(theta, x):
    return jnp.dot(theta, x)


def init(key):
    return jax.random.normal(key, (3,))


def test_sweep_is_one_seed_major_trainer_call_with_the_warm_up_start():
    key = jax.random.PRNGKey(1)
    run, L, th0 = wx.sweep(lin, init, X, Y, [0.01, 0.1], 2, 100, 1, key, True, 0.3)
    np.testing.assert_array_equal(L, [0.01, 0.1, 0.01, 0.1])
    keys = jax.random.split(key, 3)
    np.testing.assert_array_equal(th0[1], init(keys[0]))
    np.testing.assert_array_equal(th0[2], init(keys[1]))
    tr_g = float(jnp.mean(jnp.sum(X**2, 1)))  # Tr G = mean ||x||^2 for a linear model
    want = st.train(lin, th0, X, Y, L, steps=100, batch_size=1, key=keys[-1],
                    lr0=np.full(4, 0.5 / tr_g), warmup_steps=30, record_every=5)
    np.testing.assert_allclose(run.theta, want.theta, rtol=1e-10)


def test_measures_are_the_closed_form_gram_spectrum_and_nan_when_diverged():
    run = st.Run(jnp.stack([jnp.ones(3), jnp.zeros(3)]), None, jnp.array([False, True]), None)
    m = wx.measures(lin, run, X)
    ev = np.linalg.eigvalsh(np.asarray(X @ X.T) / 12)
    np.testing.assert_allclose(m[0], [ev.sum(), np.sqrt(np.sum(ev**2)), ev[-1]], rtol=1e-10)
    assert np.all(np.isnan(m[1]))


def test_per_seed_tables_and_spread():
    res = dict(L=np.array([0.1, 0.2, 0.1, 0.2]), ok=np.array([True, False, True, True]),
               v=np.array([1.0, 5.0, 3.0, 4.0]))
    table = wx.per_seed(res, res["v"], [0.1, 0.2])
    np.testing.assert_array_equal(table, [[1.0, np.nan], [3.0, 4.0]])
    np.testing.assert_array_equal(wx.per_lr_mean(res, "v", [0.1, 0.2]), [2.0, 4.0])
    assert wx.spread([1.0, np.nan, 3.0]) == 1.0


def _numpy_gd(lr, steps):
    Xn, Yn, w = np.asarray(X), np.asarray(Y), np.zeros(3)
    for _ in range(steps):
        w = w - lr * Xn.T @ (Xn @ w - Yn) / len(Xn)
    return w, 0.5 * np.mean((Xn @ w - Yn) ** 2)


def test_train_to_minimum_stops_at_the_rule_and_equals_plain_gd():
    run, done = wx.train_to_minimum(lin, jnp.zeros(3), X, Y, [0.1, 0.2], None, 1000, 1e-6,
                                    jax.random.PRNGKey(0))
    assert np.all(np.asarray(run.final_loss) < 1e-6) and done % 100 == 0 and done < 1000
    for lr, theta in zip([0.1, 0.2], np.asarray(run.theta)):  # GD on the linear model, in numpy
        np.testing.assert_allclose(theta, _numpy_gd(lr, done)[0], rtol=1e-9, atol=1e-12)
    assert max(_numpy_gd(lr, done - 100)[1] for lr in (0.1, 0.2)) >= 1e-6  # it did not stop late


def test_lr_figure_draws_three_panels():
    res = dict(L=np.array([0.1, 0.2]), ok=np.array([True, True]), sharp=np.ones((2, 3)),
               n=np.array([1.0, 2.0]), test=np.array([0.5, 0.4]),
               run=st.Run(None, None, jnp.array([False, True]), None))
    fig = wx.lr_figure(res, res, [0.1, 0.2], [0.1, 0.2], "n", "norm", "test", "t")
    assert len(fig.axes) == 3 and len(fig.axes[0].lines) >= 7


# ---------------------------------------------------------------- knobs and data


def _cfg(**kw):
    base = dict(dln_lrs=[0.001, 0.01], dln_gd_lrs=[0.01, 0.1], relu_sgd_lrs=[0.01, 0.1],
                relu_gd_lrs=[0.01, 0.1], digits_lrs=[0.1, 0.5], dln_sgd_steps=100, dln_gd_steps=100,
                relu_sgd_steps=100, relu_gd_steps=100, digits_gd_steps=100, digits_sgd_steps=100,
                num_instances=300, dln_seeds=1, relu_seeds=1, warmup_fraction=0.3, digits_n=100,
                digits_width=8, digits_batches=[4], real_data=False)
    return SimpleNamespace(**{**base, **kw})


@pytest.mark.parametrize("bad", [dict(dln_lrs=[0.01, 0.02]), dict(relu_gd_lrs=[0.1, 0.01]),
                                 dict(dln_gd_steps=150), dict(num_instances=10),
                                 dict(warmup_fraction=1.0), dict(digits_n=2000),
                                 dict(digits_batches=[100])])
def test_validate_rejects_inconsistent_knobs(bad):
    wx.validate(_cfg())
    with pytest.raises(ValueError):
        wx.validate(_cfg(**bad))


def test_validate_allows_fashion_mnist_sizes_only_with_real_data():
    wx.validate(_cfg(digits_n=5000, real_data=True))
    with pytest.raises(ValueError):
        wx.validate(_cfg(digits_n=5000, real_data=False))


def _fashion_like(n=30):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.int64)
    return ImageSet("fashion_mnist", images, labels, images[:5], labels[:5])


def test_companion_data_flattens_scales_and_one_hots_the_first_n_images():
    real = _fashion_like()
    X, Y, name = wx.companion_data(real, 12)
    assert name == "FashionMNIST" and X.shape == (12, 784) and Y.shape == (12, 10)
    np.testing.assert_allclose(np.asarray(X), real.X_train[:12].reshape(12, -1) / 255.0)
    assert float(X.min()) >= 0.0 and float(X.max()) <= 1.0
    np.testing.assert_array_equal(np.argmax(np.asarray(Y), 1), real.y_train[:12])
    np.testing.assert_array_equal(np.asarray(Y).sum(1), 1.0)
    with pytest.raises(ValueError, match="digits_n"):
        wx.companion_data(real, 31)
    Xp, Yp, proxy = wx.companion_data(None, 20)
    assert proxy == "digits proxy" and Xp.shape == (20, 64) and float(Xp.max()) <= 1.0
    assert "FashionMNIST (first 12)" in wx.companion_proxy(real, _cfg(digits_n=12))
    assert "digits" in wx.companion_proxy(None, _cfg())


# ---------------------------------------------------------------- Sections 1-4


def test_enumerated_operator_and_moments_in_closed_form():
    g = np.array([[0.7], [1.3]])  # 1-D: T = mean_i (1 - eta h_i)^2 (B = 1 with replacement)
    h = g[:, 0] ** 2
    T = wx.enumerated_operator(g, 0.4, 1, True)
    assert T.shape == (1, 1) and T[0, 0] == pytest.approx(np.mean((1 - 0.4 * h) ** 2), rel=1e-14)
    T4 = wx.enumerated_operator(g, 0.4, 1, True, order=4)
    assert T4[0, 0] == pytest.approx(np.mean((1 - 0.4 * h) ** 4), rel=1e-14)
    one = np.array([[0.5, -1.0]])  # n = 1: every batch is the same, T = A kron A
    A = np.eye(2) - 0.3 * np.outer(one[0], one[0])
    np.testing.assert_allclose(wx.enumerated_operator(one, 0.3, 2, True), np.kron(A, A), rtol=1e-14)
    # Delta_t = a^t r z with z ~ N(0, 1): E Delta^2 = a^(2t) r^2, E Delta^4 = 3 a^(4t) r^4
    a = 1 - 0.3 * 1.25
    m2, m4 = wx.exact_sq_norm_moments(np.array([[np.sqrt(1.25)]]), 0.3, 1, True, np.array([[2.0]]), 3)
    assert m2 == pytest.approx(a**6 * 4, rel=1e-12) and m4 == pytest.approx(3 * a**12 * 16, rel=1e-12)
    assert wx.operator_enumeration_error(np.random.default_rng(0)) < 1e-10


def test_monte_carlo_moments_agree_with_the_operator_within_their_standard_errors():
    check, key = wx.monte_carlo_moments(np.random.default_rng(1), jax.random.PRNGKey(2), 4000, 3,
                                        cases=((1, True),))
    z = (np.array(check.mean) - np.array(check.target)) / np.array(check.se)
    assert len(check.rows) == 1 and np.all(np.abs(z) < 4) and check.rows[0][2] > 1.0  # rho > 1
    assert not np.array_equal(np.asarray(key), np.asarray(jax.random.PRNGKey(2)))
    assert "| 1 | True |" in wx.moment_table(check, 3)


def test_trace_survey_bounds_and_the_equal_norm_collinear_case_attains_them():
    rng = np.random.default_rng(4)
    instances = [wx.random_instance(rng) for _ in range(20)]
    survey = wx.trace_survey(instances, edge_checks=5)
    assert survey.ratio[(1, True)].shape == (20, 2) and survey.ratio[(1, True)][:, 0].max() <= 1 + 1e-9
    assert all(v[:, 1].max() <= 1 + 1e-9 for v in survey.ratio.values())
    assert survey.edge_err < 1e-9 and survey.above_min > 0
    u = np.array([[1.0, 2.0]] * 3) * np.array([[1.0], [-1.0], [1.0]])  # collinear, equal norms: SGD = GD
    tight = wx.trace_survey([u], edge_checks=0)
    assert tight.ratio[(1, True)][0, 0] == pytest.approx(1.0, rel=1e-9)
    g6 = wx.six_sample_instance(instances, rng)
    assert g6.shape[0] == 6
    eta = wx.eta_star_by_batch(g6)
    assert all(np.all(np.diff(v) >= -1e-12) for v in eta.values())
    assert "far from tight" in wx.trace_table(survey)
    assert survey.worst(2, False, 1) == survey.ratio[(2, False)][:, 1].max()
    assert len(wx.trace_figure(survey, g6, eta).axes) == 3


def test_toy_experiment_reproduces_the_2018_criterion():
    toy = wx.toy_experiment(0.7, 20, jax.random.PRNGKey(0), steps=300)
    np.testing.assert_allclose(toy.rho, toy.closed, rtol=1e-9)
    assert toy.rho[0] > 1 > toy.rho[2] and abs(toy.x_gd - 1) < 1e-3
    assert toy.escaped >= 15 and 0 < toy.escape_low < toy.escaped / 20
    assert len(wx.toy_figure(toy, 0.7).axes) == 2
    assert f"**{toy.rho[0]:.4f}**" in wx.toy_note(toy, 0.7)


def test_imbalance_error_is_at_rounding_level():
    rng = np.random.default_rng(5)
    X, th = jnp.asarray(rng.standard_normal((9, 4))), jnp.asarray(rng.standard_normal(8))
    assert wx.imbalance_error(th, X, X @ jnp.ones(4), jax.random.PRNGKey(0)) < 1e-12


def test_identity_errors_are_at_rounding_level_and_nonzero_for_a_wrong_trace(monkeypatch):
    monkeypatch.setattr(wx, "imbalance_error", lambda th, X, y, key: 0.0)  # tested above
    rng = np.random.default_rng(7)
    Xd, Xr = jnp.asarray(rng.standard_normal((9, 5))), jnp.asarray(rng.standard_normal((8, 4)))
    keys = jax.random.split(jax.random.PRNGKey(0))
    err = wx.identity_errors(Xd, Xd @ jnp.ones(5), Xr, *keys, width=3)
    assert set(err) == {"dln_trace", "imbalance", "relu_trace"} and max(err.values()) < 1e-12
    monkeypatch.setattr(st, "relu_trace", lambda theta, X: 1.1 * st.gauss_newton_sharpness(
        st.relu_predict, theta, X).trace)  # a 10 % error must show as 0.1
    assert wx.identity_errors(Xd, Xd @ jnp.ones(5), Xr, *keys, width=3)["relu_trace"] == \
        pytest.approx(0.1, rel=1e-9)


def test_network_sweeps_pass_the_profile_plans(monkeypatch):
    seen = {}

    def fake(predict, init_fn, X, Y, plans, seeds, warmup_fraction):
        seen[predict] = (init_fn(jax.random.PRNGKey(0)).shape, plans, seeds, warmup_fraction)
        return {"SGD": {}, "GD": {}}

    monkeypatch.setattr(wx, "sgd_and_gd", fake)
    monkeypatch.setattr(wx, "add_dln_summaries", lambda res, X, b: None)
    monkeypatch.setattr(wx, "add_relu_summaries", lambda res, X, y: None)
    cfg = SimpleNamespace(dln_lrs=[0.1, 0.2], dln_gd_lrs=[0.3, 0.4], dln_sgd_steps=100,
                          dln_gd_steps=200, dln_seeds=2, relu_sgd_lrs=[0.5, 0.6],
                          relu_gd_lrs=[0.7, 0.8], relu_sgd_steps=300, relu_gd_steps=400,
                          relu_seeds=3, warmup_fraction=0.25)
    X = jnp.ones((6, 4))
    assert wx.dln_sweeps(X, X[:, 0], X[0], cfg, "ks", "kg") == {"SGD": {}, "GD": {}}
    wx.relu_sweeps(X, X[:, 0], X, X[:, 0], cfg, "ks", "kg", width=5)
    assert seen[st.dln_predict] == ((8,), {"SGD": ([0.1, 0.2], 100, 1, "ks", True),
                                           "GD": ([0.3, 0.4], 200, None, "kg", False)}, 2, 0.25)
    assert seen[st.relu_predict] == ((25,), {"SGD": ([0.5, 0.6], 300, 1, "ks", True),
                                             "GD": ([0.7, 0.8], 400, None, "kg", False)}, 3, 0.25)


# ---------------------------------------------------------------- Sections 5-8


def _res():
    return dict(L=np.array([0.1, 0.2, 0.1, 0.2]), ok=np.array([True, True, True, False]),
                sharp=np.array([[8.0, 1, 4], [6, 1, 9], [10, 1, 5], [1, 1, 1]]),
                l1=np.array([3.0, 2.0, 4.0, 1.0]), test=np.array([1.0, 2.0, 1.0, 0.0]),
                init=np.array([[30, 5.0], [30, 5.0], [40, 12.0], [40, 12.0]]),
                run=st.Run(None, None, jnp.array([False, False, False, True]),
                           jnp.array([1e-11, 1e-12, 1e-11, 1.0])))


def test_summaries_of_a_sweep():
    r = _res()
    assert wx.max_ratio(r, 2) == pytest.approx(0.9)  # 9 * 0.2 / 2
    assert wx.max_ratio(r, 0, np.array([True, False, False, True])) == pytest.approx(0.4)
    np.testing.assert_allclose(wx.last_lr_ratio(r, 2, [0.1, 0.2]), [0.9, np.nan])
    assert wx.converged_lrs(r, [0.1, 0.2]) == [[0.1, 0.2], [0.1]]
    assert wx.seed_trend(r, "l1", [0.1, 0.2]) == [pytest.approx(-1.0), pytest.approx(np.nan, nan_ok=True)]
    assert np.isnan(wx.seed_trend(r, "l1", [0.1, 0.2], converged_only=False)[1])
    flat_lrs, spreads = wx.gd_flat_spread(r, [0.1, 0.2])  # eta lambda_max(G(theta0)) < 2: 0.1 only
    assert flat_lrs == [0.1] and spreads == [0.0, 0.0, 0.0]
    r["path"], r["d"] = np.array([0.4, 0.3, 0.5, np.nan]), 100
    assert wx.max_path_ratio(r) == pytest.approx(0.5)
    table = wx.sweep_table({"GD": r}, wx.RELU_COLUMNS)
    assert table.count("\n") == 5 and "| GD | 0.2 | 0.600 | 0.900 | 0.500 |" in table


def test_relu_anchors_agree_with_dense_linear_algebra():
    rng = np.random.default_rng(6)
    m, d, n = 3, 4, 10
    X = jnp.asarray(rng.standard_normal((n, d)))
    theta = jnp.asarray(rng.standard_normal(m * (d + 1)))
    J = wx.relu_jacobian_numpy(np.asarray(theta), np.asarray(X))

    def f(t):  # the network in numpy, for central differences of the hand-written Jacobian
        return np.maximum(np.asarray(X) @ t[m:].reshape(m, d).T, 0) @ t[:m]

    eye = 1e-6 * np.eye(m * (d + 1))
    fd = np.stack([(f(np.asarray(theta) + e) - f(np.asarray(theta) - e)) / 2e-6 for e in eye], 1)
    np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-8)
    y = J[:, :m] @ np.asarray(theta[:m])  # f = sum_j a_j relu(w_j . x): an interpolating minimum, H = G
    ev = np.linalg.eigvalsh(J.T @ J / n)
    res = dict(ok=np.array([True, False]), run=st.Run(jnp.stack([theta, 0 * theta]), None, None, None),
               sharp=np.array([[1.0, 2.0, 3.0], [np.nan] * 3]))
    an = wx.relu_anchors(res, X, jnp.asarray(y), jax.random.PRNGKey(0), jax.random.PRNGKey(1), probes=30,
                         lanczos_steps=m * (d + 1))
    np.testing.assert_allclose(an.exact, [ev.sum(), np.sqrt(np.sum(ev**2)), ev[-1]], rtol=1e-10)
    np.testing.assert_array_equal(an.ours, [1.0, 2.0, 3.0])  # the converged run's own measures
    assert an.arpack == pytest.approx(ev[-1], rel=1e-8) and an.lanczos == pytest.approx(ev[-1], rel=1e-8)
    assert abs(float(an.hutchinson.mean) - ev.sum()) < 5 * float(an.hutchinson.stderr)
    assert "ARPACK" in wx.anchor_note(an)


def test_dln_notes_and_tables_render():
    r = {**_res(), "balance": np.ones(4)}
    flat_lrs, spreads = wx.gd_flat_spread(r, [0.1, 0.2])
    note = wx.dln_notes({"SGD": r, "GD": r}, [0.1, 0.2], [0.1, 0.2], flat_lrs, spreads)
    assert "GD's stability binds only at η = 0.2" in note and "0.900" in note
    assert wx.sweep_table({"SGD": r}, wx.DLN_COLUMNS).count("| SGD |") == 4


def test_companion_runs_one_init_gd_then_each_batch_size(monkeypatch):
    calls = []

    def fake_digits_run(predict, theta0, X, Y, lrs, batch_size, max_steps, min_loss, key, key_eig):
        calls.append((np.asarray(theta0), batch_size, max_steps, min_loss, np.asarray(key_eig)))
        return wx.DigitsRun(np.array([3.0, 1.0]), np.array([2.0, 1.0]), np.array([1e-4, 2e-4]), max_steps)

    monkeypatch.setattr(wx, "digits_run", fake_digits_run)
    Xc, Yc = jnp.ones((12, 4)), jnp.asarray(np.eye(10)[np.arange(12) % 10])
    runs, key = wx.companion_runs(Xc, Yc, 3, [0.5, 1.0], [4, 6], 200, 300, jax.random.PRNGKey(0))
    assert list(runs) == ["GD", 4, 6] and [c[1:4] for c in calls] == [
        (None, 200, wx.DIGITS_MIN_LOSS), (4, 300, wx.DIGITS_MIN_LOSS), (6, 300, wx.DIGITS_MIN_LOSS)]
    assert calls[0][0].shape == ((4 + 1) * 3 + (3 + 1) * 3 + (3 + 1) * 10,)
    assert all(np.array_equal(c[0], calls[0][0]) and np.array_equal(c[4], calls[0][4]) for c in calls)
    assert "SGD B=4" in wx.companion_table(runs, [0.5, 1.0])
    cfg = SimpleNamespace(digits_n=12, digits_width=3, digits_lrs=[0.5, 1.0], digits_batches=[4, 6],
                          digits_gd_steps=200, digits_sgd_steps=300)
    calls.clear()
    again, data, key2 = wx.companion_experiment(None, cfg, jax.random.PRNGKey(0))
    assert data == "digits proxy" and list(again) == ["GD", 4, 6] and len(calls) == 3
    assert calls[0][0].shape == ((64 + 1) * 3 + (3 + 1) * 3 + (3 + 1) * 10,)
    np.testing.assert_array_equal(key2, key)
    assert len(wx.companion_figure(runs, [0.5, 1.0], 12).axes) == 2
