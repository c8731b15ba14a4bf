"""Protocols of the Cardoso et al. 2023 notebook (PaRIS particle Gibbs, arXiv 2301.00900).

Every study conditions on many simulated data records, never on one: a claim is a mean over records
(one independent record per chain, or a few chains per record), so its standard error covers both
the Monte Carlo and the record-to-record spread of the bias. Exact references: the Kalman/RTS
smoother (linear-Gaussian model) and grid quadrature (stochastic volatility, scalar state).
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

import matplotlib.pyplot as plt

from paperlib import smc, stats

LG = smc.LINEAR_GAUSSIAN
SV = smc.STOCHASTIC_VOLATILITY

CENTRED_CROSS_MOMENT = smc.AdditiveFunctional(
    initial=lambda x0, y0, c: jnp.zeros(1, x0.dtype),
    step=lambda xp, xn, yn, c: jnp.atleast_1d((xp[0] - c) * (xn[0] - c)),
)
"""h_T = sum_{t<T} (x_t - c)(x_{t+1} - c), c the functional's parameter (the SV mean mu)."""


# ------------------------------------------------------------------------------ settings

LEARN_LOWER = np.array([-0.999, -3.0, -3.0])
"""Box that score ascent clips (a, log q, log r) to (lower corner)."""
LEARN_UPPER = np.array([0.999, 2.0, 2.0])
"""Box that score ascent clips (a, log q, log r) to (upper corner)."""


def validate(cfg: SimpleNamespace) -> None:
    """Reject settings the protocols cannot use, before any compute.

    Args:
        cfg: the notebook's resolved settings.

    Returns:
        None; raises ValueError naming the offending knobs.
    """
    n_ppg = cfg.ppg_particles
    if len(n_ppg) < 2 or len(cfg.ppg_chains) != len(n_ppg) or 16 not in n_ppg or \
            any(b != 2 * a for a, b in zip(n_ppg, n_ppg[1:])):
        raise ValueError(f"ppg_particles must double, contain 16 and have one chain count each: "
                         f"{n_ppg}")
    if len(cfg.slope_particles) < 2 or sorted(set(cfg.slope_particles)) != cfg.slope_particles:
        raise ValueError("slope_particles must be >= 2 increasing sizes")
    burn = cfg.rollout_burn_ins
    if sorted(set(burn)) != burn or burn[0] != 0 or burn[-1] >= cfg.ppg_iterations:
        raise ValueError("roll-out burn-ins must increase from 0 and stay below ppg_iterations")
    if sorted(set(cfg.k_values)) != cfg.k_values or cfg.k_values[:2] != [1, 2]:
        raise ValueError("k_values must be increasing and start with [1, 2]")
    n_learn = cfg.learn_paris_particles
    if len(n_learn) < 2 or sorted(set(n_learn)) != n_learn or cfg.learn_ppg_particles not in n_learn:
        raise ValueError("need >= 2 increasing PaRIS sizes for learning, the PPG size among them")


# ------------------------------------------------------------------------------ data records


@partial(jax.jit, static_argnames=("model", "n_records", "n_steps", "sampler"))
def records(key: jax.Array, model: smc.StateSpaceModel, params: Any, n_records: int, n_steps: int,
            sampler: Callable) -> jax.Array:
    """Independent observation records simulated from a state-space model (Sec. 2 of the paper).

    Args:
        key: PRNG key.
        model: the :class:`paperlib.smc.StateSpaceModel`.
        params: its parameters.
        n_records: M, the number of records.
        n_steps: T, so each record has T + 1 observations.
        sampler: ``(key, x, params) -> y`` draws one observation given the state.

    Returns:
        (M, T + 1, d_y) records.
    """
    keys = jax.random.split(key, n_records)
    return jax.vmap(lambda k: smc.simulate(k, model, params, n_steps, sampler)[1])(keys)


def lg_records(key: jax.Array, params: smc.LGParams, n_records: int, n_steps: int) -> jax.Array:
    """:func:`records` of the linear-Gaussian model.

    Args:
        key: PRNG key.
        params: linear-Gaussian parameters.
        n_records: M.
        n_steps: T.

    Returns:
        (M, T + 1, d_y) records.
    """
    return records(key, LG, params, n_records, n_steps, smc.lg_observation_sampler)


def sv_records(key: jax.Array, params: smc.SVParams, n_records: int, n_steps: int) -> jax.Array:
    """:func:`records` of the stochastic-volatility model.

    Args:
        key: PRNG key.
        params: SV parameters.
        n_records: M.
        n_steps: T.

    Returns:
        (M, T + 1, 1) records.
    """
    return records(key, SV, params, n_records, n_steps, smc.sv_observation_sampler)


def lg_exact_cross_moment(params: smc.LGParams, recs: jax.Array) -> np.ndarray:
    """Exact phi_{0:T}(h_T) for h_T = sum_t x_t x_{t+1} on every record, by the RTS smoother.

    Args:
        params: the linear-Gaussian parameters.
        recs: (M, T + 1, d_y) records.

    Returns:
        (M,) float64 values sum_t [Cov(x_t, x_{t+1} | y) + m_t m_{t+1}].
    """
    smoothers = jax.vmap(smc.rts_smoother, in_axes=(None, 0))(params, recs)
    return np.atleast_1d(smc.exact_cross_moment(smoothers))


