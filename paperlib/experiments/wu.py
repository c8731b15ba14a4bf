"""Protocols of the Wu & Su (2023) notebook, built on :mod:`paperlib.stability`.

Section by section of the notebook: the plain-numpy enumeration of every batch and the Monte-Carlo
check of the second-moment operator (Section 1), the survey of the trace theorem over random
rank-one instances (Section 2, the abstract's Tr H <= 2/eta), the Wu-Ma-E (2018) toy (Section 3),
the one-step imbalance identity (Section 4), learning-rate sweeps of GD/SGD on the diagonal linear
net and the two-layer ReLU net with sharpness at the solutions (Sections 5-6), the 2018 sharpness /
non-uniformity runs on FashionMNIST or its digits proxy (Section 7) and the numpy / ARPACK anchors
(Section 8). Plot helpers return a figure; tables are returned as Markdown strings.
"""

from __future__ import annotations

import functools
import itertools
from functools import partial
from types import SimpleNamespace
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
from jax.typing import ArrayLike
from scipy.sparse.linalg import LinearOperator, eigsh
from scipy.stats import beta as beta_dist
from scipy.stats import spearmanr

from paperlib import linalg
from paperlib import stability as st
from paperlib.image_sets import ImageSet

LR_KNOBS = ("dln_lrs", "dln_gd_lrs", "relu_sgd_lrs", "relu_gd_lrs", "digits_lrs")
STEP_KNOBS = ("dln_sgd_steps", "dln_gd_steps", "relu_sgd_steps", "relu_gd_steps", "digits_gd_steps",
              "digits_sgd_steps")
DIGITS_SIZE, FASHION_SIZE = 1797, 60000  # training images of sklearn digits and FashionMNIST
CONVERGED = 1e-10  # our choice: a run has converged when its training loss is below this
# the 2018 code stops at MSELoss < 1e-4 (a mean over n x 10 entries, no 1/2): 5e-4 in our convention
DIGITS_MIN_LOSS = 5e-4


def validate(cfg: SimpleNamespace) -> None:
    """Reject settings the protocols cannot use, before any compute (the ranges of the parameters
    cell are checked by the runner; these are the rules between knobs).

    Args:
      cfg: the resolved settings (``profiles.resolve_from``).

    Returns:
      None.

    Raises:
      ValueError: naming the knob and the rule it breaks.
    """
    for name in LR_KNOBS:
        lrs = getattr(cfg, name)
        if len(lrs) < 2 or any(lr <= 0 for lr in lrs) or sorted(lrs) != list(lrs):
            raise ValueError(f"{name} must be >= 2 increasing positive learning rates, got {lrs}")
    if max(cfg.dln_lrs) / min(cfg.dln_lrs) < 10:
        raise ValueError(f"dln_lrs must span at least one decade (the claim), got {cfg.dln_lrs}")
    for name in STEP_KNOBS:
        if getattr(cfg, name) < 100 or getattr(cfg, name) % 100:
            raise ValueError(f"{name} must be a positive multiple of 100, got {getattr(cfg, name)}")
    if cfg.num_instances < 300 or cfg.dln_seeds < 1 or cfg.relu_seeds < 1 \
            or not 0 <= cfg.warmup_fraction < 1:
        raise ValueError("need num_instances >= 300, at least one seed, 0 <= warmup_fraction < 1")
    size = FASHION_SIZE if cfg.real_data else DIGITS_SIZE
    if not 10 <= cfg.digits_n <= size or cfg.digits_width < 1 \
            or any(not 1 <= b < cfg.digits_n for b in cfg.digits_batches):
        raise ValueError(f"need 10 <= digits_n <= {size}, digits_width >= 1 and "
                         "1 <= every batch size < digits_n")


# ============================================================================ Section 1: operator


def enumerated_operator(g: ArrayLike, eta: float, batch_size: int, replacement: bool,
                        order: int = 2) -> np.ndarray:
    """E_I[A_I kron ... kron A_I] (``order`` factors), A_I = I - eta H_I, H_I = mean_{i in I} g_i g_i^T,
    by listing every batch I: an independent plain-numpy computation of the operator of
    :func:`paperlib.stability.second_moment_operator` (order 2) and of the fourth moments (order 4).

    Args:
      g: (n, p) per-sample output gradients.
      eta: learning rate.
      batch_size: B.
      replacement: B indices with replacement, or B-subsets without.
      order: number of Kronecker factors.

    Returns:
      (p**order, p**order) matrix propagating vec(E Delta^{(x) order}) by one step.
    """
    g = np.asarray(g, dtype=np.float64)
    n, p = g.shape
    Hs = np.einsum("ia,ib->iab", g, g)
    batches = list(itertools.product(range(n), repeat=batch_size)) if replacement \
        else list(itertools.combinations(range(n), batch_size))
    T = np.zeros((p**order, p**order))
    for I in batches:
        A = np.eye(p) - eta * Hs[list(I)].mean(0)
        T += functools.reduce(np.kron, [A] * order) / len(batches)
    return T


def exact_sq_norm_moments(g: ArrayLike, eta: float, batch_size: int, replacement: bool,
                          root: np.ndarray, steps: int) -> tuple[float, float]:
    """E|Delta_t|^2 and E|Delta_t|^4 of the linearised SGD Delta_{t+1} = (I - eta H_I) Delta_t from
    Delta_0 = root z, z ~ N(0, I), by the enumerated second- and fourth-moment operators (Isserlis
    for the Gaussian fourth moment).

    Args:
      g: (n, p) per-sample output gradients.
      eta, batch_size, replacement: the SGD of :func:`enumerated_operator`.
      root: (p, p) square root of the initial second moment S_0 = root root^T.
      steps: t.

    Returns:
      (E|Delta_t|^2, E|Delta_t|^4).
    """
    p = root.shape[0]
    eye = np.eye(p)
    gauss4 = (np.einsum("ab,cd->abcd", eye, eye) + np.einsum("ac,bd->abcd", eye, eye)
              + np.einsum("ad,bc->abcd", eye, eye))
    Q = np.einsum("ia,jb,kc,ld,abcd->ijkl", root, root, root, root, gauss4).ravel()
    S = (root @ root.T).ravel()
    T2, T4 = (np.linalg.matrix_power(enumerated_operator(g, eta, batch_size, replacement, k), steps)
              for k in (2, 4))
    return np.trace((T2 @ S).reshape(p, p)), np.einsum("aabb->", (T4 @ Q).reshape(p, p, p, p))


def operator_enumeration_error(rng: np.random.Generator) -> float:
    """Max |closed-form T - enumerated T| over random instances with n in {3, 4, 5} samples, p = 3,
    B in {1, 2, 3}, both sampling schemes (Section 1, check 1). Draws from ``rng`` in a fixed order.

    Args:
      rng: numpy generator of the instances and learning rates.

    Returns:
      The largest absolute entry difference.
    """
    err = 0.0
    for n, B, rep in itertools.product([3, 4, 5], [1, 2, 3], [True, False]):
        g = rng.standard_normal((n, 3)) * rng.uniform(0.3, 2, (n, 1))
        eta = rng.uniform(0.1, 1.0)
        closed = np.asarray(st.second_moment_operator(st.rank_one_hessians(g), eta, B, rep))
        err = max(err, np.max(np.abs(closed - enumerated_operator(g, eta, B, rep))))
    return err


class MomentCheck(NamedTuple):
    """Monte-Carlo second moment of the linearised SGD against the operator, one entry per case."""

    mean: list  # Monte-Carlo E|Delta_t|^2 / Tr S_0
    se: list  # its exact standard error (enumerated fourth moment)
    target: list  # Tr T^t(S_0) / Tr S_0
    rows: list  # (B, replacement, rho(T), mean, target, exact s.e., sample s.e.) for the table


