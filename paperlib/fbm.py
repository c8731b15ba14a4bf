"""Fractional Brownian motion, its Markov approximation (MA-fBM) and variational inference for SDEs
driven by it (Daems, Opper, Crevecoeur, Birdal, ICLR 2024, arXiv 2310.12975).

Notation: H in (0, 1) is the Hurst index, alpha = H + 1/2. Two kinds of fBM (paper Sec. 2):

* type I (Mandelbrot-van Ness, stationary increments), normalised with 1/Gamma(alpha), so that
  Var B_H(t) = V_H t^{2H}, V_H = 1 / (Gamma(2H+1) sin(pi H)) (:func:`variance_factor`);
* type II (Riemann-Liouville), Var B_H(t) = t^{2H} / (2H Gamma(alpha)^2).

MA-fBM (paper Sec. 3): K Ornstein-Uhlenbeck processes dY_k = -gamma_k Y_k dt + dW driven by ONE
Brownian motion W, on a geometric grid of speeds gamma_k, combined as B_hat = sum_k omega_k Y_hat_k with
Y_hat_k = Y_k(t) - Y_k(0) (type I, Y(0) stationary) or Y_k(t) (type II, Y(0) = 0). The optimal omega
minimises the time-integrated mean-squared error, omega* = A^{-1} b (Prop. 5; App. D).

An SDE dX = b dt + sigma dB_hat is Markov in (X, Y_1..Y_K) (Prop. 2). The variational posterior adds ONE
control u to the drift of every Y_k; by Girsanov KL(Q||P) = E_Q[1/2 int u^2 dt] (Sec. 4), which gives the
ELBO used for training (Eq. 12 in the paper's notation: expected log-likelihood minus the path KL).

Everything runs in the dtype of its inputs; theorem checks enable ``jax_enable_x64`` (the type-II
matrix A has condition numbers of 1e7 and more, see :func:`optimal_omega`).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.scipy.special import gammainc, gammaincc, gammaln
from jax.typing import ArrayLike
from scipy import integrate, linalg, optimize, special

KINDS = ("I", "II")
_CF_SWITCH = 20.0  # z above which Q(a, z) e^z uses the continued fraction
_CF_TERMS = 40  # continued-fraction depth: relative error ~1e-15 already at z = 10


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _concrete(value):
    """``value`` as a float64 numpy array, or None when it is traced (e.g. a learnable H under jit)."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _check_hurst(H) -> None:
    """Validate H when it is a concrete number (traced values pass through)."""
    h = _concrete(H)
    if h is None:
        return
    if not np.all(np.isfinite(h) & (h > 0.0) & (h < 1.0)):
        raise ValueError(f"Hurst index must lie in (0, 1), got {H!r}")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} (type I: Mandelbrot-van Ness, II: Riemann-Liouville), got {kind!r}")


def _check_positive(name: str, value) -> None:
    v = _concrete(value)
    if v is not None and not np.all(np.isfinite(v) & (v > 0)):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def check_euler_step(gammas: ArrayLike, dt: float) -> None:
    """Euler stability guard of the official code: gamma_max * dt < 0.5.

    Args:
        gammas: (K,) OU speeds; dt: Euler step.

    Raises:
        ValueError: when max(gammas) * dt >= 0.5.
    """
    g = float(np.max(np.asarray(gammas)))
    if not g * dt < 0.5:
        raise ValueError(f"Euler step unstable for the fastest OU process: gamma_max*dt = {g * dt:.3g} must be < 0.5")


# ---------------------------------------------------------------------------------------------
# Exact fBM: covariances and samplers
# ---------------------------------------------------------------------------------------------


def variance_factor(H: ArrayLike) -> jax.Array:
    """V_H = 1 / (Gamma(2H+1) sin(pi H)): Var B_H(1) of the 1/Gamma(H+1/2)-normalised type-I fBM.

    Args:
        H: Hurst index in (0, 1), any shape.

    Returns:
        V_H, same shape as H (Sec. 2, type I normalisation).
    """
    return jnp.exp(-gammaln(2.0 * H + 1.0)) / jnp.sin(jnp.pi * H)


def fbm_covariance(t: ArrayLike, s: ArrayLike, H: ArrayLike, scale: ArrayLike = 1.0) -> jax.Array:
    """Type-I fBM covariance scale * (|t|^{2H} + |s|^{2H} - |t-s|^{2H}) / 2 (broadcasts t against s).

    ``scale=1`` is the unit-normalised fBM of the ``fbm`` package; ``scale=variance_factor(H)`` the
    paper's normalisation.

    Args:
        t, s: times, broadcast against each other (e.g. (n, 1) and (1, m)); H: Hurst index.
        scale: Var B_H(1).

    Returns:
        The covariance, of the broadcast shape of t and s.
    """
    t, s = jnp.asarray(t), jnp.asarray(s)
    p = 2.0 * H
    return 0.5 * scale * (jnp.abs(t) ** p + jnp.abs(s) ** p - jnp.abs(t - s) ** p)


def rl_covariance(t: ArrayLike, s: ArrayLike, H: float) -> np.ndarray:
    """Type-II (Riemann-Liouville) covariance (1/Gamma(a)^2) int_0^{min} (t-u)^{a-1} (s-u)^{a-1} du, a = H+1/2.

    Closed form with the Gauss hypergeometric function: for s < t, with d = t - s,
    d^{a-1} s^a / a * 2F1(1-a, a; a+1; -s/d) / Gamma(a)^2; on the diagonal t^{2H} / (2H Gamma(a)^2).

    Args:
        t, s: non-negative times, broadcast against each other; H: Hurst index in (0, 1).

    Returns:
        The type-II covariance (Sec. 2), of the broadcast shape (0 where min(t, s) = 0).
    """
    _check_hurst(H)
    a = H + 0.5
    t, s = np.broadcast_arrays(np.asarray(t, dtype=np.float64), np.asarray(s, dtype=np.float64))
    lo, hi = np.minimum(t, s), np.maximum(t, s)
    d = hi - lo
    out = np.zeros(t.shape)
    diag = (d == 0) & (lo > 0)
    off = (d > 0) & (lo > 0)
    out[diag] = lo[diag] ** (2 * H) / (2 * H)
    out[off] = d[off] ** (a - 1) * lo[off] ** a / a * special.hyp2f1(1 - a, a, a + 1, -lo[off] / d[off])
    return out / special.gamma(a) ** 2


def fgn_autocovariance(k: ArrayLike, H: ArrayLike) -> jax.Array:
    """Autocovariance of unit fractional Gaussian noise at integer lag k: (|k+1|^{2H} - 2|k|^{2H} + |k-1|^{2H})/2.

    Args:
        k: integer lags, any shape; H: Hurst index.

    Returns:
        The autocovariance, shape of k.
    """
    k = jnp.abs(jnp.asarray(k, dtype=jnp.result_type(float)))
    p = 2.0 * H
    return 0.5 * (jnp.abs(k + 1) ** p - 2.0 * k ** p + jnp.abs(k - 1) ** p)


def _fgn_to_fbm(fgn, H, T):
    """Cumulate unit-step fGn into fBM on [0, T] (n+1 points including B(0) = 0)."""
    n = fgn.shape[-1]
    path = jnp.cumsum(fgn, axis=-1) * (T / n) ** H
    return jnp.concatenate([jnp.zeros(path.shape[:-1] + (1,), path.dtype), path], axis=-1)


@partial(jax.jit, static_argnames=("n", "num_paths"))
def _cholesky_fbm(key, H, n, T, num_paths):
    lags = jnp.arange(n)
    cov = fgn_autocovariance(lags[:, None] - lags[None, :], H)
    L = jnp.linalg.cholesky(cov)
    z = jax.random.normal(key, (num_paths, n), dtype=cov.dtype)
    return _fgn_to_fbm(z @ L.T, H, T)


def sample_fbm_cholesky(key: jax.Array, H: ArrayLike, n: int, T: float, num_paths: int) -> jax.Array:
    """Exact unit-normalised type-I fBM on t_i = iT/n, i = 0..n, by Cholesky of the fGn Toeplitz matrix.

    Returns (num_paths, n + 1). Cost O(n^3) once plus O(n^2) per path.

    Args:
        key: PRNG key; H: Hurst index in (0, 1); n: steps; T: horizon; num_paths: paths.

    Returns:
        (num_paths, n + 1) paths with B(0) = 0.
    """
    _check_hurst(H)
    _check_positive("T", T)
    return _cholesky_fbm(key, H, int(n), T, int(num_paths))


