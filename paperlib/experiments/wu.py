"""Protocols of the Wu & Su (2023) notebook: learning-rate sweeps of GD/SGD on the diagonal linear
net and the two-layer ReLU net, sharpness at the solutions, per-seed tables, the learning-rate
figure, and the Wu-Ma-E (2018) digits proxy trained to the 2018 stopping rule. Built on
:mod:`paperlib.stability`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np

from paperlib import stability as st


def sweep(predict: Callable, init_fn: Callable, X, Y, lrs, seeds: int, steps: int, batch_size,
          key, warm: bool, warmup_fraction: float):
    """One run per (seed, lr), seed-major, all vmapped in one trainer; with ``warm`` a geometric
    warm-up from 0.5/Tr G(theta_0) over ``warmup_fraction`` of the steps (our recipe). Returns
    (Run, learning rate per run, theta_0 per run)."""
    keys = jax.random.split(key, seeds + 1)
    th0 = jnp.stack([init_fn(keys[s]) for s in range(seeds) for _ in lrs])
    L = jnp.tile(jnp.asarray(lrs, dtype=float), seeds)
    lr0 = None
    if warm:
        lr0 = 0.5 / jnp.stack([st.gauss_newton_sharpness(predict, t, X).trace for t in th0])
    run = st.train(predict, th0, X, Y, L, steps=steps, batch_size=batch_size, key=keys[-1], lr0=lr0,
                   warmup_steps=int(warmup_fraction * steps) if warm else 0,
                   record_every=steps // 20)
    return run, np.asarray(L), th0


def measures(predict: Callable, run: st.Run, X) -> np.ndarray:
    """(runs, 3): exact Gauss-Newton Tr G, ||G||_F, lambda_max(G) at every final iterate of ``run``
    (one jitted computation per model); NaN rows for diverged runs."""
    out = np.full((run.theta.shape[0], 3), np.nan)
    for i, (th, bad) in enumerate(zip(run.theta, np.asarray(run.diverged))):
        if not bad:
            out[i] = [float(v) for v in st.gauss_newton_sharpness(predict, th, X)]
    return out


def per_lr_mean(res: dict, field: str, lrs) -> np.ndarray:
    """Mean of ``res[field]`` over the converged runs at each learning rate (NaN where none)."""
    sel = [(res["L"] == l) & res["ok"] for l in lrs]
    return np.array([np.mean(res[field][s]) if np.any(s) else np.nan for s in sel])


def per_seed(res: dict, values, lrs) -> np.ndarray:
    """(seeds, len(lrs)) array of a per-run quantity, NaN where the run did not converge."""
    return np.where(res["ok"], values, np.nan).reshape(-1, len(lrs))


def spread(v) -> float:
    """Relative spread (max - min) / mean, ignoring NaN."""
    return float((np.nanmax(v) - np.nanmin(v)) / np.nanmean(v))


def lr_figure(res_sgd: dict, res_gd: dict, lrs_sgd, lrs_gd, norm_field: str, norm_label: str,
              test_label: str, title: str):
    """Sharpness, norm and test error against the learning rate for SGD (solid) and GD (dashed),
    seed means of converged runs, red bands at diverged learning rates. Returns the figure."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    styles = [("SGD", res_sgd, lrs_sgd, "o", "-"), ("GD", res_gd, lrs_gd, "s", "--")]
    for tag, res, lrs, mk, ls in styles:
        for j, lab in enumerate(["Tr G", "‖G‖_F", "λ_max(G)"]):
            axes[0].plot(lrs, per_lr_mean({**res, "v": res["sharp"][:, j]}, "v", lrs), mk + ls,
                         color=f"C{j}", label=f"{tag} {lab}")
        axes[1].plot(lrs, per_lr_mean(res, norm_field, lrs), mk + ls, label=tag)
        axes[2].plot(lrs, per_lr_mean(res, "test", lrs), mk + ls, label=tag)
        for b in np.unique(res["L"][np.asarray(res["run"].diverged)]):
            for ax in axes:
                ax.axvline(b, color="r", alpha=0.3, lw=3)
    grid = np.geomspace(min(lrs_sgd + lrs_gd), max(lrs_sgd + lrs_gd), 50)
    axes[0].plot(grid, 2 / grid, "k:", label="2/η")
    axes[0].set(ylabel="sharpness", title="sharpness at the solution")
    axes[1].set(ylabel=norm_label, title=norm_label)
    axes[2].set(ylabel=test_label, title="test error")
    for ax in axes:
        ax.set(xscale="log", yscale="log", xlabel="learning rate η")
        ax.xaxis.set_major_locator(mticker.LogLocator(subs=(1.0, 2.0, 5.0)))  # 1, 2, 5 x 10^k
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(mticker.NullFormatter())
    axes[0].legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    for ax in axes[1:]:
        ax.legend(fontsize=6)
    fig.suptitle(title + "  (solid: SGD B=1, dashed: GD; red bands: diverged runs; "
                 "seed means of converged runs)")
    return fig


class DigitsRun(NamedTuple):
    """GD or SGD on the digits proxy at every learning rate, stopped at the 2018 rule."""

    sharp: np.ndarray  # lambda_max of the loss Hessian per learning rate (NaN if diverged)
    nu: np.ndarray  # non-uniformity sqrt(lambda_max(Sigma)) per learning rate
    loss: np.ndarray  # final training loss per learning rate
    steps: int  # steps taken


def train_to_minimum(predict: Callable, theta0, X, Y, lrs, batch_size, max_steps: int,
                     min_loss: float, key) -> tuple[st.Run, int]:
    """GD/SGD from theta0 at every lr in chunks of max_steps/10 steps, until every run's training
    loss is below ``min_loss`` (the 2018 stopping rule), every run diverged, or max_steps."""
    L = jnp.asarray(lrs)
    chunk, theta, done = max_steps // 10, jnp.tile(theta0, (len(L), 1)), 0
    while True:
        key, k = jax.random.split(key)
        run = st.train(predict, theta, X, Y, L, steps=chunk, batch_size=batch_size, key=k,
                       replacement=False, record_every=chunk // 10)
        theta, done = run.theta, done + chunk
        final = np.asarray(run.final_loss)
        if done >= max_steps or np.all(final < min_loss) or np.all(np.asarray(run.diverged)):
            return run, done


def digits_run(predict: Callable, theta0, X, Y, lrs, batch_size, max_steps: int, min_loss: float,
               key, key_eig) -> DigitsRun:
    """:func:`train_to_minimum`, then the Hessian's lambda_max and the non-uniformity (Lanczos, 20
    steps for the latter) at every non-diverged solution."""
    run, done = train_to_minimum(predict, theta0, X, Y, lrs, batch_size, max_steps, min_loss, key)
    ok = ~np.asarray(run.diverged)
    sh = [float(st.hessian_lambda_max(predict, t, X, Y, key_eig)) if b else np.nan
          for t, b in zip(run.theta, ok)]
    nu = [float(st.nonuniformity(predict, t, X, Y, key_eig, 20)) if b else np.nan
          for t, b in zip(run.theta, ok)]
    return DigitsRun(np.array(sh), np.array(nu), np.asarray(run.final_loss), done)
