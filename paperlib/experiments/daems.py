"""Protocols of the Daems et al. 2024 notebook (MA-fBM, arXiv 2310.12975): quadrature references
for Prop. 5, error-vs-K sweeps, Monte-Carlo covariance z-scores, timing tables, and the training
experiments (Fig. 2 bridge panels, learnable Hurst index, the video proxy), built on
``paperlib.fbm`` and ``paperlib.fbm_video``."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from scipy import integrate, special

from paperlib import fbm, fbm_video
from paperlib.stats import mean_and_se, variance_and_se

QUAD = dict(epsabs=1e-13, epsrel=1e-11, limit=200)


def quad(f: Callable, a: float, b: float, **kw) -> float:
    """scipy ``quad`` at the tolerances of the Prop. 5 checks.

    Args:
        f: integrand; a, b: limits (may be infinite); kw: further ``quad`` options (weights).

    Returns:
        The integral, a float.
    """
    return integrate.quad(f, a, b, **{**QUAD, **kw})[0]


# ---------------------------------------------------------------------------------------------
# Prop. 5: A, b, c as integrals over the driving noise (independent of the closed forms)
# ---------------------------------------------------------------------------------------------


def kernel_b(t: float, g: float, H: float, kind: str) -> float:
    """E[B_H(t) Y_hat(t)] by quadrature over the noise (type I adds the past s < 0).

    Args:
        t: time; g: OU speed; H: Hurst index; kind: ``"I"`` or ``"II"``.

    Returns:
        The integrand of b_k in Prop. 5 at t, a float.
    """
    a = H + 0.5
    recent = quad(lambda v: np.exp(-g * v), 0.0, t, weight="alg", wvar=(a - 1.0, 0.0))
    if kind == "I":
        recent += quad(
            lambda u: ((t + u) ** (a - 1) - u ** (a - 1)) * (np.exp(-g * (t + u)) - np.exp(-g * u)),
            0,
            np.inf,
        )
    return recent / special.gamma(a)


def kernel_a(t: float, gi: float, gj: float, kind: str) -> float:
    """E[Y_hat_i(t) Y_hat_j(t)] by quadrature over the noise.

    Args:
        t: time; gi, gj: OU speeds; kind: ``"I"`` or ``"II"``.

    Returns:
        The integrand of A_ij in Prop. 5 at t, a float.
    """
    recent = quad(lambda s: np.exp(-(gi + gj) * (t - s)), 0.0, t)
    if kind == "II":
        return recent
    past = lambda u: (np.exp(-gi * (t + u)) - np.exp(-gi * u)) * (
        np.exp(-gj * (t + u)) - np.exp(-gj * u)
    )  # noqa: E731
    return recent + quad(past, 0, np.inf)


def kernel_var(t: float, H: float, kind: str) -> float:
    """E[B_H(t)^2] by quadrature (type I: split at u = 1, u^{2a-2} as a weight near 0).

    Args:
        t: time; H: Hurst index; kind: ``"I"`` or ``"II"``.

    Returns:
        The integrand of c in Prop. 5 at t, a float.
    """
    a = H + 0.5
    v = quad(lambda s: 1.0, 0.0, t, weight="alg", wvar=(2 * a - 2, 0.0))
    if kind == "I":
        diff2 = lambda u: ((t + u) ** (a - 1) - u ** (a - 1)) ** 2  # noqa: E731
        if a < 1:
            v += quad(
                lambda u: ((1 + t / u) ** (a - 1) - 1) ** 2 if u > 0 else 1.0,
                0,
                1,
                weight="alg",
                wvar=(2 * a - 2, 0.0),
            )
        else:
            v += quad(diff2, 0, 1)
        v += quad(diff2, 1, np.inf)
    return v / special.gamma(a) ** 2


def closed_form_error(gammas: np.ndarray, cases: list, kind: str) -> float:
    """Max relative error of the closed-form b and c (Prop. 5) against time integrals of the
    kernels, over ``cases`` = [(H, T), ...], and of A (H-free) on three of the speeds at T = 1.5.

    Args:
        gammas: (K,) speeds; cases: [(H, T)]; kind: ``"I"`` or ``"II"``.

    Returns:
        The largest relative error, a float (Prop. 5, App. D).
    """
    errs = []
    for H, T in cases:
        s = fbm.omega_system(gammas, H, T, kind)
        b_ref = np.array([quad(lambda t: kernel_b(t, g, H, kind), 0.0, T) for g in gammas])
        errs.append(np.max(np.abs(np.asarray(s.b) - b_ref) / np.abs(b_ref)))
        errs.append(abs(float(s.c) - quad(lambda t: kernel_var(t, H, kind), 0.0, T)) / float(s.c))
    gA = np.asarray(gammas)[[0, len(gammas) // 2, -1]]
    A = np.asarray(fbm.omega_system(gA, 0.3, 1.5, kind).A)
    A_ref = np.array(
        [[quad(lambda t: kernel_a(t, gi, gj, kind), 0.0, 1.5) for gj in gA] for gi in gA]
    )
    errs.append(np.max(np.abs(A - A_ref) / np.abs(A_ref)))
    return float(max(errs))


def worst_perturbation_gain(rng: np.random.Generator, gammas: np.ndarray, cases: list,
                            num: int = 100) -> float:
    """min over random delta (scales 1e-5..1) and ``cases`` [(kind, T, H)] of
    (E(omega* + delta) - E(omega*)) / c, E evaluated in numpy from A, b, c (>= 0 at the optimum).

    Args:
        rng: numpy generator; gammas: (K,) speeds; cases: [(kind, T, H)]; num: perturbations per case.

    Returns:
        The smallest relative gain, a float (>= 0 at the optimum of Prop. 5).
    """
    worst = np.inf
    for kind, T, H in cases:
        s = fbm.omega_system(gammas, H, T, kind)
        A, b, c = np.asarray(s.A), np.asarray(s.b), float(s.c)
        w = np.asarray(fbm.optimal_omega(gammas, H, T, kind))
        W = w + rng.normal(size=(num, w.size)) * 10.0 ** rng.uniform(-5, 0, size=(num, 1))
        e = np.einsum("ni,ij,nj->n", W, A, W) - 2 * W @ b + c
        worst = min(worst, float(np.min(e - (w @ A @ w - 2 * w @ b + c)) / c))
    return worst


def relative_errors_vs_K(Ks: list[int], Hs: ArrayLike, kind: str, ratio: float,
                         T: float) -> tuple[np.ndarray, np.ndarray]:
    """(len(Hs), len(Ks)) relative errors on nested grids of ratio ``ratio``: the optimum
    1 - b'A^{-1}b/c, and the paper's Riemann baseline E(omega_Riemann)/c (NaN at K = 1), in numpy
    (``fbm.omega_system_np``: no compile per grid size).

    Args:
        Ks: grid sizes; Hs: Hurst indices; kind: ``"I"`` or ``"II"``; ratio: grid ratio r;
        T: horizon.

    Returns:
        (optimal, Riemann): two (len(Hs), len(Ks)) arrays (Prop. 5).
    """
    opt, riem = np.full((len(Hs), len(Ks)), np.nan), np.full((len(Hs), len(Ks)), np.nan)
    for j, K in enumerate(Ks):
        g = fbm.gamma_grid(K, ratio=ratio)
        for i, H in enumerate(Hs):
            A, b, c = fbm.omega_system_np(g, H, T, kind)
            opt[i, j] = 1.0 - b @ fbm.solve_gram_np(A, b) / c
            if K > 1:
                w = fbm.omega_riemann(g, H)
                riem[i, j] = (w @ A @ w - 2.0 * b @ w + c) / c
    return opt, riem


def printed_precision_deviation(values: ArrayLike, printed: ArrayLike, decimals: ArrayLike) -> float:
    """max |value - printed| in half-units of each printed value's last digit (<= 1: agrees).

    Args:
        values: computed values; printed: printed references; decimals: printed decimals, broadcast.

    Returns:
        The largest deviation in half-units of the last printed digit, a float.
    """
    v, p, d = (np.asarray(x, dtype=float) for x in (values, printed, decimals))
    return float(np.max(np.abs(v - p) / (0.5 * 10.0**-d)))


# ---------------------------------------------------------------------------------------------
# Monte-Carlo covariance checks
# ---------------------------------------------------------------------------------------------


def second_moment_z(paths: ArrayLike, cov: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For zero-mean Gaussian paths (N, n): the empirical E[X_i X_j] on the upper triangle, the
    exact value from ``cov`` and the Gaussian s.e. sqrt((C_ij^2 + C_ii C_jj) / N) of each entry.

    Args:
        paths: (N, n) samples; cov: (n, n) exact covariance.

    Returns:
        (empirical, exact, s.e.), each (n (n + 1) / 2,) over the upper triangle.
    """
    P = np.asarray(paths, dtype=np.float64)
    iu = np.triu_indices(P.shape[1])
    emp = (P.T @ P / P.shape[0])[iu]
    C = np.asarray(cov, dtype=np.float64)
    se = np.sqrt((C**2 + np.outer(np.diag(C), np.diag(C))) / P.shape[0])[iu]
    return emp, C[iu], se


