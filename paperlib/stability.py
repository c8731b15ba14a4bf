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

from paperlib import linalg

_HI = lax.Precision.HIGHEST

# ============================================================================ linear stability theory


def sampling_constant(n: int, batch_size: int, replacement: bool) -> float:
    """c_{B,n}: the factor in front of the per-sample variance in the second-moment operator."""
    if not (isinstance(n, (int, np.integer)) and isinstance(batch_size, (int, np.integer))):
        raise ValueError(f"n and batch_size must be integers, got {n!r}, {batch_size!r}")
    if n < 1 or batch_size < 1 or (not replacement and batch_size > n):
        raise ValueError(f"need n >= 1 and 1 <= B (<= n without replacement); got n={n}, B={batch_size}")
    if replacement:
        return 1.0 / batch_size
    return 0.0 if n == 1 else (n - batch_size) / (batch_size * (n - 1))


def rank_one_hessians(g):
    """H_i = g_i g_i^T for per-sample output gradients g (n, p) -> (n, p, p), float64 numpy (the
    stability theory below is small dense linear algebra: numpy avoids one XLA compile per shape)."""
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


def second_moment_operator(Hs, eta, batch_size: int, replacement: bool = True):
    """The (p^2, p^2) matrix of T acting on vec(S) (module docstring)."""
    Hs = _check_hessians(Hs)
    n, p, _ = Hs.shape
    c = sampling_constant(n, batch_size, replacement)
    A = np.eye(p) - eta * Hs.mean(0)
    HH, EHH = _kron_moments(Hs)
    return np.kron(A, A) + eta**2 * c * (EHH - HH)


def spectral_radius(T):
    """Spectral radius of a symmetric operator matrix (T is self-adjoint, so eigvalsh is exact)."""
    return np.max(np.abs(np.linalg.eigvalsh(np.asarray(T, dtype=np.float64))))


def max_stable_lr(Hs, batch_size: int, replacement: bool = True, rtol: float = 1e-12) -> float:
    """Largest eta with spectral radius of T <= 1: eta* = 2 / mu_max of the pencil (Q, R) restricted
    to the range of H (null directions of H are left unchanged by every H_I)."""
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


def trace_bound(eta, n: int, batch_size: int, replacement: bool = True):
    """Necessary condition for rank-one H_i: Tr H <= 2 / (c_{B,n} eta) (inf for GD, where c = 0)."""
    c = sampling_constant(n, batch_size, replacement)
    return np.inf if c == 0 else 2.0 / (c * np.asarray(eta))


def trace_condition_ratio(Hs, eta, batch_size: int, replacement: bool = True):
    """eta [(1-c)||H||_F^2 + c E_i ||H_i||_F^2] / (2 Tr H): <= 1 at every linearly stable eta (S = I)."""
    Hs = _check_hessians(Hs)
    c = sampling_constant(Hs.shape[0], batch_size, replacement)
    H = Hs.mean(0)
    quad = (1 - c) * jnp.sum(H * H) + c * jnp.mean(jnp.sum(Hs * Hs, axis=(1, 2)))
    return eta * quad / (2 * jnp.trace(H))


def criterion_1d(h, eta, batch_size: int, replacement: bool = True) -> float:
    """The 1-D second-moment factor of Wu, Ma & E (2018): (1 - eta a)^2 + eta^2 c_{B,n} s^2 with a = mean h_i,
    s^2 = var h_i (population variance over the n samples); the minimum is linearly stable iff it is <= 1."""
    h = np.asarray(h, dtype=float)
    c = sampling_constant(h.size, batch_size, replacement)
    return float((1 - eta * h.mean()) ** 2 + eta**2 * c * h.var())


def stable_1d(h, eta, batch_size: int, replacement: bool = True) -> bool:
    """Exact 1-D stability (Wu, Ma & E 2018): :func:`criterion_1d` <= 1."""
    return criterion_1d(h, eta, batch_size, replacement) <= 1.0


def linearized_sgd_sq_norms(Hs, eta, batch_size: int, replacement: bool, key, delta0, steps: int):
    """Monte Carlo of the linearised SGD Delta_{t+1} = (I - eta H_I) Delta_t from each row of delta0
    (runs, p); returns ||Delta_t||^2 per run for t = 0..steps, shape (runs, steps + 1). Its mean over runs
    estimates Tr T^t(S_0) when the rows are drawn with second moment S_0."""
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


def toy_sample_losses(x):
    """The two per-sample losses of Wu, Ma & E (2018, toy_example.py): f1 = min(x^2, 0.1 (x-1)^2),
    f2 = min(x^2, 1.9 (x-1)^2); global minima x = 0 (a = 2, s = 0) and x = 1 (a = 2, s = 1.8)."""
    return jnp.stack([jnp.minimum(x**2, 0.1 * (x - 1) ** 2), jnp.minimum(x**2, 1.9 * (x - 1) ** 2)])


