"""PaRIS, conditional SMC and Parisian particle Gibbs (Cardoso, Janati El Idrissi, Le Corff, Moulines,
Olsson, ICML 2023, arXiv 2301.00900), with the Kalman/RTS smoother as the exact reference.

Model and target (the paper's Section 2, our notation):

* hidden chain X_0 ~ chi, X_{t+1} | X_t = x ~ m(x, .), observations Y_t | X_t = x ~ g(x, .),
  data y_0..y_T (``ys`` has T + 1 rows);
* additive functional h_T(x_{0:T}) = h_init(x_0) + sum_{t<T} h_step(x_t, x_{t+1}); target
  phi_{0:T}(h_T) = E[h_T(X_{0:T}) | y_{0:T}].

A model is a :class:`StateSpaceModel` of pure functions of one particle (shape (d,)) and a parameter
pytree; an additive functional is an :class:`AdditiveFunctional` whose terms return vectors (p,).
Both are passed as static (hashable) arguments, so build them once and reuse them.

Algorithms (every sweep is a ``lax.scan`` over time; every public sampler takes a batch of keys
(R, 2) and is vmapped over these R replicates):

* bootstrap particle filter, multinomial resampling at every step, log-weights throughout;
* PaRIS (Olsson & Westerborn 2017; Alg. 1 of the paper): per particle K i.i.d. backward indices from
  Lambda_t(i, j) ∝ w_t^j m(xi_t^j, xi_{t+1}^i), tau_{t+1}^i = K^{-1} sum_k [tau_t^J + h_step(xi_t^J, xi_{t+1}^i)];
  estimate sum_i w_T^i tau_T^i / sum_i w_T^i;
* conditional PaRIS: the same sweep with the last particle frozen on a reference path; a new path is
  drawn by b_T ~ Cat(w_T) and b_t = J_{t+1}^{b_{t+1}, u}, u ~ U{1..K} (a CSMC-with-backward-sampling
  draw, so the path chain leaves phi_{0:T} invariant); Parisian particle Gibbs (PPG) iterates it;
* roll-out estimator: the average of the PPG estimates of iterations k0+1..k;
* learning by stochastic approximation: score ascent (Fisher identity, h = grad_theta log of the
  joint density) and Markov score climbing (h = grad_lambda log q_lambda), driven by PaRIS or PPG,
  with Polyak averaging.

Backward draws are exact: the N x N backward logits of a step are formed in one vectorised
expression (O(N^2) arithmetic per step inside the jitted scan, no Python loop) and K indices per row
are drawn by two-level inverse-CDF sampling (O(N K) uniforms; see :func:`categorical_inverse_cdf`).
"""

from __future__ import annotations

import math
from functools import lru_cache, partial
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike
from scipy.optimize import minimize

# ------------------------------------------------------------------------------ model interface


class StateSpaceModel(NamedTuple):
    """Pure functions of one particle ``x`` (d,) and parameters ``params`` (any pytree)."""

    sample_initial: Callable  # (key, n, params) -> (n, d), draws from chi
    log_initial: Callable  # (x, params) -> log chi(x)
    sample_transition: Callable  # (key, x (n, d), params) -> (n, d), one draw from m(x_i, .) per row
    log_transition: Callable  # (x_prev, x_next, params) -> log m(x_prev, x_next)
    log_observation: Callable  # (x, y, params) -> log g(x, y)


class AdditiveFunctional(NamedTuple):
    """h_T(x_{0:T}) = initial(x_0, y_0) + sum_t step(x_t, x_{t+1}, y_{t+1}); both return (p,)."""

    initial: Callable  # (x0, y0, fparams) -> (p,)
    step: Callable  # (x_prev, x_next, y_next, fparams) -> (p,)


class Sweep(NamedTuple):
    """One (conditional) PaRIS sweep over y_0..y_T."""

    estimate: jax.Array  # (p,) sum_i w_T^i tau_T^i / sum_i w_T^i
    online: jax.Array  # (T + 1, p): the online estimates phi_{0:t}(h_t) from y_{0:t}, t = 0..T
    log_likelihood: jax.Array  # sum_t log(N^-1 sum_i w_t^i), the particle-filter estimate
    final_log_weights: jax.Array  # (N,)
    particles: jax.Array | None  # (T + 1, N, d) or None
    backward: jax.Array | None  # (T, N, K): J_{t+1}^{i,k} indexes time-t particles


# ------------------------------------------------------------------------------ models


class LGParams(NamedTuple):
    """Linear-Gaussian SSM: x_0 ~ N(m0, P0), x_{t+1} = A x_t + N(0, Q), y_t = C x_t + N(0, R)."""

    A: jax.Array
    Q: jax.Array
    C: jax.Array
    R: jax.Array
    m0: jax.Array
    P0: jax.Array


class SVParams(NamedTuple):
    """Stochastic volatility: x_{t+1} = mu + rho (x_t - mu) + sigma e_t, x_0 from the stationary law,
    y_t ~ N(0, exp(x_t))."""

    mu: jax.Array
    rho: jax.Array
    sigma: jax.Array


def _matvec(M, v):
    """M @ v as a broadcast product and sum: under a double vmap over particle pairs this stays an
    elementwise XLA fusion instead of millions of tiny batched matrix products."""
    if M.shape[1] == 1:  # no size-1 reductions: they break XLA's fusion on CPU
        return M[:, 0] * v[0]
    return jnp.sum(M * v[None, :], axis=-1)


def _normal_logpdf(x, mean, sd):
    """log N(x; mean, sd^2) with one multiply per element (no division in the N x N backward logits)."""
    precision = 1.0 / (sd * sd)
    return -0.5 * precision * (x - mean) ** 2 + (0.5 * jnp.log(precision) - 0.5 * math.log(2 * math.pi))


def _mvn_logpdf(x, mean, cov):
    """log N(x; mean, cov) through the inverse Cholesky factor (unbatched under vmap when cov is)."""
    if x.shape[-1] == 1:
        return _normal_logpdf(x[0], mean[0], jnp.sqrt(cov[0, 0]))
    chol = jnp.linalg.cholesky(cov)
    z = _matvec(jnp.linalg.inv(chol), x - mean)
    return -0.5 * jnp.sum(z * z) - jnp.sum(jnp.log(jnp.diag(chol))) - 0.5 * x.shape[-1] * math.log(2 * math.pi)


def _lg_sample_initial(key, n, p):
    eps = jax.random.normal(key, (n, p.m0.shape[0]), dtype=p.m0.dtype)
    return p.m0 + eps @ jnp.linalg.cholesky(p.P0).T


def _lg_sample_transition(key, x, p):
    return x @ p.A.T + jax.random.normal(key, x.shape, dtype=x.dtype) @ jnp.linalg.cholesky(p.Q).T


LINEAR_GAUSSIAN = StateSpaceModel(
    sample_initial=_lg_sample_initial,
    log_initial=lambda x, p: _mvn_logpdf(x, p.m0, p.P0),
    sample_transition=_lg_sample_transition,
    log_transition=lambda xp, xn, p: _mvn_logpdf(xn, _matvec(p.A, xp), p.Q),
    log_observation=lambda x, y, p: _mvn_logpdf(y, _matvec(p.C, x), p.R),
)


