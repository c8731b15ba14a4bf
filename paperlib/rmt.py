"""Batch-size dependence of curvature and of maximal learning rates (Granziol, Zohren & Roberts, JMLR 2022).

The paper models the mini-batch Hessian as H_batch = H_emp + eps, eps a random fluctuation matrix whose
entries have variance sigma^2 c_B (c_B = (N-B)/(B(N-1)) for sampling without replacement, ~ 1/B), and
derives the extremal eigenvalues of H_batch (and of the Gauss-Newton matrix) from spiked random-matrix
theory; maximal learning rates follow: ~ B for SGD, ~ sqrt(B) for Adam. The paper's body text was not
available to us, so the formulas here are the standard spiked forms in the paper's notation:

* spiked Wigner (BBP; Peche 2006, Benaych-Georges & Nadakuditi 2011):
  lambda_max(H_batch) = lambda + s^2 / lambda if lambda > s, else 2 s, with s^2 = P sigma^2 c_B;
* spiked Wishart (Baik, Ben Arous & Peche 2005): q = P / B,
  lambda_max(G_batch) = l (1 + q sigma^2 / (l - sigma^2)) if l > sigma^2 (1 + sqrt q), else sigma^2 (1 + sqrt q)^2;
* the directional (second-order perturbation) form lambda_emp + c_B V_u / lambda_emp with
  V_u = (1/N) sum_i ||(H_i - H_emp) u||^2 along the top eigenvector u.

Models are flat-parameter tanh MLPs with softmax cross-entropy; a mini-batch is a 0/1 weight mask over the
N training samples, so every batch size shares one shape and batch sizes can be vmapped.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from paperlib import linalg

# ------------------------------------------------------------------------- closed forms


def finite_population_factor(batch_size: ArrayLike, population: int | None = None) -> jax.Array:
    """Variance factor c_B of a mean of B samples drawn without replacement (paper Sec. 2 model).

    c_B = (1/B)(N - B)/(N - 1), or 1/B for fresh samples.

    Args:
      batch_size: B, any shape.
      population: N, or None for sampling with replacement / fresh samples.

    Returns:
      c_B, same shape as ``batch_size``.
    """
    B = jnp.asarray(batch_size, dtype=float)
    if population is None:
        return 1.0 / B
    return (population - B) / (B * (population - 1.0))


def wigner_lambda_max(spike: ArrayLike, P: ArrayLike, sigma2: ArrayLike, batch_size: ArrayLike,
                      population: int | None = None) -> tuple[jax.Array, jax.Array]:
    """Spiked-Wigner (BBP) extremal eigenvalue of H_emp + eps, the paper's batch-Hessian model.

    lambda + s^2/lambda if lambda > s (outlier), else the edge 2 s, with s^2 = P sigma^2 c_B
    (Benaych-Georges & Nadakuditi 2011). The most negative eigenvalue follows with spike ->
    -lambda_min and a sign flip.

    Args:
      spike: lambda, the empirical matrix's top eigenvalue.
      P: dimension (pass 1 with sigma2 = P sigma^2 to give the product directly).
      sigma2: per-entry variance sigma^2 of the per-sample fluctuations.
      batch_size: B, shape (nB,) or scalar.
      population: N for sampling without replacement (c_B), None for fresh samples.

    Returns:
      (value, outlier?) arrays shaped like ``batch_size``.
    """
    s2 = P * sigma2 * finite_population_factor(batch_size, population)
    outlier = spike**2 > s2
    return jnp.where(outlier, spike + s2 / spike, 2.0 * jnp.sqrt(s2)), outlier


def wigner_switch_batch(spike: float, P: float, sigma2: float,
                        population: int | None = None) -> float:
    """B* at which the Wigner outlier meets the edge (lambda^2 = P sigma^2 c_B).

    Args:
      spike: lambda.
      P: dimension.
      sigma2: per-entry variance sigma^2.
      population: N (finite-population c_B) or None (c_B = 1/B).

    Returns:
      P sigma^2 / lambda^2, or with N: N / (1 + (N - 1) lambda^2 / (P sigma^2)).
    """
    ratio = spike**2 / (P * sigma2)
    if population is None:
        return 1.0 / ratio
    return population / (1.0 + (population - 1.0) * ratio)


def wishart_lambda_max(spike: ArrayLike, P: ArrayLike, sigma2: ArrayLike,
                       batch_size: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Spiked-Wishart largest eigenvalue of the batch GGN (1/B) sum_i x_i x_i^T (paper: GGN analogue).

    With x ~ N(0, diag(l, sigma^2, ...)) and q = P/B: l (1 + q sigma^2 / (l - sigma^2)) if
    l > sigma^2 (1 + sqrt q), else sigma^2 (1 + sqrt q)^2 (Baik, Ben Arous & Peche 2005).

    Args:
      spike: l, the population spike.
      P: dimension.
      sigma2: bulk variance sigma^2.
      batch_size: B, shape (nB,) or scalar.

    Returns:
      (value, outlier?) arrays shaped like ``batch_size``.
    """
    q = P / jnp.asarray(batch_size, dtype=float)
    outlier = spike > sigma2 * (1.0 + jnp.sqrt(q))
    return jnp.where(outlier, spike * (1.0 + q * sigma2 / (spike - sigma2)),
                     sigma2 * (1.0 + jnp.sqrt(q)) ** 2), outlier


def wishart_switch_batch(spike: float, P: float, sigma2: float) -> float:
    """B* where l = sigma^2 (1 + sqrt(P/B)) (spiked Wishart): P / (l/sigma^2 - 1)^2.

    Args:
      spike: l.
      P: dimension.
      sigma2: bulk variance.

    Returns:
      The switch batch size B*.
    """
    return P / (spike / sigma2 - 1.0) ** 2


def directional_lambda_max(lambda_emp: ArrayLike, V_u: ArrayLike, batch_size: ArrayLike,
                           population: int | None = None) -> jax.Array:
    """Second-order perturbation of the top eigenvalue: lambda_emp + c_B V_u / lambda_emp.

    Equals the Wigner outlier branch when V_u = P sigma^2 (the brief's directional variant).

    Args:
      lambda_emp: the full-data top eigenvalue.
      V_u: (1/N) sum_i ||(H_i - H_emp) u||^2 along its eigenvector u.
      batch_size: B, any shape.
      population: N or None.

    Returns:
      The predicted E lambda_max(H_B), shaped like ``batch_size``.
    """
    return lambda_emp + finite_population_factor(batch_size, population) * V_u / lambda_emp


