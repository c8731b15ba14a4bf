"""Protocols of the Tyurin (2024) notebook: step-size sweeps of LR+GD, separation times and the
all-pairs digits survey, built on :mod:`paperlib.perceptron`.

The survey runs every dataset in one compiled program: the signed samples are zero-padded to a
common n and a mask drops the padding from the mean, the accuracy and the margins, so one
compilation serves datasets of different sizes (instead of one per n).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from paperlib import perceptron as pc


class SweepSummary(NamedTuple):
    """LR+GD over a grid of step sizes on one dataset (the Figs. 1/4/5 protocol)."""

    trace: pc.Trace  # per-gamma traces (leading gamma axis)
    sep: np.ndarray  # separation time per gamma (-1: not within the horizon)
    max_loss: np.ndarray  # max loss before separation per gamma (whole run if never separated)
    t_sep: np.ndarray  # separation time with -1 replaced by the horizon (an upper bound)


def step_size_sweep(Z, gammas, num_steps: int) -> SweepSummary:
    """LR+GD at every gamma for ``num_steps`` steps (one vmapped scan), with separation times and
    the largest loss before separation (Sec. 4, Figs. 1/4/5)."""
    tr = pc.lr_gd_sweep(Z, gammas, num_steps)
    sep = pc.separation_time(tr)
    loss = np.asarray(tr.loss)
    max_loss = np.array([pc.until_separation(l, t).max() for l, t in zip(loss, sep)])
    return SweepSummary(tr, sep, max_loss, np.where(sep < 0, num_steps, sep).astype(float))


def pad_datasets(Zs) -> tuple[jax.Array, jax.Array]:
    """Stack signed-sample matrices of equal d and different n, zero-padded to the largest n:
    (P, n_max, d) and a (P, n_max) mask of the real rows."""
    Zs = [np.asarray(z, dtype=np.float64) for z in Zs]
    if len({z.shape[1] for z in Zs}) != 1:
        raise ValueError("every dataset must have the same dimension d")
    n_max = max(z.shape[0] for z in Zs)
    Zp = np.stack([np.pad(z, ((0, n_max - z.shape[0]), (0, 0))) for z in Zs])
    mask = np.stack([np.arange(n_max) < z.shape[0] for z in Zs])
    return jnp.asarray(Zp), jnp.asarray(mask)


@partial(jax.jit, static_argnames=("num_steps",))
def _masked_separation(Z, mask, gamma, num_steps):
    """LR+GD from theta = 0 on the real rows of Z: (separation time or -1, max loss before it)."""
    w = mask / jnp.sum(mask)

    def step(carry, t):
        theta, t_sep, max_loss = carry
        m = pc.margins(theta, Z)
        loss = jnp.sum(w * jnp.logaddexp(0.0, -m))
        separated = jnp.all((m > 0) | ~mask)
        first = separated & (t_sep < 0)
        t_sep = jnp.where(first, t, t_sep)
        max_loss = jnp.where(t_sep < 0, jnp.maximum(max_loss, loss), max_loss)
        grad_w = gamma * w * jnp.exp(-jnp.logaddexp(0.0, m))  # gamma * sigma(-m_i) / n
        theta = theta + jnp.matmul(Z.T, grad_w, precision=lax.Precision.HIGHEST)
        return (theta, t_sep, max_loss), None

    init = (jnp.zeros(Z.shape[1], Z.dtype), jnp.asarray(-1), jnp.asarray(-jnp.inf, Z.dtype))
    (_, t_sep, max_loss), _ = lax.scan(step, init, jnp.arange(num_steps + 1))
    return t_sep, max_loss


def padded_separation_sweep(Zs, gammas, num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """For every dataset in ``Zs`` and every gamma: the LR+GD separation time within ``num_steps``
    (-1 if none) and the largest loss before it (over the whole run if never separated), as
    ``pc.separation_time`` and ``pc.until_separation`` give on the unpadded trace. One compilation
    for all datasets (padding + mask)."""
    Zp, mask = pad_datasets(Zs)
    g = jnp.asarray(pc.check_step_sizes(gammas))
    over_gammas = jax.vmap(_masked_separation, in_axes=(None, None, 0, None))
    t, ml = jax.vmap(over_gammas, in_axes=(0, 0, None, None))(Zp, mask, g, num_steps)
    return np.asarray(t), np.asarray(ml)


def log_envelope(series, bins: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """A per-iteration series y_1..y_T thinned for a log-x plot: in each of ``bins`` log-spaced
    bins of t the minimum and the maximum, in time order (every t while bins are finer than one
    step), so the drawn band of a chaotic series is the same as with all T points."""
    y = np.asarray(series)
    t = np.arange(1, y.size + 1)
    edges = np.unique(np.geomspace(1, y.size + 1, bins + 1).astype(int))
    xs, ys = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        seg = y[lo - 1:hi - 1]
        pick = sorted({int(np.argmin(seg)), int(np.argmax(seg))})
        xs.extend(t[lo - 1 + i] for i in pick)
        ys.extend(seg[i] for i in pick)
    return np.array(xs), np.array(ys)
