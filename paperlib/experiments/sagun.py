"""Protocols of Sagun, Evci, Guney, Dauphin & Bottou 2017 (arXiv 1706.04454), on :mod:`paperlib.hessian`.

* :func:`validate`: knob checks the ranges cannot express;
* :func:`blobs`: the k-cluster data (sklearn ``make_blobs``, standardised);
* :func:`train_gd`: full-batch gradient descent in ``lax.scan``, vmapped over seeds;
* :func:`sweep`: networks trained on (k, width, cluster std) settings, several seeds each, with the
  float64 spectra of H and G at the end of training (:class:`Spectrum`); :func:`k_settings`,
  :func:`width_settings` and :func:`harder_settings` give the paper's three sweeps;
* :func:`small_large_batch`: a large-batch (full-batch GD) solution, a small-batch SGD solution
  continued from it, and the loss / top eigenvalue on the segment between them (digits proxy of MNIST);
* figures: :func:`spectra_figure`, :func:`width_figure`, :func:`segment_figure`.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import TYPE_CHECKING, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from sklearn.datasets import load_digits, make_blobs

from paperlib import hessian as hs
from paperlib import rmt

if TYPE_CHECKING:
    import matplotlib.pyplot as plt


def validate(cfg: SimpleNamespace) -> None:
    """Raise a clear error for knob values the parameter ranges cannot express.

    Args:
      cfg: the resolved knobs; reads ks, widths, stds, dim, width, k_fixed, window, lanczos_steps,
        sb_batch, n_digits and digits_width.

    Raises:
      ValueError: naming the first knob out of its allowed range.
    """
    for name in ("ks", "widths", "stds"):
        values = list(getattr(cfg, name))
        if len(values) < 2 or sorted(set(values)) != values:
            raise ValueError(f"{name} must list >= 2 strictly increasing values, got {values}")
    if min(cfg.ks) < 2:
        raise ValueError(f"ks: need at least 2 clusters, got {cfg.ks}")
    smallest = rmt.mlp_num_params((cfg.dim, min(cfg.widths + [cfg.width]), min(cfg.ks + [cfg.k_fixed])))
    if cfg.window >= smallest:
        raise ValueError(f"window={cfg.window} must be below the smallest network's P={smallest}")
    if cfg.window <= max(cfg.ks):
        raise ValueError(f"window={cfg.window} must exceed the largest k={max(cfg.ks)}")
    if cfg.lanczos_steps <= max(cfg.ks):
        raise ValueError(f"lanczos_steps={cfg.lanczos_steps} must exceed the largest k={max(cfg.ks)}")
    if not cfg.sb_batch < cfg.n_digits:
        raise ValueError(f"sb_batch={cfg.sb_batch} must be below n_digits={cfg.n_digits}")
    if cfg.lanczos_steps > rmt.mlp_num_params((64, cfg.digits_width, 10)):
        raise ValueError(f"lanczos_steps={cfg.lanczos_steps} exceeds the digits network's size")


def blobs(k: int, n: int, dim: int, std: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """k Gaussian clusters (sklearn ``make_blobs``, centres uniform in [-10, 10]^dim), standardised.

    Args:
      k: clusters = classes.
      n: samples.
      dim: input dimension.
      std: within-cluster standard deviation (larger: less separable, "harder" data).
      seed: ``random_state`` of make_blobs.

    Returns:
      X (n, dim) float64 with zero mean and unit variance per feature, y (n,) int32 cluster labels.
    """
    X, y = make_blobs(n_samples=n, centers=k, n_features=dim, cluster_std=std, random_state=seed)
    return (X - X.mean(0)) / X.std(0), y.astype(np.int32)


@partial(jax.jit, static_argnames=("sizes", "steps"))
def train_gd(theta0: jax.Array, X: jax.Array, y: jax.Array, sizes: Sequence[int], lr: float,
             steps: int) -> tuple[jax.Array, jax.Array]:
    """Full-batch gradient descent on the cross-entropy, vmapped over a leading seed axis.

    Args:
      theta0: (S, P) starting points.
      X: (S, N, d) inputs, one data set per seed.
      y: (S, N) labels.
      sizes: layer widths.
      lr: step size.
      steps: iterations.

    Returns:
      (S, P) final parameters and (S,) final training losses.
    """
    def one(theta, X, y):
        step = lambda t, _: (t - lr * jax.grad(hs.mean_loss)(t, X, y, sizes), None)
        theta = lax.scan(step, theta, None, length=steps)[0]
        return theta, hs.mean_loss(theta, X, y, sizes)

    return jax.vmap(one)(theta0, X, y)


class Setting(NamedTuple):
    """One point of a sweep: number of clusters, hidden width and cluster std."""

    k: int  # clusters = classes
    width: int  # hidden width M
    std: float  # cluster standard deviation


class Spectrum(NamedTuple):
    """One trained network of :func:`sweep` with the float64 spectra of H and G at its end."""

    setting: Setting
    seed: int
    loss: float  # final training loss
    P: int  # parameters
    eig_H: np.ndarray  # (P,) Hessian eigenvalues, descending
    eig_G: np.ndarray  # (P,) Gauss-Newton eigenvalues, descending
    theta: np.ndarray  # (P,) trained parameters


def k_settings(cfg: SimpleNamespace) -> list[Setting]:
    """The k sweep: every k of ``cfg.ks`` at width ``cfg.width`` and the first cluster std.

    The paper's outliers-vs-clusters experiment (more clusters move the outliers).

    Args:
      cfg: the knobs; reads ks, width and stds.

    Returns:
      One ``Setting`` per k, in the order of ``cfg.ks``.
    """
    return [Setting(k, cfg.width, cfg.stds[0]) for k in cfg.ks]


def width_settings(cfg: SimpleNamespace) -> list[Setting]:
    """The width sweep: ``cfg.k_fixed`` clusters, the first std, every width of ``cfg.widths``.

    The paper's conjecture that more parameters only grow the bulk.

    Args:
      cfg: the knobs; reads k_fixed, stds and widths.

    Returns:
      One ``Setting`` per width, in the order of ``cfg.widths``.
    """
    return [Setting(cfg.k_fixed, w, cfg.stds[0]) for w in cfg.widths]


def harder_settings(cfg: SimpleNamespace) -> list[Setting]:
    """The harder-data sweep: ``cfg.k_fixed`` clusters, width ``cfg.width``, every std of ``cfg.stds``.

    The paper's conjecture that less separable data move the outliers, not the bulk.

    Args:
      cfg: the knobs; reads k_fixed, width and stds.

    Returns:
      One ``Setting`` per std, in the order of ``cfg.stds``.
    """
    return [Setting(cfg.k_fixed, cfg.width, s) for s in cfg.stds]


def sweep(cfg: SimpleNamespace, settings: Sequence[Setting], key: jax.Array) -> list[Spectrum]:
    """Train ``cfg.seeds`` networks per setting and diagonalise H and G at the end (float64 eigh).

    Network: tanh MLP (dim, width, k) of :mod:`paperlib.rmt`; seed s draws the data with
    ``random_state = s`` and the initialisation from ``fold_in(key, s)``, so settings that differ in
    width or std share data centres and seeds. One compilation per distinct shape.

    Args:
      cfg: needs seeds, n_samples, dim, lr, steps.
      settings: the settings to run.
      key: PRNG key of the initialisations.

    Returns:
      One ``Spectrum`` per (setting, seed), settings outer.
    """
    out = []
    for st in settings:
        sizes = (cfg.dim, st.width, st.k)
        data = [blobs(st.k, cfg.n_samples, cfg.dim, st.std, s) for s in range(cfg.seeds)]
        X, y = (jnp.asarray(np.stack(a)) for a in zip(*data))
        theta0 = jnp.stack([rmt.init_mlp(jax.random.fold_in(key, s), sizes) for s in range(cfg.seeds)])
        thetas, losses = train_gd(theta0, X, y, sizes, cfg.lr, cfg.steps)
        for s in range(cfg.seeds):
            H, G = hs.dense_curvatures(thetas[s], X[s], y[s], sizes, ("H", "G"))
            out.append(Spectrum(st, s, float(losses[s]), thetas.shape[1], hs.descending_eigenvalues(H),
                                hs.descending_eigenvalues(G), np.asarray(thetas[s])))
    return out


def network(cfg: SimpleNamespace,
            sp: Spectrum) -> tuple[jax.Array, jax.Array, jax.Array, tuple[int, int, int]]:
    """The trained network of a sweep entry with its data, redrawn as :func:`sweep` drew it.

    Args:
      cfg: the knobs of the sweep; reads n_samples and dim.
      sp: the sweep entry.

    Returns:
      (theta (P,), X (N, dim), y (N,) int32, sizes (dim, width, k)), N = ``cfg.n_samples``.
    """
    X, y = blobs(sp.setting.k, cfg.n_samples, cfg.dim, sp.setting.std, sp.seed)
    return jnp.asarray(sp.theta), jnp.asarray(X), jnp.asarray(y), (cfg.dim, sp.setting.width, sp.setting.k)


def per_seed(spectra: Sequence[Spectrum], settings: Sequence[Setting],
             fn: Callable[[Spectrum], float]) -> np.ndarray:
    """``fn(spectrum)`` arranged as (seeds, settings) for the given settings, in their order.

    Args:
      spectra: sweep entries, one per (setting, seed) for every setting in ``settings``.
      settings: the columns, in order.
      fn: the per-network scalar, e.g. lambda sp: sp.eig_H[0].

    Returns:
      (seeds, settings) float array, seeds ascending.
    """
    table = {(sp.setting, sp.seed): fn(sp) for sp in spectra}
    seeds = sorted({sp.seed for sp in spectra})
    return np.array([[table[(st, s)] for st in settings] for s in seeds], dtype=float)


def h_vs_g_deviation(sp: Spectrum, top: int) -> float:
    """max_{i <= top} |lambda_i(H) / lambda_i(G) - 1|: how far the top of H is from the top of G.

    The paper's claim that the outliers come from G of H = G + R (paper Sec. 2).

    Args:
      sp: a sweep entry.
      top: eigenvalues compared (e.g. k).

    Returns:
      The largest relative deviation over the top ``top`` eigenvalues.
    """
    return float(np.max(np.abs(sp.eig_H[:top] / sp.eig_G[:top] - 1.0)))


def digits_proxy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST proxy: ``n`` samples of sklearn's 8x8 digits (10 classes), pixels standardised.

    Args:
      n: samples, drawn without replacement with numpy seed ``seed``.
      seed: numpy seed.

    Returns:
      X (n, 64) float64, y (n,) int32.
    """
    X, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(seed).permutation(len(y))[:n]
    X = X[idx] / 16.0
    std = X.std(0)
    return (X - X.mean(0)) / np.where(std > 0, std, 1.0), y[idx].astype(np.int32)


