"""Protocols of the Daems et al. 2024 notebook (MA-fBM, arXiv 2310.12975): quadrature references
for Prop. 5, error-vs-K sweeps, Monte-Carlo covariance z-scores, timing tables, and the training
experiments (Fig. 2 bridge panels, learnable Hurst index, the video proxy), built on
``paperlib.fbm`` and ``paperlib.fbm_video``."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy import integrate, special

from paperlib import fbm, fbm_video
from paperlib.stats import mean_and_se, variance_and_se

QUAD = dict(epsabs=1e-13, epsrel=1e-11, limit=200)


def quad(f, a, b, **kw) -> float:
    """scipy ``quad`` at the tolerances of the Prop. 5 checks."""
    return integrate.quad(f, a, b, **{**QUAD, **kw})[0]


# ---------------------------------------------------------------------------------------------
# Prop. 5: A, b, c as integrals over the driving noise (independent of the closed forms)
# ---------------------------------------------------------------------------------------------


def kernel_b(t, g, H, kind) -> float:
    """E[B_H(t) Y_hat(t)] by quadrature over the noise (type I adds the past s < 0)."""
    a = H + 0.5
    recent = quad(lambda v: np.exp(-g * v), 0.0, t, weight="alg", wvar=(a - 1.0, 0.0))
    if kind == "I":
        recent += quad(
            lambda u: ((t + u) ** (a - 1) - u ** (a - 1)) * (np.exp(-g * (t + u)) - np.exp(-g * u)),
            0,
            np.inf,
        )
    return recent / special.gamma(a)


def kernel_a(t, gi, gj, kind) -> float:
    """E[Y_hat_i(t) Y_hat_j(t)] by quadrature over the noise."""
    recent = quad(lambda s: np.exp(-(gi + gj) * (t - s)), 0.0, t)
    if kind == "II":
        return recent
    past = lambda u: (np.exp(-gi * (t + u)) - np.exp(-gi * u)) * (
        np.exp(-gj * (t + u)) - np.exp(-gj * u)
    )  # noqa: E731
    return recent + quad(past, 0, np.inf)


def kernel_var(t, H, kind) -> float:
    """E[B_H(t)^2] by quadrature (type I: split at u = 1, u^{2a-2} as a weight near 0)."""
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


def closed_form_error(gammas, cases, kind: str) -> float:
    """Max relative error of the closed-form b and c (Prop. 5) against time integrals of the
    kernels, over ``cases`` = [(H, T), ...], and of A (H-free) on three of the speeds at T = 1.5."""
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


def worst_perturbation_gain(rng, gammas, cases, num: int = 100) -> float:
    """min over random delta (scales 1e-5..1) and ``cases`` [(kind, T, H)] of
    (E(omega* + delta) - E(omega*)) / c, E evaluated in numpy from A, b, c (>= 0 at the optimum).
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


def relative_errors_vs_K(Ks, Hs, kind: str, ratio: float, T: float):
    """(len(Hs), len(Ks)) relative errors on nested grids of ratio ``ratio``: the optimum
    1 - b'A^{-1}b/c, and the paper's Riemann baseline E(omega_Riemann)/c (NaN at K = 1), in numpy
    (``fbm.omega_system_np``: no compile per grid size)."""
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


def printed_precision_deviation(values, printed, decimals) -> float:
    """max |value - printed| in half-units of each printed value's last digit (<= 1: agrees)."""
    v, p, d = (np.asarray(x, dtype=float) for x in (values, printed, decimals))
    return float(np.max(np.abs(v - p) / (0.5 * 10.0**-d)))


# ---------------------------------------------------------------------------------------------
# Monte-Carlo covariance checks
# ---------------------------------------------------------------------------------------------


