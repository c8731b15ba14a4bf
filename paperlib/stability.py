"""Dynamical (linear) stability of GD and SGD at global minima (Wu & Su, ICML 2023, arXiv 2305.17490;
Wu, Ma & E, NeurIPS 2018), with the two models of Wu & Su: diagonal linear networks and bias-free
two-layer ReLU networks, and a small MLP for the 2018 companion.

Conventions (one per module; see the notebook):

* Loss L(theta) = (1/2n) sum_i ||f(theta, x_i) - y_i||^2, SGD step theta -= (eta/B) sum_{i in I} grad l_i,
  l_i = 1/2 ||f(theta, x_i) - y_i||^2; batches I drawn i.i.d. over steps, B indices *with* replacement or a
  uniform B-subset *without* replacement. GD is B = n without replacement.
* At an interpolating minimum H = (1/n) sum_i H_i with H_i = J_i^T J_i (for scalar outputs g_i g_i^T).
* Linearisation Delta_{t+1} = (I - eta H_I) Delta_t, H_I = (1/B) sum_{i in I} H_i. The second moment
  S_t = E Delta_t Delta_t^T obeys S_{t+1} = T(S_t) with (derived in the notebook, Section 1)

      T(S) = (I - eta H) S (I - eta H) + eta^2 c_{B,n} (E_i H_i S H_i - H S H),
      c_{B,n} = 1/B (with replacement),  (n - B) / (B (n - 1)) (without replacement).

  T is self-adjoint and positive, so its spectral radius is its largest eigenvalue and the stable step
  sizes form an interval [0, eta*] with eta* = 2 / max_S <S, Q S> / <S, R S>, where
  Q(S) = (1 - c) H S H + c E_i H_i S H_i and R(S) = (H S + S H) / 2 (:func:`max_stable_lr`).
  S = I gives the necessary trace condition eta [(1 - c) ||H||_F^2 + c E_i ||H_i||_F^2] <= 2 Tr H, hence
  Tr H <= 2 / (c eta) for rank-one H_i: 2/eta at B = 1 (the paper's statement), 2B/eta with replacement.

Parameters are flat vectors: diagonal net theta = (a, b) in R^{2d}; ReLU net theta = (a, W.ravel()) in
R^{m(d+1)}; MLP theta = concatenated (W_l, b_l). Trainers vmap over runs (learning rates x seeds) and
record divergence (non-finite or blown-up loss) as an outcome; a diverged run is frozen, not raised.
"""

from __future__ import annotations

from functools import lru_cache, partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from paperlib import linalg

_HI = lax.Precision.HIGHEST

# ============================================================================ linear stability theory


def sampling_constant(n: int, batch_size: int, replacement: bool) -> float:
    """c_{B,n}, the factor in front of the per-sample variance in the second-moment operator T
    (module docstring; Wu, Ma & E 2018 use (n - B) / (B (n - 1))).

    Args:
      n: number of samples.
      batch_size: B (1 <= B, and B <= n without replacement).
      replacement: B indices i.i.d. uniform (1/B), or a uniform B-subset ((n - B) / (B (n - 1))).

    Returns:
      c_{B,n} (0 for GD, B = n without replacement).
    """
    if not (isinstance(n, (int, np.integer)) and isinstance(batch_size, (int, np.integer))):
        raise ValueError(f"n and batch_size must be integers, got {n!r}, {batch_size!r}")
    if n < 1 or batch_size < 1 or (not replacement and batch_size > n):
        raise ValueError(f"need n >= 1 and 1 <= B (<= n without replacement); got n={n}, B={batch_size}")
    if replacement:
        return 1.0 / batch_size
    return 0.0 if n == 1 else (n - batch_size) / (batch_size * (n - 1))


def rank_one_hessians(g: ArrayLike) -> np.ndarray:
    """Per-sample Hessians H_i = g_i g_i^T at an interpolating minimum (module docstring).

    Args:
      g: (n, p) per-sample output gradients g_i = grad_theta f(x_i; theta*).

    Returns:
      (n, p, p) float64 numpy array (the stability theory is small dense linear algebra: numpy
      avoids one XLA compile per shape).
    """
    g = np.asarray(g, dtype=np.float64)
    return g[:, :, None] * g[:, None, :]


def _check_hessians(Hs):
    Hs = np.asarray(Hs, dtype=np.float64)
    if Hs.ndim != 3 or Hs.shape[1] != Hs.shape[2]:
        raise ValueError(f"per-sample Hessians must have shape (n, p, p), got {Hs.shape}")
    return Hs


