"""Protocols of the Granziol, Zohren & Roberts (JMLR 2022) notebook: curvature sweeps over batch
sizes, the max-stable-learning-rate sweeps, the scaling-rule training over cross-validation folds
and the SLQ learner runs. The models and formulas live in :mod:`paperlib.rmt`; everything here is a
loop over seeds, folds, batch sizes or learning rates built from them.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from paperlib import linalg, rmt, stats


def interval_margins(samples, low, high):
    """Per-sample margins (s - low, high - s) of a quantity that should lie inside [low, high]; both
    significantly > 0 (rule "above") puts the mean inside the interval beyond its noise."""
    s = np.asarray(samples, float)
    return np.stack([s - low, high - s], axis=-1)


# ------------------------------------------------------------------------- curvature vs batch size


class CurvatureSweep(NamedTuple):
    lam: float  # top eigenvalue of the full-data matrix
    u: jax.Array  # its eigenvector (Lanczos Ritz vector)
    top: np.ndarray  # (len(batch_sizes), draws) largest Ritz value per batch, Lanczos started at u
    bottom: np.ndarray  # same shape, smallest Ritz value
    rayleigh: np.ndarray  # same shape, u^T A_B u (E = lam exactly)


SMALL_BATCH_ROWS = 64  # batches up to this size are gathered instead of masked over all N samples


def batch_extremes_bucketed(theta, X, y, masks, sizes, v0, num_steps: int,
                            curvature: str = "hessian") -> rmt.BatchExtremes:
    """rmt.batch_extremes over masks (nB, draws, N), with the batch sizes <= SMALL_BATCH_ROWS run on
    gathered rows (same values at a fraction of the cost) and the others masked; numpy arrays."""
    small = np.asarray(masks[:, 0].sum(-1)) <= SMALL_BATCH_ROWS
    out = [np.zeros(masks.shape[:2]) for _ in rmt.BatchExtremes._fields]
    for sel, rows in ((small, SMALL_BATCH_ROWS), (~small, None)):
        if sel.any():
            ext = rmt.batch_extremes(theta, X, y, masks[np.flatnonzero(sel)], sizes, v0, num_steps,
                                     curvature, rows)
            for o, a in zip(out, ext):
                o[sel] = np.asarray(a)
    return rmt.BatchExtremes(*out)


def curvature_sweep(theta, X, y, sizes, masks, key, lanczos_steps: int,
                    curvature: str = "hessian", top_steps: int = 80) -> CurvatureSweep:
    """Top eigenpair of the full-data ``curvature`` matrix (``top_steps`` Lanczos steps), then the
    extreme Ritz values of the batch matrices for every mask (nB, draws, N), each Lanczos run
    started at the full-data top eigenvector u (so top >= u^T A_B u per batch)."""
    full = rmt.CURVATURES[curvature](theta, X, y, jnp.ones(X.shape[0]), sizes)
    v0 = jax.random.normal(key, theta.shape)
    lam, u = linalg.top_ritz_pair(linalg.lanczos(full, v0, top_steps))
    ext = batch_extremes_bucketed(theta, X, y, masks, sizes, u, lanczos_steps, curvature)
    return CurvatureSweep(float(lam), u, *ext)


def control_variate_excess(sweep: CurvatureSweep):
    """E lambda_max(A_B) - lam estimated by mean(top - u^T A_B u) over draws (E u^T A_B u = lam):
    (mean, s.e.) per batch size."""
    return stats.mean_and_se(sweep.top - sweep.rayleigh, axis=1)


# ------------------------------------------------------------------------- max stable learning rate


def lr_sweep(optimizer: str, theta0, X, y, sizes, batch_sizes, keys, num_steps: int, bracket,
             bisection_steps: int, ceiling):
    """Per-seed largest non-divergent learning rate (geometric midpoint of the final bisection
    bracket), shape (seeds, len(batch_sizes)), and whether any seed hit the ends of ``bracket``."""
    B = np.asarray(batch_sizes)
    lo, hi = rmt.max_stable_lr(optimizer, theta0, X, y, sizes, jnp.asarray(B), keys, num_steps,
                               int(B.max()), bracket, bisection_steps, ceiling)
    lo, hi = np.asarray(lo), np.asarray(hi)
    at_edge = bool(np.any(lo <= bracket[0] * 1.0001) or np.any(hi >= bracket[1] * 0.9999))
    return np.sqrt(lo * hi), at_edge


def per_seed_slopes(batch_sizes, alphas):
    """Log-log slope of each seed's rates (rows of ``alphas``) against B."""
    return np.array([stats.loglog_slope(batch_sizes, a) for a in alphas])


