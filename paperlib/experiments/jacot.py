"""Protocols of the Jacot, Gabriel, Hongler (2018) notebook: ensembles of finite networks at
initialisation and trained by gradient descent, against the analytic kernels of
:mod:`paperlib.ntk`. Each function runs one section's sweep over widths (one ``jax.random.fold_in``
key per width or per width index, as the notebook always did) and returns per-network numbers.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from paperlib import ntk, stats
from paperlib.image_sets import ImageSet


def _batch(widths, dtype, seeds):
    return min(ntk.auto_batch(widths, dtype), seeds)


def init_deviation(key: jax.Array, x: ArrayLike, theta_inf: ArrayLike, widths, seeds: int, *,
                   beta: float, dtype) -> list[np.ndarray]:
    """Thm 1 at initialisation: how far each network's empirical NTK is from the limit.

    Per width n (depth 4, width n in every hidden layer; key ``fold_in(key, i)`` for the i-th
    width), the squared relative Frobenius distance ||Theta_hat - Theta_inf||^2 / ||Theta_inf||^2
    of each network's exact empirical NTK on ``x``.

    Args:
      key: the sweep's key.
      x: inputs, shape (P, n_0).
      theta_inf: the analytic Theta(4)_inf(x, x), shape (P, P).
      widths: the hidden widths.
      seeds: networks per width.

    Returns:
      One array of shape (seeds,) per width.
    """
    theta_inf = np.asarray(theta_inf)
    out = []
    for i, n in enumerate(widths):
        w = (x.shape[1], n, n, n, 1)
        _, th = ntk.init_ensemble(jax.random.split(jax.random.fold_in(key, i), seeds), x, widths=w,
                                  beta=beta, dtype=dtype, batch_size=_batch(w, dtype, seeds))
        d = np.linalg.norm((np.asarray(th, float) - theta_inf).reshape(seeds, -1), axis=1)
        out.append((d / np.linalg.norm(theta_inf)) ** 2)
    return out


def lazy_training(key: jax.Array, widths, seeds: int, x_train: ArrayLike, y_train: ArrayLike,
                  grid: ArrayLike, x0: ArrayLike, k_tt: ArrayLike, k_gt: ArrayLike, *, lr: float,
                  steps: int, beta: float, dtype) -> dict:
    """Thm 2 / Fig. 1: networks trained by gradient descent, against kernel GD with Theta_inf.

    Per width (key ``fold_in(key, i)`` for the i-th), ``seeds`` networks trained ``steps`` GD
    steps of size ``lr`` on (x_train, y_train).

    Args:
      key: the sweep's key.
      widths: hidden widths (depth 4).
      seeds: networks per width.
      x_train: training inputs (N, n_0); y_train: targets (N,).
      grid: evaluation inputs (G, n_0); x0: the NTK's first argument, (1, n_0).
      k_tt: Theta_inf(x_train, x_train), (N, N); k_gt: Theta_inf(grid, x_train), (G, N).

    Returns:
      {width: dict} with, per network, ``th0``/``thT`` = Theta(x0, grid) at t = 0 and after
      training, (seeds, G); ``change`` = ||Theta_T - Theta_0|| / ||Theta_0||, ``inflation`` =
      relative growth of its mean level, ``to_kernel`` = rms distance on ``grid`` to kernel GD with
      Theta_inf from the same f_0, ``train_loss``: each (seeds,).
    """
    G = len(grid)
    x_eval = jnp.concatenate([grid, x_train])
    predict = jax.vmap(lambda f_tr, f_te: ntk.kernel_predict(k_tt, k_gt, y_train, f_tr, f_te, lr=lr,
                                                             steps=steps))
    out = {}
    for i, n in enumerate(widths):
        w = (x_train.shape[1], n, n, n, 1)
        r = ntk.ensemble(jax.random.split(jax.random.fold_in(key, i), seeds), x_train, y_train,
                         x_eval, x0, grid, widths=w, lr=lr, steps=steps, beta=beta, dtype=dtype,
                         with_ntk=True, batch_size=_batch(w, dtype, seeds))
        th0, thT = np.asarray(r.ntk0[:, 0], float), np.asarray(r.ntkT[:, 0], float)
        f0, fT = np.asarray(r.f0, float), np.asarray(r.fT, float)
        pred = np.asarray(predict(jnp.asarray(f0[:, G:]), jnp.asarray(f0[:, :G])))
        out[n] = dict(th0=th0, thT=thT,
                      change=np.linalg.norm(thT - th0, axis=1) / np.linalg.norm(th0, axis=1),
                      inflation=thT.mean(1) / th0.mean(1) - 1,
                      to_kernel=np.sqrt(np.mean((fT[:, :G] - pred) ** 2, axis=1)),
                      train_loss=0.5 * np.mean((fT[:, G:] - np.asarray(y_train)) ** 2, axis=1))
    return out


def gaussian_limit(key: jax.Array, seeds_per_width: dict, x_train: ArrayLike, y_train: ArrayLike,
                   x_grid: ArrayLike, i_test: int, mean_test: float, *, lr: float, steps: int,
                   beta: float, dtype) -> tuple[dict, dict]:
    """Section 5: trained ensembles against the infinite-width Gaussian, per width.

    For each width n, ``seeds_per_width[n]`` networks (key ``fold_in(key, n)``) trained ``steps``
    GD steps on (x_train, y_train). The output at ``x_grid[i_test]`` is split with
    :func:`ntk.linearised_split` into kernel, prior (zero mean) and nonlinear parts.

    Args:
      key: the sweep's key.
      seeds_per_width: {width: number of networks}.
      x_train: (N, n_0); y_train: (N,); x_grid: (G, n_0).
      i_test: index of the test input in ``x_grid``.
      mean_test: the limiting mean there (subtracted in ``cv_s``).

    Returns:
      (f_T on ``x_grid`` per width, (S, G); bias per width: mean and s.e. of the plain sample
      ``plain``, of the control-variate estimate f_T - prior ``cv``, of the linearised net (kernel
      part) ``lin``, of the nonlinear part f_T - f_lin ``nonlin``, the sample variance ``var``
      with its s.e., ``S``, and the control-variate sample minus ``mean_test``, ``cv_s`` (S,)).
    """
    N, G = len(x_train), len(x_grid)
    x_ntk = jnp.concatenate([x_train, x_grid[i_test:i_test + 1]])
    fT_grid, bias = {}, {}
    for n, seeds in seeds_per_width.items():
        w = (x_train.shape[1], n, n, n, 1)
        r = ntk.ensemble(jax.random.split(jax.random.fold_in(key, n), seeds), x_train, y_train,
                         jnp.concatenate([x_grid, x_train]), x_ntk, widths=w, lr=lr, steps=steps,
                         beta=beta, dtype=dtype, with_ntk=True, batch_size=_batch(w, dtype, seeds))
        fT_grid[n] = np.asarray(r.fT[:, :G], float)
        th0, f0 = np.asarray(r.ntk0, float), np.asarray(r.f0, float)
        split = jax.vmap(lambda th, f: ntk.linearised_split(
            th[:N, :N], th[N:, :N], f[G:], f[i_test:i_test + 1], y_train, lr=lr, steps=steps)
        )(th0, f0)
        kern, prior = np.asarray(split.kernel_part[:, 0]), np.asarray(split.prior_part[:, 0])
        sample = fT_grid[n][:, i_test]
        bias[n] = dict(plain=stats.mean_and_se(sample), cv=stats.mean_and_se(sample - prior),
                       lin=stats.mean_and_se(kern), nonlin=stats.mean_and_se(sample - kern - prior),
                       var=stats.variance_and_se(sample), S=seeds, cv_s=sample - prior - mean_test)
    return fT_grid, bias


def train_outputs(key: jax.Array, x: ArrayLike, shift: ArrayLike, width: int, seeds: int, *,
                  lr: float, steps: int, beta: float, dtype) -> np.ndarray:
    """Section 5 / Fig. 3 protocol: networks trained on the shifted target f_0 + shift.

    Args:
      key: split into one key per network.
      x: training inputs, (N, n_0).
      shift: the shift of the target, (N,).
      width: hidden width (depth 4); seeds: number of networks.

    Returns:
      f_t(x) for t = 0..steps, shape (seeds, steps + 1, N).
    """
    w = (x.shape[1], width, width, width, 1)
    r = ntk.ensemble(jax.random.split(key, seeds), x, shift, x[:1], widths=w, lr=lr, steps=steps,
                     beta=beta, dtype=dtype, record=True, shift_target=True,
                     batch_size=_batch(w, dtype, seeds))
    return np.asarray(r.train_outputs, float)


def pc_decay_rates(outputs: np.ndarray, shift: ArrayLike, eigenvectors: ArrayLike,
                   eigenvalues: ArrayLike, k: int, lr: float) -> np.ndarray:
    """Section 5: per network and top-k PC, the fitted decay rate of the residual f_t - f*
    along v_i (:func:`ntk.fit_decay_rates`; exactly lambda_i for kernel GD).

    Args:
      outputs: from :func:`train_outputs`, (networks, steps + 1, N).
      shift: the target's shift f* - f_0, (N,).
      eigenvectors: (N, N) columns; eigenvalues: (N,) of Theta_inf / N, descending.
      k: the number of top PCs; lr: the step size.

    Returns:
      Shape (networks, k).
    """
    fit = ntk.fit_decay_rates
    return np.stack([fit(o - (o[0] + shift), eigenvectors, lr, range(k), eigenvalues)[0]
                     for o in outputs])


def pc_split(outputs: np.ndarray, f_pc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fig. 3: f_t - f* = g_t + h_t along and orthogonal to the unit PC ``f_pc`` (target
    f_0 + 0.5 f_pc), norms in p_in.

    Args:
      outputs: (networks, steps + 1, N).
      f_pc: the PC on the data, (N,), unit norm in p_in.

    Returns:
      (|g_t|, ||h_t||), each of shape (networks, steps + 1).
    """
    d = outputs - (outputs[:, :1] + 0.5 * f_pc)                 # f_t - f*
    c = np.mean(d * f_pc, axis=2)                               # coefficient along f_pc
    return np.abs(c), np.sqrt(np.mean((d - c[..., None] * f_pc) ** 2, axis=2))


