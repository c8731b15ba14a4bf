"""Protocols of Xiong, Ding, Du 2024 (arXiv 2310.01769), built on :mod:`paperlib.matrix_sensing`.

* :func:`symmetric_sweep`: symmetric GD over seeds x alphas x k (Table 1 rows 1-2, Thm 3.1), with
  Gaussian sensing and with the identity operator, every (alpha, k) of a seed in one ``vmap``;
  :func:`symmetric_analysis` reduces it to the claims' statistics (:func:`sublinear_summary`);
* :func:`asymmetric_sweep`: asymmetric GD over seeds x alphas (Sec. 4, Fig. 2b), the k = r run
  and the one-step modification (Sec. 5, our stand-in for eq. 5.1); :func:`asymmetric_analysis`;
* :func:`curse_of_symmetry`: F0 = G0 on the symmetric problem against symmetric GD and an
  imbalanced start;
* figures (:func:`symmetric_figure`, :func:`alpha_figure`, :func:`modification_figure`,
  :func:`curse_figure`), :func:`table1_markdown` and the shared plot helper
  :func:`errorbar_over_seeds` (also used by :mod:`paperlib.experiments.ma`).

Every seed is a fresh (M*, A, initialisation); runs of a seed share the operator, so the ``vmap``
over initialisations turns the sensing products into matrix-matrix products.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jax.typing import ArrayLike
from matplotlib.lines import Line2D

from paperlib import matrix_sensing as ms
from paperlib import stats


class SymSweep(NamedTuple):
    """Errors of :func:`symmetric_sweep` (Sec. 3, Table 1 rows 1–2)."""

    err: np.ndarray  # (2 operators [sensing, identity], seeds, alphas, ks, T+1) ‖XXᵀ − M*‖_F²
    j_norm2: np.ndarray  # same shape, ‖J_t‖_F² (rows outside range(M*))
    truth: ms.Truth  # seed 0's ground truth (for plots)


class SymAnalysis(NamedTuple):
    """The statistics of :func:`symmetric_analysis` the claims of sections 1–2 read."""

    i_r: int  # index of k = r in k_sym
    i_over: list[int]  # indices of k > r in k_sym
    k_over: list[int]  # the k > r
    target: np.ndarray  # (k>r,) closed-form slopes 2η/√(k − r)
    summ: list[dict]  # per operator [sensing, identity]: sublinear_summary of the k > r runs
    ratio: list[np.ndarray]  # per operator: slope / target, (seeds, alphas, k>r)
    lin: list[np.ndarray]  # per operator: half-window rate ratio of k = r, (seeds, alphas)
    floor: list[np.ndarray]  # per operator: final error of k = r, (seeds, alphas)
    rate: list[float]  # per operator: mean tail rate of k = r on 1e-20 < err < 1e-6


class AsymSweep(NamedTuple):
    """Errors of :func:`asymmetric_sweep` (Sec. 4–5)."""

    vanilla: np.ndarray  # (seeds, alphas, T_asym+1) vanilla GD errors
    exact: np.ndarray  # (seeds, T_mod+1) k = r errors at alpha = alphas[1]
    modified: np.ndarray  # (seeds, alphas, T_mod+1) with the stand-in step
    switch: np.ndarray  # (seeds, alphas) step at which the stand-in step fired (-1: never)
    jump: np.ndarray  # (seeds, alphas) ‖F'G'ᵀ − FGᵀ‖_F caused by the step


class AsymAnalysis(NamedTuple):
    """The statistics of :func:`asymmetric_analysis` the claims of sections 3–4 read."""

    i_claim: list[int]  # indices of the claim's alphas in cfg.alphas
    van_rates: np.ndarray  # (seeds, alphas) vanilla tail rates on 1e-26 < err < 1e-8
    ratio_a2: np.ndarray  # (seeds, claim alphas) λ(α)/α²
    exact_lin: np.ndarray  # (seeds,) half-window rate ratio of the k = r runs
    exact_rates: np.ndarray  # (seeds,) tail rates of the k = r runs on 1e-20 < err < 1e-6
    lin: np.ndarray  # (seeds, claim alphas) half-window rate ratio of the vanilla runs
    mod_rates: np.ndarray  # (seeds, claim alphas) tail rates after the stand-in step
    switch: np.ndarray  # (seeds, claim alphas) step at which the stand-in step fired
    jump: np.ndarray  # (seeds, claim alphas) product change caused by the step


def symmetric_problem(key: jax.Array, n: int, r: int, m: int,
                      cond: float) -> tuple[ms.Truth, ms.Sensing, jax.Array]:
    """The symmetric problem of Sec. 3: PSD rank-r M*, symmetric Gaussian operator, clean y.

    Args:
        key: PRNG key (split into the truth's and the operator's keys).
        n, r, m, cond: matrix size, rank, number of measurements, condition number of M*.

    Returns:
        ``(truth, op, y)`` with ``op.A`` of shape (m, n, n) and ``y`` (m,).
    """
    kt, ko = jax.random.split(key)
    return ms.psd_problem(kt, ko, n, r, m, cond)


def symmetric_sweep(key: jax.Array, n: int, r: int, m: int, cond: float, eta: float,
                    ks: list[int], alphas: list[float], seeds: int, steps: int) -> SymSweep:
    """Symmetric GD X ← X − η𝒜*(𝒜(XXᵀ) − y)X (paper eq. (1), Sec. 3) from X0 = α·X̃ (entries
    N(0, 1/k), zero columns up to max k) for every (seed, α, k), with Gaussian sensing and 𝒜 = I.

    Args:
        key: base PRNG key (seed s uses ``fold_in(key, s)``).
        n, r, m, cond: matrix size, rank, measurements, condition number of M*.
        eta: GD step. ks: columns k. alphas: initialisation scales.
        seeds: number of fresh (M*, 𝒜, X̃). steps: iterations T.

    Returns:
        :class:`SymSweep`, errors of shape (2, seeds, len(alphas), len(ks), T+1).
    """
    kmax, shape = max(ks), (len(alphas), len(ks))
    err, j2, truth0 = [], [], None
    for s in range(seeds):
        kp, ki = jax.random.split(jax.random.fold_in(key, s))
        truth, op, y = symmetric_problem(kp, n, r, m, cond)
        truth0 = truth if s == 0 else truth0
        X0s = jnp.stack([ms.small_init(ki, n, kmax, a, k) for a in alphas for k in ks])
        runs = [ms.symmetric_gd_batch(op, y, truth, X0s, eta, steps),
                ms.symmetric_gd_batch(None, truth.M, truth, X0s, eta, steps)]
        err.append([np.asarray(o.err).reshape(shape + (-1,)) for o in runs])
        j2.append([np.asarray(o.j_norm2).reshape(shape + (-1,)) for o in runs])
    return SymSweep(np.swapaxes(np.array(err), 0, 1), np.swapaxes(np.array(j2), 0, 1), truth0)


def sublinear_summary(err: ArrayLike, j_norm2: ArrayLike, n: int, r: int, t_from: int) -> dict:
    """The 1/T² statistics of runs with k > r (Thm 3.1; brief §3, C2).

    Args:
        err: ‖X_tX_tᵀ − M*‖_F², shape (..., T+1). j_norm2: ‖J_t‖_F², same shape.
        n, r: matrix size and rank. t_from: first iteration of the fit window [t_from, T].

    Returns:
        ``{"slope", "loglog", "bound"}``, each of shape (...): slope of err^{-1/2} on the window,
        log–log slope of err on it, and min_t err_t / (‖J_t‖_F⁴/(n − r)) (≥ 1 by Cauchy–Schwarz).
    """
    err, j_norm2 = np.asarray(err), np.asarray(j_norm2)
    flat, jflat = err.reshape(-1, err.shape[-1]), j_norm2.reshape(-1, err.shape[-1])
    t = np.arange(t_from, err.shape[-1])
    slope = [ms.inverse_sqrt_slope(e, t_from) for e in flat]
    loglog = [stats.loglog_slope(t, e[t_from:]) for e in flat]
    bound = [np.min(e / (j ** 2 / (n - r))) for e, j in zip(flat, jflat)]
    return {name: np.reshape(v, err.shape[:-1]) for name, v in
            (("slope", slope), ("loglog", loglog), ("bound", bound))}


def symmetric_analysis(sym: SymSweep, ks: list[int], r: int, n: int, eta: float) -> SymAnalysis:
    """What the claims of sections 1–2 read from :func:`symmetric_sweep`: the k = r runs' linearity
    (half-window rate ratio on 1e-20 < err < 1e-6), final errors and rates (Table 1), and for k > r
    the :func:`sublinear_summary` on [T/2, T] with slopes over the closed form 2η/√(k − r).

    Args:
        sym: the sweep. ks: its columns k (must hold r). r, n: rank and size. eta: GD step.

    Returns:
        :class:`SymAnalysis` (per-run arrays of shape (seeds, alphas[, k>r])).
    """
    i_r = ks.index(r)
    i_over = [i for i, k in enumerate(ks) if k > r]
    k_over = [ks[i] for i in i_over]
    target = np.array([ms.sublinear_slope_closed_form(eta, k, r) for k in k_over])
    half = (sym.err.shape[-1] - 1) // 2
    summ = [sublinear_summary(sym.err[o][..., i_over, :], sym.j_norm2[o][..., i_over, :], n, r,
                              half) for o in range(2)]
    ratio = [s["slope"] / target for s in summ]
    lin = [half_rate_ratio(sym.err[o][..., i_r, :], 1e-20, 1e-6) for o in range(2)]
    floor = [sym.err[o][..., i_r, -1] for o in range(2)]
    rate = [float(np.mean(ms.tail_rates(sym.err[o][..., i_r, :], 1e-20, 1e-6))) for o in range(2)]
    return SymAnalysis(i_r, i_over, k_over, target, summ, ratio, lin, floor, rate)


def asymmetric_problem(key: jax.Array, n: int, r: int, m: int, cond: float,
                       k: int) -> tuple[ms.Truth, ms.Sensing, jax.Array, jax.Array, jax.Array]:
    """The asymmetric problem of Sec. 4: generic rank-r truth (independent U, V), non-symmetric
    Gaussian operator, and the unit-scale factors of the imbalanced start F0 = αF̃, G0 = (α/3)G̃.

    Args:
        key: PRNG key. n, r, m, cond: size, rank, measurements, condition number. k: columns.

    Returns:
        ``(truth, op, y, F̃, G̃)`` with F̃, G̃ of shape (n, k), entries N(0, 1/k).
    """
    ks = jax.random.split(key, 4)
    truth = ms.asymmetric_truth(ks[0], n, n, r, cond)
    op = ms.gaussian_sensing(ks[1], m, n)
    Ft, Gt = ms.small_init(ks[2], n, k, 1.0), ms.small_init(ks[3], n, k, 1.0)
    return truth, op, ms.forward(op, truth.M), Ft, Gt


def asymmetric_sweep(key: jax.Array, n: int, r: int, m: int, cond: float, k: int, eta: float,
                     alphas: list[float], seeds: int, steps: int, steps_mod: int,
                     switch_below: float, c: float) -> AsymSweep:
    """Asymmetric GD F ← F − ηEG, G ← G − ηEᵀF, E = 𝒜*(𝒜(FGᵀ) − y) (paper Sec. 4) for every
    (seed, α) (same F̃, G̃ for every α of a seed), the exact parameterisation k = r at α =
    alphas[1], and the stand-in one-step modification (Sec. 5; :func:`ms.rebalance` once the
    observable residual is below ``switch_below``, scale c).

    Args:
        key: base PRNG key. n, r, m, cond, k: problem and columns. eta: step. alphas: scales.
        seeds: fresh problems. steps: vanilla horizon. steps_mod: horizon of the k = r and
        modified runs. switch_below: trigger level. c: σ_min(F) after the step.

    Returns:
        :class:`AsymSweep` (shapes in its field comments).
    """
    a = jnp.asarray(alphas)[:, None, None]
    out = {name: [] for name in AsymSweep._fields}
    for s in range(seeds):
        truth, op, y, Ft, Gt = asymmetric_problem(jax.random.fold_in(key, s), n, r, m, cond, k)
        F0s, G0s = a * Ft, a * Gt / 3
        out["vanilla"].append(ms.asymmetric_gd_batch(op, y, truth, F0s, G0s, eta, steps).err)
        out["exact"].append(ms.asymmetric_gd(op, y, truth, F0s[1][:, :r], G0s[1][:, :r], eta,
                                             steps_mod).err)
        mod = ms.asymmetric_gd_batch(op, y, truth, F0s, G0s, eta, steps_mod, switch_below, c)
        out["modified"].append(mod.err)
        out["switch"].append(mod.switch_step)
        out["jump"].append(mod.product_change)
    return AsymSweep(**{name: np.array([np.asarray(v) for v in vals])
                        for name, vals in out.items()})


def half_rate_ratio(err: ArrayLike, lo: float, hi: float) -> np.ndarray:
    """Lower-half / upper-half rate of :func:`ms.half_window_rates` for every run (1 if linear).

    Args:
        err: error curves, shape (..., T+1). lo, hi: the fit window lo < err < hi.

    Returns:
        Ratios of shape (...).
    """
    err = np.asarray(err)
    flat = err.reshape(-1, err.shape[-1])
    ratios = [lower / upper for upper, lower in (ms.half_window_rates(e, lo, hi) for e in flat)]
    return np.reshape(ratios, err.shape[:-1])


def asymmetric_analysis(asym: AsymSweep, alphas: list[float],
                        alpha_claim: list[float]) -> AsymAnalysis:
    """What the claims of sections 3–4 read from :func:`asymmetric_sweep`: tail rates λ(α) on
    1e-26 < err < 1e-8 (the exp(−Ω(α²T)) law: λ/α² constant), linearity of the vanilla and k = r
    tails, and the rates, trigger steps and product jumps of the stand-in modification.

    Args:
        asym: the sweep. alphas: its scales. alpha_claim: the scales the claims use (⊆ alphas).

    Returns:
        :class:`AsymAnalysis`.
    """
    i_claim = [alphas.index(a) for a in alpha_claim]
    van_rates = ms.tail_rates(asym.vanilla, 1e-26, 1e-8)
    return AsymAnalysis(
        i_claim, van_rates, van_rates[:, i_claim] / np.asarray(alpha_claim) ** 2,
        half_rate_ratio(asym.exact, 1e-20, 1e-6), ms.tail_rates(asym.exact, 1e-20, 1e-6),
        half_rate_ratio(asym.vanilla[:, i_claim], 1e-26, 1e-8),
        ms.tail_rates(asym.modified[:, i_claim], 1e-26, 1e-8),
        asym.switch[:, i_claim], asym.jump[:, i_claim])


def curse_of_symmetry(key: jax.Array, n: int, r: int, m: int, cond: float, k: int, eta: float,
                      alpha: float, steps: int) -> dict:
    """The curse of symmetry (paper title, Sec. 4): on the symmetric problem of ``key`` (as in
    :func:`symmetric_sweep`, seed 0) asymmetric GD from F0 = G0 = αX̃ against symmetric GD from
    αX̃, and an imbalanced start F0 = αX̃, G0 = (α/3)G̃ measured by a non-symmetric operator
    (symmetric A_i cannot see the antisymmetric part of FGᵀ).

    Args:
        key: the sweep's base key. n, r, m, cond: problem. k: columns. eta: step.
        alpha: initialisation scale. steps: iterations T.

    Returns:
        ``{"equal", "gap", "symmetric", "imbalanced"}``, each of shape (T+1,): the errors of the
        three runs and ‖F_t − G_t‖_F of the equal start.
    """
    kp, _ = jax.random.split(jax.random.fold_in(key, 0))
    truth, op, y = symmetric_problem(kp, n, r, m, cond)
    ke1, ke2, ko = jax.random.split(jax.random.fold_in(key, 99), 3)
    X0 = ms.small_init(ke1, n, k, alpha)
    equal = ms.asymmetric_gd(op, y, truth, X0, X0, eta, steps)
    sym = ms.symmetric_gd(op, y, truth, X0, eta, steps)
    gen = ms.gaussian_sensing(ko, m, n)
    imbal = ms.asymmetric_gd(gen, ms.forward(gen, truth.M), truth, X0,
                             ms.small_init(ke2, n, k, alpha / 3), eta, steps)
    return {"equal": np.asarray(equal.err), "gap": np.asarray(equal.fg_gap),
            "symmetric": np.asarray(sym.err), "imbalanced": np.asarray(imbal.err)}


def validate(cfg: SimpleNamespace, alpha_claim: list[float]) -> None:
    """Reject settings the protocols cannot use (before any compute).

    Args:
        cfg: the notebook's resolved settings. alpha_claim: the alphas the claims use.

    Returns:
        None.

    Raises:
        ValueError: naming the offending knob.
    """
    if not (1 <= cfg.r < cfg.n and cfg.m >= 1 and cfg.cond >= 1 and cfg.eta > 0 and cfg.seeds >= 2):
        raise ValueError("need 1 <= r < n, m >= 1, cond >= 1, eta > 0, seeds >= 2")
    if cfg.r not in cfg.k_sym or max(cfg.k_sym) > cfg.n or min(cfg.k_sym) < cfg.r \
            or not any(k > cfg.r for k in cfg.k_sym):
        raise ValueError(f"k_sym must lie in [r, n] with r = {cfg.r} and some k > r: {cfg.k_sym}")
    if len(cfg.alphas_sym) < 3 or min(cfg.alphas_sym) <= 0:
        raise ValueError(f"alphas_sym needs at least three positive values, got {cfg.alphas_sym}")
    if not cfg.r < cfg.k_asym <= cfg.n:
        raise ValueError(f"k_asym must satisfy r < k_asym <= n, got {cfg.k_asym}")
    if not set(alpha_claim) <= set(cfg.alphas) or min(cfg.alphas) <= 0 or cfg.alphas[1] != 0.1:
        raise ValueError(f"alphas must be positive, hold {alpha_claim}, 0.1 second: {cfg.alphas}")
    if min(cfg.steps_sym, cfg.steps_asym, cfg.steps_mod) < 200 or cfg.switch_below <= 0:
        raise ValueError("every horizon must be >= 200 steps and switch_below > 0")


# ------------------------------------------------------------------------------ figures and table


def errorbar_over_seeds(ax: plt.Axes, x: ArrayLike, samples: ArrayLike, *, geometric: bool = False,
                        **kw) -> None:
    """Mean ± s.e. over the first axis of ``samples`` against ``x``; ``geometric``: the mean and
    s.e. of log10(samples), drawn back on the original scale (geometric mean ± s.e.).

    Args:
        ax: target axes. x: abscissae, shape (P,). samples: shape (seeds, P).
        geometric: average on a log scale. **kw: passed to ``ax.errorbar``.

    Returns:
        None (draws on ``ax``).
    """
    if not geometric:
        mu, se = stats.mean_and_se(samples)
        ax.errorbar(x, mu, yerr=se, **kw)
        return
    mu, se = stats.mean_and_se(np.log10(samples))
    ax.errorbar(x, 10 ** mu, yerr=[10 ** mu - 10 ** (mu - se), 10 ** (mu + se) - 10 ** mu], **kw)


def _sublinear_law(ax: plt.Axes, t: np.ndarray, k: int, r: int, eta: float, **kw) -> None:
    """The closed form (k − r)/(4η²t²) from t = 100 on (brief §3, C2)."""
    ax.plot(t[100:], (k - r) / (4 * eta ** 2 * t[100:] ** 2), "--", lw=0.8, **kw)


def symmetric_figure(sym: SymSweep, an: SymAnalysis, cfg: SimpleNamespace) -> plt.Figure:
    """Fig. 1 of the notebook: symmetric GD curves for every k (seed 0, middle α), the k > r curves
    on log–log axes with the Cauchy–Schwarz bound and the closed form, and the slope ratios.

    Args:
        sym: :func:`symmetric_sweep`. an: :func:`symmetric_analysis`. cfg: the settings.

    Returns:
        The figure (three panels).
    """
    t = np.arange(sym.err.shape[-1])
    ja = len(cfg.alphas_sym) // 2
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.8))
    for i, k in enumerate(cfg.k_sym):
        for o, ls in enumerate(["-", ":"]):
            axes[0].plot(t[1:], sym.err[o, 0, ja, i, 1:], ls, color=f"C{i}")
        if k > cfg.r:
            axes[1].plot(t[1:], sym.err[0, 0, ja, i, 1:], color=f"C{i}")
            axes[1].plot(t[1:], sym.j_norm2[0, 0, ja, i, 1:] ** 2 / (cfg.n - cfg.r),
                         color=f"C{i}", lw=0.6, alpha=0.6)
            _sublinear_law(axes[1], t, k, cfg.r, cfg.eta, color=f"C{i}")
    for j, k in enumerate(an.k_over):
        for o, (mk, lab) in enumerate([("o-", "Gaussian sensing"), ("s:", "A = I")]):
            errorbar_over_seeds(axes[2], cfg.alphas_sym, an.ratio[o][:, :, j], fmt=mk,
                                color=f"C{an.i_over[j]}", capsize=3, label=f"k={k}, {lab}")
    axes[2].axhline(1.0, color="k", lw=0.8)
    ks_legend = [Line2D([], [], color=f"C{i}", label=f"k={k}") for i, k in enumerate(cfg.k_sym)]
    axes[0].legend(handles=ks_legend + [Line2D([], [], color="k", ls=ls, label=lab) for ls, lab in
                                        [("-", "Gaussian sensing"), (":", "A = I")]], fontsize=7)
    axes[0].set(xscale="log", yscale="log", ylim=(1e-30, 10), xlabel="iteration t",
                ylabel="‖XXᵀ − M*‖_F²", title=f"symmetric GD, n={cfg.n}, m={cfg.m}, "
                f"α={cfg.alphas_sym[ja]} (seed 0)")
    axes[1].legend(handles=ks_legend[an.i_r + 1:] + [
        Line2D([], [], color="k", label="Gaussian sensing"),
        Line2D([], [], color="k", lw=0.6, alpha=0.6, label="check: ‖J_t‖⁴/(n−r)"),
        Line2D([], [], color="k", ls="--", lw=0.8, label="(k−r)/(4η²t²)")], fontsize=7)
    axes[1].set(xscale="log", yscale="log", xlabel="iteration t", ylabel="‖XXᵀ − M*‖_F²",
                title="k > r on log–log: slope → −2")
    axes[2].legend(fontsize=7)
    axes[2].set(xlabel="initialisation scale α", ylabel="slope of err^(−1/2) / (2η/√(k−r))",
                title=f"1/T² constant, mean ± s.e. over {cfg.seeds} seeds")
    return fig


def _rates_vs_alpha(ax: plt.Axes, an: AsymAnalysis, cfg: SimpleNamespace, label: str) -> None:
    """Vanilla tail rates λ(α) (mean ± s.e.), the α² law through α = 0.1 and the k = r rate."""
    a_line = np.array(cfg.alphas)
    mean_rate = an.van_rates.mean(0)
    errorbar_over_seeds(ax, cfg.alphas, an.van_rates, fmt="o-", label=label)
    ax.plot(a_line, mean_rate[cfg.alphas.index(0.1)] * (a_line / 0.1) ** 2, "k--", lw=0.8,
            label="∝ α² (through α = 0.1)")
    ax.axhline(an.exact_rates.mean(), color="C2", ls=":", label="exact parameterisation k = r")
    ax.set(xscale="log", yscale="log", xlabel="initialisation scale α",
           title=f"rate vs α (mean ± s.e. over {cfg.seeds} seeds)")


def alpha_figure(asym: AsymSweep, an: AsymAnalysis, cfg: SimpleNamespace) -> plt.Figure:
    """Fig. 2b analogue: vanilla asymmetric GD curves per α (seed 0) and the tail rate against α.

    Args:
        asym: :func:`asymmetric_sweep`. an: :func:`asymmetric_analysis`. cfg: the settings.

    Returns:
        The figure (two panels).
    """
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.5))
    for i, a in enumerate(cfg.alphas):
        axes[0].plot(asym.vanilla[0, i], label=f"α={a:g}")
    axes[0].set(yscale="log", ylim=(1e-30, 10), xlabel="iteration t", ylabel="‖FGᵀ − M*‖_F²",
                title=f"asymmetric GD, k={cfg.k_asym}>r={cfg.r}, F₀=αF̃, G₀=(α/3)G̃ (seed 0)")
    axes[0].legend()
    _rates_vs_alpha(axes[1], an, cfg, "vanilla GD, tail rate λ(α)")
    axes[1].set(ylabel="λ = −d ln err / dt")
    axes[1].legend()
    return fig


def modification_figure(asym: AsymSweep, an: AsymAnalysis, cfg: SimpleNamespace,
                        alpha_claim: list[float]) -> plt.Figure:
    """Sec. 5: vanilla and stand-in-step curves per claim α (seed 0, trigger steps marked) and the
    tail rates with the step against the vanilla ones.

    Args:
        asym, an: the sweep and its analysis. cfg: the settings. alpha_claim: the claim's alphas.

    Returns:
        The figure (two panels).
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for j, i in enumerate(an.i_claim):
        a = cfg.alphas[i]
        axes[0].plot(asym.vanilla[0, i, : cfg.steps_mod + 1], color=f"C{j}", ls=":",
                     label=f"vanilla, α={a:g}")
        axes[0].plot(asym.modified[0, i], color=f"C{j}", label=f"stand-in step, α={a:g}")
        axes[0].axvline(an.switch[0, j], color=f"C{j}", lw=0.6, alpha=0.5)
    axes[0].set(yscale="log", ylim=(1e-30, 10), xlabel="iteration t", ylabel="‖FGᵀ − M*‖_F²",
                title=f"one-step modification (stand-in, c=√σ_r), trigger {cfg.switch_below:g}")
    axes[0].legend(ncol=2, fontsize=7)
    _rates_vs_alpha(axes[1], an, cfg, "vanilla GD")
    errorbar_over_seeds(axes[1], alpha_claim, an.mod_rates, fmt="s-",
                        label="with the stand-in step (c=√σ_r)")
    axes[1].set(ylabel="tail rate λ")
    axes[1].legend(fontsize=7)
    return fig


