"""Protocols of the Tyurin (2024) notebook (arXiv 2412.08424), built on :mod:`paperlib.perceptron`:
the data sets and their margin certificates, the Table 1 counts, the Thm 5.1 sweep over n, the
two-point study of Thm 4.1, the iteration-bound ratios of Thms 3.3/5.2/5.3/6.1, the step-size sweeps
of Figs. 1/4/5 with the numbers their claims read, the Fig. 6/7 perceptron race, and their plots.
With the notebook's ``real_data`` knob, FashionMNIST and CIFAR-10 two-class subsets (flattened,
pixels/255) join the proxies and Table 1's FashionMNIST rows are counted on them (:func:`image_pair`,
:func:`real_datasets`, :func:`table1_real_rows`).

The all-pairs digits survey runs every data set in one compiled program: the signed samples are
zero-padded to a common n and a mask drops the padding from the mean, the accuracy and the margins, so
one compilation serves data sets of different sizes (instead of one per n).
"""

from __future__ import annotations

import warnings
from functools import partial
from collections.abc import Sequence
from types import SimpleNamespace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jax import lax
from numpy.typing import ArrayLike
from scipy.stats import spearmanr
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Perceptron

from paperlib import datasets
from paperlib import perceptron as pc

PLANTED_MARGIN = 0.02  # our choice: margin of the synthetic proxy (x ~ N(0, I/d), |w*.x| >= 0.02)
PLANTED_OFFSET = 3.0  # our choice: shared mean vector (orthogonal to w*) of norm 3, image-like
IMBALANCED_KEEP = 0.1  # our choice: fraction of the second class kept in the imbalanced sets
REAL_SETS = {"fashion_mnist": "FashionMNIST", "cifar10": "CIFAR-10"}  # read in full when present
TABLE1_WORST_CASE = (("Normalized LR+GD", 100.0, 2), ("Normalized LR+GD", 10.0, 2),
                     ("Normalized LR+GD", 1.0, 16), ("Normalized LR+GD", 0.1, 157),
                     ("LR+GD", 100.0, 308))  # paper, Table 1 (worst-case data set, n = 1000)
TABLE1_FASHION = {  # paper, Table 1: (method, step, iterations) on FashionMNIST (5,000 samples)
    "imbalanced": (("Normalized LR+GD", 100.0, 311), ("Normalized LR+GD", 10.0, 349),
                   ("Normalized LR+GD", 1.0, 353), ("Normalized LR+GD", 0.1, 504),
                   ("LR+GD", 100.0, 538)),
    "balanced": (("LR+GD", 10.0, 2778), ("LR+GD", 100.0, 2928), ("Normalized LR+GD", 100.0, 3160),
                 ("Normalized LR+GD", 1.0, 3351), ("Normalized LR+GD", 10.0, 3359)),
}
WORST_CASE_RUNS = {"Batch Perceptron": ("batch_perceptron", 1.0),
                   "Normalized Batch Perceptron": ("normalized_batch_perceptron", 1.0),
                   "Normalized LR+GD, γ=10": ("normalized_lr_gd", 10.0),
                   "Normalized LR+GD, γ=100": ("normalized_lr_gd", 100.0),
                   "LR+GD, γ=100": ("lr_gd", 100.0)}  # the Thm 5.1 sweep over n
NORMALIZED_RUNS = ("Normalized Batch Perceptron", "Normalized LR+GD, γ=10",
                   "Normalized LR+GD, γ=100")  # the runs Thm 5.1's normalized claim reads
BOUND_GAMMAS = (0.1, 1.0, 10.0, 100.0)  # Thm 6.1 step sizes (those of Table 1)
BOUND_THEOREMS = {"thm3.3": "Batch Perceptron iterations / (n R²/μ²)",
                  "thm5.2": "Perceptron updates / (R²/μ²)",
                  "thm5.3": "Normalized Batch Perceptron iterations / (R²/μ²)",
                  "thm6.1": "Normalized LR+GD iterations / (R²/μ² + 2ln(2n−1)/(γμ²)), "
                            f"γ in {list(BOUND_GAMMAS)}"}
Data = dict[str, tuple[np.ndarray, np.ndarray]]


# ---------------------------------------------------------------------------------------------
# Settings and data sets
# ---------------------------------------------------------------------------------------------


def validate(cfg: SimpleNamespace) -> None:
    """Reject settings the notebook cannot run, before any compute.

    Args:
      cfg: the resolved settings (``gammas``, ``num_steps``, ``digit_pairs``, ``planted_shapes``,
        ``worst_case_sizes``, ``real_classes``, ``real_size``).

    Raises:
      ValueError: a step size not finite and > 0, ``num_steps`` < 1, a worst-case n < 10 (Thm 5.1
        needs n >= 10), a digit pair or image class pair that is not two different classes in
        0..9, a planted shape with n < 1 or d < 2, or ``real_size`` < 2.
    """
    pc.check_step_sizes(cfg.gammas)
    if cfg.num_steps < 1 or any(n < 10 for n in cfg.worst_case_sizes):
        raise ValueError("num_steps must be >= 1 and every worst-case n >= 10 (Thm 5.1)")
    for pair in list(cfg.digit_pairs) + [cfg.real_classes]:
        if len(pair) != 2 or pair[0] == pair[1] or not set(pair) <= set(range(10)):
            raise ValueError(f"a class pair must be two different classes in 0..9, got {pair}")
    if any(len(s) != 2 or s[0] < 1 or s[1] < 2 for s in cfg.planted_shapes):
        raise ValueError(f"planted shapes must be [n >= 1, d >= 2], got {cfg.planted_shapes}")
    if cfg.real_size < 2:
        raise ValueError(f"real_size must be >= 2, got {cfg.real_size}")