def lg_params(A: ArrayLike, Q: ArrayLike, C: ArrayLike, R: ArrayLike, m0: ArrayLike,
              P0: ArrayLike, dtype: Any = None) -> LGParams:
    """Validated parameters of the linear-Gaussian SSM x_0 ~ N(m0, P0), x_{t+1} = A x_t + N(0, Q),
    y_t = C x_t + N(0, R) (the paper's Sec. 2 model class; our test bed).

    Args:
        A: (d, d) transition matrix (a scalar becomes 1 x 1).
        Q: (d, d) transition noise covariance, positive definite.
        C: (d_y, d) observation matrix.
        R: (d_y, d_y) observation noise covariance, positive definite.
        m0: (d,) initial mean.
        P0: (d, d) initial covariance, positive definite.
        dtype: floating dtype (default: JAX's default float).

    Returns:
        :class:`LGParams`; raises ValueError on a wrong shape or a covariance that is not positive
        definite (checked only outside tracing).
    """
    dtype = dtype or jnp.result_type(float)
    A, Q, C, R = (jnp.atleast_2d(jnp.asarray(v, dtype)) for v in (A, Q, C, R))
    m0 = jnp.atleast_1d(jnp.asarray(m0, dtype))
    P0 = jnp.atleast_2d(jnp.asarray(P0, dtype))
    d, dy = A.shape[0], C.shape[0]
    shapes = {"A": (A.shape, (d, d)), "Q": (Q.shape, (d, d)), "C": (C.shape, (dy, d)),
              "R": (R.shape, (dy, dy)), "m0": (m0.shape, (d,)), "P0": (P0.shape, (d, d))}
    for name, (got, want) in shapes.items():
        if got != want:
            raise ValueError(f"LGSSM parameter {name} has shape {got}, expected {want}")
    for name, cov in (("Q", Q), ("R", R), ("P0", P0)):
        if isinstance(cov, jax.core.Tracer):  # built inside jit/grad (learning): shapes checked only
            continue
        if not np.all(np.linalg.eigvalsh(np.asarray(cov)) > 0):
            raise ValueError(f"LGSSM covariance {name} must be symmetric positive definite")
    return LGParams(A, Q, C, R, m0, P0)


def scalar_lg_params(a: ArrayLike = 0.9, q: ArrayLike = 1.0, c: ArrayLike = 1.0,
                     r: ArrayLike = 1.0, m0: ArrayLike = 0.0,
                     p0: ArrayLike | None = None) -> LGParams:
    """Scalar linear-Gaussian SSM x_{t+1} = a x_t + N(0, q), y_t = c x_t + N(0, r).

    Args:
        a, q, c, r: transition coefficient, transition variance, observation coefficient,
            observation variance (scalars; traceable when ``p0`` is given, e.g. in learning).
        m0: initial mean.
        p0: initial variance; None gives the stationary q / (1 - a^2) (needs |a| < 1).

    Returns:
        :class:`LGParams` with 1 x 1 matrices.
    """
    if p0 is None:
        if not abs(a) < 1:
            raise ValueError(f"stationary initial variance needs |a| < 1, got a = {a}")
        p0 = q / (1 - a * a)
    return lg_params(a, q, c, r, m0, p0)


def _sv_stationary_sd(p):
    return p.sigma / jnp.sqrt(1 - p.rho ** 2)


STOCHASTIC_VOLATILITY = StateSpaceModel(
    sample_initial=lambda key, n, p: p.mu + _sv_stationary_sd(p) * jax.random.normal(key, (n, 1), p.mu.dtype),
    log_initial=lambda x, p: _normal_logpdf(x[0], p.mu, _sv_stationary_sd(p)),
    sample_transition=lambda key, x, p: p.mu + p.rho * (x - p.mu) + p.sigma * jax.random.normal(key, x.shape, x.dtype),
    log_transition=lambda xp, xn, p: _normal_logpdf(xn[0], p.mu + p.rho * (xp[0] - p.mu), p.sigma),
    log_observation=lambda x, y, p: _normal_logpdf(y[0], 0.0, jnp.exp(0.5 * x[0])),
)


def sv_params(mu: float = -1.0, rho: float = 0.9, sigma: float = 0.3) -> SVParams:
    """Validated stochastic-volatility parameters (brief Sec. 2.7: x_{t+1} = mu + rho (x_t - mu) +
    sigma e_t, y_t ~ N(0, exp(x_t))).

    Args:
        mu: mean log-variance.
        rho: persistence, |rho| < 1.
        sigma: innovation s.d., > 0.

    Returns:
        :class:`SVParams` of 0-d arrays.
    """
    if not (abs(rho) < 1 and sigma > 0):
        raise ValueError(f"stochastic volatility needs |rho| < 1 and sigma > 0, got rho={rho}, sigma={sigma}")
    f = jnp.result_type(float)
    return SVParams(jnp.asarray(mu, f), jnp.asarray(rho, f), jnp.asarray(sigma, f))


@partial(jax.jit, static_argnames=("model", "n_steps", "observation_sampler"))
def simulate(key: jax.Array, model: StateSpaceModel, params: Any, n_steps: int,
             observation_sampler: Callable) -> tuple[jax.Array, jax.Array]:
    """One trajectory of the hidden chain and its observations (the HMM of the paper's Sec. 2).

    Args:
        key: PRNG key.
        model: the state-space model.
        params: its parameters.
        n_steps: T.
        observation_sampler: ``(key, x (d,), params) -> y (d_y,)`` draws y_t given x_t.

    Returns:
        (states x_{0:T} (T + 1, d), observations y_{0:T} (T + 1, d_y)).
    """
    k0, kx, ky = jax.random.split(key, 3)
    x0 = model.sample_initial(k0, 1, params)

    def advance(x, k):
        nxt = model.sample_transition(k, x, params)
        return nxt, nxt[0]

    _, xs = lax.scan(advance, x0, jax.random.split(kx, n_steps))
    xs = jnp.concatenate([x0, xs])
    ys = jax.vmap(observation_sampler, in_axes=(0, 0, None))(jax.random.split(ky, n_steps + 1), xs, params)
    return xs, ys


def lg_observation_sampler(key: jax.Array, x: jax.Array, p: LGParams) -> jax.Array:
    """One draw y ~ N(C x, R) for :func:`simulate`.

    Args:
        key: PRNG key.
        x: (d,) state.
        p: linear-Gaussian parameters.

    Returns:
        (d_y,) observation.
    """
    return p.C @ x + jnp.linalg.cholesky(p.R) @ jax.random.normal(key, (p.R.shape[0],), x.dtype)


def sv_observation_sampler(key: jax.Array, x: jax.Array, p: SVParams) -> jax.Array:
    """One draw y ~ N(0, exp(x)) for :func:`simulate`.

    Args:
        key: PRNG key.
        x: (1,) log-variance state.
        p: SV parameters (unused: the observation law has none).

    Returns:
        (1,) observation.
    """
    return jnp.exp(0.5 * x) * jax.random.normal(key, (1,), x.dtype)


# ------------------------------------------------------------------------------ additive functionals


def _no_initial_term(x0, y0, fparams):
    return jnp.zeros(1, x0.dtype)


