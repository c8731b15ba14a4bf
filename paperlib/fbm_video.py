"""Latent-SDE video model of Daems et al. 2024 (Sec. 5.2, App. E; Fig. 4), driven by MA-fBM or by
Brownian motion, at CPU scale: dense layers stand in for the official conv encoder/decoder.

Frames o_i -> encoder -> h_i -> content w (from the mean of h) and context g_i (a width-3 temporal
window of h; g(t) interpolated linearly between frames) -> posterior latent SDE
dX = (b(X) + sigma u(t, X, Y, g(t)) * sum(omega)) dt + sigma dB_hat_H, X(0) ~ q(x0 | h_0..h_2)
-> decoder([w, X(t_i)]) -> reconstructed frame. Loss per sequence (the official code's): sum of
squared pixel errors + KL(q(x0) || N(0, I)) + 1/2 int |u|^2 dt. The path KL is *summed* over latent
dimensions (the official training code averages it, brief pitfall P4). H = sigmoid(h_raw) is learned
through omega(H) (Sec. 3.3); the Brownian baseline uses gammas = (0,), omega = (1,), type II.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from paperlib import fbm


class VideoSetup(NamedTuple):
    """Static configuration (hashable, so one compiled training loop serves a setup)."""

    gammas: tuple  # OU speeds of MA-fBM; (0.0,) for the Brownian model
    fractional: bool  # learn H through omega(H) (type I MA-fBM) or use Brownian noise
    T_omega: float  # horizon of the omega optimisation (official: ts[-1])
    frame_dt: float  # time between frames (official: 0.1)
    substeps: int  # Euler steps per frame (official: 3)
    num_latents: int
    width: int  # hidden width of every MLP
    features: int  # size of h_i, g_i and the content vector w


def video_setup(K: int, gamma_max: float, num_frames: int, num_latents: int, width: int, features: int,
                frame_dt: float = 0.1, substeps: int = 3) -> VideoSetup:
    """Setup of the latent video model (Sec. 5.2, App. E) with MA-fBM of K OU processes.

    Args:
        K: OU processes of MA-fBM (Sec. 3); 0 gives the Brownian baseline.
        gamma_max: largest speed of the geometric grid (``fbm.gamma_grid``).
        num_frames: frames per clip (>= 4); fixes the omega horizon (num_frames - 1) frame_dt.
        num_latents, width, features: latent dimension, MLP width, size of h_i, g_i and w.
        frame_dt, substeps: time between frames and Euler steps per frame (official 0.1, 3).

    Returns:
        A hashable :class:`VideoSetup`.

    Raises:
        ValueError: on bad sizes or an unstable Euler step (gamma_max dt >= 0.5).
    """
    if min(num_frames - 3, num_latents, width, features, substeps) < 1 or K < 0 or frame_dt <= 0:
        raise ValueError("need num_frames >= 4, K >= 0 and positive latents, width, features, substeps, frame_dt")
    gammas = (0.0,) if K == 0 else tuple(float(g) for g in fbm.gamma_grid(K, gamma_max=gamma_max))
    fbm.check_euler_step(np.asarray(gammas), frame_dt / substeps)
    return VideoSetup(gammas, K > 0, frame_dt * (num_frames - 1), frame_dt, substeps, num_latents, width, features)


def video_init(key: jax.Array, setup: VideoSetup, num_pixels: int) -> dict:
    """Parameters of every network (Fig. 4): encoder, content, context, initial, drift, control,
    decoder, plus log sigma (D,) and h_raw (). The control's last layer starts at zero (posterior =
    prior) and H = sigmoid(h_raw) at 0.5.

    Args:
        key: PRNG key; setup: the model's :class:`VideoSetup`; num_pixels: pixels per frame.

    Returns:
        A dict pytree of parameters.
    """
    D, K, F, W = setup.num_latents, len(setup.gammas), setup.features, setup.width
    k = jax.random.split(key, 7)
    return {"encoder": fbm.mlp_init(k[0], [num_pixels, W, F], zero_last=False),
            "content": fbm.mlp_init(k[1], [F, W, F], zero_last=False),
            "context": fbm.mlp_init(k[2], [3 * F, W, F], zero_last=False),
            "initial": fbm.mlp_init(k[3], [3 * F, W, 2 * D]),
            "drift": fbm.mlp_init(k[4], [D, W, D]),
            "control": fbm.mlp_init(k[5], [D + D * K + F, W, D]),
            "decoder": fbm.mlp_init(k[6], [F + D, W, num_pixels], zero_last=False),
            "log_sigma": jnp.zeros(D), "h_raw": jnp.zeros(())}


def hurst_of(params: dict, setup: VideoSetup) -> jax.Array:
    """The learned Hurst index H = sigmoid(h_raw) (Sec. 3.3); 0.5 for the Brownian model.

    Args:
        params: ``video_init`` parameters (not read for the Brownian model); setup: the model.

    Returns:
        A scalar array.
    """
    return fbm.hurst_of(params) if setup.fractional else jnp.asarray(0.5)


def _encode(params, frames):
    """Per-frame features h (T, F), content w (F,) and context g (T, F) from a width-3 window of h."""
    h = jnp.tanh(fbm.mlp_apply(params["encoder"], frames))
    w = fbm.mlp_apply(params["content"], jnp.mean(h, axis=0))
    padded = jnp.concatenate([h[:1], h, h[-1:]])
    g = fbm.mlp_apply(params["context"], jnp.concatenate([padded[:-2], padded[1:-1], padded[2:]], axis=1))
    return h, w, g


def _context_at(g, t, frame_dt):
    """g(t): linear interpolation of the frame contexts g_i at t_i = i frame_dt."""
    s = jnp.clip(t / frame_dt, 0.0, g.shape[0] - 1.0)
    i = jnp.minimum(jnp.floor(s).astype(int), g.shape[0] - 2)
    frac = s - i
    return (1.0 - frac) * g[i] + frac * g[i + 1]


def reconstruct(params: dict, key: jax.Array, frames: jax.Array,
                setup: VideoSetup) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Decode one clip along one posterior path of the latent SDE (Sec. 5.2, Eq. 12's terms).

    Args:
        params: ``video_init`` parameters; key: PRNG key; frames: (T, pixels) clip in [0, 1].

    Returns:
        (reconstructed frames (T, pixels), KL(q(x0) || N(0, I)) (), path KL 1/2 int |u|^2 dt ()).
    """
    D = setup.num_latents
    gammas = jnp.asarray(setup.gammas)
    if setup.fractional:
        omega = fbm.optimal_omega(gammas, fbm.hurst_of(params), setup.T_omega, "I")
        kind = "I"
    else:
        omega, kind = jnp.ones(1), "II"
    h, w, g = _encode(params, frames)
    k0, k1, k2 = jax.random.split(key, 3)
    stats = fbm.mlp_apply(params["initial"], jnp.concatenate([h[0], h[1], h[2]]))
    mean0, logvar0 = stats[:D], stats[D:]
    x0 = mean0 + jnp.exp(0.5 * logvar0) * jax.random.normal(k0, (D,))
    kl0 = 0.5 * jnp.sum(jnp.exp(logvar0) + mean0**2 - 1.0 - logvar0)
    sigma = jnp.exp(params["log_sigma"])

    def control(t, x, y):
        return fbm.mlp_apply(params["control"], jnp.concatenate([x, y.ravel(), _context_at(g, t, setup.frame_dt)]))

    y0 = fbm.initial_ou_state(k1, gammas, kind, (D,))
    paths = fbm.euler_maruyama(k2, x0, y0, gammas, omega, lambda t, x: fbm.mlp_apply(params["drift"], x),
                               lambda t, x: sigma, control, setup.frame_dt / setup.substeps,
                               (frames.shape[0] - 1) * setup.substeps)
    latents = paths.x[::setup.substeps]
    recon = jax.nn.sigmoid(fbm.mlp_apply(params["decoder"], jnp.concatenate(
        [jnp.broadcast_to(w, (latents.shape[0], w.shape[0])), latents], axis=1)))
    return recon, kl0, paths.kl