@partial(jax.jit, static_argnames=("n", "num_paths"))
def _davies_harte_fbm(key, H, n, T, num_paths):
    k = jnp.arange(n + 1)
    row = fgn_autocovariance(k, H)
    row = jnp.concatenate([row, row[-2:0:-1]])  # circulant of size 2n, no appended zero
    m = 2 * n
    lam = jnp.maximum(jnp.real(jnp.fft.fft(row)), 0.0)  # >= 0 for fGn up to round-off
    k1, k2 = jax.random.split(key)
    zeta = jax.random.normal(k1, (num_paths, m), row.dtype) + 1j * jax.random.normal(k2, (num_paths, m), row.dtype)
    fgn = jnp.real(jnp.fft.fft(jnp.sqrt(lam / m) * zeta, axis=-1))[:, :n]
    return _fgn_to_fbm(fgn, H, T)


def sample_fbm_davies_harte(key: jax.Array, H: ArrayLike, n: int, T: float, num_paths: int) -> jax.Array:
    """Exact unit-normalised type-I fBM by circulant embedding (Davies-Harte), O(n log n) per path.

    The circulant row is (g_0..g_n, g_{n-1}..g_1) without the extra zero some implementations append,
    so its eigenvalues are non-negative for every H (fGn). Returns (num_paths, n + 1).

    Args and Returns: as in :func:`sample_fbm_cholesky`.
    """
    _check_hurst(H)
    _check_positive("T", T)
    return _davies_harte_fbm(key, H, int(n), T, int(num_paths))


def variogram_hurst(paths: ArrayLike, lags: tuple = (1, 2), noise_var: float = 0.0) -> float:
    """Classical variogram estimate of H from equally spaced samples ``paths`` (num_paths, n): the
    mean squared increment V(h) at each lag h (pooled over paths and positions), minus 2 noise_var
    (i.i.d. observation noise of variance noise_var adds 2 noise_var to every squared increment),
    then H = half the least-squares slope of log V(h) on log h. For fBM V(h) = V(1) h^{2H}.

    Args:
        paths: (num_paths, n) equally spaced samples; lags: >= 2 distinct lags in [1, n).
        noise_var: variance of i.i.d. observation noise to remove.

    Returns:
        The estimate of H (NaN when a corrected variogram value is not positive).

    Raises:
        ValueError: on a bad shape or bad lags.
    """
    x = np.asarray(paths, dtype=np.float64)
    lags = np.asarray(lags, dtype=int)
    if x.ndim != 2 or lags.size < 2 or lags.min() < 1 or lags.max() >= x.shape[1]:
        raise ValueError(f"need paths (num_paths, n) and >= 2 distinct lags in [1, n); "
                         f"got {x.shape}, {lags}")
    V = np.array([np.mean((x[:, h:] - x[:, :-h]) ** 2) for h in lags]) - 2.0 * noise_var
    if np.any(V <= 0):
        return float("nan")
    return float(0.5 * np.polyfit(np.log(lags), np.log(V), 1)[0])


# ---------------------------------------------------------------------------------------------
# MA-fBM: grid, closed-form optimal coefficients, covariance
# ---------------------------------------------------------------------------------------------


def gamma_grid(K: int, gamma_max: float | None = None, ratio: float | None = None) -> np.ndarray:
    """Geometric grid gamma_k = r^{k-(K+1)/2}, k = 1..K (symmetric about 1 in log scale).

    Give exactly one of ``gamma_max`` (official code: r = gamma_max^{2/(K-1)}) or ``ratio`` r (grids
    with the same r are nested: the grid of K+2 contains that of K). K = 1 gives gamma = (1,).

    Args:
        K: number of OU processes (>= 1); gamma_max: largest speed (> 1); ratio: r (> 1).

    Returns:
        (K,) speeds, increasing.

    Raises:
        ValueError: on a bad K, or unless exactly one of gamma_max, ratio is given and > 1.
    """
    if not (isinstance(K, (int, np.integer)) and K >= 1):
        raise ValueError(f"K must be a positive integer, got {K!r}")
    if (gamma_max is None) == (ratio is None):
        raise ValueError("give exactly one of gamma_max and ratio")
    if K == 1:
        return np.ones(1)
    if gamma_max is not None:
        _check_positive("gamma_max", gamma_max)
        if gamma_max <= 1:
            raise ValueError(f"gamma_max must be > 1, got {gamma_max}")
        ratio = gamma_max ** (2.0 / (K - 1))
    _check_positive("ratio", ratio)
    if ratio <= 1:
        raise ValueError(f"ratio must be > 1, got {ratio}")
    return ratio ** (np.arange(1, K + 1) - (K + 1) / 2.0)


def _gamma_continued_fraction(a, z):
    """Q(a, z) e^z by the Legendre continued fraction of Gamma(a, z), evaluated bottom-up (z >~ 10).

    A ``lax.scan`` over the terms n = _CF_TERMS..1 rather than an unrolled Python loop: the same
    arithmetic, but its gradient in ``a`` compiles in a tenth of the time (one loop body, not 40)."""

    def term(f, n):
        return z + 2.0 * n - 1.0 - a - n * (n - a) / f, None

    f0 = z + 2.0 * _CF_TERMS + 1.0 - a
    f, _ = lax.scan(term, f0, jnp.arange(_CF_TERMS, 0, -1, dtype=jnp.result_type(f0)))
    return jnp.exp(a * jnp.log(z) - gammaln(a)) / f


@jax.jit
def scaled_upper_gamma(a: ArrayLike, z: ArrayLike) -> jax.Array:
    """Q(a, z) e^z without overflow (pitfall P2): direct below z = 20, continued fraction above.

    Args:
        a: shape parameter (> 0); z: argument (>= 0), broadcast against a.

    Returns:
        Q(a, z) e^z, the factor of type-I b_k in Prop. 5 (App. D), of the broadcast shape.
    """
    z = jnp.asarray(z)
    small = jnp.minimum(z, _CF_SWITCH)
    large = jnp.maximum(z, _CF_SWITCH)
    return jnp.where(z < _CF_SWITCH, gammaincc(a, small) * jnp.exp(small), _gamma_continued_fraction(a, large))


def _one_minus_exp_over(x):
    """(1 - e^{-x}) / x, accurate for small x."""
    return -jnp.expm1(-x) / x


class OmegaSystem(NamedTuple):
    """The quadratic error E(omega) = omega' A omega - 2 b' omega + c of Prop. 5."""

    A: jax.Array  # (K, K) int_0^T E[Y_hat_i Y_hat_j] dt
    b: jax.Array  # (K,) int_0^T E[B_H Y_hat_k] dt
    c: jax.Array  # () int_0^T E[B_H^2] dt


def omega_system(gammas: ArrayLike, H: ArrayLike, T: ArrayLike, kind: str) -> OmegaSystem:
    """Closed forms of A, b, c for MA-fBM of type I or II on the horizon [0, T] (Prop. 5, App. D).

    Type II: A_ij = [T - (1 - e^{-(g_i+g_j)T})/(g_i+g_j)]/(g_i+g_j),
             b_k = T g^{-a} P(a, gT) - a g^{-(a+1)} P(a+1, gT),  c = T^{2H+1} / (2H(2H+1) Gamma(a)^2).
    Type I:  A_ij = [2T - (1 - e^{-g_i T})/g_i - (1 - e^{-g_j T})/g_j]/(g_i+g_j),
             b_k = 2T g^{-a} - T^a/(g Gamma(a+1)) + g^{-(a+1)} [e^{-gT} - Q(a, gT) e^{gT}],
             c = V_H T^{2H+1} / (2H+1).
    Differentiable in H (for a learnable Hurst index).

    Args:
        gammas: (K,) positive speeds; H: Hurst index in (0, 1) (may be traced); T: horizon > 0.
        kind: ``"I"`` or ``"II"``.

    Returns:
        :class:`OmegaSystem` with A (K, K), b (K,), c ().
    """
    _check_kind(kind)
    _check_hurst(H)
    _check_positive("T", T)
    _check_positive("gammas", gammas)
    return _omega_system(jnp.asarray(gammas), H, T, kind)


@partial(jax.jit, static_argnames="kind")
def _omega_system(g, H, T, kind):
    a = H + 0.5
    gi, gj = g[:, None], g[None, :]
    s = gi + gj
    if kind == "II":
        A = (T - T * _one_minus_exp_over(s * T)) / s
        b = T * g ** (-a) * gainc(a, g * T) - a * g ** (-(a + 1.0)) * gainc(a + 1.0, g * T)
        c = T ** (2 * H + 1) / (2 * H * (2 * H + 1)) * jnp.exp(-2.0 * gammaln(a))
    else:
        A = (2.0 * T - T * _one_minus_exp_over(gi * T) - T * _one_minus_exp_over(gj * T)) / s
        b = (2.0 * T * g ** (-a) - T ** a / g * jnp.exp(-gammaln(a + 1.0))
             + g ** (-(a + 1.0)) * (jnp.exp(-g * T) - scaled_upper_gamma(a, g * T)))
        c = variance_factor(H) * T ** (2 * H + 1) / (2 * H + 1)
    return OmegaSystem(A, b, c)