def monte_carlo_moments(rng: np.random.Generator, key: jax.Array, runs: int, steps: int,
                        cases: Sequence[tuple[int, bool]] = ((1, True), (2, False), (2, True)),
                        ) -> tuple[MomentCheck, jax.Array]:
    """Section 1, check 2: for each (B, replacement), a random 5-sample, 3-parameter instance at
    eta = 1.05 eta*, Delta_0 ~ N(0, S_0) with S_0 the top (PSD) eigenvector of T, and ``runs``
    linearised-SGD runs of ``steps`` steps; the mean of |Delta_t|^2 against Tr T^t(S_0).

    Args:
      rng: numpy generator of the instances.
      key: JAX key (split once per case, as key, k1, k2).
      runs, steps: Monte-Carlo size and horizon.
      cases: the (B, replacement) pairs.

    Returns:
      (:class:`MomentCheck`, the key left after the splits).
    """
    out = MomentCheck([], [], [], [])
    for B, rep in cases:
        g = rng.standard_normal((5, 3)) * rng.uniform(0.3, 2, (5, 1))
        Hs = st.rank_one_hessians(g)
        eta = 1.05 * st.max_stable_lr(Hs, B, rep)
        T = np.asarray(st.second_moment_operator(Hs, eta, B, rep))
        w, V = np.linalg.eigh(T)
        S_top = V[:, -1].reshape(3, 3)
        S_top = 0.5 * (S_top + S_top.T) * np.sign(np.trace(S_top))
        ev, U = np.linalg.eigh(S_top)
        root = U * np.sqrt(np.clip(ev, 0, None))
        S0 = root @ root.T  # the second moment of Delta_0 (S_top up to rounding)
        key, k1, k2 = jax.random.split(key, 3)
        d0 = jax.random.normal(k1, (runs, 3)) @ root.T
        sq = np.asarray(st.linearized_sgd_sq_norms(Hs, eta, B, rep, k2, d0, steps))[:, -1]
        exact = np.trace((np.linalg.matrix_power(T, steps) @ S0.ravel()).reshape(3, 3)) / np.trace(S0)
        m2, m4 = exact_sq_norm_moments(g, eta, B, rep, root, steps)
        out.mean.append(sq.mean() / np.trace(S0))
        out.se.append(np.sqrt((m4 - m2**2) / runs) / np.trace(S0))  # the sample s.e. misses the tail
        out.target.append(exact)
        out.rows.append((B, rep, w[-1], out.mean[-1], exact, out.se[-1],
                         sq.std() / np.sqrt(runs) / np.trace(S0)))
    return out, key


def moment_table(check: MomentCheck, steps: int) -> str:
    """Markdown table of :func:`monte_carlo_moments`.

    Args:
      check: its result; steps: the horizon t.

    Returns:
      The table as a Markdown string.
    """
    head = (f"| B | replacement | ρ(𝒯) at 1.05 η* | Monte-Carlo E‖Δ_{steps}‖²/Tr S₀ "
            f"| Tr 𝒯^{steps}(S₀)/Tr S₀ | exact s.e. | sample s.e. |\n|---|---|---|---|---|---|---|\n")
    return head + "\n".join(f"| {b} | {r} | {rho:.5f} | {m:.4f} | {ex:.4f} | {se:.4f} | {ses:.4f} |"
                            for b, r, rho, m, ex, se, ses in check.rows)


# ============================================================================ Section 2: trace theorem

TRACE_CASES = ((1, True), (2, True), (3, True), (2, False), (3, False))


def random_instance(rng: np.random.Generator) -> np.ndarray:
    """A random rank-one instance of the trace theorem (Section 2).

    Args:
      rng: numpy generator (draws n, p, then the gradients and their norms).

    Returns:
      (n, p) Gaussian per-sample gradients with random norms in [0.2, 2], n in [2, 6], p in [1, 4].
    """
    n, p = int(rng.integers(2, 7)), int(rng.integers(1, 5))
    return rng.standard_normal((n, p)) * rng.uniform(0.2, 2.0, (n, 1))


class TraceSurvey(NamedTuple):
    """The trace theorem over random rank-one instances (Section 2)."""

    ratio: dict  # (B, replacement) -> (instances, 2): Tr H eta*/2 and c_{B,n} Tr H eta*/2
    edge_err: float  # max |rho(T(eta*)) - 1| over the first ``edge_checks`` instances, B = 1
    above_min: float  # min rho(T(eta* (1 + 1e-6))) - 1 over the same instances

    def worst(self, batch_size: int, replacement: bool, column: int) -> float:
        """Largest ratio over the instances of one sampling scheme.

        Args:
          batch_size: B; replacement: the scheme; column: 0 Tr H eta*/2 (B-free form),
            1 c_{B,n} Tr H eta*/2 (B-dependent form).

        Returns:
          The maximum over instances.
        """
        return float(self.ratio[(batch_size, replacement)][:, column].max())


def trace_survey(instances: list, edge_checks: int = 100) -> TraceSurvey:
    """Exact eta* (:func:`paperlib.stability.max_stable_lr`) of every instance for each (B, scheme) of
    ``TRACE_CASES`` (B-subsets only when B < n), with Tr H eta*/2 (the abstract's bound <= 1 at B = 1)
    and c_{B,n} Tr H eta*/2 (our B-dependent bound Tr H <= 2/(c_{B,n} eta)); the first
    ``edge_checks`` instances also confirm rho(T) = 1 at eta* and > 1 just above.

    Args:
      instances: list of (n, p) per-sample gradients.
      edge_checks: how many instances get the spectral-radius confirmation.

    Returns:
      :class:`TraceSurvey`.
    """
    rows, edge_err, above_min = {}, 0.0, np.inf
    for i, g in enumerate(instances):
        Hs = st.rank_one_hessians(g)
        trH = float(np.sum(g**2) / g.shape[0])
        for B, rep in TRACE_CASES:
            if not rep and B >= g.shape[0]:
                continue
            eta = st.max_stable_lr(Hs, B, rep)
            c = st.sampling_constant(g.shape[0], B, rep)
            rows.setdefault((B, rep), []).append((trH * eta / 2, c * trH * eta / 2))
            if B == 1 and i < edge_checks:
                rho = st.spectral_radius(st.second_moment_operator(Hs, eta, 1))
                rho_up = st.spectral_radius(st.second_moment_operator(Hs, eta * (1 + 1e-6), 1))
                edge_err = max(edge_err, abs(float(rho) - 1))
                above_min = min(above_min, float(rho_up) - 1)
    return TraceSurvey({k: np.array(v) for k, v in rows.items()}, edge_err, above_min)


def eta_star_by_batch(g: ArrayLike, batch_sizes: Sequence[int] = range(1, 7)) -> dict[bool, list[float]]:
    """eta*(B) of one instance for each batch size and both schemes (monotone in B, Section 2).

    Args:
      g: (n, p) per-sample gradients; batch_sizes: the B values (<= n).

    Returns:
      {replacement: [eta*(B) for B in batch_sizes]}.
    """
    Hs = st.rank_one_hessians(g)
    return {rep: [st.max_stable_lr(Hs, b, rep) for b in batch_sizes] for rep in (True, False)}


def six_sample_instance(instances: list, rng: np.random.Generator) -> np.ndarray:
    """The instance of the eta*(B) figure.

    Args:
      instances: list of (n, p) per-sample gradients; rng: draws a fresh one if none has n = 6.

    Returns:
      The first instance with n = 6 samples, else a (6, 3) Gaussian one.
    """
    six = [g for g in instances if g.shape[0] == 6]
    return six[0] if six else rng.standard_normal((6, 3))