def mafbm_mc_paths(key: jax.Array, gammas: jax.Array, omega: jax.Array, kind: str, num_paths: int,
                   dt: float, num_steps: int, every: int) -> tuple[np.ndarray, np.ndarray]:
    """MA-fBM at t = every*dt, 2 every*dt, ...: (exact OU-transition paths, Euler paths), each
    (num_paths, num_steps // every).

    Args:
        key: PRNG key; gammas, omega: (K,); kind: ``"I"`` or ``"II"``; num_paths: paths;
        dt: Euler step; num_steps: steps; every: steps between kept points.

    Returns:
        (exact paths, Euler paths), each (num_paths, num_steps // every) numpy (Sec. 3).
    """
    k_exact, k_euler = jax.random.split(key)
    exact = fbm.sample_mafbm_exact(
        k_exact, gammas, omega, every * dt, num_steps // every, num_paths, kind
    )

    def euler_one(k):
        k0, k1 = jax.random.split(k)
        y0 = fbm.initial_ou_state(k0, gammas, kind, (1,))
        return fbm.euler_maruyama(
            k1,
            jnp.zeros(1),
            y0,
            gammas,
            omega,
            lambda t, x: 0 * x,
            lambda t, x: jnp.ones_like(x),
            None,
            dt,
            num_steps,
        ).x[:, 0]

    euler = jax.jit(jax.vmap(euler_one), compiler_options=fbm.FAST_COMPILE)(
        jax.random.split(k_euler, num_paths))
    return np.asarray(exact)[:, 1:], np.asarray(euler)[:, every::every]


def bonferroni_z(num_tests: int, family_level: float = 0.01) -> float:
    """Two-sided z threshold at family-wise level ``family_level`` over ``num_tests`` tests.

    Args:
        num_tests: number of two-sided tests; family_level: family-wise level.

    Returns:
        The per-test |z| threshold, a float.
    """
    return float(special.ndtri(1.0 - family_level / (2.0 * num_tests)))


# ---------------------------------------------------------------------------------------------
# Speed (Fig. 9 analogue)
# ---------------------------------------------------------------------------------------------


def timed(fn: Callable, repeats: int = 3) -> tuple[float, object]:
    """(seconds per call after one warm-up/compile call, last result), blocking on JAX results.

    Args:
        fn: a function of no arguments; repeats: timed calls after the warm-up.

    Returns:
        (seconds per call, the last result).
    """
    jax.block_until_ready(fn())
    t = time.perf_counter()
    for _ in range(repeats):
        res = jax.block_until_ready(fn())
    return (time.perf_counter() - t) / repeats, res


def increment_autocov_error(paths: ArrayLike, H: float, scale: float) -> float:
    """max over lags 0-4 of |empirical - exact| autocovariance of the increments of paths on [0, 1]
    (rescaled to unit steps), relative to the lag-0 value; exact: ``scale`` x unit fGn.

    Args:
        paths: (N, n + 1) paths on [0, 1]; H: Hurst index; scale: Var B_H(1) of the sampler.

    Returns:
        The relative error, a float.
    """
    inc = np.diff(np.asarray(paths), axis=1)
    n = inc.shape[1]
    inc = inc / (1.0 / n) ** H
    emp = np.array([np.mean(inc[:, : n - k] * inc[:, k:]) for k in range(5)])
    exact = scale * np.asarray(fbm.fgn_autocovariance(np.arange(5), H))
    return float(np.max(np.abs(emp - exact)) / exact[0])


def bridge_forward_times(key: jax.Array, Ks: list[int], widths: list[int], gamma_max: float = 20.0,
                         num_paths: int = 32) -> list[tuple]:
    """Seconds per forward pass of ``num_paths`` bridge paths (200 Euler steps) for each (width, K);
    K = 0 is Brownian motion. Returns [(width, K, seconds)].

    Args:
        key: PRNG key; Ks: numbers of OU processes; widths: MLP widths; gamma_max: grid's top speed;
        num_paths: paths per forward pass.

    Returns:
        [(width, K, seconds)] (Fig. 9 analogue).
    """
    rows = []
    for width in widths:
        for K in Ks:
            key, k_init, k_run = jax.random.split(key, 3)
            if K == 0:
                g, w, kind = jnp.zeros(1), jnp.ones(1), "II"
            else:
                g = jnp.asarray(fbm.gamma_grid(K, gamma_max=gamma_max))
                w, kind = fbm.optimal_omega(g, 0.5, 6.0, "I"), "I"
            setup = fbm.BridgeSetup(g, w, 0.0, kind, 0.01, 200, 0.1)
            params = fbm.bridge_control_init(k_init, g.shape[0], [width, width])
            fwd = jax.jit(lambda p, k, setup=setup: fbm.bridge_elbo_terms(p, k, setup, num_paths))
            rows.append((width, K, timed(lambda: fwd(params, k_run))[0]))
    return rows


# ---------------------------------------------------------------------------------------------
# Fig. 2: the fOU bridge, all panels trained in one vmapped loop
# ---------------------------------------------------------------------------------------------


