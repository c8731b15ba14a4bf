"""Protocols of the Jacot, Gabriel, Hongler (2018) notebook: ensembles of finite networks at
initialisation and trained by gradient descent, against the analytic kernels of
:mod:`paperlib.ntk`. Each function runs one section's sweep over widths (one ``jax.random.fold_in``
key per width or per width index, as the notebook always did) and returns per-network numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from paperlib import ntk, stats


def _batch(widths, dtype, seeds):
    return min(ntk.auto_batch(widths, dtype), seeds)


def init_deviation(key, x, theta_inf, widths, seeds: int, *, beta, dtype):
    """Thm 1 at initialisation: per width, the squared relative Frobenius distance
    ||Theta_hat - Theta_inf||^2 / ||Theta_inf||^2 of each network's empirical NTK on ``x``
    (depth 4, width n in every hidden layer; key ``fold_in(key, i)`` for the i-th width)."""
    theta_inf = np.asarray(theta_inf)
    out = []
    for i, n in enumerate(widths):
        w = (x.shape[1], n, n, n, 1)
        _, th = ntk.init_ensemble(jax.random.split(jax.random.fold_in(key, i), seeds), x, widths=w,
                                  beta=beta, dtype=dtype, batch_size=_batch(w, dtype, seeds))
        d = np.linalg.norm((np.asarray(th, float) - theta_inf).reshape(seeds, -1), axis=1)
        out.append((d / np.linalg.norm(theta_inf)) ** 2)
    return out


def lazy_training(key, widths, seeds: int, x_train, y_train, grid, x0, k_tt, k_gt, *, lr,
                  steps: int, beta, dtype) -> dict:
    """Thm 2 / Fig. 1: per width, ``seeds`` networks trained ``steps`` GD steps; Theta(x0, grid)
    at t = 0 and t = steps, the relative NTK change, its inflation (relative growth of the mean
    level), the rms distance on ``grid`` to kernel GD with Theta_inf (kernels ``k_tt`` = Theta_inf
    on the data, ``k_gt`` grid x data) from the same f_0, and the final training loss."""
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


def gaussian_limit(key, seeds_per_width: dict, x_train, y_train, x_grid, i_test: int,
                   mean_test: float, *, lr, steps: int, beta, dtype):
    """Section 5: for each width n, ``seeds_per_width[n]`` networks (key ``fold_in(key, n)``)
    trained ``steps`` GD steps on (x_train, y_train). Returns (f_T on ``x_grid`` per width, bias
    per width): the output at ``x_grid[i_test]`` split with :func:`ntk.linearised_split` into
    kernel, prior (zero mean) and nonlinear parts; mean and s.e. of the plain sample, of the
    control-variate estimate f_T - prior, of the linearised net (kernel part) and of the nonlinear
    part f_T - f_lin, the sample variance, and the control-variate sample minus ``mean_test``."""
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


def train_outputs(key, x, shift, width: int, seeds: int, *, lr, steps: int, beta,
                  dtype) -> np.ndarray:
    """Section 5 / Fig. 3 protocol: ``seeds`` networks of depth 4 trained on the target
    f_0(x) + shift (the paper's shifted target); f_t(x) for t = 0..steps, (seeds, steps + 1, N)."""
    w = (x.shape[1], width, width, width, 1)
    r = ntk.ensemble(jax.random.split(key, seeds), x, shift, x[:1], widths=w, lr=lr, steps=steps,
                     beta=beta, dtype=dtype, record=True, shift_target=True,
                     batch_size=_batch(w, dtype, seeds))
    return np.asarray(r.train_outputs, float)


def pc_decay_rates(outputs, shift, eigenvectors, eigenvalues, k: int, lr) -> np.ndarray:
    """Per network and top-k PC, the fitted decay rate of the residual f_t - f* along v_i
    (:func:`ntk.fit_decay_rates`), shape (networks, k)."""
    fit = ntk.fit_decay_rates
    return np.stack([fit(o - (o[0] + shift), eigenvectors, lr, range(k), eigenvalues)[0]
                     for o in outputs])


def pc_split(outputs, f_pc):
    """Fig. 3: f_t - f* = g_t + h_t along and orthogonal to the unit PC ``f_pc`` (target f_0 +
    0.5 f_pc): |g_t| and ||h_t|| (norms in p_in), each of shape (networks, steps + 1)."""
    d = outputs - (outputs[:, :1] + 0.5 * f_pc)                 # f_t - f*
    c = np.mean(d * f_pc, axis=2)                               # coefficient along f_pc
    return np.abs(c), np.sqrt(np.mean((d - c[..., None] * f_pc) ** 2, axis=2))
