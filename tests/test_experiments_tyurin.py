"""Protocols of the Tyurin notebook against the plain per-dataset, per-gamma library calls, closed
forms and the paper's counts; the real-data path on tiny synthetic arrays shaped like the real sets."""

from types import SimpleNamespace

import jax
import matplotlib
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)
matplotlib.use("Agg")

from paperlib import datasets  # noqa: E402
from paperlib import perceptron as pc  # noqa: E402
from paperlib.experiments import tyurin  # noqa: E402
from paperlib.image_sets import ImageSet  # noqa: E402

GAMMAS = [0.1, 1.0, 10.0, 100.0]


def _sets():
    return [pc.signed_samples(*datasets.planted_margin(n, 6, 0.05, seed, 2.0))
            for n, seed in [(40, 0), (25, 1), (33, 2)]]


def test_padded_sweep_equals_separate_runs_on_each_dataset():
    Zs = _sets()[:2]  # n = 40 and 25: padding and mask exercised; T = 200 as below (one compile)
    t, ml = tyurin.padded_separation_sweep(Zs, GAMMAS, 200)
    for Z, t_row, ml_row in zip(Zs, t, ml):
        s = tyurin.step_size_sweep(Z, GAMMAS, 200)
        np.testing.assert_array_equal(t_row, s.sep)
        np.testing.assert_allclose(ml_row, s.max_loss, rtol=1e-12)
    assert np.any(t > 0) and np.any(t < 0)  # both outcomes are exercised


def test_step_size_sweep_summary_matches_its_traces():
    Z = _sets()[0]
    s = tyurin.step_size_sweep(Z, GAMMAS, 200)
    for j, g in enumerate(GAMMAS):
        tr = pc.lr_gd(Z, g, 200)
        assert s.sep[j] == pc.separation_time(tr)
        loss = np.asarray(tr.loss)
        expected = loss[:s.sep[j]].max() if s.sep[j] > 0 else loss.max()
        np.testing.assert_allclose(s.max_loss[j], expected, rtol=1e-12)
        assert s.t_sep[j] == (200 if s.sep[j] < 0 else s.sep[j])


def test_log_envelope_keeps_every_bin_extreme_and_thins_long_series():
    y = np.random.default_rng(1).standard_normal(5000)
    t, v = tyurin.log_envelope(y, bins=100)
    assert len(t) <= 200 and np.all(np.diff(t) > 0)
    np.testing.assert_array_equal(v, y[t - 1])  # points of the series, at their own iterations
    assert v.max() == y.max() and v.min() == y.min()
    t_short, v_short = tyurin.log_envelope(y[:20], bins=100)  # bins finer than one step: all points
    np.testing.assert_array_equal(t_short, np.arange(1, 21))


# --------------------------------------------------------------------------------------------
# Settings, data sets and the real-data path (tiny synthetic arrays shaped like the real sets)
# --------------------------------------------------------------------------------------------

GOOD = dict(gammas=[0.1, 1.0], num_steps=10, digit_pairs=[[3, 8]], planted_shapes=[[30, 4]],
            worst_case_sizes=[10, 30], real_classes=[0, 1], real_size=20)


@pytest.mark.parametrize("bad", [dict(gammas=[0.0]), dict(num_steps=0), dict(worst_case_sizes=[9]),
                                 dict(digit_pairs=[[3, 3]]), dict(digit_pairs=[[3, 10]]),
                                 dict(real_classes=[1]), dict(planted_shapes=[[10, 1]]),
                                 dict(real_size=1)])
def test_validate_rejects_bad_settings(bad):
    tyurin.validate(SimpleNamespace(**GOOD))  # the good settings pass
    with pytest.raises(ValueError):
        tyurin.validate(SimpleNamespace(**(GOOD | bad)))