def second_moment_z(paths, cov):
    """For zero-mean Gaussian paths (N, n): the empirical E[X_i X_j] on the upper triangle, the
    exact value from ``cov`` and the Gaussian s.e. sqrt((C_ij^2 + C_ii C_jj) / N) of each entry."""
    P = np.asarray(paths, dtype=np.float64)
    iu = np.triu_indices(P.shape[1])
    emp = (P.T @ P / P.shape[0])[iu]
    C = np.asarray(cov, dtype=np.float64)
    se = np.sqrt((C**2 + np.outer(np.diag(C), np.diag(C))) / P.shape[0])[iu]
    return emp, C[iu], se


def mafbm_mc_paths(
    key, gammas, omega, kind: str, num_paths: int, dt: float, num_steps: int, every: int
):
    """MA-fBM at t = every*dt, 2 every*dt, ...: (exact OU-transition paths, Euler paths), each
    (num_paths, num_steps // every)."""
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

    euler = jax.jit(jax.vmap(euler_one))(jax.random.split(k_euler, num_paths))
    return np.asarray(exact)[:, 1:], np.asarray(euler)[:, every::every]


def bonferroni_z(num_tests: int, family_level: float = 0.01) -> float:
    """Two-sided z threshold at family-wise level ``family_level`` over ``num_tests`` tests."""
    return float(special.ndtri(1.0 - family_level / (2.0 * num_tests)))


# ---------------------------------------------------------------------------------------------
# Speed (Fig. 9 analogue)
# ---------------------------------------------------------------------------------------------


def timed(fn, repeats: int = 3):
    """(seconds per call after one warm-up/compile call, last result), blocking on JAX results."""
    jax.block_until_ready(fn())
    t = time.perf_counter()
    for _ in range(repeats):
        res = jax.block_until_ready(fn())
    return (time.perf_counter() - t) / repeats, res


def increment_autocov_error(paths, H, scale) -> float:
    """max over lags 0-4 of |empirical - exact| autocovariance of the increments of paths on [0, 1]
    (rescaled to unit steps), relative to the lag-0 value; exact: ``scale`` x unit fGn."""
    inc = np.diff(np.asarray(paths), axis=1)
    n = inc.shape[1]
    inc = inc / (1.0 / n) ** H
    emp = np.array([np.mean(inc[:, : n - k] * inc[:, k:]) for k in range(5)])
    exact = scale * np.asarray(fbm.fgn_autocovariance(np.arange(5), H))
    return float(np.max(np.abs(emp - exact)) / exact[0])


def bridge_forward_times(key, Ks, widths, gamma_max: float = 20.0, num_paths: int = 32):
    """Seconds per forward pass of ``num_paths`` bridge paths (200 Euler steps) for each (width, K);
    K = 0 is Brownian motion. Returns [(width, K, seconds)]."""
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


def std_and_se(x):
    """Sample std over the rows of x (N, ...) per column, and its delta-method s.e.
    se(var) / (2 std)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.array([variance_and_se(col) for col in x.reshape(x.shape[0], -1).T])
    std = np.sqrt(out[:, 0])
    return std, out[:, 1] / (2 * std)


def bridge_panels(
    key,
    panels,
    gammas,
    hidden,
    num_steps: int,
    batch: int,
    learning_rate: float,
    eval_paths: int,
    T_omega: float = 6.0,
    dt: float = 0.01,
    horizon: int = 200,
    obs_std: float = 0.1,
):
    """Train the control of every panel [H, theta] (type I, official bridge setup) and evaluate it.

    Returns {(H, theta): dict(elbo, se, logp, best, xs, std_emp, std_se, std_ma, std_opt, std_paper,
    losses)}: MC-ELBO and its s.e. over ``eval_paths`` posterior paths, the exact log p(obs) and
    best Euler ELBO, and the posterior std against the exact conditioned stds (MA-fBM prior,
    continuous; best Euler control; the paper's unit-normalised "true" band)."""
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
    key,
    hurst_values,
    num_seeds: int,
    setup: fbm.HurstSetup,
    hidden,
    num_steps: int,
    batch: int,
    learning_rate: float,
    num_sequences: int,
    num_obs: int,
    theta_data: float = 0.5,
):
    """fOU data sets (exact Cholesky fBM, ``fbm.sample_fou_observations``) for every true H and
    seed, all R = len(hurst_values) * num_seeds ELBO runs in one vmapped loop, and the variogram
    estimate (lags 1, 2, noise-corrected) on the same observations. Returns a dict of
    (len(hurst_values), num_seeds) arrays ``learned``, ``sigma``, ``variogram``, the losses
    (R, num_steps) and the data sets (R, num_sequences, num_obs)."""
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


