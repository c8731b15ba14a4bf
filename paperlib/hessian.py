"""Exact Hessian spectra of small networks: bulk, outliers and the split H = G + R (Sagun et al. 2017).

Sagun, Evci, Guney, Dauphin & Bottou (arXiv 1706.04454) look at the eigenvalues of the training-loss
Hessian of over-parametrized networks at the end of training: a bulk concentrated at zero plus a few
outliers. They split the Hessian of L(w) = (1/N) sum_i l(f(w, x_i), y_i) into

* G = (1/N) sum_i J_i^T (d^2 l_i / d f^2) J_i, J_i = df(w, x_i)/dw: the generalised Gauss-Newton matrix,
  "the covariance of gradients of the model outputs", positive semi-definite; the same object as the GGN
  of Granziol et al. (:func:`paperlib.rmt.batch_ggn_matvec`, reused here);
* R = (1/N) sum_i sum_c (d l_i / d f_c) d^2 f_c(w, x_i) / dw^2, which is small where the per-sample
  loss gradients are small (at a near-minimum).

The networks are the flat-parameter tanh MLPs with softmax cross-entropy of :mod:`paperlib.rmt`. For up
to ~30k parameters the Hessian is formed densely (one Hessian-vector product per basis vector, chunked)
and diagonalised in float64. Also here: the operational outlier count (:func:`outlier_count`), the
near-zero fraction of the bulk, and the loss / top eigenvalue along the segment between two solutions
(the paper's small-batch vs large-batch interpolation).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike, DTypeLike
from threadpoolctl import threadpool_limits

from paperlib import linalg, rmt


def mean_loss(theta: jax.Array, X: ArrayLike, y: jax.Array, sizes: Sequence[int]) -> jax.Array:
    """Training loss L(w) = (1/N) sum_i l(f(w, x_i), y_i), softmax cross-entropy (paper Eq. 1).

    Args:
      theta: (P,) flat parameters of the tanh MLP ``sizes``.
      X: (N, d) inputs.
      y: (N,) integer labels.
      sizes: layer widths (d, hidden..., classes).

    Returns:
      Scalar loss.
    """
    return jnp.mean(rmt.per_sample_loss(theta, X, y, sizes))


def dense_from_matvec(matvec: Callable[[jax.Array], jax.Array], dim: int, dtype: DTypeLike,
                      chunk: int) -> jax.Array:
    """The (dim, dim) matrix of a symmetric linear operator, one product per basis vector.

    Products run ``chunk`` at a time (``lax.map`` with ``batch_size``), so memory is that of ``chunk``
    Hessian-vector products, not of ``dim``; the result is symmetrised, (A + A^T)/2.

    Args:
      matvec: v -> A v for a symmetric A, (dim,) -> (dim,).
      dim: the dimension.
      dtype: dtype of the basis vectors.
      chunk: products evaluated together, >= 1.

    Returns:
      (dim, dim) A.
    """
    cols = lax.map(matvec, jnp.eye(dim, dtype=dtype), batch_size=min(chunk, dim))
    return 0.5 * (cols + cols.T)


def residual_matvec(theta: jax.Array, X: ArrayLike, y: jax.Array,
                    sizes: Sequence[int]) -> Callable[[jax.Array], jax.Array]:
    """v -> R v with R = (1/N) sum_i sum_c (dl_i/df_c) d^2 f_c(x_i)/dw^2 (paper Sec. 2, second term).

    Computed on its own route, not as H - G: the Hessian-vector product of the scalar
    Phi(t) = (1/N) sum_i <g_i, f(t, x_i)>, with g_i = dl_i/df at ``theta`` held fixed
    (``stop_gradient``), whose Hessian is exactly R.

    Args:
      theta, X, y, sizes: as in :func:`mean_loss`.

    Returns:
      A function (P,) -> (P,).
    """
    logits = rmt.mlp_logits(theta, X, sizes)
    out_grad = lax.stop_gradient(jax.grad(lambda z: jnp.sum(rmt.cross_entropy(z, y)))(logits))
    phi = lambda t: jnp.sum(out_grad * rmt.mlp_logits(t, X, sizes)) / X.shape[0]
    return lambda v: linalg.hvp(phi, theta, v)


def hessian_matvec(theta: jax.Array, X: ArrayLike, y: jax.Array,
                   sizes: Sequence[int]) -> Callable[[jax.Array], jax.Array]:
    """v -> H v on the whole training set: :func:`paperlib.rmt.batch_hessian_matvec` (forward-over-reverse
    differentiation of the batch loss) with an all-ones mask, i.e. of :func:`mean_loss`.

    Args:
      theta, X, y, sizes: as in :func:`mean_loss`.

    Returns:
      A function (P,) -> (P,).
    """
    return rmt.batch_hessian_matvec(theta, X, y, jnp.ones(X.shape[0], theta.dtype), sizes)


def ggn_matvec(theta: jax.Array, X: ArrayLike, y: jax.Array,
               sizes: Sequence[int]) -> Callable[[jax.Array], jax.Array]:
    """v -> G v on the whole training set: :func:`paperlib.rmt.batch_ggn_matvec` with an all-ones mask.

    Args:
      theta, X, y, sizes: as in :func:`mean_loss`.

    Returns:
      A function (P,) -> (P,).
    """
    return rmt.batch_ggn_matvec(theta, X, y, jnp.ones(X.shape[0], theta.dtype), sizes)


MATVECS = {"H": hessian_matvec, "G": ggn_matvec, "R": residual_matvec}


@partial(jax.jit, static_argnames=("sizes", "parts", "chunk"))
def dense_curvatures(theta: jax.Array, X: ArrayLike, y: jax.Array, sizes: Sequence[int],
                     parts: tuple[str, ...] = ("H", "G", "R"), chunk: int = 512) -> tuple:
    """Dense curvature matrices of the training loss, each from its own products (paper Sec. 2).

    "H" from Hessian-vector products of :func:`mean_loss`, "G" from rmt's GGN (jvp, softmax curvature,
    vjp), "R" from :func:`residual_matvec`; H = G + R holds to round-off only if all three are right.

    Args:
      theta: (P,) flat parameters (float64 for the spectra).
      X: (N, d) inputs.
      y: (N,) labels.
      sizes: layer widths.
      parts: which matrices, keys of MATVECS, in the order returned.
      chunk: basis vectors per batched product.

    Returns:
      Tuple of (P, P) matrices, one per entry of ``parts``.
    """
    dense = partial(dense_from_matvec, dim=theta.shape[0], dtype=theta.dtype, chunk=chunk)
    return tuple(dense(MATVECS[p](theta, X, y, sizes)) for p in parts)


@partial(jax.jit, static_argnames=("sizes",))
def exact_hessian(theta: jax.Array, X: ArrayLike, y: jax.Array, sizes: Sequence[int]) -> jax.Array:
    """The (P, P) Hessian by ``jax.hessian`` of the flat-parameter loss (small P: all P tangents at once).

    Args:
      theta, X, y, sizes: as in :func:`mean_loss`.

    Returns:
      (P, P) Hessian.
    """
    return linalg.hessian(lambda t: mean_loss(t, X, y, sizes), theta)


def descending_eigenvalues(A: ArrayLike) -> np.ndarray:
    """Eigenvalues of a symmetric matrix in float64, largest first.

    On a GPU backend the device's ``eigh`` (cuSOLVER; the full-profile sizes, P up to ~30k); on CPU,
    LAPACK through numpy, with one BLAS thread up to P = 4096: at these sizes extra threads only
    contend (measured: 0.07 s single-threaded vs 1.3 s CPU time with threads for P ~ 1000 on a busy
    2-core machine).

    Args:
      A: (P, P) symmetric matrix.

    Returns:
      (P,) eigenvalues, descending.
    """
    if jax.default_backend() == "gpu":
        return np.asarray(jnp.linalg.eigvalsh(jnp.asarray(A, jnp.float64)))[::-1]
    A = np.asarray(A, dtype=np.float64)
    with threadpool_limits(limits=1 if A.shape[0] <= 4096 else None, user_api="blas"):
        return np.linalg.eigvalsh(A)[::-1]


def outlier_count(eigs: ArrayLike, window: int) -> int:
    """Number of outliers above the bulk: the position of the largest ratio gap among the top eigenvalues.

    Rule (fixed before any result was seen): with lambda_1 >= lambda_2 >= ... the eigenvalues,
    count = argmax_{1 <= j <= window} lambda_j / max(lambda_{j+1}, 1e-12 lambda_1).
    Why a ratio gap: the Hessian of cross-entropy shrinks as a whole with the loss, so the edge of the
    bulk has no fixed scale, and the bulk sits at zero with huge degeneracy, so its spread (e.g. a
    median absolute deviation) is ~0 and any multiple of it counts the whole top of the bulk as
    outliers; a ratio is scale-free and needs no model of the bulk (the eigengap heuristic of spectral
    clustering, von Luxburg 2007). ``window`` bounds the search to the top of the spectrum, where
    outliers can be, so ratios deep in the bulk cannot win. Limit: when fewer than ``window``
    eigenvalues are nonzero, the step to the exact zeros is the largest gap and every nonzero
    eigenvalue is counted (never the case for our trained networks, whose top ``window``
    eigenvalues are all well above zero).

    Args:
      eigs: (P,) eigenvalues in any order, P > window, lambda_1 > 0.
      window: largest outlier count the rule can return, >= 1.

    Returns:
      The outlier count, in [1, window].
    """
    lam = np.sort(np.asarray(eigs, dtype=np.float64))[::-1]
    if not 1 <= window < lam.size or lam[0] <= 0:
        raise ValueError(f"need 1 <= window < P and a positive top eigenvalue; window={window}, "
                         f"P={lam.size}, lambda_1={lam[0]:.3g}")
    below = np.maximum(lam[1:window + 1], 1e-12 * lam[0])
    return int(np.argmax(lam[:window] / below)) + 1


def near_zero_fraction(eigs: ArrayLike, rel: float = 1e-3) -> float:
    """Fraction of eigenvalues with |lambda| < rel * lambda_max: the share of the bulk at zero.

    Args:
      eigs: (P,) eigenvalues.
      rel: threshold relative to the largest eigenvalue (the brief's 1e-3).

    Returns:
      The fraction in [0, 1].
    """
    lam = np.asarray(eigs, dtype=np.float64)
    return float(np.mean(np.abs(lam) < rel * lam.max()))


@partial(jax.jit, static_argnames=("sizes", "num_steps", "k"))
def top_eigenvalues_lanczos(theta: jax.Array, X: ArrayLike, y: jax.Array, sizes: Sequence[int],
                            key: jax.Array, num_steps: int, k: int) -> jax.Array:
    """The k largest Hessian eigenvalues by Lanczos on Hessian-vector products (no dense matrix).

    The matrix-free route of :mod:`paperlib.linalg` (full re-orthogonalisation), the independent
    check of the dense ``eigh`` route and the method that scales past ~30k parameters.

    Args:
      theta, X, y, sizes: as in :func:`mean_loss`.
      key: PRNG key of the Gaussian start vector.
      num_steps: Lanczos steps in [k, P].
      k: eigenvalues returned.

    Returns:
      (k,) Ritz values, descending.
    """
    matvec = hessian_matvec(theta, X, y, sizes)
    v0 = jax.random.normal(key, theta.shape, theta.dtype)
    return linalg.lanczos_top_eigenvalues(matvec, v0, num_steps, k)


class Segment(NamedTuple):
    """Loss and curvature along w(a) = (1 - a) w_A + a w_B."""

    alphas: np.ndarray  # (n,) positions, 0 at w_A, 1 at w_B
    loss: np.ndarray  # (n,) training loss
    top: np.ndarray  # (n,) largest Hessian eigenvalue (Lanczos)


@partial(jax.jit, static_argnames=("sizes", "num_steps"))
def _segment(theta_a, theta_b, X, y, sizes, alphas, key, num_steps):
    def at(a):
        theta = (1.0 - a) * theta_a + a * theta_b
        top = top_eigenvalues_lanczos(theta, X, y, sizes, key, num_steps, 1)[0]
        return mean_loss(theta, X, y, sizes), top

    return jax.vmap(at)(alphas)


def segment(theta_a: jax.Array, theta_b: jax.Array, X: ArrayLike, y: jax.Array,
            sizes: Sequence[int], alphas: ArrayLike, key: jax.Array, num_steps: int) -> Segment:
    """Training loss and top Hessian eigenvalue along the straight line between two solutions (Sec. 4).

    The paper's interpolation between a small-batch and a large-batch solution: a barrier in the
    loss along the line would separate two basins; its absence (with the curvature staying at the
    level of the endpoints) puts both in one connected flat region.

    Args:
      theta_a: (P,) first solution (a = 0).
      theta_b: (P,) second solution (a = 1).
      X: (N, d) inputs.
      y: (N,) labels.
      sizes: layer widths.
      alphas: (n,) positions on the line (values outside [0, 1] extrapolate).
      key: PRNG key of the Lanczos start vector (shared by all points).
      num_steps: Lanczos steps per point.

    Returns:
      ``Segment`` of numpy arrays.
    """
    alphas = jnp.asarray(alphas, theta_a.dtype)
    loss, top = _segment(theta_a, theta_b, X, y, tuple(sizes), alphas, key, num_steps)
    return Segment(np.asarray(alphas), np.asarray(loss), np.asarray(top))


def barrier(loss_along: ArrayLike) -> float:
    """Height of the loss barrier on a path: max along it minus the larger endpoint loss (>= 0).

    Args:
      loss_along: (n,) losses, endpoints first and last.

    Returns:
      The barrier, 0 when the loss never exceeds both endpoints.
    """
    loss_along = np.asarray(loss_along, dtype=np.float64)
    return float(max(loss_along.max() - max(loss_along[0], loss_along[-1]), 0.0))