def curse_figure(curse: dict, cfg: SimpleNamespace, alpha: float) -> plt.Figure:
    """Curse of symmetry: the equal and imbalanced starts of :func:`curse_of_symmetry` against the
    closed form (k − r)/(4η²t²), and ‖F_t − G_t‖_F of the equal start.

    Args:
        curse: :func:`curse_of_symmetry` (k = cfg.k_asym). cfg: the settings. alpha: its scale.

    Returns:
        The figure (two panels).
    """
    t = np.arange(curse["equal"].size)
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
    axes[0].plot(t[1:], curse["equal"][1:], label="F₀ = G₀ (balanced, equal)")
    axes[0].plot(t[1:], curse["imbalanced"][1:],
                 label="F₀ = αF̃, G₀ = (α/3)G̃ (non-symmetric A_i)")
    _sublinear_law(axes[0], t, cfg.k_asym, cfg.r, cfg.eta, color="k", label="(k−r)/(4η²t²)")
    axes[0].set(xscale="log", yscale="log", ylim=(1e-30, 10), xlabel="iteration t",
                ylabel="‖FGᵀ − M*‖_F²", title=f"curse of symmetry, k={cfg.k_asym}, α={alpha:g}")
    axes[0].legend(fontsize=7)
    axes[1].plot(t, np.maximum(curse["gap"], 1e-20), label="F₀ = G₀")
    axes[1].axhline(1e-10, color="k", ls="--", lw=0.8, label="check threshold 1e-10")
    axes[1].set(yscale="log", ylim=(1e-21, 1e-5), xlabel="iteration t",
                ylabel="‖F_t − G_t‖_F (floored at 1e-20)", title="equal factors stay equal")
    axes[1].legend()
    return fig


