"""Neural collapse (NC) in the deep linear unconstrained-features model (Dang et al. 2023, arXiv 2301.00437).

The model (paper Sec. 2-3): free last-hidden features H (N, d), M linear layers W_1 (d, d) ...
W_{M-1} (d, d), W_M (K, d), an optional unregularised last-layer bias b, and the objective

    f = loss(H W_1^T ... W_M^T + b, Y) + lam_W/2 sum_l ||W_l||_F^2 + lam_H/2 ||H||_F^2,

with loss = ||Z - Y||_F^2 / (2N) (MSE) or the mean cross entropy (CE). Rows are samples.

* metrics: :func:`class_means`, :func:`nc1` (tr(Sigma_W Sigma_B^+)/K; also as
  :func:`scatter_matrices` + :func:`nc1_from_scatter`), :func:`gram_distance` (NC2: the
  normalised Gram of class means or classifier rows against a target), :func:`nc3` (the normalised
  classifier-times-means matrix against a target), :func:`simplex_etf`;
* the model: :class:`Params`, :class:`Setting` (loss, bias, depth and decays as *traced* values, so one
  compilation of :func:`train` serves every setting), :func:`make_setting`, :func:`init_params`,
  :func:`objective`, :func:`layers` (the features and the classifier seen from every linear layer);
* :func:`train`: full-batch gradient descent with heavy-ball momentum in ``lax.scan``;
* :func:`gof_closed_form`: the global minimiser of the imbalanced bias-free MSE problem (a general
  orthogonal frame whose lengths depend on the class counts n_k).

A depth-M network is stored in a stack of ``max_depth - 1`` hidden (d, d) layers whose first
``max_depth - M`` are frozen identities (not trained, not decayed), so every depth has the same shapes.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

LOSSES = ("mse", "mse_bias", "ce")


def simplex_etf(num_classes: int) -> np.ndarray:
    """The K vertices of a simplex equiangular tight frame (paper Def. of NC2), as columns.

    Args:
      num_classes: K >= 2.

    Returns:
      (K, K) float64 matrix sqrt(K/(K-1)) (I - 11^T/K): unit columns, pairwise cosines -1/(K-1).
    """
    if num_classes < 2:
        raise ValueError(f"a simplex ETF needs K >= 2 classes, got {num_classes}")
    k = num_classes
    return np.sqrt(k / (k - 1)) * (np.eye(k) - np.ones((k, k)) / k)


def class_means(X: ArrayLike, labels: ArrayLike, num_classes: int) -> tuple[jax.Array, jax.Array]:
    """Class means and the global mean of features (paper Sec. 2, mu_k and mu_G).

    Args:
      X: (N, d) features, one row per sample.
      labels: (N,) integer classes in [0, K).
      num_classes: K.

    Returns:
      (K, d) class means and the (d,) global mean over all N samples.
    """
    onehot = jax.nn.one_hot(labels, num_classes, dtype=X.dtype)
    return (onehot.T @ X) / onehot.sum(0)[:, None], X.mean(0)


def scatter_matrices(X: ArrayLike, labels: ArrayLike, num_classes: int
                     ) -> tuple[jax.Array, jax.Array]:
    """Within- and between-class covariances (paper Sec. 5, NC1), matrix products only.

    Args:
      X: (N, d) features; labels: (N,) classes; num_classes: K.

    Returns:
      Sigma_W = (1/N) sum_i (x_i - mu_{y_i})(x_i - mu_{y_i})^T and
      Sigma_B = (1/K) sum_k (mu_k - mu_G)(mu_k - mu_G)^T, each (d, d).
    """
    means, glob = class_means(X, labels, num_classes)
    within = X - means[labels]
    between = means - glob
    return within.T @ within / X.shape[0], between.T @ between / num_classes


def nc1_from_scatter(sigma_w: ArrayLike, sigma_b: ArrayLike, num_classes: int) -> np.ndarray:
    """tr(Sigma_W Sigma_B^+) / K in numpy, batched over leading axes (the metric of :func:`nc1`).

    For use outside jitted loops (no LAPACK call inside ``vmap``/``scan``).

    Args:
      sigma_w, sigma_b: (..., d, d) from :func:`scatter_matrices`; num_classes: K.

    Returns:
      (...) the NC1 metric.
    """
    sw, sb = np.asarray(sigma_w), np.asarray(sigma_b)
    rcond = 10 * sb.shape[-1] * np.finfo(sb.dtype).eps  # jnp.linalg.pinv's cut-off for this dtype
    pinv = np.linalg.pinv(sb.astype(np.float64), rcond=rcond, hermitian=True)
    return np.trace(sw.astype(np.float64) @ pinv, axis1=-2, axis2=-1) / num_classes


def nc1(X: ArrayLike, labels: ArrayLike, num_classes: int) -> jax.Array:
    """NC1 metric tr(Sigma_W Sigma_B^+) / K (within-class variability collapse, paper Sec. 5).

    Args:
      X: (N, d) features; labels: (N,) classes; num_classes: K.

    Returns:
      () the metric (:func:`scatter_matrices`); 0 when every feature equals its class mean.
    """
    sigma_w, sigma_b = scatter_matrices(X, labels, num_classes)
    return jnp.trace(sigma_w @ jnp.linalg.pinv(sigma_b, hermitian=True)) / num_classes


def _unit(A: ArrayLike) -> jax.Array:
    return A / jnp.linalg.norm(A)


def gram_distance(A: ArrayLike, target_gram: ArrayLike) -> jax.Array:
    """NC2 metric || A A^T / ||A A^T||_F - T / ||T||_F ||_F (paper Sec. 5).

    Args:
      A: (K, d) rows to compare: classifier rows, or (centred) class means.
      target_gram: (K, K) the Gram matrix of the predicted frame (simplex ETF: I - 11^T/K; orthogonal
        frame: diag of the squared lengths).

    Returns:
      () the Frobenius distance of the two unit-norm Gram matrices, in [0, 2].
    """
    return jnp.linalg.norm(_unit(A @ A.T) - _unit(target_gram))


def nc3(C: ArrayLike, means: ArrayLike, target: ArrayLike) -> jax.Array:
    """NC3 metric || C Mu^T / ||C Mu^T||_F - T / ||T||_F ||_F (classifier-mean alignment, Sec. 5).

    Args:
      C: (K, d) classifier rows seen from a layer; means: (K, d) class means of that layer's input.
      target: (K, K) the predicted C Mu^T up to scale (simplex ETF Gram, identity, or a diagonal).

    Returns:
      () the distance, in [0, 2].
    """
    return jnp.linalg.norm(_unit(C @ means.T) - _unit(target))


class Params(NamedTuple):
    """Parameters of the deep linear unconstrained-features model (a batch: stacked arrays)."""

    H: jax.Array  # (N, d) free features
    hidden: jax.Array  # (max_depth - 1, d, d) W_1 ... W_{M-1}, led by frozen identities
    last: jax.Array  # (K, d) W_M
    bias: jax.Array  # (K,) last-layer bias (used only when Setting.bias = 1)


class Setting(NamedTuple):
    """One training setting as traced arrays (a batch of settings is a Setting of stacked arrays)."""

    active: jax.Array  # (max_depth - 1,) 1.0 for a trained hidden layer, 0.0 for a frozen identity
    ce: jax.Array  # () 1.0: cross entropy, 0.0: MSE
    bias: jax.Array  # () 1.0: with the unregularised last-layer bias
    lam_w: jax.Array  # () weight decay of every linear layer
    lam_h: jax.Array  # () feature decay
    lr: jax.Array  # () step size


def make_setting(loss: str, depth: int, max_depth: int, lam_w: float, lam_h: float,
                 lr: float) -> Setting:
    """A :class:`Setting` for a depth-``depth`` network stored with ``max_depth`` layers.

    Args:
      loss: "mse" (no bias), "mse_bias" (MSE with an unregularised bias) or "ce" (no bias).
      depth: M, the number of linear layers, in [1, max_depth].
      max_depth: the stored depth shared by every setting of one compilation.
      lam_w, lam_h: positive weight and feature decays; lr: positive step size.

    Returns:
      The setting, float64 scalars and a (max_depth - 1,) mask.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if not 1 <= depth <= max_depth:
        raise ValueError(f"depth must be in [1, max_depth={max_depth}], got {depth}")
    if min(lam_w, lam_h, lr) <= 0:
        raise ValueError(f"lam_w, lam_h and lr must be positive, got {lam_w}, {lam_h}, {lr}")
    active = np.arange(max_depth - 1) >= max_depth - depth
    f = partial(jnp.asarray, dtype=jnp.float64)
    return Setting(f(active), f(loss == "ce"), f(loss == "mse_bias"), f(lam_w), f(lam_h), f(lr))