CROSS_MOMENT = AdditiveFunctional(
    initial=_no_initial_term,
    step=lambda xp, xn, yn, fparams: jnp.atleast_1d(jnp.sum(xp * xn)),
)
"""h_T = sum_{t<T} x_t . x_{t+1} (sum_t x_t x_{t+1} for a scalar state)."""

SECOND_MOMENT = AdditiveFunctional(
    initial=lambda x0, y0, fparams: jnp.atleast_1d(jnp.sum(x0 * x0)),
    step=lambda xp, xn, yn, fparams: jnp.atleast_1d(jnp.sum(xn * xn)),
)
"""h_T = sum_{t<=T} |x_t|^2."""


@lru_cache(maxsize=None)  # one functional per model, so jitted callers are not recompiled
def fisher_score_functional(model: StateSpaceModel) -> AdditiveFunctional:
    """The Fisher identity as an additive functional (the paper's score, Sec. 4):
    grad_theta log p_theta(y_{0:T}) = phi_{0:T}(h) with h_init = grad log chi g_0 and
    h_step = grad log m g_{t+1}.

    Args:
        model: a model written on a flat parameter vector theta (see :func:`reparametrize`).

    Returns:
        :class:`AdditiveFunctional` whose terms are (q,) gradients, fparams = theta. Cached per
        model so jitted callers are not recompiled.
    """

    def initial(x0, y0, theta):
        return jax.grad(lambda th: model.log_initial(x0, th) + model.log_observation(x0, y0, th))(theta)

    def step(xp, xn, yn, theta):
        return jax.grad(lambda th: model.log_transition(xp, xn, th) + model.log_observation(xn, yn, th))(theta)

    return AdditiveFunctional(initial, step)


def reparametrize(model: StateSpaceModel, build: Callable) -> StateSpaceModel:
    """The same model written on a free parameter vector theta.

    Args:
        model: the model on its own parameter pytree.
        build: ``theta (q,) -> params``, e.g. theta = (a, log q, log r) for the scalar LGSSM.

    Returns:
        :class:`StateSpaceModel` whose functions call ``build(theta)`` first.
    """
    return StateSpaceModel(
        sample_initial=lambda key, n, th: model.sample_initial(key, n, build(th)),
        log_initial=lambda x, th: model.log_initial(x, build(th)),
        sample_transition=lambda key, x, th: model.sample_transition(key, x, build(th)),
        log_transition=lambda xp, xn, th: model.log_transition(xp, xn, build(th)),
        log_observation=lambda x, y, th: model.log_observation(x, y, build(th)),
    )


def evaluate_functional(functional: AdditiveFunctional, path: jax.Array, ys: jax.Array,
                        fparams: Any) -> jax.Array:
    """h_T(x_{0:T}) = h_init(x_0) + sum_{t<T} h_step(x_t, x_{t+1}) on one path (paper Sec. 2).

    Args:
        functional: the additive functional.
        path: (T + 1, d) states.
        ys: (T + 1, d_y) observations.
        fparams: the functional's parameters.

    Returns:
        (p,) value.
    """
    steps = jax.vmap(functional.step, in_axes=(0, 0, 0, None))(path[:-1], path[1:], ys[1:], fparams)
    return functional.initial(path[0], ys[0], fparams) + steps.sum(0)


# ------------------------------------------------------------------------------ sampling kernels


def _cumsum_last(a):
    """Cumulative sum over a short last axis as a product with a triangular matrix of ones (compiles
    and runs faster on CPU than XLA's cumulative-sum lowering)."""
    n = a.shape[-1]
    return jnp.matmul(a, jnp.triu(jnp.ones((n, n), a.dtype)), precision=lax.Precision.HIGHEST)


