"""Protocols of Dang et al. 2023 (arXiv 2301.00437), built on :mod:`paperlib.neural_collapse`.

* :func:`validate`: knob checks the ranges cannot express;
* :func:`ufm_runs`: every (loss, depth, balanced/imbalanced, seed) run of the deep linear
  unconstrained-features model in one ``vmap`` of one compiled trainer (all runs share N, d, K and the
  stored depth); :func:`layer_metrics` / :func:`collapse_table`: NC1-NC3 in every linear layer against
  the predicted frame; :func:`gof_errors`: the imbalanced frame against :func:`~paperlib.neural_collapse.
  gof_closed_form`;
* :func:`structured_ce_objectives`: the best objective of two symmetric CE configurations (simplex ETF,
  rank K/2 cross-polytope), each a 2-parameter minimisation, an independent computation;
* :func:`digits_proxy`: an MLP (ReLU layers, then linear layers) on sklearn's digits with subsampled
  minority classes, NC metrics over training (proxy of the paper's CIFAR-10 MLP runs);
* figures: :func:`collapse_figure`, :func:`gof_figure`, :func:`digits_figure`.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib.axes import Axes
from scipy.optimize import minimize

from paperlib import datasets
from paperlib import neural_collapse as nc

METRICS = ("NC1", "NC2 classifier", "NC2 means", "NC3")


def validate(cfg: SimpleNamespace) -> None:
    """Reject knob values the parameter ranges cannot express, before any compute.

    Args:
      cfg: the resolved settings (``profiles.resolve_from``): ``counts``, ``width``, ``depths``,
        ``minority_fraction``, ``mlp_steps``, ``record_every``.

    Returns:
      None.

    Raises:
      ValueError: naming the knob and the rule it breaks.
    """
    k, n = len(cfg.counts), sum(cfg.counts)
    if k < 2 or n % k:
        raise ValueError(f"counts: need K >= 2 classes whose total N={n} is a multiple of K={k} "
                         "(the balanced runs use N/K per class)")
    if cfg.width < k:
        raise ValueError(f"width d={cfg.width} must be at least K={k}")
    if sorted(set(cfg.depths)) != list(cfg.depths):
        raise ValueError(f"depths must increase strictly, got {cfg.depths}")
    if not 0 < cfg.minority_fraction <= 1:
        raise ValueError(f"minority_fraction must be in (0, 1], got {cfg.minority_fraction}")
    if cfg.mlp_steps % cfg.record_every:
        raise ValueError(f"mlp_steps={cfg.mlp_steps} must be a multiple of record_every")


class Run(NamedTuple):
    """One run of the synthetic UFM study (a row of :class:`UFMRuns`)."""

    loss: str  # "mse", "mse_bias" or "ce"
    depth: int  # M
    balanced: bool
    seed: int


class UFMRuns(NamedTuple):
    """Every run of the synthetic study, trained in one ``vmap`` (:func:`ufm_runs`)."""

    runs: list  # [Run]
    params: nc.Params  # stacked over runs (numpy)
    objective: np.ndarray  # (runs, steps) objective along training
    labels: np.ndarray  # (2, N): balanced and imbalanced labels
    counts: np.ndarray  # (2, K) class counts


def ufm_runs(cfg: SimpleNamespace, key: jax.Array) -> UFMRuns:
    """Train every run of the synthetic study: 3 losses x depths (balanced) and MSE x depths
    (imbalanced, ``cfg.counts``), ``cfg.seeds`` starts each, one compiled ``vmap`` of
    :func:`~paperlib.neural_collapse.train` (float64, lam_W = lam_H = ``cfg.lam``): the paper's
    deep linear UFM objective, gradient descent with heavy-ball momentum.

    Args:
      cfg: settings (``counts``, ``depths``, ``seeds``, ``width``, ``lam``, ``lr``, ``init_std``,
        ``steps``).
      key: JAX key, split into one key per run.

    Returns:
      :class:`UFMRuns`; params stacked over the R runs, objective (R, steps), labels (2, N) and
      counts (2, K) with row 0 balanced (N/K per class) and row 1 ``cfg.counts``.
    """
    k, n = len(cfg.counts), sum(cfg.counts)
    counts = np.array([[n // k] * k, cfg.counts])
    labels = np.stack([np.repeat(np.arange(k), c) for c in counts])
    runs = [Run(loss, depth, True, s) for loss in nc.LOSSES for depth in cfg.depths
            for s in range(cfg.seeds)]
    runs += [Run("mse", depth, False, s) for depth in cfg.depths for s in range(cfg.seeds)]
    top = max(cfg.depths)
    settings = [nc.make_setting(r.loss, r.depth, top, cfg.lam, cfg.lam, cfg.lr) for r in runs]
    keys = jax.random.split(key, len(runs))
    starts = [nc.init_params(kk, s, n, cfg.width, k, cfg.init_std) for kk, s in zip(keys, settings)]
    Y = np.eye(k)[labels[[0 if r.balanced else 1 for r in runs]]]
    stack = partial(jax.tree.map, lambda *a: jnp.stack(a))
    train = jax.vmap(nc.train, in_axes=(0, 0, 0, None))
    params, trace = train(stack(*starts), Y, stack(*settings), cfg.steps)
    return UFMRuns(runs, jax.tree.map(np.asarray, params), np.asarray(trace), labels, counts)


def _targets(loss: str, k: int) -> np.ndarray:
    """Predicted Gram of the frame: orthogonal (bias-free MSE) or simplex ETF (MSE + bias, CE)."""
    etf = nc.simplex_etf(k)
    return np.eye(k) if loss == "mse" else etf.T @ etf


def layer_metrics(params: nc.Params, labels: np.ndarray, depth: int, loss: str) -> np.ndarray:
    """NC1, NC2 (classifier), NC2 (class means) and NC3 in each of the ``depth`` real layers.

    Means are centred by the global mean for the ETF cases (MSE with bias, CE), not for bias-free
    MSE, whose frame is orthogonal (the authors' NC2/NC3 with the identity target).

    Args:
      params: one run's parameters (unstacked); labels: (N,) class labels.
      depth: M, the number of real (non-padded) layers; loss: "mse", "mse_bias" or "ce".

    Returns:
      (depth, 4) array, layer 1 = the free features H, layer M = the input of W_M.
    """
    k = int(labels.max()) + 1
    target = _targets(loss, k)
    feats, cls = nc.layers(params)
    rows = []
    for j in range(feats.shape[0] - depth, feats.shape[0]):
        means, glob = nc.class_means(feats[j], labels, k)
        means = means if loss == "mse" else means - glob
        rows.append([nc.nc1(feats[j], labels, k), nc.gram_distance(cls[j], target),
                     nc.gram_distance(means, target), nc.nc3(cls[j], means, target)])
    return np.array(rows, dtype=float)


def _pick(res: UFMRuns, i: int) -> nc.Params:
    return jax.tree.map(lambda a: a[i], res.params)


def collapse_table(res: UFMRuns) -> dict:
    """NC1-NC3 in every layer (:func:`layer_metrics`) of each balanced run, grouped by setting.

    Args:
      res: :func:`ufm_runs`' result.

    Returns:
      ``{(loss, depth): (seeds, depth, 4) array}`` of the balanced runs, columns as ``METRICS``.
    """
    table: dict = {}
    for i, r in enumerate(res.runs):
        if r.balanced:
            table.setdefault((r.loss, r.depth), []).append(
                layer_metrics(_pick(res, i), res.labels[0], r.depth, r.loss))
    return {key: np.stack(v) for key, v in table.items()}


class GOFErrors(NamedTuple):
    """The imbalanced runs against the closed-form orthogonal frame (:func:`gof_errors`)."""

    depth: np.ndarray  # (runs,) M of each imbalanced run
    frame: np.ndarray  # (runs, 3) NC2 of W (product), NC2 of the means of H, NC3, vs the diagonals
    ratio_err: np.ndarray  # (runs,) max relative error of ||w_k||/||w_1|| and ||h_k||/||h_1||
    w_ratio: np.ndarray  # (runs, K) measured ||w_k|| / ||w_1||
    h_ratio: np.ndarray  # (runs, K) measured ||h_k|| / ||h_1||


def gof_errors(res: UFMRuns, lam: float) -> GOFErrors:
    """The imbalanced bias-free MSE runs against the closed-form orthogonal frame of the same depth
    (:func:`~paperlib.neural_collapse.gof_closed_form`, the paper's imbalanced MSE theorem), in
    the first real layer: NC2 of W and of the class means, NC3, and the length ratios.

    Args:
      res: :func:`ufm_runs`' result; lam: lam_W = lam_H of the runs.

    Returns:
      :class:`GOFErrors`, one row per imbalanced run.
    """
    rows = []
    for i, r in enumerate(res.runs):
        if r.balanced:
            continue
        gof = nc.gof_closed_form(res.counts[1], r.depth, lam, lam)
        feats, cls = nc.layers(_pick(res, i))
        j = feats.shape[0] - r.depth
        means, _ = nc.class_means(feats[j], res.labels[1], len(gof.x))
        w, h = np.linalg.norm(cls[j], axis=1), np.linalg.norm(means, axis=1)
        frame = [nc.gram_distance(cls[j], np.diag(gof.w_sq)),
                 nc.gram_distance(means, np.diag(gof.h_sq)), nc.nc3(cls[j], means, np.diag(gof.wh))]
        want_w, want_h = np.sqrt(gof.w_sq / gof.w_sq[0]), np.sqrt(gof.h_sq / gof.h_sq[0])
        err = max(np.max(np.abs(w / w[0] / want_w - 1)), np.max(np.abs(h / h[0] / want_h - 1)))
        rows.append((r.depth, np.array(frame, float), err, w / w[0], h / h[0]))
    return GOFErrors(*(np.array([row[i] for row in rows]) for i in range(5)))


def structured_ce_objectives(k: int, n: int, depth: int, lam_w: float, lam_h: float
                             ) -> tuple[float, float]:
    """Best CE objective over two symmetric families of the deep linear UFM (balanced, no bias).

    Every layer has equal singular values t on an r-dimensional subspace, the class means have norm a:
    the simplex ETF (r = K-1; margins t^M a sqrt(K/(K-1))) and the cross-polytope (r = K/2, classes in
    antipodal pairs; margin t^M a / sqrt2 to the other pairs, twice that to the partner). Each is a
    minimisation over (log t, log a) by Nelder-Mead from three starts.

    Args:
      k: classes K (even, >= 4); n: samples N (n/K per class); depth: M.
      lam_w, lam_h: weight decays of the layers and of the features.

    Returns:
      (best ETF objective, best cross-polytope objective).
    """
    if k % 2 or k < 4:
        raise ValueError(f"the cross-polytope family needs an even K >= 4, got {k}")

    def etf(p):
        t, a = np.exp(p)
        ce = np.log1p((k - 1) * np.exp(-t ** depth * a * np.sqrt(k / (k - 1))))
        return ce + lam_w * depth * (k - 1) * t ** 2 / 2 + lam_h * n * a ** 2 / 2

    def cross(p):
        t, a = np.exp(p)
        m = t ** depth * a / np.sqrt(2)
        ce = np.log(1 + (k - 2) * np.exp(-m) + np.exp(-2 * m))
        return ce + lam_w * depth * (k // 2) * t ** 2 / 2 + lam_h * n * a ** 2 / 2

    opts = dict(xatol=1e-12, fatol=1e-15, maxiter=20000)
    starts = [np.zeros(2), np.array([1.0, -1.0]), np.array([-1.0, 1.0])]
    return tuple(min(minimize(f, x0, method="Nelder-Mead", options=opts).fun for x0 in starts)
                 for f in (etf, cross))


def digits_imbalanced(minority_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's digits (standardised), classes 5-9 subsampled to ``minority_fraction`` (seeded).

    Args:
      minority_fraction: share of the images of classes 5-9 kept; seed: split and subsampling seed.

    Returns:
      ``X`` (n, 64) float64 and ``y`` (n,) int32.
    """
    X, y, _, _ = datasets.digits_split(1, seed)
    rng = np.random.default_rng(seed)
    keep = (y < 5) | (rng.random(len(y)) < minority_fraction)
    return X[keep], y[keep]


def _mlp_init(key, dims):
    keys = jax.random.split(key, len(dims) - 1)
    return [jax.random.normal(kk, (o, i), jnp.float32) * np.float32(np.sqrt(2.0 / i))
            for kk, i, o in zip(keys, dims, dims[1:])]


def _mlp_linear_inputs(ws, X, relu_depth):
    """The inputs of the linear (activation-free) layers: the ReLU stack's output, then each linear
    layer's output but the last."""
    h = X
    for w in ws[:relu_depth]:
        h = jax.nn.relu(h @ w.T)
    outs = []
    for w in ws[relu_depth:]:
        outs.append(h)
        h = h @ w.T
    return outs, h


def digits_proxy(cfg: SimpleNamespace, key: jax.Array, X: np.ndarray, y: np.ndarray
                 ) -> SimpleNamespace:
    """MLP: ``mlp_relu_depth`` ReLU layers (no bias), ``mlp_linear_depth`` linear layers (the last
    maps to the K = 10 classes), float32, bias-free MSE ||Z - Y||^2/(2n) + mlp_lam/2 sum ||W||^2, full-batch
    Adam, ``mlp_seeds`` initialisations in one ``vmap``: the proxy of the paper's practical-network
    experiments (NC1 in every linear layer).

    Args:
      cfg: settings (``mlp_width``, ``mlp_relu_depth``, ``mlp_linear_depth``, ``mlp_lr``,
        ``mlp_lam``, ``mlp_steps``, ``record_every``, ``mlp_seeds``).
      key: JAX key, split into one key per initialisation; X: (n, 64) inputs; y: (n,) labels.

    Returns:
      namespace with ``nc1`` (seeds, records, linear layers), ``cos`` (seeds, records) the largest
      |cos| between rows of the classifier W_L ... W_1 of the linear block, ``acc`` (seeds, records)
      training accuracy, ``w_norm`` (seeds, K) final row norms of that classifier, ``counts`` (K,).
    """
    k, w, relu, lin = 10, cfg.mlp_width, cfg.mlp_relu_depth, cfg.mlp_linear_depth
    dims = [X.shape[1]] + [w] * (relu + lin - 1) + [k]
    X, Y = X.astype(np.float32), np.eye(k, dtype=np.float32)[y]  # float32: a proxy, not a theorem
    opt = optax.adam(cfg.mlp_lr)

    def loss(ws):
        _, z = _mlp_linear_inputs(ws, X, relu)
        return jnp.sum((z - Y) ** 2) / (2 * len(y)) + cfg.mlp_lam / 2 * sum(jnp.sum(v ** 2) for v in ws)

    def measure(ws):
        feats, z = _mlp_linear_inputs(ws, X, relu)
        prod = ws[-1]
        for v in ws[relu:-1][::-1]:
            prod = prod @ v
        unit = prod / jnp.linalg.norm(prod, axis=1, keepdims=True)
        cos = jnp.max(jnp.abs(unit @ unit.T - jnp.eye(k)))
        scatter = jnp.stack([jnp.stack(nc.scatter_matrices(f, y, k)) for f in feats])
        return scatter, cos, jnp.mean(z.argmax(1) == y), jnp.linalg.norm(prod, axis=1)

    def one(kk):
        ws = _mlp_init(kk, dims)

        def chunk(carry, _):
            def step(c, _):
                ws, st = c
                g = jax.grad(loss)(ws)
                upd, st = opt.update(g, st, ws)
                return (optax.apply_updates(ws, upd), st), None
            carry, _ = jax.lax.scan(step, carry, None, length=cfg.record_every)
            return carry, measure(carry[0])

        _, rec = jax.lax.scan(chunk, (ws, opt.init(ws)), None,
                              length=cfg.mlp_steps // cfg.record_every)
        return measure(ws)[0], rec

    start, rec = jax.jit(jax.vmap(one))(jax.random.split(key, cfg.mlp_seeds))
    scatter = np.concatenate([np.asarray(start)[:, None], np.asarray(rec[0])], axis=1)
    nc1 = nc.nc1_from_scatter(scatter[..., 0, :, :], scatter[..., 1, :, :], k)  # LAPACK outside jit
    return SimpleNamespace(nc1=nc1, cos=np.asarray(rec[1]), acc=np.asarray(rec[2]),
                           w_norm=np.asarray(rec[3][:, -1]), counts=np.bincount(y, minlength=k))


def collapse_figure(table: dict, depths: list, axes: Sequence[Axes]) -> None:
    """One panel per loss: the largest NC metric over layers at convergence against depth
    (geometric mean over seeds, min-max bars; values below 1e-18, e.g. NC1 ~ 1e-31, drawn at 1e-18).

    Args:
      table: :func:`collapse_table`'s result; depths: the depths M; axes: one axis per loss.

    Returns:
      None (draws on ``axes``).
    """
    for ax, loss in zip(axes, nc.LOSSES):
        for m, name in enumerate(METRICS):
            vals = np.array([table[(loss, d)][:, :, m].max(1) for d in depths])  # (depths, seeds)
            vals = np.maximum(vals, 1e-18)
            mid = np.exp(np.log(vals).mean(1))
            bars = np.clip([mid - vals.min(1), vals.max(1) - mid], 0, None)
            ax.errorbar(np.array(depths) + 0.05 * m, mid, yerr=bars,
                        fmt="o-", capsize=3, label=name)
        ax.axhline(1e-3, color="k", ls="--", lw=0.8)
        ax.set(yscale="log", xlabel="depth M (linear layers)", title=loss, xticks=depths)
    axes[0].set_ylabel("max over layers at convergence")
    axes[0].legend(fontsize=7)


def gof_figure(gof: GOFErrors, counts: np.ndarray, lam: float, ax: Axes) -> None:
    """Measured ||w_k||/||w_1|| and ||h_k||/||h_1|| (every run) against the closed form, per depth.

    Args:
      gof: :func:`gof_errors`' result; counts: (K,) class counts; lam: lam_W = lam_H; ax: the axis.

    Returns:
      None (draws on ``ax``).
    """
    for d in np.unique(gof.depth):
        form = nc.gof_closed_form(counts, int(d), lam, lam)
        sel = gof.depth == d
        x = np.arange(len(counts))
        ax.plot(x, np.sqrt(form.w_sq / form.w_sq[0]), "-", color=f"C{int(d) % 10}",
                label=f"M={d} closed form")
        ax.plot(x, np.sqrt(form.h_sq / form.h_sq[0]), "--", color=f"C{int(d) % 10}")
        ax.plot(np.tile(x, sel.sum()), gof.w_ratio[sel].ravel(), "o", color=f"C{int(d) % 10}", ms=5)
        ax.plot(np.tile(x, sel.sum()), gof.h_ratio[sel].ravel(), "s", color=f"C{int(d) % 10}", ms=5,
                mfc="none")
    ax.set(xticks=np.arange(len(counts)), xticklabels=[f"n={c}" for c in counts],
           ylabel="length / length of class 1", title="o ‖w_k‖ (solid), □ ‖h_k‖ (dashed)")
    ax.legend(fontsize=7)


def digits_figure(res: SimpleNamespace, record_every: int, axes: Sequence[Axes]) -> None:
    """NC1 per linear layer and the classifier's largest |cos| over training (mean over seeds).

    Args:
      res: :func:`digits_proxy`' result; record_every: Adam steps between records; axes: two axes.

    Returns:
      None (draws on ``axes``).
    """
    t = np.arange(res.nc1.shape[1]) * record_every
    for j in range(res.nc1.shape[2]):
        axes[0].plot(t, np.exp(np.log(res.nc1[:, :, j]).mean(0)), label=f"linear layer {j + 1}")
    axes[0].set(yscale="log", xlabel="Adam step", ylabel="NC1 (geometric mean over seeds)")
    axes[0].legend(fontsize=7)
    axes[1].plot(t[1:], res.cos.mean(0), label="max |cos(w_k, w_j)|")
    axes[1].plot(t[1:], 1 - res.acc.mean(0), label="training error")
    axes[1].set(yscale="log", xlabel="Adam step", title="classifier W_L…W_1 (orthogonal frame: 0)")
    axes[1].legend(fontsize=7)