def init_params(key: jax.Array, setting: Setting, num_samples: int, width: int, num_classes: int,
                std: float) -> Params:
    """Gaussian N(0, std^2) features and trained layers, identities in the frozen layers, zero bias.

    Args:
      key: PRNG key; setting: the (single) setting whose ``active`` mask fixes the frozen layers.
      num_samples, width, num_classes: N, d (>= K), K.
      std: the initial standard deviation.

    Returns:
      :class:`Params` in float64.
    """
    if width < num_classes:
        raise ValueError(f"width d={width} must be at least K={num_classes}")
    kh, kw, kl = jax.random.split(key, 3)
    n_hidden = setting.active.shape[0]
    gauss = jax.random.normal(kw, (n_hidden, width, width), jnp.float64) * std
    mask = setting.active[:, None, None]
    hidden = mask * gauss + (1 - mask) * jnp.eye(width)
    return Params(jax.random.normal(kh, (num_samples, width), jnp.float64) * std, hidden,
                  jax.random.normal(kl, (num_classes, width), jnp.float64) * std,
                  jnp.zeros(num_classes, jnp.float64))


def layers(params: Params) -> tuple[jax.Array, jax.Array]:
    """The features entering every stored layer and the classifier that maps them to the output.

    Layer j = 0 .. max_depth-1 sees H_j = H W_1^T ... W_j^T (H_0 = H) and the classifier
    C_j = W_M ... W_{j+1}, so that H_j C_j^T is the output without bias (paper Sec. 3, NC in every
    layer). For a depth-M network the layers j >= max_depth - M are the real ones (j = max_depth - M
    is H itself).

    Args:
      params: :class:`Params`.

    Returns:
      (max_depth, N, d) features and (max_depth, K, d) classifiers.
    """
    def forward(h, w):
        return h @ w.T, h

    h_last, feats = jax.lax.scan(forward, params.H, params.hidden)
    feats = jnp.concatenate([feats, h_last[None]])

    def backward(c, w):
        return c @ w, c @ w

    _, cls = jax.lax.scan(backward, params.last, params.hidden, reverse=True)
    return feats, jnp.concatenate([cls, params.last[None]])