def scheme(key: tuple) -> str:
    """Label of a sampling scheme.

    Args:
      key: (B, replacement).

    Returns:
      e.g. ``"B=2, with"``.
    """
    return f"B={key[0]}, {'with' if key[1] else 'without'}"


def trace_table(survey: TraceSurvey) -> str:
    """The largest ratios per (B, scheme), and a sentence on their tightness.

    Args:
      survey: :func:`trace_survey`'s result.

    Returns:
      Markdown string.
    """
    head = ("| B | sampling | instances | max Tr H·η*/2 (B-free form) "
            "| max c_{B,n}·Tr H·η*/2 (B-dependent form) |\n|---|---|---|---|---|\n")
    table = head + "\n".join(f"| {k[0]} | {'with' if k[1] else 'without'} replacement | {len(v)} "
                             f"| {v[:, 0].max():.3f} | {v[:, 1].max():.3f} |"
                             for k, v in survey.ratio.items())
    b1 = survey.ratio[(1, True)][:, 0].max()
    tight = max(float(v[:, 1].max()) for k, v in survey.ratio.items() if k[0] >= 2)
    return table + (
        f"\n\nAt B = 1 the trace bound is nearly attained (max ratio {b1:.5f}). For B ≥ 2 the "
        f"B-dependent bound 2/(c_{{B,n}} η) holds but is **far from tight** on these instances: the "
        f"largest c_{{B,n}}·Tr H·η*/2 is {tight:.2f}, i.e. Tr H reaches at most {tight:.0%} of the "
        f"bound, while the B-free form 2/η fails (up to {survey.ratio[(2, True)][:, 0].max():.2f} at "
        "B = 2 with replacement).")


def trace_figure(survey: TraceSurvey, g6: np.ndarray, eta_vs_B: dict) -> plt.Figure:
    """Ratios per (B, scheme) (B-free and B-dependent forms, jittered) and eta*(B) of a 6-sample
    instance against GD's 2/lambda_max(H).

    Args:
      survey: :func:`trace_survey`'s result; g6: (6, p) instance; eta_vs_B: :func:`eta_star_by_batch`.

    Returns:
      The figure (three panels).
    """
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    for j, v in enumerate(survey.ratio.values()):
        x = j + 0.25 * np.random.default_rng(j).uniform(-1, 1, len(v))
        axes[0].scatter(x, v[:, 0], s=4, alpha=0.5)
        axes[1].scatter(x, v[:, 1], s=4, alpha=0.5)
    titles = ["Tr H · η*/2  (B-free form: ≤ 1?)", "c_{B,n} · Tr H · η*/2  (exact form: ≤ 1)"]
    for ax, title in zip(axes[:2], titles):
        ax.axhline(1.0, color="k", ls="--", lw=1)
        ax.set_xticks(range(len(survey.ratio)), [scheme(k) + " repl." for k in survey.ratio],
                      rotation=30, ha="right", fontsize=7)
        ax.set_title(title)
    for rep, marker in [(True, "o"), (False, "s")]:
        axes[2].plot(range(1, 7), eta_vs_B[rep], marker=marker,
                     label=f"{'with' if rep else 'without'} replacement")
    axes[2].axhline(2 / np.linalg.eigvalsh(g6.T @ g6 / 6)[-1], color="k", ls=":",
                    label="GD: 2/λ_max(H)")
    axes[2].set(xlabel="batch size B", ylabel="η*(B)", title="largest stable η (n = 6)")
    axes[2].legend()
    return fig


# ============================================================================ Section 3: 2018 toy


class ToyResult(NamedTuple):
    """The Wu-Ma-E (2018) toy at one learning rate."""

    rho: list  # rho(T) for [SGD B=1 at x=1, SGD B=1 at x=0, GD (B=n=2) at x=1]
    closed: list  # the same from the closed form with a = 2, s = 1.8 (x = 1), s = 0 (x = 0)
    x_sgd: np.ndarray  # (runs,) SGD end points
    x_gd: float  # GD end point
    escaped: int  # SGD runs ending within 1e-3 of 0
    escape_low: float  # exact one-sided 99.865% Clopper-Pearson lower bound on the escape probability


def toy_experiment(eta: float, runs: int, key: jax.Array, steps: int = 500) -> ToyResult:
    """The 1-D criterion of the toy from the library operator and from the closed form
    (1 - eta a)^2 + eta^2 c s^2, then SGD (B = 1, ``runs`` keys) and GD from x = 1 + 1e-5.

    Args:
      eta: learning rate; runs: SGD runs; key: JAX key split into the runs' keys; steps: per run.

    Returns:
      :class:`ToyResult`.
    """
    rho = [float(st.spectral_radius(st.second_moment_operator(st.toy_hessians(x), eta, 1)))
           for x in (1.0, 0.0)]
    rho.append(float(st.spectral_radius(st.second_moment_operator(st.toy_hessians(1.0), eta, 2,
                                                                  replacement=False))))
    closed = [(1 - eta * 2.0) ** 2 + eta**2 * 1.8**2, (1 - eta * 2.0) ** 2, (1 - eta * 2.0) ** 2]
    keys = jax.random.split(key, runs)
    x_sgd = np.asarray(st.toy_run(1 + 1e-5, eta, steps, keys, sgd=True))
    x_gd = float(np.asarray(st.toy_run(1 + 1e-5, eta, steps, keys[:1], sgd=False))[0])
    n_esc = int(np.sum(np.abs(x_sgd) < 1e-3))
    low = float(beta_dist.ppf(0.00135, n_esc, runs - n_esc + 1)) if n_esc else 0.0
    return ToyResult(rho, closed, x_sgd, x_gd, n_esc, low)


def toy_note(toy: ToyResult, eta: float) -> str:
    """One Markdown line with the toy's spectral radii rho(T) (Section 3).

    Args:
      toy: :func:`toy_experiment`'s result; eta: its learning rate.

    Returns:
      Markdown string.
    """
    return (f"ρ(𝒯) at η = {eta}: SGD at x = 1 **{toy.rho[0]:.4f}**, at x = 0 {toy.rho[1]:.4f}, "
            f"GD at x = 1 {toy.rho[2]:.4f}.")