def mean_batch_sharpness(theta, X, y, sizes, batch_sizes, draws: int, key, lanczos_steps: int):
    """E lambda_max(H_B) over ``draws`` random batches without replacement per B (Lanczos from a
    random start), with its s.e.: the quadratic model's stability bound is lr < 2 / lambda_max."""
    k_mask, k_v0 = jax.random.split(key)
    masks = rmt.random_subset_masks(k_mask, X.shape[0], list(batch_sizes), draws)
    v0 = jax.random.normal(k_v0, theta.shape)
    top = batch_extremes_bucketed(theta, X, y, masks, sizes, v0, lanczos_steps).top
    return stats.mean_and_se(top, axis=1)


# ------------------------------------------------------------------------- scaling rules in training


RULE_FACTOR = {"linear": lambda B, B0: B / B0, "sqrt": lambda B, B0: np.sqrt(B / B0)}


def train_folds(optimizer: str, batch_size: int, lrs, th0s, X, y, keys, sizes, epochs: int):
    """Final parameters (len(lrs), folds, P): fold f trains on X[f], y[f] from th0s[f] with batch
    order keys[f], the authors' linear-decay schedule, for every learning rate in ``lrs``."""
    run = lambda lr, th, Xk, yk, k: rmt.train(optimizer, th, Xk, yk, sizes, batch_size, epochs, lr, k,
                                              decay=True)
    per_fold = jax.vmap(run, in_axes=(None, 0, 0, 0, 0))
    return jax.vmap(per_fold, in_axes=(0, None, None, None, None))(jnp.asarray(lrs), th0s, X, y, keys)


def evaluate(thetas, X, y, sizes):
    """Accuracy (%) and mean cross-entropy of parameters (L, folds, P), each fold on its own X[f]."""
    per = lambda f: jax.vmap(jax.vmap(f), in_axes=(0, None, None))(thetas, X, y)
    acc = per(lambda t, Xk, yk: rmt.accuracy(t, Xk, yk, sizes))
    ce = per(lambda t, Xk, yk: jnp.mean(rmt.per_sample_loss(t, Xk, yk, sizes)))
    return 100 * np.asarray(acc, dtype=float), np.asarray(ce)


def rule_table(optimizer: str, bases, batch_sizes, th0s, folds, keys, sizes, epochs: int):
    """Test accuracy (%) of every rule in RULE_FACTOR, shape (len(bases), len(batch_sizes), folds)
    per rule: base rate ``bases[k]`` at batch_sizes[0], scaled by the rule at the larger B.
    ``folds`` = (X_train, y_train, X_test, y_test), stacked over folds."""
    Xf, yf, Xt, yt = folds
    bases, B0 = np.asarray(bases, float), batch_sizes[0]
    first = evaluate(train_folds(optimizer, B0, bases, th0s, Xf, yf, keys, sizes, epochs), Xt, yt,
                     sizes)[0]
    table = {rule: [first] for rule in RULE_FACTOR}
    for B in batch_sizes[1:]:
        lrs = np.concatenate([bases * f(B, B0) for f in RULE_FACTOR.values()])
        acc = evaluate(train_folds(optimizer, B, lrs, th0s, Xf, yf, keys, sizes, epochs), Xt, yt,
                       sizes)[0]
        for i, rule in enumerate(RULE_FACTOR):
            table[rule].append(acc[i * len(bases):(i + 1) * len(bases)])
    return {rule: np.stack(rows, axis=1) for rule, rows in table.items()}


def validated_base(optimizer: str, grid_lr, th0s, tune, val, keys, sizes, epochs: int,
                   batch_size: int = 32):
    """Index of the grid rate with the lowest mean validation cross-entropy after training at
    ``batch_size`` on ``tune`` = (X, y) stacked over folds; ``val`` = (X, y) held out of training."""
    thetas = train_folds(optimizer, batch_size, grid_lr, th0s, *tune, keys, sizes, epochs)
    ce = evaluate(thetas, *val, sizes)[1]
    return int(np.argmin(np.where(np.isfinite(ce), ce, np.inf).mean(1))), ce.mean(1)