def record_sizes(cfg: SimpleNamespace) -> dict:
    """How many records each bias study needs, one record per run: {name: count}.

    Args:
        cfg: the notebook's settings (ppg_particles/ppg_chains, slope_particles/slope_chains,
            equal_budget_runs, rb_records).

    Returns:
        {("ppg", N): chains, ("paris", N): runs (sizes off the PPG grid), "equal": ..., "rb": ...}.
    """
    return {**{("ppg", N): R for N, R in zip(cfg.ppg_particles, cfg.ppg_chains)},
            **{("paris", N): cfg.slope_chains for N in cfg.slope_particles
               if N not in cfg.ppg_particles},
            "equal": cfg.equal_budget_runs, "rb": cfg.rb_records}


def bias_records(key: jax.Array, params: smc.LGParams, sizes: dict, n_steps: int) -> dict:
    """One pool of independent records (one compile), split into named groups with exact values.

    Args:
        key: PRNG key of the data.
        params: the linear-Gaussian parameters.
        sizes: ``{name: number of records}``, in the order the pool is cut.
        n_steps: T of every record.

    Returns:
        ``{name: (records (n, T + 1, 1), exact cross moments (n,))}``.
    """
    pool = lg_records(key, params, sum(sizes.values()), n_steps)
    exact = lg_exact_cross_moment(params, pool)
    ends = np.cumsum(list(sizes.values()))
    return {name: (pool[e - n:e], exact[e - n:e]) for (name, n), e in zip(sizes.items(), ends)}


def reference_errors(params: smc.LGParams, bivariate: smc.LGParams, recs: jax.Array,
                     bivariate_ys: jax.Array, grid: jax.Array) -> tuple[list, float]:
    """Worst relative disagreements of the exact references (Section 1 of the notebook).

    Args:
        params: scalar linear-Gaussian parameters.
        bivariate: a bivariate model with a scalar observation.
        recs: (M, T + 1, 1) scalar records; the first one, cut to 11 observations, and
            ``bivariate_ys`` go through RTS vs dense conditioning.
        bivariate_ys: (11, 1) bivariate-model record.
        grid: (G,) quadrature grid of :func:`paperlib.smc.grid_smoother`.

    Returns:
        ([RTS vs dense, scalar and bivariate], max over records of grid vs Kalman for the cross
        moment and the log-likelihood).
    """
    def rts_vs_dense(p, y):
        rts, dense = smc.rts_smoother(p, y), smc.dense_gaussian_smoother(p, y)
        errs = [np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b)))
                for a, b in zip(rts, dense)]
        return max(errs + [abs(smc.exact_cross_moment(rts) / smc.exact_cross_moment(dense) - 1)])

    grid_err = []
    for y in recs:
        g, kf = smc.grid_smoother(LG, smc.CROSS_MOMENT, params, y, grid), smc.rts_smoother(params, y)
        grid_err += [abs(float(g.estimate[0]) / smc.exact_cross_moment(kf) - 1),
                     abs(float(g.log_likelihood / kf.log_likelihood) - 1)]
    return [rts_vs_dense(params, recs[0, :11]), rts_vs_dense(bivariate, bivariate_ys)], max(grid_err)


def sv_grid(params: smc.SVParams, n_points: int, width: float = 8.0) -> jax.Array:
    """Evenly spaced quadrature grid over mu +- width stationary s.d. of the SV state.

    Args:
        params: SV parameters.
        n_points: G.
        width: half-width in stationary standard deviations.

    Returns:
        (G,) grid for :func:`sv_exact`.
    """
    sd = float(params.sigma) / np.sqrt(1 - float(params.rho) ** 2)
    return jnp.linspace(float(params.mu) - width * sd, float(params.mu) + width * sd, n_points)


def sv_exact(params: smc.SVParams, recs: jax.Array, grid: jax.Array) -> np.ndarray:
    """E[sum_t (x_t - mu)(x_{t+1} - mu) | y] of every SV record by grid quadrature.

    Args:
        params: SV parameters.
        recs: (M, T + 1, 1) records.
        grid: (G,) quadrature grid (:func:`sv_grid`).

    Returns:
        (M,) reference values.
    """
    run = jax.vmap(lambda y: smc.grid_smoother(SV, CENTRED_CROSS_MOMENT, params, y, grid,
                                               params.mu).estimate[0])
    return np.asarray(jax.lax.map(run, recs[:, None]))[:, 0]


def bivariate_params() -> smc.LGParams:
    """A bivariate linear-Gaussian model with a scalar observation (Section 1's second RTS check).

    Args:
        None.

    Returns:
        :class:`paperlib.smc.LGParams` with d = 2, d_y = 1.
    """
    return smc.lg_params([[0.8, 0.2], [-0.1, 0.7]], [[1.0, 0.3], [0.3, 0.5]], [[1.0, 0.5]], [[0.7]],
                         [0.5, -1.0], [[2.0, 0.4], [0.4, 1.0]])