def objective(params: Params, Y: ArrayLike, setting: Setting) -> jax.Array:
    """The regularised objective f of the paper (Sec. 3, MSE; Sec. 3.2, CE), in one formula.

    Args:
      params: :class:`Params`; Y: (N, K) one-hot targets; setting: :class:`Setting`.

    Returns:
      () f = (1 - ce) ||Z - Y||^2/(2N) + ce * CE(Z, Y) + lam_W/2 sum_l ||W_l||^2 + lam_H/2 ||H||^2,
      Z = H W_1^T ... W_M^T + bias * b, frozen identity layers not decayed.
    """
    h, _ = jax.lax.scan(lambda h, w: (h @ w.T, None), params.H, jnp.asarray(params.hidden))
    Z = h @ params.last.T + setting.bias * params.bias
    n = Y.shape[0]
    mse = jnp.sum((Z - Y) ** 2) / (2 * n)
    ce = -jnp.sum(Y * jax.nn.log_softmax(Z)) / n
    decay_w = jnp.sum(params.last ** 2) + jnp.sum(setting.active * jnp.sum(params.hidden ** 2, (1, 2)))
    return ((1 - setting.ce) * mse + setting.ce * ce + setting.lam_w / 2 * decay_w
            + setting.lam_h / 2 * jnp.sum(params.H ** 2))


