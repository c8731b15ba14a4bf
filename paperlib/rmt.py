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
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from paperlib import linalg

# ------------------------------------------------------------------------- closed forms


def finite_population_factor(batch_size, population=None):
    """c_B = (1/B)(N - B)/(N - 1): variance factor of a mean of B samples drawn without replacement from
    N (c_B = 1/B when ``population`` is None, i.e. fresh samples)."""
    B = jnp.asarray(batch_size, dtype=float)
    if population is None:
        return 1.0 / B
    return (population - B) / (B * (population - 1.0))


def wigner_lambda_max(spike, P, sigma2, batch_size, population=None):
    """Spiked-Wigner extremal eigenvalue of H_emp + eps (BBP form): lambda + s^2/lambda if lambda > s,
    else the edge 2 s, with s^2 = P sigma^2 c_B. Returns (value, outlier?) arrays over ``batch_size``.
    The most negative eigenvalue follows with spike -> -lambda_min and a sign flip."""
    s2 = P * sigma2 * finite_population_factor(batch_size, population)
    outlier = spike**2 > s2
    return jnp.where(outlier, spike + s2 / spike, 2.0 * jnp.sqrt(s2)), outlier


def wigner_switch_batch(spike, P, sigma2, population=None):
    """B* where the outlier meets the edge (lambda^2 = P sigma^2 c_B): P sigma^2 / lambda^2, or with the
    finite-population factor N / (1 + (N - 1) lambda^2 / (P sigma^2))."""
    ratio = spike**2 / (P * sigma2)
    if population is None:
        return 1.0 / ratio
    return population / (1.0 + (population - 1.0) * ratio)


def wishart_lambda_max(spike, P, sigma2, batch_size):
    """Spiked-Wishart largest eigenvalue of (1/B) sum_i x_i x_i^T, x ~ N(0, diag(l, sigma^2, ...)), q = P/B
    (BBP 2005). Returns (value, outlier?)."""
    q = P / jnp.asarray(batch_size, dtype=float)
    outlier = spike > sigma2 * (1.0 + jnp.sqrt(q))
    return jnp.where(outlier, spike * (1.0 + q * sigma2 / (spike - sigma2)),
                     sigma2 * (1.0 + jnp.sqrt(q)) ** 2), outlier


def wishart_switch_batch(spike, P, sigma2):
    """B* where l = sigma^2 (1 + sqrt(P/B)): P / (l/sigma^2 - 1)^2."""
    return P / (spike / sigma2 - 1.0) ** 2


def directional_lambda_max(lambda_emp, V_u, batch_size, population=None):
    """Second-order perturbation of the top eigenvalue: lambda_emp + c_B V_u / lambda_emp (equals the
    Wigner outlier branch when V_u = P sigma^2)."""
    return lambda_emp + finite_population_factor(batch_size, population) * V_u / lambda_emp


def kaniel_paige_bottom_bound(eigs, cos_angle, num_steps):
    """Kaniel-Paige-Saad bound on the smallest Ritz value after m = ``num_steps`` Lanczos steps:
    theta_1 - lambda_1 <= (lambda_n - lambda_1) (tan phi / T_{m-1}(1 + 2 gamma))^2 with
    gamma = (lambda_2 - lambda_1) / (lambda_n - lambda_2), phi the angle between the start vector and the
    bottom eigenvector (|cos phi| = ``cos_angle``), T_k the Chebyshev polynomial (Saad 2011, Thm 6.4).
    ``eigs`` ascending (numpy); computed in logs so large m does not overflow."""
    eigs = np.asarray(eigs, dtype=float)
    spread = eigs[-1] - eigs[0]
    gamma = (eigs[1] - eigs[0]) / (eigs[-1] - eigs[1])
    z = (num_steps - 1) * np.arccosh(1.0 + 2.0 * gamma)
    log_cheb = np.logaddexp(z, -z) - np.log(2.0)
    log_tan = 0.5 * np.log1p(-cos_angle**2) - np.log(cos_angle)
    return spread * np.exp(2.0 * (log_tan - log_cheb))