# ----------------------------------------------------------------------------- settings and data


def validate(cfg: SimpleNamespace) -> None:
    """Reject inconsistent settings before any compute.

    Beyond the knobs' declared ranges: the width slopes need three widths, Fig. 1 and the
    Section 5 ensemble reuse networks of their sweeps, the Gaussian check needs 100 networks.

    Args:
      cfg: the resolved knobs of the notebook.

    Returns:
      None; raises ValueError naming the problem.
    """
    problems = [
        (len(cfg.lazy_widths) < 3 or len(cfg.init_widths) < 3,
         "the width slopes need at least 3 widths"),
        (not set(cfg.fig1_widths) <= set(cfg.lazy_widths), "fig1_widths must be among lazy_widths"),
        (cfg.gauss_width not in cfg.bias_widths, "gauss_width must be among bias_widths"),
        (cfg.gauss_seeds < 100, "the Gaussian check needs >= 100 networks"),
        (cfg.pc_components > cfg.pc_data, "pc_components must be <= pc_data"),
        (cfg.fig3_data < 3, "fig3_data must be >= 3 (Fig. 3 uses the 2nd and 3rd PCs)"),
    ]
    for bad, why in problems:
        if bad:
            raise ValueError(why)


# "gauss" and "fig3data" are not used any more; they stay so that the 11-way split, hence every
# section's key and every random draw, is the one the notebook has always used.
SECTIONS = ("mc", "init", "lazy", "data1", "fig2", "gauss", "pc", "pcdata", "fig3", "fig3data",
            "pd")