def kaniel_paige_bottom_bound(eigs: ArrayLike, cos_angle: float, num_steps: int) -> float:
    """Kaniel-Paige-Saad bound on the smallest Ritz value's error after m Lanczos steps.

    theta_1 - lambda_1 <= (lambda_n - lambda_1) (tan phi / T_{m-1}(1 + 2 gamma))^2 with
    gamma = (lambda_2 - lambda_1) / (lambda_n - lambda_2), phi the angle between the start vector
    and the bottom eigenvector, T_k the Chebyshev polynomial (Saad 2011, Thm 6.4); computed in
    logs so large m does not overflow.

    Args:
      eigs: (n,) eigenvalues, ascending.
      cos_angle: |cos phi| in (0, 1].
      num_steps: m >= 1.

    Returns:
      The bound on theta_1 - lambda_1.
    """
    eigs = np.asarray(eigs, dtype=float)
    spread = eigs[-1] - eigs[0]
    gamma = (eigs[1] - eigs[0]) / (eigs[-1] - eigs[1])
    z = (num_steps - 1) * np.arccosh(1.0 + 2.0 * gamma)
    log_cheb = np.logaddexp(z, -z) - np.log(2.0)
    log_tan = 0.5 * np.log1p(-cos_angle**2) - np.log(cos_angle)
    return spread * np.exp(2.0 * (log_tan - log_cheb))