def std_and_se(x: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Sample std over the rows of x (N, ...) per column, and its delta-method s.e.
    se(var) / (2 std).

    Args:
        x: (N, ...) samples.

    Returns:
        (std, s.e.), each flattened over the trailing axes.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.array([variance_and_se(col) for col in x.reshape(x.shape[0], -1).T])
    std = np.sqrt(out[:, 0])
    return std, out[:, 1] / (2 * std)


def bridge_panels(
    key: jax.Array,
    panels: list,
    gammas: np.ndarray,
    hidden: list[int],
    num_steps: int,
    batch: int,
    learning_rate: float,
    eval_paths: int,
    T_omega: float = 6.0,
    dt: float = 0.01,
    horizon: int = 200,
    obs_std: float = 0.1,
) -> dict:
    """Train the control of every panel [H, theta] (type I, official bridge setup) and evaluate it.

    Returns {(H, theta): dict(elbo, se, logp, best, xs, std_emp, std_se, std_ma, std_opt, std_paper,
    losses)}: MC-ELBO and its s.e. over ``eval_paths`` posterior paths, the exact log p(obs) and
    best Euler ELBO, and the posterior std against the exact conditioned stds (MA-fBM prior,
    continuous; best Euler control; the paper's unit-normalised "true" band).

    Args:
        key: PRNG key; panels: [[H, theta]] (Fig. 2); gammas: (K,) speeds; hidden: MLP widths;
        num_steps, batch, learning_rate: Adam settings; eval_paths: posterior paths per panel;
        T_omega: omega horizon; dt, horizon: Euler step and steps; obs_std: observation std.

    Returns:
        The dict described above; arrays over the horizon + 1 grid points.
    """
    ts = np.linspace(0.0, dt * horizon, horizon + 1)
    omegas = jnp.stack([fbm.optimal_omega(gammas, H, T_omega, "I") for H, _ in panels])
    setup = fbm.BridgeSetup(jnp.asarray(gammas), omegas[0], 0.0, "I", dt, horizon, obs_std)
    k_train, k_eval = jax.random.split(key)
    params, losses = fbm.train_bridges(
        k_train, setup, omegas, [th for _, th in panels], hidden, num_steps, batch, learning_rate
    )
    out = {}
    for p, ((H, theta), k) in enumerate(zip(panels, jax.random.split(k_eval, len(panels)))):
        w = np.asarray(omegas[p])
        panel = setup._replace(omega=omegas[p], theta=theta)
        xs, elbo = (
            np.asarray(a)
            for a in fbm.bridge_posterior(
                jax.tree_util.tree_map(lambda a: a[p], params), k, panel, eval_paths
            )
        )
        std_emp, std_se = std_and_se(xs)
        cov = fbm.linear_prior_covariance(ts, gammas, w, theta, "I")
        if theta == 0:
            cov_paper = np.asarray(fbm.fbm_covariance(ts[:, None], ts[None, :], H))
        else:
            cov_paper = fbm.stationary_fou_covariance(ts[:, None] - ts[None, :], H, theta)
        best, _ = fbm.euler_bridge_optimum(gammas, w, theta, "I", dt, horizon, obs_std)
        out[H, theta] = dict(
            elbo=elbo.mean(),
            se=elbo.std(ddof=1) / np.sqrt(elbo.size),
            xs=xs[:64],
            std_emp=std_emp,
            std_se=std_se,
            logp=fbm.gaussian_log_evidence(cov[-1, -1], obs_std**2),
            best=best,
            std_ma=fbm.conditioned_std(cov, horizon, obs_std**2),
            std_opt=fbm.euler_bridge_optimal_law(gammas, w, theta, "I", dt, horizon, obs_std)[0],
            std_paper=fbm.conditioned_std(cov_paper, horizon, obs_std**2, pin_index=0),
            losses=np.asarray(losses[p]),
        )
    return out


# ---------------------------------------------------------------------------------------------
# Learnable Hurst index: ELBO training over true H x seeds, against a classical estimator
# ---------------------------------------------------------------------------------------------


def hurst_experiment(
    key: jax.Array,
    hurst_values: list[float],
    num_seeds: int,
    setup: fbm.HurstSetup,
    hidden: list[int],
    num_steps: int,
    batch: int,
    learning_rate: float,
    num_sequences: int,
    num_obs: int,
    theta_data: float = 0.5,
) -> dict:
    """fOU data sets (exact Cholesky fBM, ``fbm.sample_fou_observations``) for every true H and
    seed, all R = len(hurst_values) * num_seeds ELBO runs in one vmapped loop, and the variogram
    estimate (lags 1, 2, noise-corrected) on the same observations. Returns a dict of
    (len(hurst_values), num_seeds) arrays ``learned``, ``sigma``, ``variogram``, the losses
    (R, num_steps) and the data sets (R, num_sequences, num_obs).

    Args:
        key: PRNG key; hurst_values: true H; num_seeds: data sets per H; setup: the model;
        hidden, num_steps, batch, learning_rate: training settings; num_sequences, num_obs: data
        size; theta_data: mean reversion of the data.

    Returns:
        The dict described above (Sec. 3.3, our design).
    """
    k_data, k_fit = jax.random.split(key)
    keys = jax.random.split(k_data, len(hurst_values) * num_seeds)
    sample = jax.jit(jax.vmap(lambda k, H: fbm.sample_fou_observations(
        k, H, theta_data, 1.0, setup.dt, num_obs * setup.every, setup.every, num_sequences,
        setup.obs_std)))
    datas = np.asarray(sample(keys, jnp.repeat(jnp.asarray(hurst_values, dtype=float), num_seeds)))
    params, losses = fbm.train_hurst_runs(
        k_fit, datas, setup, hidden, num_steps, batch, learning_rate
    )
    shape = (len(hurst_values), num_seeds)
    vario = [fbm.variogram_hurst(d, (1, 2), setup.obs_std**2) for d in datas]
    return dict(
        learned=np.asarray(fbm.hurst_of(params)).reshape(shape),
        sigma=np.exp(np.asarray(params["log_sigma"])).reshape(shape),
        variogram=np.reshape(vario, shape),
        losses=np.asarray(losses),
        datas=datas,
    )


def shrinkage_slopes(true_h: ArrayLike, estimates: ArrayLike) -> np.ndarray:
    """Per seed, the least-squares slope through (1/2, 1/2) of the estimate on the true H:
    sum (H_hat - 1/2)(H - 1/2) / sum (H - 1/2)^2 (1: unbiased recovery, 0: stuck at 1/2).
    ``estimates`` is (len(true_h), num_seeds); returns (num_seeds,).

    Args:
        true_h: (P,) true H; estimates: (P, num_seeds).

    Returns:
        (num_seeds,) slopes.
    """
    d = np.asarray(true_h, dtype=float)[:, None] - 0.5
    return np.sum((np.asarray(estimates) - 0.5) * d, axis=0) / np.sum(d**2)


# ---------------------------------------------------------------------------------------------
# Video proxy (Sec. 5.2 architecture on moving digits)
# ---------------------------------------------------------------------------------------------


def video_experiment(
    key: jax.Array,
    train_clips: np.ndarray,
    test_clips: np.ndarray,
    models: dict,
    num_seeds: int,
    num_steps: int,
    batch: int,
    learning_rate: float,
    **setup_kw,
) -> dict:
    """Train each model (name -> K; K = 0 is Brownian motion) for ``num_seeds`` seeds (vmapped) on
    ``train_clips`` (N, T, pixels); reconstruct ``test_clips`` along one posterior path each.
    Returns {name: dict(losses (seeds, steps), recon of seed 0, mse per seed and its s.e. over
    test clips, learned H per seed)}.

    Args:
        key: PRNG key; train_clips: (N, T, pixels); test_clips: (M, T, pixels); models: name -> K;
        num_seeds, num_steps, batch, learning_rate: training settings; setup_kw: further
        ``fbm_video.video_setup`` arguments.

    Returns:
        The dict described above (Sec. 5.2 proxy).
    """
    out = {}
    for name, K in models.items():
        key, k_fit, k_rec = jax.random.split(key, 3)
        setup = fbm_video.video_setup(K, num_frames=train_clips.shape[1], **setup_kw)
        fit = lambda k, setup=setup: fbm_video.train_video(
            k, train_clips, setup, num_steps, batch, learning_rate  # noqa: E731
        )
        params, losses = jax.jit(jax.vmap(fit), compiler_options=fbm.FAST_COMPILE)(
            jax.random.split(k_fit, num_seeds))
        one_clip = lambda p, k, f, setup=setup: fbm_video.reconstruct(p, k, f, setup)[0]  # noqa: E731
        recon = jax.jit(jax.vmap(jax.vmap(one_clip, (None, 0, 0)), (0, None, None)),
                        compiler_options=fbm.FAST_COMPILE)(
            params, jax.random.split(k_rec, test_clips.shape[0]), jnp.asarray(test_clips))
        per_clip = np.mean(
            (np.asarray(recon) - test_clips[None]) ** 2, axis=(2, 3)
        )  # (seeds, clips)
        out[name] = dict(
            losses=np.asarray(losses),
            recon=np.asarray(recon[0]),
            mse=per_clip.mean(1),
            mse_se=per_clip.std(1, ddof=1) / np.sqrt(per_clip.shape[1]),
            H=np.asarray(jax.vmap(lambda p, setup=setup: fbm_video.hurst_of(p, setup))(params)),
        )
    return out


def clip_baselines(train_clips: np.ndarray, test_clips: np.ndarray) -> dict:
    """Closed-form reconstructions of the test clips: the training set's mean frame, and each test
    clip's own time-averaged frame (it sees the clip, as the model's encoder does). Returns
    {name: (MSE per pixel, its s.e. over test clips)}.

    Args:
        train_clips: (N, T, pixels); test_clips: (M, T, pixels).

    Returns:
        The dict described above.
    """
    mean_frame = np.mean((test_clips - train_clips.mean(axis=(0, 1))) ** 2, axis=(1, 2))
    own_average = np.mean((test_clips - test_clips.mean(axis=1, keepdims=True)) ** 2, axis=(1, 2))
    return {
        "training mean frame": mean_and_se(mean_frame),
        "clip's own time average": mean_and_se(own_average),
    }


def scaled_eigen_ratio(A: ArrayLike) -> float:
    """Smallest over largest eigenvalue of the Jacobi-scaled Gram matrix D A D, D = diag(A)^{-1/2}
    (below ~1e-14 the matrix is singular to float64 rounding; the smallest may come out negative).

    Args:
        A: (K, K) Gram matrix of Prop. 5.

    Returns:
        The eigenvalue ratio, a float.
    """
    A = np.asarray(A, dtype=np.float64)
    d = 1.0 / np.sqrt(np.diag(A))
    ev = np.linalg.eigvalsh(A * d[:, None] * d[None, :])
    return float(ev[0] / ev[-1])


# ---------------------------------------------------------------------------------------------
# Notebook protocols: settings, tables, sweeps and plots (each returns what the notebook claims)
# ---------------------------------------------------------------------------------------------


def validate(cfg: SimpleNamespace) -> None:
    """Reject settings the protocols cannot use, before any compute.

    Args:
        cfg: the resolved settings of the notebook (``profiles.resolve_from``).

    Raises:
        ValueError: naming the knob and the range it must lie in.
    """
    for H, theta in cfg.bridge_panels:
        if not (0 < H < 1 and theta >= 0):
            raise ValueError(f"bridge panel [H, theta] needs 0 < H < 1, theta >= 0: {[H, theta]}")
    if not all(0 < h < 1 and h != 0.5 for h in cfg.hurst_values) or len(cfg.hurst_values) < 2:
        raise ValueError(f"need >= 2 hurst_values in (0, 1) other than 0.5, got {cfg.hurst_values}")
    if min(cfg.bridge_steps, cfg.bridge_batch, cfg.bridge_width, cfg.hurst_steps) < 1 \
            or cfg.eval_paths < 256 or cfg.mc_paths < 500 \
            or min(cfg.hurst_seeds - 2, cfg.hurst_obs - 3, 64 - cfg.hurst_batch) < 0:
        raise ValueError("need steps, batch, width >= 1, eval_paths >= 256, mc_paths >= 500, "
                         "hurst_seeds >= 2, hurst_obs >= 3, hurst_batch <= 64")
    if any(n < 16 or n & (n - 1) for n in cfg.speed_lengths) or min(cfg.timing_K) < 0:
        raise ValueError("speed_lengths must be powers of two >= 16 and timing_K >= 0")
    if cfg.video_sequences < 32 or cfg.video_frames < 4 or cfg.video_canvas < 20 \
            or cfg.video_steps < 10 or cfg.video_batch > cfg.video_sequences:
        raise ValueError("need video_sequences >= max(32, video_batch), video_frames >= 4, "
                         "video_canvas >= 20 (digits are 16 px) and video_steps >= 10")


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table: ``header`` (column titles) over ``rows`` (already formatted cells).

    Args:
        header: C column titles; rows: lists of C cells each (str() is applied).

    Returns:
        The table as one string.
    """
    lines = ["| " + " | ".join(map(str, r)) + " |" for r in [header] + rows]
    return "\n".join(lines[:1] + ["|" + "---|" * len(header)] + lines[1:])


def omega_fixture_deviation(gammas: np.ndarray, fixtures: list) -> float:
    """Largest deviation of omega* from printed fixtures, in half-units of their last digit.

    Args:
        gammas: (K,) speeds of the grid the fixtures were printed for.
        fixtures: [(kind, T, H, printed omega (K,), decimals)].

    Returns:
        max over fixtures of ``printed_precision_deviation`` (<= 1: agrees).
    """
    return max(printed_precision_deviation(fbm.optimal_omega(gammas, H, T, kind), ref, dec)
               for kind, T, H, ref, dec in fixtures)


def c3_rows(gammas: np.ndarray, hursts: list[float], T: float = 1.0) -> tuple[list, list]:
    """Type-II relative errors of omega* and of the paper's Riemann baseline (brief's C3 table).

    Args:
        gammas: (K,) speeds; hursts: the H of the table; T: horizon.

    Returns:
        (eps_rel of omega* per H, E(omega_Riemann)/c per H), two lists of floats.
    """
    systems = [fbm.omega_system(gammas, H, T, "II") for H in hursts]
    eps = [float(fbm.optimal_relative_error(s)) for s in systems]
    riem = [float(fbm.approximation_error(s, fbm.omega_riemann(gammas, H)) / s.c)
            for s, H in zip(systems, hursts)]
    return eps, riem


def error_vs_K(Ks: list[int], hursts: tuple, ratio: float = 4.0,
               T: float = 1.0) -> tuple[dict, dict, dict]:
    """The error-vs-K sweep of both types on nested grids of ratio ``ratio`` (Prop. 5).

    Args:
        Ks: grid sizes; hursts: Hurst indices; ratio: grid ratio r; T: horizon.

    Returns:
        (eps, riem, resolution): eps[kind] and riem[kind] are (len(hursts), len(Ks)) arrays of
        ``relative_errors_vs_K``; resolution[K] is ``scaled_eigen_ratio`` of the type-II A for
        K > 1 (A does not depend on H).
    """
    eps, riem = {}, {}
    for kind in ("I", "II"):
        eps[kind], riem[kind] = relative_errors_vs_K(Ks, hursts, kind, ratio=ratio, T=T)
    resolution = {K: scaled_eigen_ratio(fbm.omega_system_np(fbm.gamma_grid(K, ratio=ratio), 0.5,
                                                            T, "II").A) for K in Ks if K > 1}
    return eps, riem, resolution


def table_ratios(eps: dict, Ks: list[int], hursts: tuple, table: dict,
                 table_Ks: tuple = (1, 2, 3, 5, 7, 9, 13)) -> list[float]:
    """Ratios ours / printed for every entry of a printed eps_rel table whose K was swept.

    Args:
        eps: ``error_vs_K``'s first output; Ks, hursts: its sweep; table: {(kind, H): printed row
        over ``table_Ks``}; table_Ks: the K of the printed columns.

    Returns:
        The ratios, a list of floats (1: agreement).
    """
    return [eps[k][list(hursts).index(H), Ks.index(K)] / x for (k, H), row in table.items()
            for K, x in zip(table_Ks, row) if K in Ks]


def plot_error_vs_K(eps: dict, riem: dict, Ks: list[int], hursts: tuple,
                    resolution: dict) -> tuple["matplotlib.figure.Figure", str]:
    """Figure of eps_rel vs K (optimal solid, Riemann dashed), a grey band where the scaled A is
    singular to float64 rounding (ratio < 1e-14).

    Args:
        eps, riem, resolution: ``error_vs_K``'s outputs; Ks, hursts: its sweep.

    Returns:
        (figure, Markdown caption).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, kind in zip(axes, ("I", "II")):
        for i, H in enumerate(hursts):
            ax.plot(Ks, eps[kind][i], "o-", ms=3, color=f"C{i}", label=f"optimal ω*, H = {H}")
            ax.plot(Ks, riem[kind][i], "x--", ms=4, lw=0.8, color=f"C{i}",
                    label=f"Riemann ω (paper's baseline), H = {H}")
        ax.set(yscale="log", xlabel="K (geometric grid, ratio r = 4)", title=f"type {kind}, T = 1")
    unresolved = [K for K, r in resolution.items() if r < 1e-14]
    for ax in axes if unresolved else []:
        ax.axvspan(min(unresolved) - 0.5, max(Ks) + 0.5, color="0.9", zorder=0)
    axes[0].set_ylabel("relative error E(ω)/c")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5),
               fontsize=7)
    caption = (
        "**Caption.** Relative error of MA-fBM against fBM on nested grids (r = 4, T = 1): optimal "
        "ω* (solid) and the paper's Riemann (hat-quadrature) baseline (dashed). Grey band: K with "
        "the smallest eigenvalue of the Jacobi-scaled A below 10⁻¹⁴ of the largest (K = "
        f"{', '.join(map(str, unresolved)) or 'none'}; ratios "
        f"{', '.join(f'{resolution[K]:.1e}' for K in unresolved) or '-'}). There A is singular "
        "to float64 rounding, so relative errors below about 10⁻⁸ are not resolved: the "
        "flattening of the type-II curves for H ≥ 0.7 in that band is the limit of the float64 "
        "solve, not a property of MA-fBM, and no claim uses it.")
    return fig, caption