def polyak_heavy_ball(L, mu):
    """Polyak's heavy-ball parameters for a quadratic with spectrum in [mu, L]:
    lr = 4 / (sqrt L + sqrt mu)^2, momentum = ((sqrt L - sqrt mu) / (sqrt L + sqrt mu))^2."""
    sL, smu = jnp.sqrt(L), jnp.sqrt(mu)
    return 4.0 / (sL + smu) ** 2, ((sL - smu) / (sL + smu)) ** 2


def authors_nesterov_rule(L, mu):
    """The rule of the authors' most-run learner script (GadamX ``run_ssgdmn_fastanddirty.py``):
    lr = sqrt(mu / L), momentum = (sqrt L - sqrt mu) / (sqrt L + sqrt mu) (Nesterov's strongly convex momentum;
    the lr is their choice and is not scale-equivariant)."""
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


def spiked_wigner_batches(key, P: int, N: int, spike: float, sigma2: float, batch_sizes, draws: int):
    """Synthetic per-sample Hessians H_i = spike u u^T + W_i - mean_j W_j (W_i symmetric, iid entries of
    variance sigma^2, regenerated from ``fold_in(key, i)`` so nothing of size N P^2 is stored; H_emp =
    spike u u^T exactly). For each B, ``draws`` batches without replacement: returns the top eigenvalue
    and the squared overlap of its eigenvector with u, each of shape (len(batch_sizes), draws). The
    per-entry population variance of eps is sigma^2 (N-1)/N, which with c_B gives s^2 exactly."""
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


def spiked_wishart_batches(key, P: int, spike: float, sigma2: float, batch_sizes, draws: int):
    """Largest eigenvalue of the batch GGN of linear regression, G_B = (1/B) sum_i x_i x_i^T with fresh
    x ~ N(0, diag(spike, sigma^2, ..., sigma^2)) (Hessian = GGN): for batch size number a, the inputs
    are normal(split(key, len(batch_sizes))[a], (draws, B, P)) scaled. Shape (len(batch_sizes), draws)."""
    if min(batch_sizes) < 1:
        raise ValueError(f"batch sizes must be >= 1, got {batch_sizes}")
    keys = jax.random.split(key, len(batch_sizes))
    return np.stack([np.asarray(_wishart_top(k, P, spike, sigma2, int(B), draws))
                     for k, B in zip(keys, batch_sizes)])


# ------------------------------------------------------------------------- tanh MLP on digits


def mlp_num_params(sizes) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def init_mlp(key, sizes):
    """Flat parameters of a tanh MLP with layer widths ``sizes``: W ~ N(0, 1/fan_in), b = 0."""
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list >= 2 positive widths, got {sizes}")
    parts = []
    for k, (a, b) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        parts += [jax.random.normal(k, (a * b,)) / jnp.sqrt(a), jnp.zeros(b)]
    return jnp.concatenate(parts)


def mlp_logits(theta, X, sizes):
    """Logits (n, C) of the tanh MLP with flat parameters theta."""
    h, start = X, 0
    for layer, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = theta[start:start + a * b].reshape(a, b)
        c = theta[start + a * b:start + a * b + b]
        start += a * b + b
        h = h @ W + c
        if layer < len(sizes) - 2:
            h = jnp.tanh(h)
    return h


def cross_entropy(logits, y):
    """Per-sample softmax cross-entropy."""
    return jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0]


def per_sample_loss(theta, X, y, sizes):
    return cross_entropy(mlp_logits(theta, X, sizes), y)


def weighted_loss(theta, X, y, weights, sizes):
    """Batch loss (1/B) sum_{i in S} l_i with S given by a 0/1 mask ``weights`` over the N samples
    (weight decay and dropout are not part of the loss, as in the paper's Hessian code)."""
    return jnp.sum(weights * per_sample_loss(theta, X, y, sizes)) / jnp.sum(weights)


