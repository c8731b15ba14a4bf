"""fBM path sampling (paperlib.fbm, JAX) against the ``fbm`` package (C. Flynn, 0.3.0, numpy).

Type-I fBM on [0, 1] with H = 0.7 at n steps, n in {512, 4096}, M = 200 paths per call, float64:

* exact Davies-Harte (circulant embedding): ``paperlib.fbm.sample_fbm_davies_harte`` (all M paths in
  one jitted call) against ``fbm.FBM(n, H, method="daviesharte").fbm()`` called M times (one path
  per call; the package caches the circulant eigenvalues between calls);
* the Markov approximation MA-fBM (K = 5 OU processes, gamma_max = 20, optimal omega, exact OU
  transitions; ``sample_mafbm_exact``, rescaled to unit variance) against the same package call.

Time: median of 5 calls producing M paths each (paths per second = M / median). Accuracy: relative
Frobenius error ||C_emp - C||_F / ||C||_F of the empirical covariance (known zero mean) of the 5 M
paths of the 5 timed calls pooled, on 129 equally spaced times, against the exact fBM covariance
(t^2H + s^2H - |t-s|^2H)/2; the Monte-Carlo level sqrt(E||C_emp - C||_F^2) / ||C||_F of an exact
sampler with these paths is computed in closed form, sum_ij (C_ii C_jj + C_ij^2) / M. For MA-fBM
the deterministic approximation error ||C_MA - C||_F / ||C||_F (closed-form MA-fBM covariance) is
reported too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

H, LENGTH = 0.7, 1.0
SIZES = (512, 4096)
PATHS = 200  # per call; the covariance uses the 5 timed calls pooled (1000 paths)
SUBGRID = 129
K_OU, GAMMA_MAX = 5, 20.0
MC_FACTOR = 3.0  # an exact sampler's error must stay below 3x the Monte-Carlo level (fixed before)


def subgrid(n: int) -> np.ndarray:
    return np.linspace(0, n, SUBGRID).round().astype(int)


def exact_cov(n: int) -> np.ndarray:
    t = subgrid(n) * LENGTH / n
    p = 2 * H
    return 0.5 * (t[:, None] ** p + t[None, :] ** p - np.abs(t[:, None] - t[None, :]) ** p)


def cov_error(paths: np.ndarray, n: int) -> float:
    x = np.asarray(paths)[:, subgrid(n)]
    c = exact_cov(n)
    return float(np.linalg.norm(x.T @ x / len(x) - c) / np.linalg.norm(c))


def mc_level(n: int, m: int) -> float:
    c = exact_cov(n)
    d = np.diag(c)
    return float(np.sqrt(np.sum(np.outer(d, d) + c**2) / m) / np.linalg.norm(c))


# ----------------------------------------------------------------------------- fbm package worker


def fbm_worker(payload: dict) -> dict:
    from importlib.metadata import version

    from fbm import FBM

    out = {"fbm_version": version("fbm"), "numpy_version": np.__version__, "cases": {}}
    for n in SIZES:
        np.random.seed(n)
        gen = FBM(n=n, hurst=H, length=LENGTH, method="daviesharte")
        batches = []
        t = common.timed(lambda: batches.append(np.stack([gen.fbm() for _ in range(PATHS)])))
        pooled = np.concatenate(batches[-common.REPEATS :])
        out["cases"][str(n)] = {"timing": common.strip_value(t), "cov_error": cov_error(pooled, n)}
    return out


# ----------------------------------------------------------------------------- ours


def run(pythons: dict) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from paperlib import fbm

    theirs = common.run_worker(pythons["fbm"], Path(__file__), {})
    gammas = fbm.gamma_grid(K_OU, gamma_max=GAMMA_MAX)
    omega = np.asarray(fbm.optimal_omega(gammas, H, LENGTH, "I"))
    unit = 1.0 / np.sqrt(float(fbm.variance_factor(H)))  # paper's normalisation -> the package's
    rows = []
    for n in SIZES:
        th = theirs["cases"][str(n)]
        level = mc_level(n, PATHS * common.REPEATS)
        keys = iter(jax.random.split(jax.random.PRNGKey(n), 16))
        t = subgrid(n) * LENGTH / n
        ma_cov = (
            np.asarray(fbm.mafbm_covariance(jnp.asarray(t), jnp.asarray(t), gammas, omega, "I"))
            * unit**2
        )
        ma_bias = float(np.linalg.norm(ma_cov - exact_cov(n)) / np.linalg.norm(exact_cov(n)))
        samplers = {
            "dh": (
                "paperlib.fbm.sample_fbm_davies_harte (jit, vectorised)",
                lambda: np.asarray(fbm.sample_fbm_davies_harte(next(keys), H, n, LENGTH, PATHS)),
            ),
            "mafbm": (
                f"paperlib.fbm.sample_mafbm_exact, K={K_OU} (jit, scan over steps)",
                lambda: (
                    unit
                    * np.asarray(
                        fbm.sample_mafbm_exact(next(keys), gammas, omega, LENGTH / n, n, PATHS, "I")
                    )
                ),
            ),
        }
        for tag, (label, sample) in samplers.items():
            batches = []
            tm = common.timed(lambda: batches.append(sample()))
            err = cov_error(np.concatenate(batches[-common.REPEATS :]), n)
            text = (
                f"cov. rel. error ours {err:.3f}, theirs {th['cov_error']:.3f} "
                f"(MC level {level:.3f})"
            )
            if tag == "dh":
                ok = err <= MC_FACTOR * level and th["cov_error"] <= MC_FACTOR * level
                note = (
                    "compiled, all paths in one call vs the package's per-path Python loop "
                    "(2n terms)"
                )
            else:
                text += f"; MA-fBM approximation error {ma_bias:.3f}"
                ok = None
                note = (
                    "approximate sampler (O(n K) per path) vs an exact one: no agreement verdict; "
                    "its error is MC level plus the approximation error"
                )
            rows.append(
                common.row(
                    f"fbm_{tag}_n{n}",
                    f"fBM paths, H={H}, " + ("Davies-Harte" if tag == "dh" else f"MA-fBM K={K_OU}"),
                    f"n={n}, M={PATHS}/call",
                    tm,
                    th["timing"],
                    label,
                    "fbm.FBM(method='daviesharte').fbm() x M",
                    text,
                    ok,
                    note=note,
                    rate_unit="paths/s",
                    work=PATHS,
                )
            )
    return {"rows": rows, "versions": {"fbm": theirs["fbm_version"]}}


if __name__ == "__main__":
    common.script_main(run, fbm_worker, "fbm", "/tmp/bench-fbm/bin/python")