def sv_bias_study(data_key: jax.Array, key: jax.Array, params: smc.SVParams, n_records: int,
                  n_steps: int, grid_points: int, n_particles: int, n_iterations: int,
                  chains_per_record: int) -> np.ndarray:
    """PPG on stochastic-volatility records against grid quadrature (brief F8): h_T =
    sum_t (x_t - mu)(x_{t+1} - mu), several chains per record.

    Args:
        data_key, key: PRNG keys of the records and of the Monte Carlo.
        params: SV parameters.
        n_records: M records of T = ``n_steps``.
        grid_points: G of the quadrature grid (:func:`sv_grid`).
        n_particles, n_iterations, chains_per_record: N, k and chains per record of PPG.

    Returns:
        (M, k + 1) per-record mean error by iteration (0 = PaRIS).
    """
    recs = sv_records(data_key, params, n_records, n_steps)
    exact = sv_exact(params, recs, sv_grid(params, grid_points))
    return ppg_errors(key, SV, CENTRED_CROSS_MOMENT, params, recs, exact, n_particles,
                      n_iterations, chains_per_record, params.mu).mean(1)


# ------------------------------------------------------------------------------ PaRIS / PPG bias


def ppg_errors(key: jax.Array, model: smc.StateSpaceModel, functional: smc.AdditiveFunctional,
               params: Any, recs: jax.Array, exact: ArrayLike, n_particles: int, n_iterations: int,
               chains_per_record: int = 1, fparams: Any = None) -> np.ndarray:
    """Errors of PPG chains (K = 2) against each record's exact value (Sec. 3 of the paper).

    Args:
        key: PRNG key of the Monte Carlo.
        model, functional, params: the model, the additive functional h_T and the parameters.
        recs: (M, T + 1, d_y) records.
        exact: (M,) exact phi_{0:T}(h_T) per record.
        n_particles: N.
        n_iterations: k PPG iterations after the PaRIS sweep.
        chains_per_record: chains run on each record.
        fparams: the functional's parameters (default ``params``).

    Returns:
        (M, chains_per_record, k + 1) estimate - exact; iteration 0 is PaRIS.
    """
    m = recs.shape[0]
    ys = jnp.repeat(recs, chains_per_record, axis=0)
    keys = jax.random.split(key, m * chains_per_record)
    est = smc.ppg(keys, model, functional, params, ys, n_particles, 2, n_iterations, fparams)
    est = est[..., 0]
    err = np.asarray(est) - np.repeat(np.asarray(exact), chains_per_record)[:, None]
    return err.reshape(m, chains_per_record, -1)


def bias_by_n(key: jax.Array, params: smc.LGParams, recs: dict, ppg_particles: list[int],
              n_iterations: int, slope_particles: list[int]) -> tuple[dict, dict]:
    """PPG chains at every N of the PPG grid, and plain PaRIS runs at the fit's other sizes.

    Args:
        key: PRNG key; PPG at the i-th N uses fold_in(key, 100 + i), PaRIS fold_in(key, 200 + i).
        params: linear-Gaussian parameters.
        recs: :func:`bias_records` output with groups ("ppg", N) and ("paris", N), one record per run.
        ppg_particles: the N of the PPG chains.
        n_iterations: k.
        slope_particles: the N of the PaRIS bias fit.

    Returns:
        ({N: PPG errors (R, k + 1)}, {N: PaRIS errors (R,)}), errors against each run's record.
    """
    ppg_err = {N: ppg_errors(jax.random.fold_in(key, 100 + i), LG, smc.CROSS_MOMENT, params,
                             *recs[("ppg", N)], N, n_iterations)[:, 0]
               for i, N in enumerate(ppg_particles)}
    paris_err = {}
    for i, N in enumerate(slope_particles):
        if N in ppg_err:
            paris_err[N] = ppg_err[N][:, 0]
            continue
        ys, ex = recs[("paris", N)]
        keys = jax.random.split(jax.random.fold_in(key, 200 + i), ys.shape[0])
        paris_err[N] = np.asarray(smc.paris(keys, LG, smc.CROSS_MOMENT, params, ys, N, 2)[:, 0]) - ex
    return ppg_err, paris_err


def paris_slope(paris_err: dict) -> SimpleNamespace:
    """Record-averaged PaRIS bias per N and the log-log slope of |bias| against N (brief C2).

    Args:
        paris_err: {N: (R_N,) errors, one record per run}.

    Returns:
        Namespace: ``n`` (L,) sizes, ``bias``/``se`` (L,), ``slope``/``slope_se`` (delta method),
        ``intercept`` of the fitted line, ``runs`` (L,) run counts.
    """
    n = np.array(sorted(paris_err))
    bias, se = np.array([stats.mean_and_se(paris_err[N]) for N in n]).T
    slope, slope_se = stats.loglog_slope_and_se(n, np.abs(bias), se)
    intercept = np.mean(np.log(np.abs(bias))) - slope * np.mean(np.log(n))
    return SimpleNamespace(n=n, bias=bias, se=se, slope=slope, slope_se=slope_se,
                           intercept=intercept, runs=[len(paris_err[N]) for N in n])