def section_keys(seed: int) -> dict[str, jax.Array]:
    """Independent ``jax.random`` keys, one per notebook section.

    Args:
      seed: the master seed.

    Returns:
      {name: key} for the names in :data:`SECTIONS`.
    """
    return dict(zip(SECTIONS, jax.random.split(jax.random.key(seed), len(SECTIONS))))


def digit_images(key: jax.Array, n: int,
                 real: ImageSet | None = None) -> tuple[jax.Array, np.ndarray]:
    """The first ``n`` images of a fixed random permutation (``key``) of the Fig. 3 data (§6):
    MNIST's training images when ``real`` is given (flattened, pixels / 255, n_0 = 784), else
    scikit-learn's 8x8 digits, the labelled proxy (pixels / 16, n_0 = 64).

    Args:
      key: the permutation's key.
      n: the number of images, at most the set's size.
      real: MNIST as read by :func:`paperlib.image_sets.load_if_wanted`, or None.

    Returns:
      (x, labels): x of shape (n, n_0) with entries in [0, 1], labels of shape (n,).
    """
    if real is None:
        from sklearn.datasets import load_digits
        digits = load_digits()
        images, labels, top = digits.data, digits.target, 16.0
    else:
        images, labels, top = real.X_train.reshape(len(real.X_train), -1), real.y_train, 255.0
    if not 1 <= n <= len(images):
        raise ValueError(f"need 1 <= n <= {len(images)} images, got {n}")
    perm = np.asarray(jax.random.permutation(key, len(images)))[:n]
    return jnp.asarray(images[perm] / top), np.asarray(labels[perm])


def data_name(real: ImageSet | None) -> str:
    """How the figures and claims name the Fig. 3 data.

    Args:
      real: MNIST, or None for the proxy.

    Returns:
      "MNIST" or "8x8 digits, MNIST proxy".
    """
    return "MNIST" if real is not None else "8x8 digits, MNIST proxy"


# ------------------------------------------------------------------------- §1, §2 at initialisation