@jax.jit
def toy_hessians(x):
    """Per-sample curvatures of the toy at x as (2, 1, 1) Hessians (autodiff), for :func:`second_moment_operator`."""
    return jax.vmap(lambda i: jax.hessian(lambda z: toy_sample_losses(z)[i])(jnp.asarray(x, dtype=float)))(
        jnp.arange(2)).reshape(2, 1, 1)


@partial(jax.jit, static_argnames=("steps", "sgd"))
def toy_run(x0, eta, steps: int, keys, sgd: bool = True):
    """Final x of GD (mean gradient) or SGD with B = 1 on the toy, one run per key (vmapped, jitted
    once per (steps, sgd))."""
    grads = jax.jacfwd(toy_sample_losses)

    def one(key):
        def step(x, k):
            g = grads(x)
            g = g[jax.random.randint(k, (), 0, 2)] if sgd else g.mean()
            return x - eta * g, None
        return lax.scan(step, jnp.asarray(x0, dtype=float), jax.random.split(key, steps))[0]

    return jax.vmap(one)(keys)


# ============================================================================ diagonal linear network


def dln_predict(theta, x):
    """f(theta, x) = <a * b, x>, theta = (a, b) in R^{2d}."""
    a, b = jnp.split(theta, 2)
    return jnp.dot(a * b, x, precision=_HI)


def dln_beta(theta):
    a, b = jnp.split(theta, 2)
    return a * b


def dln_trace(theta, X):
    """Exact Tr G = sum_j (a_j^2 + b_j^2) sigma_j^2, sigma_j^2 = (1/n) sum_i x_ij^2."""
    a, b = jnp.split(theta, 2)
    return jnp.sum((a**2 + b**2) * jnp.mean(X**2, axis=0))


def dln_balance(theta):
    """r(theta) = sum (a^2 + b^2) / (2 sum |a b|) >= 1, equality iff |a_j| = |b_j| on the support."""
    a, b = jnp.split(theta, 2)
    return jnp.sum(a**2 + b**2) / (2 * jnp.sum(jnp.abs(a * b)))


def dln_init(key, d: int, scale: float = 1.0):
    """a, b ~ N(0, scale^2 I_d) i.i.d. (the paper's setting uses scale 1)."""
    return scale * jax.random.normal(key, (2 * d,))


def dln_imbalanced_init(key, d: int, r0: float, std: float):
    """a ~ N(0, std^2 I), b = c sign(xi) a with c = r0 + sqrt(r0^2 - 1), so r(theta_0) = r0 exactly."""
    if r0 < 1:
        raise ValueError(f"r0 must be >= 1, got {r0}")
    ka, ks = jax.random.split(key)
    a = std * jax.random.normal(ka, (d,))
    c = r0 + np.sqrt(r0**2 - 1)
    return jnp.concatenate([a, c * jnp.sign(jax.random.normal(ks, (d,))) * a])


def gaussian_sparse_regression(key, n: int, d: int, sparsity: int):
    """x ~ N(0, I_d), y = <beta*, x> with beta* = (1, ..., 1, 0, ..., 0) (``sparsity`` ones)."""
    if not 1 <= sparsity <= d:
        raise ValueError(f"sparsity must be in [1, d={d}], got {sparsity}")
    X = jax.random.normal(key, (n, d))
    beta = jnp.zeros(d).at[:sparsity].set(1.0)
    return X, X @ beta, beta


# ============================================================================ two-layer ReLU network


def relu_predict(theta, x):
    """f(theta, x) = sum_j a_j relu(w_j . x), theta = (a, W.ravel()), W of shape (m, d), d = x.size."""
    d = x.shape[-1]
    m = theta.shape[0] // (d + 1)
    a, W = theta[:m], theta[m:].reshape(m, d)
    return jnp.dot(a, jax.nn.relu(jnp.dot(W, x, precision=_HI)), precision=_HI)


def relu_split(theta, d: int):
    m = theta.shape[0] // (d + 1)
    return theta[:m], theta[m:].reshape(m, d)


def relu_path_norm(theta, d: int):
    """||theta||_P = sum_j |a_j| ||w_j||."""
    a, W = relu_split(theta, d)
    return jnp.sum(jnp.abs(a) * jnp.linalg.norm(W, axis=1))


def relu_trace(theta, X):
    """Exact Tr G = sum_j [(1/n) sum_i relu(w_j.x_i)^2 + a_j^2 (1/n) sum_i 1{w_j.x_i > 0} ||x_i||^2]."""
    a, W = relu_split(theta, X.shape[1])
    Z = jnp.matmul(X, W.T, precision=_HI)
    active = (Z > 0).astype(X.dtype)
    return jnp.mean(jnp.sum(jax.nn.relu(Z) ** 2, axis=1)) + jnp.mean(active @ (a**2) * jnp.sum(X**2, 1))


