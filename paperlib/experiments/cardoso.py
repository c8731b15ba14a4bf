"""Protocols of the Cardoso et al. 2023 notebook (PaRIS particle Gibbs, arXiv 2301.00900).

Every study conditions on many simulated data records, never on one: a claim is a mean over records
(one independent record per chain, or a few chains per record), so its standard error covers both
the Monte Carlo and the record-to-record spread of the bias. Exact references: the Kalman/RTS
smoother (linear-Gaussian model) and grid quadrature (stochastic volatility, scalar state).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from paperlib import smc

LG = smc.LINEAR_GAUSSIAN
SV = smc.STOCHASTIC_VOLATILITY

CENTRED_CROSS_MOMENT = smc.AdditiveFunctional(
    initial=lambda x0, y0, c: jnp.zeros(1, x0.dtype),
    step=lambda xp, xn, yn, c: jnp.atleast_1d((xp[0] - c) * (xn[0] - c)),
)
"""h_T = sum_{t<T} (x_t - c)(x_{t+1} - c), c the functional's parameter (the SV mean mu)."""


# ------------------------------------------------------------------------------ data records


@partial(jax.jit, static_argnames=("model", "n_records", "n_steps", "sampler"))
def records(key, model, params, n_records: int, n_steps: int, sampler):
    """``n_records`` independent observation records (n_records, T + 1, d_y)."""
    keys = jax.random.split(key, n_records)
    return jax.vmap(lambda k: smc.simulate(k, model, params, n_steps, sampler)[1])(keys)


def lg_records(key, params, n_records: int, n_steps: int):
    return records(key, LG, params, n_records, n_steps, smc.lg_observation_sampler)


def sv_records(key, params, n_records: int, n_steps: int):
    return records(key, SV, params, n_records, n_steps, smc.sv_observation_sampler)


def lg_exact_cross_moment(params, recs) -> np.ndarray:
    """E[sum_t x_t x_{t+1} | y] of every record by the RTS smoother (float64, (M,))."""
    smoothers = jax.vmap(smc.rts_smoother, in_axes=(None, 0))(params, recs)
    return np.atleast_1d(smc.exact_cross_moment(smoothers))


def sv_grid(params, n_points: int, width: float = 8.0):
    """Evenly spaced grid over mu +- width stationary s.d. of the SV state."""
    sd = float(params.sigma) / np.sqrt(1 - float(params.rho) ** 2)
    return jnp.linspace(float(params.mu) - width * sd, float(params.mu) + width * sd, n_points)


def sv_exact(params, recs, grid) -> np.ndarray:
    """E[sum_t (x_t - mu)(x_{t+1} - mu) | y] of every SV record by grid quadrature, (M,)."""
    run = jax.vmap(lambda y: smc.grid_smoother(SV, CENTRED_CROSS_MOMENT, params, y, grid,
                                               params.mu).estimate[0])
    return np.asarray(jax.lax.map(run, recs[:, None]))[:, 0]


# ------------------------------------------------------------------------------ PaRIS / PPG bias


def ppg_errors(key, model, functional, params, recs, exact, n_particles: int, n_iterations: int,
               chains_per_record: int = 1, fparams=None) -> np.ndarray:
    """PPG chains (K = 2), ``chains_per_record`` on each record: estimate - exact of its record,
    (M, chains_per_record, k + 1); iteration 0 is PaRIS."""
    m = recs.shape[0]
    ys = jnp.repeat(recs, chains_per_record, axis=0)
    keys = jax.random.split(key, m * chains_per_record)
    est = smc.ppg(keys, model, functional, params, ys, n_particles, 2, n_iterations, fparams)
    est = est[..., 0]
    err = np.asarray(est) - np.repeat(np.asarray(exact), chains_per_record)[:, None]
    return err.reshape(m, chains_per_record, -1)


def contraction(errors):
    """One-step contraction bias(1)/bias(0) over chains (R, k + 1) and its delta-method s.e. (the
    two iterations of one chain are paired)."""
    d0, d1 = errors[:, 0], errors[:, 1]
    r = d1.mean() / d0.mean()
    var = np.var(d1, ddof=1) - 2 * r * np.cov(d0, d1)[0, 1] + r ** 2 * np.var(d0, ddof=1)
    return float(r), float(np.sqrt(var / len(d0)) / abs(d0.mean()))


def reduction(errors, step: int):
    """Per chain |bias(l)| - |bias(l+1)| with the sign of the mean bias at iteration 0, (R,)."""
    return -np.sign(errors[:, 0].mean()) * (errors[:, step + 1] - errors[:, step])


# ------------------------------------------------------------------------- Rao-Blackwell identity