def _image_set(name, shape, n_per_class=12, seed=0):
    """A tiny ImageSet shaped like the real one: uint8 images of ``shape``, classes 0..9."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), n_per_class)
    X = rng.integers(0, 256, size=(y.size, *shape), dtype=np.uint8)
    return ImageSet(name, X, y, X[:5], y[:5])


@pytest.mark.parametrize("shape", [(28, 28), (32, 32, 3)])
def test_image_pair_flattens_scales_and_picks_the_classes(shape):
    s = _image_set("x", shape)
    A, y = tyurin.image_pair(s.X_train, s.y_train, (2, 7), 20, seed=3)
    assert A.shape == (20, int(np.prod(shape))) and A.dtype == np.float64
    assert A.min() >= 0.0 and A.max() <= 1.0
    assert np.sum(y == 1) == 10 and np.sum(y == -1) == 10
    # every row is one of the chosen images, /255, with the label of its class
    rows = {tuple(r): c for r, c in zip(s.X_train.reshape(len(s.y_train), -1) / 255.0, s.y_train)}
    assert all(rows[tuple(a)] == (2 if lab > 0 else 7) for a, lab in zip(A, y))
    A2, y2 = tyurin.image_pair(s.X_train, s.y_train, (2, 7), 20, seed=3)
    np.testing.assert_array_equal(A, A2)  # seeded
    _, y_imb = tyurin.image_pair(s.X_train, s.y_train, (2, 7), 20, seed=3, keep_fraction=0.2)
    assert np.sum(y_imb == 1) == 10 and np.sum(y_imb == -1) == 2
    with pytest.raises(ValueError, match="fewer than"):
        tyurin.image_pair(s.X_train, s.y_train, (2, 7), 40, seed=3)
    with pytest.raises(ValueError):
        tyurin.image_pair(s.X_train[0], s.y_train, (2, 7), 20, seed=3)


def test_real_sets_join_the_data_only_when_loaded():
    real = {"fashion_mnist": _image_set("fashion_mnist", (28, 28)),
            "cifar10": _image_set("cifar10", (32, 32, 3), seed=1)}
    cfg = SimpleNamespace(**GOOD)
    found = tyurin.real_datasets(real, cfg.real_classes, cfg.real_size, 0)
    assert list(found) == ["FashionMNIST 0-1", "FashionMNIST 0-1 imbalanced", "CIFAR-10 0-1"]
    assert found["CIFAR-10 0-1"][0].shape == (20, 3072)
    assert np.sum(found["FashionMNIST 0-1 imbalanced"][1] < 0) == 1  # 10% of 10, at least one
    data = tyurin.build_datasets(cfg, 0, found)
    assert list(data)[:5] == ["worst_case", "two_point", "digits 3-8", "planted 30x4",
                              "FashionMNIST 0-1"]
    assert tyurin.real_datasets({"fashion_mnist": None, "cifar10": None}, [0, 1], 20, 0) == {}
    assert "CIFAR-10 0-1" in tyurin.proxy_label(list(found))
    assert "real" not in tyurin.proxy_label([])


def test_table1_real_rows_on_real_shaped_sets():
    A = np.vstack([np.full((3, 4), 0.5), np.full((3, 4), -0.5)]) + np.eye(6, 4) * 0.1
    y = np.repeat([1.0, -1.0], 3)
    Z = {"FashionMNIST 0-1": pc.signed_samples(A, y), "planted 6x4": pc.signed_samples(A, y),
         "CIFAR-10 0-1": pc.signed_samples(A, y)}
    text = tyurin.table1_real_rows(Z, 50)
    lines = text.splitlines()
    assert len(lines) == 2 + 10 and "planted" not in text  # 5 rows per real set
    assert "| 2778 |" in text and "| – |" in text  # the paper's balanced count; CIFAR has none
    assert "not reproduced" in tyurin.table1_real_rows({"planted 6x4": Z["planted 6x4"]}, 50)


def test_certify_rejects_a_set_not_separable_without_intercept():
    xor = (np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]),
           np.array([1.0, 1.0, -1.0, -1.0]))
    Z, cert = tyurin.certify({"two_point": pc.two_point_dataset()})
    assert cert["two_point"].separable
    with pytest.raises(ValueError, match="not linearly separable"):
        tyurin.certify({"xor": xor})


# --------------------------------------------------------------------------------------------
# Protocols against closed forms, the paper's numbers and direct library calls
# --------------------------------------------------------------------------------------------


def test_table1_counts_reproduce_the_worst_case_row():
    Zw = pc.signed_samples(*pc.worst_case_dataset(1000))
    assert tyurin.table1_counts(Zw, tyurin.TABLE1_WORST_CASE, 400) == [2, 2, 16, 157, 308]


def test_worst_case_times_follow_the_closed_form():
    times, closed = tyurin.worst_case_times([37, 1000])  # n = 1000: the shape compiled above
    assert closed == [(3 * n + 2) // 10 + 1 for n in (37, 1000)] == [12, 301]
    assert times["Batch Perceptron"] == closed
    assert times["Normalized Batch Perceptron"] == [2, 2] and times["LR+GD, γ=100"][1] == 308
    assert "301 iterations at n = 1000 (closed form 301)" in tyurin.worst_case_note(
        [37, 1000], times, closed) and "[2] for every n" in tyurin.worst_case_note(
        [37, 1000], times, closed)


def test_two_point_study_matches_theorem_4_1():
    tp = tyurin.two_point_study([1.0, 100.0])
    np.testing.assert_allclose(tp.theta[:, 1], np.outer([1.0, 100.0], [0.5, 0.75]), rtol=1e-14)
    f1 = 0.5 * (np.logaddexp(0, tp.gammas / 4) + np.logaddexp(0, -3.5 * tp.gammas))
    np.testing.assert_allclose(tp.loss[:, 1], f1, rtol=1e-12)
    np.testing.assert_allclose(tp.theta[1, 2] / 100, [1.0, 0.25], atol=1e-6)
    Z2 = np.array([[1.0, -1.0], [1.0, 4.0]])  # the two points, by hand: margins of (1, 0.25)
    assert tyurin.min_normalized_margin(Z2, [[1.0, 0.25], [2.0, 0.5]]) == pytest.approx(
        0.75 / np.hypot(1.0, 0.25))


def test_bound_ratios_are_observed_over_bound():
    Z = {"worst_case": pc.signed_samples(*pc.worst_case_dataset(1000)), "small": _sets()[0]}
    cert = {k: pc.margin_certificate(z) for k, z in Z.items()}
    ratio, rows = tyurin.bound_ratios(Z, cert)
    assert ratio["thm6.1"].shape == (2, len(tyurin.BOUND_GAMMAS)) and len(rows) == 8
    z, c = Z["small"], cert["small"]
    nov = pc.perceptron_bound(c.radius, c.mu_upper)
    expected = pc.steps_to_separate(z, "normalized_batch_perceptron", int(nov) + 1) / nov
    np.testing.assert_allclose(ratio["thm5.3"][1], expected)
    assert all(np.all(r <= 1.0) for r in ratio.values())


def test_sweep_measures_match_their_definitions():
    Zs = {"a": _sets()[0]}
    sweeps = {"a": tyurin.step_size_sweep(Zs["a"], [0.01, 0.1, 10.0, 100.0], 200)}  # as GAMMAS
    m = tyurin.sweep_measures(Zs, sweeps, [0.01, 0.1, 10.0, 100.0])
    s = sweeps["a"]
    np.testing.assert_allclose(m.speed[0], s.t_sep[2:] / s.t_sep[:2].min())
    np.testing.assert_allclose(m.lossier[0], s.max_loss[2:] / s.max_loss[:2].max())
    g = np.asarray(s.trace.grad_norm[3])
    assert m.grad_up[0] == pytest.approx(pc.until_separation(g, s.sep[3]).max() / g[0])
    assert m.two_over_L["a"] == pytest.approx(2 / pc.smoothness_constant(Zs["a"]))
    assert m.stable_rise <= 1e-10  # GD with γ < 2/L: ‖∇f‖ non-increasing (cocoercivity)
    assert "| a |" in tyurin.sweep_table(sweeps, m, [0.01, 0.1, 10.0, 100.0])


def test_scaled_loss_gap_within_the_closed_form_bound():
    Z = _sets()[0]
    theta = pc.lr_gd(Z, 1.0, 3).theta_final
    scales = np.array([1.0, 10.0, 100.0])
    gap = tyurin.scaled_loss_gap(theta, Z, scales)
    m = np.asarray(Z) @ np.asarray(theta)
    np.testing.assert_allclose(gap, [np.mean(np.logaddexp(0, -s * np.abs(m))) / s for s in scales],
                               rtol=1e-10)
    assert np.all(gap >= 0) and np.all(gap <= np.log(2) / scales)
    note = tyurin.scaled_loss_note(theta, Z, scales, gap)
    assert f"{gap[2]:.2g} (bound ln 2 / s = 0.0069)" in note
    assert f"{np.min(np.abs(m)):.2g} > 0" in note


def test_perceptron_race_and_hygiene_and_anchor():
    rows = tyurin.perceptron_race([[3, 8]], seed=0)  # the shapes test_perceptron compiles for
    assert rows[0] == ("3-8", "balanced", 86, 49)  # the brief's counts on digits 3-8 (Sec. 4)
    assert [r[1] for r in rows] == ["balanced", "imbalanced"] and min(rows[1][2:]) > 0
    Zw = pc.signed_samples(*pc.worst_case_dataset(1000))
    assert tyurin.normalized_stays_finite(Zw) == [True, True]
    xor = (np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]),
           np.array([1.0, 1.0, -1.0, -1.0]))
    assert tyurin.sklearn_separates({"two": pc.two_point_dataset(), "xor": xor}) == [True, False]


def test_plot_helpers_draw():
    Z = {"a": _sets()[0]}  # shapes, gammas and horizon of the tests above: compiled once
    sweeps = {"a": tyurin.step_size_sweep(Z["a"], GAMMAS, 200)}
    m = tyurin.sweep_measures(Z, sweeps, GAMMAS)
    red = {"a": pc.Reduction(5, np.array([0.1, 1e-12]), 0.01, np.array([5, 5]))}
    ratio = {k: np.array([0.5]) for k in tyurin.BOUND_THEOREMS} | {"thm6.1": np.full((1, 4), 0.5)}
    figs = [tyurin.sweep_figure(Z, sweeps, GAMMAS, 200),
            tyurin.separation_figure(Z, sweeps, GAMMAS, 200, m.two_over_L),
            tyurin.reduction_figure(Z["a"], red, [1e2, 1e8], "a"),
            tyurin.bounds_figure(ratio, ["a"]), tyurin.two_point_figure(tyurin.two_point_study([1.0])),
            tyurin.worst_case_figure([10], {"x": [4]}, [4]),
            tyurin.table_figure(tyurin.TABLE1_WORST_CASE, [2, 2, 16, 157, 308], "t"),
            tyurin.scaled_loss_figure(np.array([1.0, 10.0]), np.array([0.1, 0.01]), "a"),
            tyurin.race_figure([("0-1", "balanced", 3, 2), ("0-1", "imbalanced", 4, 5)])]
    assert "1 of 1 balanced and 0 of 1 imbalanced" in tyurin.race_summary(
        [("0-1", "balanced", 3, 2), ("0-1", "imbalanced", 4, 5)])
    assert "T = 5" in tyurin.reduction_summary(red, [1e2, 1e8])
    assert "thm6.1 0.5" in tyurin.bounds_summary(ratio, [("a", "thm3.3", 1, 2)])
    assert all(isinstance(f, matplotlib.figure.Figure) for f in figs)
    matplotlib.pyplot.close("all")