def closed_vs_quadrature(x: ArrayLike, nonlin: str, *, depth: int, beta: float) -> float:
    """Thm 1: closed-form kernels against an independent quadrature of the same recursion.

    Args:
      x: inputs, (N, n_0).
      nonlin: the nonlinearity (polar quadrature for homogeneous sigma, Gauss-Hermite with 64
        nodes per axis otherwise).

    Returns:
      The max abs difference over Sigma(L) and Theta(L)_inf on the (N, N) Gram.
    """
    a = ntk.kernels(x, depth=depth, beta=beta, nonlin=nonlin)
    b = ntk.kernels(x, depth=depth, beta=beta, nonlin=nonlin, method="quadrature", deg=64)
    return max(float(jnp.max(jnp.abs(a.ntk - b.ntk))), float(jnp.max(jnp.abs(a.nngp - b.nngp))))


class MonteCarlo(NamedTuple):
    products: np.ndarray     # (nets, P(P+1)/2): f(x_i) f(x_j) per network, upper triangle
    ntk: np.ndarray          # (nets, P(P+1)/2): empirical Theta(x_i, x_j) per network
    nngp_target: np.ndarray  # (P(P+1)/2,) analytic Sigma(L)
    ntk_target: np.ndarray   # (P(P+1)/2,) analytic Theta(L)_inf


def monte_carlo(key: jax.Array, x: ArrayLike, width: int, nets: int, *, depth: int, beta: float,
                dtype) -> MonteCarlo:
    """Prop. 1 and Thm 1 by Monte Carlo over independent networks at initialisation.

    Args:
      key: split into ``nets`` keys.
      x: the P points, (P, n_0).
      width: hidden width; nets: number of networks.

    Returns:
      :class:`MonteCarlo`: the distinct entries of f(x) f(x)^T (mean: Sigma(L)) and of the exact
      empirical NTK (mean: Theta_inf) per network, (nets, P(P+1)/2), and the analytic targets.
    """
    w = (x.shape[1],) + (width,) * (depth - 1) + (1,)
    f, th = ntk.init_ensemble(jax.random.split(key, nets), x, widths=w, beta=beta, dtype=dtype,
                              batch_size=min(ntk.auto_batch(w, dtype), 64))
    f, th = np.asarray(f, float), np.asarray(th, float)
    iu = np.triu_indices(x.shape[0])
    k = ntk.kernels(x, depth=depth, beta=beta)
    return MonteCarlo((f[:, :, None] * f[:, None, :])[:, iu[0], iu[1]], th[:, iu[0], iu[1]],
                      np.asarray(k.nngp)[iu], np.asarray(k.ntk)[iu])