def exact_covariance(ts: np.ndarray, H: float, kind: str) -> np.ndarray:
    """Exact fBM covariance on ``ts`` x ``ts``: type I in the paper's normalisation (V_H), type II
    Riemann-Liouville (Sec. 3).

    Args:
        ts: (n,) times; H: Hurst index; kind: ``"I"`` or ``"II"``.

    Returns:
        (n, n) covariance.
    """
    if kind == "I":
        return np.asarray(fbm.fbm_covariance(ts[:, None], ts[None, :], H, fbm.variance_factor(H)))
    return fbm.rl_covariance(ts[:, None], ts[None, :], H)


def covariance_deviations(ts: np.ndarray, rows: list,
                          hursts: tuple = (0.3, 0.7)) -> tuple[dict, dict]:
    """Analytic MA-fBM covariance against the exact one for every (K, gamma_max) of ``rows``, type
    and H (omega* solved in numpy: no compile per grid).

    Args:
        ts: (n,) times; rows: [(K, gamma_max)]; hursts: Hurst indices.

    Returns:
        (cov_ma, dev): dicts keyed by (K, kind, H) of the (n, n) MA-fBM covariance and of
        max|C_MA - C| / max|C|.
    """
    cov_ma, dev = {}, {}
    for K, g_max in rows:
        g = fbm.gamma_grid(K, gamma_max=g_max)
        for kind in ("I", "II"):
            for H in hursts:
                w = fbm.solve_gram_np(*fbm.omega_system_np(g, H, 1.0, kind)[:2])
                C, E = np.asarray(fbm.mafbm_covariance(ts, ts, g, w, kind)), exact_covariance(ts, H, kind)
                cov_ma[K, kind, H] = C
                dev[K, kind, H] = float(np.max(np.abs(C - E)) / np.max(np.abs(E)))
    return cov_ma, dev