def accuracy(theta, X, y, sizes):
    return jnp.mean(jnp.argmax(mlp_logits(theta, X, sizes), -1) == y)


def batch_hessian_matvec(theta, X, y, weights, sizes):
    """v -> H_batch v by forward-over-reverse differentiation of the masked batch loss."""
    return lambda v: linalg.hvp(lambda t: weighted_loss(t, X, y, weights, sizes), theta, v)


def batch_ggn_matvec(theta, X, y, weights, sizes):
    """v -> G_batch v, the Gauss-Newton matrix (1/B) sum_{i in S} J_i^T (diag p_i - p_i p_i^T) J_i."""
    out_loss = lambda logits: jnp.sum(weights * cross_entropy(logits, y)) / jnp.sum(weights)
    return lambda v: linalg.gauss_newton_vp(lambda t: mlp_logits(t, X, sizes), out_loss, theta, v)


def batch_residual_matvec(theta, X, y, weights, sizes):
    """v -> (H_batch - G_batch) v, the part of the Hessian that the Gauss-Newton matrix leaves out
    (sum_i sum_c dl_i/dz_c d^2 z_c/dtheta^2; the authors' "nonggn" spectra). It carries the negative
    curvature, since G_batch is positive semi-definite."""
    hess = batch_hessian_matvec(theta, X, y, weights, sizes)
    ggn = batch_ggn_matvec(theta, X, y, weights, sizes)
    return lambda v: hess(v) - ggn(v)


CURVATURES = {"hessian": batch_hessian_matvec, "ggn": batch_ggn_matvec, "residual": batch_residual_matvec}


def random_subset_masks(key, N: int, batch_sizes, draws: int):
    """0/1 masks (len(batch_sizes), draws, N) of uniformly random subsets of size B, without replacement."""
    ranks = jnp.argsort(jnp.argsort(jax.random.uniform(key, (len(batch_sizes), draws, N)), -1), -1)
    return (ranks < jnp.asarray(batch_sizes)[:, None, None]).astype(float)


class BatchExtremes(NamedTuple):
    top: jax.Array  # largest Ritz value
    bottom: jax.Array  # smallest Ritz value
    rayleigh: jax.Array  # v0^T A v0 / ||v0||^2 (first Lanczos coefficient)


@partial(jax.jit, static_argnames=("sizes", "num_steps", "curvature", "rows"))
def batch_extremes(theta, X, y, masks, sizes, v0, num_steps: int, curvature: str = "hessian",
                   rows: int | None = None) -> BatchExtremes:
    """Extreme Ritz values (``num_steps`` Lanczos steps, full re-orthogonalisation, started from v0)
    of the batch Hessian, GGN or H - GGN (``curvature``, a key of CURVATURES) for every mask in
    ``masks`` (..., N), vmapped; also the Rayleigh quotient at v0. Starting from the full-data top eigenvector u guarantees top >= u^T H_B u per batch, and since
    E[u^T H_B u] = lambda_emp exactly, E[top - u^T H_B u] is a low-variance estimate of the excess.
    ``rows``: when every mask has at most ``rows`` ones, each matrix-vector product runs on the
    mask's samples gathered into ``rows`` rows (zero-padded weights) instead of all N (same values,
    cost ~ rows/N)."""
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
def batch_slq(theta, X, y, weights, sizes, key, num_probes: int, num_steps: int,
              curvature: str = "hessian") -> linalg.Ritz:
    """SLQ Ritz nodes/weights (num_probes, num_steps) of one batch Hessian, GGN or H - GGN."""
    matvec = CURVATURES[curvature]
    return linalg.stochastic_lanczos_quadrature(matvec(theta, X, y, weights, sizes), theta.shape[0], key,
                                                num_probes, num_steps)


@partial(jax.jit, static_argnames=("sizes", "num_steps"))
def top_eigenpair(theta, X, y, sizes, key, num_steps: int):
    """Top eigenvalue and eigenvector of the full-data Hessian (Lanczos Ritz pair)."""
    matvec = batch_hessian_matvec(theta, X, y, jnp.ones(X.shape[0]), sizes)
    return linalg.top_ritz_pair(linalg.lanczos(matvec, jax.random.normal(key, theta.shape), num_steps))


