"""Protocols of the Tyurin notebook against the plain per-dataset, per-gamma library calls."""

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from paperlib import datasets  # noqa: E402
from paperlib import perceptron as pc  # noqa: E402
from paperlib.experiments import tyurin  # noqa: E402

GAMMAS = [0.1, 1.0, 10.0, 100.0]


def _sets():
    return [pc.signed_samples(*datasets.planted_margin(n, 6, 0.05, seed, 2.0))
            for n, seed in [(40, 0), (25, 1), (33, 2)]]


def test_padded_sweep_equals_separate_runs_on_each_dataset():
    Zs = _sets()
    t, ml = tyurin.padded_separation_sweep(Zs, GAMMAS, 300)
    for Z, t_row, ml_row in zip(Zs, t, ml):
        s = tyurin.step_size_sweep(Z, GAMMAS, 300)
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