def _kron_moments(Hs):
    """(H kron H, E_i H_i kron H_i) as (p^2, p^2) matrices (vec(A S A) = (A kron A) vec S, A = A^T)."""
    H = Hs.mean(0)
    return np.kron(H, H), np.einsum("iab,icd->acbd", Hs, Hs).reshape(H.size, H.size) / Hs.shape[0]


def second_moment_operator(Hs: ArrayLike, eta: float, batch_size: int,
                           replacement: bool = True) -> np.ndarray:
    """The second-moment operator of linearised SGD, S_{t+1} = T(S_t) with
    T(S) = (I - eta H) S (I - eta H) + eta^2 c_{B,n} (E_i H_i S H_i - H S H) (module docstring; derived
    in the notebook's Section 1, the linear stability of Wu & Su 2023 and Wu, Ma & E 2018).

    Args:
      Hs: (n, p, p) per-sample Hessians H_i.
      eta: learning rate.
      batch_size: B.
      replacement: the sampling scheme of :func:`sampling_constant`.

    Returns:
      (p^2, p^2) matrix acting on vec(S).
    """
    Hs = _check_hessians(Hs)
    n, p, _ = Hs.shape
    c = sampling_constant(n, batch_size, replacement)
    A = np.eye(p) - eta * Hs.mean(0)
    HH, EHH = _kron_moments(Hs)
    return np.kron(A, A) + eta**2 * c * (EHH - HH)


def spectral_radius(T: ArrayLike) -> float:
    """Spectral radius rho(T) of a symmetric operator matrix; linear (mean-square) stability holds
    iff rho(T) <= 1 (T is self-adjoint, so ``eigvalsh`` is exact).

    Args:
      T: (q, q) symmetric matrix, e.g. :func:`second_moment_operator`.

    Returns:
      max |eigenvalue|.
    """
    return np.max(np.abs(np.linalg.eigvalsh(np.asarray(T, dtype=np.float64))))


def max_stable_lr(Hs: ArrayLike, batch_size: int, replacement: bool = True,
                  rtol: float = 1e-12) -> float:
    """Largest stable learning rate eta* (rho(T) <= 1 exactly on [0, eta*]):
    eta* = 2 / mu_max of the pencil (Q, R) of the module docstring, restricted to the range of H
    (null directions of H are left unchanged by every H_I). The notebook's Section 1.

    Args:
      Hs: (n, p, p) per-sample Hessians.
      batch_size: B.
      replacement: the sampling scheme.
      rtol: eigenvalues of H below ``rtol * lambda_max(H)`` count as its null space.

    Returns:
      eta*.
    """
    Hs = _check_hessians(Hs)
    n = Hs.shape[0]
    c = sampling_constant(n, batch_size, replacement)
    lam, U = np.linalg.eigh(Hs.mean(0))
    keep = lam > rtol * lam.max()
    lam, U = lam[keep], U[:, keep]
    Hr = np.einsum("pa,ipq,qb->iab", U, Hs, U)  # per-sample Hessians in H's eigenbasis (range only)
    HH, EHH = _kron_moments(Hr)
    Q = (1 - c) * HH + c * EHH
    r_inv_sqrt = 1.0 / np.sqrt(0.5 * (lam[:, None] + lam[None, :])).ravel()  # R is diagonal here
    mu = np.linalg.eigvalsh(r_inv_sqrt[:, None] * Q * r_inv_sqrt[None, :])[-1]
    return float(2.0 / mu)


def trace_bound(eta: ArrayLike, n: int, batch_size: int, replacement: bool = True) -> np.ndarray | float:
    """The trace bound at a linearly stable minimum with rank-one H_i: Tr H <= 2 / (c_{B,n} eta),
    i.e. the abstract's Tr H <= 2/eta of Wu & Su (2023) at B = 1 (our B-dependent form for B > 1).

    Args:
      eta: learning rate(s), any shape.
      n, batch_size, replacement: as in :func:`sampling_constant`.

    Returns:
      The bound, shaped like ``eta`` (inf for GD, where c = 0).
    """
    c = sampling_constant(n, batch_size, replacement)
    return np.inf if c == 0 else 2.0 / (c * np.asarray(eta))