def ppg_summary(ppg_err: dict) -> SimpleNamespace:
    """The PPG bias-reduction statistics over chains (one record each), per N of the grid.

    Args:
        ppg_err: {N: (R_N, k + 1) errors}.

    Returns:
        Namespace: ``bias``/``se`` {N: (k + 1,)}; ``reduction`` (L, 2, 2) mean and s.e. of the
        |bias| drop from iteration 0 to 1 and 1 to 2; ``ratio``/``ratio_se`` (L,) one-step
        contraction; ``last``/``last_se`` (L,) bias after the last iteration; ``text`` a
        printable summary.
    """
    grid = sorted(ppg_err)
    bias = {N: stats.mean_and_se(ppg_err[N]) for N in grid}
    red = np.array([[stats.mean_and_se(reduction(ppg_err[N], step)) for step in (0, 1)]
                    for N in grid])
    ratio, ratio_se = np.array([contraction(ppg_err[N]) for N in grid]).T
    last, last_se = np.array([(bias[N][0][-1], bias[N][1][-1]) for N in grid]).T
    text = "\n".join(f"N={N:4d} ({len(ppg_err[N])} chains): bias by iteration "
                     + " ".join(f"{v:+.2f}" for v in b) + f"   (s.e. {s.min():.2f}-{s.max():.2f}); "
                     f"after k: z {b[-1] / s[-1]:+.2f}; one-step ratio {r:.3f} ± {rs:.3f}"
                     for (N, (b, s)), r, rs in zip(bias.items(), ratio, ratio_se))
    return SimpleNamespace(bias={N: b[0] for N, b in bias.items()},
                           se={N: b[1] for N, b in bias.items()}, reduction=red, ratio=ratio,
                           ratio_se=ratio_se, last=last, last_se=last_se, text=text)


def contraction(errors: np.ndarray) -> tuple[float, float]:
    """One-step contraction bias(1) / bias(0) of PPG and its delta-method s.e.

    Args:
        errors: (R, k + 1) errors of R chains (the two iterations of a chain are paired).

    Returns:
        (ratio, s.e.).
    """
    d0, d1 = errors[:, 0], errors[:, 1]
    r = d1.mean() / d0.mean()
    var = np.var(d1, ddof=1) - 2 * r * np.cov(d0, d1)[0, 1] + r ** 2 * np.var(d0, ddof=1)
    return float(r), float(np.sqrt(var / len(d0)) / abs(d0.mean()))


def reduction(errors: np.ndarray, step: int) -> np.ndarray:
    """Per chain |bias(l)| - |bias(l + 1)| at l = ``step``, signed by the mean bias at iteration 0.

    Args:
        errors: (R, k + 1) errors.
        step: the iteration l.

    Returns:
        (R,) drops (positive: the bias shrinks).
    """
    return -np.sign(errors[:, 0].mean()) * (errors[:, step + 1] - errors[:, step])


def rollout_study(key: jax.Array, params: smc.LGParams, ppg_err16: np.ndarray,
                  burn_ins: list[int], n_iterations: int, recs: jax.Array,
                  exact: np.ndarray) -> SimpleNamespace:
    """Roll-out estimator Pi_{(k0,k),N} (N = 16) against PaRIS at equal cost N (k + 1) (brief C5).

    Args:
        key: PRNG key of the PaRIS runs.
        params: linear-Gaussian parameters.
        ppg_err16: (R, k + 1) PPG errors at N = 16 (one record per chain).
        burn_ins: the k0 compared.
        n_iterations: k.
        recs, exact: (R', T + 1, 1) records of the equal-cost PaRIS runs and their exact values.

    Returns:
        Namespace: ``rollout`` (R, len(burn_ins)) errors, ``equal`` (R',) PaRIS errors,
        ``budget_n`` its particle count, and ``table`` a markdown table of bias, sd and MSE.
    """
    ro = np.stack([smc.rollout(ppg_err16[..., None], k0, n_iterations)[:, 0] for k0 in burn_ins], 1)
    budget_n = 16 * (n_iterations + 1)
    keys = jax.random.split(key, recs.shape[0])
    eq = np.asarray(smc.paris(keys, LG, smc.CROSS_MOMENT, params, recs, budget_n, 2)[:, 0]) - exact
    names = [f"roll-out k0={k0}, k={n_iterations} (N=16)" for k0 in burn_ins]
    rows = [f"| {name} | {e.mean():+.2f} ± {stats.mean_and_se(e)[1]:.2f} | {e.std(ddof=1):.2f} | "
            f"{np.mean(e ** 2):.1f} |"
            for name, e in zip(names + [f"PaRIS, N = 16(k+1) = {budget_n}"], list(ro.T) + [eq])]
    table = ("| estimator (errors over records) | bias ± s.e. | sd | MSE |\n|---|---|---|---|\n"
             + "\n".join(rows))
    return SimpleNamespace(rollout=ro, equal=eq, budget_n=budget_n, table=table)


# ------------------------------------------------------------------------- Rao-Blackwell identity


FAST_COMPILE = {"xla_backend_optimization_level": 0}
"""XLA options of the Rao-Blackwell sweep, a compile-bound program at smoke (LLVM at -O0: 7.0 ->
3.4 s CPU at smoke, 9.8 -> 10.5 s at default; the same numbers up to last-bit rounding)."""