@partial(jax.jit, static_argnames=("sizes", "chunk"))
def directional_noise(theta, X, y, sizes, u, chunk: int = 256):
    """V_u = (1/N) sum_i ||(H_i - H_emp) u||^2 from per-sample HVPs (the paper's sigma^2 measured along u,
    playing P sigma^2 in the outlier formula). With u a random unit vector (averaged) this is the
    isotropic per-entry estimate P * mean_jk Var(H_i,jk)."""
    u = u / jnp.linalg.norm(u)
    Hu = batch_hessian_matvec(theta, X, y, jnp.ones(X.shape[0]), sizes)(u)
    one = lambda xy: jnp.sum((linalg.hvp(lambda t: per_sample_loss(t, xy[0][None], xy[1][None], sizes)[0],
                                         theta, u) - Hu) ** 2)
    return jnp.mean(lax.map(one, (X, y), batch_size=chunk))


def isotropic_noise(theta, X, y, sizes, key, num_probes: int):
    """Isotropic estimate P sigma_iso^2 = mean over random unit z of V_z (Hutchinson form of
    (1/(N P)) sum_i ||H_i - H_emp||_F^2, i.e. P times the mean per-entry variance)."""
    Z = jax.random.normal(key, (num_probes, theta.shape[0]))
    return jnp.mean(jnp.stack([directional_noise(theta, X, y, sizes, z) for z in Z]))


# ------------------------------------------------------------------------- optimisers and training


class OptState(NamedTuple):
    m: jax.Array
    v: jax.Array
    t: jax.Array


def _opt_init(theta):
    return OptState(jnp.zeros_like(theta), jnp.zeros_like(theta), jnp.zeros((), jnp.int32))


def _opt_update(optimizer: str, theta, g, state: OptState, lr, momentum=0.0,
                betas=(0.9, 0.999), eps=1e-8):
    """One step of 'sgd' (heavy ball v <- momentum v - lr g) or 'adam' (Kingma & Ba, bias-corrected)."""
    t = state.t + 1
    if optimizer == "sgd":
        m = momentum * state.m - lr * g
        return theta + m, OptState(m, state.v, t)
    m = betas[0] * state.m + (1 - betas[0]) * g
    v = betas[1] * state.v + (1 - betas[1]) * g**2
    mhat, vhat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
    return theta - lr * mhat / (jnp.sqrt(vhat) + eps), OptState(m, v, t)


def _check_optimizer(optimizer):
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")


def _loss_after_steps(optimizer, theta0, X, y, sizes, batch_size, lr, key, num_steps, max_batch):
    """Full-data loss after ``num_steps`` steps with batches of ``batch_size`` (<= max_batch) drawn
    without replacement each step; the batch is the first B of a random permutation (masked), so B can
    be traced and vmapped."""
    N = X.shape[0]
    mask = (jnp.arange(max_batch) < batch_size).astype(X.dtype)

    def step(carry, k):
        theta, state = carry
        idx = jax.random.permutation(k, N)[:max_batch]
        g = jax.grad(lambda t: jnp.sum(mask * per_sample_loss(t, X[idx], y[idx], sizes)) / batch_size)(theta)
        return _opt_update(optimizer, theta, g, state, lr), None

    (theta, _), _ = lax.scan(step, (theta0, _opt_init(theta0)), jax.random.split(key, num_steps))
    return jnp.mean(per_sample_loss(theta, X, y, sizes))


