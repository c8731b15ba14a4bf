"""Anchor and speed: paperlib.ntk against Google's neural-tangents (Jacot, Gabriel, Hongler 2018).

neural-tangents 0.6.5 needs jax < 0.6 (it imports ``Jaxpr`` from ``jax.core``), so it runs in its own
virtual environment and this script has two halves:

1. with the neural-tangents venv (see benchmarks/README.md for the recipe)::

       /tmp/nt-venv/bin/python benchmarks/ntk_vs_neural_tangents.py nt --out /tmp/nt_kernels.npz

   writes the inputs, neural-tangents' analytic NNGP/NTK Gram matrices, its timings, and a small
   network (parameters, outputs, empirical NTK) to the .npz;

2. with the project's environment::

       python benchmarks/ntk_vs_neural_tangents.py compare --nt /tmp/nt_kernels.npz

   recomputes everything with paperlib.ntk on the same inputs and parameters, prints the largest
   relative differences (target 1e-5) and the timings of both for the 1000 x 1000 Gram matrix.

Parametrisation map (checked numerically by part 1 on neural-tangents' own parameters): the paper's
layer  a~ = W a / sqrt(n_in) + beta * b,  W, b ~ N(0, 1),  is
``stax.Dense(n_out, W_std=1.0, b_std=beta, parameterization="ntk")``: neural-tangents' ntk
``apply_fn`` computes ``W_std / sqrt(n_in) * x @ W + b_std * b`` with W of shape (n_in, n_out) and
N(0, 1) entries (the docstring's "N is out_dim" is not what the code divides by). ``b_std=None``
(the default) drops the biases (beta = 0). ``stax.Relu()`` and ``stax.Erf()`` are sigma(z) = max(z, 0)
and erf(z) with the arc-cosine / arcsin closed forms, without the He factor 2, as in the paper.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

DEPTH, BETA = 4, 0.1                       # L weight layers (paper: 4), bias scale (paper: 0.1)
N_POINTS, N0 = 1000, 8                     # Gram size and input dimension of the benchmark
NONLINS = ("relu", "erf")
SMALL_WIDTH, SMALL_POINTS = 64, 6          # the finite network compared parameter by parameter
                                           # (the analytic kernel_fn does not depend on the width)


def benchmark_inputs(seed: int = 0):
    """1000 points: half on the unit circle embedded in R^8 (the paper's input set, with equal and
    antipodal pairs), half Gaussian in R^8 with radii in [0.25, 3] (exercises Sigma(x, x) != Sigma(x', x'))."""
    rng = np.random.default_rng(seed)
    half = N_POINTS // 2
    gamma = np.linspace(-np.pi, np.pi, half, endpoint=False)
    circle = np.zeros((half, N0))
    circle[:, 0], circle[:, 1] = np.cos(gamma), np.sin(gamma)
    z = rng.normal(size=(N_POINTS - half, N0))
    z *= (rng.uniform(0.25, 3.0, len(z)) / np.linalg.norm(z, axis=1))[:, None]
    return np.concatenate([circle, z])


def best_time(fn, repeats: int = 5) -> float:
    """Best wall time of ``repeats`` calls (each blocks until the result is ready)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# ----------------------------------------------------------------------------- part 1: neural-tangents


def run_neural_tangents(out: str) -> None:
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax

    x = jnp.asarray(benchmark_inputs())
    result = {"x": np.asarray(x), "nt_version": nt.__version__, "jax_version": jax.__version__}
    for name in NONLINS:
        act = {"relu": stax.Relu, "erf": stax.Erf}[name]
        layers = []
        for _ in range(DEPTH - 1):
            layers += [stax.Dense(SMALL_WIDTH, W_std=1.0, b_std=BETA, parameterization="ntk"), act()]
        init_fn, apply_fn, kernel_fn = stax.serial(*layers, stax.Dense(1, W_std=1.0, b_std=BETA,
                                                                       parameterization="ntk"))
        t0 = time.perf_counter()
        k = kernel_fn(x, x, ("nngp", "ntk"))
        k.ntk.block_until_ready()
        result[f"{name}_first_call_s"] = time.perf_counter() - t0
        jitted = jax.jit(kernel_fn, static_argnames="get")
        jitted(x, x, ("nngp", "ntk")).ntk.block_until_ready()
        result[f"{name}_jit_s"] = best_time(lambda: jitted(x, x, ("nngp", "ntk")).ntk.block_until_ready())
        result[f"{name}_nngp"], result[f"{name}_ntk"] = np.asarray(k.nngp), np.asarray(k.ntk)
        print(f"neural-tangents {name}: first call {result[f'{name}_first_call_s']:.3f} s, "
              f"jitted {result[f'{name}_jit_s'] * 1e3:.1f} ms for a {N_POINTS} x {N_POINTS} Gram")
        if name == "relu":
            result.update(small_network(init_fn, apply_fn, nt, x))
    np.savez(out, **result)
    print("written", out)


