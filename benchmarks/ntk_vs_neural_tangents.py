"""Analytic NNGP and NTK (Jacot, Gabriel, Hongler 2018; paperlib.ntk) against Google's
neural-tangents ``kernel_fn``: L = 4 weight layers, beta = 0.1, ReLU and erf, N x N Gram matrices
for N in {1000, 4000}, float64, both jitted (median of 5 calls; the first call, with compilation,
apart).

neural-tangents 0.6.5 needs jax < 0.6 (it imports ``Jaxpr`` from ``jax.core``) and tf2jax < 0.3.8,
so it runs in its own venv (``--worker``) and writes its Gram matrices to .npy files.

Parametrisation map (checked on neural-tangents' own parameters by :func:`small_network`): the
paper's layer a~ = W a / sqrt(n_in) + beta b, W, b ~ N(0, 1), is
``stax.Dense(n_out, W_std=1.0, b_std=beta, parameterization="ntk")``; ``b_std=None`` (the default)
drops the biases. ``stax.Relu()`` and ``stax.Erf()`` are max(z, 0) and erf(z) without the He
factor 2.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

DEPTH, BETA, N0 = 4, 0.1, 8  # weight layers (paper: 4), bias scale (paper: 0.1), input dimension
SIZES = (1000, 4000)
NONLINS = ("relu", "erf")
TOL = 1e-5  # max elementwise relative difference, fixed before the runs
SMALL_WIDTH, SMALL_POINTS = 64, 6  # finite network compared parameter by parameter


def benchmark_inputs(n: int, seed: int = 0) -> np.ndarray:
    """n points: half on the unit circle in R^8 (the paper's inputs, equal and antipodal pairs),
    half Gaussian directions with radii in [0.25, 3] (so that Sigma(x, x) varies)."""
    rng = np.random.default_rng(seed)
    half = n // 2
    gamma = np.linspace(-np.pi, np.pi, half, endpoint=False)
    circle = np.zeros((half, N0))
    circle[:, 0], circle[:, 1] = np.cos(gamma), np.sin(gamma)
    z = rng.normal(size=(n - half, N0))
    z *= (rng.uniform(0.25, 3.0, len(z)) / np.linalg.norm(z, axis=1))[:, None]
    return np.concatenate([circle, z])


# ------------------------------------------------------------------------- neural-tangents worker


def nt_worker(payload: dict) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax

    out_dir = Path(payload["dir"])
    result = {"nt_version": nt.__version__, "jax_version": jax.__version__, "timings": {}}
    for name in NONLINS:
        act = {"relu": stax.Relu, "erf": stax.Erf}[name]
        layers = []
        for _ in range(DEPTH - 1):
            layers += [
                stax.Dense(SMALL_WIDTH, W_std=1.0, b_std=BETA, parameterization="ntk"),
                act(),
            ]
        init_fn, apply_fn, kernel_fn = stax.serial(
            *layers, stax.Dense(1, W_std=1.0, b_std=BETA, parameterization="ntk")
        )
        jitted = jax.jit(kernel_fn, static_argnames="get")
        for n in SIZES:
            x = jnp.asarray(benchmark_inputs(n))
            t = common.timed(lambda: jitted(x, x, ("nngp", "ntk")).ntk.block_until_ready())
            k = jitted(x, x, ("nngp", "ntk"))
            np.save(out_dir / f"{name}_{n}_nngp.npy", np.asarray(k.nngp))
            np.save(out_dir / f"{name}_{n}_ntk.npy", np.asarray(k.ntk))
            result["timings"][f"{name}_{n}"] = common.strip_value(t)
        if name == "relu":
            result["small"] = small_network(init_fn, apply_fn, nt, out_dir)
    return result


def small_network(init_fn, apply_fn, nt, out_dir: Path) -> dict:
    """A width-64 network in neural-tangents: its parameters, outputs and empirical NTK (saved), and
    its outputs against the paper's forward pass written out by hand on the same parameters."""
    import jax

    small = np.asarray(benchmark_inputs(1000)[:SMALL_POINTS])
    _, params = init_fn(jax.random.PRNGKey(0), small.shape)
    dense = [p for p in params if p]  # Relu layers have no parameters
    h = small
    for i, (w, b) in enumerate(dense):  # W h / sqrt(n_in) + beta b
        z = h @ np.asarray(w) / np.sqrt(h.shape[1]) + BETA * np.asarray(b).reshape(-1)
        h = z if i == len(dense) - 1 else np.maximum(z, 0)
    out = np.asarray(apply_fn(params, small))
    emp = nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0)(small, None, params)
    for i, (w, b) in enumerate(dense):
        np.save(out_dir / f"small_W{i}.npy", np.asarray(w))
        np.save(out_dir / f"small_b{i}.npy", np.asarray(b).reshape(-1))
    np.save(out_dir / "small_out.npy", out[:, 0])
    np.save(out_dir / "small_ntk.npy", np.asarray(emp).reshape(SMALL_POINTS, SMALL_POINTS))
    return {"apply_vs_formula_max_abs": float(np.max(np.abs(out[:, 0] - h[:, 0])))}