class SmallLarge(NamedTuple):
    """One seed of :func:`small_large_batch`: LB and SB losses, their distance and the segment (Sec. 4)."""

    seed: int
    loss_lb: float  # training loss of the large-batch (full-batch GD) solution
    loss_sb: float  # training loss of the small-batch SGD solution
    distance: float  # ||w_SB - w_LB|| / ||w_LB||
    segment: hs.Segment  # loss and top eigenvalue along the line, LB at 0, SB at 1


def small_large_batch(cfg: SimpleNamespace, key: jax.Array) -> list[SmallLarge]:
    """Large-batch and small-batch solutions and the segment between them, per seed (paper Sec. 4).

    LB: full-batch GD (``cfg.lb_steps`` steps, lr ``cfg.lr``) from a fresh tanh MLP (64,
    ``cfg.digits_width``, 10); SB: mini-batch SGD (batch ``cfg.sb_batch``, ``cfg.sb_epochs`` epochs,
    lr ``cfg.sb_lr``) continued from the LB solution, as we read the paper's protocol (LB first, then
    SB from there); then loss and top Hessian eigenvalue (``cfg.lanczos_steps`` Lanczos steps) at
    ``cfg.n_alphas`` points of the segment. Seed s: data subset s, init ``fold_in(key, s)``.

    Args:
      cfg: the knobs above plus seeds, n_digits.
      key: PRNG key.

    Returns:
      One ``SmallLarge`` per seed.
    """
    sizes = (64, cfg.digits_width, 10)
    data = [digits_proxy(cfg.n_digits, s) for s in range(cfg.seeds)]
    X, y = (jnp.asarray(np.stack(a)) for a in zip(*data))
    theta0 = jnp.stack([rmt.init_mlp(jax.random.fold_in(key, s), sizes) for s in range(cfg.seeds)])
    w_lb, loss_lb = train_gd(theta0, X, y, sizes, cfg.lr, cfg.lb_steps)
    out = []
    for s in range(cfg.seeds):
        k_sgd, k_lanczos = jax.random.split(jax.random.fold_in(key, 1000 + s))
        w_sb = rmt.train("sgd", w_lb[s], X[s], y[s], sizes, cfg.sb_batch, cfg.sb_epochs, cfg.sb_lr,
                         k_sgd)
        seg = hs.segment(w_lb[s], w_sb, X[s], y[s], sizes, np.linspace(0, 1, cfg.n_alphas),
                         k_lanczos, cfg.lanczos_steps)
        dist = float(jnp.linalg.norm(w_sb - w_lb[s]) / jnp.linalg.norm(w_lb[s]))
        out.append(SmallLarge(s, float(loss_lb[s]), float(seg.loss[-1]), dist, seg))
    return out


