"""Logistic regression with large step sizes and its perceptron limits (Tyurin 2024, arXiv 2412.08424).

Notation follows the paper: ``A`` (n, d) features, ``y`` in {-1, +1}^n, signed samples
``Z = y[:, None] * A`` (rows z_i), margins ``m = Z @ theta``. There is no intercept anywhere.

Iteration counting: theta_0 = 0 is t = 0, and every ``Trace`` field is recorded at theta_0..theta_T.
The *separation time* is the first t with every margin strictly positive (problem (1)).

All iterative methods are jitted ``lax.scan`` loops and run in the dtype of ``Z``; callers who want
float64 enable ``jax_enable_x64``. Matrix products use ``Precision.HIGHEST`` so float32 runs on GPUs
are not silently reduced to TF32.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike
from scipy.optimize import linprog, minimize, nnls
from scipy.sparse.linalg import LinearOperator, eigsh

_HI = lax.Precision.HIGHEST


class Trace(NamedTuple):
    """Per-iteration record of a run; arrays have length T + 1 (theta_0..theta_T)."""

    loss: jax.Array  # logistic loss f(theta_t), Eq. (2)
    grad_norm: jax.Array  # ||grad f(theta_t)||
    accuracy: jax.Array  # mean(m_i(theta_t) > 0), strict
    min_margin: jax.Array  # min_i z_i . theta_t (unnormalised)
    theta_final: jax.Array  # theta_T, shape (d,)
    path: jax.Array | None  # (T + 1, d) iterates, or None


class Margin(NamedTuple):
    """Certified bounds on the no-intercept margin mu (Assumption 1.1) and the radius R."""

    mu_lower: float  # min_i z_i . w / ||w|| for the returned direction w
    mu_upper: float  # weak-duality upper bound from the SVM dual
    radius: float  # R = max_i ||a_i||
    separable: bool
    w: np.ndarray  # unit separating direction (NaN if not separable)


# ---------------------------------------------------------------------------------------------
# Data preparation and scalar objectives
# ---------------------------------------------------------------------------------------------


def signed_samples(A: ArrayLike, y: ArrayLike) -> jax.Array:
    """Signed samples z_i = y_i a_i (Sec. 2: problem (1) asks for z_i . theta > 0 for every i).

    Args:
      A: (n, d) features a_i, finite.
      y: (n,) labels in {-1, +1}.

    Returns:
      (n, d) matrix Z with rows z_i, in the dtype of A.

    Raises:
      ValueError: wrong shapes, non-finite values or labels outside {-1, +1}.
    """
    A_np, y_np = np.asarray(A), np.asarray(y)
    if A_np.ndim != 2:
        raise ValueError(f"A must be a 2-D (n, d) array, got shape {A_np.shape}")
    if y_np.ndim != 1 or y_np.shape[0] != A_np.shape[0]:
        raise ValueError(f"y must have shape ({A_np.shape[0]},) to match A, got {y_np.shape}")
    if not (np.all(np.isfinite(A_np)) and np.all(np.isfinite(y_np))):
        raise ValueError("A and y must contain only finite values")
    if not np.all((y_np == 1) | (y_np == -1)):
        raise ValueError(f"labels must be in {{-1, +1}}, got values {np.unique(y_np)[:10]}")
    A_j = jnp.asarray(A_np)
    return jnp.asarray(y_np, dtype=A_j.dtype)[:, None] * A_j


def _softplus(x):
    return jnp.logaddexp(0.0, x)


def _sigma_neg(m):
    """sigma(-m) = 1 / (1 + e^m), computed as exp(-softplus(m)) (no overflow)."""
    return jnp.exp(-_softplus(m))


def margins(theta: ArrayLike, Z: ArrayLike) -> jax.Array:
    """Margins m_i(theta) = z_i . theta (problem (1)).

    Args:
      theta: (d,) parameters.
      Z: (n, d) signed samples.

    Returns:
      (n,) margins.
    """
    return jnp.matmul(Z, theta, precision=_HI)


def logistic_loss(theta: ArrayLike, Z: ArrayLike) -> jax.Array:
    """Logistic loss f(theta) = (1/n) sum_i log(1 + exp(-m_i(theta))), Eq. (2), via softplus.

    Args:
      theta, Z: as in :func:`margins`.

    Returns:
      Scalar f(theta).
    """
    return jnp.mean(_softplus(-margins(theta, Z)))


def logistic_grad(theta: ArrayLike, Z: ArrayLike) -> jax.Array:
    """Gradient of Eq. (2): grad f(theta) = -(1/n) sum_i sigma(-m_i) z_i, sigma(-m) = 1/(1 + e^m).

    Args:
      theta, Z: as in :func:`margins`.

    Returns:
      (d,) gradient.
    """
    g = _sigma_neg(margins(theta, Z)) / Z.shape[0]
    return -jnp.matmul(Z.T, g, precision=_HI)


def _accuracy(m):
    # XLA turns x / n into x * (1/n), which can give 0.9999999999999999 for x = n; pin the ends.
    correct = jnp.sum(m > 0)
    return jnp.where(correct == m.shape[0], 1.0, correct / m.shape[0]).astype(m.dtype)


def accuracy(theta: ArrayLike, Z: ArrayLike) -> jax.Array:
    """Fraction of samples with strictly positive margin (problem (1); sign(0) counts as an error).

    Args:
      theta: (d,) parameters.
      Z: (n, d) signed samples.

    Returns:
      Scalar in [0, 1], exactly 1.0 iff every margin is > 0.
    """
    return _accuracy(margins(theta, Z))


def scaled_logistic_loss(theta: ArrayLike, Z: ArrayLike, s: float) -> jax.Array:
    """Scaled logistic loss (1/(s n)) sum_i log(1 + exp(-s m_i)); tends to the perceptron loss as
    s -> inf (Sec. 3 remark).

    Args:
      theta: (d,) parameters.
      Z: (n, d) signed samples.
      s: scale, > 0.

    Returns:
      Scalar loss.
    """
    return jnp.mean(_softplus(-s * margins(theta, Z))) / s


def perceptron_loss(theta: ArrayLike, Z: ArrayLike) -> jax.Array:
    """Perceptron loss (1/n) sum_i max(0, -m_i), the s -> inf limit of the scaled loss (Sec. 3).

    Args:
      theta: (d,) parameters.
      Z: (n, d) signed samples.

    Returns:
      Scalar loss.
    """
    return jnp.mean(jnp.maximum(0.0, -margins(theta, Z)))


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _as_Z(Z) -> jax.Array:
    Z = jnp.asarray(Z)
    if Z.ndim != 2 or not jnp.issubdtype(Z.dtype, jnp.floating):
        raise ValueError(f"Z must be a 2-D floating array (n, d), got {Z.dtype} {Z.shape}")
    return Z


def _check_gammas(gamma, *, sweep: bool) -> np.ndarray:
    g = np.asarray(gamma, dtype=np.float64)
    if sweep and (g.ndim != 1 or g.size == 0):
        raise ValueError(f"gammas must be a non-empty 1-D array of step sizes, got shape {g.shape}")
    if not sweep and g.ndim != 0:
        raise ValueError(f"gamma must be a scalar step size, got shape {g.shape}")
    if not np.all(np.isfinite(g) & (g > 0)):
        raise ValueError(f"step size gamma must be finite and strictly positive, got {gamma!r}")
    return g


def check_step_sizes(gammas: ArrayLike) -> np.ndarray:
    """Step sizes gamma validated before any compute.

    Args:
      gammas: non-empty 1-D sequence of step sizes.

    Returns:
      (G,) float64 array.

    Raises:
      ValueError: not 1-D and non-empty, or a value not finite and > 0.
    """
    return _check_gammas(gammas, sweep=True)


def _check_steps(num_steps) -> int:
    if int(num_steps) != num_steps or num_steps < 0:
        raise ValueError(f"num_steps must be a non-negative integer, got {num_steps!r}")
    return int(num_steps)


# ---------------------------------------------------------------------------------------------
# Update rules: theta_{t+1} = theta_t + Z^T w, with w = rule(m, g, t, gamma), g = sigma(-m)/n
# ---------------------------------------------------------------------------------------------


def _w_lr_gd(m, g, t, gamma):
    """LR+GD: theta_{t+1} = theta_t - gamma grad f(theta_t)."""
    return gamma * g


def _w_normalized_lr_gd(m, g, t, gamma):
    """Normalized LR+GD, beta_t = 1/mean sigma(-m_i): weights gamma * softmax(log sigma(-m))."""
    return gamma * jax.nn.softmax(-_softplus(m))


def _w_batch_perceptron(m, g, t, gamma):
    """Batch Perceptron (Thm 3.2 limit): 1/(2n) on every sample at t = 0, then 1/n on S_t."""
    mask = (m <= 0).astype(m.dtype)
    return jnp.where(t == 0, jnp.full_like(m, 0.5), mask) / m.shape[0]


def _w_normalized_batch_perceptron(m, g, t, gamma):
    """Normalized Batch Perceptron: mean of z_i over S_t = {m_i <= 0}; zero step if S_t empty."""
    mask = (m <= 0).astype(m.dtype)
    return mask / jnp.maximum(jnp.sum(mask), 1.0)


def _trajectory(Z, gamma, rule, num_steps, keep_path) -> Trace:
    n, d = Z.shape

    def observe(theta):
        m = margins(theta, Z)
        g = _sigma_neg(m) / n
        return m, g

    def summary(m, grad):
        return (
            jnp.mean(_softplus(-m)),
            jnp.linalg.norm(grad),
            _accuracy(m),
            jnp.min(m),
        )

    def step(theta, t):
        m, g = observe(theta)
        w = rule(m, g, t, gamma)
        both = jnp.matmul(Z.T, jnp.stack([g, w], axis=1), precision=_HI)  # one pass over Z
        rec = summary(m, both[:, 0]) + ((theta,) if keep_path else ())
        return theta + both[:, 1], rec

    theta_T, rec = lax.scan(step, jnp.zeros(d, Z.dtype), jnp.arange(num_steps))
    m, g = observe(theta_T)
    last = summary(m, jnp.matmul(Z.T, g, precision=_HI)) + ((theta_T,) if keep_path else ())
    full = [jnp.concatenate([r, l[None]]) for r, l in zip(rec, last)]
    path = full[4] if keep_path else None
    return Trace(*full[:4], theta_final=theta_T, path=path)


_run = jax.jit(_trajectory, static_argnames=("rule", "num_steps", "keep_path"))


@partial(jax.jit, static_argnames=("rule", "num_steps", "keep_path"))
def _run_sweep(Z, gammas, rule, num_steps, keep_path) -> Trace:
    return jax.vmap(lambda g: _trajectory(Z, g, rule, num_steps, keep_path))(gammas)


def _single(Z, gamma, rule, num_steps, keep_path) -> Trace:
    Z = _as_Z(Z)
    return _run(Z, jnp.asarray(gamma, Z.dtype), rule, _check_steps(num_steps), bool(keep_path))


def _sweep(Z, gammas, rule, num_steps, keep_path) -> Trace:
    Z = _as_Z(Z)
    return _run_sweep(Z, jnp.asarray(gammas, Z.dtype), rule, _check_steps(num_steps), bool(keep_path))


# ---------------------------------------------------------------------------------------------
# Public algorithms
# ---------------------------------------------------------------------------------------------


def lr_gd(Z: ArrayLike, gamma: float, num_steps: int, keep_path: bool = False) -> Trace:
    """LR+GD from theta_0 = 0: theta_{t+1} = theta_t - gamma grad f(theta_t) on Eq. (2) (Sec. 2).

    ``num_steps`` and ``keep_path`` are static (one compilation per value and shape of Z); gamma is not.

    Args:
      Z: (n, d) signed samples (floating; the run uses its dtype).
      gamma: step size, finite and > 0.
      num_steps: T, the number of steps.
      keep_path: also return every iterate.

    Returns:
      :class:`Trace` with (T + 1,) fields over theta_0..theta_T, ``theta_final`` (d,) and ``path``
      (T + 1, d) or None.
    """
    return _single(Z, _check_gammas(gamma, sweep=False), _w_lr_gd, num_steps, keep_path)


def normalized_lr_gd(Z: ArrayLike, gamma: float, num_steps: int, keep_path: bool = False) -> Trace:
    """Normalized LR+GD (Sec. 6): theta_{t+1} = theta_t - gamma beta_t grad f(theta_t).

    beta_t = 1 / mean_i sigma(-m_i), evaluated in the equivalent convex-combination form
    theta_t + gamma sum_i p_i z_i with p = softmax(-softplus(m)), finite long after separation.
    Separates within R^2/mu^2 + 2 ln(2n - 1)/(gamma mu^2) steps (Thm 6.1).

    Args:
      Z: (n, d) signed samples.
      gamma: step size, finite and > 0.
      num_steps: T, the number of steps (static).
      keep_path: also return every iterate.

    Returns:
      :class:`Trace` with (T + 1,) fields over theta_0..theta_T, ``theta_final`` (d,) and ``path``
      (T + 1, d) or None.
    """
    return _single(Z, _check_gammas(gamma, sweep=False), _w_normalized_lr_gd, num_steps, keep_path)


def batch_perceptron(Z: ArrayLike, num_steps: int, keep_path: bool = False) -> Trace:
    """Batch Perceptron, the gamma -> inf limit of LR+GD/gamma (Thm 3.2).

    theta_1 = (1/(2n)) sum_i z_i (the 1/2 is sigma(0)); then theta_{t+1} = theta_t + (1/n) sum_{S_t} z_i
    with S_t = {i : m_i(theta_t) <= 0}; separates within n R^2 / mu^2 steps (Thm 3.3). Loss and gradient
    fields are the logistic ones at these iterates, so all traces are comparable.

    Args:
      Z: (n, d) signed samples.
      num_steps: T, the number of steps (static).
      keep_path: also return every iterate.

    Returns:
      :class:`Trace` with (T + 1,) fields over theta_0..theta_T, ``theta_final`` (d,) and ``path``
      (T + 1, d) or None.
    """
    return _single(Z, 1.0, _w_batch_perceptron, num_steps, keep_path)


def normalized_batch_perceptron(Z: ArrayLike, num_steps: int, keep_path: bool = False) -> Trace:
    """Normalized Batch Perceptron (Sec. 5, Thm 5.3): theta_{t+1} = theta_t + mean_{i in S_t} z_i,
    S_t = {i : m_i(theta_t) <= 0} (a zero step once S_t is empty); within R^2/mu^2 steps. Arguments and
    the returned :class:`Trace` as in :func:`batch_perceptron`.
    """
    return _single(Z, 1.0, _w_normalized_batch_perceptron, num_steps, keep_path)


def lr_gd_sweep(Z: ArrayLike, gammas: ArrayLike, num_steps: int, keep_path: bool = False) -> Trace:
    """:func:`lr_gd` vmapped over step sizes (Sec. 4, Figs. 1/4/5): one compilation for the sweep.

    Args:
      Z: (n, d) signed samples.
      gammas: (G,) step sizes, finite and > 0.
      num_steps: T (static).
      keep_path: also return every iterate.

    Returns:
      :class:`Trace` whose fields have a leading (G,) axis: (G, T + 1), (G, d), (G, T + 1, d).
    """
    return _sweep(Z, _check_gammas(gammas, sweep=True), _w_lr_gd, num_steps, keep_path)


def normalized_lr_gd_sweep(Z: ArrayLike, gammas: ArrayLike, num_steps: int,
                           keep_path: bool = False) -> Trace:
    """:func:`normalized_lr_gd` (Sec. 6) vmapped over step sizes: one compilation for the sweep.
    Arguments and the returned :class:`Trace` as in :func:`lr_gd_sweep`.
    """
    return _sweep(Z, _check_gammas(gammas, sweep=True), _w_normalized_lr_gd, num_steps, keep_path)


@jax.jit
def _perceptron_loop(Z, max_updates):
    def cond(state):
        k, _, m = state
        return jnp.any(m <= 0) & (k < max_updates)

    def body(state):
        k, theta, m = state
        theta = theta + Z[jnp.argmax(m <= 0)]  # first misclassified index
        return k + 1, theta, margins(theta, Z)

    theta0 = jnp.zeros(Z.shape[1], Z.dtype)
    k, theta, m = lax.while_loop(cond, body, (jnp.asarray(0), theta0, margins(theta0, Z)))
    return jnp.where(jnp.all(m > 0), k, -1), theta


def perceptron_updates(Z: ArrayLike, max_updates: int) -> tuple[int, jax.Array]:
    """Classical (Novikoff) Perceptron, Thm 5.2: theta += z_j for the first j with m_j <= 0; at most
    R^2/mu^2 updates on separable data.

    Args:
      Z: (n, d) signed samples.
      max_updates: the most updates to make.

    Returns:
      ``(k, theta)``: the number of updates until every margin is > 0 (-1 if not within
      ``max_updates``) and the final (d,) theta.
    """
    k, theta = _perceptron_loop(_as_Z(Z), _check_steps(max_updates))
    return int(k), theta


def separation_time(trace_or_accuracy: Trace | ArrayLike) -> int | np.ndarray:
    """First t with accuracy == 1 (all margins > 0, problem (1)), or -1 if never within the horizon;
    theta_0 counts as t = 0 (the count of Table 1).

    Args:
      trace_or_accuracy: a :class:`Trace` or an accuracy array (..., T + 1), time on the last axis.

    Returns:
      An int for one run, else an integer array of the leading shape (e.g. (G,) for a sweep).
    """
    acc = trace_or_accuracy.accuracy if isinstance(trace_or_accuracy, Trace) else trace_or_accuracy
    hit = np.asarray(acc) >= 1.0
    first = np.where(hit.any(axis=-1), np.argmax(hit, axis=-1), -1)
    return int(first) if first.ndim == 0 else first


METHODS = ("lr_gd", "normalized_lr_gd", "batch_perceptron", "normalized_batch_perceptron")
_RULES = (_w_lr_gd, _w_normalized_lr_gd, _w_batch_perceptron, _w_normalized_batch_perceptron)


@jax.jit
def _steps_loop(Z, gamma, method, max_steps):
    n = Z.shape[0]

    def cond(state):
        t, _, m = state
        return jnp.any(m <= 0) & (t < max_steps)

    def body(state):
        t, theta, m = state
        g = _sigma_neg(m) / n
        w = lax.switch(method, _RULES, m, g, t, gamma)
        theta = theta + jnp.matmul(Z.T, jnp.stack([g, w], axis=1), precision=_HI)[:, 1]  # as in the scan
        return t + 1, theta, margins(theta, Z)

    theta0 = jnp.zeros(Z.shape[1], Z.dtype)
    t, _, m = lax.while_loop(cond, body, (jnp.asarray(0), theta0, margins(theta0, Z)))
    return jnp.where(jnp.all(m > 0), t, -1)


def steps_to_separate(Z: ArrayLike, method: str, max_steps: int, gamma: float = 1.0) -> int:
    """Separation time of ``method`` from theta_0 = 0 (Table 1's "# of iterations"): the same count
    as :func:`separation_time` of the method's Trace over ``max_steps`` steps.

    A ``lax.while_loop`` that stops at separation; the method, gamma and max_steps are traced, so there
    is one compilation per shape and dtype of Z. ``gamma`` is ignored by the two perceptrons.

    Args:
      Z: (n, d) signed samples.
      method: one of :data:`METHODS`.
      max_steps: horizon.
      gamma: step size of the two LR+GD methods, finite and > 0.

    Returns:
      The first t with every margin > 0, or -1 if not within ``max_steps``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    Z = _as_Z(Z)
    gamma = _check_gammas(gamma, sweep=False)
    t = _steps_loop(Z, jnp.asarray(gamma, Z.dtype), METHODS.index(method), _check_steps(max_steps))
    return int(t)


def until_separation(series: ArrayLike, t_sep: int) -> np.ndarray:
    """The part of a per-iteration series before the separation time (Sec. 4: loss and gradient
    norm before accuracy 1).

    Args:
      series: (T + 1,) values at theta_0..theta_T.
      t_sep: separation time, or -1 (never separated: the whole series).

    Returns:
      (t_sep,) or (T + 1,) values.
    """
    series = np.asarray(series)
    return series[:t_sep] if t_sep > 0 else series


class Reduction(NamedTuple):
    """Distance between LR+GD/gamma and the Batch Perceptron path (Thm 3.2)."""

    horizon: int  # T: the Batch Perceptron's separation time
    errors: np.ndarray  # E(gamma) = max_{t <= T} ||theta_t(gamma)/gamma - theta_hat_t||, one per gamma
    min_abs_margin: float  # min_{1 <= t <= T} min_i |m_i(theta_hat_t)|: the gamma needed grows like log(n)/this
    lr_gd_times: np.ndarray  # separation time of LR+GD for each gamma (-1 if not within T)


def reduction_error(Z: ArrayLike, gammas: ArrayLike, max_steps: int = 2**20) -> Reduction:
    """Thm 3.2 measured: E(gamma) = max_{t <= T} ||theta_t(gamma)/gamma - theta_hat_t|| over the Batch
    Perceptron's run up to its separation time T.

    Args:
      Z: (n, d) signed samples.
      gammas: (G,) step sizes of LR+GD.
      max_steps: the most Batch Perceptron steps to find T.

    Returns:
      :class:`Reduction` with (G,) ``errors`` and ``lr_gd_times``.

    Raises:
      ValueError: the Batch Perceptron does not separate within ``max_steps``.
    """
    gammas = check_step_sizes(gammas)
    horizon = steps_to_separate(Z, "batch_perceptron", max_steps)
    if horizon < 0:
        raise ValueError(f"the Batch Perceptron did not separate the data within {max_steps} steps")
    bp_path = np.asarray(batch_perceptron(Z, horizon, keep_path=True).path)
    sweep = lr_gd_sweep(Z, gammas, horizon, keep_path=True)
    scaled = np.asarray(sweep.path) / gammas[:, None, None]
    errors = np.max(np.linalg.norm(scaled - bp_path[None], axis=-1), axis=-1)
    min_abs = float(np.min(np.abs(np.asarray(Z) @ bp_path[1:].T)))
    return Reduction(horizon, errors, min_abs, separation_time(sweep))


# ---------------------------------------------------------------------------------------------
# Margin, radius and smoothness (numpy / scipy, float64)
# ---------------------------------------------------------------------------------------------


def _svm_dual(Z: np.ndarray, radius: float) -> np.ndarray:
    """Approximate argmax_{alpha >= 0} sum(alpha) - 0.5 ||Z^T alpha||^2 (hard-margin SVM dual, no
    intercept) by at most 200 L-BFGS-B iterations: only a warm start (its support) for the exact
    working-set solve, which adds any violated constraint itself. Stops early once the dual bound
    ||Z^T alpha|| / sum(alpha) on mu falls below 1e-9 R (the dual is unbounded when the data is not
    separable; the LP then decides)."""

    def neg_dual(alpha):
        w = Z.T @ alpha
        return 0.5 * w @ w - alpha.sum(), Z @ w - 1.0

    def stop_if_unbounded(intermediate_result):
        alpha = intermediate_result.x
        if np.linalg.norm(Z.T @ alpha) <= 1e-9 * radius * alpha.sum():
            raise StopIteration

    res = minimize(
        neg_dual,
        np.zeros(Z.shape[0]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * Z.shape[0],
        callback=stop_if_unbounded,
        options=dict(maxiter=200, maxcor=30, ftol=1e-15, gtol=1e-12),
    )
    return res.x


def _ldp(Zc: np.ndarray):
    """min ||w|| s.t. Zc w >= 1 by Lawson-Hanson least-distance programming (one NNLS solve).

    Returns (w, u) with u >= 0 the NNLS multipliers (an SVM dual direction); w is None when the NNLS
    residual says the constraints are infeasible (0 lies in the convex hull of the rows).
    """
    n, d = Zc.shape
    E = np.vstack([Zc.T, np.ones(n)])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    u, _ = nnls(E, f, maxiter=50 * max(n, d + 1))
    r = E @ u - f
    return (-r[:-1] / r[-1] if r[-1] < 0 else None), u


def _working_set_svm(Z: np.ndarray, alpha: np.ndarray, max_rounds: int = 50):
    """Exact no-intercept hard-margin SVM by LDP on a working set grown with violated constraints.

    Starts from the support of the warm start ``alpha``; stops once the subset solution satisfies
    every constraint (then it is optimal for the full problem). Returns (w, u_full) or (None, None).
    """
    n, d = Z.shape
    m0 = Z @ (Z.T @ alpha)
    work = np.union1d(np.flatnonzero(alpha > 1e-8 * alpha.max(initial=0.0)), np.argsort(m0)[:10])
    for _ in range(max_rounds):
        w, u = _ldp(Z[work])
        if w is None:
            return None, None
        m = Z @ w
        viol = np.flatnonzero(m < 1.0 - 1e-9)
        if viol.size == 0:
            break
        work = np.union1d(work, viol[np.argsort(m[viol])][: max(d, 10)])
    u_full = np.zeros(n)
    u_full[work] = u
    return w, u_full


def _lp_separable(Z: np.ndarray) -> np.ndarray | None:
    """A w with Z w >= 1 found by linear programming, or None if the LP is infeasible."""
    n, d = Z.shape
    res = linprog(np.zeros(d), A_ub=-Z, b_ub=-np.ones(n), bounds=[(None, None)] * d, method="highs")
    if res.status == 2:
        return None
    if res.status != 0:
        raise RuntimeError(f"separability LP failed: {res.message}")
    return res.x


def _normalized_min_margin(Z, w) -> float:
    norm = np.linalg.norm(w)
    return float(np.min(Z @ w) / norm) if norm > 0 else -np.inf


def margin_certificate(Z: ArrayLike) -> Margin:
    """Certified bracket mu_lower <= mu <= mu_upper for the margin of Assumption 1.1, and R.

    The no-intercept hard-margin SVM (primal min ||w||^2/2 s.t. Z w >= 1, optimum 1/(2 mu^2)) is solved
    by L-BFGS-B on the dual, then exactly by a working-set least-distance program. Whatever the solver
    accuracy, both ends are certified: mu_lower = min_i z_i.w/||w|| for the returned direction, and for
    any alpha >= 0 weak duality gives D(c alpha) <= 1/(2 mu^2) whose best scale c yields
    mu_upper = ||Z^T alpha|| / sum(alpha). If no candidate separates, an LP (find w with Z w >= 1)
    decides; infeasible => separable=False with NaN margins.

    Args:
      Z: (n, d) signed samples (computed in float64).

    Returns:
      :class:`Margin`; ``w`` is the (d,) unit direction.
    """
    Z = np.asarray(Z, dtype=np.float64)
    radius = float(np.sqrt(np.max(np.sum(Z * Z, axis=1))))
    alpha = _svm_dual(Z, radius)
    w_exact, u = _working_set_svm(Z, alpha)
    directions = [Z.T @ alpha] + ([w_exact] if w_exact is not None else [])
    duals = [a for a in (alpha, u) if a is not None and a.sum() > 0]
    w = max(directions, key=lambda v: _normalized_min_margin(Z, v))
    if not _normalized_min_margin(Z, w) > 0:
        w = _lp_separable(Z)
        if w is None:
            nan = float("nan")
            return Margin(nan, nan, radius, False, np.full(Z.shape[1], np.nan))
    mu_upper = min((float(np.linalg.norm(Z.T @ a) / a.sum()) for a in duals), default=float("inf"))
    return Margin(_normalized_min_margin(Z, w), mu_upper, radius, True, w / np.linalg.norm(w))


def smoothness_constant(Z: ArrayLike) -> float:
    """L = lambda_max(Z^T Z / n) / 4, the smoothness constant of Eq. (2); GD is stable for gamma < 2/L.

    Args:
      Z: (n, d) signed samples (float64; dense eigvalsh up to min(n, d) = 256, else Lanczos).

    Returns:
      L.
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    if min(n, d) <= 256:
        gram = Z.T @ Z if d <= n else Z @ Z.T
        return float(np.linalg.eigvalsh(gram)[-1] / (4 * n))
    op = LinearOperator((d, d), matvec=lambda v: Z.T @ (Z @ v), dtype=np.float64)
    return float(eigsh(op, k=1, which="LA", tol=1e-10, return_eigenvectors=False)[0] / (4 * n))


# ---------------------------------------------------------------------------------------------
# Paper datasets and bounds
# ---------------------------------------------------------------------------------------------


def worst_case_dataset(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Thm 5.1 dataset: a_1 = (0.5, -1), y_1 = +1 and n - 1 copies of (-0.5, -1) with y = -1.

    mu = 0.5 (direction (1, 0)) and R^2 = 1.25; requires n >= 10.

    Args:
      n: number of samples, >= 10.

    Returns:
      ``(A, y)``: (n, 2) features and (n,) labels.
    """
    if n < 10:
        raise ValueError(f"Thm 5.1 worst-case dataset needs n >= 10, got n={n}")
    A = np.tile(np.array([-0.5, -1.0]), (n, 1))
    A[0] = (0.5, -1.0)
    y = -np.ones(n)
    y[0] = 1.0
    return A, y


def two_point_dataset() -> tuple[np.ndarray, np.ndarray]:
    """Thm 4.1 dataset: a_1 = (1, -1) with y = +1 and a_2 = (-1, -4) with y = -1.

    Returns:
      ``(A, y)``: (2, 2) features and (2,) labels.
    """
    return np.array([[1.0, -1.0], [-1.0, -4.0]]), np.array([1.0, -1.0])


def batch_perceptron_bound(n: int, R: float, mu: float) -> float:
    """Thm 3.3: the Batch Perceptron separates within n R^2 / mu^2 iterations.

    Args:
      n: number of samples; R: max_i ||a_i||; mu: margin (Assumption 1.1).

    Returns:
      The bound.
    """
    return n * R**2 / mu**2


def perceptron_bound(R: float, mu: float) -> float:
    """Thm 5.2 (Perceptron updates) and Thm 5.3 (Normalized Batch Perceptron): R^2 / mu^2.

    Args:
      R: max_i ||a_i||; mu: margin (Assumption 1.1).

    Returns:
      The bound.
    """
    return R**2 / mu**2


def normalized_lr_gd_bound(n: int, R: float, mu: float, gamma: float) -> float:
    """Thm 6.1: Normalized LR+GD separates within R^2/mu^2 + 2 ln(2n - 1) / (gamma mu^2) iterations
    (natural log; the paper does not state the base).

    Args:
      n: number of samples; R: max_i ||a_i||; mu: margin; gamma: step size.

    Returns:
      The bound.
    """
    return R**2 / mu**2 + 2 * math.log(2 * n - 1) / (gamma * mu**2)


def batch_perceptron_worst_case_time(n: int) -> int:
    """Exact Batch Perceptron separation time on ``worst_case_dataset(n)``: floor(0.3 n + 0.2) + 1.

    Derivation: z_+ = (0.5, -1) (one copy) and z_- = (0.5, 1) (n - 1 copies), so
    theta_1 = (z_+ + (n-1) z_-)/(2n) = (0.25, (n-2)/(2n)), with margins z_+.theta_1 = -0.375 + 1/n < 0 and
    z_-.theta_1 = 0.625 - 1/n > 0. While only the +1 sample is misclassified each step adds z_+/n, so
    after k such steps z_+.theta = -0.375 + (1 + 1.25k)/n and z_-.theta = 0.625 - (1 + 0.75k)/n.
    The +1 margin becomes strictly positive at the first k > 0.3n - 0.8, i.e. k = floor(0.3n - 0.8) + 1,
    while z_- stays positive for k < (0.625n - 1)/0.75 (true at that k for n >= 10). Hence
    t* = 1 + k = floor(0.3n + 0.2) + 1, computed in integers as (3n + 2) // 10 + 1. When n = 6 mod 10 the
    +1 margin is exactly 0 one step earlier, so a floating-point run may differ there by rounding.

    Args:
      n: number of samples, >= 10.

    Returns:
      t*.
    """
    return (3 * n + 2) // 10 + 1
