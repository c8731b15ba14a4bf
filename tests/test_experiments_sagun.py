"""Tests of paperlib.experiments.sagun against independent truths."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

from paperlib import hessian as hs  # noqa: E402
from paperlib import rmt  # noqa: E402
from paperlib.experiments import sagun  # noqa: E402

CFG = SimpleNamespace(seeds=2, n_samples=40, dim=3, ks=[2, 3], width=8, widths=[4, 8], stds=[1.0, 3.0],
                      k_fixed=2, lr=0.5, steps=20, window=5, n_digits=50, digits_width=4, lb_steps=5,
                      sb_batch=10, sb_epochs=1, sb_lr=0.5, n_alphas=3, lanczos_steps=10)


def test_validate_refuses_what_the_ranges_cannot_express():
    for bad in [dict(ks=[3, 2]), dict(widths=[8]), dict(stds=[2.0, 2.0]), dict(window=200),
                dict(window=3), dict(sb_batch=50), dict(lanczos_steps=10**6),
                dict(lanczos_steps=3)]:
        with pytest.raises(ValueError):
            sagun.validate(SimpleNamespace(**{**vars(CFG), **bad}))
    sagun.validate(CFG)


def test_blobs_are_standardised_with_k_balanced_labels():
    X, y = sagun.blobs(3, 60, 4, 1.0, 0)
    np.testing.assert_allclose(X.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(X.std(0), 1, atol=1e-12)
    assert np.bincount(y).tolist() == [20, 20, 20]


def test_train_gd_equals_hand_written_gradient_steps_and_sweep_spectra_are_eigh_of_its_network():
    cfg = SimpleNamespace(**{**vars(CFG), "seeds": 1})
    spectra = sagun.sweep(cfg, sagun.k_settings(cfg)[:1], jax.random.key(0))
    theta, X, y, sizes = sagun.network(cfg, spectra[0])
    want = rmt.init_mlp(jax.random.fold_in(jax.random.key(0), 0), sizes)
    grad = jax.jit(jax.grad(hs.mean_loss), static_argnums=3)
    for _ in range(cfg.steps):
        want = want - cfg.lr * grad(want, X, y, sizes)
    np.testing.assert_allclose(theta, want, rtol=1e-10)
    assert spectra[0].loss == pytest.approx(float(hs.mean_loss(want, X, y, sizes)), rel=1e-10)
    H = hs.exact_hessian(theta, X, y, sizes)
    np.testing.assert_allclose(spectra[0].eig_H, np.linalg.eigvalsh(H)[::-1], atol=1e-12)
    assert spectra[0].P == rmt.mlp_num_params(sizes)
    table = sagun.per_seed(spectra, sagun.k_settings(cfg)[:1], lambda sp: sp.P)
    assert table.shape == (1, 1) and table[0, 0] == spectra[0].P


def test_h_vs_g_deviation_on_hand_made_spectra():
    st = sagun.Setting(2, 4, 1.0)
    sp = sagun.Spectrum(st, 0, 0.0, 3, np.array([1.1, 0.45, 0.0]), np.array([1.0, 0.5, 0.0]), np.zeros(3))
    assert sagun.h_vs_g_deviation(sp, 2) == pytest.approx(0.1)


def test_digits_proxy_is_a_standardised_subset_with_ten_classes():
    X, y = sagun.digits_proxy(200, 0)
    assert X.shape == (200, 64) and set(y.tolist()) == set(range(10))
    assert np.abs(X.mean(0)).max() < 1e-12