def trace_condition_ratio(Hs: ArrayLike, eta: float, batch_size: int,
                          replacement: bool = True) -> jax.Array:
    """The necessary condition from S = I in <S, T S> <= <S, S> (module docstring):
    eta [(1 - c) ||H||_F^2 + c E_i ||H_i||_F^2] / (2 Tr H), which is <= 1 at every linearly stable eta.

    Args:
      Hs: (n, p, p) per-sample Hessians; eta: learning rate; batch_size, replacement: the SGD.

    Returns:
      Scalar ratio.
    """
    Hs = _check_hessians(Hs)
    c = sampling_constant(Hs.shape[0], batch_size, replacement)
    H = Hs.mean(0)
    quad = (1 - c) * jnp.sum(H * H) + c * jnp.mean(jnp.sum(Hs * Hs, axis=(1, 2)))
    return eta * quad / (2 * jnp.trace(H))


def criterion_1d(h: ArrayLike, eta: float, batch_size: int, replacement: bool = True) -> float:
    """The 1-D second-moment factor of Wu, Ma & E (2018): (1 - eta a)^2 + eta^2 c_{B,n} s^2 with
    sharpness a = mean h_i and non-uniformity s^2 = var h_i (population variance); the minimum is
    linearly stable iff it is <= 1.

    Args:
      h: (n,) per-sample curvatures; eta: learning rate; batch_size, replacement: the SGD.

    Returns:
      The factor.
    """
    h = np.asarray(h, dtype=float)
    c = sampling_constant(h.size, batch_size, replacement)
    return float((1 - eta * h.mean()) ** 2 + eta**2 * c * h.var())


def stable_1d(h: ArrayLike, eta: float, batch_size: int, replacement: bool = True) -> bool:
    """Exact 1-D linear stability (Wu, Ma & E 2018): :func:`criterion_1d` <= 1.

    Args:
      h: (n,) per-sample curvatures; eta, batch_size, replacement: as in :func:`criterion_1d`.

    Returns:
      Whether the minimum is linearly stable.
    """
    return criterion_1d(h, eta, batch_size, replacement) <= 1.0


def linearized_sgd_sq_norms(Hs: ArrayLike, eta: float, batch_size: int, replacement: bool,
                            key: jax.Array, delta0: jax.Array, steps: int) -> jax.Array:
    """Monte Carlo of the linearised SGD Delta_{t+1} = (I - eta H_I) Delta_t (module docstring).
    The mean over runs estimates Tr T^t(S_0) when the rows of ``delta0`` have second moment S_0.

    Args:
      Hs: (n, p, p) per-sample Hessians; eta: learning rate; batch_size, replacement: the SGD.
      key: JAX key, one split per run.
      delta0: (runs, p) starting deviations.
      steps: t_max.

    Returns:
      (runs, steps + 1) squared norms ||Delta_t||^2, t = 0..steps.
    """
    Hs = jnp.asarray(_check_hessians(Hs))
    n, p, _ = Hs.shape
    sampling_constant(n, batch_size, replacement)  # validates B

    def one_run(key, d0):
        def step(d, k):
            idx = _draw_batch(k, n, batch_size, replacement)
            d = d - eta * Hs[idx].mean(0) @ d
            return d, d @ d
        _, sq = lax.scan(step, d0, jax.random.split(key, steps))
        return jnp.concatenate([jnp.array([d0 @ d0]), sq])

    keys = jax.random.split(key, delta0.shape[0])
    return jax.jit(jax.vmap(one_run))(keys, delta0)


def _draw_batch(key, n, batch_size, replacement):
    if replacement:
        return jax.random.randint(key, (batch_size,), 0, n)
    return jax.random.choice(key, n, (batch_size,), replace=False)


# ============================================================================ 2018 one-dimensional toy


def toy_sample_losses(x: ArrayLike) -> jax.Array:
    """The two per-sample losses of the Wu, Ma & E (2018) toy (their ``toy_example.py``):
    f1 = min(x^2, 0.1 (x-1)^2), f2 = min(x^2, 1.9 (x-1)^2); global minima x = 0 (a = 2, s = 0) and
    x = 1 (a = 2, s = 1.8).

    Args:
      x: scalar position.

    Returns:
      (2,) the losses (f1, f2).
    """
    return jnp.stack([jnp.minimum(x**2, 0.1 * (x - 1) ** 2), jnp.minimum(x**2, 1.9 * (x - 1) ** 2)])


