"""Over-parameterised matrix sensing: GD on XXᵀ and FGᵀ (Xiong, Ding, Du 2023, arXiv 2310.01769) and the
ℓ1 sub-gradient method with small initialisation (Ma & Fattahi 2023, arXiv 2202.08788).

Sensing operator. ``Sensing(A, w)`` stores the m raw Gaussian matrices A_i once, shape (m, n1, n2),
and a weight per measurement (1/m on the rows in use, 0 on masked rows). Then

    forward(op, M)  = (<A_i, M>)_i                      (m,)
    adjoint(op, v)  = sum_i w_i v_i A_i                 (n1, n2)

so that adjoint(op, forward(op, M)) = (1/m) sum_i <A_i, M> A_i ≈ M (near-isotropic, E = identity for
iid N(0, 1) entries, and for the symmetric A_i = (G_i + G_iᵀ)/2 on symmetric M). Each is one
``dot_general`` over the stored tensor: one step of any method reads A twice and never forms an
(m, n1, n2) temporary. Symmetric GD goes through the normal operator 𝒜*𝒜 = Σ_i w_i vec(A_i)vec(A_i)ᵀ
instead when n1·n2 < 2m (``_residual_map``). Memory is 8·m·n1·n2 bytes in float64 (38 MiB at n = 50,
m = 2000), plus 8·(n1·n2)² for 𝒜*𝒜 in symmetric GD. Masking rows
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
from jax.typing import ArrayLike

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
    """Trajectory summary of :func:`symmetric_gd`."""

    err: jax.Array  # (T+1,) ‖X_t X_tᵀ − M*‖_F²
    j_norm2: jax.Array  # (T+1,) ‖J_t‖_F², J = rows of X outside range(M*) (the proof's A_t)
    X: jax.Array  # X_T


class AsymTrace(NamedTuple):
    """Trajectory summary of :func:`asymmetric_gd`."""

    err: jax.Array  # (T+1,) ‖F_t G_tᵀ − M*‖_F²
    fg_gap: jax.Array  # (T+1,) ‖F_t − G_t‖_F (NaN when n1 != n2)
    switch_step: jax.Array  # step at which the rebalancing fired (-1: never)
    product_change: jax.Array  # ‖F'G'ᵀ − FGᵀ‖_F caused by the rebalancing (0 if it never fired)
    F: jax.Array
    G: jax.Array


class SubgradTrace(NamedTuple):
    """Trajectory summary of :func:`subgradient_method`."""

    err: jax.Array  # (T+1,) ‖U_t U_tᵀ − M*‖_F (not squared)
    U: jax.Array


# ------------------------------------------------------------------------------ operator


def gaussian_sensing(key: jax.Array, m: int, n1: int, n2: int | None = None,
                     symmetric: bool = False) -> Sensing:
    """m iid Gaussian measurement matrices (the RIP operators of both papers' experiments).

    Entries N(0, 1), or A_i = (G_i + G_iᵀ)/2 if ``symmetric`` (E<A_i, M>² = ‖M‖_F² for symmetric M;
    (G + Gᵀ)/√2 would double it, brief §6.1). Weights 1/m, so 𝒜*𝒜 ≈ I.

    Args:
        key: PRNG key. m: number of measurements. n1, n2: matrix shape (n2 = n1 if None).
        symmetric: symmetrise each A_i (needs n1 = n2).

    Returns:
        :class:`Sensing` with ``A`` of shape (m, n1, n2) and ``w`` (m,).
    """
    n2 = n1 if n2 is None else n2
    if m < 1 or n1 < 1 or n2 < 1:
        raise ValueError(f"m, n1, n2 must be positive, got {m}, {n1}, {n2}")
    if symmetric and n1 != n2:
        raise ValueError("symmetric sensing needs square matrices")
    G = jax.random.normal(key, (m, n1, n2))
    A = 0.5 * (G + jnp.swapaxes(G, 1, 2)) if symmetric else G
    return Sensing(A, jnp.full((m,), 1.0 / m, dtype=A.dtype))


def use_first(op: Sensing, m_used: int) -> Sensing:
    """The same operator restricted to its first ``m_used`` measurements (nested operators of a
    sweep over m, Ma & Fattahi's sample-size experiment).

    Args:
        op: stored operator, ``A`` of shape (m, n1, n2). m_used: measurements kept (≤ m).

    Returns:
        :class:`Sensing` sharing ``op.A``, weights 1/m_used on the first m_used rows, 0 elsewhere.
    """
    m = op.A.shape[0]
    mask = jnp.arange(m) < m_used
    return Sensing(op.A, jnp.where(mask, 1.0 / m_used, 0.0).astype(op.A.dtype))


def forward(op: Sensing | None, M: ArrayLike) -> jax.Array:
    """The measurement map 𝒜(M) = (<A_i, M>)_i (y = 𝒜(M*) in both papers).

    Args:
        op: operator with ``A`` (m, n1, n2), or None for the identity. M: matrix (n1, n2).

    Returns:
        Measurements of shape (m,), or M itself for the identity operator.
    """
    if op is None:
        return M
    return jnp.einsum("mij,ij->m", op.A, M, precision=_HI)


def adjoint(op: Sensing | None, v: ArrayLike) -> jax.Array:
    """The weighted adjoint 𝒜*(v) = Σ_i w_i v_i A_i (the gradient map of both papers' losses).

    Args:
        op: operator with ``A`` (m, n1, n2) and ``w`` (m,), or None for the identity. v: shape (m,).

    Returns:
        Matrix of shape (n1, n2), or v itself for the identity operator.
    """
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
    """Singular values of the ground truths (our choice, brief §2.2): σ₁ = 1, σ_r = 1/cond.

    Args:
        r: rank (≥ 1). cond: condition number σ₁/σ_r (≥ 1).

    Returns:
        ``linspace(1, 1/cond, r)``, shape (r,).
    """
    if r < 1 or cond < 1:
        raise ValueError(f"need r >= 1 and cond >= 1, got r={r}, cond={cond}")
    return jnp.linspace(1.0, 1.0 / cond, r)


def psd_truth(key: jax.Array, n: int, r: int, cond: float = 1.0) -> Truth:
    """PSD rank-r ground truth M* = U diag(s) Uᵀ (Xiong et al. Sec. 3; Ma & Fattahi Sec. 1).

    Args:
        key: PRNG key. n: size. r: rank (1 ≤ r ≤ n). cond: σ₁/σ_r.

    Returns:
        :class:`Truth` with M (n, n), a Haar-like orthonormal U = V (n, r), s (r,).
    """
    if not 1 <= r <= n:
        raise ValueError(f"need 1 <= r <= n, got r={r}, n={n}")
    U, s = _orthonormal(key, n, r), spectrum(r, cond)
    return Truth((U * s) @ U.T, U, U, s)


def asymmetric_truth(key: jax.Array, n1: int, n2: int, r: int, cond: float = 1.0) -> Truth:
    """Generic rank-r ground truth M* = U diag(s) Vᵀ (Xiong et al. Sec. 4, asymmetric case).

    Args:
        key: PRNG key. n1, n2: shape. r: rank (≤ min(n1, n2)). cond: σ₁/σ_r.

    Returns:
        :class:`Truth` with M (n1, n2), independent orthonormal U (n1, r), V (n2, r), s (r,).
    """
    if not 1 <= r <= min(n1, n2):
        raise ValueError(f"need 1 <= r <= min(n1, n2), got r={r}, n1={n1}, n2={n2}")
    ku, kv = jax.random.split(key)
    U, V, s = _orthonormal(ku, n1, r), _orthonormal(kv, n2, r), spectrum(r, cond)
    return Truth((U * s) @ V.T, U, V, s)


def outlier_noise(key: jax.Array, m: int, p: float, scale: float) -> jax.Array:
    """Outlier noise model (Ma & Fattahi, Sec. 1): each s_i is non-zero with probability p, then
    uniform on [−scale, scale].

    Args:
        key: PRNG key. m: measurements. p: corrupted fraction in [0, 1]. scale: magnitude.

    Returns:
        Noise vector of shape (m,).
    """
    _check_fraction(p)
    kb, ku = jax.random.split(key)
    hit = jax.random.bernoulli(kb, p, (m,))
    return jnp.where(hit, scale * jax.random.uniform(ku, (m,), minval=-1.0, maxval=1.0), 0.0)


def gaussian_noise(key: jax.Array, m: int, p: float, nu: float) -> jax.Array:
    """Gaussian noise model (Ma & Fattahi, Sec. 1): each s_i is non-zero with probability p, then
    N(0, ν²).

    Args:
        key: PRNG key. m: measurements. p: noisy fraction in [0, 1]. nu: standard deviation.

    Returns:
        Noise vector of shape (m,).
    """
    _check_fraction(p)
    kb, kn = jax.random.split(key)
    return jnp.where(jax.random.bernoulli(kb, p, (m,)), nu * jax.random.normal(kn, (m,)), 0.0)


def _check_fraction(p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"corruption fraction must be in [0, 1], got {p}")


def small_init(key: jax.Array, n: int, k_max: int, alpha: float, k: int | None = None) -> jax.Array:
    """Small random initialisation α·X̃ of both papers (Xiong et al. Sec. 3; Ma & Fattahi Alg. 1).

    X̃ has entries N(0, 1/k) on the first k columns and zero columns up to k_max: zero columns stay
    zero under every method here, so runs with different k share one shape and can be vmapped.

    Args:
        key: PRNG key. n: rows. k_max: columns of the padded shape. alpha: scale (> 0).
        k: columns in use (k_max if None).

    Returns:
        Matrix of shape (n, k_max).
    """
    k = k_max if k is None else k
    if not 1 <= k <= k_max:
        raise ValueError(f"need 1 <= k <= k_max, got k={k}, k_max={k_max}")
    if alpha <= 0:
        raise ValueError(f"initialisation scale alpha must be positive, got {alpha}")
    X = jax.random.normal(key, (n, k_max)) / np.sqrt(k)
    return alpha * jnp.where(jnp.arange(k_max) < k, X, 0.0)


def psd_problem(truth_key: jax.Array, op_key: jax.Array, n: int, r: int, m: int,
                cond: float) -> tuple[Truth, Sensing, jax.Array]:
    """The symmetric sensing problem both papers start from: PSD rank-r M* (:func:`psd_truth`),
    m symmetric Gaussian A_i (:func:`gaussian_sensing`) and the clean measurements y = 𝒜(M*).

    Args:
        truth_key, op_key: PRNG keys of the truth and of the operator. n: size. r: rank.
        m: measurements. cond: σ₁/σ_r.

    Returns:
        ``(truth, op, y)`` with ``op.A`` of shape (m, n, n) and ``y`` (m,).
    """
    truth = psd_truth(truth_key, n, r, cond)
    op = gaussian_sensing(op_key, m, n, symmetric=True)
    return truth, op, forward(op, truth.M)


# ------------------------------------------------------------------------------ paper (1): GD


@partial(jax.jit, static_argnames="steps")
def symmetric_gd(op: Sensing | None, y: ArrayLike, truth: Truth, X0: ArrayLike, eta: float,
                 steps: int) -> SymTrace:
    """GD on the symmetric factorisation, X ← X − η sym(𝒜*(𝒜(XXᵀ) − y)) X (Xiong et al. eq. (1)
    and Sec. 3; GD on ¼‖𝒜(XXᵀ) − y‖²).

    Args:
        op: operator (A of shape (m, n, n)) or None for 𝒜 = I. y: measurements (m,), or M* (n, n)
        for 𝒜 = I. truth: ground truth (for the recorded errors). X0: start (n, k). eta: step.
        steps: iterations T.

    Returns:
        :class:`SymTrace`: err and j_norm2 of shape (T+1,), X_T (n, k).
    """
    P_perp = jnp.eye(X0.shape[0]) - truth.U @ truth.U.T
    residual = _residual_map(op, y, normal=True)

    def record(X):
        D = X @ X.T - truth.M
        return jnp.sum(D * D), jnp.sum((P_perp @ X) ** 2)

    def step(X, _):
        out = record(X)
        E = _sym(residual(X @ X.T)[0])
        return X - eta * (E @ X), out

    X, (err, j2) = lax.scan(step, X0, None, length=steps)
    e_T, j_T = record(X)
    return SymTrace(jnp.append(err, e_T), jnp.append(j2, j_T), X)


def rebalance(F: ArrayLike, G: ArrayLike, c: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """Our stand-in for Xiong et al.'s one-step modification (eq. 5.1, whose form we could not
    read): F ← c·F(FᵀF)^{-1/2}, G ← G(FᵀF)^{1/2}/c. FGᵀ is unchanged and σ_min(F) becomes c (brief §2.3).

    Args:
        F: (n1, k) of full column rank. G: (n2, k). c: target singular value of F.

    Returns:
        The rebalanced ``(F, G)``, same shapes.
    """
    lam, Q = jnp.linalg.eigh(F.T @ F)
    root = jnp.sqrt(lam)
    return c * (F @ ((Q / root) @ Q.T)), G @ ((Q * root) @ Q.T) / c


@partial(jax.jit, static_argnames="steps")
def asymmetric_gd(op: Sensing | None, y: ArrayLike, truth: Truth, F0: ArrayLike, G0: ArrayLike,
                  eta: float, steps: int, switch_below: float = 0.0, c: float = 1.0) -> AsymTrace:
    """GD on FGᵀ, F ← F − ηEG, G ← G − ηEᵀF with E = 𝒜*(𝒜(FGᵀ) − y) (Xiong et al. Sec. 4). If
    the observable residual Σ w_i r_i² first drops below ``switch_below`` (0 disables),
    :func:`rebalance` is applied once before that step (our stand-in for Sec. 5, eq. 5.1).

    Args:
        op: operator (A of shape (m, n1, n2)) or None for 𝒜 = I. y: measurements (m,).
        truth: ground truth. F0: (n1, k). G0: (n2, k). eta: step. steps: iterations T.
        switch_below: trigger level of the rebalancing. c: its σ_min(F).

    Returns:
        :class:`AsymTrace`: err and fg_gap (T+1,), switch_step and product_change (scalars), F, G.
    """

    residual = _residual_map(op, y, normal=False)  # the slow α² modes amplify rounding

    def record(F, G):
        D = F @ G.T - truth.M
        gap = jnp.sqrt(jnp.sum((F - G) ** 2)) if F.shape == G.shape else jnp.array(jnp.nan, F.dtype)
        return jnp.sum(D * D), gap

    def step(carry, t):
        F, G, switch, change = carry
        out = record(F, G)
        E, observed = residual(F @ G.T)  # the rebalancing keeps FGᵀ, hence E
        fire = (switch < 0) & (observed < switch_below)
        F_new, G_new = lax.cond(fire, lambda: rebalance(F, G, c), lambda: (F, G))
        change = jnp.where(fire, jnp.sqrt(jnp.sum((F_new @ G_new.T - F @ G.T) ** 2)), change)
        switch = jnp.where(fire, t, switch)
        F, G = F_new - eta * (E @ G_new), G_new - eta * (E.T @ F_new)
        return (F, G, switch, change), out

    init = (F0, G0, jnp.array(-1), jnp.array(0.0, F0.dtype))
    (F, G, switch, change), (err, gap) = lax.scan(step, init, jnp.arange(steps))
    e_T, g_T = record(F, G)
    return AsymTrace(jnp.append(err, e_T), jnp.append(gap, g_T), switch, change, F, G)


def _residual_map(op: Sensing | None, y: jax.Array, normal: bool):
    """P ↦ (𝒜*(𝒜(P) − y), Σ_i w_i(<A_i, P> − y_i)²): the GD direction and the observable residual
    (≈ ‖P − M*‖_F² under RIP; ‖P − y‖_F² for the identity operator).

    With ``normal`` and n1·n2 < 2m it goes through the normal operator: K = Σ_i w_i
    vec(A_i)vec(A_i)ᵀ and b = 𝒜*(y) are formed once, then 𝒜*(𝒜(P) − y) = K vec(P) − b and the
    residual is <P, K vec(P) − b> − <P, b> + Σ_i w_i y_i², one (n1n2)² product per step instead of
    two m·n1n2 ones. The map is the same, the rounding about twice the direct one's: symmetric GD
    (floor ~1e-30, windows above 1e-20) uses it; asymmetric GD, whose slow α² modes amplify
    rounding into its 1e-26 fit windows, does not."""
    if op is None:
        return lambda P: (P - y, jnp.sum((P - y) ** 2))
    m, n1, n2 = op.A.shape
    if not normal or n1 * n2 >= 2 * m:
        def direct(P):
            r = forward(op, P) - y
            return adjoint(op, r), jnp.sum(op.w * r * r)
        return direct
    A = op.A.reshape(m, n1 * n2)
    K = jnp.matmul(A.T * op.w, A, precision=_HI)
    b, c = adjoint(op, y), jnp.sum(op.w * y * y)

    def normal(P):
        E = jnp.matmul(K, P.reshape(-1), precision=_HI).reshape(n1, n2) - b
        return E, jnp.sum(P * E) - jnp.sum(P * b) + c
    return normal


# ------------------------------------------------------------------------------ paper (2): SubGM


@partial(jax.jit, static_argnames="steps")
def subgradient_method(op: Sensing, y: ArrayLike, truth: Truth, U0: ArrayLike, eta0: float,
                       rho: float, steps: int) -> SubgradTrace:
    """SubGM on f(U) = (1/m)‖y − 𝒜(UUᵀ)‖₁ with geometric steps η_t = η₀ρᵗ (Ma & Fattahi, Alg. 1):
    U ← U − η_t (1/m) Σ sign(<A_i, UUᵀ> − y_i)(A_i + A_iᵀ) U.

    Args:
        op: operator (A of shape (m, d, d)). y: measurements (m,). truth: ground truth.
        U0: start (d, r'). eta0: first step. rho: decay in (0, 1). steps: iterations T.

    Returns:
        :class:`SubgradTrace`: err ‖U_tU_tᵀ − M*‖_F of shape (T+1,), U_T (d, r').
    """

    def record(U):
        return jnp.sqrt(jnp.sum((U @ U.T - truth.M) ** 2))

    def step(U, t):
        out = record(U)
        Q = adjoint(op, jnp.sign(forward(op, U @ U.T) - y))
        return U - eta0 * rho ** t * ((Q + Q.T) @ U), out

    U, err = lax.scan(step, U0, jnp.arange(steps))
    return SubgradTrace(jnp.append(err, record(U)), U)


# ------------------------------------------------------------------------------ batches (vmap)


def symmetric_gd_batch(op: Sensing | None, y: ArrayLike, truth: Truth, X0s: ArrayLike, eta: float,
                       steps: int) -> SymTrace:
    """:func:`symmetric_gd` vmapped over a stack of initialisations (k via zero columns, α, seeds).

    Args:
        op, y, truth, eta, steps: as :func:`symmetric_gd`. X0s: starts, shape (B, n, k).

    Returns:
        :class:`SymTrace` with a leading batch axis B.
    """
    return jax.vmap(lambda X0: symmetric_gd(op, y, truth, X0, eta, steps))(X0s)


def asymmetric_gd_batch(op: Sensing | None, y: ArrayLike, truth: Truth, F0s: ArrayLike,
                        G0s: ArrayLike, eta: float, steps: int, switch_below: float = 0.0,
                        c: float = 1.0) -> AsymTrace:
    """:func:`asymmetric_gd` vmapped over stacks of (F0, G0).

    Args:
        F0s: (B, n1, k). G0s: (B, n2, k). op, y, truth, eta, steps, switch_below, c: as
            :func:`asymmetric_gd`.

    Returns:
        :class:`AsymTrace` with a leading batch axis B.
    """
    run = lambda F0, G0: asymmetric_gd(op, y, truth, F0, G0, eta, steps, switch_below, c)  # noqa: E731
    return jax.vmap(run)(F0s, G0s)


def subgradient_batch(op: Sensing, ys: ArrayLike, truth: Truth, U0s: ArrayLike, eta0s: ArrayLike,
                      rhos: ArrayLike, steps: int, weights: ArrayLike | None = None) -> SubgradTrace:
    """:func:`subgradient_method` vmapped over measurement vectors, initialisations, schedules and
    (optionally) per-run measurement weights (a sweep over m via :func:`use_first` masks).

    Args:
        op: operator (A of shape (m, d, d)). ys: (B, m). truth: ground truth. U0s: (B, d, r').
        eta0s, rhos: (B,). steps: iterations T. weights: (B, m), or None for ``op.w`` in every run.

    Returns:
        :class:`SubgradTrace` with a leading batch axis B.
    """
    if weights is None:
        weights = jnp.broadcast_to(op.w, (len(ys),) + op.w.shape)
    run = lambda y, U0, e, r, w: subgradient_method(Sensing(op.A, w), y, truth, U0, e, r, steps)  # noqa: E731
    return jax.vmap(run)(ys, U0s, jnp.asarray(eta0s), jnp.asarray(rhos), weights)


def l2_gd_batch(op: Sensing, ys: ArrayLike, truth: Truth, U0s: ArrayLike, eta: float,
                steps: int) -> SymTrace:
    """ℓ2 GD baseline of Ma & Fattahi (:func:`symmetric_gd`, GD on ¼‖𝒜(UUᵀ) − y‖²) vmapped over
    measurement vectors and initialisations.

    Args:
        op: operator. ys: (B, m). truth: ground truth. U0s: (B, d, r). eta: step. steps: T.

    Returns:
        :class:`SymTrace` with a leading batch axis B (err squared, as in :func:`symmetric_gd`).
    """
    return jax.vmap(lambda y, U0: symmetric_gd(op, y, truth, U0, eta, steps))(ys, U0s)


# ------------------------------------------------------------------------------ rates (numpy)


def _window(err, lo, hi):
    err = np.asarray(err, float)
    t = np.flatnonzero((err > lo) & (err < hi))
    if t.size < 10:
        raise ValueError(f"only {t.size} iterates with {lo:g} < err < {hi:g}; run longer or widen the window")
    return t, np.log(err[t])


def tail_rate(err: ArrayLike, lo: float, hi: float) -> float:
    """Linear-convergence rate λ = −d ln err / dt (err ∝ exp(−λt), the exp(−Ω(T)) rates of Xiong et
    al. Table 1), least squares over the iterates with lo < err < hi.

    Args:
        err: error curve, shape (T+1,). lo, hi: the fit window (≥ 10 iterates inside).

    Returns:
        λ per iteration.
    """
    t, le = _window(err, lo, hi)
    return float(-np.polyfit(t, le, 1)[0])


def tail_rates(err: ArrayLike, lo: float, hi: float) -> np.ndarray:
    """:func:`tail_rate` for every run.

    Args:
        err: error curves, shape (..., T+1). lo, hi: the fit window.

    Returns:
        Rates of shape (...).
    """
    err = np.asarray(err)
    flat = err.reshape(-1, err.shape[-1])
    return np.reshape([tail_rate(e, lo, hi) for e in flat], err.shape[:-1])


def half_window_rates(err: ArrayLike, lo: float, hi: float) -> tuple[float, float]:
    """Rates on the upper and lower halves (in log err) of the window lo < err < hi: equal for
    linear convergence (the test of the exp(−Ω(T)) rows of Xiong et al. Table 1).

    Args:
        err: error curve, shape (T+1,). lo, hi: the window.

    Returns:
        ``(upper-half rate, lower-half rate)``.
    """
    t, le = _window(err, lo, hi)
    mid = 0.5 * (le.max() + le.min())
    upper, lower = le >= mid, le < mid
    return float(-np.polyfit(t[upper], le[upper], 1)[0]), float(-np.polyfit(t[lower], le[lower], 1)[0])


def inverse_sqrt_slope(err: ArrayLike, t_from: int) -> float:
    """Slope of err_t^{-1/2} against t for t ≥ t_from; the 1/T² law of Xiong et al. Thm 3.1 makes it
    constant, 2η/√(k − r) for 𝒜 = I (brief §3, C2).

    Args:
        err: error curve, shape (T+1,). t_from: first iteration of the fit (≥ 10 after it).

    Returns:
        The slope.
    """
    err = np.asarray(err, float)
    t = np.arange(t_from, err.size)
    if t.size < 10:
        raise ValueError("fewer than 10 iterates after t_from")
    return float(np.polyfit(t, err[t] ** -0.5, 1)[0])


def sublinear_slope_closed_form(eta: float, k: int, r: int) -> float:
    """2η/√(k − r): for 𝒜 = I, err_t ≈ Σ_{j ≤ k−r} (s_j0^{-2} + 2ηt)^{-2} → (k − r)/(4η²t²)
    (brief §3, C2; the constant of Xiong et al.'s Ω(1/T²), Thm 3.1).

    Args:
        eta: GD step. k: columns (> r). r: rank.

    Returns:
        The asymptotic slope of err_t^{-1/2} in t.
    """
    if k <= r:
        raise ValueError(f"the sublinear law needs k > r, got k={k}, r={r}")
    return 2.0 * eta / np.sqrt(k - r)


def first_hit(err: ArrayLike, level: float) -> int:
    """First iteration t with err_t ≤ level (the end of SubGM's growth phase for level ≈ 0.1‖M*‖_F,
    Ma & Fattahi Sec. 3).

    Args:
        err: error curve, shape (T+1,). level: threshold.

    Returns:
        The iteration, or −1 if the run never gets there.
    """
    below = np.flatnonzero(np.asarray(err, float) <= level)
    return int(below[0]) if below.size else -1
