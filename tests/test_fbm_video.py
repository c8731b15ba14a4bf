"""The latent-SDE video model (paperlib/fbm_video.py) and its moving-digits proxy data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from paperlib import datasets, fbm_video

jax.config.update("jax_enable_x64", True)


def test_moving_digits_keeps_the_digit_inside_and_moves_it_slowly():
    video = datasets.moving_digits(6, 12, 24, seed=3, max_speed=2)
    assert video.shape == (6, 12, 24, 24) and video.min() >= 0.0 and video.max() <= 1.0
    mass = video.sum(axis=(2, 3))
    np.testing.assert_allclose(mass, mass[:, :1] * np.ones((1, 12)), rtol=1e-12)  # never clipped by the border
    rows, cols = np.arange(24)[:, None], np.arange(24)[None, :]
    centre = np.stack([(video * rows).sum(axis=(2, 3)), (video * cols).sum(axis=(2, 3))], -1) / mass[..., None]
    assert np.max(np.abs(np.diff(centre, axis=1))) <= 2.0 + 1e-9  # |velocity| <= max_speed per axis
    assert np.any(np.abs(np.diff(centre, axis=1)) > 0.5)  # something moves


def test_moving_digits_is_deterministic_and_validates():
    np.testing.assert_array_equal(datasets.moving_digits(2, 5, 20, seed=1), datasets.moving_digits(2, 5, 20, seed=1))
    with pytest.raises(ValueError):
        datasets.moving_digits(2, 5, 16, seed=1)  # canvas not larger than the 16-px digit
    with pytest.raises(ValueError):
        datasets.moving_digits(0, 5, 24, seed=1)


def test_setup_guards_euler_step_and_brownian_case():
    with pytest.raises(ValueError):
        fbm_video.video_setup(5, 20.0, 10, 2, 8, 4, frame_dt=0.1, substeps=1)  # gamma_max dt = 2
    with pytest.raises(ValueError):
        fbm_video.video_setup(5, 10.0, 3, 2, 8, 4)
    bm = fbm_video.video_setup(0, 10.0, 10, 2, 8, 4)
    assert bm.gammas == (0.0,) and not bm.fractional
    assert float(fbm_video.hurst_of({}, bm)) == 0.5  # the Brownian model reads no parameter for H


def test_context_interpolates_linearly_between_frames():
    g = jnp.arange(12.0).reshape(4, 3)
    np.testing.assert_allclose(fbm_video._context_at(g, 0.2, 0.1), g[2], atol=1e-12)
    np.testing.assert_allclose(fbm_video._context_at(g, 0.25, 0.1), 0.5 * (g[2] + g[3]), atol=1e-12)
    np.testing.assert_allclose(fbm_video._context_at(g, 0.3, 0.1), g[3], atol=1e-12)


def loss_and_path_kl(params, key, batch, setup):
    """``video_loss`` with each sequence's path KL as auxiliary output."""
    keys = jax.random.split(key, batch.shape[0])
    sq, kl0, kl = jax.vmap(fbm_video.video_loss_terms, (None, 0, 0, None))(params, keys, batch, setup)
    return jnp.mean(sq + kl0 + kl), kl


def test_initial_posterior_equals_prior_and_h_gets_a_gradient():
    """At initialisation the control's last layer is zero, so the path KL is exactly 0; the loss depends
    on H through omega(H) in the fractional model (the Brownian one: see the training test)."""
    frames = jnp.asarray(datasets.moving_digits(2, 4, 20, seed=0).reshape(2, 4, -1))
    setup = fbm_video.video_setup(3, 10.0, 4, 2, 8, 4)
    params = fbm_video.video_init(jax.random.PRNGKey(1), setup, frames.shape[2])
    grad, kl = jax.jit(jax.grad(loss_and_path_kl, has_aux=True), static_argnums=3)(
        params, jax.random.PRNGKey(3), frames, setup)
    assert np.all(np.asarray(kl) == 0.0)
    assert abs(float(grad["h_raw"])) > 0
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(grad))


def test_short_training_lowers_the_loss_and_leaves_brownian_h_alone():
    """The Brownian model's loss does not depend on h_raw: a zero gradient, so Adam leaves it at 0."""
    videos = datasets.moving_digits(32, 4, 20, seed=2).reshape(32, 4, -1)
    setup = fbm_video.video_setup(0, 10.0, 4, 2, 16, 8)
    params, losses = fbm_video.train_video(jax.random.PRNGKey(0), videos, setup, 60, 8, 3e-3)
    losses = np.asarray(losses)
    assert np.all(np.isfinite(losses)) and losses[-10:].mean() < 0.8 * losses[:10].mean()
    assert float(params["h_raw"]) == 0.0
    with pytest.raises(ValueError):
        fbm_video.train_video(jax.random.PRNGKey(0), videos, setup, 10, 64, 3e-3)  # batch > N