def small_network(init_fn, apply_fn, nt, x):
    """A finite network in neural-tangents (width SMALL_WIDTH): its parameters, outputs and empirical
    NTK, and the paper's forward pass written out by hand on the same parameters."""
    import jax
    small = x[:SMALL_POINTS]
    _, params = init_fn(jax.random.PRNGKey(0), small.shape)
    dense = [p for p in params if p]                       # Relu layers have no parameters
    h = np.asarray(small)
    for i, (w, b) in enumerate(dense):                     # paper, Section 2: W h / sqrt(n_in) + beta b
        z = h @ np.asarray(w) / np.sqrt(h.shape[1]) + BETA * np.asarray(b).reshape(-1)
        h = z if i == len(dense) - 1 else np.maximum(z, 0)
    out = np.asarray(apply_fn(params, small))
    emp = nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0)(small, None, params)
    print(f"neural-tangents apply_fn vs the paper's formula on its own parameters: max |diff| "
          f"{np.max(np.abs(out - h)):.2e}")
    stored = {f"small_W{i}": np.asarray(w) for i, (w, _) in enumerate(dense)}
    stored.update({f"small_b{i}": np.asarray(b).reshape(-1) for i, (_, b) in enumerate(dense)})
    stored.update(small_out=out[:, 0], small_by_hand=h[:, 0], small_ntk=np.asarray(emp).reshape(SMALL_POINTS, SMALL_POINTS))
    return stored


# ----------------------------------------------------------------------------- part 2: paperlib


def compare(nt_file: str) -> None:
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from paperlib import ntk

    ref = np.load(nt_file)
    x = jnp.asarray(ref["x"])
    print(f"neural-tangents {ref['nt_version']} (jax {ref['jax_version']}) vs paperlib.ntk (jax {jax.__version__}), "
          f"L = {DEPTH}, beta = {BETA}, {N_POINTS} points in R^{N0}, float64")
    for name in NONLINS:
        t0 = time.perf_counter()
        k = ntk.kernels(x, depth=DEPTH, beta=BETA, nonlin=name)
        k.ntk.block_until_ready()
        first = time.perf_counter() - t0
        ours_s = best_time(lambda: ntk.kernels(x, depth=DEPTH, beta=BETA, nonlin=name).ntk.block_until_ready())
        for kind, mine in (("nngp", k.nngp), ("ntk", k.ntk)):
            theirs = ref[f"{name}_{kind}"]
            diff = np.abs(np.asarray(mine) - theirs)
            elementwise = np.max(diff / np.maximum(np.abs(theirs), 1e-3 * np.abs(theirs).max()))
            print(f"  {name:4s} {kind:4s}: max relative difference {elementwise:.2e} "
                  f"(max |diff| / max |K| {diff.max() / np.abs(theirs).max():.2e})  target 1e-5: "
                  f"{'pass' if elementwise <= 1e-5 else 'FAIL'}")
        nt_s = float(ref[f"{name}_jit_s"])
        print(f"  {name:4s} timing, {N_POINTS} x {N_POINTS} Gram (NNGP + NTK), jitted, best of 5: ours "
              f"{ours_s * 1e3:.1f} ms, neural-tangents {nt_s * 1e3:.1f} ms, ratio nt/ours {nt_s / ours_s:.2f} "
              f"(first calls incl. compilation: ours {first:.2f} s, nt {float(ref[f'{name}_first_call_s']):.2f} s)")
    compare_small_network(ref, ntk)


def compare_small_network(ref, ntk) -> None:
    """neural-tangents' parameters in our layout (W transposed to (n_out, n_in)): outputs and the
    exact empirical NTK must agree to rounding."""
    import jax.numpy as jnp
    params = [(jnp.asarray(ref[f"small_W{i}"]).T, jnp.asarray(ref[f"small_b{i}"])) for i in range(DEPTH)]
    small = jnp.asarray(ref["x"][:SMALL_POINTS])
    out = np.asarray(ntk.apply(params, small, BETA)[:, 0])
    emp = np.asarray(ntk.empirical_ntk(params, small, None, BETA))
    print(f"  width {SMALL_WIDTH} network on neural-tangents' parameters: max |f_ours - f_nt| "
          f"{np.max(np.abs(out - ref['small_out'])):.2e}; max relative difference of the empirical NTK "
          f"{np.max(np.abs(emp - ref['small_ntk'])) / np.abs(ref['small_ntk']).max():.2e}; "
          f"nt apply_fn vs the paper's formula by hand {np.max(np.abs(ref['small_out'] - ref['small_by_hand'])):.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p_nt = sub.add_parser("nt", help="run neural-tangents (its own venv) and write the .npz")
    p_nt.add_argument("--out", default="/tmp/nt_kernels.npz")
    p_cmp = sub.add_parser("compare", help="run paperlib.ntk and compare with the .npz")
    p_cmp.add_argument("--nt", default="/tmp/nt_kernels.npz")
    args = parser.parse_args()
    if args.mode == "nt":
        run_neural_tangents(args.out)
    else:
        compare(args.nt)


if __name__ == "__main__":
    main()