def plot_fig1(ax, lazy: dict, widths, gamma: np.ndarray, theta_inf_row: ArrayLike,
              steps: int) -> None:
    """Fig. 1: Theta(x_0, x(gamma)) at t = 0 (solid) and after ``steps`` (dashed).

    Args:
      ax: the axes.
      lazy: from :func:`lazy_training`; widths: the widths drawn.
      gamma: angles (G,); theta_inf_row: the analytic Theta_inf(x_0, x(gamma)), (G,).

    Returns:
      None.
    """
    for n, col in zip(widths, ["C0", "C3"]):
        for s in range(len(lazy[n]["th0"])):
            ax.plot(gamma, lazy[n]["th0"][s], color=col, lw=0.9, alpha=0.8,
                    label=f"n = {n}, t = 0" if s == 0 else None)
            ax.plot(gamma, lazy[n]["thT"][s], color=col, lw=0.9, ls="--", alpha=0.8,
                    label=f"n = {n}, t = {steps:g}" if s == 0 else None)
    ax.plot(gamma, np.asarray(theta_inf_row), color="k", lw=1.8,
            label=r"$n = \infty$ (analytic $\Theta^{(4)}_\infty$)")
    ax.set_xlabel(r"$\gamma$")
    ax.set_ylabel(r"$\Theta^{(4)}(x_0, x)$, $x = (\cos\gamma, \sin\gamma)$")
    ax.set_title(f"Fig. 1: NTK at init and after {steps} steps (L = 4, ReLU, beta = 0.1, lr 1)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)  # clear of the peaks


# ----------------------------------------------------------------------------- §4 Prop. 2


class Spectra(NamedTuple):
    relu: dict                # L = 2..6 -> DFT eigenvalues (M,) of the ReLU circle Gram
    relu_rank_l1: int         # numerical rank at L = 1 (no hidden layer)
    erf: np.ndarray           # (M,) erf, L = depth
    sphere: np.ndarray        # eigenvalues, ascending, on random points of S^2
    identity_rank: int        # identity sigma, L = depth
    quadratic_ranks: list     # sigma(z) = z^2, L = 2..5
    beta0_odd: float          # beta = 0, L = 2, ReLU: largest odd mode k >= 3 / max


def pd_spectra(key: jax.Array, M: int, *, depth: int, beta: float,
               sphere_points: int = 48) -> Spectra:
    """Prop. 2: spectra of Theta_inf Grams on the sphere.

    On M equispaced circle points the Gram is circulant, so its eigenvalues are the DFT of one
    row (:func:`ntk.circulant_spectrum`); random points of S^2 use a dense eigen-solver.
    Counter-examples: identity and z^2 (polynomial sigma), and beta = 0 at L = 2.

    Args:
      key: draws the S^2 points; M: circle points; sphere_points: points on S^2.

    Returns:
      :class:`Spectra`.
    """
    ring = ntk.circle(2 * np.pi * np.arange(M) / M)
    row = lambda **kw: ntk.kernels(ring[:1], ring, **kw).ntk  # noqa: E731
    relu_rows = row(depth=6, beta=beta, all_depths=True)[:, 0]
    sq_rows = row(depth=5, beta=beta, nonlin="quadratic", all_depths=True)[:, 0]
    spec = lambda r: ntk.circulant_spectrum(r)  # noqa: E731
    pts = jax.random.normal(key, (sphere_points, 3))
    pts = pts / jnp.linalg.norm(pts, axis=1, keepdims=True)
    ev_b0 = spec(row(depth=6, beta=0.0, all_depths=True)[1, 0])
    return Spectra(
        {L: spec(relu_rows[L - 1]) for L in range(2, 7)},
        ntk.numerical_rank(spec(relu_rows[0])),
        spec(row(depth=depth, beta=beta, nonlin="erf")[0]),
        np.linalg.eigvalsh(np.asarray(ntk.kernels(pts, depth=depth, beta=beta).ntk)),
        ntk.numerical_rank(spec(row(depth=depth, beta=beta, nonlin="identity")[0])),
        [ntk.numerical_rank(spec(sq_rows[L - 1])) for L in (2, 3, 4, 5)],
        float(np.abs(ev_b0[3:16:2]).max() / ev_b0.max()))


def plot_spectra(axs, sp: Spectra) -> None:
    """Prop. 2 figure: circulant spectra / max (ReLU L = 2..6, erf) and the ranks of the
    polynomial sigma.

    Args:
      axs: two axes; sp: from :func:`pd_spectra`.

    Returns:
      None.
    """
    M = len(sp.erf)
    for L, ev in sp.relu.items():
        axs[0].semilogy(np.arange(M // 2 + 1), ev[: M // 2 + 1] / ev.max(), marker=".", lw=0.8,
                        label=f"ReLU, L={L}")
    axs[0].semilogy(np.arange(21), np.abs(sp.erf[:21]) / sp.erf.max(), "k--", lw=0.8,
                    label="erf, L=4")
    axs[0].set_xlabel("frequency k"); axs[0].set_ylabel("eigenvalue / max")
    axs[0].legend(fontsize=7)
    axs[0].set_title(f"Circulant spectra of Theta_inf on {M} circle points")
    for L, r in zip((2, 3, 4, 5), sp.quadratic_ranks):
        axs[1].bar(L, r, color="C1", width=0.6)
    axs[1].bar(1.2, sp.identity_rank, color="C2", width=0.4, label="identity, L=4")
    axs[1].axhline(M, color="C0", ls=":", label=f"ReLU (full rank {M})")
    axs[1].set_xlabel("L (z^2 bars)"); axs[1].set_ylabel("numerical rank")
    axs[1].legend(fontsize=7)
    axs[1].set_title("Polynomial sigma: rank-deficient")


# ----------------------------------------------------------------------------- §5 Gaussian limit


class Band(NamedTuple):
    mean: np.ndarray          # (G,) limiting mean Theta(x, X) A_t y on the grid
    sd: np.ndarray            # (G,) limiting standard deviation
    change_to_inf: tuple      # max |difference| of mean and of sd between t = steps and t = inf
    var_at_data: float        # max |variance| at the training points, t = inf


def limit_band(x_train: ArrayLike, y_train: ArrayLike, x_grid: ArrayLike, *, depth: int,
               beta: float, lr: float, steps: int) -> Band:
    """Section 5: the law of the infinite-width network after training (Fig. 2's band).

    From the analytic Theta_inf and Sigma (:func:`ntk.trained_gaussian`), after ``steps`` GD
    steps of size ``lr``, and at t = inf on the training points.

    Args:
      x_train: (N, n_0); y_train: (N,); x_grid: (G, n_0).

    Returns:
      :class:`Band`: mean and sd on the grid, (G,) each, their change to t = inf, and the
      largest variance at the training points (t = inf).
    """
    kt = ntk.kernels(x_train, depth=depth, beta=beta)
    kxt = ntk.kernels(x_grid, x_train, depth=depth, beta=beta)
    sxx = jnp.diagonal(ntk.kernels(x_grid, depth=depth, beta=beta).nngp)
    gauss = ntk.trained_gaussian(kt.ntk, kxt.ntk, kt.nngp, kxt.nngp, sxx, y_train, lr=lr,
                                 steps=steps)
    g_inf = ntk.trained_gaussian(kt.ntk, kxt.ntk, kt.nngp, kxt.nngp, sxx, y_train)
    mu, sd = np.asarray(gauss.mean), np.sqrt(np.maximum(np.asarray(gauss.cov), 0))
    sd_inf = np.sqrt(np.maximum(np.asarray(g_inf.cov), 0))
    v_train = ntk.trained_gaussian(kt.ntk, kt.ntk, kt.nngp, kt.nngp, jnp.diagonal(kt.nngp), y_train)
    change = (float(np.max(np.abs(gauss.mean - g_inf.mean))), float(np.max(np.abs(sd - sd_inf))))
    return Band(mu, sd, change, float(np.max(np.abs(v_train.cov))))


def bias_table(bias: dict, mean_test: float) -> str:
    """The finite-width bias at the test input per width of :func:`gaussian_limit`.

    Args:
      bias: {width: bias dict}; mean_test: the limiting mean.

    Returns:
      A Markdown table (control variate, linearised net, nonlinear part; mean +- s.e.) and the
      log-log slope of the control-variate bias against width when it is positive everywhere.
    """
    widths = sorted(bias)

    def row(n):
        c, l, nl = bias[n]["cv"], bias[n]["lin"], bias[n]["nonlin"]
        return (f"| {n} | {bias[n]['S']} | {c[0] - mean_test:+.4f} ± {c[1]:.4f} | "
                f"{(c[0] - mean_test) / c[1]:+.2f} | {l[0] - mean_test:+.4f} ± {l[1]:.4f} | "
                f"{nl[0]:+.4f} ± {nl[1]:.4f} |")
    if all(bias[n]["cv_s"].mean() > 0 for n in widths):
        sb, sb_se, _ = stats.loglog_slope_over_runs(widths, [bias[n]["cv_s"] for n in widths])
        slope = f"Log–log slope of the bias against width: {sb:.2f} ± {sb_se:.2f}."
    else:
        slope = "The bias is not positive at every width, so no log–log slope is fitted."
    return ("| n | nets | E[f_T] − μ (control variate) | z | linearised net − μ | "
            "nonlinear part f_T − f_lin |\n|---|---|---|---|---|---|\n"
            + "\n".join(row(n) for n in widths) + "\n\n" + slope)


def plot_bias(ax, bias: dict, mean_test: float) -> None:
    """The finite-width bias at the test input against width, with n^-1 and n^-1/2 lines.

    Args:
      ax: the axes; bias: {width: bias dict}; mean_test: the limiting mean.

    Returns:
      None.
    """
    widths = np.array(sorted(bias))
    for key, lab, col, dx in [("cv", "trained nets (control variate)", "C3", 1.0),
                              ("lin", "linearised nets", "C0", 1.04)]:
        m = np.array([bias[n][key][0] - mean_test for n in widths])
        e = np.array([bias[n][key][1] for n in widths])
        ax.errorbar(widths * dx, m, yerr=e, fmt="o-", color=col, capsize=3, label=f"{lab}, ±1 s.e.")
    b0 = bias[widths[0]]["cv"][0] - mean_test  # scale lines start at the smallest width's bias
    ax.plot(widths, b0 * (widths / widths[0]) ** -1.0, "k:", lw=1,
            label=r"$\propto n^{-1}$ (for scale)")
    ax.plot(widths, b0 * (widths / widths[0]) ** -0.5, "k--", lw=1,
            label=r"$\propto n^{-1/2}$ (for scale)")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log"); ax.set_xlabel("width n")
    ax.set_ylabel(r"$E[f_{1000}(x_{test})] - \mu_\infty$")
    ax.set_title(r"Finite-width bias at $\gamma = \pi$ (Section 5 limit)")
    ax.legend(fontsize=7)


P90 = 1.2816  # standard normal 90% quantile: the band [P10, P90] is mean -+ P90 sd


def band_fraction(f: np.ndarray, band: Band) -> float:
    """Fig. 2: how often trained networks fall inside the limiting band.

    Args:
      f: values, (..., G); band: from :func:`limit_band`.

    Returns:
      The fraction inside [P10, P90] (nominal 0.8).
    """
    return float(np.mean((f >= band.mean - P90 * band.sd) & (f <= band.mean + P90 * band.sd)))


def plot_fig2(axs, gamma: np.ndarray, drawn: dict, band: Band, gamma_train, y_train,
              steps: int) -> None:
    """Fig. 2: trained networks with the limiting P10/P50/P90 curves, one panel per width.

    Args:
      axs: one axes per width; gamma: (G,); drawn: {width: (nets, G)}; band: the limit.
      gamma_train, y_train: the training points.

    Returns:
      None.
    """
    for j, (ax, (n, f)) in enumerate(zip(axs, drawn.items())):
        for s, fs in enumerate(f):
            ax.plot(gamma, fs, color="C0" if j == 0 else "C3", lw=0.8, alpha=0.7,
                    label=f"n = {n} ({len(f)} nets)" if s == 0 else None)
        ax.plot(gamma, band.mean, "k", lw=1.6, label=r"$n=\infty$, $P_{50}$")
        ax.plot(gamma, band.mean - P90 * band.sd, "k--", lw=1.1,
                label=r"$n=\infty$, $\{P_{10}, P_{90}\}$")
        ax.plot(gamma, band.mean + P90 * band.sd, "k--", lw=1.1)
        ax.plot(np.asarray(gamma_train), np.asarray(y_train), "o", color="C2", ms=5,
                label="training points")
        ax.set_xlabel(r"$\gamma$")
        inside = band_fraction(f, band)
        ax.set_title(f"Fig. 2: n = {n}, t = {steps} (fraction in band {inside:.2f})")
        ax.legend(fontsize=7)
    axs[0].set_ylabel(r"$f_\theta(\cos\gamma, \sin\gamma)$")


# ------------------------------------------------------------------------- §6 kernel PCs, Fig. 3


class PCRates(NamedTuple):
    eigenvalues: np.ndarray  # (N,) lambda_i of Theta_inf(X, X) / N, descending
    rates: np.ndarray        # (seeds, k) fitted decay rate per network and PC
    rel_err: np.ndarray      # (seeds, k) rate / lambda_i - 1


def pc_rates(key: jax.Array, x: ArrayLike, width: int, seeds: int, k: int, *, depth: int,
             lr: float, beta: float, dtype) -> PCRates:
    """Section 5: the residual along kernel PC i decays at rate lambda_i.

    Networks trained on f* = f_0 + sum_{i <= k} (0.5 / sqrt(k)) f^(i) for 1 / (lr lambda_k) + 1
    steps; rates fitted by :func:`pc_decay_rates`.

    Args:
      key: the networks' key; x: the data, (N, n_0); width, seeds: the networks; k: top PCs.

    Returns:
      :class:`PCRates`: eigenvalues (N,), rates and relative errors, (seeds, k) each.
    """
    sp = ntk.kernel_pcs(ntk.kernels(x, depth=depth, beta=beta).ntk)
    lam, V = np.asarray(sp.eigenvalues), np.asarray(sp.eigenvectors)
    shift = np.sqrt(x.shape[0]) * V[:, :k] @ np.full(k, 0.5 / np.sqrt(k))
    steps = int(np.ceil(1.0 / (lr * lam[k - 1]))) + 1
    outs = train_outputs(key, x, shift, width, seeds, lr=lr, steps=steps, beta=beta, dtype=dtype)
    rates = pc_decay_rates(outs, shift, V, lam, k, lr)
    return PCRates(lam, rates, rates / lam[:k] - 1)


class Fig3(NamedTuple):
    t: np.ndarray            # (steps + 1,) times lr * step
    eigenvalues: np.ndarray  # (N,) of Theta_inf(X, X) / N, descending
    f2: np.ndarray           # (N,) the 2nd kernel PC on the data, unit norm in p_in
    f3: np.ndarray           # (N,) the 3rd
    g: dict                  # width -> (seeds, steps + 1) |g_t|
    h: dict                  # width -> (seeds, steps + 1) ||h_t||
    theory: np.ndarray       # (steps + 1,) 0.5 exp(-lambda_2 t)


def fig3_run(key: jax.Array, x: ArrayLike, widths, seeds: int, horizon: float, *, depth: int,
             lr: float, beta: float, dtype) -> Fig3:
    """Fig. 3 protocol (Section 5): convergence along the 2nd kernel PC.

    For each width (key ``fold_in(key, n)``), ``seeds`` networks trained on f* = f_0 + 0.5 f^(2)
    up to t = horizon / lambda_2; f_t - f* split into g_t along f^(2) and h_t orthogonal to it
    (:func:`pc_split`). At n = inf, ||g_t|| = 0.5 exp(-lambda_2 t) and h_t = 0.

    Args:
      key: the sweep's key; x: the data, (N, n_0); widths: hidden widths; seeds: per width.

    Returns:
      :class:`Fig3`.
    """
    sp = ntk.kernel_pcs(ntk.kernels(x, depth=depth, beta=beta).ntk)
    lam, V = np.asarray(sp.eigenvalues), np.asarray(sp.eigenvectors)
    f2, f3 = np.sqrt(x.shape[0]) * V[:, 1], np.sqrt(x.shape[0]) * V[:, 2]
    steps = int(np.ceil(horizon / (lr * lam[1])))
    t = lr * np.arange(steps + 1)
    g, h = {}, {}
    for n in widths:
        o = train_outputs(jax.random.fold_in(key, n), x, 0.5 * f2, n, seeds, lr=lr, steps=steps,
                          beta=beta, dtype=dtype)
        g[n], h[n] = pc_split(o, f2)
    return Fig3(t, lam, f2, f3, g, h, 0.5 * np.exp(-lam[1] * t))


def width_steps(per_width: dict) -> tuple[np.ndarray, np.ndarray]:
    """Changes of a per-network measure between consecutive widths (Fig. 3 claims).

    Args:
      per_width: {width: (networks,)}, in width order.

    Returns:
      (differences of the means, their standard errors), each of shape (widths - 1,).
    """
    m, se = np.array([stats.mean_and_se(v) for v in per_width.values()]).T
    return np.diff(m), np.sqrt(se[1:] ** 2 + se[:-1] ** 2)


def plot_fig3(axs, run: Fig3, labels: np.ndarray, rates: PCRates, width: int, data: str) -> None:
    """Fig. 3: (a) 2nd and 3rd kernel PCs, (b) ||h_t||, (c) ||g_t|| against 0.5 exp(-lambda_2 t),
    (d) the fitted decay rates of :func:`pc_rates` (3 s.e.) against lambda_i.

    Args:
      axs: four axes; run: from :func:`fig3_run`; labels: digit labels (N,); rates: from
        :func:`pc_rates`; width: its networks' width; data: the data's name.

    Returns:
      None.
    """
    fig = axs[0].figure
    sc = axs[0].scatter(run.f2, run.f3, c=labels, cmap="tab10", s=9)
    axs[0].set_xlabel(r"$f^{(2)}(x)$"); axs[0].set_ylabel(r"$f^{(3)}(x)$")
    axs[0].set_title(f"(a) 2nd and 3rd kernel PCs\n({data})")
    fig.colorbar(sc, ax=axs[0], label="digit")
    for j, n in enumerate(run.g):
        for s in range(len(run.g[n])):
            lab = f"n = {n}" if s == 0 else None
            axs[1].plot(run.t, run.h[n][s], color=f"C{j}", lw=1, label=lab)
            axs[2].plot(run.t, run.g[n][s], color=f"C{j}", lw=1, label=lab)
    axs[2].plot(run.t, run.theory, "k", lw=1.6, label=r"$n=\infty$: $0.5e^{-\lambda_2 t}$")
    axs[1].set_title(r"(b) $\|h_t\|_{p^{in}}$"); axs[2].set_title(r"(c) $\|g_t\|_{p^{in}}$")
    for ax in axs[1:3]:
        ax.set_xlabel("t"); ax.legend(fontsize=7)
    k = rates.rates.shape[1]
    mean, se = stats.mean_and_se(rates.rates)
    axs[3].errorbar(np.arange(1, k + 1), mean, yerr=3 * se, fmt="o", color="C3",
                    label=f"measured, n = {width} (3 s.e.)")
    axs[3].plot(np.arange(1, k + 1), rates.eigenvalues[:k], "k_", ms=18, mew=2,
                label=r"$\lambda_i$")
    axs[3].set_yscale("log"); axs[3].set_xticks(np.arange(1, k + 1))
    axs[3].set_xlabel("PC index i")
    axs[3].set_title("(d) decay rate along PC i"); axs[3].legend(fontsize=7)


def beta_gap(x: ArrayLike, betas=(0.1, 1.0), *, depth: int) -> dict[float, np.ndarray]:
    """Footnote 3: the gap between the first two kernel PCs for each bias scale.

    Args:
      x: the data, (N, n_0); betas: bias scales.

    Returns:
      {beta: (lambda_1, lambda_2) of Theta_inf(X, X) / N}.
    """
    return {b: np.asarray(ntk.kernel_pcs(ntk.kernels(x, depth=depth, beta=b).ntk).eigenvalues[:2])
            for b in betas}