def polyak_heavy_ball(L: ArrayLike, mu: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Polyak's heavy-ball parameters for a quadratic with spectrum in [mu, L] (the SLQ learner).

    lr = 4 / (sqrt L + sqrt mu)^2, momentum = ((sqrt L - sqrt mu) / (sqrt L + sqrt mu))^2.

    Args:
      L: largest curvature, any shape.
      mu: smallest curvature, broadcastable with L.

    Returns:
      (lr, momentum), broadcast shape.
    """
    sL, smu = jnp.sqrt(L), jnp.sqrt(mu)
    return 4.0 / (sL + smu) ** 2, ((sL - smu) / (sL + smu)) ** 2


def authors_nesterov_rule(L: ArrayLike, mu: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """The learner rule of the authors' most-run script (GadamX ``run_ssgdmn_fastanddirty.py``).

    lr = sqrt(mu / L), momentum = (sqrt L - sqrt mu) / (sqrt L + sqrt mu) (Nesterov's strongly
    convex momentum; the lr is their choice and is not scale-equivariant). Arguments and returns as in
    :func:`polyak_heavy_ball`.
    """
    sL, smu = jnp.sqrt(L), jnp.sqrt(mu)
    return smu / sL, (sL - smu) / (sL + smu)


LEARNER_RULES = {"polyak": polyak_heavy_ball, "authors_nesterov": authors_nesterov_rule}


# ------------------------------------------------------------------------- synthetic spiked models


def _sym_noise(key, P, sigma2):
    G = jax.random.normal(key, (P, P)) * jnp.sqrt(sigma2)
    return (G + G.T) / jnp.sqrt(2.0)  # off-diagonal variance sigma^2


@partial(jax.jit, static_argnames=("P", "N"))
def _noise_population_mean(key, P, N, sigma2):
    return lax.fori_loop(0, N, lambda i, acc: acc + _sym_noise(jax.random.fold_in(key, i), P, sigma2),
                         jnp.zeros((P, P))) / N


@partial(jax.jit, static_argnames=("P",))
def _spiked_batch_top(key, order, batch_size, P, spike, sigma2, mean_noise):
    """Top eigenvalue and squared overlap with e_1 of spike e_1 e_1^T + mean_{i in S} W_i - mean_all W."""
    total = lax.fori_loop(0, batch_size, lambda j, acc: acc + _sym_noise(
        jax.random.fold_in(key, order[j]), P, sigma2), jnp.zeros((P, P)))
    H = (total / batch_size - mean_noise).at[0, 0].add(spike)
    eig, vec = jnp.linalg.eigh(H)
    return eig[-1], vec[0, -1] ** 2


def spiked_wigner_batches(key: jax.Array, P: int, N: int, spike: float, sigma2: float,
                          batch_sizes: Sequence[int], draws: int) -> tuple[np.ndarray, np.ndarray]:
    """Top eigenvalues of synthetic spiked-Wigner batch Hessians (the paper's model, Sec. 2.2).

    Per-sample H_i = spike u u^T + W_i - mean_j W_j (W_i symmetric, iid entries of variance
    sigma^2, regenerated from ``fold_in(key, i)`` so nothing of size N P^2 is stored; H_emp =
    spike u u^T exactly). The per-entry population variance of eps is sigma^2 (N-1)/N, which with
    c_B gives s^2 exactly.

    Args:
      key: PRNG key.
      P: dimension.
      N: population size.
      spike: lambda.
      sigma2: per-entry variance of W_i.
      batch_sizes: (nB,) batch sizes in [1, N], drawn without replacement.
      draws: batches per B.

    Returns:
      (top eigenvalue, squared overlap of its eigenvector with u), each (nB, draws).
    """
    if not all(1 <= b <= N for b in batch_sizes):
        raise ValueError(f"batch sizes must be in [1, N={N}], got {batch_sizes}")
    k_noise, k_batch = jax.random.split(key)
    mean_noise = _noise_population_mean(k_noise, P, N, sigma2)
    tops, overlaps = np.zeros((len(batch_sizes), draws)), np.zeros((len(batch_sizes), draws))
    for a, B in enumerate(batch_sizes):
        for d in range(draws):
            order = jax.random.permutation(jax.random.fold_in(k_batch, a * draws + d), N)
            tops[a, d], overlaps[a, d] = _spiked_batch_top(k_noise, order, B, P, spike, sigma2, mean_noise)
    return tops, overlaps


@partial(jax.jit, static_argnames=("P", "batch_size", "draws"))
def _wishart_top(key, P, spike, sigma2, batch_size, draws):
    X = jax.random.normal(key, (draws, batch_size, P)) * jnp.sqrt(jnp.full(P, sigma2).at[0].set(spike))
    Xt = jnp.swapaxes(X, 1, 2)
    gram = X @ Xt if batch_size < P else Xt @ X  # same nonzero spectrum, the smaller matrix
    return jnp.linalg.eigvalsh(gram / batch_size)[:, -1]


def spiked_wishart_batches(key: jax.Array, P: int, spike: float, sigma2: float,
                           batch_sizes: Sequence[int], draws: int) -> np.ndarray:
    """Largest eigenvalue of the linear-regression batch GGN (Hessian = GGN, spiked Wishart).

    G_B = (1/B) sum_i x_i x_i^T with fresh x ~ N(0, diag(spike, sigma^2, ..., sigma^2)); for batch
    size number a the inputs are normal(split(key, nB)[a], (draws, B, P)), scaled.

    Args:
      key: PRNG key.
      P: dimension.
      spike: population spike l.
      sigma2: bulk variance.
      batch_sizes: (nB,) batch sizes >= 1.
      draws: batches per B.

    Returns:
      (nB, draws) largest eigenvalues.
    """
    if min(batch_sizes) < 1:
        raise ValueError(f"batch sizes must be >= 1, got {batch_sizes}")
    keys = jax.random.split(key, len(batch_sizes))
    return np.stack([np.asarray(_wishart_top(k, P, spike, sigma2, int(B), draws))
                     for k, B in zip(keys, batch_sizes)])


# ------------------------------------------------------------------------- tanh MLP on digits


def mlp_num_params(sizes: Sequence[int]) -> int:
    """Number of parameters P of the tanh MLP with layer widths ``sizes`` (weights and biases).

    Args:
      sizes: (inputs, hidden..., classes).

    Returns:
      P.
    """
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def init_mlp(key: jax.Array, sizes: Sequence[int]) -> jax.Array:
    """Flat parameters of a tanh MLP (the notebook's proxy network): W ~ N(0, 1/fan_in), b = 0.

    Args:
      key: PRNG key.
      sizes: layer widths, >= 2 positive entries.

    Returns:
      theta, shape (P,) with P = mlp_num_params(sizes).
    """
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list >= 2 positive widths, got {sizes}")
    parts = []
    for k, (a, b) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        parts += [jax.random.normal(k, (a * b,)) / jnp.sqrt(a), jnp.zeros(b)]
    return jnp.concatenate(parts)


def mlp_logits(theta: jax.Array, X: ArrayLike, sizes: Sequence[int]) -> jax.Array:
    """Logits h(x; w) of the tanh MLP with flat parameters theta.

    Args:
      theta: (P,) flat parameters.
      X: (n, sizes[0]) inputs.
      sizes: layer widths.

    Returns:
      (n, C) logits, C = sizes[-1].
    """
    h, start = X, 0
    for layer, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = theta[start:start + a * b].reshape(a, b)
        c = theta[start + a * b:start + a * b + b]
        start += a * b + b
        h = h @ W + c
        if layer < len(sizes) - 2:
            h = jnp.tanh(h)
    return h


def cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Per-sample softmax cross-entropy l(h, y) (the paper's loss).

    Args:
      logits: (n, C).
      y: (n,) integer labels.

    Returns:
      (n,) losses.
    """
    return jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0]


def per_sample_loss(theta: jax.Array, X: ArrayLike, y: jax.Array,
                    sizes: Sequence[int]) -> jax.Array:
    """Per-sample losses l_i(w) of the MLP (Sec. 2.1).

    Args:
      theta: (P,) flat parameters.
      X: (n, d) inputs.
      y: (n,) labels.
      sizes: layer widths.

    Returns:
      (n,) cross-entropies.
    """
    return cross_entropy(mlp_logits(theta, X, sizes), y)


def weighted_loss(theta: jax.Array, X: ArrayLike, y: jax.Array, weights: jax.Array,
                  sizes: Sequence[int]) -> jax.Array:
    """Batch loss L_batch = (1/B) sum_{i in S} l_i, S given by a 0/1 mask (Sec. 2.1).

    Weight decay and dropout are not part of the loss, as in the paper's Hessian code.

    Args:
      theta: (P,) flat parameters.
      X: (N, d) inputs.
      y: (N,) labels.
      weights: (N,) 0/1 mask of the batch (all ones: the empirical loss).
      sizes: layer widths.

    Returns:
      Scalar batch loss.
    """
    return jnp.sum(weights * per_sample_loss(theta, X, y, sizes)) / jnp.sum(weights)


def accuracy(theta: jax.Array, X: ArrayLike, y: jax.Array, sizes: Sequence[int]) -> jax.Array:
    """Fraction of samples whose arg-max logit is the label.

    Args:
      theta, X, y, sizes: as in :func:`per_sample_loss`.

    Returns:
      Scalar accuracy in [0, 1].
    """
    return jnp.mean(jnp.argmax(mlp_logits(theta, X, sizes), -1) == y)


def batch_hessian_matvec(theta: jax.Array, X: ArrayLike, y: jax.Array, weights: jax.Array,
                         sizes: Sequence[int]) -> Callable[[jax.Array], jax.Array]:
    """v -> H_batch v, forward-over-reverse differentiation of the masked batch loss (Sec. 2.1).

    Args:
      theta: (P,) flat parameters.
      X: (N, d) inputs.
      y: (N,) labels.
      weights: (N,) 0/1 batch mask.
      sizes: layer widths.

    Returns:
      A function (P,) -> (P,).
    """
    return lambda v: linalg.hvp(lambda t: weighted_loss(t, X, y, weights, sizes), theta, v)


def batch_ggn_matvec(theta: jax.Array, X: ArrayLike, y: jax.Array, weights: jax.Array,
                     sizes: Sequence[int]) -> Callable[[jax.Array], jax.Array]:
    """v -> G_batch v, the Gauss-Newton matrix (1/B) sum_{i in S} J_i^T (diag p_i - p_i p_i^T) J_i.

    Matrix-free: one jvp, the softmax curvature, one vjp (Sec. 2.1, GGN).

    Args:
      theta, X, y, weights, sizes: as in batch_hessian_matvec.

    Returns:
      A function (P,) -> (P,).
    """
    out_loss = lambda logits: jnp.sum(weights * cross_entropy(logits, y)) / jnp.sum(weights)
    return lambda v: linalg.gauss_newton_vp(lambda t: mlp_logits(t, X, sizes), out_loss, theta, v)


def batch_residual_matvec(theta: jax.Array, X: ArrayLike, y: jax.Array, weights: jax.Array,
                          sizes: Sequence[int]) -> Callable[[jax.Array], jax.Array]:
    """v -> (H_batch - G_batch) v, the part of the Hessian the GGN leaves out (authors' "nonggn").

    sum_i sum_c dl_i/dz_c d^2 z_c/dtheta^2; it carries the negative curvature, since G_batch is
    positive semi-definite.

    Args:
      theta, X, y, weights, sizes: as in batch_hessian_matvec.

    Returns:
      A function (P,) -> (P,).
    """
    hess = batch_hessian_matvec(theta, X, y, weights, sizes)
    ggn = batch_ggn_matvec(theta, X, y, weights, sizes)
    return lambda v: hess(v) - ggn(v)


CURVATURES = {"hessian": batch_hessian_matvec, "ggn": batch_ggn_matvec, "residual": batch_residual_matvec}


def random_subset_masks(key: jax.Array, N: int, batch_sizes: Sequence[int],
                        draws: int) -> jax.Array:
    """0/1 masks of uniformly random subsets of size B, drawn without replacement (Sec. 2.1).

    Args:
      key: PRNG key.
      N: population size.
      batch_sizes: (nB,) sizes in [0, N].
      draws: subsets per size.

    Returns:
      (nB, draws, N) float masks, each row summing to its B.
    """
    ranks = jnp.argsort(jnp.argsort(jax.random.uniform(key, (len(batch_sizes), draws, N)), -1), -1)
    return (ranks < jnp.asarray(batch_sizes)[:, None, None]).astype(float)


class BatchExtremes(NamedTuple):
    """Extreme Ritz values of batch curvature matrices (batch_extremes), each of the masks' batch shape."""

    top: jax.Array  # largest Ritz value
    bottom: jax.Array  # smallest Ritz value
    rayleigh: jax.Array  # v0^T A v0 / ||v0||^2 (first Lanczos coefficient)


@partial(jax.jit, static_argnames=("sizes", "num_steps", "curvature", "rows"))
def batch_extremes(theta: jax.Array, X: ArrayLike, y: jax.Array, masks: jax.Array,
                   sizes: Sequence[int], v0: jax.Array, num_steps: int,
                   curvature: str = "hessian", rows: int | None = None) -> BatchExtremes:
    """Extreme Ritz values of the batch Hessian, GGN or H - GGN for every mask, vmapped (Sec. 2.4).

    ``num_steps`` Lanczos steps with full re-orthogonalisation from v0. Starting from the
    full-data top eigenvector u guarantees top >= u^T H_B u per batch, and since
    E[u^T H_B u] = lambda_emp exactly, E[top - u^T H_B u] is a low-variance estimate of the excess.

    Args:
      theta: (P,) flat parameters.
      X: (N, d) inputs.
      y: (N,) labels.
      masks: (..., N) 0/1 batch masks.
      sizes: layer widths.
      v0: (P,) Lanczos start vector.
      num_steps: m in [1, P].
      curvature: a key of CURVATURES.
      rows: when every mask has at most ``rows`` ones, each product runs on the mask's samples
        gathered into ``rows`` rows (zero-padded weights) instead of all N (same values, cost
        ~ rows/N).

    Returns:
      ``BatchExtremes`` (top, bottom, rayleigh), each of shape masks.shape[:-1].
    """
    matvec = CURVATURES[curvature]
    flat = masks.reshape(-1, masks.shape[-1])

    def one(w):
        if rows is None:
            Xb, yb, wb = X, y, w
        else:  # the batch's own samples first, padded with zero weight (B <= rows)
            idx = jnp.argsort(-w, stable=True)[:rows]
            Xb, yb, wb = X[idx], y[idx], w[idx]
        res = linalg.lanczos(matvec(theta, Xb, yb, wb, sizes), v0, num_steps)
        nodes = linalg.ritz(res).nodes
        return nodes[-1], nodes[0], res.alphas[0]

    out = jax.vmap(one)(flat)
    return BatchExtremes(*(a.reshape(masks.shape[:-1]) for a in out))


@partial(jax.jit, static_argnames=("sizes", "num_probes", "num_steps", "curvature"))
def batch_slq(theta: jax.Array, X: ArrayLike, y: jax.Array, weights: jax.Array,
              sizes: Sequence[int], key: jax.Array, num_probes: int, num_steps: int,
              curvature: str = "hessian") -> linalg.Ritz:
    """Stochastic Lanczos quadrature of one batch Hessian, GGN or H - GGN (Sec. 2.4).

    Args:
      theta, X, y, weights, sizes: as in batch_hessian_matvec.
      key: PRNG key of the Rademacher probes.
      num_probes: probe vectors.
      num_steps: Lanczos steps per probe, in [1, P].
      curvature: a key of CURVATURES.

    Returns:
      ``linalg.Ritz`` with nodes and weights of shape (num_probes, num_steps).
    """
    matvec = CURVATURES[curvature]
    return linalg.stochastic_lanczos_quadrature(matvec(theta, X, y, weights, sizes), theta.shape[0], key,
                                                num_probes, num_steps)


@partial(jax.jit, static_argnames=("sizes", "num_steps"))
def top_eigenpair(theta: jax.Array, X: ArrayLike, y: jax.Array, sizes: Sequence[int],
                  key: jax.Array, num_steps: int) -> tuple[jax.Array, jax.Array]:
    """Top eigenvalue lambda_emp and eigenvector u of the full-data Hessian (Lanczos Ritz pair).

    Args:
      theta, X, y, sizes: as in :func:`per_sample_loss`, with N samples.
      key: PRNG key of the start vector.
      num_steps: Lanczos steps in [1, P].

    Returns:
      (lambda_emp scalar, u of shape (P,)).
    """
    matvec = batch_hessian_matvec(theta, X, y, jnp.ones(X.shape[0]), sizes)
    return linalg.top_ritz_pair(linalg.lanczos(matvec, jax.random.normal(key, theta.shape), num_steps))


@partial(jax.jit, static_argnames=("sizes", "chunk"))
def directional_noise(theta: jax.Array, X: ArrayLike, y: jax.Array, sizes: Sequence[int],
                      u: jax.Array, chunk: int = 256) -> jax.Array:
    """V_u = (1/N) sum_i ||(H_i - H_emp) u||^2 from per-sample HVPs (brief Sec. 2.2).

    The paper's sigma^2 measured along u, playing P sigma^2 in the outlier formula. With u a
    random unit vector (averaged) this is the isotropic per-entry estimate P mean_jk Var(H_i,jk).

    Args:
      theta, X, y, sizes: as in :func:`per_sample_loss`, with N samples.
      u: (P,) direction (normalised here).
      chunk: per-sample HVPs evaluated ``chunk`` at a time.

    Returns:
      Scalar V_u.
    """
    u = u / jnp.linalg.norm(u)
    Hu = batch_hessian_matvec(theta, X, y, jnp.ones(X.shape[0]), sizes)(u)
    one = lambda xy: jnp.sum((linalg.hvp(lambda t: per_sample_loss(t, xy[0][None], xy[1][None], sizes)[0],
                                         theta, u) - Hu) ** 2)
    return jnp.mean(lax.map(one, (X, y), batch_size=chunk))


def isotropic_noise(theta: jax.Array, X: ArrayLike, y: jax.Array, sizes: Sequence[int],
                    key: jax.Array, num_probes: int) -> jax.Array:
    """Isotropic P sigma_iso^2 = mean over random z of V_z (the paper's per-entry sigma^2, times P).

    Hutchinson form of (1/(N P)) sum_i ||H_i - H_emp||_F^2, i.e. P times the mean per-entry
    variance.

    Args:
      theta, X, y, sizes: as in :func:`per_sample_loss`, with N samples.
      key: PRNG key of the Gaussian probes.
      num_probes: probes.

    Returns:
      Scalar P sigma_iso^2.
    """
    Z = jax.random.normal(key, (num_probes, theta.shape[0]))
    return jnp.mean(jnp.stack([directional_noise(theta, X, y, sizes, z) for z in Z]))


# ------------------------------------------------------------------------- optimisers and training


class OptState(NamedTuple):
    """Optimizer state: m (SGD velocity or Adam first moment), v (Adam second moment), t (step count)."""

    m: jax.Array
    v: jax.Array
    t: jax.Array


def _opt_init(theta):
    return OptState(jnp.zeros_like(theta), jnp.zeros_like(theta), jnp.zeros((), jnp.int32))


def _opt_update(is_adam, theta, g, state: OptState, lr, momentum=0.0,
                betas=(0.9, 0.999), eps=1e-8):
    """One step of heavy-ball SGD (v <- momentum v - lr g) or, where ``is_adam``, Adam (Kingma & Ba,
    bias-corrected). Both are computed and one is selected, so the flag may be traced: SGD and Adam
    runs share one compile and can be vmapped together."""
    t = state.t + 1
    m_sgd = momentum * state.m - lr * g
    m = betas[0] * state.m + (1 - betas[0]) * g
    v = betas[1] * state.v + (1 - betas[1]) * g**2
    mhat, vhat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
    adam = theta - lr * mhat / (jnp.sqrt(vhat) + eps)
    pick = lambda a, b: jnp.where(is_adam, a, b)
    return pick(adam, theta + m_sgd), OptState(pick(m, m_sgd), pick(v, state.v), t)


def _adam_flag(optimizer: str) -> bool:
    """True for 'adam', False for 'sgd' (the flag of _opt_update); anything else raises."""
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    return optimizer == "adam"


def _loss_after_steps(is_adam, theta0, X, y, sizes, batch_size, lr, key, num_steps, max_batch):
    """Full-data loss after ``num_steps`` steps with batches of ``batch_size`` (<= max_batch) drawn
    without replacement each step; the batch is the first B of a random permutation (masked), so B can
    be traced and vmapped."""
    N = X.shape[0]
    mask = (jnp.arange(max_batch) < batch_size).astype(X.dtype)

    def step(carry, k):
        theta, state = carry
        idx = jax.random.permutation(k, N)[:max_batch]
        g = jax.grad(lambda t: jnp.sum(mask * per_sample_loss(t, X[idx], y[idx], sizes)) / batch_size)(theta)
        return _opt_update(is_adam, theta, g, state, lr), None

    (theta, _), _ = lax.scan(step, (theta0, _opt_init(theta0)), jax.random.split(key, num_steps))
    return jnp.mean(per_sample_loss(theta, X, y, sizes))


def max_stable_lr(optimizer: str, theta0: jax.Array, X: ArrayLike, y: jax.Array,
                  sizes: Sequence[int], batch_sizes: jax.Array, keys: jax.Array, num_steps: int,
                  max_batch: int, lr_bracket: tuple[float, float], bisection_steps: int,
                  loss_ceiling: float) -> tuple[jax.Array, jax.Array]:
    """Largest non-divergent learning rate per batch size and seed, by bisection in log lr.

    The paper's maximal learning rate (Sec. 2.3: SGD ~ B, Adam ~ sqrt B) made operational:
    divergence means the full-data loss after ``num_steps`` steps (fresh batches without
    replacement each step) is not finite or exceeds ``loss_ceiling``. Vmapped over batch sizes
    and seeds.

    Args:
      optimizer: 'sgd' or 'adam'.
      theta0: (P,) start; X (N, d) inputs; y (N,) labels; sizes the layer widths.
      batch_sizes: (nB,) batch sizes <= max_batch.
      keys: (S, 2) one key per seed.
      num_steps: optimiser steps per trial.
      max_batch: static upper bound of the batch sizes.
      lr_bracket: (low, high) initial bracket.
      bisection_steps: halvings of the log bracket.
      loss_ceiling: divergence threshold (e.g. the initial loss).

    Returns:
      (lo, hi), each (S, nB): lo did not diverge, hi did (lo == bracket[0] or hi == bracket[1]
      flags a bad bracket).
    """
    return _max_stable_lr(_adam_flag(optimizer), theta0, X, y, sizes, batch_sizes, keys, num_steps,
                          max_batch, lr_bracket, bisection_steps, loss_ceiling)


@partial(jax.jit, static_argnames=("sizes", "num_steps", "max_batch", "bisection_steps"))
def _max_stable_lr(is_adam, theta0, X, y, sizes, batch_sizes, keys, num_steps, max_batch, lr_bracket,
                   bisection_steps, loss_ceiling):
    """max_stable_lr with the optimizer a traced flag (one compile for SGD and Adam)."""
    run = lambda B, lr, k: _loss_after_steps(is_adam, theta0, X, y, sizes, B, lr, k, num_steps, max_batch)
    grid_run = jax.vmap(jax.vmap(run, in_axes=(0, 0, None)), in_axes=(None, 0, 0))
    shape = (keys.shape[0], batch_sizes.shape[0])
    lo, hi = jnp.full(shape, lr_bracket[0], float), jnp.full(shape, lr_bracket[1], float)

    def body(_, bounds):
        lo, hi = bounds
        mid = jnp.sqrt(lo * hi)
        final = grid_run(batch_sizes, mid, keys)
        diverged = ~(final <= loss_ceiling)  # NaN counts as divergence
        return jnp.where(diverged, lo, mid), jnp.where(diverged, mid, hi)

    return lax.fori_loop(0, bisection_steps, body, (lo, hi))


def linear_decay_factor(progress: ArrayLike) -> jax.Array:
    """The authors' "linearly decaying" schedule as a factor on the base lr (brief Sec. 2.6).

    1 for progress t/T <= 0.5, linear down to 0.01 at 0.9, 0.01 afterwards.

    Args:
      progress: t/T, any shape.

    Returns:
      The factor, same shape.
    """
    return jnp.interp(progress, jnp.array([0.0, 0.5, 0.9, 1.0]), jnp.array([1.0, 1.0, 0.01, 0.01]))


def train(optimizer: str, theta0: jax.Array, X: ArrayLike, y: jax.Array, sizes: Sequence[int],
          batch_size: int, epochs: int, lr: ArrayLike, key: jax.Array, momentum: ArrayLike = 0.0,
          decay: bool = False, logits: Callable = mlp_logits) -> jax.Array:
    """Mini-batch SGD (heavy ball) or Adam for a fixed number of epochs (the paper's recipe).

    Reshuffled each epoch, floor(N/B) steps per epoch, so fewer steps at larger B.

    Args:
      optimizer: 'sgd' or 'adam' (beta = 0.9/0.999, eps 1e-8).
      theta0: (P,) start.
      X: (N, d) inputs.
      y: (N,) labels.
      sizes: layer widths.
      batch_size: B.
      epochs: passes over the data.
      lr: base learning rate (scalar, may be traced).
      key: PRNG key of the batch order.
      momentum: heavy-ball momentum (SGD only).
      decay: multiply the lr by ``linear_decay_factor(step / total steps)``.
      logits: the model, (theta, X, sizes) -> (n, C) logits (mlp_logits, or convnet_logits with
        ``sizes`` its arch).

    Returns:
      (P,) final parameters.
    """
    return train_flagged(_adam_flag(optimizer), theta0, X, y, sizes, batch_size, epochs, lr, key,
                         momentum, decay, logits)


@partial(jax.jit, static_argnames=("sizes", "batch_size", "epochs", "decay", "logits"))
def train_flagged(is_adam: ArrayLike, theta0: jax.Array, X: ArrayLike, y: jax.Array,
                  sizes: Sequence[int], batch_size: int, epochs: int, lr: ArrayLike,
                  key: jax.Array, momentum: ArrayLike = 0.0, decay: bool = False,
                  logits: Callable = mlp_logits) -> jax.Array:
    """``train`` with the optimizer given as a flag that may be traced (True: Adam, False: SGD).

    One compile serves both optimizers, and SGD and Adam runs can be vmapped together (Sec. 5's
    scaling-rule grid).

    Args:
      is_adam: boolean scalar (may be traced): True for Adam, False for heavy-ball SGD.
      theta0, X, y, sizes, batch_size, epochs, lr, key, momentum, decay, logits: as in ``train``.

    Returns:
      (P,) final parameters.
    """
    total = epochs * (X.shape[0] // batch_size)
    lr_at = (lambda t: lr * linear_decay_factor(t.astype(theta0.dtype) / total)) if decay else (lambda t: lr)

    def epoch(carry, k):
        return _run_epoch(is_adam, carry, k, X, y, sizes, batch_size, lr_at, momentum,
                          logits), None

    (theta, _), _ = lax.scan(epoch, (theta0, _opt_init(theta0)), jax.random.split(key, epochs))
    return theta


def _run_epoch(is_adam, carry, key, X, y, sizes, batch_size: int, lr_at, momentum,
               logits=mlp_logits):
    """One pass over a ``key``-shuffled data set in floor(N/B) mini-batch steps from carry = (theta,
    OptState); ``lr_at(t)`` is the step size at optimizer step count t. Returns the new carry."""
    N = X.shape[0]
    steps = N // batch_size

    def step(carry, idx):
        theta, state = carry
        g = jax.grad(lambda t: jnp.mean(cross_entropy(logits(t, X[idx], sizes), y[idx])))(theta)
        new = _opt_update(is_adam, theta, g, state, lr_at(state.t), momentum)
        return jax.tree.map(lambda a, b: a.astype(b.dtype), new, carry), None  # keep float32

    batches = jax.random.permutation(key, N)[:steps * batch_size].reshape(steps, batch_size)
    return lax.scan(step, carry, batches)[0]


# ------------------------------------------------------------------------- linear (quadratic) proxy


@partial(jax.jit, static_argnames=("num_steps", "max_batch", "replicates", "bisection_steps"))
def linear_ms_max_lr(key: jax.Array, h_diag: jax.Array, batch_sizes: jax.Array, num_steps: int,
                     max_batch: int, replicates: int, lr_bracket: tuple[float, float],
                     bisection_steps: int) -> tuple[jax.Array, jax.Array]:
    """Mean-square-stable SGD learning rate of noiseless linear regression (brief C5, test 1).

    Fresh Gaussian inputs x ~ N(0, diag(h)) (Hessian = GGN = batch covariance): the error follows
    e <- (I - lr H_B) e, and lr is unstable when the replicate mean of ||e||^2 grows over the
    second half of ``num_steps`` steps. Bisection in log lr, vmapped over batch sizes.

    Args:
      key: PRNG key.
      h_diag: (P,) population Hessian diagonal.
      batch_sizes: (nB,) batch sizes <= max_batch.
      num_steps: SGD steps per trial.
      max_batch: static upper bound of the batch sizes.
      replicates: independent runs averaged per trial.
      lr_bracket: (low, high) initial bracket.
      bisection_steps: halvings of the log bracket.

    Returns:
      (lo, hi), each (nB,): lo stable, hi unstable.
    """
    P = h_diag.shape[0]
    mask = jnp.arange(max_batch) < batch_sizes[:, None]  # (nB, max_batch)
    sqrt_h = jnp.sqrt(h_diag)

    def growth(lr, m, B):
        def step(e, k):
            X = jax.random.normal(k, (replicates, max_batch, P)) * sqrt_h
            r = jnp.einsum("rbp,rp->rb", X, e) * m
            e = e - lr * jnp.einsum("rbp,rb->rp", X, r) / B
            return e, jnp.mean(jnp.sum(e**2, -1))
        e0 = jax.random.normal(jax.random.fold_in(key, 1), (replicates, P)) / jnp.sqrt(P)
        _, norms = lax.scan(step, e0, jax.random.split(key, num_steps))
        return ~(norms[-1] <= norms[num_steps // 2 - 1])  # NaN counts as growth

    grow = jax.vmap(growth)
    lo, hi = jnp.full(batch_sizes.shape, lr_bracket[0], float), jnp.full(batch_sizes.shape, lr_bracket[1], float)

    def body(_, bounds):
        lo, hi = bounds
        mid = jnp.sqrt(lo * hi)
        unstable = grow(mid, mask, batch_sizes.astype(float))
        return jnp.where(unstable, lo, mid), jnp.where(unstable, mid, hi)

    return lax.fori_loop(0, bisection_steps, body, (lo, hi))


# ------------------------------------------------------------------------- SLQ learning-rate / momentum learner


class LearnedHyper(NamedTuple):
    """The SLQ learner's (L, mu) and the (lr, momentum) its rule gives (Sec. 2.5)."""

    L: jax.Array
    mu: jax.Array
    lr: jax.Array
    momentum: jax.Array


def learner_from_ritz(nodes: jax.Array, weights: jax.Array, drop_weight_above: float = 0.5,
                      rule: str = "polyak") -> LearnedHyper:
    """The SLQ learner (brief Sec. 2.5): (L, mu) from Ritz values, then (lr, momentum) by ``rule``.

    L = largest |Ritz value|, mu = smallest |Ritz value| among nodes whose quadrature weight is
    <= ``drop_weight_above`` (the authors' code drops heavy nodes, which sit on the near-zero
    bulk). Sign-blind as in the authors' code. For a rank-r matrix keep m <= r + 1 Lanczos steps:
    past the breakdown the zero eigenvalue can come back as several degenerate nodes.

    Args:
      nodes: (m,) Ritz values.
      weights: (m,) quadrature weights.
      drop_weight_above: weight above which a node is ignored for mu.
      rule: a key of LEARNER_RULES ('polyak' = Polyak's heavy ball).

    Returns:
      ``LearnedHyper`` (L, mu, lr, momentum), scalars.
    """
    return _learner_from_ritz(nodes, weights, drop_weight_above, _rule_index(rule))


def _rule_index(rule: str) -> int:
    """Position of ``rule`` in LEARNER_RULES (a traced rule index shares one compile)."""
    if rule not in LEARNER_RULES:
        raise ValueError(f"unknown learner rule {rule!r}; expected one of {sorted(LEARNER_RULES)}")
    return list(LEARNER_RULES).index(rule)


def _learner_from_ritz(nodes, weights, drop_weight_above, rule_index) -> LearnedHyper:
    """learner_from_ritz with the rule as a (possibly traced) index into LEARNER_RULES."""
    mags = jnp.abs(nodes)
    L = jnp.max(mags)
    mu = jnp.min(jnp.where(weights <= drop_weight_above, mags, jnp.inf))
    lr, momentum = lax.switch(rule_index, [lambda a, b, f=f: f(a, b) for f in LEARNER_RULES.values()],
                              L, mu)
    return LearnedHyper(L, mu, lr, momentum)


def lanczos_learner(matvec: Callable[[jax.Array], jax.Array], v0: jax.Array, num_steps: int,
                    drop_weight_above: float = 0.5, rule: str = "polyak") -> LearnedHyper:
    """Learner hyper-parameters from one ``num_steps``-step Lanczos run from v0 (brief Sec. 2.5).

    Args:
      matvec: v -> A v for a symmetric (P, P) A.
      v0: (P,) start vector.
      num_steps: m in [1, P] (the authors use 20).
      drop_weight_above: see learner_from_ritz.
      rule: a key of LEARNER_RULES.

    Returns:
      ``LearnedHyper`` scalars.
    """
    return _lanczos_learner(matvec, v0, num_steps, drop_weight_above, _rule_index(rule))


def _lanczos_learner(matvec, v0, num_steps, drop_weight_above, rule_index) -> LearnedHyper:
    """lanczos_learner with the rule as a (possibly traced) index into LEARNER_RULES."""
    r = linalg.ritz(linalg.lanczos(matvec, v0, num_steps))
    return _learner_from_ritz(r.nodes, r.weights, drop_weight_above, rule_index)


class LearnerRun(NamedTuple):
    """Result of train_with_learner: final parameters and per-epoch hypers, losses, diagnostics."""

    theta: jax.Array  # final parameters
    hypers: LearnedHyper  # per-epoch learned (L, mu, lr, momentum)
    losses: jax.Array  # per-epoch full-data training loss (after the epoch)
    train_batch_top: jax.Array  # per epoch: largest Ritz value of one training-size batch Hessian


def _gathered_hessian_matvec(theta, X, y, idx, sizes):
    """v -> Hessian-vector product of the mean loss over the samples ``idx`` (gathered, not masked)."""
    return lambda v: linalg.hvp(lambda t: jnp.mean(per_sample_loss(t, X[idx], y[idx], sizes)), theta, v)


def train_with_learner(theta0: jax.Array, X: ArrayLike, y: jax.Array, sizes: Sequence[int],
                       batch_size: int, epochs: int, key: jax.Array, curvature_batch: int,
                       lanczos_steps: int, drop_weight_above: float = 0.5,
                       rule: str = "polyak") -> LearnerRun:
    """Heavy-ball SGD with (lr, momentum) re-learned every epoch by the SLQ learner (Sec. 2.5).

    Each epoch: ``lanczos_steps`` Lanczos steps on the Hessian of a random ``curvature_batch``
    sample batch; as a stability diagnostic also the top Ritz value of one random ``batch_size``
    batch (heavy ball is stable on a quadratic iff lr lambda < 2 (1 + momentum)).

    Args:
      theta0: (P,) start.
      X: (N, d) inputs.
      y: (N,) labels.
      sizes: layer widths.
      batch_size: training batch B.
      epochs: epochs (one learner update each).
      key: PRNG key.
      curvature_batch: samples of the curvature batch.
      lanczos_steps: m.
      drop_weight_above: see learner_from_ritz.
      rule: a key of LEARNER_RULES.

    Returns:
      ``LearnerRun``: final theta (P,), per-epoch hypers, losses and train-batch tops (epochs,).
    """
    return _train_with_learner(theta0, X, y, sizes, batch_size, epochs, key, curvature_batch,
                               lanczos_steps, drop_weight_above, _rule_index(rule))


@partial(jax.jit, static_argnames=("sizes", "batch_size", "epochs", "curvature_batch", "lanczos_steps"))
def _train_with_learner(theta0, X, y, sizes, batch_size, epochs, key, curvature_batch, lanczos_steps,
                        drop_weight_above, rule_index) -> LearnerRun:
    """train_with_learner with the rule a traced index (one compile serves every rule)."""
    N = X.shape[0]

    def epoch(carry, k):
        theta, state = carry
        k_curv, k_v0, k_perm, k_diag = jax.random.split(k, 4)
        v0 = jax.random.normal(k_v0, theta.shape)
        curv = jax.random.permutation(k_curv, N)[:curvature_batch]
        hyper = _lanczos_learner(_gathered_hessian_matvec(theta, X, y, curv, sizes), v0, lanczos_steps,
                                 drop_weight_above, rule_index)
        diag = jax.random.permutation(k_diag, N)[:batch_size]
        train_top = linalg.ritz(linalg.lanczos(_gathered_hessian_matvec(theta, X, y, diag, sizes), v0,
                                               lanczos_steps)).nodes[-1]
        theta, state = _run_epoch(False, (theta, state), k_perm, X, y, sizes, batch_size, lambda t: hyper.lr,
                                  hyper.momentum)
        return (theta, state), (hyper, jnp.mean(per_sample_loss(theta, X, y, sizes)), train_top)

    (theta, _), (hypers, losses, tops) = lax.scan(epoch, (theta0, _opt_init(theta0)),
                                                  jax.random.split(key, epochs))
    return LearnerRun(theta, hypers, losses, tops)


# ------------------------------------------------------------------------- small conv net (CIFAR)


def convnet_shapes(arch: tuple) -> tuple:
    """Parameter shapes of the small conv net ``arch`` = (height, width, channels, widths, classes).

    Each width is a 3x3 'SAME' convolution (HWIO kernel and bias), ReLU and 2x2 average pooling;
    then global average pooling and a dense layer to the classes.

    Args:
      arch: (height, width, input channels, tuple of conv widths, classes).

    Returns:
      Tuple of shapes, in the order of the flat parameter vector.
    """
    _, _, c, widths, classes = arch
    shapes = []
    for out in widths:
        shapes += [(3, 3, c, out), (out,)]
        c = out
    return tuple(shapes + [(c, classes), (classes,)])


def convnet_num_params(arch: tuple) -> int:
    """Number of parameters P of the conv net ``arch`` (see convnet_shapes).

    Args:
      arch: (height, width, channels, widths, classes).

    Returns:
      P.
    """
    return int(sum(np.prod(s) for s in convnet_shapes(arch)))


def init_convnet(key: jax.Array, arch: tuple, dtype: jnp.dtype = jnp.float32) -> jax.Array:
    """Flat parameters of the conv net: kernels N(0, 2/(9 out)) as the authors' VGG (brief
    Sec. 2.6), dense N(0, 1/fan_in), biases 0.

    Args:
      key: PRNG key.
      arch: see convnet_shapes.
      dtype: parameter dtype (float32: the GPU-sized CIFAR runs).

    Returns:
      (P,) flat parameters.
    """
    shapes = convnet_shapes(arch)
    parts = []
    for k, s in zip(jax.random.split(key, len(shapes)), shapes):
        if len(s) == 1:
            parts.append(jnp.zeros(s, dtype))
        else:
            var = 2.0 / (9 * s[-1]) if len(s) == 4 else 1.0 / s[0]
            parts.append((jax.random.normal(k, s, dtype) * jnp.sqrt(var)).ravel())
    return jnp.concatenate([p.ravel() for p in parts])


def convnet_logits(theta: jax.Array, X: ArrayLike, arch: tuple) -> jax.Array:
    """Logits of the conv net (lax.conv_general_dilated, NHWC).

    Args:
      theta: (P,) flat parameters.
      X: (n, height, width, channels) images.
      arch: see convnet_shapes.

    Returns:
      (n, classes) logits.
    """
    shapes, h, start = convnet_shapes(arch), jnp.asarray(X, theta.dtype), 0
    params = []
    for s in shapes:
        size = int(np.prod(s))
        params.append(theta[start:start + size].reshape(s))
        start += size
    for W, b in zip(params[:-2:2], params[1:-2:2]):
        h = lax.conv_general_dilated(h, W, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
        h = jax.nn.relu(h)
        n, H, Wd, C = h.shape
        if H % 2 == 0 and Wd % 2 == 0:
            h = h.reshape(n, H // 2, 2, Wd // 2, 2, C).mean((2, 4))
    return h.mean((1, 2)) @ params[-2] + params[-1]