@partial(jax.jit, static_argnames=("optimizer", "sizes", "num_steps", "max_batch", "bisection_steps"))
def max_stable_lr(optimizer: str, theta0, X, y, sizes, batch_sizes, keys, num_steps: int, max_batch: int,
                  lr_bracket, bisection_steps: int, loss_ceiling):
    """Largest non-divergent learning rate per batch size by bisection in log lr, vmapped over
    ``batch_sizes`` (nB,) and seeds ``keys`` (S, 2). Divergence: the full-data loss after ``num_steps``
    steps is not finite or exceeds ``loss_ceiling`` (e.g. ln C, the loss of a uniform prediction). Returns (lo, hi) of shape (S, nB): lo did not
    diverge, hi did (if the bracket was valid: lo == bracket[0] or hi == bracket[1] flags a bad bracket)."""
    _check_optimizer(optimizer)
    run = lambda B, lr, k: _loss_after_steps(optimizer, theta0, X, y, sizes, B, lr, k, num_steps, max_batch)
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


def linear_decay_factor(progress):
    """The authors' "linearly decaying" schedule as a factor on the base lr (their training scripts):
    1 for progress t/T <= 0.5, linear down to 0.01 at 0.9, 0.01 afterwards."""
    return jnp.interp(progress, jnp.array([0.0, 0.5, 0.9, 1.0]), jnp.array([1.0, 1.0, 0.01, 0.01]))