def gainc(a: ArrayLike, z: ArrayLike) -> jax.Array:
    """Regularised lower incomplete Gamma P(a, z) (differentiable in a).

    Args:
        a: shape parameter; z: argument, broadcast against a.

    Returns:
        P(a, z), of the broadcast shape.
    """
    return gammainc(a, z)


def _solve_spd(A, b, rcond: float = 1e-13):
    """Minimum-norm least-squares solution of A x = b for a PSD Gram matrix that may be singular in
    floating point (type-II A with K >= 9 on a ratio-4 grid has condition number > 1e14): Jacobi
    scaling, then an eigendecomposition whose eigenvalues below rcond * max are dropped."""
    d = 1.0 / jnp.sqrt(jnp.diag(A))
    vals, vecs = jnp.linalg.eigh(A * d[:, None] * d[None, :])
    keep = vals > rcond * vals[-1]
    inv = jnp.where(keep, 1.0 / jnp.where(keep, vals, 1.0), 0.0)
    return d * (vecs @ (inv * (vecs.T @ (b * d))))


def omega_system_np(gammas: ArrayLike, H: float, T: float, kind: str) -> OmegaSystem:
    """numpy/scipy twin of :func:`omega_system` (float64, not differentiable) for sweeps over grid
    sizes, where the JAX version compiles once per size.

    Args:
        gammas: (K,) speeds; H: Hurst index in (0, 1); T: horizon; kind: ``"I"`` or ``"II"``.

    Returns:
        :class:`OmegaSystem` of numpy arrays (Prop. 5, App. D).
    """
    _check_kind(kind)
    _check_hurst(H)
    g, a = np.asarray(gammas, dtype=np.float64), H + 0.5
    gi, gj = g[:, None], g[None, :]
    if kind == "II":
        A = (T + np.expm1(-(gi + gj) * T) / (gi + gj)) / (gi + gj)
        b = (T * g ** (-a) * special.gammainc(a, g * T)
             - a * g ** (-(a + 1.0)) * special.gammainc(a + 1.0, g * T))
        c = T ** (2 * H + 1) / (2 * H * (2 * H + 1) * special.gamma(a) ** 2)
    else:
        A = (2.0 * T + np.expm1(-gi * T) / gi + np.expm1(-gj * T) / gj) / (gi + gj)
        z = g * T
        small = np.minimum(z, _CF_SWITCH)
        q_ez = np.where(z < _CF_SWITCH, special.gammaincc(a, small) * np.exp(small),
                        np.asarray(_gamma_continued_fraction(a, np.maximum(z, _CF_SWITCH))))
        b = 2.0 * T * g ** (-a) - T ** a / (g * special.gamma(a + 1.0)) + g ** (-(a + 1.0)) * (
            np.exp(-z) - q_ez)
        c = T ** (2 * H + 1) / ((2 * H + 1) * special.gamma(2 * H + 1) * np.sin(np.pi * H))
    return OmegaSystem(A, b, c)