def shrinkage_slopes(true_h, estimates):
    """Per seed, the least-squares slope through (1/2, 1/2) of the estimate on the true H:
    sum (H_hat - 1/2)(H - 1/2) / sum (H - 1/2)^2 (1: unbiased recovery, 0: stuck at 1/2).
    ``estimates`` is (len(true_h), num_seeds); returns (num_seeds,)."""
    d = np.asarray(true_h, dtype=float)[:, None] - 0.5
    return np.sum((np.asarray(estimates) - 0.5) * d, axis=0) / np.sum(d**2)


# ---------------------------------------------------------------------------------------------
# Video proxy (Sec. 5.2 architecture on moving digits)
# ---------------------------------------------------------------------------------------------


def video_experiment(
    key,
    train_clips,
    test_clips,
    models,
    num_seeds: int,
    num_steps: int,
    batch: int,
    learning_rate: float,
    **setup_kw,
):
    """Train each model (name -> K; K = 0 is Brownian motion) for ``num_seeds`` seeds (vmapped) on
    ``train_clips`` (N, T, pixels); reconstruct ``test_clips`` along one posterior path each.
    Returns {name: dict(losses (seeds, steps), recon of seed 0, mse per seed and its s.e. over
    test clips, learned H per seed)}."""
    out = {}
    for name, K in models.items():
        key, k_fit, k_rec = jax.random.split(key, 3)
        setup = fbm_video.video_setup(K, num_frames=train_clips.shape[1], **setup_kw)
        fit = lambda k, setup=setup: fbm_video.train_video(
            k, train_clips, setup, num_steps, batch, learning_rate  # noqa: E731
        )
        params, losses = jax.vmap(fit)(jax.random.split(k_fit, num_seeds))
        recon = jax.jit(
            jax.vmap(
                jax.vmap(
                    lambda p, k, f, setup=setup: fbm_video.reconstruct(p, k, f, setup)[0],
                    (None, 0, 0),
                ),
                (0, None, None),
            )
        )(params, jax.random.split(k_rec, test_clips.shape[0]), jnp.asarray(test_clips))
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


def clip_baselines(train_clips, test_clips):
    """Closed-form reconstructions of the test clips: the training set's mean frame, and each test
    clip's own time-averaged frame (it sees the clip, as the model's encoder does). Returns
    {name: (MSE per pixel, its s.e. over test clips)}."""
    mean_frame = np.mean((test_clips - train_clips.mean(axis=(0, 1))) ** 2, axis=(1, 2))
    own_average = np.mean((test_clips - test_clips.mean(axis=1, keepdims=True)) ** 2, axis=(1, 2))
    return {
        "training mean frame": mean_and_se(mean_frame),
        "clip's own time average": mean_and_se(own_average),
    }


def scaled_eigen_ratio(A) -> float:
    """Smallest over largest eigenvalue of the Jacobi-scaled Gram matrix D A D, D = diag(A)^{-1/2}
    (below ~1e-14 the matrix is singular to float64 rounding; the smallest may come out negative).
    """
    A = np.asarray(A, dtype=np.float64)
    d = 1.0 / np.sqrt(np.diag(A))
    ev = np.linalg.eigvalsh(A * d[:, None] * d[None, :])
    return float(ev[0] / ev[-1])