@partial(jax.jit, static_argnames=("optimizer", "sizes", "batch_size", "epochs", "decay"))
def train(optimizer: str, theta0, X, y, sizes, batch_size: int, epochs: int, lr, key, momentum=0.0,
          decay: bool = False):
    """Mini-batch training for ``epochs`` epochs (reshuffled each epoch, floor(N/B) steps per epoch);
    returns the final parameters. Fixed epochs means fewer steps at larger B (the paper's recipe).
    ``decay``: the base lr is multiplied by ``linear_decay_factor(step / total steps)``."""
    _check_optimizer(optimizer)
    total = epochs * (X.shape[0] // batch_size)
    lr_at = (lambda t: lr * linear_decay_factor(t.astype(theta0.dtype) / total)) if decay else (lambda t: lr)

    def epoch(carry, k):
        return _run_epoch(optimizer, carry, k, X, y, sizes, batch_size, lr_at, momentum), None

    (theta, _), _ = lax.scan(epoch, (theta0, _opt_init(theta0)), jax.random.split(key, epochs))
    return theta


def _run_epoch(optimizer: str, carry, key, X, y, sizes, batch_size: int, lr_at, momentum):
    """One pass over a ``key``-shuffled data set in floor(N/B) mini-batch steps from carry = (theta,
    OptState); ``lr_at(t)`` is the step size at optimizer step count t. Returns the new carry."""
    N = X.shape[0]
    steps = N // batch_size

    def step(carry, idx):
        theta, state = carry
        g = jax.grad(lambda t: jnp.mean(per_sample_loss(t, X[idx], y[idx], sizes)))(theta)
        return _opt_update(optimizer, theta, g, state, lr_at(state.t), momentum), None

    batches = jax.random.permutation(key, N)[:steps * batch_size].reshape(steps, batch_size)
    return lax.scan(step, carry, batches)[0]


# ------------------------------------------------------------------------- linear (quadratic) proxy


@partial(jax.jit, static_argnames=("num_steps", "max_batch", "replicates", "bisection_steps"))
def linear_ms_max_lr(key, h_diag, batch_sizes, num_steps: int, max_batch: int, replicates: int,
                     lr_bracket, bisection_steps: int):
    """Mean-square-stable SGD learning rate on noiseless linear regression with fresh Gaussian inputs
    x ~ N(0, diag(h)) (Hessian = GGN = batch covariance): the error follows e <- (I - lr H_B) e, and lr is
    unstable when the replicate mean of ||e||^2 grows over the second half of ``num_steps`` steps.
    Bisection in log lr, vmapped over ``batch_sizes``. Returns (lo, hi) of shape (nB,)."""
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
    L: jax.Array
    mu: jax.Array
    lr: jax.Array
    momentum: jax.Array


def learner_from_ritz(nodes, weights, drop_weight_above: float = 0.5, rule: str = "polyak") -> LearnedHyper:
    """The SLQ learner: L = largest |Ritz value|, mu = smallest |Ritz value| among nodes whose quadrature
    weight is <= ``drop_weight_above`` (the authors' code drops heavy nodes, which sit on the near-zero
    bulk), then (lr, momentum) from ``rule`` (a key of LEARNER_RULES; "polyak" = Polyak's heavy ball).
    Sign-blind |theta| as in the authors' code. For a rank-r matrix keep m <= r + 1 Lanczos steps: past the
    breakdown the zero eigenvalue can come back as several degenerate nodes that share its weight."""
    if rule not in LEARNER_RULES:
        raise ValueError(f"unknown learner rule {rule!r}; expected one of {sorted(LEARNER_RULES)}")
    mags = jnp.abs(nodes)
    L = jnp.max(mags)
    mu = jnp.min(jnp.where(weights <= drop_weight_above, mags, jnp.inf))
    lr, momentum = LEARNER_RULES[rule](L, mu)
    return LearnedHyper(L, mu, lr, momentum)


def lanczos_learner(matvec, v0, num_steps: int, drop_weight_above: float = 0.5, rule: str = "polyak") -> LearnedHyper:
    """Learner hyper-parameters from one ``num_steps``-step Lanczos run from v0 on ``matvec``."""
    r = linalg.ritz(linalg.lanczos(matvec, v0, num_steps))
    return learner_from_ritz(r.nodes, r.weights, drop_weight_above, rule)


class LearnerRun(NamedTuple):
    theta: jax.Array  # final parameters
    hypers: LearnedHyper  # per-epoch learned (L, mu, lr, momentum)
    losses: jax.Array  # per-epoch full-data training loss (after the epoch)
    train_batch_top: jax.Array  # per epoch: largest Ritz value of one training-size batch Hessian


def _gathered_hessian_matvec(theta, X, y, idx, sizes):
    """v -> Hessian-vector product of the mean loss over the samples ``idx`` (gathered, not masked)."""
    return lambda v: linalg.hvp(lambda t: jnp.mean(per_sample_loss(t, X[idx], y[idx], sizes)), theta, v)


@partial(jax.jit, static_argnames=("sizes", "batch_size", "epochs", "curvature_batch", "lanczos_steps", "rule"))
def train_with_learner(theta0, X, y, sizes, batch_size: int, epochs: int, key, curvature_batch: int,
                       lanczos_steps: int, drop_weight_above: float = 0.5, rule: str = "polyak") -> LearnerRun:
    """Heavy-ball SGD whose (lr, momentum) are re-learned at the start of every epoch from a
    ``lanczos_steps``-step Lanczos run on the Hessian of a random ``curvature_batch``-sample batch.
    As a stability diagnostic it also records, at the same parameters, the top Ritz value of one random
    ``batch_size`` batch (heavy ball is stable on a quadratic iff lr * lambda < 2 (1 + momentum))."""
    N = X.shape[0]

    def epoch(carry, k):
        theta, state = carry
        k_curv, k_v0, k_perm, k_diag = jax.random.split(k, 4)
        v0 = jax.random.normal(k_v0, theta.shape)
        curv = jax.random.permutation(k_curv, N)[:curvature_batch]
        hyper = lanczos_learner(_gathered_hessian_matvec(theta, X, y, curv, sizes), v0, lanczos_steps,
                                drop_weight_above, rule)
        diag = jax.random.permutation(k_diag, N)[:batch_size]
        train_top = linalg.ritz(linalg.lanczos(_gathered_hessian_matvec(theta, X, y, diag, sizes), v0,
                                               lanczos_steps)).nodes[-1]
        theta, state = _run_epoch("sgd", (theta, state), k_perm, X, y, sizes, batch_size, lambda t: hyper.lr,
                                  hyper.momentum)
        return (theta, state), (hyper, jnp.mean(per_sample_loss(theta, X, y, sizes)), train_top)

    (theta, _), (hypers, losses, tops) = lax.scan(epoch, (theta0, _opt_init(theta0)),
                                                  jax.random.split(key, epochs))
    return LearnerRun(theta, hypers, losses, tops)
