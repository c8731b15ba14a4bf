"""Tests of paperlib.experiments.lu against independent truths."""

from types import SimpleNamespace

import jax
import matplotlib
import numpy as np
import pytest
from numpy.polynomial import Polynomial as P

jax.config.update("jax_enable_x64", True)
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from paperlib.experiments import lu  # noqa: E402

CFG = SimpleNamespace(seeds=2, steps=60, record_every=20, d=6, n=5, n_strong=4, m=2,
                      strong_norm=2.0, weak_norm=0.2, noise_norm=0.1, sigma0=0.2, lr_large=0.3,
                      lr_small=0.05, delta=0.2, n_test=50)


def test_validate_refuses_what_the_ranges_cannot_express():
    for bad in [dict(steps=70), dict(n_strong=5), dict(weak_norm=3.0), dict(lr_small=0.4),
                dict(d=2)]:
        with pytest.raises(ValueError):
            lu.validate(SimpleNamespace(**{**vars(CFG), **bad}))
    lu.validate(CFG)


def test_stability_threshold_is_the_closed_form_window_edge():
    cfg = SimpleNamespace(**{**vars(CFG), "m": 3, "strong_norm": 0.5})
    assert np.isclose(lu.stability_threshold(cfg), 3 / (4 * 0.5 ** 2), rtol=1e-10)


def test_strong_map_orbit_is_the_two_cycle_among_the_roots_of_g_of_g():
    c = 1.2
    g = P([0, 1]) * P([1 + c, -c]) ** 2  # f (1 - c (f - 1))^2
    roots = (g(g) - P([0, 1])).roots()
    real = np.sort(roots[np.abs(roots.imag) < 1e-9].real)
    cycle = np.setdiff1d(np.round(real, 9), np.round([0.0, 1.0, 1 + 2 / c], 9))
    orbit = lu.strong_map_orbit(c)
    np.testing.assert_allclose(np.unique(np.round(orbit, 9)), cycle, atol=1e-8)


def test_oscillation_window_and_summaries_on_hand_made_arrays():
    margin = np.array([0.1, 0.5, 0.9, 1.3, 0.6, 1.25, 0.7, 1.0])
    strong = np.array([1, 1, 1, 0, 1, 1, 1, 1], bool)
    phi = np.array([0.0, 0.01, 0.06, 0.2])  # reaches delta / 4 = 0.05 at record 2 = step 4
    assert lu.oscillation_window(margin, strong, phi, 0.2, 2) == (2, 4)
    assert lu.oscillation_window(margin, strong, phi * 0, 0.2, 2) == (2, 8)
    assert lu.oscillation_window(margin * 0, strong, phi, 0.2, 2) == (0, 4)
    coef = np.array([[0.3, -1.0], [0.2, 0.1]])  # (2, m): outputs 0.045 and 0.025
    assert np.isclose(lu.weak_output(coef), 0.025)
    mean, se, n = lu.floored_se(np.ones(4), 100)
    assert (mean, se, n) == (1.0, 0.05, 4)


def test_run_study_pairs_the_learning_rates_and_figures_draw():
    study = lu.run_study(CFG, jax.random.key(0))
    np.testing.assert_allclose(study.eta, [0.15, 0.025])  # lr * m / ||u||^2
    assert study.W.shape == (2, 2, 2, 2, 6) and study.trace.margin.shape == (2, 2, 60)
    np.testing.assert_array_equal(study.trace.drawn[0], study.trace.drawn[1])  # same order
    np.testing.assert_allclose(study.trace.weak_coef[0, :, 0], study.trace.weak_coef[1, :, 0])
    s = lu.summarise(study, CFG)
    assert s.osc_fraction.shape == (2, 2) and np.all((study.test_acc >= 0) & (study.test_acc <= 1))
    fig, axes = plt.subplots(2, 2)
    lu.margin_figure(study, CFG, axes[0])
    lu.coefficient_figure(study, CFG, axes[1])
    plt.close(fig)