# ----------------------------------------------------------------------------- ours


def max_relative(mine, theirs) -> float:
    """max_ij |K_ours - K_nt| / max(|K_nt|, 1e-3 max|K_nt|) (relative, floored near zero)."""
    diff = np.abs(np.asarray(mine) - theirs)
    return float(np.max(diff / np.maximum(np.abs(theirs), 1e-3 * np.abs(theirs).max())))


def small_network_check(out_dir: Path, ntk) -> dict:
    """neural-tangents' parameters in our layout (W transposed): outputs and the empirical NTK."""
    import jax.numpy as jnp

    params = [
        (
            jnp.asarray(np.load(out_dir / f"small_W{i}.npy")).T,
            jnp.asarray(np.load(out_dir / f"small_b{i}.npy")),
        )
        for i in range(DEPTH)
    ]
    small = jnp.asarray(benchmark_inputs(1000)[:SMALL_POINTS])
    out = np.asarray(ntk.apply(params, small, BETA)[:, 0])
    emp = np.asarray(ntk.empirical_ntk(params, small, None, BETA))
    ref_ntk = np.load(out_dir / "small_ntk.npy")
    return {
        "outputs_max_abs_diff": float(np.max(np.abs(out - np.load(out_dir / "small_out.npy")))),
        "empirical_ntk_max_rel_diff": float(np.max(np.abs(emp - ref_ntk)) / np.abs(ref_ntk).max()),
    }


def run(pythons: dict) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from paperlib import ntk

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        theirs = common.run_worker(pythons["nt"], Path(__file__), {"dir": tmp})
        for name in NONLINS:
            for n in SIZES:
                x = jnp.asarray(benchmark_inputs(n))
                fn = lambda: ntk.kernels(x, depth=DEPTH, beta=BETA, nonlin=name)  # noqa: E731
                t = common.timed(lambda: fn().ntk.block_until_ready())
                k = fn()
                errs = {
                    kind: max_relative(
                        getattr(k, kind), np.load(Path(tmp) / f"{name}_{n}_{kind}.npy")
                    )
                    for kind in ("nngp", "ntk")
                }
                worst = max(errs.values())
                rows.append(
                    common.row(
                        f"ntk_{name}_N{n}",
                        f"analytic NNGP + NTK, {name}, L={DEPTH}",
                        f"{n} x {n}, float64",
                        t,
                        theirs["timings"][f"{name}_{n}"],
                        "paperlib.ntk.kernels (jit)",
                        "neural-tangents kernel_fn (jit)",
                        f"max rel. diff NNGP {errs['nngp']:.1e}, NTK {errs['ntk']:.1e} "
                        f"(tol {TOL:g})",
                        worst <= TOL,
                        note="both jitted XLA on one core; different jax versions, timed minutes "
                        "apart under a changing load: ratios within ~30% of 1 are ties (README)",
                    )
                )
        small = small_network_check(Path(tmp), ntk)
    small["nt_apply_vs_paper_formula_max_abs"] = theirs["small"]["apply_vs_formula_max_abs"]
    return {
        "rows": rows,
        "checks": {"ntk_small_network": small},
        "versions": {
            "neural_tangents": theirs["nt_version"],
            "jax_anchor_nt": theirs["jax_version"],
        },
    }


if __name__ == "__main__":
    common.script_main(run, nt_worker, "nt", "/tmp/bench-nt/bin/python")
