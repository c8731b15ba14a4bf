"""Protocols of Ma & Fattahi 2023 (arXiv 2202.08788), built on :mod:`paperlib.matrix_sensing`.

* :func:`make_instance`: one problem (PSD M*, symmetric Gaussian operator, outliers, Gaussian
  noise);
* :func:`signrip_terms` / :func:`phi_closed_form`: the Sign-RIP scaling function by Monte Carlo;
* :func:`subgm_runs`: SubGM from U0 = α·Ũ for a list of (r', α, measurement vector) on one instance,
  all in one ``vmap`` (the runs share the operator, so its products are matrix-matrix products);
* :func:`l2_runs`: the ℓ2 GD baseline on the same data;
* :func:`dense_noise`: dense Gaussian noise, SubGM from a small start against an ℓ1 descent
  started at the truth factor (does the ℓ1 loss have points below f(M*)?);
* :func:`sample_sweep` / :func:`instance_thresholds`: success against the number of measurements
  m for several r', per instance, on nested operators (the first m rows of one stored operator).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from paperlib import matrix_sensing as ms


class Instance(NamedTuple):
    truth: ms.Truth
    op: ms.Sensing
    y0: jax.Array  # clean measurements
    s_out: jax.Array  # outlier noise (fraction p_out, uniform on ±scale)
    s_gauss: jax.Array  # Gaussian noise (fraction p_gauss, N(0, nu^2))
    scale: float  # outlier magnitude: outlier_scale * max_i |<A_i, M*>|
    key: jax.Array  # for further noise draws and initialisations


def make_instance(key, d, r, m, cond, p_out, outlier_scale, p_gauss, nu) -> Instance:
    """A fresh (M*, 𝒜, noise) with symmetric A_i = (G_i + G_iᵀ)/2 and outliers of magnitude up to
    ``outlier_scale`` times the largest clean measurement (the ScaledGD anchor's model)."""
    kt, ko, kn, kg, kr = jax.random.split(key, 5)
    truth = ms.psd_truth(kt, d, r, cond)
    op = ms.gaussian_sensing(ko, m, d, symmetric=True)
    y0 = ms.forward(op, truth.M)
    scale = outlier_scale * float(jnp.max(jnp.abs(y0)))
    return Instance(truth, op, y0, ms.outlier_noise(kn, m, p_out, scale),
                    ms.gaussian_noise(kg, m, p_gauss, nu), scale, kr)


def phi_closed_form(p, nu, size):
    """φ(X) = √(2/π)[(1 − p) + p/√(1 + ν²/‖X‖_F²)]: E⟨Q, X/‖X‖⟩ for iid N(0, 1) A_i and noise
    N(0, ν²) with probability p, 0 otherwise (E[sign(g − s)g], g ~ N(0, ‖X‖²); brief §2.4)."""
    p, nu, size = (np.asarray(v, float) for v in (p, nu, size))
    return np.sqrt(2 / np.pi) * ((1 - p) + p / np.sqrt(1 + nu ** 2 / size ** 2))


def signrip_terms(key, m: int, d: int, cases) -> np.ndarray:
    """Per-measurement terms sign(⟨A_i, X⟩ − s_i)⟨A_i, X/‖X‖⟩, shape (m, cases), for a fixed
    random direction X/‖X‖ and each case (p, ν, ‖X‖); their mean is ⟨Q, X/‖X‖⟩, Q the ℓ1
    sub-gradient."""
    op = ms.gaussian_sensing(key, m, d)
    X = jax.random.normal(jax.random.fold_in(key, 1), (d, d))
    X = X / jnp.linalg.norm(X)
    unit = ms.forward(op, X)
    cols = []
    for j, (p, nu, size) in enumerate(cases):
        noise = ms.gaussian_noise(jax.random.fold_in(key, 10 + j), m, p, nu)
        cols.append(np.asarray(jnp.sign(size * unit - noise) * unit))
    return np.stack(cols, axis=1)


def subgm_runs(inst: Instance, ys, ranks, alphas, eta0, rho, steps: int, init_key=None):
    """SubGM for run j with measurement vector ys[j], rank ranks[j] (zero-padded to max rank) and
    scale alphas[j], from U0 = α·Ũ (one Ũ per instance). Returns the errors, shape (runs, T+1)."""
    key = inst.key if init_key is None else init_key
    kmax = max(ranks)
    U0s = jnp.stack([ms.small_init(key, inst.truth.M.shape[0], kmax, a, k)
                     for k, a in zip(ranks, alphas)])
    n = len(ranks)
    out = ms.subgradient_batch(inst.op, jnp.asarray(ys), inst.truth, U0s, [eta0] * n, [rho] * n,
                               steps)
    return np.asarray(out.err)


def l2_runs(inst: Instance, ys, r: int, alpha: float, eta: float, steps: int) -> np.ndarray:
    """ℓ2 GD (``ms.symmetric_gd``) from the same U0 as :func:`subgm_runs` with rank r; returns
    ‖UUᵀ − M*‖_F (not squared), shape (runs, T+1)."""
    U0 = ms.small_init(inst.key, inst.truth.M.shape[0], r, alpha)
    U0s = jnp.broadcast_to(U0, (len(ys),) + U0.shape)
    return np.sqrt(np.asarray(ms.l2_gd_batch(inst.op, jnp.asarray(ys), inst.truth, U0s, eta,
                                             steps).err))


def l1_loss(op, y, U) -> float:
    """f(U) = (1/m)‖y − 𝒜(UUᵀ)‖₁ (Ma & Fattahi's objective)."""
    return float(jnp.mean(jnp.abs(y - ms.forward(op, U @ U.T))))


def dense_noise(inst: Instance, ps, nu, alpha, eta0, rho, steps, local_eta0, local_rho) -> dict:
    """For each fraction p of Gaussian noise N(0, ν²): SubGM from U0 = αŨ (rank r), and an ℓ1
    descent (SubGM with small steps local_eta0·local_rhoᵗ) started at the truth factor
    U* = U diag(√s).
    Returns final errors, and f at U*, at the descent's end and at SubGM's end."""
    m = inst.y0.shape[0]
    r = inst.truth.s.shape[0]
    ys = jnp.stack([inst.y0 + ms.gaussian_noise(jax.random.fold_in(inst.key, 50 + j), m, p, nu)
                    for j, p in enumerate(ps)])
    U0 = ms.small_init(inst.key, inst.truth.M.shape[0], r, alpha)
    U_star = inst.truth.U * jnp.sqrt(inst.truth.s)
    P = len(ps)
    sub = ms.subgradient_batch(inst.op, ys, inst.truth, jnp.broadcast_to(U0, (P,) + U0.shape),
                               [eta0] * P, [rho] * P, steps)
    loc = ms.subgradient_batch(inst.op, ys, inst.truth, jnp.broadcast_to(U_star, (P,) + U0.shape),
                               [local_eta0] * P, [local_rho] * P, steps)
    f = lambda U, j: l1_loss(inst.op, ys[j], U)  # noqa: E731
    return {"err": np.asarray(sub.err[:, -1]), "err_local": np.asarray(loc.err[:, -1]),
            "f_star": np.array([f(U_star, j) for j in range(P)]),
            "f_local": np.array([f(loc.U[j], j) for j in range(P)]),
            "f_subgm": np.array([f(sub.U[j], j) for j in range(P)])}


def sample_sweep(key, d, r, cond, ranks, m_grid, instances: int, p_out, outlier_scale, alpha, eta0,
                 rho, steps: int) -> np.ndarray:
    """Final relative error ‖UUᵀ − M*‖_F/‖M*‖_F of SubGM for every (instance, r', m): one
    operator of max(m_grid) rows per instance, its first m rows form the m-measurement operator
    (weights 1/m on them), outliers at fraction p_out; shape (instances, ranks, m_grid)."""
    R, G, M = len(ranks), len(m_grid), max(m_grid)
    out = []
    for s in range(instances):
        inst = make_instance(jax.random.fold_in(key, s), d, r, M, cond, p_out, outlier_scale,
                             0.0, 0.0)
        W = jnp.stack([ms.use_first(inst.op, mm).w for _ in ranks for mm in m_grid])
        U0s = jnp.stack([ms.small_init(inst.key, d, max(ranks), alpha, k) for k in ranks
                         for _ in m_grid])
        ys = jnp.broadcast_to(inst.y0 + inst.s_out, (R * G, M))
        e = ms.subgradient_batch(inst.op, ys, inst.truth, U0s, [eta0] * R * G, [rho] * R * G,
                                 steps, weights=W).err[:, -1]
        out.append(np.asarray(e).reshape(R, G) / float(jnp.linalg.norm(inst.truth.M)))
    return np.array(out)


def instance_thresholds(rel_err, m_grid, tol: float, beyond: float) -> np.ndarray:
    """Per instance and r' (leading axes): the smallest grid m from which rel_err ≤ tol at that m
    and every larger grid m; ``beyond`` (a censoring value above the grid) if it fails at the
    largest m."""
    m_grid = np.asarray(m_grid, float)
    ok = np.asarray(rel_err) <= tol
    # suffix "all": ok from this m to the end of the grid
    tail_ok = np.flip(np.logical_and.accumulate(np.flip(ok, -1), axis=-1), -1)
    first = np.argmax(tail_ok, axis=-1)
    return np.where(tail_ok.any(-1), m_grid[first], beyond)


def psd_parameters(d: int, k: int) -> int:
    """Free parameters of a d×d PSD matrix of rank k (dk − k(k−1)/2), the natural count of an
    over-parameterised factor UUᵀ with k columns."""
    return d * k - k * (k - 1) // 2


def tail_rates(err, lo: float, hi: float) -> np.ndarray:
    """``ms.tail_rate`` over every run (last axis = time)."""
    err = np.asarray(err)
    flat = err.reshape(-1, err.shape[-1])
    return np.reshape([ms.tail_rate(e, lo, hi) for e in flat], err.shape[:-1])


def validate(cfg) -> None:
    """Reject settings the protocols cannot use (before any compute)."""
    if not (1 <= cfg.r and 2 * cfg.r < cfg.d and cfg.cond >= 1 and cfg.alpha > 0 and cfg.eta0 > 0):
        raise ValueError("need 1 <= r, 2r < d, cond >= 1, alpha > 0, eta0 > 0")
    if cfg.seeds < 2 or cfg.sweep_seeds < 2 or cfg.l2_eta <= 0 or cfg.sweep_eta0 <= 0:
        raise ValueError("seeds and sweep_seeds must be >= 2, steps positive")
    if not (0 < cfg.rho < 1 and 0 < cfg.sweep_rho < 1 and cfg.steps >= 400):
        raise ValueError("rho and sweep_rho must lie in (0, 1) and steps >= 400")
    if cfg.ranks[0] != cfg.r or cfg.ranks[-1] != cfg.d or sorted(set(cfg.ranks)) != cfg.ranks:
        raise ValueError(f"ranks must increase from r = {cfg.r} to d = {cfg.d}, got {cfg.ranks}")
    if not all(0 <= p < 1 for p in cfg.fractions + [cfg.p_out]):
        raise ValueError("corruption fractions must lie in [0, 1)")
    dense = cfg.dense_fractions
    if not all(0 <= p <= 1 for p in dense) or not any(p < 1 for p in dense):
        raise ValueError("dense_fractions must lie in [0, 1] with at least one p < 1")
    a = cfg.floor_alphas
    if len(a) < 3 or min(a) <= 0 or a != sorted(a, reverse=True) or a[0] < 1 or a[-1] != cfg.alpha \
            or sum(x < 1 for x in a) < 2:
        raise ValueError(f"floor_alphas must decrease from >= 1 to alpha, two below 1: {a}")
    if len(cfg.m_grid) < 2 or min(cfg.m_grid) < 1 or sorted(set(cfg.m_grid)) != cfg.m_grid:
        raise ValueError(f"m_grid must increase strictly from a positive count, got {cfg.m_grid}")