def table1_markdown(san: SymAnalysis, aan: AsymAnalysis, loglog_eq: float, cfg: SimpleNamespace,
                    alpha_claim: list[float]) -> str:
    """The paper's Table 1 re-rendered with the measured rates (markdown).

    Args:
        san, aan: the symmetric and asymmetric analyses. loglog_eq: log–log slope of the F0 = G0
        run. cfg: the settings. alpha_claim: the alphas of the modification.

    Returns:
        A markdown table.
    """
    rows = ["| setting | paper (Table 1 / abstract) | measured here |", "|---|---|---|",
            f"| symmetric, k = r | exp(−Ω(T)) | λ = {san.rate[0]:.4f} (sensing), "
            f"{san.rate[1]:.4f} (𝒜 = I) |"]
    for j, k in enumerate(san.k_over):
        rows.append(f"| symmetric, k = {k} > r | Ω(1/T²) lower bound | d err^(−1/2)/dt = "
                    f"{san.summ[0]['slope'][..., j].mean():.4f} (sensing), "
                    f"{san.summ[1]['slope'][..., j].mean():.4f} (𝒜 = I), 2η/√(k−r) = "
                    f"{san.target[j]:.4f}; log–log slope "
                    f"{san.summ[0]['loglog'][..., j].mean():.3f} |")
    a2 = aan.van_rates.mean(0) / np.asarray(cfg.alphas) ** 2
    mod = ", ".join(f"{v:.4f} (α={a:g})" for v, a in zip(aan.mod_rates.mean(0), alpha_claim))
    rows += [f"| asymmetric, k = r | exp(−Ω(T)) | λ = {aan.exact_rates.mean():.4f} |",
             f"| asymmetric, k = {cfg.k_asym} > r | exp(−Ω(α²T)) | λ/α² = "
             + ", ".join(f"{v:.3f} (α={a:g})" for v, a in zip(a2, cfg.alphas)) + " |",
             "| asymmetric + one-step modification (our stand-in) | independent of α | "
             f"λ = {mod} |",
             f"| asymmetric, F₀ = G₀ on a symmetric problem | as symmetric k > r | log–log slope "
             f"{loglog_eq:.3f} |"]
    return "\n".join(rows)