@jax.jit
def toy_hessians(x: ArrayLike) -> jax.Array:
    """Per-sample curvatures f_i''(x) of the 2018 toy (autodiff), for :func:`second_moment_operator`.

    Args:
      x: scalar position.

    Returns:
      (2, 1, 1) Hessians.
    """
    return jax.vmap(lambda i: jax.hessian(lambda z: toy_sample_losses(z)[i])(jnp.asarray(x, dtype=float)))(
        jnp.arange(2)).reshape(2, 1, 1)


@partial(jax.jit, static_argnames=("steps", "sgd"))
def toy_run(x0: ArrayLike, eta: ArrayLike, steps: int, keys: jax.Array, sgd: bool = True) -> jax.Array:
    """GD (mean gradient) or SGD with B = 1 on the 2018 toy, one run per key (vmapped; jitted once
    per (steps, sgd, number of keys)).

    Args:
      x0: start; eta: learning rate; steps: steps per run.
      keys: (runs, 2) JAX keys (SGD batches; GD ignores them).
      sgd: SGD with B = 1, or GD.

    Returns:
      (runs,) final positions.
    """
    grads = jax.jacfwd(toy_sample_losses)

    def one(key):
        def step(x, k):
            g = grads(x)
            g = g[jax.random.randint(k, (), 0, 2)] if sgd else g.mean()
            return x - eta * g, None
        return lax.scan(step, jnp.asarray(x0, dtype=float), jax.random.split(key, steps))[0]

    return jax.vmap(one)(keys)


# ============================================================================ diagonal linear network


def dln_predict(theta: jax.Array, x: jax.Array) -> jax.Array:
    """Diagonal linear network f(theta, x) = <a * b, x> (Wu & Su 2023, the diagonal-net model).

    Args:
      theta: (2d,) parameters (a, b); x: (d,) one input.

    Returns:
      Scalar output.
    """
    a, b = jnp.split(theta, 2)
    return jnp.dot(a * b, x, precision=_HI)


def dln_beta(theta: jax.Array) -> jax.Array:
    """The diagonal net's linear predictor beta = a * b.

    Args:
      theta: (2d,) parameters (a, b).

    Returns:
      (d,) beta.
    """
    a, b = jnp.split(theta, 2)
    return a * b


def dln_trace(theta: jax.Array, X: jax.Array) -> jax.Array:
    """Exact Tr G = sum_j (a_j^2 + b_j^2) sigma_j^2, sigma_j^2 = (1/n) sum_i x_ij^2 (from
    g_i = (b * x_i, a * x_i)); by AM-GM Tr G >= 2 min_j sigma_j^2 ||beta||_1, the diagonal net's
    sharpness-norm equivalence (Wu & Su 2023).

    Args:
      theta: (2d,) parameters (a, b); X: (n, d) inputs.

    Returns:
      Scalar Tr G.
    """
    a, b = jnp.split(theta, 2)
    return jnp.sum((a**2 + b**2) * jnp.mean(X**2, axis=0))


def dln_balance(theta: jax.Array) -> jax.Array:
    """Balancedness r(theta) = sum (a^2 + b^2) / (2 sum |a b|) >= 1, with equality iff |a_j| = |b_j|
    on the support (the balancing effect of Wu & Su 2023).

    Args:
      theta: (2d,) parameters (a, b).

    Returns:
      Scalar r.
    """
    a, b = jnp.split(theta, 2)
    return jnp.sum(a**2 + b**2) / (2 * jnp.sum(jnp.abs(a * b)))


def dln_init(key: jax.Array, d: int, scale: float = 1.0) -> jax.Array:
    """a, b ~ N(0, scale^2 I_d) i.i.d. (the paper's setting, as transcribed, uses scale 1).

    Args:
      key: JAX key; d: input dimension; scale: standard deviation.

    Returns:
      (2d,) parameters (a, b).
    """
    return scale * jax.random.normal(key, (2 * d,))


def dln_imbalanced_init(key: jax.Array, d: int, r0: float, std: float) -> jax.Array:
    """The balancing experiment's init: a ~ N(0, std^2 I), b = c sign(xi) a with
    c = r0 + sqrt(r0^2 - 1), so that r(theta_0) = r0 exactly.

    Args:
      key: JAX key; d: input dimension; r0: balancedness (>= 1); std: standard deviation of a.

    Returns:
      (2d,) parameters (a, b).
    """
    if r0 < 1:
        raise ValueError(f"r0 must be >= 1, got {r0}")
    ka, ks = jax.random.split(key)
    a = std * jax.random.normal(ka, (d,))
    c = r0 + np.sqrt(r0**2 - 1)
    return jnp.concatenate([a, c * jnp.sign(jax.random.normal(ks, (d,))) * a])