def mafbm_mc_check(keys: list, gammas: np.ndarray, cov_ma: dict, num_paths: int,
                   H: float = 0.3) -> tuple[dict, dict]:
    """Monte Carlo of both MA-fBM samplers (exact transitions, Euler dt = 0.01) on t = 0.1..1.

    Args:
        keys: two PRNG keys (types I, II); gammas: (K,) speeds; cov_ma: ``covariance_deviations``' first output (for
        K = len(gammas)); num_paths: paths per sampler and type.

    Returns:
        (z, bias): z[sampler, kind] = ``second_moment_z`` against the sampler's exact covariance
        (analytic MA-fBM; the Euler recursion's own), bias[kind] = max |z| of the Euler paths
        against the continuous covariance (their O(dt) bias).
    """
    z, bias = {}, {}
    for kind, key in zip(("I", "II"), keys):
        w = fbm.optimal_omega(gammas, H, 1.0, kind)
        exact_p, euler_p = mafbm_mc_paths(key, jnp.asarray(gammas), w, kind, num_paths, 0.01, 100, 10)
        euler_cov = fbm.euler_prior_covariance(gammas, np.asarray(w), 0.0, kind, 0.01, 100)
        z["exact", kind] = second_moment_z(exact_p, cov_ma[len(gammas), kind, H])
        z["euler", kind] = second_moment_z(euler_p, euler_cov[10::10, 10::10])
        emp, ref, se = second_moment_z(euler_p, cov_ma[len(gammas), kind, H])
        bias[kind] = float(np.max(np.abs(emp - ref) / se))
    return z, bias


def anchor_second_moments(key: jax.Array, seed: int, H: float = 0.7, n: int = 64,
                          num_paths: int = 4000) -> dict:
    """``second_moment_z`` of the ``fbm`` package's Cholesky sampler (anchor; numpy seeded with
    ``seed``) and of our Davies-Harte sampler against the exact unit fBM covariance on n points of
    (0, 1].

    Args:
        key: PRNG key (ours); seed: numpy seed (the package); H: Hurst index; n: grid points;
        num_paths: paths per sampler.

    Returns:
        {name: (emp, ref, se)}, each (n (n + 1) / 2,) over the upper-triangle entries.
    """
    import fbm as fbm_package

    np.random.seed(seed)
    gen = fbm_package.FBM(n=n, hurst=H, length=1.0, method="cholesky")
    paths = {"fbm package (Cholesky)": np.array([gen.fbm() for _ in range(num_paths)])[:, 1:],
             "ours (Davies-Harte)": np.asarray(fbm.sample_fbm_davies_harte(
                 key, H, n, 1.0, num_paths))[:, 1:]}
    t = np.linspace(1 / n, 1.0, n)
    exact = np.asarray(fbm.fbm_covariance(t[:, None], t[None, :], H))
    return {name: second_moment_z(P, exact) for name, P in paths.items()}


def plot_covariance_error(ts: np.ndarray, cov_ma: dict, K: int = 5) -> "matplotlib.figure.Figure":
    """Four heat maps of (C_MA - C) / max|C| (types I, II x H = 0.3, 0.7; Sec. 3).

    Args:
        ts: (n,) times; cov_ma: ``covariance_deviations``' first output; K: which grid size.

    Returns:
        The figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2), constrained_layout=True)
    for ax, (kind, H) in zip(axes, [("I", 0.3), ("I", 0.7), ("II", 0.3), ("II", 0.7)]):
        E = exact_covariance(ts, H, kind)
        D = (cov_ma[K, kind, H] - E) / np.max(np.abs(E))
        lim = np.max(np.abs(D))
        im = ax.imshow(D, cmap="RdBu_r", vmin=-lim, vmax=lim, origin="lower",
                       extent=[0.05, 1.05, 0.05, 1.05])
        ax.set(title=f"type {kind}, H = {H}", xlabel="t", ylabel="s" if ax is axes[0] else None)
        fig.colorbar(im, ax=ax, shrink=0.75)
    fig.suptitle("(C_MA-fBM − C_fBM) / max|C_fBM|, K = 5, γ_max = 20, T = 1 "
                 "(each panel has its own colour scale)")
    return fig


def hurst_gradient_check(gammas: np.ndarray, references: tuple,
                         h: float = 1e-5) -> tuple[list, list]:
    """d sum(omega*)/dH by autodiff against central differences of step ``h``.

    Args:
        gammas: (K,) speeds; references: ((kind, T, {H: printed value}), ...).

    Returns:
        (Markdown table rows [[kind, T, H, autodiff, central difference, printed]], relative
        deviations |autodiff - fd| / |fd| per entry).
    """
    rows, dev = [], []
    for kind, T, ref in references:  # one compile per kind: value and gradient together
        f = jax.jit(jax.value_and_grad(lambda H, kind=kind, T=T: fbm.optimal_omega(
            gammas, H, T, kind).sum()), compiler_options=fbm.FAST_COMPILE)
        for H, r in ref.items():
            g_ad = float(f(H)[1])
            g_fd = (float(f(H + h)[0]) - float(f(H - h)[0])) / (2 * h)
            dev.append(abs(g_ad - g_fd) / abs(g_fd))
            rows.append([kind, T, H, f"{g_ad:.6f}", f"{g_fd:.6f}", r])
    return rows, dev


def mean_se(a: ArrayLike) -> str:
    """'mean ± s.e.' of the entries of ``a`` (s.e. = sample std / sqrt(size)).

    Args:
        a: samples, any shape.

    Returns:
        The text, three decimals.
    """
    a = np.asarray(a)
    return f"{a.mean():.3f} ± {a.std(ddof=1) / np.sqrt(a.size):.3f}"


def plot_hurst(hurst: dict, H_true: np.ndarray, H_star: list, num_seeds: int) -> "matplotlib.figure.Figure":
    """Estimated against true H (ELBO-learned, variogram, H*) and seed 0's training curves.

    Args:
        hurst: ``hurst_experiment`` output; H_true: (P,); H_star: P values; num_seeds: per H.

    Returns:
        The figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    axes[0].plot([0, 1], [0, 1], "k:", lw=0.8, label="estimate = true")
    axes[0].axhline(0.5, color="0.6", lw=0.8, label="ELBO start (H = 0.5)")
    for name, marker, label in (("learned", "o", "ELBO-learned H"), ("variogram", "^", "variogram H")):
        m, s = hurst[name].mean(1), hurst[name].std(1, ddof=1) / np.sqrt(num_seeds)
        axes[0].errorbar(H_true, m, 2 * s, fmt=marker, ms=4, capsize=2, label=f"{label} (±2 s.e.)")
    axes[0].plot(H_true, H_star, "s", mfc="none", label="H* (best Euler ELBO, exact)")
    axes[0].set(xlim=(0, 1), ylim=(0, 1), xlabel="true H of the fOU data", ylabel="estimated H",
                title="Hurst index: ELBO vs a classical estimator")
    axes[0].legend(fontsize=7)
    for i, h in enumerate(H_true):
        axes[1].plot(np.convolve(hurst["losses"][i * num_seeds], np.ones(20) / 20, mode="valid"),
                     label=f"true H = {h} (seed 0)")
    axes[1].set(yscale="log", xlabel="Adam step", ylabel="−ELBO per observation (20-step mean)",
                title="training")
    axes[1].legend(fontsize=7)
    return fig