@partial(jax.jit, static_argnames=("n_particles", "n_paths"), compiler_options=FAST_COMPILE)
def rao_blackwell(key: jax.Array, params: smc.LGParams, recs: jax.Array, n_particles: int,
                  n_paths: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The implicit Rao-Blackwellisation of PPG: a conditional sweep's estimate against the mean of
    h over paths re-drawn from its backward indices (brief C1).

    Args:
        key: PRNG key.
        params: linear-Gaussian parameters.
        recs: (M, T + 1, 1) records; one conditional sweep each, on the record's RTS mean path.
        n_particles: N.
        n_paths: paths re-drawn per sweep.

    Returns:
        (sweep estimates (M,), mean of h over the paths (M,), its s.e. (M,)).
    """
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


def online_variance_by_k(key: jax.Array, params: smc.LGParams, recs: jax.Array, n_particles: int,
                         k_values: list[int], runs_per_record: int) -> dict:
    """Monte Carlo variance of the PaRIS online estimates phi_{0:t}(h_t) per record and time, for
    each number K of backward draws (brief C7).

    Args:
        key: PRNG key (K's runs use fold_in(key, K)).
        params: linear-Gaussian parameters.
        recs: (M, T + 1, 1) records.
        n_particles: N.
        k_values: the K compared.
        runs_per_record: PaRIS runs per record and K.

    Returns:
        {K: (M, T + 1) variances}.
    """
    m = recs.shape[0]
    ys = jnp.repeat(recs, runs_per_record, axis=0)
    out = {}
    for K in k_values:
        keys = jax.random.split(jax.random.fold_in(key, K), m * runs_per_record)
        est = smc.paris(keys, LG, smc.CROSS_MOMENT, params, ys, n_particles, K, online=True)[..., 0]
        out[K] = np.asarray(est).reshape(m, runs_per_record, -1).var(1, ddof=1)
    return out


def ratio_of_means(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """mean(num) / mean(den) over paired records and its delta-method s.e.

    Args:
        num, den: (M,) paired values.

    Returns:
        (ratio, s.e.).
    """
    r = num.mean() / den.mean()
    resid = (num - r * den) / den.mean()
    return float(r), float(resid.std(ddof=1) / np.sqrt(len(num)))


# ------------------------------------------------------------------------------ learning


def lg_build(theta: ArrayLike) -> smc.LGParams:
    """Scalar LGSSM on the free vector theta = (a, log q, log r) (c = 1), x_0 from the stationary law.

    Args:
        theta: (3,) the AR coefficient a (|a| < 1) and the log noise variances.

    Returns:
        :class:`paperlib.smc.LGParams` with P0 = q / (1 - a^2) (traceable: used inside grad/jit).
    """
    q = jnp.exp(theta[1])
    return smc.scalar_lg_params(theta[0], q, 1.0, jnp.exp(theta[2]), p0=q / (1 - theta[0] ** 2))


LG_LEARN = smc.reparametrize(LG, lg_build)


class MLE(NamedTuple):
    """Exact maximum-likelihood estimates, one per record, with what certifies them."""

    theta: jax.Array  # (M, 3) argmax of the Kalman log-likelihood (best over the starts)
    log_likelihood: jax.Array  # (M,) its value
    max_abs_gradient: jax.Array  # (M,) max_i |d loglik / d theta_i| there
    max_eigenvalue: jax.Array  # (M,) largest Hessian eigenvalue there (< 0: a strict maximum)


def _kalman_log_likelihood(theta, ys):
    """log p_theta(y_{0:T}) of :func:`lg_build` by a scalar Kalman filter written out in scalar
    arithmetic (a small graph: the Newton runs compile fast); -inf outside the domain |a| < 1.
    ``tests/test_experiments_cardoso.py`` checks it against :func:`paperlib.smc.kalman_filter`."""
    a, q, r = theta[0], jnp.exp(theta[1]), jnp.exp(theta[2])

    def update(m, p, y):
        s = p + r
        ll = -0.5 * (jnp.log(2 * jnp.pi * s) + (y - m) ** 2 / s)
        return m + p / s * (y - m), p * r / s, ll

    def advance(carry, y):
        m, p, ll = carry
        m, p, term = update(a * m, a * a * p + q, y)
        return (m, p, ll + term), None

    m0, p0, ll0 = update(jnp.zeros_like(a), q / (1 - a * a), ys[0, 0])
    ll = lax.scan(advance, (m0, p0, ll0), ys[1:, 0])[0][2]
    return jnp.where(jnp.isfinite(ll) & (jnp.abs(a) < 1), ll, -jnp.inf)


def _hessian(theta, ys, h: float = 1e-5):
    """Hessian of :func:`_kalman_log_likelihood` by central differences of its JAX gradient
    (compiles several times faster than forward-over-reverse through the Kalman scan)."""
    grad = jax.grad(_kalman_log_likelihood)
    eye = h * jnp.eye(theta.shape[0], dtype=theta.dtype)
    cols = jax.vmap(lambda e: (grad(theta + e, ys) - grad(theta - e, ys)) / (2 * h))(eye)
    return 0.5 * (cols + cols.T)


_hessians = jax.jit(jax.vmap(_hessian, in_axes=(None, 0)))


@partial(jax.jit, static_argnames=("n_newton", "n_halvings"))
def kalman_mle_batch(starts: ArrayLike, recs: jax.Array, n_newton: int = 40,
                     n_halvings: int = 30) -> MLE:
    """Exact MLE of :func:`lg_build` on every record by safeguarded Newton ascent on the Kalman
    log-likelihood from several starts.

    Each step moves along the saddle-free Newton direction |H|^{-1} g (H's eigenvalues replaced by
    their absolute values: the Newton step where H < 0, an ascent direction elsewhere) by the longest
    of the step lengths 1, 1/2, ..., 2^-n_halvings that does not lower the likelihood (beyond its
    rounding, 1e-12 relative), or stays put when none qualifies. The point returned is the start of
    the last step, with the gradient and Hessian computed there.

    Args:
        starts: (S, 3) starting points, each run on every record; the best end point is kept.
        recs: (M, T + 1, 1) observation records.
        n_newton: Newton steps per start.
        n_halvings: step-length halvings tried per step.

    Returns:
        :class:`MLE` with (M,)-leading fields; certify with :func:`certified`.
    """
    starts = jnp.atleast_2d(jnp.asarray(starts, recs.dtype))
    lengths = 2.0 ** -jnp.arange(n_halvings + 1, dtype=recs.dtype)
    loglik = jax.vmap(_kalman_log_likelihood, in_axes=(0, None))

    def newton_step(th, ys):
        """One safeguarded step from th, and th's log-likelihood, max |gradient|, top eigenvalue."""
        ll0, g = jax.value_and_grad(_kalman_log_likelihood)(th, ys)
        e, v = jnp.linalg.eigh(_hessian(th, ys))
        direction = v @ ((v.T @ g) / jnp.maximum(jnp.abs(e), 1e-12 * jnp.abs(e).max()))
        trial = th + lengths[:, None] * direction
        ok = jnp.nan_to_num(loglik(trial, ys), nan=-jnp.inf) >= ll0 - 1e-12 * jnp.abs(ll0)
        nxt = jnp.where(ok.any(), trial[jnp.argmax(ok)], th)
        return nxt, MLE(th, ll0, jnp.max(jnp.abs(g)), e[-1])

    def one(ys):  # the certified point is the start of the last step (its own g and H)
        run = lambda th0: lax.scan(lambda th, _: newton_step(th, ys), th0, None, n_newton)[1]
        ends = jax.tree.map(lambda a: a[:, -1], jax.vmap(run)(starts))
        best = jnp.argmax(jnp.nan_to_num(ends.log_likelihood, nan=-jnp.inf))
        return jax.tree.map(lambda a: a[best], ends)

    return jax.vmap(one)(recs)


def certified(mle: MLE, lower: ArrayLike, upper: ArrayLike, tol: float = 1e-6,
              margin: float = 0.05) -> np.ndarray:
    """Records whose MLE is certified as a strict interior maximum that score ascent can reach.

    Args:
        mle: :func:`kalman_mle_batch` output, (M,)-leading fields.
        lower, upper: (3,) the box that the score ascent clips to.
        tol: bound on max |gradient| of the log-likelihood.
        margin: the MLE must lie this far inside the box.

    Returns:
        (M,) bool: gradient <= tol, Hessian negative definite, MLE inside the box by ``margin``.
    """
    th = np.asarray(mle.theta)
    inside = np.all((th > np.asarray(lower) + margin) & (th < np.asarray(upper) - margin), axis=1)
    return (np.asarray(mle.max_abs_gradient) <= tol) & (np.asarray(mle.max_eigenvalue) < 0) & inside


def fisher_preconditioner(theta: ArrayLike, recs: jax.Array) -> np.ndarray:
    """Inverse of the observed Fisher information per time step, averaged over records, at a fixed
    theta (the data-generating one): a step-size matrix for score ascent that evens out the slow
    (q, r) ridge direction and the fast a direction. It never sees a particle estimate or an MLE.

    Args:
        theta: (3,) where the information is taken.
        recs: (M, T + 1, 1) records.

    Returns:
        (3, 3) symmetric positive-definite matrix |mean_m -H_m(theta) / T|^{-1} (eigenvalues
        replaced by their absolute values, a no-op where the information is positive definite).
    """
    theta = jnp.asarray(theta, recs.dtype)
    info = -np.mean(np.asarray(_hessians(theta, recs)), 0)
    e, v = np.linalg.eigh(0.5 * (info + info.T) / (recs.shape[1] - 1))
    return (v / np.abs(e)) @ v.T  # |info|^{-1}: positive definite even if a short record is not


class Learning(NamedTuple):
    """Score-ascent runs grouped by driver and particle number."""

    thetas: dict  # (driver, N) -> (M, n_steps + 1, 3) trajectories, chain m on record m
    polyak: dict  # (driver, N) -> (M, 3) Polyak averages


def learn_lg(key: jax.Array, recs: jax.Array, theta0: ArrayLike, paris_particles: list[int],
             ppg_particles: int, n_steps: int, step_size: float, lower: ArrayLike,
             upper: ArrayLike, preconditioner: ArrayLike | None = None) -> Learning:
    """Score ascent (Sec. 4 of the paper) on every record, one chain per record and driver.

    PaRIS-driven at each N of ``paris_particles``, PPG-driven (conditioning path carried across
    parameter updates) at ``ppg_particles``; drivers at the same N share one compiled program.
    theta_{n+1} = clip(theta_n + step_size n^-0.6 P S_n / T), S_n the Fisher-identity score.

    Args:
        key: PRNG key (size N uses fold_in(key, N)).
        recs: (M, T + 1, 1) records.
        theta0: (3,) start (a, log q, log r).
        paris_particles: N of the PaRIS-driven runs.
        ppg_particles: N of the PPG-driven runs.
        n_steps: score-ascent steps.
        step_size: gamma.
        lower, upper: (3,) clipping box.
        preconditioner: (3, 3) P (identity when None).

    Returns:
        :class:`Learning`.
    """
    m = recs.shape[0]
    thetas, polyak = {}, {}
    for N in sorted(set(paris_particles) | {ppg_particles}):
        drivers = [d for d in ("paris", "ppg") if (d == "ppg") == (N == ppg_particles)
                   or (d == "paris" and N in paris_particles)]
        ys = jnp.concatenate([recs] * len(drivers))
        keys = jax.random.split(jax.random.fold_in(key, N), m * len(drivers))
        run = smc.score_ascent(keys, LG_LEARN, theta0, ys, N, 2, n_steps=n_steps,
                               step_size=step_size, step_decay=0.6, lower=lower, upper=upper,
                               driver=[d for d in drivers for _ in range(m)],
                               preconditioner=preconditioner)
        for i, d in enumerate(drivers):
            thetas[(d, N)] = np.asarray(run.thetas[i * m:(i + 1) * m])
            polyak[(d, N)] = np.asarray(run.polyak[i * m:(i + 1) * m])
    return Learning(thetas, polyak)


MLE_STARTS = np.array([[0.9, 0.0, 0.0], [0.5, np.log(2.0), np.log(2.0)],
                       [0.95, np.log(0.3), np.log(2.0)], [0.7, np.log(2.0), np.log(0.3)]])
"""Starts of the exact-MLE Newton runs (a, log q, log r); the best end point is kept."""


def certified_mles(recs: jax.Array) -> tuple[MLE, np.ndarray]:
    """The exact Kalman MLE of every record and the rule, fixed before any learning run, that keeps
    a record: |gradient| <= 1e-6, Hessian negative definite, inside the learning box by 0.01.

    Args:
        recs: (M, T + 1, 1) records.

    Returns:
        (:class:`MLE` of every record, (M,) bool mask of the certified ones).
    """
    mle = kalman_mle_batch(MLE_STARTS, recs)
    return mle, certified(mle, LEARN_LOWER, LEARN_UPPER, tol=1e-6, margin=0.01)


def learning_study(key: jax.Array, recs: jax.Array, mle: MLE, keep: np.ndarray,
                   paris_particles: list[int], ppg_particles: int,
                   n_steps: int) -> SimpleNamespace:
    """Section 8's protocol on the certified records: score ascent on (a, log q, log r) from
    (0.5, log 2, log 2), gamma = 0.5, P = :func:`fisher_preconditioner` at the data-generating
    (0.9, 0, 0), box [LEARN_LOWER, LEARN_UPPER]; offsets of the Polyak averages from the MLEs.

    Args:
        key: PRNG key of the runs.
        recs: (M, T + 1, 1) records.
        mle: their :class:`MLE`.
        keep: (M,) bool, the certified records (:func:`certified_mles`).
        paris_particles, ppg_particles: N of the PaRIS- and PPG-driven runs.
        n_steps: score-ascent steps.

    Returns:
        Namespace: ``learn`` (:class:`Learning`), ``mle`` (M', 3) kept MLEs, ``offset`` and
        ``distance`` {(driver, N): (M', 3) and (M',)}, ``text`` a printable summary.
    """
    kept = recs[np.asarray(keep)]
    prec = fisher_preconditioner([0.9, 0.0, 0.0], kept)
    learn = learn_lg(key, kept, [0.5, np.log(2.0), np.log(2.0)], paris_particles, ppg_particles,
                     n_steps, 0.5, LEARN_LOWER, LEARN_UPPER, prec)
    theta = np.asarray(mle.theta)[np.asarray(keep)]
    off = {kk: v - theta for kk, v in learn.polyak.items()}
    dist = {kk: np.linalg.norm(v, axis=1) for kk, v in off.items()}
    text = "\n".join(f"{kk}: offset (a, log q, log r) {np.round(v.mean(0), 4)} ± "
                     f"{np.round(stats.mean_and_se(v)[1], 4)}, mean distance {dist[kk].mean():.4f}"
                     for kk, v in off.items())
    return SimpleNamespace(learn=learn, mle=theta, offset=off, distance=dist, text=text)


# ------------------------------------------------------------------------------ figures


def plot_paris_bias(fit: SimpleNamespace, n_steps: int) -> plt.Figure:
    """Figure 1: record-averaged |PaRIS bias| against N on log-log axes with the fitted slope and a
    slope -1 guide.

    Args:
        fit: :func:`paris_slope` output.
        n_steps: T, for the title.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    ax.errorbar(fit.n, np.abs(fit.bias), yerr=2 * fit.se, fmt="o", capsize=3,
                label="PaRIS |bias| (±2 s.e.)")
    ax.plot(fit.n, np.exp(fit.intercept) * fit.n ** fit.slope, "-",
            label=f"fit, slope {fit.slope:.2f}")
    ax.plot(fit.n, np.abs(fit.bias[0]) * fit.n[0] / fit.n, "k--", lw=0.8, label="slope −1")
    ax.set(xscale="log", yscale="log", xlabel="particles N", ylabel="|bias| of Σ x_t x_{t+1}",
           title=f"PaRIS bias vs N (LGSSM, T={n_steps}, K=2; ours)")
    ax.set_xticks(fit.n, [str(N) for N in fit.n])
    ax.set_xticks([], minor=True)
    ax.legend(fontsize=8)
    return fig


def plot_bias_by_iteration(bias: dict, se: dict, ylabel: str, title: str,
                           symlog: bool) -> plt.Figure:
    """Bias against the PPG iteration (0 = PaRIS) with ±2 s.e. bands, one curve per N.

    Args:
        bias, se: {N: (k + 1,)} record-averaged bias and s.e., one curve per particle number.
        ylabel, title: axis label and title.
        symlog: symmetric-log y axis (linear within ±1).

    Returns:
        The figure (Figures 2 and 7).
    """
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for label, b in bias.items():
        it = np.arange(len(b))
        line, = ax.plot(it, b, "o-", ms=3, label=f"N = {label}")
        ax.fill_between(it, b - 2 * se[label], b + 2 * se[label], color=line.get_color(), alpha=0.2)
    ax.axhline(0, color="k", lw=0.6)
    if symlog:
        ax.set_yscale("symlog", linthresh=1.0)
    ax.set(xlabel="PPG iteration ℓ (0 = PaRIS)", ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return fig


def plot_rao_blackwell(rb: np.ndarray, n_records: int) -> plt.Figure:
    """Figure 3: conditional-sweep estimates against the mean of h over re-drawn paths.

    Args:
        rb: (M, 3) estimate, path mean, path-mean s.e. per record.
        n_records: M, for the title.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.errorbar(rb[:, 1], rb[:, 0], xerr=2 * rb[:, 2], fmt="o", ms=3, capsize=2)
    lims = [rb[:, :2].min() - 5, rb[:, :2].max() + 5]
    ax.plot(lims, lims, "k--", lw=0.8, label="y = x")
    ax.set(xlabel="mean of h over re-drawn paths (±2 s.e.)", ylabel="conditional PaRIS estimate",
           title=f"Rao–Blackwell identity ({n_records} records, N=16; ours)")
    ax.legend()
    return fig


def plot_rollout(study: SimpleNamespace, burn_ins: list[int], n_iterations: int) -> plt.Figure:
    """Figure 4: roll-out bias and MSE against the burn-in k0, with PaRIS at equal cost.

    Args:
        study: :func:`rollout_study` output.
        burn_ins: the k0.
        n_iterations: k.

    Returns:
        The figure.
    """
    bias, se = stats.mean_and_se(study.rollout)
    eq, n_eq = study.equal, study.budget_n
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.3))
    axes[0].errorbar(burn_ins, bias, yerr=2 * se, fmt="o-", capsize=3,
                     label=f"roll-out (N=16, k={n_iterations})")
    axes[0].axhline(eq.mean(), color="C1", ls="--", label=f"PaRIS N={n_eq} (equal cost)")
    axes[0].axhline(0, color="k", lw=0.6)
    axes[0].set(xlabel="burn-in k0", ylabel="bias (±2 s.e.)", title="Roll-out bias vs burn-in (ours)")
    axes[1].plot(burn_ins, np.mean(study.rollout ** 2, 0), "o-", label="roll-out MSE")
    axes[1].axhline(np.mean(eq ** 2), color="C1", ls="--", label=f"PaRIS N={n_eq} MSE")
    axes[1].set(xlabel="burn-in k0", ylabel="MSE", title="MSE at equal cost (reported, no claim)")
    for a in axes:
        a.legend(fontsize=8)
    return fig