def relu_init(key, m: int, d: int, w_std: float):
    """a_j ~ N(0, 1), w_j ~ N(0, w_std^2 I_d) ("large initialisation")."""
    ka, kw = jax.random.split(key)
    return jnp.concatenate([jax.random.normal(ka, (m,)), w_std * jax.random.normal(kw, (m * d,))])


def sphere_inputs(key, n: int, d: int):
    """x ~ Unif(sqrt(d) S^{d-1})."""
    X = jax.random.normal(key, (n, d))
    return np.sqrt(d) * X / jnp.linalg.norm(X, axis=1, keepdims=True)


def relu_teacher(key, k: int, d: int):
    """Teacher directions v_i ~ Unif(S^{d-1}) of f*(x) = sum_i relu(v_i . x), as rows (k, d)."""
    V = jax.random.normal(key, (k, d))
    return V / jnp.linalg.norm(V, axis=1, keepdims=True)


def relu_teacher_labels(V, X):
    return jnp.sum(jax.nn.relu(jnp.matmul(X, V.T, precision=_HI)), axis=1)


# ============================================================================ MLP (2018 companion)


def mlp_init(key, widths: tuple[int, ...]):
    """PyTorch-default-like init: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)); returns a flat vector."""
    parts = []
    for k, (fan_in, fan_out) in zip(jax.random.split(key, len(widths) - 1), zip(widths[:-1], widths[1:])):
        bound = 1.0 / np.sqrt(fan_in)
        parts.append(jax.random.uniform(k, ((fan_in + 1) * fan_out,), minval=-bound, maxval=bound))
    return jnp.concatenate(parts)


def mlp_apply(theta, x, widths: tuple[int, ...]):
    """ReLU MLP with layer widths (d_in, h_1, ..., d_out) on one sample."""
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


def full_loss(predict: Callable, theta, X, Y):
    """L = (1/2n) sum_i ||f(theta, x_i) - y_i||^2."""
    R = jax.vmap(predict, in_axes=(None, 0))(theta, X) - Y
    return 0.5 * jnp.mean(jnp.sum(R.reshape(X.shape[0], -1) ** 2, axis=1))


@partial(jax.jit, static_argnums=0)
def gauss_newton_sharpness(predict: Callable, theta, X) -> linalg.Sharpness:
    """Exact Tr G, ||G||_F, lambda_max(G) from the Gram matrix of the per-sample Jacobians (jitted:
    one compilation per model and shape)."""
    return linalg.sharpness(linalg.gram(linalg.output_jacobian(predict, theta, X)))


def hessian_lambda_max(predict: Callable, theta, X, Y, key, num_steps: int = 40):
    """Largest eigenvalue of the loss Hessian by Lanczos on Hessian-vector products."""
    v0 = jax.random.normal(key, theta.shape, theta.dtype)
    return _top_ritz(predict, "hessian", min(num_steps, theta.shape[0]), theta, X, Y, v0)


def nonuniformity(predict: Callable, theta, X, Y, key, num_steps: int = 40):
    """Wu-Ma-E non-uniformity sqrt(lambda_max(Sigma)), Sigma = (1/n) sum_i H_i^2 - H^2 with per-sample
    loss Hessians H_i (per-sample Hessian-vector products; Lanczos on Sigma)."""
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


def warmup_lr(t, lr, lr0, warmup_steps):
    """Geometric warm-up lr0 -> lr over ``warmup_steps``, then constant lr (our recipe; the paper's
    schedule is not known)."""
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


def train(predict: Callable, theta0, X, Y, lrs, *, steps: int, batch_size: int | None, key,
          lr0=None, warmup_steps: int = 0, record_every: int = 1000, replacement: bool = True,
          blowup: float = 1e8) -> Run:
    """GD (``batch_size=None``) or SGD with batch size B on L = (1/2n) sum ||f - y||^2, vmapped over
    runs: theta0 (R, p), lrs (R,), optional warm-up start lr0 (R,). ``steps`` must be a multiple of
    ``record_every``. Divergence is recorded per run, never raised."""
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


def perturbation_growth(predict: Callable, theta, X, Y, lr, *, direction, eps: float, steps: int,
                        batch_size: int | None, key, record_every: int = 10) -> jax.Array:
    """max_t L(theta_t) / L(theta_0) over ``steps`` constant-lr steps from theta* + eps * direction/|direction|.
    A linearly stable minimum gives a ratio of order one; an unstable one (even if the loss had hit the
    float floor and frozen the iterate) grows exponentially."""
    start = theta + eps * direction / jnp.linalg.norm(direction)
    run = train(predict, start[None], X, Y, jnp.array([lr]), steps=steps, batch_size=batch_size, key=key,
                record_every=record_every, blowup=jnp.inf)
    return jnp.max(run.loss[0, 1:]) / run.loss[0, 0]