def bridge_references(gammas: np.ndarray, hursts: tuple = (0.3, 0.7),
                      dts: tuple = (0.01, 0.005, 0.002, 0.001)) -> list:
    """Exact references of the theta = 0 bridge (type I, T_omega = 6, X(2) observed with std 0.1;
    Fig. 2, Prop. 2).

    Args:
        gammas: (K,) speeds; hursts: Hurst indices; dts: Euler steps of the best-ELBO gaps.

    Returns:
        [(H, exact log p(obs), [log p - best Euler ELBO per dt], conditioned std of the closed-form
        MA-fBM covariance at t = 0.5, 1, 1.5)] per H.
    """
    ts = np.linspace(0.0, 2.0, 201)
    rows = []
    for H in hursts:
        w = np.asarray(fbm.optimal_omega(gammas, H, 6.0, "I"))
        logp = fbm.gaussian_log_evidence(fbm.linear_prior_covariance(ts, gammas, w, 0.0, "I")[-1, -1],
                                         0.01)
        gaps = [logp - fbm.euler_bridge_optimum(gammas, w, 0.0, "I", dt, int(round(2 / dt)), 0.1)[0]
                for dt in dts]
        closed = np.asarray(fbm.mafbm_covariance(ts, ts, gammas, w, "I"))  # not Van Loan
        rows.append((H, logp, gaps, fbm.conditioned_std(closed, 200, 0.01)[[50, 100, 150]]))
    return rows


def plot_bridge(bridge: dict, eval_paths: int) -> "matplotlib.figure.Figure":
    """Fig. 2: posterior paths and the std bands of every panel.

    Args:
        bridge: ``bridge_panels`` output; eval_paths: posterior paths behind the stds (legend).

    Returns:
        The figure.
    """
    import matplotlib.pyplot as plt

    ts = np.linspace(0.0, 2.0, 201)
    fig, axes = plt.subplots(1, len(bridge), figsize=(3.3 * len(bridge), 3.4), squeeze=False,
                             sharey=True)
    styles = [("std_paper", dict(color="C0", lw=2.4, alpha=0.55),
               "paper's 'true' ±std (unit-normalised)"),
              ("std_ma", dict(color="C2", lw=1.4), "MA-fBM conditioned ±std (analytic, target)"),
              ("std_opt", dict(color="C3", lw=1.2, ls=":"), "best Euler control ±std (dt = 0.01)")]
    for ax, ((H, theta), r) in zip(axes[0], bridge.items()):
        ax.plot(ts, r["xs"].T, color="k", lw=0.3, alpha=0.3)
        for sgn in (1, -1):
            for key, kw, label in styles:
                ax.plot(ts, sgn * r[key], **kw, label=label if sgn > 0 else None)
            ax.plot(ts[::10], sgn * r["std_emp"][::10], "o", color="C1", ms=3.5, mfc="none",
                    mew=1.0, label=f"empirical ±std ({eval_paths} posterior paths)" if sgn > 0 else None)
        ax.set(ylim=(-2, 2), xlabel="t", title=f"H = {H}, θ = {theta:g}")
    axes[0, 0].set_ylabel("X(t)")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", fontsize=7,
               ncol=min(4, 2 * len(bridge)), bbox_to_anchor=(0.5, -0.02))
    fig.subplots_adjust(bottom=0.27 if len(bridge) > 1 else 0.4)
    return fig


def girsanov_kl_rows(gammas: np.ndarray, c: float, T: float, H: float = 0.3,
                     ns: tuple = (10, 50, 200)) -> list:
    """KL of the Gaussian X-path laws under a constant control u = c against none, on grids of n
    points of (0, T] (exact mean shift and MA-fBM covariance, no simulation; Girsanov, Sec. 4).

    Args:
        gammas: (K,) speeds; c: control; T: horizon; H: Hurst index; ns: grid sizes.

    Returns:
        [(kind, n, KL)] for type II then type I, each n of ``ns``.
    """
    rows = []
    for kind in ("II", "I"):
        w = fbm.optimal_omega(gammas, H, T, kind)
        for n in ns:
            t = np.linspace(T / n, T, n)
            kl = fbm.gaussian_path_kl(fbm.constant_control_mean_shift(t, gammas, w, c),
                                      fbm.mafbm_covariance(t, t, gammas, w, kind))
            rows.append((kind, n, float(kl)))
    return rows


def euler_kl_accumulator(key: jax.Array, gammas: np.ndarray, c: float, T: float, H: float = 0.3,
                         dt: float = 0.005) -> float:
    """The Euler scan's path-KL state sum 1/2 u^2 dt under the constant control u = c on [0, T]
    (type II, one latent).

    Args:
        key: PRNG key; gammas: (K,) speeds; c: control; T: horizon; H: Hurst index; dt: step.

    Returns:
        The accumulated KL, a float.
    """
    sim = fbm.euler_maruyama(key, jnp.zeros(1), jnp.zeros((1, len(gammas))), gammas,
                             fbm.optimal_omega(gammas, H, T, "II"), lambda t, x: 0 * x,
                             lambda t, x: jnp.ones_like(x), lambda t, x, y: c * jnp.ones(1),
                             dt, int(round(T / dt)))
    return float(sim.kl)