def categorical_inverse_cdf(key: jax.Array, logits: jax.Array, num: int) -> jax.Array:
    """Exact i.i.d. draws from Cat(softmax(row)) for every row, by two-level inverse-CDF sampling.

    The row is cut into ~sqrt(N) blocks; a block is drawn from the cumulative block sums, then an
    index inside it from that block's cumulative sums: O(N) arithmetic per row (no length-N
    cumulative sum, slow on CPU) plus O(num sqrt(N)) per draw.

    Args:
        key: PRNG key.
        logits: (..., N) unnormalised log-probabilities.
        num: draws per row.

    Returns:
        (..., num) int indices in [0, N).
    """
    n = logits.shape[-1]
    block = max(1, math.isqrt(n - 1) + 1) if n > 16 else n
    n_blocks = -(-n // block)
    pad = n_blocks * block - n
    shifted = logits - jnp.max(logits, axis=-1, keepdims=True)
    if pad:
        shifted = jnp.concatenate([shifted, jnp.full(shifted.shape[:-1] + (pad,), -jnp.inf, shifted.dtype)], -1)
    probs = jnp.exp(shifted).reshape(logits.shape[:-1] + (n_blocks, block))
    block_sums = probs.sum(-1)
    block_cdf = _cumsum_last(block_sums)
    u = jax.random.uniform(key, logits.shape[:-1] + (num,), dtype=probs.dtype) * block_cdf[..., -1:]
    chosen = jnp.sum(block_cdf[..., None, :] <= u[..., :, None], axis=-1)  # (..., num) blocks
    chosen = jnp.minimum(chosen, n_blocks - 1)
    inside = jnp.take_along_axis(probs, chosen[..., None], axis=-2)  # (..., num, block)
    before = jnp.take_along_axis(block_cdf - block_sums, chosen, axis=-1)
    offset = jnp.sum(_cumsum_last(inside) <= (u - before)[..., None], axis=-1)
    idx = chosen * block + jnp.minimum(offset, block - 1)
    return jnp.minimum(idx, n - 1)


def backward_logits(model: StateSpaceModel, params: Any, log_weights: jax.Array, x_prev: jax.Array,
                    x_next: jax.Array) -> jax.Array:
    """The PaRIS backward kernel in log form, L[i, j] = log w_t^j + log m(xi_t^j, xi_{t+1}^i)
    (Lambda_t(i, j) ∝ exp L[i, j]; Alg. 1 of the paper, Olsson & Westerborn 2017).

    Args:
        model: the state-space model.
        params: its parameters.
        log_weights: (N,) time-t log-weights.
        x_prev: (N, d) time-t particles.
        x_next: (N, d) time-(t+1) particles.

    Returns:
        (N, N) logits, row i for particle i at t + 1.
    """
    log_m = jax.vmap(lambda xn: jax.vmap(lambda xp: model.log_transition(xp, xn, params))(x_prev))(x_next)
    return log_weights[None, :] + log_m


def _mean_of_terms(functional, fparams, x_prev, x_next, y_next, backward, tau):
    """PaRIS update: K^{-1} sum_k [tau_t^{J^{i,k}} + h_step(xi_t^{J^{i,k}}, xi_{t+1}^i)] for every i."""
    step = jax.vmap(jax.vmap(functional.step, in_axes=(0, None, None, None)), in_axes=(0, 0, None, None))
    terms = step(x_prev[backward], x_next, y_next, fparams)  # (N, K, p)
    return jnp.mean(tau[backward] + terms, axis=1)


# ------------------------------------------------------------------------------ one PaRIS sweep


def _freeze_last(x, reference_row, conditional):
    """Set the last particle to the reference when ``conditional`` (a bool or a traced boolean)."""
    if conditional is False:
        return x
    return x.at[-1].set(jnp.where(conditional, reference_row, x[-1]))


def _sweep(key, model, functional, params, fparams, ys, reference, n_particles, n_backward,
           conditional, keep_history):
    """(Conditional) PaRIS over y_0..y_T; when ``conditional`` (Python or traced boolean) the last
    particle is frozen on ``reference`` (T + 1, d) at every time and is a full particle (weight,
    backward draws, estimate). ``reference`` may be None only when ``conditional is False``."""
    k_init, k_scan = jax.random.split(key)
    x0 = model.sample_initial(k_init, n_particles, params)
    if reference is None:
        reference = jnp.zeros((ys.shape[0],) + x0.shape[1:], x0.dtype)
    x0 = _freeze_last(x0, reference[0], conditional)
    logw0 = jax.vmap(model.log_observation, in_axes=(0, None, None))(x0, ys[0], params)
    tau0 = jax.vmap(functional.initial, in_axes=(0, None, None))(x0, ys[0], fparams)

    def advance(carry, inputs):
        x, logw, tau, loglik = carry
        key_t, y_next, ref_next = inputs
        k_res, k_mut, k_back = jax.random.split(key_t, 3)
        ancestors = categorical_inverse_cdf(k_res, logw, n_particles)
        x_next = _freeze_last(model.sample_transition(k_mut, x[ancestors], params), ref_next, conditional)
        logw_next = jax.vmap(model.log_observation, in_axes=(0, None, None))(x_next, y_next, params)
        backward = categorical_inverse_cdf(k_back, backward_logits(model, params, logw, x, x_next), n_backward)
        tau_next = _mean_of_terms(functional, fparams, x, x_next, y_next, backward, tau)
        loglik = loglik + jax.nn.logsumexp(logw_next) - math.log(n_particles)
        history = (x_next, backward) if keep_history else None
        return (x_next, logw_next, tau_next, loglik), (history, jax.nn.softmax(logw_next) @ tau_next)

    n_steps = ys.shape[0] - 1
    loglik0 = jax.nn.logsumexp(logw0) - math.log(n_particles)
    (_, logw, tau, loglik), (history, online) = lax.scan(
        advance, (x0, logw0, tau0, loglik0), (jax.random.split(k_scan, n_steps), ys[1:], reference[1:]))
    online = jnp.concatenate([(jax.nn.softmax(logw0) @ tau0)[None], online])
    if keep_history:
        return Sweep(online[-1], online, loglik, logw, jnp.concatenate([x0[None], history[0]]), history[1])
    return Sweep(online[-1], online, loglik, logw, None, None)


def _draw_path_indices(key, backward, final_log_weights, n_backward):
    """b_T ~ Cat(w_T), b_t = J_{t+1}^{b_{t+1}, u_t}, u_t ~ U{1..K}: the paper's new conditioning path."""
    k_last, k_u = jax.random.split(key)
    b_last = categorical_inverse_cdf(k_last, final_log_weights, 1)[0]

    def back(b_next, inputs):
        J, k = inputs
        b = J[b_next, jax.random.randint(k, (), 0, n_backward)]
        return b, b

    _, bs = lax.scan(back, b_last, (backward, jax.random.split(k_u, backward.shape[0])), reverse=True)
    return jnp.concatenate([bs, b_last[None]])


def _draw_path(key, sweep: Sweep, n_backward):
    idx = _draw_path_indices(key, sweep.backward, sweep.final_log_weights, n_backward)
    return sweep.particles[jnp.arange(idx.shape[0]), idx]


def _validate_sizes(n_particles, n_backward, ys):
    if not (isinstance(n_particles, int) and n_particles >= 2):
        raise ValueError(f"n_particles must be an integer >= 2, got {n_particles!r}")
    if not (isinstance(n_backward, int) and n_backward >= 1):
        raise ValueError(f"n_backward (K) must be an integer >= 1, got {n_backward!r}")
    if ys.ndim not in (2, 3) or ys.shape[-2] < 2:
        raise ValueError(f"ys must be (T + 1, d_y) or (R, T + 1, d_y) with T >= 1, got shape {ys.shape}")


def _data_axis(ys, keys):
    """vmap axis of ``ys``: None for one shared data set, 0 for one data set per replicate."""
    if ys.ndim == 2:
        return None
    if ys.shape[0] != keys.shape[0]:
        raise ValueError(f"{ys.shape[0]} data sets for {keys.shape[0]} keys: need one per replicate")
    return 0


# ------------------------------------------------------------------------------ public samplers


@partial(jax.jit, static_argnames=("model", "n_particles"))
def particle_filter(keys: jax.Array, model: StateSpaceModel, params: Any, ys: jax.Array,
                    n_particles: int) -> tuple[jax.Array, jax.Array]:
    """Bootstrap particle filter with multinomial resampling at every step (brief Sec. 2.2).

    Args:
        keys: (R, 2) one PRNG key per replicate.
        model: the state-space model.
        params: its parameters.
        ys: (T + 1, d_y) observations shared by all replicates.
        n_particles: N >= 2.

    Returns:
        (log-likelihood estimates (R,), filter means (R, T + 1, d)).
    """
    _validate_sizes(n_particles, 1, ys)

    def one(key):
        k0, ks = jax.random.split(key)
        x0 = model.sample_initial(k0, n_particles, params)

        def weigh(x, y):
            return jax.vmap(model.log_observation, in_axes=(0, None, None))(x, y, params)

        def advance(carry, inputs):
            x, logw = carry
            k, y = inputs
            k_res, k_mut = jax.random.split(k)
            x_next = model.sample_transition(k_mut, x[categorical_inverse_cdf(k_res, logw, n_particles)], params)
            logw_next = weigh(x_next, y)
            return (x_next, logw_next), (jax.nn.logsumexp(logw_next), jax.nn.softmax(logw_next) @ x_next)

        logw0 = weigh(x0, ys[0])
        _, (lse, means) = lax.scan(advance, (x0, logw0), (jax.random.split(ks, ys.shape[0] - 1), ys[1:]))
        loglik = jax.nn.logsumexp(logw0) + lse.sum() - ys.shape[0] * math.log(n_particles)
        return loglik, jnp.concatenate([(jax.nn.softmax(logw0) @ x0)[None], means])

    return jax.vmap(one)(keys)


@partial(jax.jit, static_argnames=("model", "functional", "n_particles", "n_backward", "online"))
def paris(keys: jax.Array, model: StateSpaceModel, functional: AdditiveFunctional, params: Any,
          ys: jax.Array, n_particles: int, n_backward: int = 2, fparams: Any = None,
          online: bool = False) -> jax.Array:
    """PaRIS estimates of phi_{0:T}(h_T) (Alg. 1 of the paper; Olsson & Westerborn 2017):
    tau_{t+1}^i = K^{-1} sum_k [tau_t^{J^{i,k}} + h_step(xi_t^{J^{i,k}}, xi_{t+1}^i)], estimate
    sum_i w_T^i tau_T^i / sum_i w_T^i.

    Args:
        keys: (R, 2) one PRNG key per replicate.
        model, functional, params: the model, the additive functional and the parameters.
        ys: (T + 1, d_y) shared by all replicates, or (R, T + 1, d_y) one data set each.
        n_particles: N >= 2.
        n_backward: K >= 1 backward draws per particle.
        fparams: the functional's parameters (default ``params``).
        online: return the online estimates phi_{0:t}(h_t) at every t.

    Returns:
        (R, p) estimates, or (R, T + 1, p) with ``online``.
    """
    _validate_sizes(n_particles, n_backward, ys)
    fparams = params if fparams is None else fparams
    run = lambda k, y: _sweep(k, model, functional, params, fparams, y, None, n_particles, n_backward,
                              False, False)
    sweeps = jax.vmap(run, in_axes=(0, _data_axis(ys, keys)))(keys, ys)
    return sweeps.online if online else sweeps.estimate


@partial(jax.jit, static_argnames=("model", "functional", "n_particles", "n_backward", "conditional"))
def paris_sweep(keys: jax.Array, model: StateSpaceModel, functional: AdditiveFunctional,
                params: Any, ys: jax.Array, reference: jax.Array, n_particles: int, n_backward: int = 2,
                conditional: bool = True, fparams: Any = None) -> Sweep:
    """Full (conditional) PaRIS sweeps with their particle systems and backward indices (the
    paper's conditional PaRIS kernel, brief Sec. 2.4: the last particle frozen on ``reference``).

    Args:
        keys: (R, 2) one PRNG key per sweep.
        model, functional, params: as in :func:`paris`.
        ys: (T + 1, d_y) observations.
        reference: (T + 1, d) conditioning path, shared by the sweeps.
        n_particles: N.
        n_backward: K.
        conditional: freeze the last particle on ``reference``.
        fparams: the functional's parameters (default ``params``).

    Returns:
        :class:`Sweep` whose fields gain a leading R axis (particles (R, T + 1, N, d), backward
        (R, T, N, K)).
    """
    _validate_sizes(n_particles, n_backward, ys)
    fparams = params if fparams is None else fparams
    run = lambda k: _sweep(k, model, functional, params, fparams, ys, reference, n_particles, n_backward,
                           conditional, True)
    return jax.vmap(run)(keys)


@partial(jax.jit, static_argnames=("n_backward", "n_paths"))
def redraw_paths(key: jax.Array, sweep: Sweep, n_backward: int, n_paths: int) -> jax.Array:
    """Paths drawn from one sweep's backward indices, b_T ~ Cat(w_T), b_t = J_{t+1}^{b_{t+1}, u}:
    the law whose mean of h_T the sweep's estimate equals (PPG's Rao-Blackwell identity, brief C1).

    Args:
        key: PRNG key.
        sweep: one unbatched :class:`Sweep` with history.
        n_backward: K of the sweep.
        n_paths: number of paths.

    Returns:
        (n_paths, T + 1, d) paths.
    """
    return jax.vmap(lambda k: _draw_path(k, sweep, n_backward))(jax.random.split(key, n_paths))


@partial(jax.jit, static_argnames=("model", "functional", "n_particles", "n_backward", "n_iterations"))
def ppg(keys: jax.Array, model: StateSpaceModel, functional: AdditiveFunctional, params: Any,
        ys: jax.Array, n_particles: int, n_backward: int = 2, n_iterations: int = 10,
        fparams: Any = None) -> jax.Array:
    """Parisian particle Gibbs chains (the paper's PPG, brief Sec. 2.4). Iteration 0 is an
    unconditional PaRIS sweep (which draws zeta_0); iteration l >= 1 is the conditional sweep on
    zeta_{l-1}, giving Pi_N[zeta_{l-1}](h) and drawing zeta_l.

    Args:
        keys: (R, 2) one PRNG key per chain.
        model, functional, params: as in :func:`paris`.
        ys: (T + 1, d_y) shared, or (R, T + 1, d_y) one data set per chain.
        n_particles: N.
        n_backward: K.
        n_iterations: k conditional iterations.
        fparams: the functional's parameters (default ``params``).

    Returns:
        (R, k + 1, p) estimates by iteration.
    """
    _validate_sizes(n_particles, n_backward, ys)
    fparams = params if fparams is None else fparams

    def chain(key, ys):
        def iterate(path, inputs):
            k, conditional = inputs
            ks, kd = jax.random.split(k)
            sweep = _sweep(ks, model, functional, params, fparams, ys, path, n_particles, n_backward,
                           conditional, True)
            return _draw_path(kd, sweep, n_backward), sweep.estimate

        path0 = jnp.zeros((ys.shape[0], model.sample_initial(key, 1, params).shape[-1]), ys.dtype)
        flags = jnp.arange(n_iterations + 1) > 0  # iteration 0: plain PaRIS
        _, estimates = lax.scan(iterate, path0, (jax.random.split(key, n_iterations + 1), flags))
        return estimates

    return jax.vmap(chain, in_axes=(0, _data_axis(ys, keys)))(keys, ys)


def rollout(estimates: ArrayLike, k0: int, k: int | None = None) -> jax.Array:
    """Roll-out estimator Pi_{(k0,k),N}(h) = (k - k0)^{-1} sum_{l=k0+1}^{k} Pi_N[zeta_{l-1}](h)
    (brief Sec. 2.4).

    Args:
        estimates: (..., n_iterations + 1, p) :func:`ppg` output.
        k0: burn-in, 0 <= k0 < k.
        k: last iteration (default: the last one).

    Returns:
        (..., p) roll-out estimates.
    """
    k = estimates.shape[-2] - 1 if k is None else k
    if not (0 <= k0 < k <= estimates.shape[-2] - 1):
        raise ValueError(f"roll-out needs 0 <= k0 < k <= {estimates.shape[-2] - 1}, got k0={k0}, k={k}")
    return estimates[..., k0 + 1:k + 1, :].mean(axis=-2)


# ------------------------------------------------------------------------------ learning


class LearningRun(NamedTuple):
    """Score-ascent chains (Sec. 4): every iterate and the Polyak averages."""

    thetas: jax.Array  # (R, n_steps + 1, q): theta_0..theta_n for every chain
    polyak: jax.Array  # (R, q): average of theta_n over the second half of the run


@partial(jax.jit, static_argnames=("model", "functional", "n_particles", "n_backward", "n_steps",
                                   "learn_model"))
def _stochastic_ascent(keys, model, functional, model_params, theta0, ys, n_particles, n_backward,
                       n_steps, step_size, step_decay, lower, upper, use_ppg, learn_model,
                       preconditioner):
    """theta_{n+1} = clip(theta_n + gamma0 n^-decay * P H_n / T), H_n a PaRIS (``use_ppg`` False) or
    path-carrying PPG estimate of phi(h_theta) under the model at ``theta`` (learn_model) or at
    ``model_params``. ``use_ppg``: one traced flag per chain, so both drivers share one program."""
    n_obs = ys.shape[-2] - 1

    def chain(key, ys, ppg_chain):
        def step(carry, inputs):
            theta, path = carry
            k, n = inputs
            kk, kd = jax.random.split(k)
            mp = theta if learn_model else model_params
            conditional = jnp.logical_and(ppg_chain, n > 1)  # PPG: the first sweep draws zeta_0
            sweep = _sweep(kk, model, functional, mp, theta, ys, path, n_particles, n_backward,
                           conditional, True)
            path = _draw_path(kd, sweep, n_backward)  # carried across theta-updates (PPG uses it)
            gamma = step_size * n ** (-step_decay)
            theta = jnp.clip(theta + gamma * (preconditioner @ sweep.estimate) / n_obs, lower, upper)
            return (theta, path), theta

        d = model.sample_initial(key, 1, model_params).shape[-1]
        path0 = jnp.zeros((ys.shape[0], d), ys.dtype)
        steps = jnp.arange(1, n_steps + 1, dtype=theta0.dtype)
        _, thetas = lax.scan(step, (theta0, path0), (jax.random.split(key, n_steps), steps))
        thetas = jnp.concatenate([theta0[None], thetas])
        return thetas, thetas[n_steps // 2:].mean(0)

    thetas, polyak = jax.vmap(chain, in_axes=(0, _data_axis(ys, keys), 0))(keys, ys, use_ppg)
    return LearningRun(thetas, polyak)


def _driver_flags(driver, n_chains):
    """One PPG flag per chain from 'paris', 'ppg' or a sequence of these (one per chain)."""
    drivers = [driver] * n_chains if isinstance(driver, str) else list(driver)
    if len(drivers) != n_chains or any(d not in ("paris", "ppg") for d in drivers):
        raise ValueError(f"driver must be 'paris', 'ppg' or one of these per chain, got {driver!r}")
    return jnp.asarray([d == "ppg" for d in drivers])


def _check_learning(n_steps, theta0, lower, upper):
    if not (isinstance(n_steps, int) and n_steps >= 2):
        raise ValueError(f"n_steps must be an integer >= 2, got {n_steps!r}")
    lo, hi, th = np.asarray(lower), np.asarray(upper), np.asarray(theta0)
    if np.any(lo >= hi) or np.any(th < lo) or np.any(th > hi):
        raise ValueError("need lower < upper and lower <= theta0 <= upper")


def _learning_inputs(keys, start, ys, n_particles, n_backward, n_steps, lower, upper, driver):
    """Checked inputs of a learning run: the start vector, one driver flag per chain, and the box
    bounds broadcast to the start's shape."""
    start = jnp.atleast_1d(jnp.asarray(start, dtype=ys.dtype))
    _check_learning(n_steps, start, lower, upper)
    _validate_sizes(n_particles, n_backward, ys)
    lower, upper = (jnp.broadcast_to(jnp.asarray(b, ys.dtype), start.shape) for b in (lower, upper))
    return start, _driver_flags(driver, keys.shape[0]), lower, upper


def _preconditioner(matrix, start):
    """The step's (q, q) preconditioner: the identity when None, else checked symmetric positive
    definite (a fixed positive-definite matrix keeps the score's zeros as the fixed points)."""
    if matrix is None:
        return jnp.eye(start.shape[0], dtype=start.dtype)
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (start.shape[0],) * 2 or not np.allclose(matrix, matrix.T) \
            or not np.all(np.linalg.eigvalsh(matrix) > 0):
        raise ValueError(f"preconditioner must be a symmetric positive-definite "
                         f"{start.shape[0]} x {start.shape[0]} matrix")
    return jnp.asarray(matrix, start.dtype)


def score_ascent(keys: jax.Array, model: StateSpaceModel, theta0: ArrayLike, ys: jax.Array,
                 n_particles: int, n_backward: int = 2, n_steps: int = 1000,
                 step_size: float = 0.02, step_decay: float = 0.6, lower: ArrayLike = -jnp.inf,
                 upper: ArrayLike = jnp.inf, driver: str | Sequence[str] = "ppg",
                 preconditioner: ArrayLike | None = None) -> LearningRun:
    """MLE by stochastic score ascent (the paper's Sec. 4),
    theta_{n+1} = clip(theta_n + step_size n^-step_decay P S_n / T, lower, upper), S_n the
    Fisher-identity score estimated by PaRIS (a fresh sweep per step) or PPG (a conditional sweep
    whose path is carried across theta-updates), with Polyak averaging.

    Args:
        keys: (R, 2) one PRNG key per chain.
        model: the model written on the free vector theta (see :func:`reparametrize`).
        theta0: (q,) start.
        ys: (T + 1, d_y) shared, or (R, T + 1, d_y) one data set per chain.
        n_particles: N.
        n_backward: K.
        n_steps: score-ascent steps.
        step_size, step_decay: gamma_n = step_size n^-step_decay.
        lower, upper: clipping box, scalars or (q,).
        driver: ``'paris'``, ``'ppg'``, or one of these per chain (one compiled program for both).
        preconditioner: (q, q) symmetric positive-definite P (identity when None).

    Returns:
        :class:`LearningRun`: thetas (R, n_steps + 1, q), Polyak averages (R, q).
    """
    theta0, flags, lower, upper = _learning_inputs(keys, theta0, ys, n_particles, n_backward, n_steps,
                                                   lower, upper, driver)
    return _stochastic_ascent(keys, model, fisher_score_functional(model), theta0, theta0, ys,
                              n_particles, n_backward, n_steps, step_size, step_decay, lower, upper,
                              flags, True, _preconditioner(preconditioner, theta0))


def markov_score_climbing(keys: jax.Array, model: StateSpaceModel, params: Any,
                          functional: AdditiveFunctional, lambda0: ArrayLike, ys: jax.Array,
                          n_particles: int, n_backward: int = 2, n_steps: int = 1000,
                          step_size: float = 0.02, step_decay: float = 0.6,
                          lower: ArrayLike = -jnp.inf, upper: ArrayLike = jnp.inf,
                          driver: str | Sequence[str] = "ppg") -> LearningRun:
    """Markov score climbing (the paper's Sec. 4; Naesseth et al. 2020): minimise
    KL(phi_{0:T} || q_lambda) with the gradient E_phi[grad_lambda log q_lambda(X_{0:T})], an
    additive functional estimated by PaRIS or PPG under the fixed model ``params``.

    Args:
        keys: (R, 2) one PRNG key per chain.
        model, params: the fixed model.
        functional: grad_lambda log q_lambda as an additive functional (fparams = lambda).
        lambda0: (q,) start.
        ys, n_particles, n_backward, n_steps, step_size, step_decay, lower, upper, driver: as in
            :func:`score_ascent`.

    Returns:
        :class:`LearningRun` over lambda.
    """
    lambda0, flags, lower, upper = _learning_inputs(keys, lambda0, ys, n_particles, n_backward,
                                                    n_steps, lower, upper, driver)
    return _stochastic_ascent(keys, model, functional, params, lambda0, ys, n_particles, n_backward,
                              n_steps, step_size, step_decay, lower, upper, flags, False,
                              _preconditioner(None, lambda0))


@lru_cache(maxsize=None)
def ar1_variational_functional() -> AdditiveFunctional:
    """grad_lambda log q_lambda of the scalar Gaussian AR(1) family
    q(x_{0:T}) = N(x_0; m, e^{2 l0}) prod_t N(x_{t+1}; phi x_t + c, e^{2 l}) (brief Sec. 2.6).

    Args:
        None (cached, so jitted callers see one functional).

    Returns:
        :class:`AdditiveFunctional` with (5,) terms, fparams = lambda = (m, l0, phi, c, l).
    """

    def log_q0(lam, x0):
        return jax.scipy.stats.norm.logpdf(x0[0], lam[0], jnp.exp(lam[1]))

    def log_q(lam, xp, xn):
        return jax.scipy.stats.norm.logpdf(xn[0], lam[2] * xp[0] + lam[3], jnp.exp(lam[4]))

    return AdditiveFunctional(
        initial=lambda x0, y0, lam: jax.grad(log_q0)(lam, x0),
        step=lambda xp, xn, yn, lam: jax.grad(log_q)(lam, xp, xn),
    )


def ar1_inclusive_kl_optimum(smoothed_means: ArrayLike, smoothed_covs: ArrayLike,
                             smoothed_cross_covs: ArrayLike) -> np.ndarray:
    """argmin_lambda KL(phi || q_lambda) for :func:`ar1_variational_functional`, in closed form
    from exact smoothed moments (moment matching of x_0, least squares of x_{t+1} on (x_t, 1)).

    Args:
        smoothed_means: (T + 1, 1) E[x_t | y].
        smoothed_covs: (T + 1, 1, 1) Var(x_t | y).
        smoothed_cross_covs: (T, 1, 1) Cov(x_t, x_{t+1} | y).

    Returns:
        (5,) lambda = (m, l0, phi, c, l).
    """
    m = np.asarray(smoothed_means)[:, 0]
    v = np.asarray(smoothed_covs)[:, 0, 0]
    cc = np.asarray(smoothed_cross_covs)[:, 0, 0]
    sxx, sx = np.sum(v[:-1] + m[:-1] ** 2), np.sum(m[:-1])
    sxy, sy, syy = np.sum(cc + m[:-1] * m[1:]), np.sum(m[1:]), np.sum(v[1:] + m[1:] ** 2)
    T = len(m) - 1
    phi, c = np.linalg.solve([[sxx, sx], [sx, T]], [sxy, sy])
    resid = syy - 2 * phi * sxy - 2 * c * sy + phi ** 2 * sxx + 2 * phi * c * sx + T * c ** 2
    return np.array([m[0], 0.5 * np.log(v[0]), phi, c, 0.5 * np.log(resid / T)])


# ------------------------------------------------------------------------------ exact reference


class KalmanResult(NamedTuple):
    """Kalman filter output for T + 1 observations of a d-dimensional state."""

    filtered_means: jax.Array  # (T + 1, d)
    filtered_covs: jax.Array  # (T + 1, d, d)
    predicted_means: jax.Array  # (T + 1, d), m_{t|t-1} (m0 at t = 0)
    predicted_covs: jax.Array
    log_likelihood: jax.Array


class SmootherResult(NamedTuple):
    """RTS smoother output: smoothed moments and the log-likelihood (exact reference)."""

    means: jax.Array  # (T + 1, d): E[x_t | y_{0:T}]
    covs: jax.Array  # (T + 1, d, d): Cov(x_t | y_{0:T})
    cross_covs: jax.Array  # (T, d, d): Cov(x_t, x_{t+1} | y_{0:T})
    log_likelihood: jax.Array


@jax.jit
def kalman_filter(params: LGParams, ys: jax.Array) -> KalmanResult:
    """Kalman filter for :data:`LINEAR_GAUSSIAN` (symmetrised covariances), the exact reference.

    Args:
        params: linear-Gaussian parameters.
        ys: (T + 1, d_y) observations.

    Returns:
        :class:`KalmanResult`: filtered and predicted means (T + 1, d) and covariances
        (T + 1, d, d), and the exact log-likelihood log p(y_{0:T}).
    """

    def update(m, P, y):
        S = params.C @ P @ params.C.T + params.R
        K = jnp.linalg.solve(S, params.C @ P).T
        ll = jax.scipy.stats.multivariate_normal.logpdf(y, params.C @ m, S)
        Pf = P - K @ S @ K.T
        return m + K @ (y - params.C @ m), 0.5 * (Pf + Pf.T), ll

    def advance(carry, y):
        m, P = carry
        mp, Pp = params.A @ m, params.A @ P @ params.A.T + params.Q
        mf, Pf, ll = update(mp, Pp, y)
        return (mf, Pf), (mf, Pf, mp, Pp, ll)

    m0, P0, ll0 = update(params.m0, params.P0, ys[0])
    _, (mf, Pf, mp, Pp, ll) = lax.scan(advance, (m0, P0), ys[1:])
    cat = lambda a, b: jnp.concatenate([a[None], b])
    return KalmanResult(cat(m0, mf), cat(P0, Pf), cat(params.m0, mp), cat(params.P0, Pp), ll0 + ll.sum())


@jax.jit
def rts_smoother(params: LGParams, ys: jax.Array) -> SmootherResult:
    """Rauch-Tung-Striebel smoother with lag-one cross-covariances G_t P_{t+1|T},
    G_t = P_{t|t} A^T P_{t+1|t}^{-1} (brief Sec. 2.7), the exact reference.

    Args:
        params: linear-Gaussian parameters.
        ys: (T + 1, d_y) observations.

    Returns:
        :class:`SmootherResult`: means (T + 1, d), covariances (T + 1, d, d), cross-covariances
        (T, d, d), log-likelihood.
    """
    kf = kalman_filter(params, ys)

    def back(carry, inputs):
        ms, Ps = carry
        mf, Pf, mp_next, Pp_next = inputs
        G = jnp.linalg.solve(Pp_next, params.A @ Pf).T  # P_{t|t} A^T P_{t+1|t}^{-1}
        m = mf + G @ (ms - mp_next)
        P = Pf + G @ (Ps - Pp_next) @ G.T
        return (m, 0.5 * (P + P.T)), (m, 0.5 * (P + P.T), G @ Ps)

    last = (kf.filtered_means[-1], kf.filtered_covs[-1])
    inputs = (kf.filtered_means[:-1], kf.filtered_covs[:-1], kf.predicted_means[1:], kf.predicted_covs[1:])
    _, (m, P, cross) = lax.scan(back, last, inputs, reverse=True)
    return SmootherResult(jnp.concatenate([m, last[0][None]]), jnp.concatenate([P, last[1][None]]), cross,
                          kf.log_likelihood)


def exact_cross_moment(smoother: SmootherResult) -> np.ndarray:
    """E[sum_{t<T} x_t . x_{t+1} | y] = sum_t tr Cov(x_t, x_{t+1} | y) + m_t . m_{t+1} (brief
    Sec. 2.7), in float64.

    Args:
        smoother: :func:`rts_smoother` output, possibly vmapped over data sets.

    Returns:
        A scalar, or (M,) for a smoother vmapped over M data sets.
    """
    m = np.asarray(smoother.means, dtype=np.float64)
    cross = np.trace(np.asarray(smoother.cross_covs, dtype=np.float64), axis1=-2, axis2=-1)
    return (cross.sum(-1) + np.sum(m[..., :-1, :] * m[..., 1:, :], axis=(-2, -1)))[()]


def exact_second_moment(smoother: SmootherResult) -> np.ndarray:
    """E[sum_{t<=T} |x_t|^2 | y] = sum_t tr Cov(x_t | y) + |m_t|^2, in float64.

    Args:
        smoother: :func:`rts_smoother` output, possibly vmapped over data sets.

    Returns:
        A scalar, or (M,) per data set.
    """
    m = np.asarray(smoother.means, dtype=np.float64)
    covs = np.trace(np.asarray(smoother.covs, dtype=np.float64), axis1=-2, axis2=-1)
    return (covs.sum(-1) + np.sum(m ** 2, axis=(-2, -1)))[()]


def dense_gaussian_smoother(params: LGParams, ys: ArrayLike) -> SmootherResult:
    """Independent reference (numpy, small T): condition the joint Gaussian of (x_{0:T}, y_{0:T}),
    built in closed form with Cov(x_s, x_t) = A^{t-s} Sigma_s for s <= t, on the data.

    Args:
        params: linear-Gaussian parameters.
        ys: (T + 1, d_y) observations.

    Returns:
        :class:`SmootherResult` of numpy arrays (shapes as :func:`rts_smoother`).
    """
    A, Q, C, R, m0, P0 = (np.asarray(v, dtype=np.float64) for v in params)
    ys = np.asarray(ys, dtype=np.float64)
    T1, d = ys.shape[0], A.shape[0]
    means, marg = [m0], [P0]
    for _ in range(T1 - 1):
        means.append(A @ means[-1])
        marg.append(A @ marg[-1] @ A.T + Q)
    Sxx = np.zeros((T1 * d, T1 * d))
    for s in range(T1):
        prop = np.eye(d)
        for t in range(s, T1):
            Sxx[t * d:(t + 1) * d, s * d:(s + 1) * d] = prop @ marg[s]
            Sxx[s * d:(s + 1) * d, t * d:(t + 1) * d] = (prop @ marg[s]).T
            prop = A @ prop
    Cbig = np.kron(np.eye(T1), C)
    mx = np.concatenate(means)
    Syy = Cbig @ Sxx @ Cbig.T + np.kron(np.eye(T1), R)
    Sxy = Sxx @ Cbig.T
    resid = ys.reshape(-1) - Cbig @ mx
    gain = np.linalg.solve(Syy, Sxy.T).T
    post_mean = (mx + gain @ resid).reshape(T1, d)
    post_cov = Sxx - gain @ Sxy.T
    blocks = lambda s, t: post_cov[s * d:(s + 1) * d, t * d:(t + 1) * d]
    _, logdet = np.linalg.slogdet(Syy)
    loglik = -0.5 * (resid @ np.linalg.solve(Syy, resid) + logdet + len(resid) * np.log(2 * np.pi))
    return SmootherResult(post_mean, np.stack([blocks(t, t) for t in range(T1)]),
                          np.stack([blocks(t, t + 1) for t in range(T1 - 1)]), loglik)


class GridSmoother(NamedTuple):
    """Grid-quadrature forward-backward output (exact reference of a scalar-state model)."""

    estimate: jax.Array  # (p,): E[h_T(X_{0:T}) | y_{0:T}] by quadrature
    log_likelihood: jax.Array  # log p(y_{0:T}) by quadrature


@partial(jax.jit, static_argnames=("model", "functional"))
def grid_smoother(model: StateSpaceModel, functional: AdditiveFunctional, params: Any,
                  ys: jax.Array, grid: jax.Array, fparams: Any = None) -> GridSmoother:
    """Independent reference for a scalar state: forward-backward recursions of the HMM obtained by
    the rectangle rule on an evenly spaced grid, in log space; phi_{0:T}(h_T) is summed from the
    exact pair marginals of the discretised chain (quadrature error only, spectral for smooth
    densities once the spacing is well below the transition's scale).

    Args:
        model, functional, params: scalar-state model, additive functional, parameters.
        ys: (T + 1, d_y) observations.
        grid: (G,) evenly spaced points.
        fparams: the functional's parameters (default ``params``).

    Returns:
        :class:`GridSmoother`: the (p,) estimate and log p(y_{0:T}).
    """
    fparams = params if fparams is None else fparams
    pts = grid[:, None]
    log_dx = jnp.log(grid[1] - grid[0])
    log_m = jax.vmap(lambda xp: jax.vmap(lambda xn: model.log_transition(xp, xn, params))(pts))(pts)
    log_m = log_m + log_dx  # (G, G): row = x_t, column = x_{t+1}
    log_g = jax.vmap(lambda y: jax.vmap(lambda x: model.log_observation(x, y, params))(pts))(ys)
    alpha0 = jax.vmap(lambda x: model.log_initial(x, params))(pts) + log_dx + log_g[0]

    def forward(alpha, lg):
        nxt = jax.nn.logsumexp(alpha[:, None] + log_m, axis=0) + lg
        return nxt, nxt

    _, alphas = lax.scan(forward, alpha0, log_g[1:])
    alphas = jnp.concatenate([alpha0[None], alphas])

    def backward(beta, lg):
        prev = jax.nn.logsumexp(log_m + (lg + beta)[None, :], axis=1)
        return prev, beta

    _, betas_next = lax.scan(backward, jnp.zeros_like(alpha0), log_g[1:], reverse=True)
    log_z = jax.nn.logsumexp(alphas[-1])
    def pair_term(total, inputs):  # sum_ij P(x_t = g_i, x_{t+1} = g_j | y) h(g_i, g_j, y_{t+1})
        alpha, lg, beta, y = inputs
        w = jnp.exp(alpha[:, None] + log_m + (lg + beta)[None, :] - log_z)
        h = jax.vmap(lambda xp: jax.vmap(lambda xn: functional.step(xp, xn, y, fparams))(pts))(pts)
        return total + jnp.einsum("ij,ijp->p", w, h), None

    p = functional.initial(pts[0], ys[0], fparams).shape[0]
    inputs = (alphas[:-1], log_g[1:], betas_next, ys[1:])
    steps, _ = lax.scan(pair_term, jnp.zeros(p, grid.dtype), inputs)
    beta0 = jax.nn.logsumexp(log_m + (log_g[1] + betas_next[0])[None, :], axis=1)
    w0 = jnp.exp(alphas[0] + beta0 - log_z)
    h0 = jax.vmap(lambda x: functional.initial(x, ys[0], fparams))(pts)
    return GridSmoother(w0 @ h0 + steps, log_z)


def kalman_mle(build: Callable, theta0: ArrayLike, ys: jax.Array,
               bounds: list | None = None) -> np.ndarray:
    """argmax_theta of the exact Kalman log-likelihood, by L-BFGS-B with JAX gradients (an
    independent MLE reference for score ascent).

    Args:
        build: ``theta -> LGParams``.
        theta0: (q,) start.
        ys: (T + 1, d_y) observations.
        bounds: L-BFGS-B box, a list of (low, high) per coordinate, or None.

    Returns:
        (q,) MLE; raises RuntimeError if L-BFGS-B does not converge.
    """
    theta0 = np.atleast_1d(np.asarray(theta0, dtype=np.float64))
    value_and_grad = jax.jit(jax.value_and_grad(lambda th: -kalman_filter(build(th), ys).log_likelihood))

    def objective(th):
        v, g = value_and_grad(jnp.asarray(th))
        return float(v), np.asarray(g, dtype=np.float64)

    res = minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 1000})
    if not res.success:
        raise RuntimeError(f"Kalman MLE did not converge: {res.message}")
    return res.x