def image_pair(X: ArrayLike, labels: ArrayLike, classes: Sequence[int], size: int, seed: int,
               keep_fraction: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A two-class subset of an image set, flattened, pixels scaled to [0, 1] (Sec. 7's data).

    Class ``classes[0]`` gets label +1 and ``classes[1]`` label -1; ``size // 2`` images of each are
    drawn without replacement (seeded), then only a ``keep_fraction`` of the second class is kept
    (the imbalanced sets; the paper's construction is in its unread appendix, this one is ours).

    Args:
      X: (N, H, W) or (N, H, W, C) uint8 images (``ImageSet.X_train``).
      labels: (N,) integer class labels.
      classes: the two class ids (a, b).
      size: the balanced subset's sample count (the paper: 5,000).
      seed: seed of the draw.
      keep_fraction: fraction in (0, 1] of class b kept.

    Returns:
      ``(A, y)``: (n, H*W*C) float64 in [0, 1] and (n,) labels in {-1, +1}, original order kept.
    """
    X, labels = np.asarray(X), np.asarray(labels)
    if X.ndim < 3 or labels.shape != X.shape[:1]:
        raise ValueError(f"need (N, H, W[, C]) images and (N,) labels, got {X.shape}, {labels.shape}")
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    rng = np.random.default_rng(seed)
    picked = []
    for c, frac in zip(classes, (1.0, keep_fraction)):
        idx = np.flatnonzero(labels == c)
        if idx.size < size // 2:
            raise ValueError(f"class {c} has {idx.size} images, fewer than size/2 = {size // 2}")
        picked.append(rng.choice(idx, max(1, round(frac * (size // 2))), replace=False))
    keep = np.sort(np.concatenate(picked))
    A = X[keep].reshape(keep.size, -1).astype(np.float64) / 255.0
    return A, np.where(labels[keep] == classes[0], 1.0, -1.0)


def real_datasets(real: dict, classes: Sequence[int], size: int, seed: int) -> Data:
    """The paper's image sets that were found: for each loaded ``ImageSet``, its balanced two-class
    subset, and for FashionMNIST also the imbalanced one (Table 1's two FashionMNIST blocks).

    Args:
      real: ``{name: ImageSet or None}`` as ``image_sets.load_if_wanted`` gave them.
      classes, size, seed: as in :func:`image_pair`.

    Returns:
      ``{label: (A, y)}``, empty when no set was loaded.
    """
    out = {}
    for name, images in real.items():
        if images is None:
            continue
        tag = f"{REAL_SETS[name]} {classes[0]}-{classes[1]}"
        out[tag] = image_pair(images.X_train, images.y_train, classes, size, seed)
        if name == "fashion_mnist":
            out[f"{tag} imbalanced"] = image_pair(images.X_train, images.y_train, classes, size, seed,
                                                  IMBALANCED_KEEP)
    return out


def build_datasets(cfg: SimpleNamespace, seed: int, real: Data | None = None) -> Data:
    """Every data set of the notebook: the paper's worst-case (Thm 5.1, n = 1000) and two-point
    (Thm 4.1) sets, the digit pairs and planted-margin sets of ``cfg`` (proxies), then ``real``.

    Args:
      cfg: settings with ``digit_pairs`` and ``planted_shapes`` ([n, d] each).
      seed: seed of the first planted set (the i-th uses seed + i).
      real: the real sets of :func:`real_datasets`, appended last.

    Returns:
      ``{name: (A, y)}`` with A (n, d) float64 and y (n,) in {-1, +1}.
    """
    data = {"worst_case": pc.worst_case_dataset(1000), "two_point": pc.two_point_dataset()}
    for a, b in cfg.digit_pairs:
        data[f"digits {a}-{b}"] = datasets.digits_pair(a, b)
    for i, (n, d) in enumerate(cfg.planted_shapes):
        data[f"planted {n}x{d}"] = datasets.planted_margin(n, d, PLANTED_MARGIN, seed + i,
                                                           PLANTED_OFFSET)
    return data | (real or {})


def certify(data: Data) -> tuple[dict[str, jax.Array], dict[str, pc.Margin]]:
    """Signed samples and the no-intercept margin certificate of every data set (Assumption 1.1).

    Args:
      data: ``{name: (A, y)}``, A (n, d), y (n,) in {-1, +1}.

    Returns:
      ``(Z, cert)``: ``{name: (n, d) signed samples}`` and ``{name: pc.Margin}``.

    Raises:
      ValueError: a data set is not linearly separable without an intercept.
    """
    Z, cert = {}, {}
    for name, (A, y) in data.items():
        Z[name] = pc.signed_samples(A, y)
        cert[name] = pc.margin_certificate(Z[name])
        if not cert[name].separable:
            raise ValueError(f"{name} is not linearly separable without an intercept; "
                             "choose another data set (digit_pairs, real_classes)")
    return Z, cert


def proxy_label(real_names: Sequence[str]) -> str:
    """The figures' proxy note (Sec. 7's data sets): what stands in for the paper's image sets, and
    which real sets joined them.

    Args:
      real_names: the names of :func:`real_datasets` (empty: proxies only).

    Returns:
      The text for ``figures.publish(..., proxy=...)``.
    """
    text = ("scikit-learn 8×8 digit pairs and synthetic planted-margin data stand in for the paper's "
            "2-class CIFAR-10 / FashionMNIST / EuroSAT / MNIST subsets (5,000 samples)")
    if real_names:
        text += f"; {', '.join(real_names)}: the real sets (class pair and imbalance our choice)"
    return text


def markdown_table(header: Sequence, rows: Sequence[Sequence]) -> str:
    """A Markdown table.

    Args:
      header: the column titles.
      rows: one sequence of cells per row (shown with ``str``).

    Returns:
      The table's Markdown text.
    """
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines)


def dataset_table(Z: dict[str, ArrayLike], cert: dict[str, pc.Margin]) -> str:
    """Markdown: n, d, the certified bracket on μ (Assumption 1.1), R, R²/μ² and 2/L of every set.

    Args:
      Z: ``{name: (n, d) signed samples}``.
      cert: ``{name: pc.Margin}`` of :func:`certify`.

    Returns:
      The table's Markdown text.
    """
    rows = [(name, *z.shape, f"[{c.mu_lower:.6g}, {c.mu_upper:.6g}]", f"{c.radius:.4g}",
             f"{c.radius**2 / c.mu_upper**2:.1f}", f"{2 / pc.smoothness_constant(z):.3g}")
            for (name, z), c in zip(Z.items(), cert.values())]
    return markdown_table(["data set", "n", "d", "μ in", "R", "R²/μ²", "2/L"], rows)


# ---------------------------------------------------------------------------------------------
# Table 1 and Theorem 5.1
# ---------------------------------------------------------------------------------------------


def table1_counts(Z: ArrayLike, rows: Sequence[tuple], max_steps: int) -> list[int]:
    """Iterations to separate (Table 1's count: first t with every margin > 0, θ₀ = 0 is t = 0).

    Args:
      Z: (n, d) signed samples.
      rows: ``(method, step, paper count)`` triples, method "LR+GD" or "Normalized LR+GD".
      max_steps: horizon; a run not separated by then counts -1.

    Returns:
      One count per row.
    """
    method = {"LR+GD": "lr_gd", "Normalized LR+GD": "normalized_lr_gd"}
    return [pc.steps_to_separate(Z, method[m], max_steps, g) for m, g, _ in rows]


def table_figure(rows: Sequence[tuple], ours: Sequence[int], title: str) -> plt.Figure:
    """Table 1's rows next to ours as a figure: method, step, paper, ours, match.

    Args:
      rows: ``(method, step, paper count)`` triples; ours: our count per row; title: its title.

    Returns:
      The figure.
    """
    fig, ax = plt.subplots(figsize=(5.2, 0.35 * len(rows) + 0.2))
    ax.axis("off")
    cells = [[m, f"{g:g}", str(p), str(o), "yes" if p == o else "NO"]
             for (m, g, p), o in zip(rows, ours)]
    tab = ax.table(cellText=cells, colLabels=["method", "step γ", "paper", "ours", "match"],
                   loc="center", cellLoc="center")
    tab.scale(1, 1.3)
    ax.set_title(title)
    return fig


def table1_real_rows(Z: dict[str, ArrayLike], max_steps: int) -> str:
    """Table 1's FashionMNIST blocks on the real sets that were read (see :func:`real_datasets`):
    the paper's five (method, step) rows per block and our counts; CIFAR-10, which Table 1 lacks,
    gets the balanced block's rows. Reported, not claimed (class pair and imbalance are ours).

    Args:
      Z: ``{set name: (n, d) signed samples}``; only FashionMNIST / CIFAR-10 names are used.
      max_steps: horizon; a run not separated by then counts -1.

    Returns:
      Markdown, one table row per (set, method, step); when no real set was read, a sentence
      saying so.
    """
    rows = []
    for name, z in Z.items():
        if not name.startswith(tuple(REAL_SETS.values())):
            continue
        block = "imbalanced" if name.endswith("imbalanced") else "balanced"
        table = TABLE1_FASHION[block]
        paper = [p if name.startswith("FashionMNIST") else "–" for _, _, p in table]
        for (method, g, _), p, o in zip(table, paper, table1_counts(z, table, max_steps)):
            rows.append((name, method, f"{g:g}", p, o))
    if not rows:
        return ("No real image set was read (`real_data` off, or the files are not in "
                "$PAPERLIB_DATA): Table 1's FashionMNIST rows are not reproduced in this run.")
    return markdown_table(["data set", "method", "step γ", "paper", "ours"], rows)


def worst_case_times(sizes: Sequence[int]) -> tuple[dict[str, list[int]], list[int]]:
    """Separation times of :data:`WORST_CASE_RUNS` on the Thm 5.1 data set for every n in ``sizes``.

    Each run's horizon is 2 (t* + 20), t* = ⌊0.3n + 0.2⌋ + 1 the Batch Perceptron's closed form.

    Args:
      sizes: the n (each >= 10).

    Returns:
      ``(times, closed)``: ``{label: [time per n]}`` and the closed-form t* per n.
    """
    closed = [pc.batch_perceptron_worst_case_time(n) for n in sizes]
    times = {label: [] for label in WORST_CASE_RUNS}
    for n, t_star in zip(sizes, closed):
        Zn = pc.signed_samples(*pc.worst_case_dataset(n))
        for label, (method, g) in WORST_CASE_RUNS.items():
            times[label].append(pc.steps_to_separate(Zn, method, 2 * (t_star + 20), g))
    return times, closed


def bounds_summary(ratio: dict[str, np.ndarray], rows: Sequence[tuple]) -> str:
    """The iteration-bound table of :func:`bound_ratios` and the largest observed/bound ratio per
    theorem (Thms 3.3, 5.2, 5.3, 6.1).

    Args:
      ratio: ``{theorem: ratios}``; rows: the table rows, as :func:`bound_ratios` gives them.

    Returns:
      The Markdown text.
    """
    return (markdown_table(["dataset", "theorem", "observed", "bound"], rows)
            + "\n\nLargest observed/bound ratio per theorem: "
            + ", ".join(f"{k} {np.max(r):.3g}" for k, r in ratio.items()))


def worst_case_note(sizes: Sequence[int], times: dict[str, list[int]],
                    closed: Sequence[int]) -> str:
    """Thm 5.1 in one sentence: the Batch Perceptron's time at the largest n against the closed
    form, and the times of :data:`NORMALIZED_RUNS` over every n.

    Args:
      sizes, times, closed: as :func:`worst_case_times` takes and gives them.

    Returns:
      The Markdown sentence.
    """
    normalized = sorted({t for label in NORMALIZED_RUNS for t in times[label]})
    return (f"Batch Perceptron: {times['Batch Perceptron'][-1]} iterations at n = {sizes[-1]} "
            f"(closed form {closed[-1]}); the normalized methods: {normalized} for every n.")


def worst_case_figure(sizes: Sequence[int], times: dict[str, list[int]],
                      closed: Sequence[int]) -> plt.Figure:
    """Separation time against n on the Thm 5.1 set, with the closed form ⌊0.3n+0.2⌋+1.

    Args:
      sizes, times, closed: as :func:`worst_case_times` takes and gives them.

    Returns:
      The figure.
    """
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for (label, t), marker in zip(times.items(), "osD^v"):
        ax.plot(sizes, t, marker=marker, label=label)
    ax.plot(sizes, closed, "k:", label="closed form ⌊0.3n+0.2⌋+1")
    ax.set(xscale="log", yscale="log", xlabel="n (samples in the worst-case dataset)",
           ylabel="iterations to separate",
           title="Thm 5.1: Batch Perceptron is Θ(n), normalized methods O(1)")
    ax.legend()
    return fig


# ---------------------------------------------------------------------------------------------
# Theorem 4.1 (two-point set) and Theorem 3.2 (reduction)
# ---------------------------------------------------------------------------------------------


class TwoPoint(NamedTuple):
    """Two LR+GD steps on the Thm 4.1 set for each step size (arrays over γ, then t = 0, 1, 2)."""

    gammas: np.ndarray  # (G,)
    theta: np.ndarray  # (G, 3, 2) iterates θ₀, θ₁, θ₂
    loss: np.ndarray  # (G, 3) f(θ_t)
    grad_norm: np.ndarray  # (G, 3) ‖∇f(θ_t)‖


def two_point_study(gammas: ArrayLike) -> TwoPoint:
    """LR+GD from θ₀ = 0 for two steps on the two-point set (Thm 4.1), one run per γ.

    Args:
      gammas: (G,) step sizes.

    Returns:
      :class:`TwoPoint`.
    """
    Z2 = pc.signed_samples(*pc.two_point_dataset())
    runs = [pc.lr_gd(Z2, g, 2, keep_path=True) for g in gammas]
    return TwoPoint(np.asarray(gammas, dtype=np.float64), np.array([r.path for r in runs]),
                    np.array([r.loss for r in runs]), np.array([r.grad_norm for r in runs]))


def min_normalized_margin(Z: ArrayLike, thetas: ArrayLike) -> float:
    """The smallest normalized margin min_i m_i(θ)/‖θ‖ over the samples and the iterates (Thm 4.1:
    θ₂ separates for every γ when it is > 0).

    Args:
      Z: (n, d) signed samples; thetas: (G, d) iterates, one per step size.

    Returns:
      The minimum over the n x G margins.
    """
    thetas = np.asarray(thetas)
    return float(np.min(np.asarray(Z) @ thetas.T / np.linalg.norm(thetas, axis=1)))


def two_point_figure(tp: TwoPoint) -> plt.Figure:
    """Thm 4.1 in three panels: f(θ_t) with γ/8, ‖∇f(θ_t)‖ with √2/2, and the decay rate of f(θ₂).

    Args:
      tp: :func:`two_point_study`'s result.

    Returns:
      The figure.
    """
    g = tp.gammas
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.3))
    for k, style in [(0, ":"), (1, "-o"), (2, "-s")]:
        axes[0].plot(g, tp.loss[:, k], style, ms=3, label=f"f(θ_{k})")
        axes[1].plot(g, tp.grad_norm[:, k], style, ms=3, label=f"‖∇f(θ_{k})‖")
    axes[0].plot(g, g / 8, "k--", lw=0.8, label="γ/8")
    axes[1].axhline(np.sqrt(2) / 2, color="k", ls="--", lw=0.8, label="√2/2")
    axes[0].set(ylim=(1e-3, 1e3), ylabel="loss (θ₂ leaves the axis: right panel)")
    axes[1].set(ylim=(1e-3, 3), ylabel="gradient norm")
    shown = tp.loss[:, 2] > 0  # f(θ₂) underflows to 0 in float64 near γ = 1000
    axes[2].plot(g[shown], -np.log(2 * tp.loss[shown, 2]) / g[shown], "-s", ms=3, color="C2",
                 label="−ln(2 f(θ₂)) / γ")
    axes[2].axhline(0.75, color="k", ls="--", lw=0.8, label="0.75 = min margin of (1, ¼)")
    axes[2].set(xscale="log", ylim=(0, 1), ylabel="decay rate of f(θ₂) in γ",
                xlabel="step size γ", title="f(θ₂) ≈ ½·exp(−0.75γ) → 0")
    for ax, title in zip(axes[:2], ["loss", "gradient norm"]):
        ax.set(xscale="log", yscale="log", xlabel="step size γ",
               title=f"Thm 4.1 two-point set: {title}")
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


def reduction_figure(Z: ArrayLike, red: dict[str, pc.Reduction], gammas: Sequence[float],
                     name: str) -> plt.Figure:
    """Thm 3.2: E(γ) per data set (left) and the Fig. 2 analogue on ``name`` (right): Batch
    Perceptron accuracy with LR+GD at γ = 1e2, 1e4, 1e8 over three times its separation time.

    Args:
      Z: (n, d) signed samples of ``name``.
      red: ``{set name: pc.Reduction}``.
      gammas: the step sizes of the reductions' errors.
      name: the key of ``red`` whose data set ``Z`` is.

    Returns:
      The figure.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for label, r in red.items():
        axes[0].plot(gammas, np.maximum(r.errors, 1e-17), "o-", label=label)
    axes[0].set(xscale="log", yscale="log", xlabel="step size γ", ylabel="max_t ‖θ_t/γ − θ̂_t‖",
                title="Thm 3.2: distance to the Batch Perceptron path")
    axes[0].axhline(1e-10, color="k", ls=":", lw=0.8)
    axes[0].legend()
    horizon = 3 * red[name].horizon
    axes[1].plot(pc.batch_perceptron(Z, horizon).accuracy, "k", lw=2.5, alpha=0.4,
                 label="Batch Perceptron")
    shown = [1e2, 1e4, 1e8]
    for g, acc in zip(shown, pc.lr_gd_sweep(Z, shown, horizon).accuracy):
        axes[1].plot(acc, lw=1, label=f"LR+GD γ={g:g}")
    axes[1].set(xlabel="iteration t", ylabel="training accuracy", ylim=(0.8, 1.005),
                title=f"Fig. 2 analogue ({name})")
    axes[1].legend()
    return fig


def reduction_summary(red: dict[str, pc.Reduction], gammas: Sequence[float]) -> str:
    """Markdown: per data set the Batch Perceptron's separation time T, the smallest |margin| on its
    path and E(γ) of Thm 3.2 per step size.

    Args:
      red: ``{set name: pc.Reduction}``; gammas: the step sizes of their errors.

    Returns:
      A Markdown list.
    """
    return "\n".join(
        f"- **{name}**: T = {r.horizon}, smallest |margin| on the perceptron path m_min = "
        f"{r.min_abs_margin:.3g}, E(γ) = "
        + ", ".join(f"{e:.2g} (γ={g:g})" for g, e in zip(gammas, r.errors))
        for name, r in red.items())


# ---------------------------------------------------------------------------------------------
# Iteration bounds (Thms 3.3, 5.2, 5.3, 6.1)
# ---------------------------------------------------------------------------------------------


def bound_ratios(Z: dict[str, ArrayLike], cert: dict[str, pc.Margin]
                 ) -> tuple[dict[str, np.ndarray], list[tuple]]:
    """Observed iterations / bound on every data set for Thms 3.3, 5.2, 5.3 and 6.1.

    Bounds use μ_upper (the smallest bound). Each run stops at separation or just past its bound
    (the Batch Perceptron capped at 1e6 steps), so a run that does not separate in time gives a ratio
    of ∞, never a silent pass.

    Args:
      Z: ``{name: (n, d) signed samples}``.
      cert: ``{name: pc.Margin}`` of :func:`certify`.

    Returns:
      ``(ratio, rows)``: ``{theorem: (S,) ratios}`` (thm6.1: (S, 4), one column per
      :data:`BOUND_GAMMAS`) over the S data sets, and table rows (set, theorem, observed, bound).
    """
    ratio = {key: [] for key in BOUND_THEOREMS}
    rows = []
    for name, Zn in Z.items():
        n, R, mu = Zn.shape[0], cert[name].radius, cert[name].mu_upper
        nov, bp = pc.perceptron_bound(R, mu), pc.batch_perceptron_bound(n, R, mu)
        nl = [pc.normalized_lr_gd_bound(n, R, mu, g) for g in BOUND_GAMMAS]
        got = {
            "thm3.3": ([pc.steps_to_separate(Zn, "batch_perceptron", int(min(bp, 1e6)) + 1)], [bp]),
            "thm5.2": ([pc.perceptron_updates(Zn, int(nov) + 1)[0]], [nov]),
            "thm5.3": ([pc.steps_to_separate(Zn, "normalized_batch_perceptron", int(nov) + 1)],
                       [nov]),
            "thm6.1": ([pc.steps_to_separate(Zn, "normalized_lr_gd", int(b) + 1, g)
                        for g, b in zip(BOUND_GAMMAS, nl)], nl),
        }
        for key, (observed, bound) in got.items():
            obs = np.where(np.asarray(observed) < 0, np.inf, observed)  # -1: not within the bound
            ratio[key].append(obs / np.asarray(bound))
            rows.append((name, key, observed, [float(f"{b:.4g}") for b in bound]))
    return {k: np.array(v) if k == "thm6.1" else np.concatenate(v) for k, v in ratio.items()}, rows


def bounds_figure(ratio: dict[str, np.ndarray], labels: Sequence[str]) -> plt.Figure:
    """Bar chart of observed / bound per data set (log scale, the bound at 1).

    Args:
      ratio: :func:`bound_ratios`' ratios; labels: the S data set names.

    Returns:
      The figure.
    """
    fig, ax = plt.subplots(figsize=(8, 3.8))
    x = np.arange(len(labels))
    series = [("Thm 3.3 Batch Perceptron", ratio["thm3.3"]),
              ("Thm 5.2 Perceptron (updates)", ratio["thm5.2"]),
              ("Thm 5.3 Normalized Batch Perceptron", ratio["thm5.3"]),
              (f"Thm 6.1 Normalized LR+GD, γ={BOUND_GAMMAS[0]:g}", ratio["thm6.1"][:, 0]),
              (f"Thm 6.1 Normalized LR+GD, γ={BOUND_GAMMAS[-1]:g}", ratio["thm6.1"][:, -1])]
    width = 0.8 / len(series)
    for j, (label, values) in enumerate(series):
        ax.bar(x + (j - (len(series) - 1) / 2) * width, values, width, label=label)
    ax.axhline(1.0, color="k", lw=1, label="bound (ratio 1)")
    ax.set(yscale="log", xticks=x, ylabel="observed iterations / bound",
           title="Iteration bounds: observed / bound (all below 1)")
    ax.set_xticklabels(labels, rotation=20, ha="right")
    ax.legend(fontsize=7, loc="lower left")
    return fig


# ---------------------------------------------------------------------------------------------
# Step-size sweeps (Figs. 1/4/5)
# ---------------------------------------------------------------------------------------------


class SweepSummary(NamedTuple):
    """LR+GD over a grid of step sizes on one dataset (the Figs. 1/4/5 protocol)."""

    trace: pc.Trace  # per-gamma traces (leading gamma axis)
    sep: np.ndarray  # separation time per gamma (-1: not within the horizon)
    max_loss: np.ndarray  # max loss before separation per gamma (whole run if never separated)
    t_sep: np.ndarray  # separation time with -1 replaced by the horizon (an upper bound)


def step_size_sweep(Z: ArrayLike, gammas: ArrayLike, num_steps: int) -> SweepSummary:
    """LR+GD at every γ for ``num_steps`` steps (one vmapped scan), with separation times and the
    largest loss before separation (Sec. 4, Figs. 1/4/5).

    Args:
      Z: (n, d) signed samples.
      gammas: (G,) step sizes.
      num_steps: horizon T.

    Returns:
      :class:`SweepSummary`; trace fields are (G, T + 1), the rest (G,).
    """
    tr = pc.lr_gd_sweep(Z, gammas, num_steps)
    sep = pc.separation_time(tr)
    loss = np.asarray(tr.loss)
    max_loss = np.array([pc.until_separation(l, t).max() for l, t in zip(loss, sep)])
    return SweepSummary(tr, sep, max_loss, np.where(sep < 0, num_steps, sep).astype(float))


class SweepMeasures(NamedTuple):
    """What the Figs. 1/4/5 claims read, one entry per data set of the sweep."""

    rho: list[float]  # Spearman correlation of γ with the max loss before separation
    speed: list[np.ndarray]  # each γ >= 10: separation time / best one of any γ <= 0.1
    lossier: list[np.ndarray]  # each γ >= 10: max loss before separation / largest of any γ <= 0.1
    grad_up: list[float]  # largest γ: max ‖∇f(θ_t)‖ before separation / ‖∇f(θ₀)‖
    stable_rise: float  # every γ < 2/L, all sets: largest one-step relative rise of ‖∇f(θ_t)‖
    two_over_L: dict  # {set name: 2/L}


def sweep_measures(Z: dict[str, ArrayLike], sweeps: dict[str, SweepSummary],
                   gammas: ArrayLike) -> SweepMeasures:
    """The numbers behind the Figs. 1/4/5 claims from the sweeps of :func:`step_size_sweep`.

    A γ <= 0.1 that never separates counts as T, so a speed ratio is an upper bound. For GD with
    γ <= 2/L on a convex L-smooth f the gradient norm is non-increasing (cocoercivity), so a rise
    above ‖∇f(θ₀)‖ is a large-step effect.

    Args:
      Z: ``{set name: (n, d) signed samples}`` (for 2/L).
      sweeps: ``{set name: SweepSummary}`` over the same ``gammas``.
      gammas: (G,) step sizes.

    Returns:
      :class:`SweepMeasures`.
    """
    gam = np.asarray(gammas)
    small, large, j_max = gam <= 0.1, gam >= 10, int(np.argmax(gam))
    two_over_L = {name: 2 / pc.smoothness_constant(Z[name]) for name in sweeps}
    s = sweeps.values()
    grad_up = [pc.until_separation(x.trace.grad_norm[j_max], x.sep[j_max]).max()
               / x.trace.grad_norm[j_max][0] for x in s]
    rise = max(float(np.max(np.diff(np.asarray(g)) / np.asarray(g)[:-1]))
               for name, x in sweeps.items() for g, gj in zip(x.trace.grad_norm, gam)
               if gj < two_over_L[name])
    return SweepMeasures([spearmanr(gam, x.max_loss).statistic for x in s],
                         [x.t_sep[large] / x.t_sep[small].min() for x in s],
                         [x.max_loss[large] / x.max_loss[small].max() for x in s],
                         grad_up, rise, two_over_L)


def sweep_table(sweeps: dict[str, SweepSummary], measures: SweepMeasures,
                gammas: Sequence[float]) -> str:
    """Markdown: per data set 2/L, separation time and max loss before it per γ, and the gradient
    norm's rise at the largest γ (Figs. 1/4/5).

    Args:
      sweeps, measures, gammas: as :func:`sweep_measures` takes and gives them.

    Returns:
      The table's Markdown text.
    """
    head = ["data set", "2/L", f"separation time per γ {list(gammas)} (−1: not by T)",
            "max loss before it", f"max ‖∇f‖ / ‖∇f(θ₀)‖ at γ={max(gammas):g}"]
    rows = [(name, f"{measures.two_over_L[name]:.3g}", s.sep.tolist(),
             [float(f"{v:.3g}") for v in s.max_loss], f"{up:.3g}")
            for (name, s), up in zip(sweeps.items(), measures.grad_up)]
    return markdown_table(head, rows)


def sweep_figure(Z: dict[str, ArrayLike], sweeps: dict[str, SweepSummary],
                 gammas: Sequence[float], num_steps: int) -> plt.Figure:
    """Figs. 1/4/5 analogue: accuracy, loss and gradient norm against t (log axes) per γ and data
    set, the Batch Perceptron's accuracy dashed and each γ's separation time dotted. Series are
    thinned by :func:`log_envelope` (the same band as all T points).

    Args:
      Z: ``{name: (n, d) signed samples}``; sweeps: ``{name: SweepSummary}`` over ``gammas``;
      num_steps: the sweeps' horizon T.

    Returns:
      The figure.
    """
    fig, axes = plt.subplots(len(sweeps), 3, figsize=(11, 2.6 * len(sweeps)), squeeze=False)
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(gammas)))
    for row, (name, s) in zip(axes, sweeps.items()):
        for j, g in enumerate(gammas):
            for ax, series in zip(row, [s.trace.accuracy[j], s.trace.loss[j], s.trace.grad_norm[j]]):
                ax.plot(*log_envelope(np.asarray(series[1:])), color=colors[j], lw=0.9,
                        label=f"γ={g:g}")
            for ax in row if s.sep[j] > 0 else ():
                ax.axvline(s.sep[j], color=colors[j], ls=":", lw=0.7)
        bp = pc.batch_perceptron(Z[name], num_steps).accuracy
        row[0].plot(*log_envelope(np.asarray(bp[1:])), "k--", lw=1, label="Batch Perceptron")
        row[0].set(ylim=(0.7, 1.005), ylabel=f"{name}\naccuracy")
        row[1].set(yscale="log", ylabel="loss f(θ_t)")
        row[2].set(yscale="log", ylabel="‖∇f(θ_t)‖")
        for ax in row:
            ax.set(xscale="log")
    for ax in axes[-1]:
        ax.set_xlabel("iteration t")
    axes[0, 0].legend(fontsize=6, ncol=2)
    fig.suptitle("Figs. 1/4/5 analogue: LR+GD step-size sweep (dotted: separation time)")
    return fig


def separation_figure(Z: dict[str, ArrayLike], sweeps: dict[str, SweepSummary],
                      gammas: Sequence[float], num_steps: int,
                      two_over_L: dict[str, float]) -> plt.Figure:
    """Iterations to separate against γ for LR+GD and Normalized LR+GD (Sec. 6) per data set, with
    the Batch Perceptron's time and 2/L; runs not separated by T drawn as red rings at T.

    Args:
      Z, sweeps, gammas, num_steps: as for :func:`sweep_figure`; two_over_L: 2/L per set.

    Returns:
      The figure.
    """
    gam = np.asarray(gammas)
    fig, axes = plt.subplots(1, len(sweeps), figsize=(3.3 * len(sweeps), 3.5), squeeze=False)
    for ax, (name, s) in zip(axes[0], sweeps.items()):
        nsep = np.array([pc.steps_to_separate(Z[name], "normalized_lr_gd", num_steps, g)
                         for g in gam])
        for label, times, marker in [("LR+GD", s.sep, "o"), ("Normalized LR+GD", nsep, "s")]:
            ax.plot(gam, np.where(times < 0, np.nan, times).astype(float), marker=marker,
                    label=label)
            never = np.flatnonzero(times < 0)
            ax.scatter(gam[never], np.full(len(never), num_steps), marker=marker,
                       facecolors="none", edgecolors="r",
                       label=f"{label}: not separated by T" if len(never) else None)
        bp = pc.steps_to_separate(Z[name], "batch_perceptron", num_steps)
        ax.axhline(bp, color="k", ls="--", lw=0.8, label="Batch Perceptron")
        ax.axvline(two_over_L[name], color="0.5", ls=":", lw=0.8, label="2/L")
        ax.set(xscale="log", yscale="log", xlabel="step size γ", title=name)
    axes[0, 0].set_ylabel("iterations to separate")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside right upper", fontsize=7)
    return fig


def all_pairs_survey(gammas: Sequence[float], num_steps: int) -> str:
    """The γ sweep (Figs. 1/4/5) on all 45 digit pairs in one compiled run (reported, no claim).

    Args:
      gammas: (G,) step sizes; num_steps: horizon.

    Returns:
      Markdown: on how many pairs some γ >= 10 drives the loss above ln 2 before separating, and
      the separation times per pair.
    """
    pairs = [(a, b) for a in range(10) for b in range(a + 1, 10)]
    Zs = [pc.signed_samples(*datasets.digits_pair(a, b)) for a, b in pairs]
    t_all, ml_all = padded_separation_sweep(Zs, gammas, num_steps)
    large = np.asarray(gammas) >= 10
    rises = [bool(ml[large].max() > np.log(2) + 1e-9) for ml in ml_all]
    rows = [(f"{a}-{b}", t.tolist(), "yes" if r else "no") for (a, b), t, r in
            zip(pairs, t_all, rises)]
    return (f"**All {len(pairs)} digit pairs:** on {sum(rises)} of them some γ ≥ 10 drives the "
            "loss above its starting value ln 2 before separating; on the others (the easier "
            "pairs, see R²/μ²) it never does.\n\n"
            + markdown_table(["pair", f"separation time (−1: not within {num_steps}) per γ "
                              f"{list(gammas)}", "loss rises above ln 2"], rows))
def pad_datasets(Zs: Sequence[ArrayLike]) -> tuple[jax.Array, jax.Array]:
    """Stack signed-sample matrices of equal d and different n, zero-padded to the largest n.

    Args:
      Zs: P arrays (n_p, d) of signed samples.

    Returns:
      ``(Zp, mask)``: (P, n_max, d) float64 and the (P, n_max) mask of the real rows.

    Raises:
      ValueError: the sets differ in d.
    """
    Zs = [np.asarray(z, dtype=np.float64) for z in Zs]
    if len({z.shape[1] for z in Zs}) != 1:
        raise ValueError("every dataset must have the same dimension d")
    n_max = max(z.shape[0] for z in Zs)
    Zp = np.stack([np.pad(z, ((0, n_max - z.shape[0]), (0, 0))) for z in Zs])
    mask = np.stack([np.arange(n_max) < z.shape[0] for z in Zs])
    return jnp.asarray(Zp), jnp.asarray(mask)


@partial(jax.jit, static_argnames=("num_steps",))
def _masked_separation(Z, mask, gamma, num_steps):
    """LR+GD from theta = 0 on the real rows of Z: (separation time or -1, max loss before it)."""
    w = mask / jnp.sum(mask)

    def step(carry, t):
        theta, t_sep, max_loss = carry
        m = pc.margins(theta, Z)
        loss = jnp.sum(w * jnp.logaddexp(0.0, -m))
        separated = jnp.all((m > 0) | ~mask)
        first = separated & (t_sep < 0)
        t_sep = jnp.where(first, t, t_sep)
        max_loss = jnp.where(t_sep < 0, jnp.maximum(max_loss, loss), max_loss)
        grad_w = gamma * w * jnp.exp(-jnp.logaddexp(0.0, m))  # gamma * sigma(-m_i) / n
        theta = theta + jnp.matmul(Z.T, grad_w, precision=lax.Precision.HIGHEST)
        return (theta, t_sep, max_loss), None

    init = (jnp.zeros(Z.shape[1], Z.dtype), jnp.asarray(-1), jnp.asarray(-jnp.inf, Z.dtype))
    (_, t_sep, max_loss), _ = lax.scan(step, init, jnp.arange(num_steps + 1))
    return t_sep, max_loss


def padded_separation_sweep(Zs: Sequence[ArrayLike], gammas: ArrayLike,
                            num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """For every data set and every γ: the LR+GD (Eq. (2), Sec. 4) separation time within
    ``num_steps`` and the largest loss before it, as ``pc.separation_time`` and
    ``pc.until_separation`` give on the unpadded trace. One compilation for all data sets (padding +
    mask).

    Args:
      Zs: P arrays (n_p, d) of signed samples, equal d.
      gammas: (G,) step sizes.
      num_steps: horizon T.

    Returns:
      ``(t_sep, max_loss)``, each (P, G); t_sep is -1 where a run does not separate (its max loss is
      then over the whole run).
    """
    Zp, mask = pad_datasets(Zs)
    g = jnp.asarray(pc.check_step_sizes(gammas))
    over_gammas = jax.vmap(_masked_separation, in_axes=(None, None, 0, None))
    t, ml = jax.vmap(over_gammas, in_axes=(0, 0, None, None))(Zp, mask, g, num_steps)
    return np.asarray(t), np.asarray(ml)


def log_envelope(series: ArrayLike, bins: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """A per-iteration series y_1..y_T thinned for a log-x plot (Figs. 1/4/5): in each of ``bins``
    log-spaced bins of t the minimum and the maximum, in time order (every t while bins are finer
    than one step), so the drawn band of a chaotic series is the same as with all T points.

    Args:
      series: (T,) values y_1..y_T.
      bins: number of log-spaced bins.

    Returns:
      ``(t, y)``: at most 2 * bins iterations (1-based, increasing) and their values.
    """
    y = np.asarray(series)
    t = np.arange(1, y.size + 1)
    edges = np.unique(np.geomspace(1, y.size + 1, bins + 1).astype(int))
    xs, ys = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        seg = y[lo - 1:hi - 1]
        pick = sorted({int(np.argmin(seg)), int(np.argmax(seg))})
        xs.extend(t[lo - 1 + i] for i in pick)
        ys.extend(seg[i] for i in pick)
    return np.array(xs), np.array(ys)


# ---------------------------------------------------------------------------------------------
# Sec. 3 remark, Figs. 6/7, numerical hygiene, scikit-learn anchor
# ---------------------------------------------------------------------------------------------


def scaled_loss_gap(theta: ArrayLike, Z: ArrayLike, scales: ArrayLike) -> np.ndarray:
    """(1/(s n)) Σ log(1 + e^{−s m_i}) − (1/n) Σ max(0, −m_i) for each scale s (Sec. 3 remark);
    equals (1/(s n)) Σ softplus(−s|m_i|), in [0, ln 2 / s].

    Args:
      theta: (d,) iterate.
      Z: (n, d) signed samples.
      scales: (S,) scales s > 0.

    Returns:
      (S,) differences.
    """
    return np.array([pc.scaled_logistic_loss(theta, Z, s) - pc.perceptron_loss(theta, Z)
                     for s in scales])


def scaled_loss_note(theta: ArrayLike, Z: ArrayLike, scales: ArrayLike, gap: ArrayLike) -> str:
    """The Sec. 3 remark at s = 100: the difference against the bound ln 2 / s, and why it falls
    faster than 1/s (the iterate's smallest |margin| is > 0).

    Args:
      theta: (d,) the iterate; Z: (n, d) signed samples; scales: (S,) scales, one near 100;
      gap: (S,) :func:`scaled_loss_gap`.

    Returns:
      The Markdown sentence.
    """
    m_min = float(np.min(np.abs(pc.margins(theta, Z))))
    at_100 = gap[int(np.argmin(abs(np.asarray(scales) - 100)))]
    return (f"At s = 100 the difference is {at_100:.2g} (bound ln 2 / s = {np.log(2) / 100:.2g}); "
            f"it falls faster than 1/s because the smallest |margin| of this iterate is "
            f"{m_min:.2g} > 0.")


def scaled_loss_figure(scales: ArrayLike, gap: ArrayLike, name: str) -> plt.Figure:
    """The Sec. 3 remark's difference against s, with the closed-form bound ln 2 / s.

    Args:
      scales: (S,) scales; gap: (S,) :func:`scaled_loss_gap`; name: the data set, for the title.

    Returns:
      The figure.
    """
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    ax.plot(scales, gap, "o-", label="scaled logistic − perceptron loss")
    ax.plot(scales, np.log(2) / scales, "k--", label="ln 2 / s")
    ax.set(xscale="log", yscale="log", ylim=(1e-16, 2), xlabel="scale s",
           ylabel="loss difference (below 1e-16: rounding)", title=f"Sec. 3 remark ({name}, proxy)")
    ax.legend()
    return fig


def perceptron_race(pairs: Sequence[Sequence[int]], seed: int, max_steps: int = 100000
                    ) -> list[tuple]:
    """Figs. 6/7 protocol: Batch vs Normalized Batch Perceptron separation times on balanced digit
    pairs and on the same pairs keeping :data:`IMBALANCED_KEEP` of the second class (our choice).

    Args:
      pairs: digit pairs (a, b); seed: seed of the imbalanced draw; max_steps: horizon (-1 beyond).

    Returns:
      Rows ``(pair, "balanced" | "imbalanced", batch time, normalized time)``.
    """
    rows = []
    for a, b in pairs:
        for label, (A, y) in [("balanced", datasets.digits_pair(a, b)),
                              ("imbalanced", datasets.digits_imbalanced_pair(a, b, IMBALANCED_KEEP,
                                                                             seed))]:
            Zi = pc.signed_samples(A, y)
            rows.append((f"{a}-{b}", label, *(pc.steps_to_separate(Zi, m, max_steps) for m in
                                              ("batch_perceptron", "normalized_batch_perceptron"))))
    return rows


RACE_PROXY = ("scikit-learn digit pairs (imbalanced: 10% of the second class kept, our choice) "
              "stand in for the paper's image datasets")  # the Figs. 6/7 figure's proxy label


def race_figure(rows: Sequence[tuple]) -> plt.Figure:
    """Bars of the two perceptrons' separation times per pair, balanced (Fig. 6) and imbalanced
    (Fig. 7) side by side.

    Args:
      rows: :func:`perceptron_race`'s rows.

    Returns:
      The figure.
    """
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
    for ax, kind in zip(axes, ("balanced", "imbalanced")):
        sel = [r for r in rows if r[1] == kind]
        x = np.arange(len(sel))
        ax.bar(x - 0.2, [r[2] for r in sel], 0.4, label="Batch Perceptron")
        ax.bar(x + 0.2, [r[3] for r in sel], 0.4, label="Normalized Batch Perceptron")
        ax.set(xticks=x, xlabel="digit pair",
               title=f"Fig. {6 if kind == 'balanced' else 7} analogue: {kind}")
        ax.set_xticklabels([r[0] for r in sel])
    axes[0].set_ylabel("iterations to separate")
    axes[0].legend(fontsize=7)
    return fig


def race_summary(rows: Sequence[tuple]) -> str:
    """Markdown: the :func:`perceptron_race` table and how often the normalized one wins, next to
    the paper's Figs. 6/7 statements.

    Args:
      rows: :func:`perceptron_race`'s rows.

    Returns:
      The Markdown text.
    """
    wins = {k: sum(nb < b for _, kind, b, nb in rows if kind == k) for k in ("balanced", "imbalanced")}
    pairs = len(rows) // 2
    return (markdown_table(["pair", "data", "Batch Perceptron", "Normalized Batch Perceptron"], rows)
            + f"\n\nThe Normalized Batch Perceptron is faster on {wins['balanced']} of {pairs} "
            f"balanced and {wins['imbalanced']} of {pairs} imbalanced pairs (paper: the plain one is "
            "slightly better on balanced data, Fig. 6; the normalized one on 2 of 3 imbalanced sets, "
            "Fig. 7).")


def normalized_stays_finite(Z: ArrayLike, gamma: float = 100.0, num_steps: int = 600) -> list[bool]:
    """Normalized LR+GD (Sec. 6, convex-combination form) run far past separation on the worst-case
    set, in float32 and float64: finite iterates and losses, separation at t = 2 (Table 1) and
    accuracy 1 at the end.

    Args:
      Z: (n, d) signed samples of the worst-case set; gamma: step size; num_steps: steps run.

    Returns:
      ``[float32 ok, float64 ok]``.
    """
    ok = []
    for dtype in (jnp.float32, jnp.float64):
        tr = pc.normalized_lr_gd(jnp.asarray(Z, dtype=dtype), gamma, num_steps)
        ok.append(bool(jnp.all(jnp.isfinite(tr.theta_final)) and jnp.all(jnp.isfinite(tr.loss))
                       and pc.separation_time(tr) == 2 and tr.accuracy[-1] == 1.0))
    return ok


def sklearn_separates(data: Data) -> list[bool]:
    """Anchor for problem (1): whether scikit-learn's ``Perceptron`` and ``LogisticRegression`` (no
    intercept, no penalty) both reach training accuracy 1 on each data set.

    Args:
      data: ``{name: (A, y)}``, A (n, d), y (n,) in {-1, +1}.

    Returns:
      One verdict per data set.
    """
    agree = []
    for A, y in data.values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            p = Perceptron(fit_intercept=False, shuffle=False, tol=None, max_iter=5000).fit(A, y)
            lr = LogisticRegression(C=np.inf, fit_intercept=False, max_iter=10000).fit(A, y)
        agree.append(bool(np.all(y * (A @ p.coef_.ravel()) > 0)
                          and np.all(y * (A @ lr.coef_.ravel()) > 0)))
    return agree