# ------------------------------------------------------------------------- figures


def spectra_figure(spectra: Sequence[Spectrum], counts: dict, axes: Sequence[plt.Axes],
                   show: int) -> None:
    """Top of the Hessian spectrum per k (seed 0): lambda_i / lambda_1 against i, detected outliers
    filled, the rest of the spectrum as a histogram of log10 |lambda| / lambda_1 (second axis).

    Args:
      spectra: k-sweep spectra.
      counts: {(setting, seed): outlier count}.
      axes: two matplotlib axes.
      show: eigenvalues shown on the first axis.
    """
    ax, hist = axes
    for sp in (sp for sp in spectra if sp.seed == 0):
        lam = sp.eig_H / sp.eig_H[0]
        c = counts[(sp.setting, sp.seed)]
        line, = ax.plot(np.arange(1, show + 1), lam[:show], "o-", ms=3, mfc="none", lw=0.8,
                        label=f"k={sp.setting.k} ({c} outliers)")
        ax.plot(np.arange(1, c + 1), lam[:c], "o", ms=4, color=line.get_color())
        hist.hist(np.log10(np.maximum(np.abs(lam), 1e-14)), bins=60, histtype="step",
                  color=line.get_color())
    ax.set(xlabel="index i", ylabel="λ_i / λ_1 (Hessian)", title="top of the spectrum, seed 0")
    ax.legend(fontsize=7)
    hist.set(xlabel="log10 |λ| / λ_1", ylabel="count", title="whole spectrum (bulk at 0)")