def sampler_speed_rows(keys: Iterator, gammas: np.ndarray, lengths: list[int], cholesky_max: int,
                       H: float = 0.7, num_paths: int = 200) -> list:
    """Paths per second and ``increment_autocov_error`` of each sampler at each path length n:
    our Davies-Harte, MA-fBM (type I, exact transitions), the ``fbm`` package's Davies-Harte
    (num_paths // 10 paths, one call each) and our Cholesky (n <= cholesky_max).

    Args:
        keys: iterator of PRNG keys (one drawn per length).

    Returns:
        [(n, sampler name, paths per second, error)].
    """
    import fbm as fbm_package

    w = fbm.optimal_omega(gammas, H, 1.0, "I")
    rows = []
    for n in lengths:
        k = next(keys)
        samplers = {
            "Davies–Harte (ours)": (lambda: fbm.sample_fbm_davies_harte(k, H, n, 1.0, num_paths), 1.0),
            "MA-fBM K=5 (ours)": (lambda: fbm.sample_mafbm_exact(k, gammas, w, 1.0 / n, n, num_paths,
                                                                 "I"), float(fbm.variance_factor(H))),
            "Davies–Harte (fbm pkg)": (lambda: np.array([fbm_package.FBM(
                n=n, hurst=H, length=1.0, method="daviesharte").fbm()
                for _ in range(num_paths // 10)]), 1.0)}
        if n <= cholesky_max:
            samplers["Cholesky (ours)"] = (lambda: fbm.sample_fbm_cholesky(k, H, n, 1.0, num_paths), 1.0)
        for name, (fn, scale) in samplers.items():
            sec, paths = timed(fn, repeats=1 if "pkg" in name else 3)
            paths = np.asarray(paths)
            rows.append((n, name, paths.shape[0] / sec, increment_autocov_error(paths, H, scale)))
    return rows


def video_clips(num_train: int, num_test: int, frames: int, canvas: int,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Moving-digit clips flattened to (N, frames, canvas^2): (training clips, test clips).

    Args:
        num_train, num_test: clips; frames: frames per clip; canvas: frame side; seed: data seed.

    Returns:
        (training clips (num_train, frames, canvas^2), test clips (num_test, frames, canvas^2)).
    """
    from paperlib import datasets

    clips = datasets.moving_digits(num_train + num_test, frames, canvas, seed)
    clips = clips.reshape(clips.shape[0], frames, -1)
    return clips[:num_train], clips[num_train:]


def training_ratio(losses: np.ndarray, window: int) -> float:
    """Largest over runs (rows of ``losses``) of the mean of the last ``window`` losses over the
    first ``window``'s (NaN for a run with a non-finite loss; < 1: every run's loss fell).

    Args:
        losses: (runs, steps); window: steps averaged at each end.

    Returns:
        The largest ratio, a float.
    """
    first, last = losses[:, :window].mean(1), losses[:, -window:].mean(1)
    finite = np.all(np.isfinite(losses), axis=1)
    return float(np.max(np.where(finite, last / first, np.nan)))


def plot_video(test_clips: np.ndarray, video: dict, canvas: int, window: int) -> "matplotlib.figure.Figure":
    """A held-out clip, its BM and MA-fBM reconstructions, and the training curves (Sec. 5.2 proxy).

    Args:
        test_clips: (M, T, canvas^2); video: ``video_experiment`` output; canvas: frame side;
        window: moving-average window of the curves.

    Returns:
        The figure.
    """
    import matplotlib.pyplot as plt

    show = min(test_clips.shape[1], 8)
    fig = plt.figure(figsize=(1.2 * (show + 1) + 3, 4.4))
    grid = fig.add_gridspec(3, show + 1, width_ratios=[1] * show + [3.5])
    for r, (label, seq) in enumerate((("data", test_clips[0]), ("BM", video["BM"]["recon"][0]),
                                      ("MA-fBM", video["MA-fBM"]["recon"][0]))):
        for c in range(show):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(seq[c].reshape(canvas, canvas), cmap="gray", vmin=0, vmax=1)
            ax.set(xticks=[], yticks=[])
            if c == 0:
                ax.set_ylabel(label)
    ax_loss = fig.add_subplot(grid[:, -1])
    for name, v in video.items():
        ax_loss.plot(np.convolve(v["losses"][0], np.ones(window) / window, "valid"),
                     label=f"{name} (seed 0, H = {v['H'][0]:.2f})")
    ax_loss.set(yscale="log", xlabel="Adam step", ylabel="−ELBO per clip (moving mean)",
                title="training")
    ax_loss.legend()
    fig.suptitle("Latent SDE on stochastic moving digits: a held-out clip and its reconstructions")
    return fig


def hurst_table(hurst: dict, H_true: np.ndarray, H_star: list, slopes: dict, num_seeds: int) -> str:
    """Markdown: learned, variogram and H* per true H (mean ± s.e. over seeds), the shrinkage
    slopes and the mean absolute errors of both estimators.

    Args:
        hurst: ``hurst_experiment`` output; H_true: (P,); H_star: P values; slopes: name ->
        (num_seeds,) slopes; num_seeds: seeds per true H.

    Returns:
        The Markdown text.
    """
    err = {name: np.abs(hurst[name] - H_true[:, None]) for name in ("learned", "variogram")}
    table = markdown_table(
        ["true H", "learned H (ELBO)", "variogram H (same data)", "H* of the best Euler ELBO (seed 0)"],
        [[h, mean_se(hurst["learned"][i]), mean_se(hurst["variogram"][i]), f"{H_star[i]:.3f}"]
         for i, h in enumerate(H_true)])
    return (f"**{num_seeds} seeds per true H** (mean ± s.e. over seeds)\n\n{table}\n\nShrinkage "
            f"slope of (Ĥ − ½) on (H − ½): ELBO {mean_se(slopes['learned'])}, variogram "
            f"{mean_se(slopes['variogram'])}. Mean |Ĥ − H|: ELBO {mean_se(err['learned'])}, "
            f"variogram {mean_se(err['variogram'])}.")


def video_table(video: dict, baselines: dict, window: int) -> str:
    """Markdown rows per model (-ELBO over the last ``window`` steps, test MSE ± s.e., learned H
    per seed) and per closed-form baseline of ``clip_baselines``.

    Args:
        video: ``video_experiment`` output; baselines: ``clip_baselines`` output; window: steps.

    Returns:
        The Markdown table.
    """
    rows = [[name, f"{v['losses'][:, -window:].mean():.1f}",
             f"{v['mse'].mean():.4f} ± {v['mse_se'].mean():.4f}",
             ", ".join(f"{h:.3f}" for h in v["H"])] for name, v in video.items()]
    rows += [[f"{name} (closed form)", "–", f"{m:.4f} ± {s:.4f}", "–"]
             for name, (m, s) in baselines.items()]
    return markdown_table(["model", "−ELBO, last 10%", "test MSE / pixel", "learned H per seed"], rows)


def covariance_table(ts: np.ndarray, cov_ma: dict, dev: dict) -> str:
    """Markdown: per (K, kind, H) of ``covariance_deviations`` the maximum relative deviation and
    Var B(1) of MA-fBM against the exact value (Sec. 3).

    Args:
        ts: (n,) times; cov_ma, dev: ``covariance_deviations``' outputs.

    Returns:
        The Markdown table.
    """
    return markdown_table(
        ["K", "type", "H", "max\\|C−E\\|/max\\|E\\|", "Var(1) MA / exact"],
        [[K, k, H, f"{d:.4f}", f"{cov_ma[K, k, H][-1, -1]:.4f} / "
          f"{exact_covariance(ts, H, k)[-1, -1]:.4f}"] for (K, k, H), d in dev.items()])


def bridge_table(bridge: dict) -> str:
    """Markdown: per Fig. 2 panel of ``bridge_panels`` the MC-ELBO ± s.e., the best Euler ELBO,
    the exact log p and the stds at t = 1 (empirical, MA-fBM conditioned, best Euler control, the
    paper's band).

    Args:
        bridge: ``bridge_panels`` output.

    Returns:
        The Markdown table.
    """
    return markdown_table(
        ["H", "θ", "MC-ELBO ± s.e.", "best Euler ELBO", "exact log p", "std(1): empirical ± s.e. "
         "/ MA-fBM conditioned / best Euler control / paper's band"],
        [[H, th, f"{r['elbo']:.4f} ± {r['se']:.4f}", f"{r['best']:.4f}", f"{r['logp']:.4f}",
          f"{r['std_emp'][100]:.3f} ± {r['std_se'][100]:.3f} / {r['std_ma'][100]:.3f} / "
          f"{r['std_opt'][100]:.3f} / {r['std_paper'][100]:.3f}"] for (H, th), r in bridge.items()])


def speed_tables(speed_rows: list, timing_rows: list) -> str:
    """Markdown: the sampler table of ``sampler_speed_rows`` (paths / s, error) and the forward
    times of ``bridge_forward_times`` (Fig. 9 analogue).

    Args:
        speed_rows: ``sampler_speed_rows`` output; timing_rows: ``bridge_forward_times`` output.

    Returns:
        The Markdown text.
    """
    samplers = markdown_table(["n", "sampler", "paths / s", "increment-autocovariance error"],
                              [[n, s, f"{r:,.0f}", f"{e:.3f}"] for n, s, r, e in speed_rows])
    forward = markdown_table(
        ["MLP width", "K", "ms per forward"],
        [[wd, f"{K}{' (BM)' if K == 0 else ''}", f"{1e3 * s:.1f}"] for wd, K, s in timing_rows])
    return (f"**Samplers, H = 0.7, 200 paths per call (fbm package: 20), backend "
            f"{jax.default_backend()}**\n\n{samplers}\n\n**Forward pass (32 bridge paths, 200 "
            f"Euler steps)**\n\n{forward}")


# ---------------------------------------------------------------------------------------------
# Reference values of the research brief (independent float64 re-derivations) and report helpers
# ---------------------------------------------------------------------------------------------

BRIEF_OMEGA_FIXTURES = [("I", 6.0, 0.3, [0.78371, -0.09288, 0.47869, 0.06908, 1.20410], 5),
                        ("I", 6.0, 0.7, [2.29798, -1.69848, 0.37683, -0.69424, 0.07688], 5),
                        ("II", 1.0, 0.3, [28.174, -38.351, 13.262, -2.292, 1.772], 3),
                        ("II", 1.0, 0.7, [-0.935, 3.268, -1.771, 0.116, -0.315], 3)]
"""The brief's omega* (K = 5, gamma_max = 20): [(kind, T, H, printed omega, decimals)] (Prop. 5)."""

BRIEF_C4 = {("II", 0.3): [.031, .029, .017, 8.4e-3, 4.1e-3, 1.9e-3, 3.6e-4],
            ("II", 0.7): [.15, 1.5e-3, 1.1e-3, 1.7e-4, 2.9e-5, 4.7e-6, 1.1e-7],
            ("I", 0.3): [.12, .092, .046, .019, 8.0e-3, 3.4e-3]}
"""The brief's C4 table: eps_rel at K = 1, 2, 3, 5, 7, 9, 13 (r = 4, T = 1) per (kind, H)."""

BRIEF_C5 = {(5, "I", 0.3): (0.016, 3), (5, "II", 0.3): (0.0125, 4), (5, "I", 0.7): (0.112, 3),
            (5, "II", 0.7): (0.0024, 4)}
"""The brief's C5 table: max|C_MA - C| / max|C| (K = 5, gamma_max = 20), (value, decimals)."""

BRIEF_GRAD = (("II", 1.0, {0.3: -11.7054, 0.7: -1.92088}), ("I", 6.0, {0.3: -10.4675, 0.7: -2.11299}))
"""The brief's d sum(omega*)/dH (K = 5, gamma_max = 20): ((kind, T, {H: value}), ...) (Sec. 3.3)."""


def b_fixture_values(gammas_H: tuple = ((0.3, 0.2), (2.0, 0.7)), T: float = 1.5) -> list[float]:
    """b_1 of a one-speed system for each (gamma, H) and type (I first), the brief's C2 cases.

    Args:
        gammas_H: [(gamma, H)]; T: horizon.

    Returns:
        [b for kind in (I, II) for (gamma, H) in gammas_H], floats (Prop. 5).
    """
    return [float(fbm.omega_system(jnp.array([g]), H, T, kind).b[0])
            for kind in ("I", "II") for g, H in gammas_H]


def mc_bias_note(z_crit: float, num_entries: int, bias: dict) -> str:
    """Markdown note under the Monte-Carlo covariance claims: the threshold and the Euler paths'
    max |z| against the continuous covariance (their O(dt) bias; Sec. 3).

    Args:
        z_crit: Bonferroni threshold; num_entries: entries tested; bias: ``mafbm_mc_check``'s second
        output.

    Returns:
        The Markdown text.
    """
    return (f"Bonferroni threshold |z| ≤ {z_crit:.2f} over {num_entries} entries. Max |z| of the "
            f"Euler paths against the *continuous* analytic covariance: type I {bias['I']:.2f}, "
            f"type II {bias['II']:.2f} (their O(dt) bias; against the Euler recursion's own "
            "covariance they are checked above).")


def hurst_summary(hurst: dict, H_true: np.ndarray, setup: fbm.HurstSetup, num_seeds: int,
                  with_h_star: bool) -> tuple[list, dict]:
    """H* of the first seed's data set of each true H (Nelder-Mead over an exact Riccati; NaN when
    ``with_h_star`` is False) and the shrinkage slopes of the learned and variogram estimates.

    Args:
        hurst: ``hurst_experiment`` output; H_true: (P,); setup: the model; num_seeds: per H;
        with_h_star: compute H* (seconds per data set).

    Returns:
        (H_star: P floats, slopes: {"learned", "variogram"} -> (num_seeds,)) (Sec. 3.3).
    """
    H_star = [fbm.elbo_optimal_hurst(hurst["datas"][i * num_seeds], setup)[0] if with_h_star
              else np.nan for i in range(len(H_true))]
    return H_star, {name: shrinkage_slopes(H_true, hurst[name]) for name in ("learned", "variogram")}


def video_report(video: dict, train_clips: np.ndarray, test_clips: np.ndarray, steps: int,
                 seeds: int, window: int) -> str:
    """Markdown: the proxy's settings over ``video_table`` with the closed-form baselines.

    Args:
        video: ``video_experiment`` output; train_clips, test_clips: (N, T, pixels), (M, T, pixels);
        steps: Adam steps; seeds: runs per model; window: steps averaged for the loss column.

    Returns:
        The Markdown text (Sec. 5.2 proxy).
    """
    n, frames, pixels = train_clips.shape
    return (f"**Moving digits ({n} training / {test_clips.shape[0]} test clips, {frames} frames of "
            f"{int(round(np.sqrt(pixels)))}², {steps} Adam steps, {seeds} seed(s))**: test "
            "reconstruction MSE per pixel ± s.e. over test clips\n\n"
            + video_table(video, clip_baselines(train_clips, test_clips), window))


def c3_table(hursts: list[float], eps: list[float], riem: list[float]) -> str:
    """Markdown: the C3 rows of ``c3_rows`` (optimal omega* and the paper's Riemann baseline).

    Args:
        hursts: the H of the columns; eps, riem: ``c3_rows``' outputs.

    Returns:
        The Markdown table (Prop. 5).
    """
    return markdown_table(["H"] + list(hursts), [["optimal ω*"] + [f"{e:.2g}" for e in eps],
                                                 ["Riemann (paper's baseline)"]
                                                 + [f"{e:.3g}" for e in riem]])


def gradient_table(rows: list) -> str:
    """Markdown: the rows of ``hurst_gradient_check`` (autodiff, central difference, brief).

    Args:
        rows: ``hurst_gradient_check``'s first output.

    Returns:
        The Markdown table (Sec. 3.3).
    """
    return markdown_table(["type", "T", "H", "autodiff dΣω/dH", "central difference", "brief"], rows)


def reference_table(refs: list) -> str:
    """Markdown: exact log p and the best Euler ELBO's gap to it per dt, from ``bridge_references``.

    Args:
        refs: ``bridge_references`` output.

    Returns:
        The Markdown table (Fig. 2 references).
    """
    return markdown_table(
        ["H", "exact log p", "gap of the best Euler ELBO, dt = 0.01 / 0.005 / 0.002 / 0.001"],
        [[H, f"{lp:.4f}", " / ".join(f"{g:.3f}" for g in gp)] for H, lp, gp, _ in refs])


def kl_table(kl_rows: list, c: float, T: float) -> str:
    """Markdown: the Gaussian path KL of ``girsanov_kl_rows`` relative to Girsanov's 1/2 c^2 T.

    Args:
        kl_rows: ``girsanov_kl_rows`` output; c: the constant control; T: horizon.

    Returns:
        The Markdown table.
    """
    return markdown_table(["type", "grid points n", "Gaussian KL on the grid / (½c²T)"],
                          [[k, n, f"{v / (0.5 * c**2 * T):.5f}"] for k, n, v in kl_rows])