def gaussian_sparse_regression(key: jax.Array, n: int, d: int,
                               sparsity: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The diagonal net's data: x ~ N(0, I_d) (our choice), noiseless y = <beta*, x> with
    beta* = (1, ..., 1, 0, ..., 0) (``sparsity`` ones, the paper's target as transcribed).

    Args:
      key: JAX key; n: samples; d: dimension; sparsity: ones in beta*.

    Returns:
      (X (n, d), y (n,), beta* (d,)).
    """
    if not 1 <= sparsity <= d:
        raise ValueError(f"sparsity must be in [1, d={d}], got {sparsity}")
    X = jax.random.normal(key, (n, d))
    beta = jnp.zeros(d).at[:sparsity].set(1.0)
    return X, X @ beta, beta


# ============================================================================ two-layer ReLU network


def relu_predict(theta: jax.Array, x: jax.Array) -> jax.Array:
    """Bias-free two-layer ReLU network f(theta, x) = sum_j a_j relu(w_j . x) (Wu & Su 2023).

    Args:
      theta: (m (d + 1),) parameters (a, W.ravel()), W of shape (m, d); x: (d,) one input.

    Returns:
      Scalar output.
    """
    d = x.shape[-1]
    m = theta.shape[0] // (d + 1)
    a, W = theta[:m], theta[m:].reshape(m, d)
    return jnp.dot(a, jax.nn.relu(jnp.dot(W, x, precision=_HI)), precision=_HI)


def relu_split(theta: jax.Array, d: int) -> tuple[jax.Array, jax.Array]:
    """The ReLU net's output weights and hidden weights from its flat parameter vector.

    Args:
      theta: (m (d + 1),) parameters (a, W.ravel()); d: input dimension.

    Returns:
      (a (m,), W (m, d)).
    """
    m = theta.shape[0] // (d + 1)
    return theta[:m], theta[m:].reshape(m, d)


def relu_path_norm(theta: jax.Array, d: int) -> jax.Array:
    """Path norm ||theta||_P = sum_j |a_j| ||w_j|| (Wu & Su 2023's norm for the ReLU net).

    Args:
      theta: (m (d + 1),) parameters; d: input dimension.

    Returns:
      Scalar path norm.
    """
    a, W = relu_split(theta, d)
    return jnp.sum(jnp.abs(a) * jnp.linalg.norm(W, axis=1))


def relu_trace(theta: jax.Array, X: jax.Array) -> jax.Array:
    """Exact Tr G = sum_j [(1/n) sum_i relu(w_j.x_i)^2 + a_j^2 (1/n) sum_i 1{w_j.x_i > 0} ||x_i||^2];
    for ||x||^2 = d and population averages, Tr G ~ 1/2 sum_j (||w_j||^2 + d a_j^2) >= sqrt(d) ||theta||_P
    (the ReLU net's sharpness-path-norm equivalence, Wu & Su 2023).

    Args:
      theta: (m (d + 1),) parameters; X: (n, d) inputs.

    Returns:
      Scalar Tr G.
    """
    a, W = relu_split(theta, X.shape[1])
    Z = jnp.matmul(X, W.T, precision=_HI)
    active = (Z > 0).astype(X.dtype)
    return jnp.mean(jnp.sum(jax.nn.relu(Z) ** 2, axis=1)) + jnp.mean(active @ (a**2) * jnp.sum(X**2, 1))


def relu_init(key: jax.Array, m: int, d: int, w_std: float) -> jax.Array:
    """The paper's "large initialisation": a_j ~ N(0, 1), w_j ~ N(0, w_std^2 I_d).

    Args:
      key: JAX key; m: width; d: input dimension; w_std: standard deviation of w_j's entries.

    Returns:
      (m (d + 1),) parameters (a, W.ravel()).
    """
    ka, kw = jax.random.split(key)
    return jnp.concatenate([jax.random.normal(ka, (m,)), w_std * jax.random.normal(kw, (m * d,))])


def sphere_inputs(key: jax.Array, n: int, d: int) -> jax.Array:
    """Inputs x ~ Unif(sqrt(d) S^{d-1}) (the ReLU experiment's input distribution).

    Args:
      key: JAX key; n: samples; d: dimension.

    Returns:
      (n, d) inputs of norm sqrt(d).
    """
    X = jax.random.normal(key, (n, d))
    return np.sqrt(d) * X / jnp.linalg.norm(X, axis=1, keepdims=True)


def relu_teacher(key: jax.Array, k: int, d: int) -> jax.Array:
    """Teacher directions v_i ~ Unif(S^{d-1}) of f*(x) = sum_i relu(v_i . x).

    Args:
      key: JAX key; k: teacher neurons; d: dimension.

    Returns:
      (k, d) unit rows.
    """
    V = jax.random.normal(key, (k, d))
    return V / jnp.linalg.norm(V, axis=1, keepdims=True)


def relu_teacher_labels(V: jax.Array, X: jax.Array) -> jax.Array:
    """Teacher labels f*(x_i) = sum_k relu(v_k . x_i) of the ReLU experiment.

    Args:
      V: (k, d) teacher directions; X: (n, d) inputs.

    Returns:
      (n,) labels.
    """
    return jnp.sum(jax.nn.relu(jnp.matmul(X, V.T, precision=_HI)), axis=1)


# ============================================================================ MLP (2018 companion)


def mlp_init(key: jax.Array, widths: tuple[int, ...]) -> jax.Array:
    """PyTorch-default-like init of the 2018 companion's MLP: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Args:
      key: JAX key; widths: (d_in, h_1, ..., d_out).

    Returns:
      (P,) flat parameters, layer by layer (W_l.ravel(), b_l).
    """
    parts = []
    for k, (fan_in, fan_out) in zip(jax.random.split(key, len(widths) - 1), zip(widths[:-1], widths[1:])):
        bound = 1.0 / np.sqrt(fan_in)
        parts.append(jax.random.uniform(k, ((fan_in + 1) * fan_out,), minval=-bound, maxval=bound))
    return jnp.concatenate(parts)


def mlp_apply(theta: jax.Array, x: jax.Array, widths: tuple[int, ...]) -> jax.Array:
    """ReLU MLP with layer widths (d_in, h_1, ..., d_out) on one sample (the 2018 companion's net).

    Args:
      theta: (P,) flat parameters (:func:`mlp_init`); x: (d_in,) input; widths: the layer widths.

    Returns:
      (d_out,) output.
    """
    start = 0
    for l, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        W = theta[start:start + fan_in * fan_out].reshape(fan_out, fan_in)
        b = theta[start + fan_in * fan_out:start + (fan_in + 1) * fan_out]
        start += (fan_in + 1) * fan_out
        x = jnp.dot(W, x, precision=_HI) + b
        if l < len(widths) - 2:
            x = jax.nn.relu(x)
    return x


# ============================================================================ losses and sharpness


def full_loss(predict: Callable, theta: jax.Array, X: jax.Array, Y: jax.Array) -> jax.Array:
    """The loss of the paper L(theta) = (1/2n) sum_i ||f(theta, x_i) - y_i||^2 (one convention for the
    whole module, so that 2/eta means what the theory says).

    Args:
      predict: f(theta, x); theta: (p,); X: (n, d); Y: (n,) or (n, k).

    Returns:
      Scalar loss.
    """
    R = jax.vmap(predict, in_axes=(None, 0))(theta, X) - Y
    return 0.5 * jnp.mean(jnp.sum(R.reshape(X.shape[0], -1) ** 2, axis=1))


@partial(jax.jit, static_argnums=0)
def gauss_newton_sharpness(predict: Callable, theta: jax.Array, X: jax.Array) -> linalg.Sharpness:
    """The sharpness measures of Wu & Su (2023), Tr G, ||G||_F and lambda_max(G) of the Gauss-Newton
    matrix G = (1/n) sum_i J_i^T J_i (= H at an interpolating minimum), exactly from the eigenvalues
    of the (n k, n k) Gram matrix J J^T / n (jitted: one compilation per model and shape).

    Args:
      predict: f(theta, x); theta: (p,); X: (n, d).

    Returns:
      ``linalg.Sharpness`` (trace, frobenius, lambda_max), scalars.
    """
    return linalg.sharpness(linalg.gram(linalg.output_jacobian(predict, theta, X)))


def hessian_lambda_max(predict: Callable, theta: jax.Array, X: jax.Array, Y: jax.Array,
                       key: jax.Array, num_steps: int = 40) -> jax.Array:
    """The 2018 sharpness: lambda_max of the Hessian of :func:`full_loss`, by Lanczos on
    Hessian-vector products (the 2018 code uses power iteration).

    Args:
      predict: f(theta, x); theta: (p,); X: (n, d); Y: (n,) or (n, k).
      key: JAX key of the start vector; num_steps: Lanczos steps (at most p).

    Returns:
      Scalar top Ritz value.
    """
    v0 = jax.random.normal(key, theta.shape, theta.dtype)
    return _top_ritz(predict, "hessian", min(num_steps, theta.shape[0]), theta, X, Y, v0)


def nonuniformity(predict: Callable, theta: jax.Array, X: jax.Array, Y: jax.Array, key: jax.Array,
                  num_steps: int = 40) -> jax.Array:
    """Wu, Ma & E (2018) non-uniformity sqrt(lambda_max(Sigma)), Sigma = (1/n) sum_i H_i^2 - H^2 with
    per-sample loss Hessians H_i (per-sample Hessian-vector products; Lanczos on Sigma).

    Args:
      predict: f(theta, x); theta: (p,); X: (n, d); Y: (n,) or (n, k).
      key: JAX key of the start vector; num_steps: Lanczos steps (at most p).

    Returns:
      Scalar non-uniformity.
    """
    v0 = jax.random.normal(key, theta.shape, theta.dtype)
    top = _top_ritz(predict, "variance", min(num_steps, theta.shape[0]), theta, X, Y, v0)
    return jnp.sqrt(jnp.maximum(top, 0.0))


@partial(jax.jit, static_argnums=(0, 1, 2))
def _top_ritz(predict, which, num_steps, theta, X, Y, v0):
    def sample_hvp(v, x, y):
        return linalg.hvp(lambda t: 0.5 * jnp.sum((predict(t, x) - y) ** 2), theta, v)

    def mean_hvp(v):
        return linalg.hvp(lambda t: full_loss(predict, t, X, Y), theta, v)

    def variance_matvec(v):
        Hv = jax.vmap(sample_hvp, in_axes=(None, 0, 0))(v, X, Y)
        return jax.vmap(sample_hvp)(Hv, X, Y).mean(0) - mean_hvp(mean_hvp(v))

    matvec = mean_hvp if which == "hessian" else variance_matvec
    return linalg.lanczos_top_eigenvalues(matvec, v0, num_steps)[0]


# ============================================================================ trainers


class Run(NamedTuple):
    """Outcome of a batch of runs (leading axis = run)."""

    theta: jax.Array  # (R, p) final parameters (frozen at the last finite iterate if diverged)
    loss: jax.Array  # (R, T // record_every + 1) full-batch training loss at recorded steps
    diverged: jax.Array  # (R,) bool: loss became non-finite or exceeded blowup x the initial loss
    final_loss: jax.Array  # (R,) training loss at theta


def warmup_lr(t: ArrayLike, lr: ArrayLike, lr0: ArrayLike, warmup_steps: ArrayLike) -> jax.Array:
    """Geometric warm-up lr0 (lr / lr0)^(t / warmup_steps) for t < warmup_steps, then constant lr (our
    recipe; the paper's schedule is not known).

    Args:
      t: step; lr: final learning rate; lr0: first learning rate; warmup_steps: length (0: none).

    Returns:
      The learning rate at step t (broadcast shape of the inputs).
    """
    frac = jnp.clip(t / jnp.maximum(warmup_steps, 1), 0.0, 1.0)
    return lr0 * (lr / lr0) ** frac


def _train_one(predict, batch_size, replacement, steps, warmup_steps, record_every, blowup,
               theta0, lr, lr0, key, X, Y):
    n = X.shape[0]
    loss_fn = partial(full_loss, predict)
    L0 = loss_fn(theta0, X, Y)

    def batch_grad(theta, k):
        if batch_size is None:
            return jax.grad(loss_fn)(theta, X, Y)
        idx = _draw_batch(k, n, batch_size, replacement)
        return jax.grad(loss_fn)(theta, X[idx], Y[idx])

    def step(carry, t_k):
        theta, bad = carry
        t, k = t_k
        new = theta - warmup_lr(t, lr, lr0, warmup_steps) * batch_grad(theta, k)
        bad = bad | ~jnp.all(jnp.isfinite(new))
        return (jnp.where(bad, theta, new), bad), None

    def chunk(carry, c):
        ts = c * record_every + jnp.arange(record_every)
        keys = jax.random.split(jax.random.fold_in(key, c), record_every)
        (theta, bad), _ = lax.scan(step, carry, (ts, keys))
        L = loss_fn(theta, X, Y)
        bad = bad | ~jnp.isfinite(L) | (L > blowup * L0)
        return (theta, bad), jnp.where(bad, jnp.inf, L)

    (theta, bad), losses = lax.scan(chunk, (theta0, jnp.array(False)), jnp.arange(steps // record_every))
    return theta, jnp.concatenate([L0[None], losses]), bad, loss_fn(theta, X, Y)


def train(predict: Callable, theta0: ArrayLike, X: ArrayLike, Y: ArrayLike, lrs: ArrayLike, *,
          steps: int, batch_size: int | None, key: jax.Array, lr0: ArrayLike | None = None,
          warmup_steps: int = 0, record_every: int = 1000, replacement: bool = True,
          blowup: float = 1e8) -> Run:
    """GD (``batch_size=None``) or SGD theta -= (eta/B) sum_{i in I} grad l_i on
    L = (1/2n) sum ||f - y||^2 (module docstring), all runs vmapped in one jitted trainer (compiled
    once per static configuration). Divergence is recorded per run, never raised.

    Args:
      predict: f(theta, x).
      theta0: (R, p) or (p,) starting points.
      X: (n, d) inputs; Y: (n,) or (n, k) targets.
      lrs: (R,) learning rates.
      steps: steps per run, a multiple of ``record_every``.
      batch_size: B, or None for GD.
      key: JAX key, one split per run.
      lr0: optional (R,) warm-up start (:func:`warmup_lr`), capped at ``lrs``.
      warmup_steps: warm-up length.
      record_every: full-batch loss recorded every this many steps.
      replacement: the sampling scheme of the batches.
      blowup: a run diverges when its loss exceeds ``blowup`` times the initial loss.

    Returns:
      :class:`Run` with leading axis R.
    """
    theta0, lrs = jnp.atleast_2d(theta0), jnp.atleast_1d(jnp.asarray(lrs, dtype=theta0.dtype))
    lr0 = lrs if lr0 is None else jnp.minimum(jnp.atleast_1d(jnp.asarray(lr0, dtype=lrs.dtype)), lrs)
    if theta0.shape[0] != lrs.shape[0] or lr0.shape != lrs.shape:
        raise ValueError(f"need one lr (and lr0) per run: theta0 {theta0.shape}, lrs {lrs.shape}, lr0 {lr0.shape}")
    if steps < record_every or steps % record_every:
        raise ValueError(f"steps ({steps}) must be a positive multiple of record_every ({record_every})")
    if not bool(jnp.all(lrs > 0)):
        raise ValueError(f"learning rates must be positive, got {lrs}")
    if batch_size is not None:
        sampling_constant(X.shape[0], batch_size, replacement)
    keys = jax.random.split(key, lrs.shape[0])
    run = _compiled_trainer(predict, batch_size, replacement, steps, warmup_steps, record_every, float(blowup))
    return Run(*run(theta0, lrs, lr0, keys, X, Y))


@lru_cache(maxsize=64)
def _compiled_trainer(predict, batch_size, replacement, steps, warmup_steps, record_every, blowup):
    """One jitted, vmapped trainer per static configuration, reused by repeated :func:`train` calls."""
    one = partial(_train_one, predict, batch_size, replacement, steps, warmup_steps, record_every, blowup)
    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, None, None)))


def perturbation_growth(predict: Callable, theta: jax.Array, X: jax.Array, Y: jax.Array, lr: float, *,
                        direction: jax.Array, eps: float, steps: int, batch_size: int | None,
                        key: jax.Array, record_every: int = 10) -> jax.Array:
    """Perturbation test of linear stability: max_t L(theta_t) / L(theta_0) over ``steps`` constant-lr
    steps from theta* + eps * direction / |direction|. A linearly stable minimum gives a ratio of
    order one; an unstable one (even if the loss had hit the float floor and frozen the iterate)
    grows exponentially.

    Args:
      predict: f(theta, x); theta: (p,) the minimum; X: (n, d); Y: (n,) or (n, k); lr: learning rate.
      direction: (p,) kick direction; eps: kick size; steps: steps (multiple of ``record_every``).
      batch_size: B or None (GD); key: JAX key; record_every: loss recording interval.

    Returns:
      Scalar growth ratio.
    """
    start = theta + eps * direction / jnp.linalg.norm(direction)
    run = train(predict, start[None], X, Y, jnp.array([lr]), steps=steps, batch_size=batch_size, key=key,
                record_every=record_every, blowup=jnp.inf)
    return jnp.max(run.loss[0, 1:]) / run.loss[0, 0]