def toy_figure(toy: ToyResult, eta: float) -> plt.Figure:
    """The toy's losses with the SGD/GD end points, and the exact 1-D stable region at ``eta``.

    Args:
      toy: :func:`toy_experiment`'s result; eta: its learning rate.

    Returns:
      The figure (two panels).
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    xs = jnp.linspace(-0.6, 1.6, 600)
    fs = np.asarray(jax.vmap(st.toy_sample_losses)(xs))
    axes[0].plot(xs, fs[:, 0], ":", label="f₁")
    axes[0].plot(xs, fs[:, 1], ":", label="f₂")
    axes[0].plot(xs, fs.mean(1), "k", label="f = (f₁+f₂)/2")
    runs = len(toy.x_sgd)
    axes[0].hist(toy.x_sgd, bins=40, range=(-0.6, 1.6), weights=np.full(runs, 0.4 / runs),
                 color="C3", alpha=0.6, label="SGD endpoints (scaled)")
    axes[0].axvline(toy.x_gd, color="C2", ls="--", label="GD endpoint")
    axes[0].set(ylim=(0, 0.5), xlabel="x", title="2018 toy: both minima have a = 2")
    A, S = np.meshgrid(np.linspace(0, 3.2, 300), np.linspace(0, 2.5, 300))
    for B, ls in [(1, "-"), (2, "--"), (3, ":")]:
        axes[1].contour(A, S, (1 - eta * A) ** 2 + eta**2 * S**2 / B, levels=[1.0], colors="k",
                        linestyles=ls)
        axes[1].plot([], [], "k" + ls, label=f"stable region edge, B={B} (with repl.)")
    a_s = {x: (float(np.mean(h)), float(np.std(h)))
           for x in (0.0, 1.0) for h in [np.asarray(st.toy_hessians(x)).ravel()]}
    axes[1].scatter([a_s[0.0][0], a_s[1.0][0]], [a_s[0.0][1], a_s[1.0][1]], c=["C2", "C3"], zorder=3)
    for x in (0.0, 1.0):
        axes[1].annotate(f"x = {x:g}", (a_s[x][0] + 0.05, a_s[x][1] + 0.05))
    axes[1].set(xlabel="sharpness a", ylabel="non-uniformity s", title=f"exact 1-D criterion at η = {eta}")
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


# ============================================================================ Section 4: identities


def imbalance_error(theta: jax.Array, X: jax.Array, y: jax.Array, key: jax.Array,
                    cases: Sequence[tuple[int, float]] = ((0, 0.01), (7, 0.03))) -> float:
    """Largest relative error of a'^2 - b'^2 = (a^2 - b^2)(1 - eta^2 g^2), g = dL_i/dbeta, after one
    SGD step of the library trainer on sample i alone, for each (i, eta) in ``cases``.

    Args:
      theta: (2d,) diagonal-net parameters (a, b); X: (n, d); y: (n,); key: trainer key.

    Returns:
      max over cases of max_j |error_j| / max_j |prediction_j|.
    """
    err = 0.0
    a0, b0 = np.split(np.asarray(theta), 2)
    for i, eta in cases:
        one = st.train(st.dln_predict, theta, X[i:i + 1], y[i:i + 1], [eta], steps=1, batch_size=1,
                       key=key, record_every=1)
        a1, b1 = np.split(np.asarray(one.theta[0]), 2)
        gb = (np.asarray(X[i]) @ (a0 * b0) - float(y[i])) * np.asarray(X[i])
        pred = (a0**2 - b0**2) * (1 - eta**2 * gb**2)
        err = max(err, np.max(np.abs(a1**2 - b1**2 - pred)) / np.max(np.abs(pred)))
    return err


def identity_errors(Xd: jax.Array, yd: jax.Array, Xr: jax.Array, key_init: jax.Array,
                    key_step: jax.Array, width: int = 100) -> dict[str, float]:
    """Section 4's exact identities at random initialisations, each as a relative error: the
    closed-form Tr G of the diagonal net (:func:`paperlib.stability.dln_trace`) and of the ReLU net
    (:func:`paperlib.stability.relu_trace`) against the trace of the autodiff Gram matrix J J^T/n,
    and the one-step imbalance identity (:func:`imbalance_error`).

    Args:
      Xd: (n, d) diagonal-net inputs; yd: (n,) its labels; Xr: (n', d') ReLU-net inputs.
      key_init: key of both initialisations (diagonal net N(0, 1); ReLU net a ~ N(0, 1),
        w ~ N(0, I/d')); key_step: trainer key of the imbalance step.
      width: hidden width m of the ReLU net.

    Returns:
      {"dln_trace", "imbalance", "relu_trace"}: relative errors (float).
    """
    th = st.dln_init(key_init, Xd.shape[1])
    thr = st.relu_init(key_init, width, Xr.shape[1], 1 / np.sqrt(Xr.shape[1]))
    out = {"imbalance": imbalance_error(th, Xd, yd, key_step)}
    for name, trace, theta, predict, X in [("dln_trace", st.dln_trace, th, st.dln_predict, Xd),
                                           ("relu_trace", st.relu_trace, thr, st.relu_predict, Xr)]:
        gram = float(st.gauss_newton_sharpness(predict, theta, X).trace)
        out[name] = abs(float(trace(theta, X)) - gram) / gram
    return out


# ============================================================================ Sections 5-6: sweeps


def sweep(predict: Callable, init_fn: Callable, X: jax.Array, Y: jax.Array, lrs: Sequence[float], seeds: int,
          steps: int, batch_size: int | None, key: jax.Array, warm: bool,
          warmup_fraction: float) -> tuple[st.Run, np.ndarray, jax.Array]:
    """One run per (seed, lr), seed-major, all vmapped in one trainer; with ``warm`` a geometric
    warm-up from 0.5/Tr G(theta_0) over ``warmup_fraction`` of the steps (our recipe).

    Args:
      predict: f(theta, x); init_fn: key -> (p,) initial parameters.
      X: (n, d) inputs; Y: (n,) or (n, k) targets.
      lrs: learning rates; seeds: initialisations per learning rate.
      steps: training steps (a multiple of 20); batch_size: B, or None for GD.
      key: split into one init key per seed and one trainer key.
      warm: use the warm-up; warmup_fraction: its share of the steps.

    Returns:
      (Run with R = seeds * len(lrs) runs, (R,) learning rate per run, (R, p) theta_0 per run).
    """
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


def measures(predict: Callable, run: st.Run, X: jax.Array) -> np.ndarray:
    """Exact Gauss-Newton Tr G, ||G||_F, lambda_max(G) at every final iterate of ``run``.

    Args:
      predict: f(theta, x); run: a trainer result with R final iterates; X: (n, d) inputs.

    Returns:
      (R, 3) array, NaN rows for diverged runs.
    """
    out = np.full((run.theta.shape[0], 3), np.nan)
    for i, (th, bad) in enumerate(zip(run.theta, np.asarray(run.diverged))):
        if not bad:
            out[i] = [float(v) for v in st.gauss_newton_sharpness(predict, th, X)]
    return out


def sgd_and_gd(predict: Callable, init_fn: Callable, X: jax.Array, Y: jax.Array, plans: dict,
               seeds: int, warmup_fraction: float, converged: float = CONVERGED) -> dict[str, dict]:
    """:func:`sweep` for each method of ``plans`` and the sharpness of its solutions.

    Args:
      predict: f(theta, x); init_fn: key -> (p,) initial parameters.
      X: (n, d) inputs; Y: (n,) or (n, k) targets.
      plans: {method: (lrs, steps, batch_size or None, key, warm)}.
      seeds, warmup_fraction: as in :func:`sweep`.
      converged: a run counts as converged when not diverged and its train loss is below this.

    Returns:
      {method: dict(run, L (R,), th0 (R, p), sharp (R, 3) from :func:`measures`, ok (R,) bool)}.
    """
    out = {}
    for method, (lrs, steps, bs, key, warm) in plans.items():
        run, L, th0 = sweep(predict, init_fn, X, Y, lrs, seeds, steps, bs, key, warm, warmup_fraction)
        ok = ~np.asarray(run.diverged) & (np.asarray(run.final_loss) < converged)
        out[method] = dict(run=run, L=L, th0=th0, sharp=measures(predict, run, X), ok=ok)
        print(method, "diverged:", int(np.sum(np.asarray(run.diverged))), "converged:", int(ok.sum()),
              "of", len(L))
    return out


def dln_sweeps(X: jax.Array, y: jax.Array, beta_star: jax.Array, cfg: SimpleNamespace,
               key_sgd: jax.Array, key_gd: jax.Array) -> dict[str, dict]:
    """Section 5: the diagonal net's SGD (B = 1, warm-up) and GD (constant eta) sweeps of ``cfg``
    (:func:`sgd_and_gd`) with :func:`add_dln_summaries`.

    Args:
      X: (n, d) inputs; y: (n,) labels; beta_star: (d,) teacher.
      cfg: settings (``dln_lrs``, ``dln_gd_lrs``, ``dln_sgd_steps``, ``dln_gd_steps``,
        ``dln_seeds``, ``warmup_fraction``).
      key_sgd, key_gd: keys of the two sweeps.

    Returns:
      {"SGD", "GD": sweep dict}.
    """
    plans = {"SGD": (cfg.dln_lrs, cfg.dln_sgd_steps, 1, key_sgd, True),
             "GD": (cfg.dln_gd_lrs, cfg.dln_gd_steps, None, key_gd, False)}
    res = sgd_and_gd(st.dln_predict, lambda k: st.dln_init(k, X.shape[1]), X, y, plans,
                     cfg.dln_seeds, cfg.warmup_fraction)
    add_dln_summaries(res, X, beta_star)
    return res


def relu_sweeps(X: jax.Array, y: jax.Array, X_test: jax.Array, y_test: jax.Array,
                cfg: SimpleNamespace, key_sgd: jax.Array, key_gd: jax.Array,
                width: int = 100) -> dict[str, dict]:
    """Section 6: the two-layer ReLU net's SGD (B = 1, warm-up) and GD sweeps of ``cfg`` from
    a_j ~ N(0, 1), w_j ~ N(0, I/d) (:func:`sgd_and_gd`) with :func:`add_relu_summaries`.

    Args:
      X: (n, d) inputs; y: (n,) teacher labels; X_test: (n_test, d); y_test: (n_test,).
      cfg: settings (``relu_sgd_lrs``, ``relu_gd_lrs``, ``relu_sgd_steps``, ``relu_gd_steps``,
        ``relu_seeds``, ``warmup_fraction``).
      key_sgd, key_gd: keys of the two sweeps; width: hidden width m.

    Returns:
      {"SGD", "GD": sweep dict}.
    """
    d = X.shape[1]
    plans = {"SGD": (cfg.relu_sgd_lrs, cfg.relu_sgd_steps, 1, key_sgd, True),
             "GD": (cfg.relu_gd_lrs, cfg.relu_gd_steps, None, key_gd, False)}
    res = sgd_and_gd(st.relu_predict, lambda k: st.relu_init(k, width, d, 1 / np.sqrt(d)), X, y,
                     plans, cfg.relu_seeds, cfg.warmup_fraction)
    add_relu_summaries(res, X_test, y_test)
    return res


def add_dln_summaries(res: dict, X: jax.Array, beta_star: jax.Array) -> None:
    """Adds to each method of a diagonal-net :func:`sgd_and_gd` result, in place: ``l1`` (R,)
    ||beta||_1, ``test`` (R,) 1/2 ||beta - beta*||^2 (the test error for x ~ N(0, I)), ``balance``
    (R,) r(theta), and ``init`` (R, 2) Tr G and lambda_max(G) at theta_0.

    Args:
      res: {method: dict} from :func:`sgd_and_gd`; X: (n, d) training inputs; beta_star: (d,).

    Returns:
      None (``res`` is updated).
    """
    for r in res.values():
        beta = np.asarray(jax.vmap(st.dln_beta)(r["run"].theta))
        r["l1"] = np.abs(beta).sum(1)
        r["test"] = 0.5 * np.sum((beta - np.asarray(beta_star)) ** 2, 1)
        r["balance"] = np.asarray(jax.vmap(st.dln_balance)(r["run"].theta))
        r["init"] = np.array([[float(s.trace), float(s.lambda_max)]
                              for s in (st.gauss_newton_sharpness(st.dln_predict, t, X) for t in r["th0"])])


def add_relu_summaries(res: dict, X_test: jax.Array, y_test: jax.Array) -> None:
    """Adds to each method of a ReLU-net :func:`sgd_and_gd` result, in place: ``test`` (R,) 1/2 MSE
    on the test set, ``path`` (R,) the path norm ||theta||_P (NaN for diverged runs) and the input
    dimension ``d``.

    Args:
      res: {method: dict} from :func:`sgd_and_gd`; X_test: (n_test, d); y_test: (n_test,).

    Returns:
      None (``res`` is updated).
    """
    d = X_test.shape[1]
    for r in res.values():
        r["d"] = d
        bad = np.asarray(r["run"].diverged)
        r["test"] = np.array([float(st.full_loss(st.relu_predict, t, X_test, y_test)) if not b else np.nan
                              for t, b in zip(r["run"].theta, bad)])
        path = jax.vmap(partial(st.relu_path_norm, d=d))(r["run"].theta)
        r["path"] = np.where(bad, np.nan, np.asarray(path))


def per_lr_mean(res: dict, field: str, lrs: Sequence[float]) -> np.ndarray:
    """Mean of ``res[field]`` over the converged runs at each learning rate.

    Args:
      res: one method's sweep dict (``L``, ``ok``, ``field``); field: a per-run (R,) entry; lrs: grid.

    Returns:
      (len(lrs),) means, NaN where no run converged.
    """
    sel = [(res["L"] == lr) & res["ok"] for lr in lrs]
    return np.array([np.mean(res[field][s]) if np.any(s) else np.nan for s in sel])


def per_seed(res: dict, values: ArrayLike, lrs: Sequence[float]) -> np.ndarray:
    """A per-run quantity as a table, one row per seed (runs are seed-major).

    Args:
      res: one method's sweep dict (``ok``); values: (R,) per-run values; lrs: the grid.

    Returns:
      (seeds, len(lrs)) array, NaN where the run did not converge.
    """
    return np.where(res["ok"], values, np.nan).reshape(-1, len(lrs))


def spread(v: ArrayLike) -> float:
    """Relative spread (max - min) / mean, ignoring NaN.

    Args:
      v: values, any shape.

    Returns:
      The spread.
    """
    return float((np.nanmax(v) - np.nanmin(v)) / np.nanmean(v))


def max_ratio(res: dict, column: int, sel: np.ndarray | None = None) -> float:
    """Sharpness against the stability bound 2/eta: max over runs of sharpness[:, column] * eta / 2.

    Args:
      res: one method's sweep dict; column: 0 Tr G, 1 ||G||_F, 2 lambda_max(G);
      sel: (R,) bool runs to include (default: the converged ones).

    Returns:
      The largest ratio.
    """
    sel = res["ok"] if sel is None else sel
    return float(np.max(res["sharp"][sel, column] * res["L"][sel] / 2))


def seed_trend(res: dict, field: str, lrs: Sequence[float], converged_only: bool = True) -> list[float]:
    """Spearman correlation of ``res[field]`` with the learning rate, one value per seed, over the
    learning rates where that seed's run converged (``converged_only``), or over all of them (then
    a run that did not converge makes that seed's value NaN).

    Args:
      res: one method's sweep dict; field: a per-run entry; lrs: the grid.
      converged_only: drop the learning rates where the seed's run did not converge.

    Returns:
      One correlation per seed (-1: strictly falling with eta).
    """
    rows = per_seed(res, res[field], lrs)
    if not converged_only:
        return [float(spearmanr(lrs, r)[0]) for r in rows]
    return [float(spearmanr(np.asarray(lrs)[~np.isnan(r)], r[~np.isnan(r)])[0]) for r in rows]


def last_lr_ratio(res: dict, column: int, lrs: Sequence[float]) -> np.ndarray:
    """sharpness[:, column] * eta / 2 at the largest learning rate, per seed.

    Args:
      res: one method's sweep dict; column: as in :func:`max_ratio`; lrs: the grid.

    Returns:
      (seeds,) ratios, NaN where the run did not converge.
    """
    return per_seed(res, res["sharp"][:, column] * res["L"] / 2, lrs)[:, -1]


def max_path_ratio(res: dict) -> float:
    """max over converged ReLU runs of sqrt(d) ||theta||_P / Tr G (<= 1 by AM-GM in the population
    form of :func:`paperlib.stability.relu_trace`).

    Args:
      res: a ReLU method's sweep dict after :func:`add_relu_summaries`.

    Returns:
      The largest ratio.
    """
    ok = res["ok"]
    return float(np.max(np.sqrt(res["d"]) * res["path"][ok] / res["sharp"][ok, 0]))


def converged_lrs(res: dict, lrs: Sequence[float]) -> list[list[float]]:
    """The learning rates at which each seed's run converged.

    Args:
      res: one method's sweep dict; lrs: the grid.

    Returns:
      One list of learning rates per seed.
    """
    return [[lr for lr, c in zip(lrs, row) if c] for row in res["ok"].reshape(-1, len(lrs))]


def gd_flat_spread(G: dict, lrs: Sequence[float]) -> tuple[list[float], list[float]]:
    """GD below its edge (eta lambda_max(G(theta_0)) < 2 for every seed), where the paper's GD curves
    are flat.

    Args:
      G: the diagonal net's GD sweep dict after :func:`add_dln_summaries`; lrs: the GD grid.

    Returns:
      (the flat learning rates, [largest over seeds of the relative spread across them of Tr G,
      ||beta||_1, test error]).
    """
    flat = G["L"] * G["init"][:, 1] < 2
    flat_lrs = [lr for lr in lrs if np.all(flat[G["L"] == lr])]
    Gf = {**G, "ok": G["ok"] & flat}
    spreads = [max(spread(row[:len(flat_lrs)]) for row in per_seed(Gf, v, lrs))
               for v in (G["sharp"][:, 0], G["l1"], G["test"])]
    return flat_lrs, spreads


def lr_figure(res_sgd: dict, res_gd: dict, lrs_sgd: Sequence[float], lrs_gd: Sequence[float],
              norm_field: str, norm_label: str, test_label: str, title: str) -> plt.Figure:
    """Sharpness, norm and test error against the learning rate for SGD (solid) and GD (dashed),
    seed means of converged runs, red bands at diverged learning rates (Sections 5-6).

    Args:
      res_sgd, res_gd: the two methods' sweep dicts; lrs_sgd, lrs_gd: their grids.
      norm_field: the per-run norm entry ("l1" or "path"); norm_label, test_label: axis labels;
        title: the figure title (:data:`DLN_FIGURE`, :data:`RELU_FIGURE` hold all four).

    Returns:
      The figure (three panels).
    """
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


def sweep_table(res: dict, columns: dict[str, Callable]) -> str:
    """One row per run: method, eta, Tr G eta/2, lambda_max eta/2 and ``columns``.

    Args:
      res: {method: sweep dict}; columns: {header: f(sweep dict, run index) -> str}
        (:data:`DLN_COLUMNS`, :data:`RELU_COLUMNS`).

    Returns:
      Markdown string.
    """
    head = "| method | η | Tr G·η/2 | λ_max·η/2 | " + " | ".join(columns) + " |\n"
    head += "|---" * (4 + len(columns)) + "|\n"
    return head + "\n".join(
        f"| {m} | {lr:g} | {s[0] * lr / 2:.3f} | {s[2] * lr / 2:.3f} | "
        + " | ".join(f(r, i) for f in columns.values()) + " |"
        for m, r in res.items() for i, (lr, s) in enumerate(zip(r["L"], r["sharp"])))


DLN_COLUMNS = {"‖β‖₁": lambda r, i: f"{r['l1'][i]:.1f}", "test": lambda r, i: f"{r['test'][i]:.3g}",
               "balance r": lambda r, i: f"{r['balance'][i]:.2f}"}
RELU_COLUMNS = {"√d‖θ‖_P/Tr G":
                lambda r, i: f"{np.sqrt(r['d']) * r['path'][i] / r['sharp'][i, 0]:.3f}",
                "path norm": lambda r, i: f"{r['path'][i]:.1f}",
                "test": lambda r, i: f"{r['test'][i]:.3g}",
                "train loss": lambda r, i: f"{float(r['run'].final_loss[i]):.1e}"}


# lr_figure's (norm_field, norm_label, test_label, title) per network
DLN_FIGURE = ("l1", "‖β‖₁", "½‖β − β*‖²", "Diagonal linear net, d=1000, n=300")
RELU_FIGURE = ("path", "path norm ‖θ‖_P", "test ½MSE", "Two-layer ReLU net, k=10, d=100, m=100, n=300")


def dln_notes(dln: dict, lrs_sgd: Sequence[float], lrs_gd: Sequence[float],
              flat_lrs: Sequence[float], flat_spread: Sequence[float]) -> str:
    """The diagonal net's sharpness at theta_0, GD's edge, and GD past it.

    Args:
      dln: {method: sweep dict}; lrs_sgd, lrs_gd: the grids; flat_lrs, flat_spread:
        :func:`gd_flat_spread`.

    Returns:
      Markdown string.
    """
    S, G = dln["SGD"], dln["GD"]
    edge_txt = " to ".join(sorted({f"{2 / v:.3f}" for v in (G["init"][:, 1].max(), G["init"][:, 1].min())}))
    last = per_seed(G, G["sharp"][:, 2] * G["L"] / 2, lrs_gd)[:, -1]
    tr0 = ", ".join(f"{v:.0f}" for v in S["init"][::len(lrs_sgd), 0])
    lam0 = ", ".join(f"{v:.1f}" for v in G["init"][::len(lrs_gd), 1])
    return (f"At the initialisations Tr G(θ₀) = {tr0} and λ_max(G(θ₀)) = {lam0}: SGD without "
            f"warm-up would start unstable at every η > {2 / S['init'][:, 0].min():.2g}; GD's edge "
            f"2/λ_max(G(θ₀)) is at η ≈ {edge_txt}, so GD's stability binds only at "
            f"η = {', '.join(f'{lr:g}' for lr in lrs_gd if lr not in flat_lrs)} on our grid.\n\n"
            f"GD below its edge (η ∈ {flat_lrs}): largest relative spread over initialisations of Tr G "
            f"{flat_spread[0]:.1%}, ‖β‖₁ {flat_spread[1]:.1%}, test error {flat_spread[2]:.1%} "
            "(claim: < 5%). "
            f"At η = {lrs_gd[-1]:g}, past the edge, GD ends at λ_max η/2 = "
            f"{', '.join(f'{v:.3f}' for v in last)} and its ‖β‖₁ falls to "
            f"{', '.join(f'{v:.0f}' for v in per_seed(G, G['l1'], lrs_gd)[:, -1])}.")


def perturbation_check(predict: Callable, G: dict, X: jax.Array, Y: jax.Array, key: jax.Array,
                       eps: float = 1e-4, steps: int = 300) -> tuple[float, float, float]:
    """The converged GD minimum with the largest eta, kicked by ``eps`` along G's top eigenvector:
    loss growth at its own eta (stable: order one) and at 1.05 * 2/lambda_max(G) (unstable: grows).

    Args:
      predict: f(theta, x); G: the GD sweep dict; X: (n, d) inputs; Y: (n,) targets;
      key: trainer key; eps: kick size; steps: GD steps after the kick.

    Returns:
      (eta, growth at eta, growth at 1.05 * 2/lambda_max).
    """
    j = int(np.flatnonzero(G["ok"])[np.argmax(G["L"][G["ok"]])])
    theta, eta = G["run"].theta[j], float(G["L"][j])
    J = linalg.output_jacobian(predict, theta, X)
    w, U = np.linalg.eigh(np.asarray(linalg.gram(J)))
    v_top = jnp.asarray(np.asarray(J).T @ U[:, -1])  # top eigenvector of G = J^T J / n
    kick = dict(direction=v_top, eps=eps, steps=steps, batch_size=None, key=key)
    stable = float(st.perturbation_growth(predict, theta, X, Y, eta, **kick))
    unstable = float(st.perturbation_growth(predict, theta, X, Y, 1.05 * 2 / w[-1], **kick))
    return eta, stable, unstable


# ============================================================================ Section 7: 2018 companion


def companion_data(real: ImageSet | None, n: int) -> tuple[jax.Array, jax.Array, str]:
    """Inputs and one-hot targets of the 2018 scatter: the first ``n`` FashionMNIST training images,
    flattened, pixels/255 (the 2018 code), when ``real`` is given; else scikit-learn's 8x8 digits,
    pixels/16 (the labelled proxy).

    Args:
      real: the FashionMNIST ``ImageSet`` (``image_sets.load_if_wanted``) or None.
      n: training samples.

    Returns:
      (X (n, 784 or 64) float, Y (n, 10) one-hot, "FashionMNIST" or "digits proxy").
    """
    if real is None:
        from sklearn.datasets import load_digits
        images, labels = load_digits(return_X_y=True)
        scale, label = 16.0, "digits proxy"
    else:
        images, labels = real.X_train, real.y_train
        scale, label = 255.0, "FashionMNIST"
    if not 10 <= n <= len(images):
        raise ValueError(f"digits_n must lie in [10, {len(images)}] for the {label}, got {n}")
    X = np.asarray(images[:n], dtype=np.float64).reshape(n, -1) / scale
    return jnp.asarray(X), jnp.asarray(np.eye(10)[np.asarray(labels[:n])]), label


class DigitsRun(NamedTuple):
    """GD or SGD on the 2018 data at every learning rate, stopped at the 2018 rule."""

    sharp: np.ndarray  # lambda_max of the loss Hessian per learning rate (NaN if diverged)
    nu: np.ndarray  # non-uniformity sqrt(lambda_max(Sigma)) per learning rate
    loss: np.ndarray  # final training loss per learning rate
    steps: int  # steps taken


def train_to_minimum(predict: Callable, theta0: jax.Array, X: jax.Array, Y: jax.Array, lrs: Sequence[float],
                     batch_size: int | None, max_steps: int, min_loss: float,
                     key: jax.Array) -> tuple[st.Run, int]:
    """GD/SGD (B-subsets) from theta0 at every lr in chunks of max_steps/10 steps, until every run's
    training loss is below ``min_loss`` (the 2018 stopping rule), every run diverged, or max_steps.

    Args:
      predict: f(theta, x); theta0: (p,) start; X: (n, d) inputs; Y: (n, k) targets.
      lrs: learning rates (one run each); batch_size: B, or None for GD; max_steps: a multiple
        of 100; min_loss: the stopping level; key: batch key (split per chunk).

    Returns:
      (the Run of the last chunk, steps taken).
    """
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


def digits_run(predict: Callable, theta0: jax.Array, X: jax.Array, Y: jax.Array, lrs: Sequence[float],
               batch_size: int | None, max_steps: int, min_loss: float, key: jax.Array,
               key_eig: jax.Array) -> DigitsRun:
    """:func:`train_to_minimum`, then the 2018 sharpness (Hessian lambda_max) and non-uniformity
    sqrt(lambda_max(Sigma)) (Lanczos, 20 steps for the latter) at every non-diverged solution.

    Args:
      predict, theta0, X, Y, lrs, batch_size, max_steps, min_loss, key: as in
        :func:`train_to_minimum`; key_eig: start vector key of the Lanczos runs.

    Returns:
      :class:`DigitsRun` with (len(lrs),) arrays.
    """
    run, done = train_to_minimum(predict, theta0, X, Y, lrs, batch_size, max_steps, min_loss, key)
    ok = ~np.asarray(run.diverged)
    sh = [float(st.hessian_lambda_max(predict, t, X, Y, key_eig)) if b else np.nan
          for t, b in zip(run.theta, ok)]
    nu = [float(st.nonuniformity(predict, t, X, Y, key_eig, 20)) if b else np.nan
          for t, b in zip(run.theta, ok)]
    return DigitsRun(np.array(sh), np.array(nu), np.asarray(run.final_loss), done)


def companion_proxy(real: ImageSet | None, cfg: SimpleNamespace) -> str:
    """The figure's proxy label: what stands in for the 2018 data and networks.

    Args:
      real: the FashionMNIST set or None (digits proxy); cfg: settings (``digits_n``, ``digits_width``).

    Returns:
      The label for ``figures.publish(..., proxy=...)``.
    """
    if real is None:
        return ("scikit-learn 8x8 digits and a small MLP stand in for FashionMNIST / CIFAR-10 and the "
                "2018 networks")
    return (f"FashionMNIST (first {cfg.digits_n}) with a width-{cfg.digits_width} MLP stands in for the "
            "2018 width-500 network; no CIFAR-10 run")


def companion_runs(X: jax.Array, Y: jax.Array, width: int, lrs: Sequence[float],
                   batch_sizes: Sequence[int], gd_steps: int, sgd_steps: int, key: jax.Array,
                   min_loss: float = DIGITS_MIN_LOSS) -> tuple[dict, jax.Array]:
    """The 2018 scatter: a (d_in, width, width, 10) ReLU MLP from one PyTorch-default init, trained by
    GD and by SGD at each batch size (:func:`digits_run`).

    Args:
      X: (n, d_in) inputs; Y: (n, 10) one-hot targets; width: hidden width; lrs: learning rates.
      batch_sizes: SGD batch sizes; gd_steps, sgd_steps: at most this many steps.
      key: JAX key (init, Lanczos start, one per run); min_loss: the stopping level.

    Returns:
      ({"GD" or B: :class:`DigitsRun`}, the key left after the splits).
    """
    widths = (X.shape[1], width, width, 10)
    mlp = partial(st.mlp_apply, widths=widths)
    key, k_init, _, k_eig = jax.random.split(key, 4)
    theta0 = st.mlp_init(k_init, widths)
    runs = {}
    for B in [None] + list(batch_sizes):
        key, k = jax.random.split(key)
        runs["GD" if B is None else B] = digits_run(mlp, theta0, X, Y, lrs, B,
                                                    gd_steps if B is None else sgd_steps, min_loss, k,
                                                    k_eig)
    return runs, key


def companion_experiment(real: ImageSet | None, cfg: SimpleNamespace,
                         key: jax.Array) -> tuple[dict, str, jax.Array]:
    """Section 7 end to end: :func:`companion_data` then :func:`companion_runs` at the settings of
    ``cfg``.

    Args:
      real: the FashionMNIST ``ImageSet`` or None (the digits proxy).
      cfg: settings (``digits_n``, ``digits_width``, ``digits_lrs``, ``digits_batches``,
        ``digits_gd_steps``, ``digits_sgd_steps``).
      key: JAX key.

    Returns:
      ({"GD" or B: :class:`DigitsRun`}, the data's name, the key left after the splits).
    """
    X, Y, data = companion_data(real, cfg.digits_n)
    runs, key = companion_runs(X, Y, cfg.digits_width, cfg.digits_lrs, cfg.digits_batches,
                               cfg.digits_gd_steps, cfg.digits_sgd_steps, key)
    return runs, data, key


def companion_figure(runs: dict, lrs: Sequence[float], n: int) -> plt.Figure:
    """Sharpness against non-uniformity per learning rate, with 2/eta and the 2018 lines
    sqrt(B(n-1)/(n-B))/eta.

    Args:
      runs: :func:`companion_runs`' result; lrs: the grid; n: training samples.

    Returns:
      The figure (one panel per learning rate).
    """
    fig, axes = plt.subplots(1, len(lrs), figsize=(4.2 * len(lrs), 3.5), squeeze=False)
    for ax, (i, eta) in zip(axes[0], enumerate(lrs)):
        for j, (tag, res) in enumerate(runs.items()):
            ax.scatter(res.sharp[i], res.nu[i], color=f"C{j}", s=30,
                       label="GD" if tag == "GD" else f"SGD B={tag}")
            if tag != "GD":
                ax.axhline(np.sqrt(tag * (n - 1) / (n - tag)) / eta, color=f"C{j}", ls=":", lw=1)
        ax.axvline(2 / eta, color="k", ls="--", lw=1, label="2/η")
        ax.set(xlabel="sharpness λ_max(H)", ylabel="non-uniformity √λ_max(Σ)",
               title=f"η = {eta:g}, n = {n}")
        ax.legend(fontsize=7)
    fig.suptitle("2018 companion: sharpness vs non-uniformity (dotted: √(B(n−1)/(n−B))/η)")
    return fig


def companion_table(runs: dict, lrs: Sequence[float]) -> str:
    """Per run, steps and at each eta lambda_max eta/2, non-uniformity, train loss; then a sentence
    on GD's edge and SGD's flatness.

    Args:
      runs: :func:`companion_runs`' result; lrs: the grid.

    Returns:
      Markdown string.
    """
    head = ("| run | steps | " + " | ".join(f"η={lr:g}: λ_max·η/2, s, train loss" for lr in lrs)
            + " |\n|---|---|" + "---|" * len(lrs) + "\n")
    rows = "\n".join(f"| {'GD' if t == 'GD' else f'SGD B={t}'} | {r.steps} | " + " | ".join(
        f"{r.sharp[i] * lr / 2:.3f}, {r.nu[i]:.2f}, {r.loss[i]:.1e}" for i, lr in enumerate(lrs)) + " |"
        for t, r in runs.items())
    gd, bmin = runs["GD"], min(k for k in runs if k != "GD")
    return head + rows + (
        f"\n\nGD stopped after {gd.steps} steps at train loss {', '.join(f'{v:.1e}' for v in gd.loss)} "
        f"with λ_max η/2 = {', '.join(f'{v:.3f}' for v in gd.sharp * np.asarray(lrs) / 2)} (η = {lrs}); "
        f"SGD with B = {bmin} is flatter by a factor "
        f"{', '.join(f'{v:.2f}' for v in runs[bmin].sharp / gd.sharp)}.")


# ============================================================================ Section 8: anchors


def relu_jacobian_numpy(theta: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Per-sample output gradients of f = sum_j a_j relu(w_j . x) written out by hand in numpy:
    df/da_j = relu(w_j . x), df/dw_j = a_j 1{w_j . x > 0} x.

    Args:
      theta: (m (d + 1),) parameters (a, W.ravel()); X: (n, d).

    Returns:
      (n, m (d + 1)) Jacobian, rows (df/da, df/dW.ravel()).
    """
    m = theta.size // (X.shape[1] + 1)
    a, W = theta[:m], theta[m:].reshape(m, -1)
    Z = X @ W.T
    dW = ((a * (Z > 0))[:, :, None] * X[:, None, :]).reshape(len(X), -1)
    return np.concatenate([np.maximum(Z, 0), dW], 1)


def numpy_relu_sharpness(theta: ArrayLike, X: ArrayLike) -> np.ndarray:
    """Tr G, ||G||_F, lambda_max(G) of the ReLU net from numpy eigvalsh of K = J J^T / n with J from
    :func:`relu_jacobian_numpy` (an independent computation).

    Args:
      theta: (m (d + 1),) parameters; X: (n, d) inputs.

    Returns:
      (3,) array.
    """
    J = relu_jacobian_numpy(np.asarray(theta), np.asarray(X))
    ev = np.linalg.eigvalsh(J @ J.T / len(J))
    return np.array([ev.sum(), np.sqrt(np.sum(ev**2)), ev[-1]])


def arpack_lambda_max(matvec: Callable, p: int, tol: float = 1e-10) -> float:
    """Largest eigenvalue of the symmetric operator ``matvec`` on R^p by ARPACK (scipy ``eigsh``,
    implicitly restarted Lanczos, start vector of ones): the anchor library of Section 8.

    Args:
      matvec: v (p,) -> A v; p: dimension; tol: ARPACK tolerance.

    Returns:
      The top eigenvalue.
    """
    op = LinearOperator((p, p), matvec=lambda v: np.asarray(matvec(jnp.asarray(v.ravel()))),
                        dtype=np.float64)
    return float(eigsh(op, k=1, which="LA", tol=tol, v0=np.ones(p), return_eigenvectors=False)[0])


class Anchors(NamedTuple):
    """Section 8: our sharpness at one converged SGD solution of the ReLU net against references."""

    ours: np.ndarray  # (3,) our autodiff Tr G, ||G||_F, lambda_max(G) (``measures``)
    exact: np.ndarray  # (3,) the same from the hand-built numpy Gram (:func:`numpy_relu_sharpness`)
    hutchinson: linalg.TraceEstimate  # Hutchinson trace of the loss Hessian
    lanczos: float  # our 60-step Lanczos lambda_max(H)
    arpack: float  # ARPACK lambda_max(H) on the same Hessian-vector product


def relu_anchors(res: dict, X: jax.Array, Y: jax.Array, key_probes: jax.Array, key_lanczos: jax.Array,
                 probes: int = 100, lanczos_steps: int = 60) -> Anchors:
    """The anchors at the last converged SGD run of a ReLU :func:`sgd_and_gd` result: numpy Gram,
    Hutchinson (Rademacher probes) and Lanczos vs ARPACK on the Hessian-vector product of
    L = (1/2n) sum (f - y)^2.

    Args:
      res: the ReLU net's SGD sweep dict; X: (n, d); Y: (n,); key_probes, key_lanczos: JAX keys;
      probes: Hutchinson probes; lanczos_steps: Lanczos steps.

    Returns:
      :class:`Anchors`.
    """
    j = int(np.flatnonzero(res["ok"])[-1])
    theta = res["run"].theta[j]
    matvec = linalg.hvp_operator(lambda t: st.full_loss(st.relu_predict, t, X, Y), theta)
    est = linalg.hutchinson_trace(matvec, theta.shape[0], key_probes, probes)
    v0 = jax.random.normal(key_lanczos, theta.shape)
    top = float(linalg.lanczos_top_eigenvalues(matvec, v0, lanczos_steps)[0])
    return Anchors(res["sharp"][j], numpy_relu_sharpness(theta, X), est, top,
                   arpack_lambda_max(matvec, theta.shape[0]))


def anchor_note(an: Anchors) -> str:
    """One Markdown line with the anchors' numbers.

    Args:
      an: :func:`relu_anchors`' result.

    Returns:
      Markdown string.
    """
    return (f"Tr G: numpy {an.exact[0]:.3f}, Hutchinson {float(an.hutchinson.mean):.3f} ± "
            f"{float(an.hutchinson.stderr):.3f}; λ_max: numpy G {an.exact[2]:.8f}, ARPACK H "
            f"{an.arpack:.8f}, Lanczos H {an.lanczos:.8f}.")
