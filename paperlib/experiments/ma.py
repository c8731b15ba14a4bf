"""Protocols of Ma & Fattahi 2023 (arXiv 2202.08788), built on :mod:`paperlib.matrix_sensing`.

* :func:`make_instance` / :func:`outlier_instances`: problems (PSD M*, symmetric Gaussian
  operator, outliers, Gaussian noise); :func:`growth_budget`: the step budget SubGM needs;
* :func:`signrip_terms` / :func:`phi_closed_form`: the Sign-RIP scaling function by Monte Carlo;
* :func:`subgm_runs`: SubGM from U0 = α·Ũ for a list of (r', α, measurement vector) on one instance,
  all in one ``vmap`` (the runs share the operator, so its products are matrix-matrix products);
  :func:`outlier_runs` (every r' and the α-floor), :func:`noise_runs` (noise models against
  :func:`l2_runs`, the ℓ2 GD baseline);
* :func:`dense_noise` / :func:`dense_runs`: dense Gaussian noise, SubGM from a small start against
  an ℓ1 descent started at the truth factor (does the ℓ1 loss have points below f(M*)?);
* :func:`sample_sweep` / :func:`instance_thresholds` / :func:`threshold_summary`: success against
  the number of measurements m for several r', per instance, on nested operators (the first m
  rows of one stored operator);
* figures (:func:`overparam_figure`, :func:`noise_figure`, :func:`dense_figure`,
  :func:`samples_figure`) and :func:`samples_markdown`.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jax.typing import ArrayLike

from paperlib import matrix_sensing as ms
from paperlib import stats
from paperlib.experiments.xiong import errorbar_over_seeds


class Instance(NamedTuple):
    """One problem of :func:`make_instance` (paper Sec. 1)."""

    truth: ms.Truth
    op: ms.Sensing
    y0: jax.Array  # clean measurements
    s_out: jax.Array  # outlier noise (fraction p_out, uniform on ±scale)
    s_gauss: jax.Array  # Gaussian noise (fraction p_gauss, N(0, nu^2))
    scale: float  # outlier magnitude: outlier_scale * max_i |<A_i, M*>|
    key: jax.Array  # for further noise draws and initialisations


class OutlierRuns(NamedTuple):
    """Runs and statistics of :func:`outlier_runs` (sections 2–3)."""

    rank_runs: np.ndarray  # (seeds, ranks, T+1) ‖UUᵀ − M*‖_F at α = alpha, every r'
    large: np.ndarray  # (seeds, T+1) r' = d from the first (large) floor alpha
    floors: np.ndarray  # (seeds, floor_alphas) final error of r' = d
    rates: np.ndarray  # (seeds,) tail rate of r' = r on 1e-10 < err < 1e-3
    t_grow: np.ndarray  # (seeds, ranks) first t with err ≤ 0.1‖M*‖_F
    floor_slopes: np.ndarray  # (seeds,) log–log slope of the r' = d floor against the α < 1


class NoiseRuns(NamedTuple):
    """Runs of :func:`noise_runs` (section 4)."""

    l1: np.ndarray  # (seeds, 2P, T+1) SubGM errors: outliers at every p, then Gaussian noise
    l2: np.ndarray  # (seeds, 2P, T_l2+1) ℓ2 GD errors on the same data
    frac_l1: np.ndarray  # (seeds, [outliers, Gaussian], P) SubGM final errors
    frac_l2: np.ndarray  # (seeds, 2, P) ℓ2 GD final errors


class Thresholds(NamedTuple):
    """Statistics of :func:`threshold_summary` (section 6)."""

    tol: float  # recovery level up to the α-floor, 10α
    beyond: float  # censoring value one grid step above the largest m
    m_c: np.ndarray  # (instances, ranks) thresholds at rel. error ≤ tol
    m_exact: np.ndarray  # (instances, ranks) thresholds at rel. error ≤ 1e-6
    exact_any: np.ndarray  # (ranks,) fraction of (instance, m) runs with rel. error ≤ 1e-6
    diff: np.ndarray  # (instances, ranks − 1) m_c(r') − m_c(r)
    ratio: np.ndarray  # (instances, ranks − 1) m_c(r')/m_c(r)
    params: np.ndarray  # (ranks − 1,) PSD parameter-count ratios


def make_instance(key: jax.Array, d: int, r: int, m: int, cond: float, p_out: float,
                  outlier_scale: float, p_gauss: float, nu: float) -> Instance:
    """A fresh (M*, 𝒜, noise) of the paper's model (Sec. 1): symmetric A_i = (G_i + G_iᵀ)/2,
    outliers of magnitude up to ``outlier_scale`` times the largest clean measurement (the ScaledGD
    anchor's model) on a fraction p_out, Gaussian noise N(0, ν²) on a fraction p_gauss.

    Args:
        key: PRNG key. d, r, m, cond: size, rank, measurements, condition number of M*.
        p_out, outlier_scale: outlier fraction and relative magnitude. p_gauss, nu: Gaussian noise.

    Returns:
        :class:`Instance` (measurement and noise vectors of shape (m,)).
    """
    kt, ko, kn, kg, kr = jax.random.split(key, 5)
    truth, op, y0 = ms.psd_problem(kt, ko, d, r, m, cond)
    scale = outlier_scale * float(jnp.max(jnp.abs(y0)))
    return Instance(truth, op, y0, ms.outlier_noise(kn, m, p_out, scale),
                    ms.gaussian_noise(kg, m, p_gauss, nu), scale, kr)


def outlier_instances(key: jax.Array, seeds: int, d: int, r: int, m: int, cond: float, p_out: float,
                      outlier_scale: float) -> list[Instance]:
    """:func:`make_instance` for seeds s = 0, …, seeds − 1 (``fold_in(key, s)``), outliers only.

    Args:
        key: base PRNG key. seeds: count. d, r, m, cond: problem. p_out, outlier_scale: outliers.

    Returns:
        A list of ``seeds`` instances.
    """
    return [make_instance(jax.random.fold_in(key, s), d, r, m, cond, p_out, outlier_scale, 0.0, 0.0)
            for s in range(seeds)]


def growth_budget(alpha: float, norm: float, p: float, sigma_r: float) -> float:
    """Total step Σ_t η_t SubGM needs to leave the α-ball: near U ≈ 0 the σ_r-direction grows like
    exp(2φσ_r/‖M*‖_F · Σ_t η_t) with φ ≥ √(2/π)(1 − p) (Sign-RIP, brief §6.9), so
    B = ln(1/α)‖M*‖_F/(2φσ_r).

    Args:
        alpha: initialisation scale. norm: ‖M*‖_F. p: corrupted fraction. sigma_r: σ_r(M*).

    Returns:
        B.
    """
    return float(np.log(1 / alpha) * norm / (2 * np.sqrt(2 / np.pi) * (1 - p) * sigma_r))


def budget_note(inst: list[Instance], cfg: SimpleNamespace) -> str:
    """The step schedule against :func:`growth_budget` at the largest corrupted fraction (section 2's
    criterion), on the first instance.

    Args:
        inst: instances (the first one's ‖M*‖_F is used). cfg: the settings (``alpha``, ``eta0``,
            ``rho``, ``r``, ``cond``, ``fractions``, ``p_out``).

    Returns:
        One line: ‖M*‖_F, the budget η₀/(1 − ρ) and the total step the growth phase needs.
    """
    norm0, p_max = float(np.linalg.norm(inst[0].truth.M)), max(cfg.fractions + [cfg.p_out])
    need = growth_budget(cfg.alpha, norm0, p_max, float(ms.spectrum(cfg.r, cfg.cond)[-1]))
    return (f"‖M*‖_F = {norm0:.4f}; step budget {cfg.eta0 / (1 - cfg.rho):.1f}; growth needs ≈ "
            f"{need:.1f} at p={p_max}")


def phi_closed_form(p: ArrayLike, nu: ArrayLike, size: ArrayLike) -> np.ndarray:
    """Sign-RIP scaling function φ(X) = √(2/π)[(1 − p) + p/√(1 + ν²/‖X‖_F²)] (brief §2.4): E⟨Q,
    X/‖X‖⟩ for iid N(0, 1) A_i and noise N(0, ν²) with probability p, 0 otherwise (E[sign(g − s)g],
    g ~ N(0, ‖X‖²)).

    Args:
        p, nu, size: noise fraction, noise scale, ‖X‖_F (broadcast together).

    Returns:
        φ, the broadcast shape.
    """
    p, nu, size = (np.asarray(v, float) for v in (p, nu, size))
    return np.sqrt(2 / np.pi) * ((1 - p) + p / np.sqrt(1 + nu ** 2 / size ** 2))


def signrip_terms(key: jax.Array, m: int, d: int,
                  cases: list[tuple[float, float, float]]) -> np.ndarray:
    """Per-measurement terms sign(⟨A_i, X⟩ − s_i)⟨A_i, X/‖X‖⟩ for a fixed random direction X/‖X‖
    and each case (p, ν, ‖X‖); their mean is ⟨Q, X/‖X‖⟩, Q the ℓ1 sub-gradient (Sign-RIP).

    Args:
        key: PRNG key. m: measurements (iid N(0, 1) entries). d: size. cases: list of (p, ν, ‖X‖).

    Returns:
        Terms of shape (m, len(cases)).
    """
    op = ms.gaussian_sensing(key, m, d)
    X = jax.random.normal(jax.random.fold_in(key, 1), (d, d))
    X = X / jnp.linalg.norm(X)
    unit = ms.forward(op, X)
    cols = []
    for j, (p, nu, size) in enumerate(cases):
        noise = ms.gaussian_noise(jax.random.fold_in(key, 10 + j), m, p, nu)
        cols.append(np.asarray(jnp.sign(size * unit - noise) * unit))
    return np.stack(cols, axis=1)


def subgm_runs(inst: Instance, ys: ArrayLike, ranks: list[int], alphas: list[float], eta0: float,
               rho: float, steps: int, init_key: jax.Array | None = None) -> np.ndarray:
    """SubGM (Alg. 1, :func:`ms.subgradient_method`) for run j with measurement vector ys[j], rank
    ranks[j] (zero-padded to max rank) and scale alphas[j], from U0 = α·Ũ (one Ũ per instance).

    Args:
        inst: the instance. ys: (runs, m). ranks, alphas: per run. eta0, rho: schedule η₀ρᵗ.
        steps: iterations T. init_key: key of Ũ (``inst.key`` if None).

    Returns:
        ‖U_tU_tᵀ − M*‖_F, shape (runs, T+1).
    """
    key = inst.key if init_key is None else init_key
    kmax = max(ranks)
    U0s = jnp.stack([ms.small_init(key, inst.truth.M.shape[0], kmax, a, k)
                     for k, a in zip(ranks, alphas)])
    n = len(ranks)
    out = ms.subgradient_batch(inst.op, jnp.asarray(ys), inst.truth, U0s, [eta0] * n, [rho] * n,
                               steps)
    return np.asarray(out.err)


def outlier_runs(inst: list[Instance], ranks: list[int], alpha: float, floor_alphas: list[float],
                 eta0: float, rho: float, steps: int) -> OutlierRuns:
    """Sections 2–3: on every instance's outlier data, SubGM for every r' at α = ``alpha`` and for
    r' = d at every α of ``floor_alphas`` (one ``vmap`` per instance), with the r' = r tail rate
    (closed form −ln ρ), the end of the growth phase (first t with err ≤ 0.1‖M*‖_F) and the
    log–log slope of the r' = d final error against the small α (those below 1).

    Args:
        inst: instances. ranks: r' (first r). alpha: the small scale. floor_alphas: scales of the
        r' = d runs (first: large). eta0, rho, steps: schedule and horizon T.

    Returns:
        :class:`OutlierRuns`.

    Raises:
        RuntimeError: if a run never reaches 0.1‖M*‖_F (the step budget is too small).
    """
    d, m = inst[0].truth.M.shape[0], inst[0].y0.shape[0]
    R, A_ = len(ranks), len(floor_alphas)
    runs = np.array([subgm_runs(I, jnp.broadcast_to(I.y0 + I.s_out, (R + A_, m)),
                                ranks + [d] * A_, [alpha] * R + floor_alphas, eta0, rho, steps)
                     for I in inst])
    rank_runs = runs[:, :R]
    norms = [float(jnp.linalg.norm(I.truth.M)) for I in inst]
    t_grow = np.array([[ms.first_hit(rank_runs[s, i], 0.1 * norms[s]) for i in range(R)]
                       for s in range(len(inst))])
    if np.any(t_grow < 0):
        raise RuntimeError("a run never reached 0.1‖M*‖_F: the step budget is too small")
    floors, small = runs[:, R:, -1], np.asarray(floor_alphas) < 1.0
    slopes = [stats.loglog_slope(np.asarray(floor_alphas)[small], f[small]) for f in floors]
    return OutlierRuns(rank_runs, runs[:, R], floors, ms.tail_rates(rank_runs[:, 0], 1e-10, 1e-3),
                       t_grow, np.array(slopes))


def l2_runs(inst: Instance, ys: ArrayLike, r: int, alpha: float, eta: float,
            steps: int) -> np.ndarray:
    """ℓ2 GD baseline (:func:`ms.symmetric_gd` on ¼‖𝒜(UUᵀ) − y‖²) from the same U0 as
    :func:`subgm_runs` with rank r.

    Args:
        inst: the instance. ys: (runs, m). r: rank. alpha: scale. eta: step. steps: T.

    Returns:
        ‖U_tU_tᵀ − M*‖_F (not squared), shape (runs, T+1).
    """
    U0 = ms.small_init(inst.key, inst.truth.M.shape[0], r, alpha)
    U0s = jnp.broadcast_to(U0, (len(ys),) + U0.shape)
    return np.sqrt(np.asarray(ms.l2_gd_batch(inst.op, jnp.asarray(ys), inst.truth, U0s, eta,
                                             steps).err))


def noise_runs(inst: list[Instance], fractions: list[float], nu: float, r: int, alpha: float,
               eta0: float, rho: float, steps: int, l2_eta: float, l2_steps: int) -> NoiseRuns:
    """Section 4: outliers (scale of the instance) and Gaussian noise N(0, ν²) at every corrupted
    fraction p, SubGM (r' = r) against ℓ2 GD on the same data.

    Args:
        inst: instances. fractions: P corrupted fractions. nu: Gaussian noise scale. r: rank.
        alpha, eta0, rho, steps: SubGM. l2_eta, l2_steps: ℓ2 GD step and horizon.

    Returns:
        :class:`NoiseRuns`.
    """
    m, P = inst[0].y0.shape[0], len(fractions)
    l1, l2 = [], []
    for I in inst:
        draws = [ms.outlier_noise(jax.random.fold_in(I.key, 10 + j), m, p, I.scale)
                 for j, p in enumerate(fractions)]
        draws += [ms.gaussian_noise(jax.random.fold_in(I.key, 30 + j), m, p, nu)
                  for j, p in enumerate(fractions)]
        ys = I.y0 + jnp.stack(draws)
        l1.append(subgm_runs(I, ys, [r] * len(ys), [alpha] * len(ys), eta0, rho, steps))
        l2.append(l2_runs(I, ys, r, alpha, l2_eta, l2_steps))
    l1, l2 = np.array(l1), np.array(l2)
    return NoiseRuns(l1, l2, l1[:, :, -1].reshape(len(inst), 2, P),
                     l2[:, :, -1].reshape(len(inst), 2, P))


def l1_loss(op: ms.Sensing, y: ArrayLike, U: ArrayLike) -> float:
    """The paper's objective f(U) = (1/m)‖y − 𝒜(UUᵀ)‖₁ (Sec. 1).

    Args:
        op: operator (A of shape (m, d, d)). y: (m,). U: (d, r').

    Returns:
        f(U).
    """
    return float(jnp.mean(jnp.abs(y - ms.forward(op, U @ U.T))))


def dense_noise(inst: Instance, ps: list[float], nu: float, alpha: float, eta0: float, rho: float,
                steps: int, local_eta0: float, local_rho: float) -> dict:
    """For each fraction p of Gaussian noise N(0, ν²): SubGM from U0 = αŨ (rank r), and an ℓ1
    descent (SubGM with small steps local_eta0·local_rhoᵗ) started at the truth factor
    U* = U diag(√s) (the abstract's "global optimum ≠ M*").

    Args:
        inst: the instance. ps: fractions. nu: noise scale. alpha, eta0, rho, steps: SubGM.
        local_eta0, local_rho: the descent's schedule.

    Returns:
        ``{"err", "err_local", "f_star", "f_local", "f_subgm"}``, each (len(ps),): final errors of
        SubGM and of the descent, and f at U*, at the descent's end and at SubGM's end.
    """
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


def dense_runs(inst: list[Instance], ps: list[float], nu: float, alpha: float, eta0: float,
               rho: float, steps: int, local_eta0: float, local_rho: float) -> dict:
    """:func:`dense_noise` on every instance, stacked.

    Args:
        inst: instances. ps, nu, alpha, eta0, rho, steps, local_eta0, local_rho: as
            :func:`dense_noise`.

    Returns:
        The keys of :func:`dense_noise`, each of shape (seeds, len(ps)), and ``"below"``: runs
        where the descent from U* ends below f(M*) (the ℓ1 loss has points below f(M*)).
    """
    runs = [dense_noise(I, ps, nu, alpha, eta0, rho, steps, local_eta0, local_rho) for I in inst]
    dn = {k: np.array([x[k] for x in runs]) for k in runs[0]}
    dn["below"] = dn["f_local"] < dn["f_star"]
    return dn


def sample_sweep(key: jax.Array, d: int, r: int, cond: float, ranks: list[int], m_grid: list[int],
                 instances: int, p_out: float, outlier_scale: float, alpha: float, eta0: float,
                 rho: float, steps: int) -> np.ndarray:
    """Final relative error ‖UUᵀ − M*‖_F/‖M*‖_F of SubGM for every (instance, r', m) (the
    sample-size claim of the abstract): one operator of max(m_grid) rows per instance, its first m rows form
    the m-measurement operator (weights 1/m on them, :func:`ms.use_first`), outliers at p_out.

    Args:
        key: base key. d, r, cond: problem. ranks: r'. m_grid: increasing m. instances: count.
        p_out, outlier_scale: outliers. alpha, eta0, rho, steps: SubGM.

    Returns:
        Relative errors of shape (instances, len(ranks), len(m_grid)).
    """
    R, G, M = len(ranks), len(m_grid), max(m_grid)
    out = []
    for s in range(instances):  # one instance at a time: the full profile's operators are large
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


def instance_thresholds(rel_err: ArrayLike, m_grid: list[int], tol: float,
                        beyond: float) -> np.ndarray:
    """Per instance and r': the smallest grid m from which rel_err ≤ tol at that m and every larger
    grid m (the instance's own phase transition on nested operators).

    Args:
        rel_err: shape (..., len(m_grid)). m_grid: increasing m. tol: recovery level.
        beyond: censoring value (above the grid) for runs failing at the largest m.

    Returns:
        Thresholds of shape (...).
    """
    m_grid = np.asarray(m_grid, float)
    ok = np.asarray(rel_err) <= tol
    # suffix "all": ok from this m to the end of the grid
    tail_ok = np.flip(np.logical_and.accumulate(np.flip(ok, -1), axis=-1), -1)
    first = np.argmax(tail_ok, axis=-1)
    return np.where(tail_ok.any(-1), m_grid[first], beyond)


def psd_parameters(d: int, k: int) -> int:
    """Free parameters of a d×d PSD matrix of rank k (dk − k(k−1)/2), the natural count of an
    over-parameterised factor UUᵀ with k columns.

    Args:
        d: size. k: rank.

    Returns:
        The count.
    """
    return d * k - k * (k - 1) // 2


def threshold_summary(rel: ArrayLike, m_grid: list[int], ranks: list[int], d: int,
                      alpha: float) -> Thresholds:
    """Section 6's statistics of :func:`sample_sweep`: per-instance thresholds up to the α-floor
    (rel. error ≤ 10α) and exact (≤ 1e-6), paired differences and ratios to r' = r, and the
    parameter-count ratios of :func:`psd_parameters`.

    Args:
        rel: (instances, ranks, m_grid). m_grid: its grid. ranks: r' (first r). d: size.
        alpha: initialisation scale.

    Returns:
        :class:`Thresholds`.
    """
    rel = np.asarray(rel)
    tol, beyond = 10 * alpha, m_grid[-1] + (m_grid[-1] - m_grid[-2])
    m_c = instance_thresholds(rel, m_grid, tol, beyond)
    params = np.array([psd_parameters(d, k) / psd_parameters(d, ranks[0]) for k in ranks[1:]])
    return Thresholds(tol, beyond, m_c, instance_thresholds(rel, m_grid, 1e-6, beyond),
                      (rel <= 1e-6).mean(axis=(0, 2)), m_c[:, 1:] - m_c[:, :1],
                      m_c[:, 1:] / m_c[:, :1], params)


def validate(cfg: SimpleNamespace) -> None:
    """Reject settings the protocols cannot use (before any compute).

    Args:
        cfg: the notebook's resolved settings.

    Returns:
        None.

    Raises:
        ValueError: naming the offending knobs.
    """
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


# ------------------------------------------------------------------------------ figures and text


def overparam_figure(runs: OutlierRuns, cfg: SimpleNamespace) -> plt.Figure:
    """Sections 2–3: SubGM curves for every r' and the large start (seed 0) against ρᵗ, and the
    r' = d final error against α (geometric mean ± s.e. over seeds).

    Args:
        runs: :func:`outlier_runs`. cfg: the settings.

    Returns:
        The figure (two panels).
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    t = np.arange(cfg.steps + 1)
    for i, k in enumerate(cfg.ranks):
        axes[0].plot(t, runs.rank_runs[0, i], label=f"r′ = {k}, α = {cfg.alpha:g}")
    axes[0].plot(t, runs.large[0], color="C7", label=f"r′ = {cfg.d}, α = {cfg.floor_alphas[0]:g}")
    axes[0].plot(t, 10 * cfg.rho ** t, "k--", lw=0.8, label="∝ ρᵗ")
    axes[0].set(yscale="log", ylim=(1e-16, 10), xlabel="iteration t", ylabel="‖UUᵀ − M*‖_F",
                title=f"SubGM, outliers p={cfg.p_out}, d={cfg.d}, r={cfg.r}, m={cfg.m} (seed 0)")
    axes[0].legend(fontsize=7)
    errorbar_over_seeds(axes[1], cfg.floor_alphas, runs.floors, geometric=True, fmt="o-",
                        capsize=3, label="r′ = d (geometric mean ± s.e.)")
    axes[1].set(xscale="log", yscale="log", xlabel="initialisation scale α", ylabel="final "
                "‖UUᵀ − M*‖_F", title=f"final error vs α ({cfg.seeds} seeds, T={cfg.steps})")
    axes[1].legend(fontsize=7)
    return fig


def noise_figure(nr: NoiseRuns, cfg: SimpleNamespace) -> plt.Figure:
    """Section 4: SubGM and ℓ2 GD curves at the largest fraction (seed 0), and the median final
    error against the corrupted fraction for both noise models.

    Args:
        nr: :func:`noise_runs`. cfg: the settings.

    Returns:
        The figure (two panels).
    """
    P, p_hi = len(cfg.fractions), cfg.fractions[-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    t, t2 = np.arange(cfg.steps + 1), np.arange(cfg.l2_steps + 1)
    for j, (name, ls) in enumerate([(f"outliers p={p_hi}", "-"),
                                    (f"Gaussian p={p_hi}, ν={cfg.nu:g}", "--")]):
        axes[0].plot(t, nr.l1[0, j * P + P - 1], ls, color="C0", label=f"ℓ1 SubGM, {name}")
        axes[0].plot(t2, nr.l2[0, j * P + P - 1], ls, color="C3", label=f"ℓ2 GD, {name}")
    axes[0].set(yscale="log", ylim=(1e-16, 100), xlabel="iteration t", ylabel="‖UUᵀ − M*‖_F",
                title="noise models (r′ = r, seed 0)")
    axes[0].legend(fontsize=7)
    for j, (name, mk) in enumerate([("outliers", "o"), ("Gaussian noise", "s")]):
        axes[1].plot(cfg.fractions, np.median(nr.frac_l1[:, j], 0), mk + "-", color="C0",
                     label=f"ℓ1 SubGM, {name}")
        axes[1].plot(cfg.fractions, np.median(nr.frac_l2[:, j], 0), mk + "--", color="C3",
                     label=f"ℓ2 GD, {name}")
    axes[1].set(yscale="log", xlabel="corrupted fraction p", ylabel="final ‖UUᵀ − M*‖_F (median)",
                title=f"recovery error vs corruption ({cfg.seeds} seeds, T={cfg.steps})")
    axes[1].legend(fontsize=7)
    return fig


def dense_figure(dn: dict, cfg: SimpleNamespace) -> plt.Figure:
    """Section 5: final errors of SubGM and of the ℓ1 descent from U* against the dense-noise
    fraction (geometric mean ± s.e.), runs where the descent ends below f(M*) marked.

    Args:
        dn: :func:`dense_runs` over ``cfg.dense_fractions``. cfg: the settings.

    Returns:
        The figure.
    """
    pd = np.asarray(cfg.dense_fractions)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, key_, mk in [("SubGM from αŨ", "err", "o-"),
                           ("ℓ1 descent from U*", "err_local", "s--")]:
        errorbar_over_seeds(ax, pd, dn[key_], geometric=True, fmt=mk, capsize=3, label=name)
    for s, below in enumerate(dn["below"]):
        ax.plot(pd[below], dn["err_local"][s, below], "rx", ms=10, mew=2, zorder=5,
                label="descent from U* ends below f(M*)" if s == 0 else None)
    ax.set(yscale="log", xlabel="fraction p of measurements with N(0, ν²) noise",
           ylabel="final ‖UUᵀ − M*‖_F (geometric mean ± s.e.)",
           title=f"dense noise, ν={cfg.nu:g}, m={cfg.m}, {cfg.seeds} seeds")
    ax.legend(fontsize=7)
    return fig


def samples_figure(rel: ArrayLike, th: Thresholds, cfg: SimpleNamespace) -> plt.Figure:
    """Section 6: fraction of instances recovered against m per r', and the threshold m_c against
    r' with the 'independent of r′' and parameter-count alternatives.

    Args:
        rel: :func:`sample_sweep`. th: :func:`threshold_summary`. cfg: the settings.

    Returns:
        The figure (two panels).
    """
    mc_mean, mc_se = stats.mean_and_se(th.m_c)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, k in enumerate(cfg.ranks):
        axes[0].plot(cfg.m_grid, (np.asarray(rel)[:, i] <= th.tol).mean(0), "o-", label=f"r′ = {k}")
        axes[1].errorbar(k, mc_mean[i], yerr=mc_se[i], fmt="o", color=f"C{i}", capsize=3)
    axes[0].set(xlabel="number of measurements m",
                ylabel=f"fraction recovered (rel. error ≤ {th.tol:g})",
                title=f"{cfg.sweep_seeds} instances, outliers p={cfg.p_out}, d={cfg.d}, r={cfg.r}")
    axes[0].legend(fontsize=7)
    axes[1].plot(np.array(cfg.ranks), mc_mean[0] * np.array([1] + th.params.tolist()), "k--",
                 lw=0.8, label="m_c(r) × parameter-count ratio")
    axes[1].axhline(mc_mean[0], color="k", ls=":", lw=0.8, label="independent of r′")
    axes[1].set(xscale="log", xlabel="over-estimated rank r′", ylabel="threshold m_c (mean ± s.e.)",
                title="per-instance recovery threshold vs r′", xticks=cfg.ranks,
                xticklabels=[str(k) for k in cfg.ranks])
    axes[1].minorticks_off()
    axes[1].legend(fontsize=7)
    return fig


def threshold_report(th: Thresholds, ranks: list[int]) -> str:
    """Section 6's thresholds in a printable form: mean ± s.e. of m_c per r', censored counts, the
    exact threshold of r' = r and the fractions of exact recovery.

    Args:
        th: :func:`threshold_summary`. ranks: the r'.

    Returns:
        Text of four lines.
    """
    mc_mean, mc_se = stats.mean_and_se(th.m_c)
    exact_mean, exact_se = stats.mean_and_se(th.m_exact[:, 0])
    return (f"m_c (mean ± s.e. over instances) per r′: "
            f"{dict(zip(ranks, zip(mc_mean.round(1).tolist(), mc_se.round(1).tolist())))}\n"
            f"censored (never recovered at the largest m): {(th.m_c == th.beyond).sum(0)}\n"
            f"exact threshold of r′ = r: {exact_mean:.1f} ± {exact_se:.1f}\n"
            f"fraction of runs exactly recovered per r′: {th.exact_any.round(3)}")


def samples_markdown(th: Thresholds, cfg: SimpleNamespace) -> str:
    """Section 6's result in words: mean thresholds per r', their growth against the parameter
    count, and the fractions of exact recovery.

    Args:
        th: :func:`threshold_summary`. cfg: the settings.

    Returns:
        A markdown paragraph.
    """
    mc_mean, mc_se = stats.mean_and_se(th.m_c)
    return ("**Result.** Mean thresholds m_c = "
            f"{', '.join(f'{a:.0f} ± {b:.0f}' for a, b in zip(mc_mean, mc_se))}"
            f" for r′ = {cfg.ranks} ({cfg.sweep_seeds} instances, mean ± s.e.): growth by a factor "
            f"{th.ratio.mean(0)[-1]:.2f} from r′ = r to r′ = d, where the free-parameter count "
            f"grows {th.params[-1]:.1f}×. Exact recovery (rel. error ≤ 1e-6) is reached in a "
            f"fraction {th.exact_any.round(3).tolist()} of the (instance, m) runs for these r′: "
            "over-parameterised runs stop on their α-floor, so the claim is about recovery up to "
            "that floor.")