def width_figure(spectra: Sequence[Spectrum], ax: plt.Axes, rel: float) -> None:
    """Sorted |Hessian eigenvalues| per width (seed 0) against the fraction of the spectrum, log
    scale, with the near-zero threshold ``rel`` * lambda_1 drawn.

    Args:
      spectra: width-sweep spectra.
      ax: matplotlib axis.
      rel: near-zero threshold relative to lambda_1.
    """
    for sp in (sp for sp in spectra if sp.seed == 0):
        lam = np.abs(sp.eig_H) / sp.eig_H[0]
        ax.semilogy(np.arange(sp.P) / sp.P, np.sort(lam)[::-1], lw=1,
                    label=f"M={sp.setting.width} (P={sp.P})")
    ax.axhline(rel, color="k", ls=":", lw=0.8, label=f"{rel:g} λ_1")
    ax.set(xlabel="fraction of the spectrum", ylabel="|λ| / λ_1", ylim=(1e-8, 2),
           title="width sweep: bulk vs outliers")
    ax.legend(fontsize=7)


def segment_figure(runs: Sequence[SmallLarge], axes: Sequence[plt.Axes]) -> None:
    """Training loss (first axis) and top Hessian eigenvalue (second) along the LB -> SB segment.

    Args:
      runs: ``small_large_batch`` output.
      axes: two matplotlib axes.
    """
    for r in runs:
        axes[0].plot(r.segment.alphas, r.segment.loss, "o-", ms=3, label=f"seed {r.seed}")
        axes[1].plot(r.segment.alphas, r.segment.top, "o-", ms=3)
    axes[0].set(xlabel="α (0: large batch, 1: small batch)", ylabel="training loss", yscale="log")
    axes[1].set(xlabel="α", ylabel="λ_max(H)")
    axes[0].legend(fontsize=7)
