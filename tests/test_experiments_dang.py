"""Tests of paperlib.experiments.dang against independent truths."""

from types import SimpleNamespace

import jax
import matplotlib
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)
matplotlib.use("Agg")

from paperlib import neural_collapse as nc  # noqa: E402
from paperlib.experiments import dang  # noqa: E402

CFG = SimpleNamespace(seeds=2, depths=[1, 2], width=6, counts=[6, 3, 2, 1], lam=5e-3, lr=0.05,
                      init_std=0.4, steps=3000, minority_fraction=0.3, mlp_width=12,
                      mlp_relu_depth=1, mlp_linear_depth=2, mlp_steps=200, mlp_lr=1e-2,
                      mlp_lam=1e-3, mlp_seeds=2, record_every=50)


@pytest.fixture(scope="module")
def runs():
    return dang.ufm_runs(CFG, jax.random.key(0))


def test_validate_refuses_what_the_ranges_cannot_express():
    for bad in [dict(counts=[3, 2, 2]), dict(width=3), dict(depths=[3, 1]), dict(mlp_steps=210)]:
        with pytest.raises(ValueError):
            dang.validate(SimpleNamespace(**{**vars(CFG), **bad}))
    dang.validate(CFG)


def test_ufm_runs_cover_every_setting_and_reach_the_one_layer_closed_form(runs):
    assert len(runs.runs) == (3 + 1) * len(CFG.depths) * CFG.seeds
    assert runs.counts.tolist() == [[3, 3, 3, 3], [6, 3, 2, 1]]
    gof = dang.gof_errors(runs, CFG.lam)
    one = gof.depth == 1
    want = np.sqrt(nc.gof_closed_form(CFG.counts, 1, CFG.lam, CFG.lam).w_sq)
    np.testing.assert_allclose(gof.w_ratio[one], np.tile(want / want[0], (one.sum(), 1)), rtol=1e-4)


def test_collapse_table_finds_the_predicted_frames_at_depth_one(runs):
    table = dang.collapse_table(runs)
    assert table[("mse", 2)].shape == (CFG.seeds, 2, 4)
    for loss in ("mse", "mse_bias"):
        assert table[(loss, 1)].max() < 1e-3


def test_layer_metrics_are_zero_on_a_hand_built_collapsed_network():
    """An orthogonal frame by construction: H = rows of I (collapsed), W_2 W_1 = c I."""
    k, per = 3, 2
    labels = np.repeat(np.arange(k), per)
    setting = nc.make_setting("mse", 2, 2, 1e-3, 1e-3, 0.1)
    p = nc.init_params(jax.random.key(0), setting, k * per, k, k, 0.1)
    p = p._replace(H=np.eye(k)[labels] * 0.7, hidden=2.0 * np.eye(k)[None], last=0.5 * np.eye(k))
    assert dang.layer_metrics(p, labels, 2, "mse").max() < 1e-12
    assert dang.layer_metrics(p, labels, 2, "mse_bias").max() > 0.1  # not an ETF


def test_structured_ce_objectives_agree_with_the_model_objective_at_their_optimum():
    """The ETF family's formula equals nc.objective on an explicit ETF network (M = 1)."""
    k, per, lam = 4, 2, 5e-3
    etf_f, _ = dang.structured_ce_objectives(k, k * per, 1, lam, lam)
    labels = np.repeat(np.arange(k), per)
    E = nc.simplex_etf(k)  # unit columns
    setting = nc.make_setting("ce", 1, 1, lam, lam, 0.1)

    def f(t, a):
        p = nc.Params(a * E.T[labels], np.zeros((0, k, k)), t * np.sqrt((k - 1) / k) * E.T,
                      np.zeros(k))
        return nc.objective(p, np.eye(k)[labels], setting)

    t, a = np.meshgrid(np.linspace(0.5, 6, 221), np.linspace(0.05, 3, 119))
    best = float(jax.jit(jax.vmap(f))(t.ravel(), a.ravel()).min())
    assert etf_f <= best + 1e-12 and best - etf_f < 2e-3  # the grid brackets the 2-D optimum


def test_digits_proxy_shapes_and_imbalance():
    X, y = dang.digits_imbalanced(CFG.minority_fraction, 0)
    counts = np.bincount(y)
    assert counts[:5].min() > 3 * counts[5:].max() * 0.5 and X.shape == (len(y), 64)
    res = dang.digits_proxy(CFG, jax.random.key(1), X, y)
    records = CFG.mlp_steps // CFG.record_every
    assert res.nc1.shape == (2, records + 1, 2) and res.cos.shape == (2, records)
    assert np.all(res.nc1[:, -1] < res.nc1[:, 0])  # training collapses the features


def test_figures_draw(runs):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 4)
    dang.collapse_figure(dang.collapse_table(runs), CFG.depths, axes[:3])
    dang.gof_figure(dang.gof_errors(runs, CFG.lam), runs.counts[1], CFG.lam, axes[3])
    plt.close(fig)