def video_loss_terms(params: dict, key: jax.Array, frames: jax.Array,
                     setup: VideoSetup) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The three terms of one clip's loss along one posterior path (as in the official code).

    Args:
        params, key: as in :func:`reconstruct`; frames: (T, pixels).

    Returns:
        (sum of squared pixel errors (), KL(q(x0) || p(x0)) (), path KL ()).
    """
    recon, kl0, kl = reconstruct(params, key, frames, setup)
    return jnp.sum((frames - recon) ** 2), kl0, kl


def video_loss(params: dict, key: jax.Array, batch: jax.Array, setup: VideoSetup) -> jax.Array:
    """Mean over a batch of the per-clip loss, the negative ELBO up to constants (Sec. 4, 5.2).

    Args:
        params, key: as in :func:`reconstruct`; batch: (B, T, pixels).

    Returns:
        A scalar: mean of squared error + KL(q(x0)) + path KL.
    """
    sq, kl0, kl = jax.vmap(video_loss_terms, (None, 0, 0, None))(params, jax.random.split(key, batch.shape[0]),
                                                                   batch, setup)
    return jnp.mean(sq + kl0 + kl)


def train_video(key: jax.Array, videos: ArrayLike, setup: VideoSetup, num_steps: int, batch: int,
                learning_rate: float) -> tuple[dict, jax.Array]:
    """Fit the video model by Adam (cosine decay from ``learning_rate``) on random mini-batches.

    Args:
        key: PRNG key; videos: (N, T >= 4, pixels) clips; setup: :class:`VideoSetup`;
        num_steps: Adam steps; batch: clips per step (<= N); learning_rate: initial step.

    Returns:
        (params, losses (num_steps,)).

    Raises:
        ValueError: on a bad shape of ``videos`` or batch > N.
    """
    videos = jnp.asarray(videos)
    if videos.ndim != 3 or videos.shape[1] < 4 or not 1 <= batch <= videos.shape[0]:
        raise ValueError(f"videos must be (N, T >= 4, pixels) with N >= batch; got {videos.shape}, batch={batch}")
    k_init, k_fit = jax.random.split(key)
    params = video_init(k_init, setup, videos.shape[2])

    def loss(p, k):
        k_idx, k_sim = jax.random.split(k)
        idx = jax.random.choice(k_idx, videos.shape[0], (batch,), replace=False)
        return video_loss(p, k_sim, videos[idx], setup)

    return fbm.fit(loss, params, k_fit, num_steps, learning_rate)