# ------------------------------------------------------------------------- the SLQ learner


def linear_curvature_batches(key, P: int, batch_size: int, num_batches: int):
    """Least-squares curvature batches X (num_batches, B, P) with population covariance eigenvalues
    log-spaced in [0.1, 10] (Hessian X^T X / B), and one Lanczos start vector per batch."""
    k_x, k_v = jax.random.split(key)
    X = jax.random.normal(k_x, (num_batches, batch_size, P)) * jnp.sqrt(jnp.geomspace(0.1, 10.0, P))
    return X, jax.random.normal(k_v, (num_batches, P))


def exact_nonzero_extremes(X):
    """Exact (L, mu) of X^T X / B over its nonzero spectrum per batch, from numpy eigvalsh of the
    smaller of X X^T and X^T X (they share their nonzero eigenvalues)."""
    Xn = np.asarray(X)
    grams = [x @ x.T if x.shape[0] <= x.shape[1] else x.T @ x for x in Xn]
    e = np.stack([np.linalg.eigvalsh(g) for g in grams]) / Xn.shape[1]
    return e[:, -1], e[:, 0]


def learner_vs_polyak(key, P: int, batch_size: int, num_batches: int, num_steps: int):
    """Relative errors of the learner's (lr, momentum) from ``num_steps`` Lanczos steps against
    Polyak's formula at the exact nonzero extremes, and the condition numbers L / mu."""
    X, V0 = linear_curvature_batches(key, P, batch_size, num_batches)
    L, mu = exact_nonzero_extremes(X)
    lr_exact, mom_exact = (np.asarray(a) for a in rmt.polyak_heavy_ball(L, mu))
    learn = lambda x, v: rmt.lanczos_learner(lambda w: x.T @ (x @ w) / batch_size, v, num_steps)
    got = jax.jit(jax.vmap(learn))(X, V0)
    return np.asarray(got.lr) / lr_exact - 1, np.asarray(got.momentum) / mom_exact - 1, L / mu


def learner_seed_runs(rule: str, key, num_seeds: int, data, sizes, batch_size: int, epochs: int,
                      curvature_batch: int, lanczos_steps: int):
    """``num_seeds`` runs of heavy-ball SGD with the SLQ learner (own init and batches per seed) on
    ``data`` = (X, y, X_test, y_test). Returns the (initial loss, LearnerRun) pairs, whether each
    loss stayed finite and ended below its start, and the test accuracies (%)."""
    X, y, Xt, yt = data
    runs, ok, acc = [], [], []
    for s in range(num_seeds):
        ks = jax.random.fold_in(key, s)
        th = rmt.init_mlp(jax.random.fold_in(ks, 1), sizes)
        r = rmt.train_with_learner(th, X, y, sizes, batch_size, epochs, jax.random.fold_in(ks, 2),
                                   curvature_batch, lanczos_steps, rule=rule)
        l0 = float(jnp.mean(rmt.per_sample_loss(th, X, y, sizes)))
        runs.append((l0, r))
        losses = np.asarray(r.losses)
        ok.append(bool(np.all(np.isfinite(losses)) and losses[-1] < l0))
        acc.append(100 * float(rmt.accuracy(r.theta, Xt, yt, sizes)))
    return runs, np.array(ok), np.array(acc)


def kaniel_paige_momentum_steps(eigs, cos_angle, tol: float = 0.10, max_steps: int | None = None):
    """Smallest number of Lanczos steps m for which the Kaniel-Paige bound on the bottom Ritz value
    (rmt.kaniel_paige_bottom_bound) guarantees Polyak's momentum within relative ``tol`` of its
    exact value (top eigenvalue taken as exact); None if no m <= ``max_steps`` (default 4 n) does.
    ``eigs`` ascending, positive."""
    e = np.asarray(eigs, float)
    mom = lambda lo: ((np.sqrt(e[-1]) - np.sqrt(lo)) / (np.sqrt(e[-1]) + np.sqrt(lo))) ** 2
    for m in range(1, (max_steps or 4 * e.size) + 1):
        mu_hi = e[0] + rmt.kaniel_paige_bottom_bound(e, cos_angle, m)
        if mu_hi < e[-1] and mom(mu_hi) >= (1 - tol) * mom(e[0]):
            return m
    return None