def solve_gram_np(A: ArrayLike, b: ArrayLike, rcond: float = 1e-13) -> np.ndarray:
    """numpy twin of the solver behind :func:`optimal_omega` (Jacobi scaling, eigenvalues below
    rcond * max dropped).

    Args:
        A: (K, K) PSD Gram matrix; b: (K,); rcond: relative eigenvalue cut-off.

    Returns:
        (K,) minimum-norm solution of A x = b.
    """
    A, b = np.asarray(A, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = 1.0 / np.sqrt(np.diag(A))
    vals, vecs = np.linalg.eigh(A * d[:, None] * d[None, :])
    keep = vals > rcond * vals[-1]
    inv = np.where(keep, 1.0 / np.where(keep, vals, 1.0), 0.0)
    return d * (vecs @ (inv * (vecs.T @ (b * d))))


def optimal_omega(gammas: ArrayLike, H: ArrayLike, T: ArrayLike, kind: str) -> jax.Array:
    """omega* = A^{-1} b, the minimiser of the integrated squared error (Prop. 5). Use float64:
    in float32 the elements of omega are meaningless for type II (pitfall P1), though the error is not.

    Args:
        gammas: (K,) speeds; H: Hurst index (differentiable); T: horizon; kind: ``"I"`` or ``"II"``.

    Returns:
        (K,) omega* (Prop. 5).
    """
    system = omega_system(gammas, H, T, kind)
    return _solve_spd(system.A, system.b)


def approximation_error(system: OmegaSystem, omega: ArrayLike) -> jax.Array:
    """E(omega) = omega' A omega - 2 b' omega + c, the time-integrated mean-squared error.

    Args:
        system: :class:`OmegaSystem` of Prop. 5; omega: (K,) coefficients.

    Returns:
        E(omega), a scalar.
    """
    return omega @ system.A @ omega - 2.0 * system.b @ omega + system.c


def optimal_relative_error(system: OmegaSystem) -> jax.Array:
    """Relative error of the optimum, 1 - b' A^{-1} b / c (no cancellation in E(omega*)/c).

    Args:
        system: :class:`OmegaSystem` of Prop. 5.

    Returns:
        eps_rel = E(omega*) / c, a scalar.
    """
    return 1.0 - system.b @ _solve_spd(system.A, system.b) / system.c


def omega_riemann(gammas: ArrayLike, H: float) -> np.ndarray:
    """The paper's quadrature baseline (the official code's ``omega_riemann``; Harms-Stefanovits):
    interpolate e^{-g u} piecewise-linearly in g between the grid nodes (hat functions phi_k, zero
    outside [g_1, g_K]) inside the Laplace representation of the kernel (t-s)^{a-1}/Gamma(a),
    a = H + 1/2.

    H < 1/2: omega_k = int phi_k(g) mu(g) dg, mu(g) = g^{-a} / (Gamma(a) Gamma(1-a)).
    H > 1/2: by parts, u^{a-1}/Gamma(a) = int (e^{-gu} - 1) d(g^{1-a}) / (Gamma(a) Gamma(2-a)), so
    omega_k = -int phi_k'(g) g^{1-a} dg / (Gamma(a) Gamma(2-a)); sum(omega) = 0, the constant drops.
    Both integrals are exact on each interval. Reproduces the brief's C3 Riemann row.

    Args:
        gammas: (K,) increasing speeds, K >= 2; H: Hurst index in (0, 1), not 1/2.

    Returns:
        (K,) Riemann weights.

    Raises:
        ValueError: at H = 1/2 or on a grid that is not increasing.
    """
    _check_hurst(H)
    if H == 0.5:
        raise ValueError("the Riemann weights are undefined at H = 1/2 (Brownian motion)")
    g = np.asarray(gammas, dtype=np.float64)
    if g.size < 2 or np.any(np.diff(g) <= 0):
        raise ValueError("the Riemann weights need an increasing grid of at least two speeds")
    a, lo, hi = H + 0.5, g[:-1], g[1:]
    width = hi - lo
    moment2 = (hi ** (2 - a) - lo ** (2 - a)) / (2 - a)  # int_lo^hi x^{1-a} dx
    if H < 0.5:
        moment1 = (hi ** (1 - a) - lo ** (1 - a)) / (1 - a)  # int_lo^hi x^{-a} dx
        rising = (moment2 - lo * moment1) / width  # hat of the right node on [lo, hi]
        falling = (hi * moment1 - moment2) / width  # hat of the left node on [lo, hi]
        w = np.concatenate([falling, [0.0]]) + np.concatenate([[0.0], rising])
        return w / (special.gamma(a) * special.gamma(1 - a))
    mean_slope = np.concatenate([[0.0], moment2 / width, [0.0]])  # phi_k' = +-1/width on each side
    return (mean_slope[1:] - mean_slope[:-1]) / (special.gamma(a) * special.gamma(2 - a))


def stationary_covariance(gammas: ArrayLike) -> jax.Array:
    """Stationary covariance of K OU processes with one shared driver: S_ij = 1/(g_i + g_j).

    Args:
        gammas: (K,) speeds.

    Returns:
        (K, K) covariance of Y(0) for type I (Sec. 3).
    """
    g = jnp.asarray(gammas)
    return 1.0 / (g[:, None] + g[None, :])


def _ou_cross(t, s, gi, gj, kind):
    """E[Y_i(t) Y_j(s)] for OU processes with one driver: stationary (I) or started at 0 (II)."""
    t, s = t[..., None, None], s[..., None, None]
    lag = t - s
    decay = jnp.where(lag >= 0, jnp.exp(-gi * jnp.abs(lag)), jnp.exp(-gj * jnp.abs(lag)))
    base = decay / (gi + gj)
    if kind == "II":
        base = base * -jnp.expm1(-(gi + gj) * jnp.minimum(t, s))
    return base


def mafbm_covariance(ts: ArrayLike, ss: ArrayLike, gammas: ArrayLike, omega: ArrayLike, kind: str) -> jax.Array:
    """Analytic covariance Cov(B_hat(t), B_hat(s)) = sum_ij omega_i omega_j E[Y_hat_i(t) Y_hat_j(s)] on the
    grids ``ts`` x ``ss`` (returns (len(ts), len(ss))).

    Args:
        ts: (n,) and ss: (m,) times; gammas, omega: (K,); kind: ``"I"`` or ``"II"``.

    Returns:
        (n, m) covariance of MA-fBM (Sec. 3).
    """
    _check_kind(kind)
    return _mafbm_covariance(jnp.asarray(ts), jnp.asarray(ss), jnp.asarray(gammas), jnp.asarray(omega), kind)


@partial(jax.jit, static_argnames="kind")
def _mafbm_covariance(ts, ss, g, w, kind):
    gi, gj = g[:, None], g[None, :]
    t, s = jnp.meshgrid(ts, ss, indexing="ij")
    cross = _ou_cross(t, s, gi, gj, kind)
    if kind == "I":
        zero = jnp.zeros_like(t)
        cross = cross - _ou_cross(t, zero, gi, gj, kind) - _ou_cross(zero, s, gi, gj, kind) + _ou_cross(zero, zero, gi, gj, kind)
    return jnp.einsum("i,...ij,j->...", w, cross, w)


def _psd_sqrt(M):
    """Symmetric square root factor F with F F' = M for a PSD (possibly singular) matrix."""
    vals, vecs = jnp.linalg.eigh(M)
    return vecs * jnp.sqrt(jnp.maximum(vals, 0.0))


def initial_ou_state(key: jax.Array, gammas: ArrayLike, kind: str, shape: tuple = ()) -> jax.Array:
    """Y(0): stationary N(0, S) jointly over k (type I, pitfall P6) or zeros (type II); shape + (K,).

    Args:
        key: PRNG key; gammas: (K,) speeds; kind: ``"I"`` or ``"II"``; shape: leading shape.

    Returns:
        shape + (K,) initial OU states.
    """
    _check_kind(kind)
    g = jnp.asarray(gammas)
    if kind == "II":
        return jnp.zeros(shape + g.shape, g.dtype)
    F = _psd_sqrt(stationary_covariance(g))
    return jax.random.normal(key, shape + g.shape, g.dtype) @ F.T


@partial(jax.jit, static_argnames=("kind", "num_steps", "num_paths"))
def _exact_mafbm(key, gammas, omega, dt, kind, num_steps, num_paths):
    g = gammas
    k0, k1 = jax.random.split(key)
    y0 = initial_ou_state(k0, g, kind, (num_paths,))
    gsum = g[:, None] + g[None, :]
    F = _psd_sqrt(-jnp.expm1(-gsum * dt) / gsum)  # exact transition covariance over one step
    decay = jnp.exp(-g * dt)

    def step(y, z):
        y = y * decay + z @ F.T
        return y, y

    noise = jax.random.normal(k1, (num_steps, num_paths, g.shape[0]), g.dtype)
    _, ys = lax.scan(step, y0, noise)
    b = (ys - y0) @ omega if kind == "I" else ys @ omega
    return jnp.concatenate([jnp.zeros((1, num_paths), b.dtype), b], axis=0).T


def sample_mafbm_exact(key: jax.Array, gammas: ArrayLike, omega: ArrayLike, dt: float, num_steps: int, num_paths: int, kind: str) -> jax.Array:
    """MA-fBM paths on t_i = i dt by exact Gaussian OU transitions (no discretisation bias).

    Returns (num_paths, num_steps + 1) with B_hat(0) = 0.

    Args:
        key: PRNG key; gammas, omega: (K,); dt: step; num_steps: steps; num_paths: paths;
        kind: ``"I"`` or ``"II"``.

    Returns:
        (num_paths, num_steps + 1) MA-fBM paths (Sec. 3).
    """
    _check_kind(kind)
    _check_positive("dt", dt)
    return _exact_mafbm(key, jnp.asarray(gammas), jnp.asarray(omega), dt, kind, int(num_steps), int(num_paths))


# ---------------------------------------------------------------------------------------------
# SDEs driven by MA-fBM: Euler-Maruyama on the augmented Markov state, path KL
# ---------------------------------------------------------------------------------------------


class Paths(NamedTuple):
    """One simulated trajectory of the augmented system on t_i = i dt."""

    x: jax.Array  # (num_steps + 1, D)
    y: jax.Array  # (num_steps + 1, D, K)
    kl: jax.Array  # () path KL 1/2 sum_d int u_d^2 dt (zero without control)


def euler_maruyama(key: jax.Array, x0: jax.Array, y0: jax.Array, gammas: ArrayLike, omega: ArrayLike,
                   drift: Callable, diffusion: Callable, control: Callable | None, dt: float,
                   num_steps: int) -> Paths:
    """Euler-Maruyama for dY_k = (-g_k Y_k + u) dt + dW, dX = b dt + sigma sum_k omega_k dY_k (Prop. 2).

    One dW per latent dimension drives X and all its Y_k (rank-one noise), and the control u(t, x, y) is
    shared by every Y_k, so the posterior is absolutely continuous w.r.t. the prior and the path KL is
    1/2 int u^2 dt (Girsanov; pitfall P5). ``drift(t, x)``, ``diffusion(t, x)`` and ``control(t, x, y)``
    return (D,) arrays; x0 is (D,), y0 (D, K). BM is the special case gammas = (0,), omega = (1,), type II.

    Args:
        key: PRNG key; x0: (D,) initial state; y0: (D, K) initial OU states; gammas, omega: (K,).
        drift, diffusion, control: callables as above (control None: the prior); dt: step;
        num_steps: steps.

    Returns:
        :class:`Paths` with x (num_steps + 1, D), y (num_steps + 1, D, K) and the path KL ().
    """
    g = jnp.asarray(gammas)
    w = jnp.asarray(omega)
    dW = jax.random.normal(key, (num_steps,) + jnp.shape(x0), jnp.result_type(x0)) * jnp.sqrt(dt)

    def step(state, inputs):
        x, y, kl = state
        i, dw = inputs
        t = i * dt
        u = control(t, x, y) if control is not None else jnp.zeros_like(x)
        dy = (-g * y + u[:, None]) * dt + dw[:, None]
        x_new = x + drift(t, x) * dt + diffusion(t, x) * (dy @ w)
        state = (x_new, y + dy, kl + 0.5 * jnp.sum(u**2) * dt)
        return state, (x_new, y + dy)

    init = (x0, y0, jnp.zeros((), jnp.result_type(x0)))
    (_, _, kl), (xs, ys) = lax.scan(step, init, (jnp.arange(num_steps), dW))
    return Paths(jnp.concatenate([x0[None], xs]), jnp.concatenate([y0[None], ys]), kl)


@jax.jit
def gaussian_path_kl(mean_shift: ArrayLike, cov: ArrayLike) -> jax.Array:
    """KL between two Gaussians with the same covariance and means differing by ``mean_shift``:
    1/2 d' cov^{-1} d. On a fine grid of X-values this tends to the path KL 1/2 int u^2 dt.

    Args:
        mean_shift: (n,) mean difference; cov: (n, n) shared positive definite covariance.

    Returns:
        The KL, a scalar (Sec. 4: tends to 1/2 int u^2 dt, Girsanov).
    """
    L = jnp.linalg.cholesky(cov)
    z = jax.scipy.linalg.solve_triangular(L, mean_shift, lower=True)
    return 0.5 * z @ z


@jax.jit
def constant_control_mean_shift(ts: ArrayLike, gammas: ArrayLike, omega: ArrayLike, c: ArrayLike) -> jax.Array:
    """E_Q[X(t)] - E_P[X(t)] for dX = dB_hat under a constant control u = c: c sum_k omega_k (1 - e^{-g_k t})/g_k.

    Args:
        ts: (n,) times; gammas, omega: (K,); c: the constant control.

    Returns:
        (n,) mean shifts.
    """
    g = jnp.asarray(gammas)
    t = jnp.asarray(ts)[:, None]
    return c * (t * _one_minus_exp_over(g * t)) @ jnp.asarray(omega)


# ---------------------------------------------------------------------------------------------
# Linear-Gaussian priors (fOU driven by MA-fBM): exact moments for the bridge experiment
# ---------------------------------------------------------------------------------------------


def linear_prior_covariance(ts: ArrayLike, gammas: ArrayLike, omega: ArrayLike, theta: float, kind: str) -> np.ndarray:
    """Exact Cov(X(t_i), X(t_j)) of dX = -theta X dt + dB_hat, X(0) = 0, on a uniform grid ``ts`` (t_0 = 0).

    Uses the augmented linear SDE dZ = F Z dt + v dW, Z = (X, Y), F = [[-theta, -(omega*g)'], [0, -diag g]],
    v = (sum omega, 1, ..., 1), with exact one-step transitions (Van Loan's matrix exponential).
    Independent of the Euler simulator (numpy/scipy, float64).

    Args:
        ts: (n,) uniform grid from 0; gammas, omega: (K,); theta: mean reversion; kind: ``"I"``/``"II"``.

    Returns:
        (n, n) covariance of X (Prop. 2's Markov state, exact transitions).
    """
    _check_kind(kind)
    ts = np.asarray(ts, dtype=np.float64)
    h = ts[1] - ts[0]
    if not (np.isclose(ts[0], 0.0) and np.allclose(np.diff(ts), h)):
        raise ValueError("ts must be a uniform grid starting at 0")
    g, w = np.asarray(gammas, dtype=np.float64), np.asarray(omega, dtype=np.float64)
    K = g.size
    F = np.zeros((K + 1, K + 1))
    F[0, 0], F[0, 1:], F[1:, 1:] = -theta, -w * g, -np.diag(g)
    v = np.concatenate([[w.sum()], np.ones(K)])
    van_loan = linalg.expm(np.block([[-F, np.outer(v, v)], [np.zeros_like(F), F.T]]) * h)
    Phi = van_loan[K + 1:, K + 1:].T
    Qh = Phi @ van_loan[:K + 1, K + 1:]
    P = np.zeros((K + 1, K + 1))
    if kind == "I":
        P[1:, 1:] = 1.0 / (g[:, None] + g[None, :])
    n = ts.size
    cross = np.zeros((n, n))
    Ps = [P]
    for _ in range(n - 1):
        P = Phi @ P @ Phi.T + Qh
        Ps.append(P)
    for i in range(n):
        M = Ps[i]  # Cov(Z_j, Z_i) = Phi^{j-i} P_i for j >= i
        for j in range(i, n):
            cross[j, i] = cross[i, j] = M[0, 0]
            M = Phi @ M
    return cross


def euler_prior_covariance(gammas: ArrayLike, omega: ArrayLike, theta: float, kind: str, dt: float,
                           num_steps: int) -> np.ndarray:
    """Exact Cov(X_i, X_j), i, j = 0..num_steps, of the Euler scheme of ``euler_maruyama`` for
    dX = -theta X dt + dB_hat without control: Z_{i+1} = M Z_i + v dW_i, Z = (X, Y), Y(0) from its
    prior law. The O(dt) bias of the Euler sampler against ``linear_prior_covariance`` is in here,
    so a Monte-Carlo check of the Euler paths against it sees sampling error only (numpy, float64).

    Args:
        gammas, omega: (K,); theta: mean reversion; kind: ``"I"``/``"II"``; dt: step;
        num_steps: steps.

    Returns:
        (num_steps + 1, num_steps + 1) covariance of the Euler X.
    """
    _check_kind(kind)
    M, v = _augmented_euler_matrices(gammas, omega, theta, dt)
    S = _initial_state_covariance(gammas, kind)
    states = [S]
    for _ in range(num_steps):
        S = M @ S @ M.T + np.outer(v, v) * dt
        states.append(S)
    cov = np.zeros((num_steps + 1, num_steps + 1))
    for i, S in enumerate(states):
        cross = S  # Cov(Z_j, Z_i) = M^{j-i} S_i for j >= i (the noise after step i is independent)
        for j in range(i, num_steps + 1):
            cov[i, j] = cov[j, i] = cross[0, 0]
            cross = M @ cross
    return cov


def _augmented_euler_matrices(gammas, omega, theta, dt):
    """One Euler step Z' = M Z + v (u dt + dW) of the augmented linear system (numpy, float64)."""
    g, w = np.asarray(gammas, dtype=np.float64), np.asarray(omega, dtype=np.float64)
    K = g.size
    F = np.zeros((K + 1, K + 1))
    F[0, 0], F[0, 1:], F[1:, 1:] = -theta, -w * g, -np.diag(g)
    return np.eye(K + 1) + F * dt, np.concatenate([[w.sum()], np.ones(K)])


def _initial_state_covariance(gammas, kind):
    g = np.asarray(gammas, dtype=np.float64)
    P0 = np.zeros((g.size + 1, g.size + 1))
    if kind == "I":
        P0[1:, 1:] = 1.0 / (g[:, None] + g[None, :])
    return P0


def _euler_riccati(M, v, dt, num_steps, obs_std):
    """Backward Riccati recursion of the Euler bridge's control problem (cost 1/2 u^2 dt per step plus
    X_n^2 / (2 obs_std^2)). Returns (P_0, feedback gains G_i with optimal u_i = -G_i Z_i, noise cost)."""
    B = v * dt
    P = np.zeros_like(M)
    P[0, 0] = 1.0 / obs_std**2
    noise_cost, gains = 0.0, []
    for _ in range(num_steps):
        noise_cost += 0.5 * dt * v @ P @ v
        MPB = M.T @ P @ B
        gains.append(MPB / (dt + B @ P @ B))
        P = M.T @ P @ M - np.outer(MPB, MPB) / (dt + B @ P @ B)
    return P, gains[::-1], noise_cost


def euler_bridge_optimal_law(gammas: ArrayLike, omega: ArrayLike, theta: float, kind: str, dt: float,
                             num_steps: int, obs_std: float) -> tuple[np.ndarray, np.ndarray]:
    """Posterior law of the Euler bridge under the best shared control (the LQR optimum of
    ``euler_bridge_optimum``): Z_{i+1} = (M - dt v G_i) Z_i + v dW_i is zero-mean Gaussian.

    Returns (std of X at steps 0..num_steps, ELBO of that law computed forward from its covariance:
    E[log N(0; X_n, obs_std^2)] - sum_i 1/2 dt G_i S_i G_i^T). This is the target a trained shared control
    can reach at this dt; it differs from the continuous conditioned std (``conditioned_std``).

    Args:
        gammas, omega: (K,); theta: mean reversion; kind: ``"I"``/``"II"``; dt: step;
        num_steps: steps to the observation; obs_std: observation noise std.

    Returns:
        ((num_steps + 1,) std of X, the ELBO of that law (float)).
    """
    _check_kind(kind)
    M, v = _augmented_euler_matrices(gammas, omega, theta, dt)
    _, gains, _ = _euler_riccati(M, v, dt, num_steps, obs_std)
    S = _initial_state_covariance(gammas, kind)
    var_x, kl = [S[0, 0]], 0.0
    for G in gains:
        kl += 0.5 * dt * G @ S @ G
        closed = M - dt * np.outer(v, G)
        S = closed @ S @ closed.T + np.outer(v, v) * dt
        var_x.append(S[0, 0])
    loglik = -0.5 * S[0, 0] / obs_std**2 - 0.5 * np.log(2 * np.pi * obs_std**2)
    return np.sqrt(np.asarray(var_x)), loglik - kl


def euler_bridge_optimum(gammas: ArrayLike, omega: ArrayLike, theta: float, kind: str, dt: float,
                         num_steps: int, obs_std: float) -> tuple[float, np.ndarray]:
    """Best ELBO any shared control can reach in the Euler-discretised bridge, and the Euler prior's log p.

    Maximising E[log N(0; X_n, obs_std^2)] - E[sum 1/2 u_i^2 dt] over controls u_i(Z_i) is a discrete
    linear-quadratic regulator (Riccati recursion; the optimal u is linear in Z). Y(0) keeps its prior law.
    Returns (optimal ELBO, log p(obs) of the Euler prior). As dt -> 0 both tend to the continuous log p;
    at finite dt the shared-control family cannot shrink the one-step noise, and the gap is large
    when obs_std is small against the local diffusion sum(omega) (H = 0.3: 2.2 nats at dt = 0.01).

    Args:
        gammas, omega: (K,); theta: mean reversion; kind: ``"I"``/``"II"``; dt: step;
        num_steps: steps to the observation; obs_std: observation noise std.

    Returns:
        (best ELBO, log p(obs) of the Euler prior), two floats (Fig. 2 bridge, Sec. 5.1).
    """
    _check_kind(kind)
    M, v = _augmented_euler_matrices(gammas, omega, theta, dt)
    P, _, noise_cost = _euler_riccati(M, v, dt, num_steps, obs_std)
    P0 = _initial_state_covariance(gammas, kind)
    best = -(0.5 * np.trace(P @ P0) + noise_cost) - 0.5 * np.log(2 * np.pi * obs_std**2)
    S = P0
    for _ in range(num_steps):
        S = M @ S @ M.T + np.outer(v, v) * dt
    return best, gaussian_log_evidence(S[0, 0], obs_std**2)


def stationary_fou_covariance(lags: ArrayLike, H: float, theta: float) -> np.ndarray:
    """Stationary fOU autocovariance for unit-normalised fBM, by its spectral density:
    (Gamma(2H+1) sin(pi H) / pi) int_0^inf cos(tau x) x^{1-2H} / (theta^2 + x^2) dx (quadrature).
    This is the paper's "true" band for theta > 0 (Fig. 2c, d).

    Args:
        lags: time lags, any shape; H: Hurst index in (0, 1); theta: mean reversion (> 0).

    Returns:
        The autocovariance, shape of ``lags``.
    """
    _check_hurst(H)
    _check_positive("theta", theta)
    pref = special.gamma(2 * H + 1) * np.sin(np.pi * H) / np.pi
    f = lambda x: x ** (1 - 2 * H) / (theta**2 + x**2)  # noqa: E731
    unique, inverse = np.unique(np.abs(np.asarray(lags, dtype=np.float64)).ravel(), return_inverse=True)
    out = []
    for tau in unique:
        head = integrate.quad(lambda x: np.cos(tau * x) * f(x), 0.0, 1.0, limit=200)[0]
        tail = integrate.quad(f, 1.0, np.inf, weight="cos", wvar=tau)[0] if tau > 0 else integrate.quad(f, 1.0, np.inf)[0]
        out.append(pref * (head + tail))
    return np.asarray(out)[inverse].reshape(np.shape(lags))


def conditioned_std(cov: ArrayLike, obs_index: int, obs_var: float, pin_index: int | None = None,
                    nugget: float = 1e-7) -> np.ndarray:
    """Pointwise std of a zero-mean Gaussian process on a grid after observing X(t_obs) + N(0, obs_var) = 0
    (and optionally pinning X(t_pin) = 0 with a tiny nugget, as the official band does).

    Args:
        cov: (n, n) prior covariance; obs_index: observed grid index; obs_var: its noise variance;
        pin_index: optional pinned index; nugget: variance of the pin.

    Returns:
        (n,) posterior std (Fig. 2's bands).
    """
    cov = np.asarray(cov, dtype=np.float64)
    idx = [obs_index] if pin_index is None else [pin_index, obs_index]
    noise = [obs_var] if pin_index is None else [nugget, obs_var]
    Soo = cov[np.ix_(idx, idx)] + np.diag(noise)
    Sxo = cov[:, idx]
    var = np.diag(cov) - np.einsum("ij,ji->i", Sxo, np.linalg.solve(Soo, Sxo.T))
    return np.sqrt(np.maximum(var, 0.0))


def gaussian_log_evidence(prior_var: float, obs_var: float, obs: float = 0.0) -> float:
    """log N(obs; 0, prior_var + obs_var): the exact log p(obs) of the linear-Gaussian bridge.

    Args:
        prior_var: Var X(t_obs) under the prior; obs_var: noise variance; obs: observed value.

    Returns:
        log p(obs), a float.
    """
    v = prior_var + obs_var
    return -0.5 * np.log(2 * np.pi * v) - 0.5 * obs**2 / v


# ---------------------------------------------------------------------------------------------
# Small networks and training (optax Adam, whole loop in one lax.scan)
# ---------------------------------------------------------------------------------------------


def mlp_init(key: jax.Array, sizes: list[int], zero_last: bool = True) -> list:
    """Dense layers [(W, b)]; N(0, 1/fan_in) weights; last layer zero (posterior = prior at start).

    Args:
        key: PRNG key; sizes: [in, hidden..., out]; zero_last: start the output layer at zero.

    Returns:
        [(W (m, n), b (n,))] per layer.
    """
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    for i, (k, m, n) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
        W = jax.random.normal(k, (m, n)) / jnp.sqrt(m)
        if zero_last and i == len(sizes) - 2:
            W = jnp.zeros_like(W)
        layers.append((W, jnp.zeros(n)))
    return layers


def mlp_apply(layers: list, x: jax.Array) -> jax.Array:
    """tanh MLP with a linear output layer.

    Args:
        layers: ``mlp_init`` output; x: (..., in) inputs.

    Returns:
        (..., out) outputs.
    """
    for W, b in layers[:-1]:
        x = jnp.tanh(x @ W + b)
    W, b = layers[-1]
    return x @ W + b


FAST_COMPILE = {"xla_backend_optimization_level": 0}
"""XLA options for a compile-bound top-level ``jax.jit`` (LLVM at -O0): the video proxy's training
compiles in about half the CPU time (14 -> 8 s at smoke; 17 + 2.5 s run -> 9 + 6 s at default), and
its losses agree up to last-bit rounding (1e-15 relative)."""


def fit(loss_fn: Callable, params: dict | list, key: jax.Array, num_steps: int,
        learning_rate: float) -> tuple[dict | list, jax.Array]:
    """Minimise ``loss_fn(params, key)`` with Adam, cosine-decayed from ``learning_rate`` to 0 over
    ``num_steps`` (fresh key each step), the whole loop one ``lax.scan``.

    Args:
        loss_fn: (params, key) -> scalar loss; params: initial pytree; key: PRNG key;
        num_steps: Adam steps; learning_rate: initial step size.

    Returns:
        (params, losses (num_steps,)).
    """
    optimiser = optax.adam(optax.cosine_decay_schedule(learning_rate, num_steps))

    @jax.jit
    def run(params, key):
        def step(carry, k):
            p, state = carry
            loss, grads = jax.value_and_grad(loss_fn)(p, k)
            updates, state = optimiser.update(grads, state, p)
            return (optax.apply_updates(p, updates), state), loss

        (p, _), losses = lax.scan(step, (params, optimiser.init(params)), jax.random.split(key, num_steps))
        return p, losses

    return run(params, key)


# ---------------------------------------------------------------------------------------------
# Experiment 1: the fOU bridge (Fig. 2)
# ---------------------------------------------------------------------------------------------


class BridgeSetup(NamedTuple):
    """Prior dX = -theta X dt + dB_hat, X(0) = 0, X(t_end) observed as 0 with noise obs_std (code: 0.1)."""

    gammas: jax.Array
    omega: jax.Array
    theta: float
    kind: str
    dt: float
    num_steps: int
    obs_std: float


def _bridge_features(t, x, y, t_end, dt):
    """[sin t, cos t, z, z d/(t_end - t + d) for d in (dt, 0.1)], z = (x, y): the official inputs plus
    time-to-go-scaled copies of the state (our addition: the optimal control of a pinned end point is
    linear in z with a gain that grows like 1/(t_end - t))."""
    z = jnp.concatenate([x, y.ravel()])
    to_go = t_end - t
    return jnp.concatenate([jnp.array([jnp.sin(t), jnp.cos(t)]), z, z * dt / (to_go + dt), z * 0.1 / (to_go + 0.1)])


def bridge_control_init(key: jax.Array, K: int, hidden: list[int]) -> dict:
    """Control network: tanh MLP plus a linear skip from the features, both starting at zero output.

    Args:
        key: PRNG key; K: OU processes; hidden: hidden widths.

    Returns:
        {"mlp": layers, "skip": (2 + 3 (K + 1), 1)}.
    """
    num_features = 2 + 3 * (K + 1)
    return {"mlp": mlp_init(key, [num_features] + list(hidden) + [1]), "skip": jnp.zeros((num_features, 1))}


def bridge_control(params: dict, setup: BridgeSetup, t: ArrayLike, x: jax.Array, y: jax.Array) -> jax.Array:
    """u(t, x, y) = MLP(features) + features @ W_skip.

    Args:
        params: ``bridge_control_init`` output; setup: :class:`BridgeSetup`; t: time;
        x: (1,) state; y: (1, K) OU states.

    Returns:
        (1,) control u shared by every Y_k (Sec. 4).
    """
    feats = _bridge_features(t, x, y, setup.dt * setup.num_steps, setup.dt)
    return mlp_apply(params["mlp"], feats) + feats @ params["skip"]


def bridge_paths(params: dict, key: jax.Array, setup: BridgeSetup, num_paths: int) -> Paths:
    """Posterior paths of the bridge (vmapped Euler-Maruyama).

    Args:
        params: control parameters; key: PRNG key; setup: :class:`BridgeSetup`; num_paths: paths.

    Returns:
        :class:`Paths` with a leading num_paths axis.
    """

    def one(k):
        k0, k1 = jax.random.split(k)
        y0 = initial_ou_state(k0, setup.gammas, setup.kind, (1,))
        return euler_maruyama(k1, jnp.zeros(1), y0, setup.gammas, setup.omega,
                              lambda t, x: -setup.theta * x, lambda t, x: jnp.ones_like(x),
                              partial(bridge_control, params, setup), setup.dt, setup.num_steps)

    return jax.vmap(one)(jax.random.split(key, num_paths))


def bridge_elbo_terms(params: dict, key: jax.Array, setup: BridgeSetup,
                      num_paths: int) -> tuple[jax.Array, jax.Array]:
    """Per-path log-likelihood log N(0; X(t_end), obs_std^2) and path KL; ELBO = loglik - KL.

    Args:
        params, key, setup, num_paths: as in :func:`bridge_paths`.

    Returns:
        ((num_paths,) log-likelihoods, (num_paths,) path KLs) (Eq. 12's terms).
    """
    paths = bridge_paths(params, key, setup, num_paths)
    return bridge_log_likelihood(paths, setup), paths.kl


def bridge_log_likelihood(paths: Paths, setup: BridgeSetup) -> jax.Array:
    """Per-path log N(0; X(t_end), obs_std^2) of simulated bridge paths.

    Args:
        paths: :class:`Paths` with a leading path axis; setup: :class:`BridgeSetup`.

    Returns:
        (num_paths,) log-likelihoods.
    """
    x_end = paths.x[:, -1, 0]
    return -0.5 * (x_end / setup.obs_std) ** 2 - 0.5 * jnp.log(2 * jnp.pi * setup.obs_std**2)


def train_bridge(key: jax.Array, setup: BridgeSetup, hidden: list[int], num_steps: int, batch: int,
                 learning_rate: float) -> tuple[dict, jax.Array]:
    """Fit the control network by maximising the Monte-Carlo ELBO (official: Adam 1e-3, batch 32, 2000
    steps; ``learning_rate`` here is the start of a cosine decay). Returns (params, losses).

    Args:
        key: PRNG key; setup: :class:`BridgeSetup`; hidden: MLP widths; num_steps: Adam steps;
        batch: paths per step; learning_rate: initial step size.

    Returns:
        (params, losses (num_steps,)) (Fig. 2).
    """
    check_euler_step(setup.gammas, setup.dt)
    static = setup._replace(gammas=_as_tuple(setup.gammas), omega=None, theta=None)
    return _train_bridge(key, jnp.asarray(setup.omega), jnp.asarray(setup.theta, dtype=float), static, tuple(hidden),
                         num_steps, batch, learning_rate)


def train_bridges(key: jax.Array, setup: BridgeSetup, omegas: ArrayLike, thetas: ArrayLike, hidden: list[int],
                  num_steps: int, batch: int, learning_rate: float) -> tuple[dict, jax.Array]:
    """``train_bridge`` for several panels at once (Fig. 2): ``omegas`` (P, K), ``thetas`` (P,) on
    the grid and step of ``setup``, one independent key per panel, vmapped into one compiled loop.
    Returns (params with a leading panel axis, losses (P, num_steps)).

    Args:
        key: PRNG key; setup: shared :class:`BridgeSetup`; omegas: (P, K); thetas: (P,);
        hidden, num_steps, batch, learning_rate: as in :func:`train_bridge`.

    Returns:
        (params with a leading P axis, losses (P, num_steps)).
    """
    check_euler_step(setup.gammas, setup.dt)
    omegas, thetas = jnp.asarray(omegas), jnp.asarray(thetas, dtype=float)
    static = setup._replace(gammas=_as_tuple(setup.gammas), omega=None, theta=None)
    one = partial(_train_bridge, static=static, hidden=tuple(hidden), num_steps=num_steps,
                  batch=batch, learning_rate=learning_rate)
    return jax.vmap(one)(jax.random.split(key, thetas.shape[0]), omegas, thetas)


@partial(jax.jit, static_argnames=("static", "num_paths"))
def _bridge_eval(params, key, omega, theta, static, num_paths):
    setup = static._replace(gammas=jnp.asarray(static.gammas), omega=omega, theta=theta)
    paths = bridge_paths(params, key, setup, num_paths)
    return paths.x[:, :, 0], bridge_log_likelihood(paths, setup) - paths.kl


def bridge_posterior(params: dict, key: jax.Array, setup: BridgeSetup,
                     num_paths: int) -> tuple[jax.Array, jax.Array]:
    """Posterior X-paths (num_paths, num_steps + 1) and per-path ELBO terms log-lik - KL of one
    trained panel (compiled once per static setup; omega and theta are traced).

    Args:
        params: one panel's trained control; key: PRNG key; setup: its :class:`BridgeSetup`;
        num_paths: paths.

    Returns:
        ((num_paths, num_steps + 1) X-paths, (num_paths,) ELBO terms).
    """
    static = setup._replace(gammas=_as_tuple(setup.gammas), omega=None, theta=None)
    return _bridge_eval(params, key, jnp.asarray(setup.omega),
                        jnp.asarray(setup.theta, dtype=float), static, int(num_paths))


def _as_tuple(gammas):
    """Hashable copy of a gamma grid, so that one compiled training loop serves every call."""
    return tuple(float(g) for g in np.asarray(gammas, dtype=np.float64).ravel())


@partial(jax.jit, static_argnames=("static", "hidden", "num_steps", "batch", "learning_rate"))
def _train_bridge(key, omega, theta, static, hidden, num_steps, batch, learning_rate):
    """``train_bridge`` compiled once per static setup (omega and theta are traced, so Fig. 2's panels share it)."""
    setup = static._replace(gammas=jnp.asarray(static.gammas), omega=omega, theta=theta)
    k_init, k_fit = jax.random.split(key)
    params = bridge_control_init(k_init, len(static.gammas), list(hidden))

    def loss(p, k):
        loglik, kl = bridge_elbo_terms(p, k, setup, batch)
        return -jnp.mean(loglik - kl)

    return fit(loss, params, k_fit, num_steps, learning_rate)


# ---------------------------------------------------------------------------------------------
# Experiment 2: learnable Hurst index on fOU data (Sec. 4, "H as a parameter")
# ---------------------------------------------------------------------------------------------


def sample_fou_observations(key: jax.Array, H: ArrayLike, theta: float, sigma: float, dt: float,
                            num_steps: int, every: int, num_paths: int, obs_std: float) -> jax.Array:
    """fOU data dX = -theta X dt + sigma dB_H (exact unit-normalised fBM increments by Cholesky, X(0)=0),
    observed every ``every`` steps (t = every*dt, 2 every*dt, ...) with N(0, obs_std^2) noise.
    Returns (num_paths, num_steps // every).

    Args:
        key: PRNG key; H: Hurst index; theta: mean reversion; sigma: noise scale; dt: step;
        num_steps: steps; every: steps between observations; num_paths: sequences;
        obs_std: observation noise std.

    Returns:
        (num_paths, num_steps // every) noisy observations (Sec. 4 design, ours).
    """
    k_b, k_n = jax.random.split(key)
    B = sample_fbm_cholesky(k_b, H, num_steps, num_steps * dt, num_paths)
    dB = jnp.diff(B, axis=1)

    def step(x, db):
        x = x - theta * x * dt + sigma * db
        return x, x

    _, xs = lax.scan(step, jnp.zeros(num_paths), dB.T)
    obs = xs.T[:, every - 1::every]
    return obs + obs_std * jax.random.normal(k_n, obs.shape)


class HurstSetup(NamedTuple):
    """Static setting of the learnable-H model dX = -theta X dt + sigma dB_hat_H (Sec. 4 design)."""

    gammas: jax.Array
    kind: str
    T_omega: float
    theta: float
    dt: float
    every: int
    obs_std: float


def hurst_init(key: jax.Array, K: int, hidden: list[int]) -> dict:
    """Parameters: h_raw (H = sigmoid(h_raw), starts at 0.5), log sigma, and the control network (an MLP
    plus a linear skip from its features, both starting at zero output).

    Args:
        key: PRNG key; K: OU processes; hidden: MLP widths.

    Returns:
        {"h_raw": (), "log_sigma": (), "control": layers, "skip": (2 + 3 (K + 1), 1)}.
    """
    num_features = 2 + 3 * (K + 1)
    return {"h_raw": jnp.zeros(()), "log_sigma": jnp.zeros(()),
            "control": mlp_init(key, [num_features] + list(hidden) + [1]), "skip": jnp.zeros((num_features, 1))}


def hurst_of(params: dict) -> jax.Array:
    """The learnable Hurst index of the Sec. 3.3 parameterisation.

    Args:
        params: a pytree with ``h_raw`` (any leading shape).

    Returns:
        H = sigmoid(h_raw) (Sec. 3.3), shape of h_raw.
    """
    return jax.nn.sigmoid(params["h_raw"])


def _next_observation(obs, every, dt, i):
    """Value of, and time to, the next observation after Euler step i (observations at (m+1)*every*dt)."""
    m = jnp.minimum(i // every, obs.shape[0] - 1)
    return obs[m], ((m + 1) * every - i) * dt


def hurst_negative_elbo(params: dict, key: jax.Array, obs: jax.Array, setup: HurstSetup) -> jax.Array:
    """-ELBO of one observed sequence under dX = -theta X dt + sigma dB_hat_H (H = sigmoid(h_raw)):
    Gaussian log-likelihood at the observation times plus the path KL. omega(H) is recomputed from the
    closed form on every call, so gradients reach H through b(H) (Sec. 3.3). The control sees the gap to
    the next observation (scaled by sigma sqrt(time to it)), that time, and the state z = (x, y) raw and
    scaled by d/(time to go + d) for d in (dt, 0.05): the optimal control of this linear-Gaussian model
    is linear in z with gains that grow towards each observation (cf. ``best_hurst_elbo``).

    Args:
        params: ``hurst_init`` output; key: PRNG key; obs: (num_obs,) one sequence;
        setup: :class:`HurstSetup`.

    Returns:
        -ELBO of the sequence, a scalar (Eq. 12).
    """
    H = hurst_of(params)
    omega = optimal_omega(setup.gammas, H, setup.T_omega, setup.kind)
    sigma = jnp.exp(params["log_sigma"])
    num_steps = obs.shape[0] * setup.every

    def control(t, x, y):
        i = jnp.round(t / setup.dt).astype(int)
        target, tau = _next_observation(obs, setup.every, setup.dt, i)
        gap = (target - x) / (sigma * jnp.sqrt(tau))
        z = jnp.concatenate([x, y.ravel()])
        feats = jnp.concatenate([gap, jnp.array([tau / (setup.every * setup.dt)]), z, z * setup.dt / (tau + setup.dt),
                                 z * 0.05 / (tau + 0.05)])
        return mlp_apply(params["control"], feats) + feats @ params["skip"]

    k0, k1 = jax.random.split(key)
    y0 = initial_ou_state(k0, setup.gammas, setup.kind, (1,))
    paths = euler_maruyama(k1, jnp.zeros(1), y0, setup.gammas, omega, lambda t, x: -setup.theta * x,
                           lambda t, x: sigma * jnp.ones_like(x), control, setup.dt, num_steps)
    x_obs = paths.x[setup.every::setup.every, 0]
    loglik = -0.5 * jnp.sum(((obs - x_obs) / setup.obs_std) ** 2) - 0.5 * obs.shape[0] * jnp.log(2 * jnp.pi * setup.obs_std**2)
    return paths.kl - loglik


def train_hurst(key: jax.Array, data: ArrayLike, setup: HurstSetup, hidden: list[int], num_steps: int,
                batch: int, learning_rate: float) -> tuple[dict, jax.Array]:
    """Learn H, sigma and the amortised control on ``data`` (num_sequences, num_obs) with the ELBO.

    Returns (params, losses).

    Args:
        key: PRNG key; data: (num_sequences, num_obs); setup: :class:`HurstSetup`;
        hidden: MLP widths; num_steps: Adam steps; batch: sequences per step;
        learning_rate: initial step size.

    Returns:
        (params, losses (num_steps,)).
    """
    check_euler_step(setup.gammas, setup.dt)
    return _train_hurst(key, jnp.asarray(data), setup._replace(gammas=_as_tuple(setup.gammas)), tuple(hidden),
                        num_steps, batch, learning_rate)


@partial(jax.jit, static_argnames=("static", "hidden", "num_steps", "batch", "learning_rate"))
def _train_hurst(key, data, static, hidden, num_steps, batch, learning_rate):
    """``train_hurst`` compiled once per static setup (the data are traced, so every true H shares it)."""
    setup = static._replace(gammas=jnp.asarray(static.gammas))
    k_init, k_fit = jax.random.split(key)
    params = hurst_init(k_init, len(static.gammas), list(hidden))

    def loss(p, k):
        k_idx, k_sim = jax.random.split(k)
        idx = jax.random.choice(k_idx, data.shape[0], (batch,), replace=False)
        per_seq = jax.vmap(hurst_negative_elbo, (None, 0, 0, None))(p, jax.random.split(k_sim, batch), data[idx], setup)
        return jnp.mean(per_seq) / data.shape[1]

    return fit(loss, params, k_fit, num_steps, learning_rate)


def train_hurst_runs(key: jax.Array, datas: ArrayLike, setup: HurstSetup, hidden: list[int], num_steps: int,
                     batch: int, learning_rate: float) -> tuple[dict, jax.Array]:
    """``train_hurst`` on R data sets at once (``datas``: (R, num_sequences, num_obs), e.g. true H x
    seeds), one independent key per run, vmapped into one compiled loop. Returns (params with a
    leading run axis, losses (R, num_steps)).

    Args:
        key: PRNG key; datas: (R, num_sequences, num_obs); the rest as in :func:`train_hurst`.

    Returns:
        (params with a leading R axis, losses (R, num_steps)).
    """
    check_euler_step(setup.gammas, setup.dt)
    datas = jnp.asarray(datas)
    one = partial(_train_hurst, static=setup._replace(gammas=_as_tuple(setup.gammas)),
                  hidden=tuple(hidden), num_steps=num_steps, batch=batch,
                  learning_rate=learning_rate)
    return jax.vmap(one)(jax.random.split(key, datas.shape[0]), datas)


def best_hurst_elbo(data: ArrayLike, H: float, sigma: float, setup: HurstSetup) -> float:
    """Best ELBO (summed over sequences) that any shared control reaches in the Euler model of
    ``hurst_negative_elbo`` for fixed (H, sigma): a discrete LQR tracking problem with cost 1/2 u^2 dt per
    step and (X - y_m)^2 / (2 obs_std^2) at the observations. V_i(Z) = 1/2 Z'PZ - q'Z + c; P is shared by
    all sequences, q and c are per sequence. Independent of the network and of the Monte-Carlo ELBO.

    Args:
        data: (num_sequences, num_obs); H: Hurst index; sigma: noise scale; setup: :class:`HurstSetup`.

    Returns:
        The optimal ELBO summed over sequences, a float.
    """
    _check_kind(setup.kind)
    data = np.asarray(data, dtype=np.float64)
    w = np.asarray(optimal_omega(setup.gammas, H, setup.T_omega, setup.kind))
    M, v = _augmented_euler_matrices(setup.gammas, sigma * w, setup.theta, setup.dt)
    B, dt, s2 = v * setup.dt, setup.dt, setup.obs_std**2
    P, q, c = np.zeros_like(M), np.zeros((M.shape[0], data.shape[0])), np.zeros(data.shape[0])
    for i in range(data.shape[1] * setup.every, 0, -1):
        if i % setup.every == 0:
            y = data[:, i // setup.every - 1]
            P[0, 0] += 1.0 / s2
            q[0] += y / s2
            c += 0.5 * y**2 / s2
        D, MPB, Bq = dt + B @ P @ B, M.T @ P @ B, B @ q
        c = c + 0.5 * dt * v @ P @ v - 0.5 * Bq**2 / D
        q = M.T @ q - np.outer(MPB, Bq) / D
        P = M.T @ P @ M - np.outer(MPB, MPB) / D
    P0 = _initial_state_covariance(setup.gammas, setup.kind)
    return float(np.sum(-(0.5 * np.trace(P @ P0) + c)) - 0.5 * data.size * np.log(2 * np.pi * s2))


def elbo_optimal_hurst(data: ArrayLike, setup: HurstSetup) -> tuple[float, float]:
    """(H, sigma) maximising ``best_hurst_elbo``: what ELBO training with a perfect shared control would
    learn at this dt (Nelder-Mead over (logit H, log sigma) from (0.5, 1)).

    Args:
        data: (num_sequences, num_obs); setup: :class:`HurstSetup`.

    Returns:
        (H*, sigma*), two floats.
    """
    objective = lambda p: -best_hurst_elbo(data, 1.0 / (1.0 + np.exp(-p[0])), np.exp(p[1]), setup)  # noqa: E731
    res = optimize.minimize(objective, np.zeros(2), method="Nelder-Mead", options=dict(xatol=1e-4, fatol=1e-6))
    return 1.0 / (1.0 + np.exp(-res.x[0])), float(np.exp(res.x[1]))