@partial(jax.jit, static_argnames=("steps",))
def train(params: Params, Y: ArrayLike, setting: Setting, steps: int,
          momentum: float = 0.9) -> tuple[Params, jax.Array]:
    """Full-batch gradient descent with heavy-ball momentum on :func:`objective` (``lax.scan``).

    v <- momentum v - lr grad f, theta <- theta + v; frozen identity layers get no update. Use
    ``jax.vmap`` over (params, Y, setting) for many runs in one compilation.

    Args:
      params: the start; Y: (N, K) one-hot targets; setting: :class:`Setting`.
      steps: number of iterations (static).
      momentum: heavy-ball coefficient in [0, 1).

    Returns:
      The final :class:`Params` and the (steps,) objective before each step.
    """
    grad = jax.value_and_grad(objective)
    mask = Params(1.0, setting.active[:, None, None], 1.0, 1.0)

    def step(carry, _):
        p, v = carry
        f, g = grad(p, Y, setting)
        v = jax.tree.map(lambda vi, gi, m: momentum * vi - setting.lr * m * gi, v, g, mask)
        return (jax.tree.map(jnp.add, p, v), v), f

    (params, _), trace = jax.lax.scan(step, (params, jax.tree.map(jnp.zeros_like, params)), None,
                                      length=steps)
    return params, trace


class GOF(NamedTuple):
    """The imbalanced bias-free MSE minimiser: diagonal Gram matrices, one entry per class."""

    x: np.ndarray  # (K,) the solution x_k of the scalar problem
    w_sq: np.ndarray  # (K,) ||w_k||^2 of the rows of W_M ... W_1, = s_k^{2M}
    h_sq: np.ndarray  # (K,) ||h_k||^2 of the class means of H, = s^{2M} / (s^{2M} + N lam_H)^2
    wh: np.ndarray  # (K,) w_k . h_k, = s^{2M} / (s^{2M} + N lam_H)


def _largest_root(c: float, depth: int) -> float:
    """Largest x > 0 with depth x^(depth-1) / (x^depth + 1)^2 = c, or nan if none (bisection)."""
    phi = lambda x: depth * x ** (depth - 1) / (x ** depth + 1) ** 2  # noqa: E731
    lo = ((depth - 1) / (depth + 1)) ** (1 / depth)  # the maximiser of phi (0 when depth = 1)
    if phi(lo) < c:
        return float("nan")
    hi = lo + 1.0
    while phi(hi) > c:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if phi(mid) > c else (lo, mid)
    return 0.5 * (lo + hi)


def gof_closed_form(counts: ArrayLike, depth: int, lam_w: float, lam_h: float) -> GOF:
    """Global minimiser of the bias-free MSE deep linear UFM with class counts n_k (paper Sec. 4).

    Per class the problem reduces to g_k(x) = n_k / (2N (x^M + 1)) + M lam_W (N lam_H)^(1/M) x / 2
    over x = s_k^2 / (N lam_H)^(1/M) >= 0, s_k the common singular value of every layer along class
    k; a stationary x solves M x^(M-1) / (x^M + 1)^2 = M N lam_W (N lam_H)^(1/M) / n_k (the form in
    the authors' code) and x_k is its largest root, or 0 (the class collapses) when no root exists or
    g_k(0) is lower. Then s_k^{2M} = N lam_H x_k^M and the class means and classifier rows form an
    orthogonal frame with the lengths of :class:`GOF`.

    Args:
      counts: (K,) positive class counts n_k; depth: M >= 1; lam_w, lam_h: positive decays.

    Returns:
      :class:`GOF` (float64 numpy arrays).
    """
    n = np.asarray(counts, dtype=np.float64)
    if n.ndim != 1 or np.any(n <= 0) or depth < 1 or min(lam_w, lam_h) <= 0:
        raise ValueError("need positive counts (K,), depth >= 1 and positive decays")
    total = n.sum()
    b = depth * total * lam_w * (total * lam_h) ** (1 / depth)
    g = lambda x, nk: nk / (2 * total * (x ** depth + 1)) + b * x / (2 * total)  # noqa: E731
    x = np.array([_largest_root(b / nk, depth) for nk in n])
    x = np.where(np.isnan(x) | (g(np.nan_to_num(x), n) > g(0.0, n)), 0.0, x)
    s2m = total * lam_h * x ** depth
    return GOF(x, s2m, s2m / (s2m + total * lam_h) ** 2, s2m / (s2m + total * lam_h))
