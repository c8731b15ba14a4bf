"""Over-parameterised matrix sensing: GD on XXᵀ and FGᵀ (Xiong, Ding, Du 2023, arXiv 2310.01769) and the
ℓ1 sub-gradient method with small initialisation (Ma & Fattahi 2023, arXiv 2202.08788).

Sensing operator. ``Sensing(A, w)`` stores the m raw Gaussian matrices A_i once, shape (m, n1, n2),
and a weight per measurement (1/m on the rows in use, 0 on masked rows). Then

    forward(op, M)  = (<A_i, M>)_i                      (m,)
    adjoint(op, v)  = sum_i w_i v_i A_i                 (n1, n2)

so that adjoint(op, forward(op, M)) = (1/m) sum_i <A_i, M> A_i ≈ M (near-isotropic, E = identity for
iid N(0, 1) entries, and for the symmetric A_i = (G_i + G_iᵀ)/2 on symmetric M). Each is one
``dot_general`` over the stored tensor: one step of any method reads A twice and never forms an
(m, n1, n2) temporary. Memory is 8·m·n1·n2 bytes in float64 (38 MiB at n = 50, m = 2000). Masking rows
through ``w`` lets one stored tensor serve a sweep over m under ``vmap``. ``op = None`` is the identity
operator (matrix factorisation, "no sensing"); then y is the matrix M* itself.

Conventions (the brief, §2.2):
* symmetric GD  X ← X − η 𝒜*(𝒜(XXᵀ) − y) X  (GD on ¼‖𝒜(XXᵀ) − y‖², the paper's form, no factor 2);
* asymmetric GD F ← F − η E G, G ← G − η Eᵀ F with E = 𝒜*(𝒜(FGᵀ) − y) (GD on ½‖𝒜(FGᵀ) − y‖²);
* SubGM         U ← U − η₀ρᵗ D, D = (1/m) Σ sign(<A_i, UUᵀ> − y_i)(A_i + A_iᵀ) U  (Ma & Fattahi).
Errors: paper (1) uses err_t = ‖XXᵀ − M*‖_F² (squared); paper (2) ‖UUᵀ − M*‖_F (not squared).

Every loop is a jitted ``lax.scan``; batch helpers ``vmap`` over initialisations (k by zero-padded
columns, α, seeds), noise vectors and measurement masks. Rates use float64 (enable ``jax_enable_x64``).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_HI = lax.Precision.HIGHEST


class Sensing(NamedTuple):
    """Stored Gaussian measurement matrices and per-measurement weights (1/m used, 0 masked)."""

    A: jax.Array  # (m, n1, n2)
    w: jax.Array  # (m,)


class Truth(NamedTuple):
    """Rank-r ground truth M* = U diag(s) Vᵀ with orthonormal U, V (U = V for the PSD case)."""

    M: jax.Array
    U: jax.Array
    V: jax.Array
    s: jax.Array


class SymTrace(NamedTuple):
    err: jax.Array  # (T+1,) ‖X_t X_tᵀ − M*‖_F²
    j_norm2: jax.Array  # (T+1,) ‖J_t‖_F², J = rows of X outside range(M*) (the proof's A_t)
    X: jax.Array  # X_T


class AsymTrace(NamedTuple):
    err: jax.Array  # (T+1,) ‖F_t G_tᵀ − M*‖_F²
    fg_gap: jax.Array  # (T+1,) ‖F_t − G_t‖_F (NaN when n1 != n2)
    switch_step: jax.Array  # step at which the rebalancing fired (-1: never)
    product_change: jax.Array  # ‖F'G'ᵀ − FGᵀ‖_F caused by the rebalancing (0 if it never fired)
    F: jax.Array
    G: jax.Array


class SubgradTrace(NamedTuple):
    err: jax.Array  # (T+1,) ‖U_t U_tᵀ − M*‖_F (not squared)
    U: jax.Array


# ------------------------------------------------------------------------------ operator


def gaussian_sensing(key, m: int, n1: int, n2: int | None = None, symmetric: bool = False) -> Sensing:
    """m iid Gaussian measurement matrices: N(0, 1) entries, or A_i = (G_i + G_iᵀ)/2 if ``symmetric``
    (E<A_i, M>² = ‖M‖_F² for symmetric M; (G + Gᵀ)/√2 would double it, brief §6.1)."""
    n2 = n1 if n2 is None else n2
    if m < 1 or n1 < 1 or n2 < 1:
        raise ValueError(f"m, n1, n2 must be positive, got {m}, {n1}, {n2}")
    if symmetric and n1 != n2:
        raise ValueError("symmetric sensing needs square matrices")
    G = jax.random.normal(key, (m, n1, n2))
    A = 0.5 * (G + jnp.swapaxes(G, 1, 2)) if symmetric else G
    return Sensing(A, jnp.full((m,), 1.0 / m, dtype=A.dtype))


def use_first(op: Sensing, m_used) -> Sensing:
    """The same operator restricted to its first ``m_used`` measurements (weights 1/m_used, rest 0)."""
    m = op.A.shape[0]
    mask = jnp.arange(m) < m_used
    return Sensing(op.A, jnp.where(mask, 1.0 / m_used, 0.0).astype(op.A.dtype))


def forward(op: Sensing | None, M) -> jax.Array:
    """𝒜(M) = (<A_i, M>)_i, or M itself for the identity operator."""
    if op is None:
        return M
    return jnp.einsum("mij,ij->m", op.A, M, precision=_HI)


def adjoint(op: Sensing | None, v) -> jax.Array:
    """𝒜*(v) = Σ_i w_i v_i A_i, or v itself for the identity operator."""
    if op is None:
        return v
    return jnp.einsum("m,mij->ij", op.w * v, op.A, precision=_HI)


def _sym(E):
    return 0.5 * (E + E.T)


# ------------------------------------------------------------------------------ ground truths and noise


def _orthonormal(key, n: int, r: int):
    q, _ = jnp.linalg.qr(jax.random.normal(key, (n, r)))
    return q


def spectrum(r: int, cond: float) -> jax.Array:
    """Singular values linspace(1, 1/cond, r): σ₁ = 1 and condition number ``cond``."""
    if r < 1 or cond < 1:
        raise ValueError(f"need r >= 1 and cond >= 1, got r={r}, cond={cond}")
    return jnp.linspace(1.0, 1.0 / cond, r)


def psd_truth(key, n: int, r: int, cond: float = 1.0) -> Truth:
    """PSD rank-r M* = U diag(s) Uᵀ with a Haar-like orthonormal U and σ₁/σ_r = cond."""
    if not 1 <= r <= n:
        raise ValueError(f"need 1 <= r <= n, got r={r}, n={n}")
    U, s = _orthonormal(key, n, r), spectrum(r, cond)
    return Truth((U * s) @ U.T, U, U, s)


def asymmetric_truth(key, n1: int, n2: int, r: int, cond: float = 1.0) -> Truth:
    """Rank-r M* = U diag(s) Vᵀ (n1 × n2) with independent orthonormal U, V and σ₁/σ_r = cond."""
    if not 1 <= r <= min(n1, n2):
        raise ValueError(f"need 1 <= r <= min(n1, n2), got r={r}, n1={n1}, n2={n2}")
    ku, kv = jax.random.split(key)
    U, V, s = _orthonormal(ku, n1, r), _orthonormal(kv, n2, r), spectrum(r, cond)
    return Truth((U * s) @ V.T, U, V, s)


def outlier_noise(key, m: int, p: float, scale: float) -> jax.Array:
    """Outlier model: each s_i is non-zero with probability p, then uniform on [−scale, scale]."""
    _check_fraction(p)
    kb, ku = jax.random.split(key)
    hit = jax.random.bernoulli(kb, p, (m,))
    return jnp.where(hit, scale * jax.random.uniform(ku, (m,), minval=-1.0, maxval=1.0), 0.0)


def gaussian_noise(key, m: int, p: float, nu: float) -> jax.Array:
    """Gaussian model: each s_i is non-zero with probability p, then N(0, ν²)."""
    _check_fraction(p)
    kb, kn = jax.random.split(key)
    return jnp.where(jax.random.bernoulli(kb, p, (m,)), nu * jax.random.normal(kn, (m,)), 0.0)


def _check_fraction(p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"corruption fraction must be in [0, 1], got {p}")


def small_init(key, n: int, k_max: int, alpha: float, k: int | None = None) -> jax.Array:
    """α·X̃ with X̃ entries N(0, 1/k) on the first k columns and zero columns up to k_max (zero columns
    stay zero under every method here, so runs with different k share one shape and can be vmapped)."""
    k = k_max if k is None else k
    if not 1 <= k <= k_max:
        raise ValueError(f"need 1 <= k <= k_max, got k={k}, k_max={k_max}")
    if alpha <= 0:
        raise ValueError(f"initialisation scale alpha must be positive, got {alpha}")
    X = jax.random.normal(key, (n, k_max)) / np.sqrt(k)
    return alpha * jnp.where(jnp.arange(k_max) < k, X, 0.0)


# ------------------------------------------------------------------------------ paper (1): GD


@partial(jax.jit, static_argnames="steps")
def symmetric_gd(op, y, truth: Truth, X0, eta, steps: int) -> SymTrace:
    """GD on the symmetric factorisation, X ← X − η sym(𝒜*(𝒜(XXᵀ) − y)) X (paper (1), Sec. 3)."""
    P_perp = jnp.eye(X0.shape[0]) - truth.U @ truth.U.T

    def record(X):
        D = X @ X.T - truth.M
        return jnp.sum(D * D), jnp.sum((P_perp @ X) ** 2)

    def step(X, _):
        out = record(X)
        E = _sym(adjoint(op, forward(op, X @ X.T) - y))
        return X - eta * (E @ X), out

    X, (err, j2) = lax.scan(step, X0, None, length=steps)
    e_T, j_T = record(X)
    return SymTrace(jnp.append(err, e_T), jnp.append(j2, j_T), X)


def rebalance(F, G, c=1.0):
    """Our stand-in for the paper's one-step modification (eq. 5.1, whose form we could not read):
    F ← c·F(FᵀF)^{-1/2}, G ← G(FᵀF)^{1/2}/c. FGᵀ is unchanged and σ_min(F) becomes c (brief §2.3)."""
    lam, Q = jnp.linalg.eigh(F.T @ F)
    root = jnp.sqrt(lam)
    return c * (F @ ((Q / root) @ Q.T)), G @ ((Q * root) @ Q.T) / c


@partial(jax.jit, static_argnames="steps")
def asymmetric_gd(op, y, truth: Truth, F0, G0, eta, steps: int, switch_below=0.0, c=1.0) -> AsymTrace:
    """GD on FGᵀ (paper (1), Sec. 4). If the observable residual Σ w_i r_i² first drops below
    ``switch_below`` (0 disables), ``rebalance`` is applied once before that step (paper Sec. 5)."""

    def record(F, G):
        D = F @ G.T - truth.M
        gap = jnp.sqrt(jnp.sum((F - G) ** 2)) if F.shape == G.shape else jnp.array(jnp.nan, F.dtype)
        return jnp.sum(D * D), gap

    def step(carry, t):
        F, G, switch, change = carry
        out = record(F, G)
        r = forward(op, F @ G.T) - y
        fire = (switch < 0) & (_weighted_sq(op, r) < switch_below)
        F_new, G_new = lax.cond(fire, lambda: rebalance(F, G, c), lambda: (F, G))
        change = jnp.where(fire, jnp.sqrt(jnp.sum((F_new @ G_new.T - F @ G.T) ** 2)), change)
        switch = jnp.where(fire, t, switch)
        E = adjoint(op, r)  # the rebalancing keeps FGᵀ, hence r: one forward and one adjoint per step
        F, G = F_new - eta * (E @ G_new), G_new - eta * (E.T @ F_new)
        return (F, G, switch, change), out

    init = (F0, G0, jnp.array(-1), jnp.array(0.0, F0.dtype))
    (F, G, switch, change), (err, gap) = lax.scan(step, init, jnp.arange(steps))
    e_T, g_T = record(F, G)
    return AsymTrace(jnp.append(err, e_T), jnp.append(gap, g_T), switch, change, F, G)


def _weighted_sq(op, r):
    """Observable residual Σ_i w_i r_i² (≈ ‖FGᵀ − M*‖_F² under RIP); ‖r‖_F² for the identity."""
    return jnp.sum(r * r) if op is None else jnp.sum(op.w * r * r)


# ------------------------------------------------------------------------------ paper (2): SubGM


@partial(jax.jit, static_argnames="steps")
def subgradient_method(op: Sensing, y, truth: Truth, U0, eta0, rho, steps: int) -> SubgradTrace:
    """SubGM on f(U) = (1/m)‖y − 𝒜(UUᵀ)‖₁ with geometric steps η_t = η₀ρᵗ (Ma & Fattahi, Alg. 1):
    U ← U − η_t (1/m) Σ sign(<A_i, UUᵀ> − y_i)(A_i + A_iᵀ) U."""

    def record(U):
        return jnp.sqrt(jnp.sum((U @ U.T - truth.M) ** 2))

    def step(U, t):
        out = record(U)
        Q = adjoint(op, jnp.sign(forward(op, U @ U.T) - y))
        return U - eta0 * rho ** t * ((Q + Q.T) @ U), out

    U, err = lax.scan(step, U0, jnp.arange(steps))
    return SubgradTrace(jnp.append(err, record(U)), U)


# ------------------------------------------------------------------------------ batches (vmap)


def symmetric_gd_batch(op, y, truth, X0s, eta, steps: int) -> SymTrace:
    """``symmetric_gd`` vmapped over a stack of initialisations (k via zero columns, α, seeds)."""
    return jax.vmap(lambda X0: symmetric_gd(op, y, truth, X0, eta, steps))(X0s)


def asymmetric_gd_batch(op, y, truth, F0s, G0s, eta, steps: int, switch_below=0.0, c=1.0) -> AsymTrace:
    """``asymmetric_gd`` vmapped over stacks of (F0, G0)."""
    run = lambda F0, G0: asymmetric_gd(op, y, truth, F0, G0, eta, steps, switch_below, c)  # noqa: E731
    return jax.vmap(run)(F0s, G0s)


def subgradient_batch(op, ys, truth, U0s, eta0s, rhos, steps: int, weights=None) -> SubgradTrace:
    """``subgradient_method`` vmapped over measurement vectors, initialisations, schedules and
    (optionally) per-run measurement weights (a sweep over m via ``use_first`` masks)."""
    if weights is None:
        weights = jnp.broadcast_to(op.w, (len(ys),) + op.w.shape)
    run = lambda y, U0, e, r, w: subgradient_method(Sensing(op.A, w), y, truth, U0, e, r, steps)  # noqa: E731
    return jax.vmap(run)(ys, U0s, jnp.asarray(eta0s), jnp.asarray(rhos), weights)


def l2_gd_batch(op, ys, truth, U0s, eta, steps: int) -> SymTrace:
    """ℓ2 GD baseline (``symmetric_gd``) vmapped over measurement vectors and initialisations."""
    return jax.vmap(lambda y, U0: symmetric_gd(op, y, truth, U0, eta, steps))(ys, U0s)


# ------------------------------------------------------------------------------ rates (numpy)


def _window(err, lo, hi):
    err = np.asarray(err, float)
    t = np.flatnonzero((err > lo) & (err < hi))
    if t.size < 10:
        raise ValueError(f"only {t.size} iterates with {lo:g} < err < {hi:g}; run longer or widen the window")
    return t, np.log(err[t])


def tail_rate(err, lo: float, hi: float) -> float:
    """λ = −d ln err / dt, least squares over the iterates with lo < err < hi (linear convergence)."""
    t, le = _window(err, lo, hi)
    return float(-np.polyfit(t, le, 1)[0])


def half_window_rates(err, lo: float, hi: float) -> tuple[float, float]:
    """Rates on the upper and lower halves (in log err) of the window: equal for linear convergence."""
    t, le = _window(err, lo, hi)
    mid = 0.5 * (le.max() + le.min())
    upper, lower = le >= mid, le < mid
    return float(-np.polyfit(t[upper], le[upper], 1)[0]), float(-np.polyfit(t[lower], le[lower], 1)[0])


def inverse_sqrt_slope(err, t_from: int) -> float:
    """Slope of err_t^{-1/2} against t for t ≥ t_from; the 1/T² law predicts 2η/√(k − r) (brief §3, C2)."""
    err = np.asarray(err, float)
    t = np.arange(t_from, err.size)
    if t.size < 10:
        raise ValueError("fewer than 10 iterates after t_from")
    return float(np.polyfit(t, err[t] ** -0.5, 1)[0])


def sublinear_slope_closed_form(eta: float, k: int, r: int) -> float:
    """2η/√(k − r): err_t ≈ Σ_{j ≤ k−r} (s_j0^{-2} + 2ηt)^{-2} → (k − r)/(4η²t²) (brief §3, C2)."""
    if k <= r:
        raise ValueError(f"the sublinear law needs k > r, got k={k}, r={r}")
    return 2.0 * eta / np.sqrt(k - r)


def first_hit(err, level: float) -> int:
    """First iteration t with err_t ≤ level (the end of SubGM's growth phase for level ≈ 0.1‖M*‖_F);
    −1 if the run never gets there."""
    below = np.flatnonzero(np.asarray(err, float) <= level)
    return int(below[0]) if below.size else -1


def required_measurements(m_grid, success_rate, min_rate: float) -> float:
    """Smallest grid m from which the success rate is ≥ ``min_rate`` at that m and every larger grid m
    (a phase-transition location robust to one lucky small m); inf if the largest m falls short."""
    m_grid, rate = np.asarray(m_grid, float), np.asarray(success_rate, float)
    if m_grid.shape != rate.shape or m_grid.ndim != 1 or np.any(np.diff(m_grid) <= 0):
        raise ValueError("m_grid must be increasing and match success_rate in shape")
    if not 0.0 < min_rate <= 1.0:
        raise ValueError(f"min_rate must lie in (0, 1], got {min_rate}")
    short = np.flatnonzero(rate < min_rate)
    if short.size == 0:
        return float(m_grid[0])
    return float(m_grid[short[-1] + 1]) if short[-1] + 1 < m_grid.size else np.inf
