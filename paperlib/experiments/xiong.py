"""Protocols of Xiong, Ding, Du 2024 (arXiv 2310.01769), built on :mod:`paperlib.matrix_sensing`.

* :func:`symmetric_sweep`: symmetric GD over seeds x alphas x k (Table 1 rows 1-2, Thm 3.1), with
  Gaussian sensing and with the identity operator, every (alpha, k) of a seed in one ``vmap``;
* :func:`sublinear_summary`: the 1/T^2 statistics of those runs (slope of err^{-1/2}, log-log slope,
  the Cauchy-Schwarz bound ratio) per (seed, alpha, k);
* :func:`asymmetric_sweep`: asymmetric GD over seeds x alphas (Sec. 4, Fig. 2b), the k = r run
  and the one-step modification (Sec. 5, our stand-in for eq. 5.1);
* :func:`curse_of_symmetry`: F0 = G0 on the symmetric problem against symmetric GD and an
  imbalanced start.

Every seed is a fresh (M*, A, initialisation); runs of a seed share the operator, so the ``vmap``
over initialisations turns the sensing products into matrix-matrix products.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from paperlib import matrix_sensing as ms
from paperlib import stats


class SymSweep(NamedTuple):
    err: np.ndarray  # (2 operators [sensing, identity], seeds, alphas, ks, T+1) ‖XXᵀ − M*‖_F²
    j_norm2: np.ndarray  # same shape, ‖J_t‖_F² (rows outside range(M*))
    truth: ms.Truth  # seed 0's ground truth (for plots)


class AsymSweep(NamedTuple):
    vanilla: np.ndarray  # (seeds, alphas, T_asym+1) vanilla GD errors
    exact: np.ndarray  # (seeds, T_mod+1) k = r errors at alpha = alphas[1]
    modified: np.ndarray  # (seeds, alphas, T_mod+1) with the stand-in step
    switch: np.ndarray  # (seeds, alphas) step at which the stand-in step fired (-1: never)
    jump: np.ndarray  # (seeds, alphas) ‖F'G'ᵀ − FGᵀ‖_F caused by the step


def symmetric_problem(key, n: int, r: int, m: int, cond: float):
    """PSD rank-r truth, symmetric Gaussian operator (m measurements) and clean measurements."""
    kt, ko = jax.random.split(key)
    truth = ms.psd_truth(kt, n, r, cond)
    op = ms.gaussian_sensing(ko, m, n, symmetric=True)
    return truth, op, ms.forward(op, truth.M)


def symmetric_sweep(key, n, r, m, cond, eta, ks, alphas, seeds: int, steps: int) -> SymSweep:
    """Symmetric GD (X ← X − η𝒜*(𝒜(XXᵀ) − y)X) from X0 = α·X̃ (entries N(0, 1/k), zero columns
    up to max k) for every (seed, α, k), with Gaussian sensing and with 𝒜 = I."""
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


def sublinear_summary(err, j_norm2, n: int, r: int, t_from: int) -> dict:
    """For runs with k > r (last axis = time): slope of err^{-1/2} on [t_from, T], log-log slope of
    err on [t_from, T] and min_t err_t / (‖J_t‖_F⁴/(n − r)) (≥ 1 by Cauchy–Schwarz)."""
    err, j_norm2 = np.asarray(err), np.asarray(j_norm2)
    flat, jflat = err.reshape(-1, err.shape[-1]), j_norm2.reshape(-1, err.shape[-1])
    t = np.arange(t_from, err.shape[-1])
    slope = [ms.inverse_sqrt_slope(e, t_from) for e in flat]
    loglog = [stats.loglog_slope(t, e[t_from:]) for e in flat]
    bound = [np.min(e / (j ** 2 / (n - r))) for e, j in zip(flat, jflat)]
    return {name: np.reshape(v, err.shape[:-1]) for name, v in
            (("slope", slope), ("loglog", loglog), ("bound", bound))}


def asymmetric_problem(key, n, r, m, cond, k):
    """Generic rank-r truth (independent U, V), non-symmetric Gaussian operator, and the unit-scale
    factors F̃, G̃ (entries N(0, 1/k)) of the imbalanced start F0 = αF̃, G0 = (α/3)G̃."""
    ks = jax.random.split(key, 4)
    truth = ms.asymmetric_truth(ks[0], n, n, r, cond)
    op = ms.gaussian_sensing(ks[1], m, n)
    Ft, Gt = ms.small_init(ks[2], n, k, 1.0), ms.small_init(ks[3], n, k, 1.0)
    return truth, op, ms.forward(op, truth.M), Ft, Gt


def asymmetric_sweep(key, n, r, m, cond, k, eta, alphas, seeds: int, steps: int, steps_mod: int,
                     switch_below: float, c: float) -> AsymSweep:
    """Vanilla asymmetric GD for every (seed, α) (same F̃, G̃ for every α of a seed), the exact
    parameterisation k = r at α = alphas[1], and the stand-in one-step modification (trigger on the
    observable residual below ``switch_below``, scale c)."""
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


def tail_rates(err, lo: float, hi: float) -> np.ndarray:
    """``ms.tail_rate`` over every run (last axis = time)."""
    err = np.asarray(err)
    flat = err.reshape(-1, err.shape[-1])
    return np.reshape([ms.tail_rate(e, lo, hi) for e in flat], err.shape[:-1])


def half_rate_ratio(err, lo: float, hi: float) -> np.ndarray:
    """Lower-half / upper-half rate of ``ms.half_window_rates`` over every run (1 when linear)."""
    err = np.asarray(err)
    flat = err.reshape(-1, err.shape[-1])
    ratios = [lower / upper for upper, lower in (ms.half_window_rates(e, lo, hi) for e in flat)]
    return np.reshape(ratios, err.shape[:-1])


def curse_of_symmetry(key, n, r, m, cond, k, eta, alpha: float, steps: int) -> dict:
    """On the symmetric problem of ``key`` (as in :func:`symmetric_sweep`, seed 0): asymmetric GD
    from F0 = G0 = αX̃ with the symmetric operator, symmetric GD from X̃ α, and an imbalanced start
    (F0 = αF̃, G0 = (α/3)G̃) measured by a non-symmetric operator (symmetric A_i cannot see the
    antisymmetric part of FGᵀ)."""
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


def validate(cfg, alpha_claim) -> None:
    """Reject settings the protocols cannot use (before any compute)."""
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
