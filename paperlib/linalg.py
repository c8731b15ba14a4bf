"""Shared numerical linear algebra for curvature: Hessian-vector products, exact Hessians and
Gauss-Newton matrices for small models, power iteration, Lanczos (full re-orthogonalisation) with
Ritz values and quadrature weights, and Hutchinson trace estimation with a standard error.

Conventions. Parameters are one flat vector ``theta`` of shape (p,); a loss is a callable
``loss(theta) -> scalar`` and a model is ``f(theta, x) -> output`` for one sample ``x`` (a scalar or a
vector of k outputs). A *matvec* is any callable ``v -> A v`` for a symmetric (p, p) operator A.
Every routine runs in the dtype of its inputs; curvature checks want ``jax_enable_x64``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

_HI = lax.Precision.HIGHEST


# ------------------------------------------------------------------------- curvature operators


def hvp(loss: Callable, theta: jax.Array, v: jax.Array) -> jax.Array:
    """Hessian-vector product by forward-over-reverse differentiation (jvp of grad).

    Args:
      loss: ``theta -> scalar``.
      theta: (p,) point at which the Hessian is taken.
      v: (p,) direction.

    Returns:
      (p,) H(theta) v.
    """
    return jax.jvp(jax.grad(loss), (theta,), (v,))[1]


def hvp_operator(loss: Callable, theta: jax.Array) -> Callable[[jax.Array], jax.Array]:
    """The jitted Hessian matvec at a fixed point (input of the eigen-solvers and trace estimators below).

    Args:
      loss: ``theta -> scalar``.
      theta: (p,) point at which the Hessian is taken.

    Returns:
      A callable ``v -> H(theta) v`` mapping (p,) to (p,).
    """
    grad = jax.grad(loss)
    return jax.jit(lambda v: jax.jvp(grad, (theta,), (v,))[1])


def hessian(loss: Callable, theta: jax.Array) -> jax.Array:
    """Dense Hessian by ``jax.hessian`` (small models only: p^2 memory).

    Args:
      loss: ``theta -> scalar``.
      theta: (p,) point.

    Returns:
      (p, p) Hessian of ``loss`` at ``theta``.
    """
    return jax.hessian(loss)(theta)


def output_jacobian(f: Callable, theta: jax.Array, X: jax.Array) -> jax.Array:
    """Per-sample output Jacobians, rows d f(theta, x_i) / d theta.

    Args:
      f: model ``f(theta, x)`` for one sample, scalar or (k,) output.
      theta: (p,) parameters.
      X: (n, ...) samples.

    Returns:
      J of shape (n, p) for scalar outputs, (n, k, p) for k outputs.
    """
    return jax.vmap(jax.jacrev(f), in_axes=(None, 0))(theta, X)


def gauss_newton(J: jax.Array) -> jax.Array:
    """Gauss-Newton matrix G = (1/n) sum_i J_i^T J_i of the loss (1/2n) sum_i ||f(x_i) - y_i||^2.

    Args:
      J: (n, p) or (n, k, p) output Jacobian (:func:`output_jacobian`).

    Returns:
      (p, p) G; it equals the Hessian at an interpolating minimum.
    """
    n = J.shape[0]
    J = J.reshape(-1, J.shape[-1])
    return jnp.matmul(J.T, J, precision=_HI) / n


def gram(J: jax.Array) -> jax.Array:
    """The kernel K = J J^T / n, whose nonzero spectrum equals that of :func:`gauss_newton`, so
    sharpness measures come from it exactly and cheaply when n << p.

    Args:
      J: (n, p) or (n, k, p) output Jacobian.

    Returns:
      (n, n) K, or (nk, nk) for k outputs.
    """
    n = J.shape[0]
    J = J.reshape(-1, J.shape[-1])
    return jnp.matmul(J, J.T, precision=_HI) / n


class Sharpness(NamedTuple):
    """Trace, Frobenius norm and largest eigenvalue of a PSD curvature matrix."""

    trace: jax.Array
    frobenius: jax.Array
    lambda_max: jax.Array


def sharpness(A: ArrayLike) -> Sharpness:
    """Exact sharpness measures of a symmetric PSD matrix from its eigenvalues.

    Args:
      A: (d, d) symmetric PSD matrix (e.g. :func:`gram`).

    Returns:
      ``Sharpness``: Tr A, ||A||_F and lambda_max(A), scalars.
    """
    eig = jnp.linalg.eigvalsh(A)
    return Sharpness(jnp.sum(eig), jnp.sqrt(jnp.sum(eig**2)), eig[-1])


# ------------------------------------------------------------------------- iterative eigen-solvers


class PowerResult(NamedTuple):
    """Outcome of :func:`power_iteration`."""

    eigenvalue: jax.Array  # Rayleigh quotient at the last iterate
    vector: jax.Array  # unit vector
    residual: jax.Array  # ||A v - lambda v||
    iterations: jax.Array


def power_iteration(matvec: Callable, v0: jax.Array, max_iters: int = 1000,
                    tol: float = 1e-10) -> PowerResult:
    """Power iteration for the eigenvalue of largest magnitude (the PyHessian route to lambda_max).
    Jit-able (``lax.while_loop``).

    Args:
      matvec: ``v -> A v`` for a symmetric (p, p) A.
      v0: (p,) start vector (normalised here).
      max_iters: at most this many products.
      tol: stop when ||A v - lambda v|| <= tol |lambda|.

    Returns:
      ``PowerResult``: Rayleigh quotient, unit vector, residual, iterations used.
    """
    if max_iters < 1:
        raise ValueError(f"max_iters must be >= 1, got {max_iters}")
    v0 = v0 / jnp.linalg.norm(v0)

    def step(state):
        v, _, _, it = state
        w = matvec(v)
        lam = jnp.vdot(v, w)
        res = jnp.linalg.norm(w - lam * v)
        return w / jnp.linalg.norm(w), lam, res, it + 1

    def keep_going(state):
        _, lam, res, it = state
        return (it < max_iters) & (res > tol * jnp.abs(lam))

    zero = jnp.zeros((), v0.dtype)
    v, lam, res, it = lax.while_loop(keep_going, step, step((v0, zero, zero, 0)))
    return PowerResult(lam, v, res, it)


class LanczosResult(NamedTuple):
    """The tridiagonal T = Q A Q^T of :func:`lanczos` and its basis Q."""

    alphas: jax.Array  # (m,) diagonal of the tridiagonal T
    betas: jax.Array  # (m - 1,) off-diagonal of T
    basis: jax.Array  # (m, p) orthonormal Lanczos vectors


def lanczos(matvec: Callable, v0: jax.Array, num_steps: int) -> LanczosResult:
    """Lanczos tridiagonalisation with full re-orthogonalisation (two Gram-Schmidt passes), so that
    Q Q^T = I to round-off and Q A Q^T = T.

    Args:
      matvec: ``v -> A v`` for a symmetric (p, p) A.
      v0: (p,) start vector (normalised here).
      num_steps: m, with 1 <= m <= p.

    Returns:
      ``LanczosResult``: alphas (m,), betas (m - 1,), orthonormal basis Q (m, p).
    """
    p = v0.shape[0]
    if not 1 <= num_steps <= p:
        raise ValueError(f"num_steps must be in [1, p={p}], got {num_steps}")
    Q = jnp.zeros((num_steps, p), v0.dtype).at[0].set(v0 / jnp.linalg.norm(v0))

    def body(j, carry):
        Q, alphas, betas = carry
        w = matvec(Q[j])
        alpha = jnp.vdot(Q[j], w)
        mask = (jnp.arange(num_steps) <= j)[:, None]
        for _ in range(2):  # full re-orthogonalisation against every previous vector
            w = w - (mask * Q).T @ ((mask * Q) @ w)
        beta = jnp.linalg.norm(w)
        safe = jnp.where(beta > 0, beta, 1.0)
        Q = lax.cond(j + 1 < num_steps, lambda Q: Q.at[j + 1].set(w / safe), lambda Q: Q, Q)
        return Q, alphas.at[j].set(alpha), betas.at[j].set(beta)

    init = (Q, jnp.zeros(num_steps, v0.dtype), jnp.zeros(num_steps, v0.dtype))
    Q, alphas, betas = lax.fori_loop(0, num_steps, body, init)
    return LanczosResult(alphas, betas[:-1], Q)


def tridiagonal(alphas: jax.Array, betas: jax.Array) -> jax.Array:
    """The symmetric tridiagonal matrix T of a Lanczos run.

    Args:
      alphas: (m,) diagonal.
      betas: (m - 1,) off-diagonal.

    Returns:
      (m, m) T.
    """
    return jnp.diag(alphas) + jnp.diag(betas, 1) + jnp.diag(betas, -1)


class Ritz(NamedTuple):
    """Ritz values and Gauss-quadrature weights of a Lanczos run (:func:`ritz`)."""

    nodes: jax.Array  # Ritz values, ascending
    weights: jax.Array  # squared first components of T's eigenvectors (Gauss quadrature weights)


def _truncated_tridiagonal(result: LanczosResult, rtol: float):
    """T with the part after the first breakdown (beta_j <= rtol * max|alpha|: an invariant subspace was
    found and the later Lanczos vectors are round-off) decoupled, its diagonal set to alpha_0 (inside the
    spectrum) so that those rows carry zero quadrature weight and never become extreme Ritz values."""
    broke = jnp.cumsum(result.betas <= rtol * jnp.max(jnp.abs(result.alphas))) > 0
    dead = jnp.concatenate([jnp.zeros(1, bool), broke])
    return tridiagonal(jnp.where(dead, result.alphas[0], result.alphas), jnp.where(broke, 0.0, result.betas))


def ritz(result: LanczosResult, rtol: float = 1e-10) -> Ritz:
    """Ritz values and Gauss-quadrature weights of a Lanczos run (the building block of stochastic
    Lanczos quadrature: sum_k w_k g(nodes_k) approximates v0^T g(A) v0 / ||v0||^2). Safe when the run
    hit an invariant subspace (e.g. a rank-deficient batch Hessian with num_steps > rank): the Ritz
    values after the breakdown are discarded (zero weight, value alpha_0).

    Args:
      result: a :func:`lanczos` run with m steps.
      rtol: breakdown threshold, beta_j <= rtol * max|alpha|.

    Returns:
      ``Ritz``: (m,) nodes ascending and (m,) weights summing to 1.
    """
    eig, vec = jnp.linalg.eigh(_truncated_tridiagonal(result, rtol))
    return Ritz(eig, vec[0] ** 2)


def top_ritz_pair(result: LanczosResult, rtol: float = 1e-10) -> tuple[jax.Array, jax.Array]:
    """The approximate top eigenpair of a Lanczos run, breakdown-safe.

    Args:
      result: a :func:`lanczos` run with basis Q of shape (m, p).
      rtol: breakdown threshold as in :func:`ritz`.

    Returns:
      (largest Ritz value (), unit (p,) Ritz vector Q^T y).
    """
    eig, vec = jnp.linalg.eigh(_truncated_tridiagonal(result, rtol))
    u = result.basis.T @ vec[:, -1]
    return eig[-1], u / jnp.linalg.norm(u)


def lanczos_top_eigenvalues(matvec: Callable, v0: jax.Array, num_steps: int, k: int = 1) -> jax.Array:
    """Top Ritz values of a Lanczos run (the ``eigsh`` analogue on a matvec).

    Args:
      matvec: ``v -> A v`` for a symmetric (p, p) A.
      v0: (p,) start vector.
      num_steps: Lanczos steps m, 1 <= m <= p.
      k: how many values, k <= m.

    Returns:
      (k,) largest Ritz values, descending.
    """
    return ritz(lanczos(matvec, v0, num_steps)).nodes[::-1][:k]


# ------------------------------------------------------------------------- stochastic trace


class TraceEstimate(NamedTuple):
    """A Hutchinson trace estimate with its standard error (:func:`hutchinson_trace`)."""

    mean: jax.Array
    stderr: jax.Array  # sample standard deviation / sqrt(num_probes)
    samples: jax.Array  # (num_probes,) the per-probe values z^T A z


def hutchinson_trace(matvec: Callable, dim: int, key: jax.Array, num_probes: int,
                     distribution: str = "rademacher") -> TraceEstimate:
    """Hutchinson's estimator Tr A ~ mean_k z_k^T A z_k, with its standard error.

    Args:
      matvec: ``v -> A v`` for a symmetric (dim, dim) A.
      dim: the dimension.
      key: PRNG key of the probes.
      num_probes: at least 2.
      distribution: ``rademacher`` (Var z^T A z = 2 (||A||_F^2 - sum_i A_ii^2)) or ``gaussian``.

    Returns:
      ``TraceEstimate``: mean, its standard error, the (num_probes,) per-probe values.
    """
    if num_probes < 2:
        raise ValueError(f"num_probes must be >= 2 for a standard error, got {num_probes}")
    if distribution == "rademacher":
        Z = jax.random.rademacher(key, (num_probes, dim)).astype(jnp.result_type(float))
    elif distribution == "gaussian":
        Z = jax.random.normal(key, (num_probes, dim))
    else:
        raise ValueError(f"distribution must be 'rademacher' or 'gaussian', got {distribution!r}")
    samples = jax.vmap(lambda z: jnp.vdot(z, matvec(z)))(Z)
    return TraceEstimate(samples.mean(), samples.std(ddof=1) / jnp.sqrt(num_probes), samples)


# ------------------------------------------------------------------------- Gauss-Newton products, SLQ densities


def gauss_newton_vp(f: Callable, output_loss: Callable, theta: jax.Array, v: jax.Array) -> jax.Array:
    """Generalised Gauss-Newton product G v = J^T (d^2 l / d out^2) J v for a loss l(f(theta)), with J
    the Jacobian of ``f: theta -> outputs`` and ``output_loss: outputs -> scalar`` (Schraudolph 2002).
    Matrix-free: one jvp, one output-space HVP, one vjp.

    Args:
      f: ``theta -> outputs`` (any output shape, e.g. (n, k) logits of a batch).
      output_loss: ``outputs -> scalar``.
      theta: (p,) parameters.
      v: (p,) direction.

    Returns:
      (p,) G(theta) v.
    """
    out, jv = jax.jvp(f, (theta,), (v,))
    curv_jv = hvp(output_loss, out, jv)
    return jax.vjp(f, theta)[1](curv_jv)[0]


def stochastic_lanczos_quadrature(matvec: Callable, dim: int, key: jax.Array, num_probes: int,
                                  num_steps: int) -> Ritz:
    """Stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017): ``num_probes`` Rademacher starting
    vectors, each run for ``num_steps`` Lanczos steps with full re-orthogonalisation. Returns Ritz nodes
    and weights of shape (num_probes, num_steps); each row's weights sum to 1 and
    mean_probes sum_k w_k g(node_k) estimates tr g(A) / dim (exactly for polynomial g of degree
    <= 2 num_steps - 1, up to the Hutchinson error).

    Args:
      matvec: ``v -> A v`` for a symmetric (dim, dim) A.
      dim: the dimension.
      key: PRNG key of the probes.
      num_probes: number of probe vectors, >= 1.
      num_steps: Lanczos steps per probe, 1 <= num_steps <= dim.

    Returns:
      ``Ritz`` with nodes and weights of shape (num_probes, num_steps).
    """
    if num_probes < 1:
        raise ValueError(f"num_probes must be >= 1, got {num_probes}")
    probes = jax.random.rademacher(key, (num_probes, dim)).astype(jnp.result_type(float))
    return jax.vmap(lambda v: ritz(lanczos(matvec, v, num_steps)))(probes)


def spectral_density(nodes: ArrayLike, weights: ArrayLike, grid: jax.Array, width: float) -> jax.Array:
    """Gaussian-smoothed SLQ density on ``grid``: mean over probes of sum_k w_k N(x; node_k, width^2).
    The density integrates to 1.

    Args:
      nodes, weights: (num_probes, m) or (m,) Ritz nodes and weights (:func:`stochastic_lanczos_quadrature`).
      grid: (g,) points at which the density is evaluated.
      width: Gaussian kernel standard deviation, > 0.

    Returns:
      (g,) density values.
    """
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    nodes, weights = jnp.atleast_2d(nodes), jnp.atleast_2d(weights)
    z = (grid[:, None, None] - nodes[None]) / width
    kernel = jnp.exp(-0.5 * z**2) / (width * jnp.sqrt(2 * jnp.pi))
    return jnp.mean(jnp.sum(weights[None] * kernel, axis=-1), axis=-1)