@partial(jax.jit, static_argnames=("n_particles", "n_paths"))
def rao_blackwell(key, params, recs, n_particles: int, n_paths: int):
    """One conditional sweep per record (reference: its RTS mean); the sweep's estimate and the mean
    and s.e. of h over ``n_paths`` paths re-drawn from its backward indices, each (M,)."""
    def one(k, ys):
        ks, kp = jax.random.split(k)
        ref = smc.rts_smoother(params, ys).means
        sweep = jax.tree.map(lambda a: a[0], smc.paris_sweep(ks[None], LG, smc.CROSS_MOMENT, params,
                                                             ys, ref, n_particles, 2, True))
        paths = smc.redraw_paths(kp, sweep, 2, n_paths)
        h = jax.vmap(lambda q: smc.evaluate_functional(smc.CROSS_MOMENT, q, ys, params))(paths)
        h = h[:, 0]
        return sweep.estimate[0], h.mean(), h.std(ddof=1) / jnp.sqrt(n_paths)

    return jax.vmap(one)(jax.random.split(key, recs.shape[0]), recs)


# ------------------------------------------------------------------------------ K backward draws


def online_variance_by_k(key, params, recs, n_particles: int, k_values, runs_per_record: int):
    """PaRIS online estimates phi_{0:t}(h_t), ``runs_per_record`` runs on each record: the Monte
    Carlo variance per record and time, {K: (M, T + 1)}."""
    m = recs.shape[0]
    ys = jnp.repeat(recs, runs_per_record, axis=0)
    out = {}
    for K in k_values:
        keys = jax.random.split(jax.random.fold_in(key, K), m * runs_per_record)
        est = smc.paris(keys, LG, smc.CROSS_MOMENT, params, ys, n_particles, K, online=True)[..., 0]
        out[K] = np.asarray(est).reshape(m, runs_per_record, -1).var(1, ddof=1)
    return out


def ratio_of_means(num, den):
    """mean(num) / mean(den) over records (paired) and its delta-method s.e."""
    r = num.mean() / den.mean()
    resid = (num - r * den) / den.mean()
    return float(r), float(resid.std(ddof=1) / np.sqrt(len(num)))


# ------------------------------------------------------------------------------ learning


def lg_build(theta, q: float = 1.0):
    """Scalar LGSSM on theta = (a, log r), c = 1 and q fixed, x_0 from the stationary law."""
    return smc.scalar_lg_params(theta[0], q, 1.0, jnp.exp(theta[1]), p0=q / (1 - theta[0] ** 2))


LG_LEARN = smc.reparametrize(LG, lg_build)


@partial(jax.jit, static_argnames=("n_newton",))
def kalman_mle_batch(theta0, recs, n_newton: int = 30, h: float = 1e-5):
    """Exact MLE of :func:`lg_build` on every record by Newton steps on the Kalman log-likelihood
    from ``theta0`` (Hessian by central differences of the JAX gradient): thetas (M, 2), max
    |gradient| (M,) and largest Hessian eigenvalue (M,) at the end, to certify a maximum."""
    grad = jax.grad(lambda th, y: smc.kalman_filter(lg_build(th), y).log_likelihood)
    eye = h * jnp.eye(theta0.shape[0], dtype=theta0.dtype)

    def hessian(th, y):
        cols = jax.vmap(lambda e: (grad(th + e, y) - grad(th - e, y)) / (2 * h))(eye)
        return 0.5 * (cols + cols.T)

    def one(y):
        def step(th, _):
            return th - jnp.linalg.solve(hessian(th, y), grad(th, y)), None

        th, _ = jax.lax.scan(step, theta0, None, length=n_newton)
        return th, jnp.max(jnp.abs(grad(th, y))), jnp.linalg.eigvalsh(hessian(th, y))[-1]

    return jax.vmap(one)(recs)


class Learning(NamedTuple):
    thetas: dict  # (driver, N) -> (M, n_steps + 1, q) trajectories, chain m on record m
    polyak: dict  # (driver, N) -> (M, q) Polyak averages


def learn_lg(key, recs, theta0, paris_particles, ppg_particles: int, n_steps: int, step_size: float,
             lower, upper) -> Learning:
    """Score ascent on every record (one chain per record and driver), PaRIS-driven at each N of
    ``paris_particles`` and PPG-driven at ``ppg_particles``; drivers at the same N share one
    compiled program. Step gamma_n = step_size n^-0.6 on the score / T."""
    m = recs.shape[0]
    thetas, polyak = {}, {}
    for N in sorted(set(paris_particles) | {ppg_particles}):
        drivers = [d for d in ("paris", "ppg") if (d == "ppg") == (N == ppg_particles)
                   or (d == "paris" and N in paris_particles)]
        ys = jnp.concatenate([recs] * len(drivers))
        keys = jax.random.split(jax.random.fold_in(key, N), m * len(drivers))
        run = smc.score_ascent(keys, LG_LEARN, theta0, ys, N, 2, n_steps=n_steps,
                               step_size=step_size, step_decay=0.6, lower=lower, upper=upper,
                               driver=[d for d in drivers for _ in range(m)])
        for i, d in enumerate(drivers):
            thetas[(d, N)] = np.asarray(run.thetas[i * m:(i + 1) * m])
            polyak[(d, N)] = np.asarray(run.polyak[i * m:(i + 1) * m])
    return Learning(thetas, polyak)
