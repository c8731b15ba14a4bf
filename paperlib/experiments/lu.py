"""Protocols of Lu, Wu, Yang, Zou 2024 (arXiv 2310.17074) on :mod:`paperlib.benign_oscillation`.

M. Lu, B. Wu, X. Yang, D. Zou. Benign Oscillation of Stochastic Gradient Descent with Large Learning
Rates. ICLR 2024.

* :func:`validate`: knob checks the ranges cannot express;
* :func:`run_study`: every (learning rate, seed) SGD run in one ``vmap`` of one compiled trainer; the
  two learning rates share each seed's data, start and sample order (paired runs);
* :func:`summarise`: per run, the oscillation fraction and drift on strong samples over the window the
  oscillation assumption covers, the weak-feature output, the weak coefficients in units of their
  initial scale and the accuracy on weak-only test data;
* :func:`stability_threshold`: 2 / (top Hessian eigenvalue) of the loss at a fitted strong sample;
  :func:`strong_map_orbit`: the oscillation of the one-sample strong map at a given step;
* figures: :func:`margin_figure`, :func:`coefficient_figure`.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import TYPE_CHECKING, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from paperlib import benign_oscillation as bo
from paperlib import stats

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

LR_NAMES = ("large", "small")


def validate(cfg: SimpleNamespace) -> None:
    """Raise a clear error for knob values the parameter ranges cannot express.

    Args:
      cfg: the resolved knobs; reads steps, record_every, n, n_strong, weak_norm, strong_norm,
        lr_small, lr_large and d.

    Raises:
      ValueError: naming the first knob out of its allowed range.
    """
    if cfg.steps % cfg.record_every:
        raise ValueError(f"steps={cfg.steps} must be a multiple of record_every={cfg.record_every}")
    if not 0 < cfg.n_strong < cfg.n:
        raise ValueError(f"n_strong={cfg.n_strong} must be in [1, n-1] (n={cfg.n}): the model "
                         "needs strong and weak-only training samples")
    if cfg.weak_norm >= cfg.strong_norm:
        raise ValueError(f"weak_norm={cfg.weak_norm} must be below strong_norm={cfg.strong_norm}")
    if cfg.lr_small >= cfg.lr_large:
        raise ValueError(f"lr_small={cfg.lr_small} must be below lr_large={cfg.lr_large}")
    if cfg.d < 3:
        raise ValueError(f"d={cfg.d}: need d >= 3 (two feature directions and noise)")


def step_sizes(cfg: SimpleNamespace) -> np.ndarray:
    """(large, small) step sizes eta = lr * m / ||u||^2 (Assumption 3's window is lr in [1/4, 2/5]).

    Args:
      cfg: the knobs; reads lr_large, lr_small, m and strong_norm.

    Returns:
      (2,) step sizes [large, small].
    """
    return np.array([cfg.lr_large, cfg.lr_small]) * cfg.m / cfg.strong_norm ** 2


def model_features(cfg: SimpleNamespace) -> bo.Features:
    """u, v and sigma_p = noise_norm / sqrt(d - 2) (so E||xi||^2 = noise_norm^2; data model of Sec. 2).

    Args:
      cfg: the knobs; reads d, strong_norm, weak_norm and noise_norm.

    Returns:
      ``bo.Features`` with u and v of shape (d,) and the noise level sigma_p.
    """
    return bo.features(cfg.d, cfg.strong_norm, cfg.weak_norm, cfg.noise_norm / np.sqrt(cfg.d - 2))


class Study(NamedTuple):
    """Every paired SGD run of :func:`run_study`: starts, final weights, traces and test accuracies."""

    W0: np.ndarray  # (S, 2, m, d) starts, shared by both learning rates
    W: np.ndarray  # (2, S, 2, m, d) final weights, [large, small]
    trace: bo.Trace  # fields with leading axes (2, S)
    strong_drawn: np.ndarray  # (2, S, steps) whether the sample drawn at each step is strong
    test_acc: np.ndarray  # (2, S) accuracy on weak-only test data
    eta: np.ndarray  # (2,) step sizes


@partial(jax.jit, static_argnames=("n", "n_strong", "n_test", "m"))
def _draw(keys: jax.Array, feats: bo.Features, sigma0: float, n: int, n_strong: int, n_test: int,
          m: int) -> tuple[bo.Data, jax.Array, bo.Data]:
    """Per seed (row of ``keys``, shape (S, 4)): training data, start (S, 2, m, d), weak-only test."""
    d = feats.strong.shape[0]
    data = jax.vmap(lambda k: bo.sample(k, feats, n, n_strong))(keys[:, 0])
    W0 = jax.vmap(lambda k: bo.init(k, m, d, sigma0))(keys[:, 1])
    return data, W0, jax.vmap(lambda k: bo.sample(k, feats, n_test, 0))(keys[:, 3])


_accuracies = jax.jit(jax.vmap(bo.accuracy))


def run_study(cfg: SimpleNamespace, key: jax.Array) -> Study:
    """Train ``cfg.seeds`` paired runs at both learning rates (float64, one compiled ``vmap``).

    Seed s draws its training data (``cfg.n`` samples, ``cfg.n_strong`` strong), its start (2, m, d)
    and its sample order once; both step sizes of :func:`step_sizes` train from them. Test data:
    ``cfg.n_test`` weak-only samples per seed (the Sec. 4.2 experiment).

    Args:
      cfg: the knobs; reads seeds, n, n_strong, n_test, m, d, sigma0, steps, record_every and
        those of :func:`step_sizes` and :func:`model_features`.
      key: PRNG key of data, starts and sample orders.

    Returns:
      ``Study``; leading axes (2, S) = ([large, small], seeds), S = ``cfg.seeds``.
    """
    feats = model_features(cfg)
    keys = jax.random.split(key, (cfg.seeds, 4))
    data, W0, test = _draw(keys, feats, cfg.sigma0, n=cfg.n, n_strong=cfg.n_strong,
                           n_test=cfg.n_test, m=cfg.m)
    eta = step_sizes(cfg)
    both = lambda a: jnp.concatenate([a, a])  # noqa: E731  (runs: large x seeds, small x seeds)
    W, trace = bo.run_many(both(W0), jax.tree.map(both, data), feats,
                           jnp.repeat(jnp.asarray(eta), cfg.seeds), both(keys[:, 2]),
                           steps=cfg.steps, record_every=cfg.record_every)
    acc = _accuracies(W, jax.tree.map(both, test))
    split = lambda a: np.asarray(a).reshape((2, cfg.seeds) + a.shape[1:])  # noqa: E731
    trace = bo.Trace(*[split(f) for f in trace])
    strong = np.take_along_axis(np.asarray(data.strong)[None], trace.drawn, axis=-1)
    return Study(np.asarray(W0), split(W), trace, strong, split(acc), eta)


def weak_output(weak_coef: np.ndarray) -> np.ndarray:
    """Weak-feature output min_j (1/m) sum_r sigma(j <w_{j,r}, v>): what f gives the weak patch alone.

    Our reading of Theorem 5's weak-feature quantity (reaches delta / 4 under oscillation).

    Args:
      weak_coef: (..., 2, m) coefficients j <w_{j,r}, v>.

    Returns:
      (...) weak outputs.
    """
    return (np.maximum(weak_coef, 0.0) ** 2).mean(-1).min(-1)


def oscillation_window(margin: np.ndarray, strong: np.ndarray, phi: np.ndarray, delta: float,
                       record_every: int) -> tuple[int, int]:
    """Steps [start, stop) that the oscillation assumption covers in one run.

    start: the first strong-sample step whose margin reaches 1 - delta (the strong feature is fitted);
    stop: the first record at which the weak output ``phi`` reaches delta / 4 (Theorem 5's level),
    or the end of training. Falls back to the whole run if no strong sample is ever fitted.

    Args:
      margin: (steps,) margins y f of the sample drawn at each step (``Trace.margin`` of one run).
      strong: (steps,) bool, whether that sample carries the strong feature.
      phi: (records,) weak output (:func:`weak_output`) at each record.
      delta: the oscillation level of Assumption 4.
      record_every: steps between records.

    Returns:
      (start, stop) step indices with stop > start.
    """
    fitted = np.flatnonzero(strong & (margin >= 1 - delta))
    start = int(fitted[0]) if fitted.size else 0
    learned = np.flatnonzero(phi >= delta / 4)
    stop = int(learned[0]) * record_every if learned.size else margin.size
    return start, max(stop, start + 1)


class Summary(NamedTuple):
    """Per-run measurements of :func:`summarise` (Assumption 4, Section 3, Theorem 5, Prop. 6)."""

    osc_fraction: np.ndarray  # (2, S) share of strong steps in the window with |y f - 1| >= delta
    osc_fraction_all: np.ndarray  # (2, S) the same from the window start to the end of training
    drift: np.ndarray  # (2, S) mean of 1 - y f over strong steps in the window
    window: np.ndarray  # (2, S, 2) window [start, stop) in steps
    weak_output: np.ndarray  # (2, S) weak-feature output at the end
    weak_ratio: np.ndarray  # (2, S) max_{j,r} j <w_{j,r}, v> / (sigma0 ||v||) at the end


def summarise(study: Study, cfg: SimpleNamespace) -> Summary:
    """Per-run measurements of the claims (see :class:`Summary`).

    Over the window of :func:`oscillation_window`: the share of strong steps with |y f - 1| >= delta
    (Assumption 4) and the mean drift 1 - y f (Section 3); at the end of training the weak output
    (Theorem 5) and the largest weak coefficient over sigma0 ||v|| (Proposition 6).

    Args:
      study: the runs of :func:`run_study`.
      cfg: the knobs; reads delta, record_every, sigma0 and weak_norm.

    Returns:
      ``Summary`` with fields of shape (2, S) (window: (2, S, 2)).
    """
    tr, delta = study.trace, cfg.delta
    phi = weak_output(tr.weak_coef)  # (2, S, records)
    shape = tr.margin.shape[:2]
    frac, frac_all, drift, window = (np.zeros(shape), np.zeros(shape), np.zeros(shape),
                                     np.zeros(shape + (2,), int))
    for idx in np.ndindex(shape):
        margin, strong = tr.margin[idx], study.strong_drawn[idx]
        start, stop = oscillation_window(margin, strong, phi[idx], delta, cfg.record_every)
        inside, after = strong[start:stop], strong[start:]
        off = np.abs(margin - 1) >= delta
        frac[idx] = off[start:stop][inside].mean() if inside.any() else np.nan
        frac_all[idx] = off[start:][after].mean() if after.any() else np.nan
        drift[idx] = (1 - margin[start:stop][inside]).mean() if inside.any() else np.nan
        window[idx] = start, stop
    ratio = tr.weak_coef[..., -1, :, :].max((-1, -2)) / (cfg.sigma0 * cfg.weak_norm)
    return Summary(frac, frac_all, drift, window, phi[..., -1], ratio)


def floored_se(samples: np.ndarray, count: int) -> tuple[float, float, int]:
    """Mean, s.e. and n of per-seed proportions, the s.e. floored at 0.5 / sqrt(count).

    0.5 / sqrt(count) is the largest binomial s.e. of a proportion pooled over ``count`` trials: it
    keeps the z-score finite when every seed gives the same proportion (e.g. accuracy 1).

    Args:
      samples: (S,) per-seed proportions, S >= 2.
      count: number of trials pooled over all seeds.

    Returns:
      (mean, floored s.e., S).
    """
    x = np.asarray(samples, float)
    mean, se = stats.mean_and_se(x)
    return float(mean), float(max(se, 0.5 / np.sqrt(count))), int(x.size)


def stability_threshold(cfg: SimpleNamespace) -> float:
    """2 / lambda_max of the per-sample loss Hessian at a fitted strong sample (float64, autodiff).

    The sample is x = (u, 0, 0), y = 1; every sign +1 neuron sits at w = u / ||u||^2 (so
    <w, u> = 1 and f = 1), every sign -1 neuron at -u / ||u||^2 (inactive). GD on this sample is
    linearly stable iff eta < 2 / lambda_max; the closed form is m / (4 ||u||^2). Only the u
    direction is active, so the edge does not depend on d: the Hessian is computed at d = 3.
    This is the lower end of Assumption 3's learning-rate window.

    Args:
      cfg: the knobs; reads strong_norm, weak_norm and m.

    Returns:
      The largest linearly stable step size 2 / lambda_max.
    """
    u = bo.features(3, cfg.strong_norm, cfg.weak_norm, 0.0).strong
    x = jnp.stack([u, jnp.zeros_like(u), jnp.zeros_like(u)])
    W = jnp.stack([jnp.tile(u / cfg.strong_norm ** 2, (cfg.m, 1)),
                   jnp.tile(-u / cfg.strong_norm ** 2, (cfg.m, 1))])
    H = jax.jit(jax.hessian(bo.sample_loss))(W, x, jnp.float64(1.0)).reshape(W.size, W.size)
    return float(2.0 / np.linalg.eigvalsh(np.asarray(H))[-1])


def strong_map_orbit(c: float, steps: int = 4000, keep: int = 64) -> np.ndarray:
    """Late orbit of the one-sample strong map f -> f (1 - c (f - 1))^2 from f = 0.5.

    With every active neuron on one strong sample, a GD step multiplies each <w_r, u> by
    1 - c (f - 1), c = 4 eta ||u||^2 / m, so the output follows this map; c > 1 (eta above the
    window's lower end) makes the fixed point f = 1 unstable.

    Args:
      c: 4 eta ||u||^2 / m.
      steps: iterations of the map.
      keep: trailing iterates returned, <= steps.

    Returns:
      (keep,) the last ``keep`` of ``steps`` iterates.
    """
    f, orbit = 0.5, []
    for _ in range(steps):
        f = f * (1.0 - c * (f - 1.0)) ** 2
        orbit.append(f)
    return np.array(orbit[-keep:])


def margin_figure(study: Study, cfg: SimpleNamespace, axes: Sequence[plt.Axes], run: int = 0) -> None:
    """Margins y f of the drawn strong samples and the training loss over SGD steps (one seed).

    Args:
      study: the runs of :func:`run_study`.
      cfg: the knobs; reads steps, record_every and delta.
      axes: two matplotlib axes (margins, loss).
      run: the seed shown.
    """
    steps = np.arange(cfg.steps)
    for i, name in enumerate(LR_NAMES):
        strong = study.strong_drawn[i, run]
        axes[0].plot(steps[strong], study.trace.margin[i, run][strong], ".", ms=1.5,
                     label=f"{name} LR (η = {study.eta[i]:.2f})")
        rec = np.arange(study.trace.loss.shape[-1]) * cfg.record_every
        axes[1].semilogy(rec, study.trace.loss[i, run], label=f"{name} LR")
    for level in (1 - cfg.delta, 1 + cfg.delta):
        axes[0].axhline(level, color="k", lw=0.6, ls=":")
    axes[0].set(xlabel="SGD step", ylabel="y f(x) of the drawn strong sample",
                title=f"margin (dotted: 1 ± δ, δ = {cfg.delta})")
    axes[1].set(xlabel="SGD step", ylabel="mean training loss", title="training loss")
    for ax in axes:
        ax.legend(fontsize=8, markerscale=4)


def coefficient_figure(study: Study, cfg: SimpleNamespace, axes: Sequence[plt.Axes]) -> None:
    """Largest strong and weak coefficients max_{j,r} j <w_{j,r}, .> over steps (mean, band: min-max).

    Args:
      study: the runs of :func:`run_study`.
      cfg: the knobs; reads record_every.
      axes: two matplotlib axes (strong, weak).
    """
    rec = np.arange(study.trace.loss.shape[-1]) * cfg.record_every
    for ax, coef, name in [(axes[0], study.trace.strong_coef, "strong ⟨w, u⟩"),
                           (axes[1], study.trace.weak_coef, "weak ⟨w, v⟩")]:
        top = coef.max((-1, -2))  # (2, S, records)
        for i, lr in enumerate(LR_NAMES):
            line, = ax.plot(rec, top[i].mean(0), label=f"{lr} LR")
            ax.fill_between(rec, top[i].min(0), top[i].max(0), color=line.get_color(), alpha=0.2)
        ax.set(xlabel="SGD step", ylabel=f"max_r j·{name[-6:]}", title=f"{name} coefficient",
               yscale="log")
        ax.legend(fontsize=8)