def plot_variance_by_k(k_var: dict, n_records: int) -> plt.Figure:
    """Figure 5: record-averaged Monte Carlo variance of the online PaRIS estimate per step t.

    Args:
        k_var: :func:`online_variance_by_k` output.
        n_records: M, for the title.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(5.0, 3.5))
    for K, v in k_var.items():
        ts = np.arange(1, v.shape[1])
        mean, se = stats.mean_and_se(v[:, 1:] / ts)
        line, = ax.plot(ts, mean, label=f"K = {K}")
        ax.fill_between(ts, mean - 2 * se, mean + 2 * se, color=line.get_color(), alpha=0.2)
    ax.set(xscale="log", xlabel="time t", ylabel="Var(PaRIS estimate) / t (±2 s.e.)",
           title=f"Variance per step, mean of {n_records} records (N=32; ours)")
    ax.legend()
    return fig


def plot_learning(thetas: dict, mle: np.ndarray, n_records: int, horizon: int) -> plt.Figure:
    """Figure 6: record-averaged theta_n - MLE along score ascent, one panel per parameter.

    Args:
        thetas: :class:`Learning` ``thetas`` restricted to the certified records.
        mle: (M, 3) their exact MLEs.
        n_records: M, for the titles.
        horizon: T, for the titles.

    Returns:
        The figure.
    """
    fig, axes = plt.subplots(1, 3, figsize=(12.0, 3.5))
    for (driver, N), th in thetas.items():
        dev = th[:, 1:, :] - mle[:, None, :]
        steps = np.arange(1, dev.shape[1] + 1)
        for j, ax in enumerate(axes):
            ax.plot(steps, dev[..., j].mean(0), ls="-" if driver == "ppg" else "--",
                    label=f"{'PPG' if driver == 'ppg' else 'PaRIS'}, N = {N}")
    for ax, name in zip(axes, ("a", "log q", "log r")):
        ax.axhline(0, color="k", lw=0.6)
        ax.set(xscale="log", xlabel="score-ascent step n", ylabel=f"mean {name}_n − MLE",
               title=f"{name} ({n_records} records, T={horizon}; ours)")
    axes[-1].legend(fontsize=8)
    return fig
