"""PaRIS side by side: paperlib.smc (JAX) vs `particles` (N. Chopin, PyPI 0.4) `collectors.Paris`.

Two checks on the scalar linear-Gaussian model x_{t+1} = 0.9 x_t + N(0, 1), y_t = x_t + N(0, 1),
x_0 from the stationary law N(0, 1/0.19), additive functional h = sum_{t<T} x_t x_{t+1}:

1. accuracy: the bias of both PaRIS implementations against the exact Kalman/RTS value, at equal
   N, K (= Nparis), T, multinomial resampling at every step; they must agree within 3 combined s.e.;
2. speed: particle-steps per second of one run at N = 1000, T = 1000, K = 2 (CPU), both libraries.
   Ours is timed after compilation (the compile time is reported separately).

`particles` 0.4 pins numpy < 2 while current JAX needs numpy >= 2, so it lives in its own venv and runs
in a subprocess of this script (`--worker`, numpy + particles only; the data travel as a .npy file)::

    python3 -m venv /tmp/particles-venv
    /tmp/particles-venv/bin/pip install "particles==0.4" "numpy<2"
    .venv/bin/python benchmarks/paris_vs_particles.py \
        --particles-python /tmp/particles-venv/bin/python --out /tmp/paris_vs_particles.json

It takes ~10 minutes of CPU, almost all of it in `particles` (a Python loop over particles with
per-draw accept-reject; its docstring calls it "very slow, work in progress"). `--speed-steps` and
`--replicates` shrink it for a quick look.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

A, Q, R = 0.9, 1.0, 1.0
P0 = Q / (1 - A * A)


def simulate_data(n_steps: int, seed: int) -> np.ndarray:
    """y_0..y_T of the scalar model, plain numpy so both environments see identical data."""
    rng = np.random.default_rng(seed)
    x = np.empty(n_steps + 1)
    x[0] = rng.normal(0.0, math.sqrt(P0))
    for t in range(n_steps):
        x[t + 1] = A * x[t] + rng.normal(0.0, math.sqrt(Q))
    return x + rng.normal(0.0, math.sqrt(R), size=n_steps + 1)


# ------------------------------------------------------------------------------ particles worker


def particles_worker(args) -> dict:
    """Runs inside the particles venv: R PaRIS runs (accuracy) and one timed run (speed)."""
    import particles
    from particles import collectors, distributions as dists, state_space_models as ssms

    class ScalarLG(ssms.StateSpaceModel):
        default_params = {"rho": A, "sigmaX": math.sqrt(Q), "sigmaY": math.sqrt(R), "sigma0": math.sqrt(P0)}

        def PX0(self):
            return dists.Normal(loc=0.0, scale=self.sigma0)

        def PX(self, t, xp):
            return dists.Normal(loc=self.rho * xp, scale=self.sigmaX)

        def PY(self, t, xp, x):
            return dists.Normal(loc=x, scale=self.sigmaY)

        def upper_bound_log_pt(self, t):
            return -0.5 * math.log(2 * math.pi) - math.log(self.sigmaX)

        def add_func(self, t, xp, x):
            return np.zeros_like(x) if t == 0 else xp * x

    def run(ys, n, k, seed):
        np.random.seed(seed)
        fk = ssms.Bootstrap(ssm=ScalarLG(), data=list(ys))
        pf = particles.SMC(fk=fk, N=n, resampling="multinomial", ESSrmin=1.0, collect=[collectors.Paris(Nparis=k)])
        pf.run()
        return float(pf.summaries.paris[-1])

    acc_ys, speed_ys = np.load(args.worker_data[0]), np.load(args.worker_data[1])
    estimates = [run(acc_ys, args.accuracy_n, args.k, 1000 + r) for r in range(args.replicates)]
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    run(speed_ys, args.speed_n, args.k, 7)
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    return {"estimates": estimates, "speed_wall_s": wall, "speed_cpu_s": cpu}


# ------------------------------------------------------------------------------ ours


def ours(args, acc_ys, speed_ys) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from paperlib import smc

    p = smc.scalar_lg_params(A, Q, 1.0, R)
    model, fn = smc.LINEAR_GAUSSIAN, smc.CROSS_MOMENT
    acc = jnp.asarray(acc_ys)[:, None]
    exact = smc.exact_cross_moment(smc.rts_smoother(p, acc))
    keys = jax.random.split(jax.random.PRNGKey(args.seed), args.replicates)
    estimates = np.asarray(smc.paris(keys, model, fn, p, acc, args.accuracy_n, args.k)[:, 0])

    speed = jnp.asarray(speed_ys)[:, None]
    one = jax.random.split(jax.random.PRNGKey(args.seed + 1), 1)
    start = time.perf_counter()
    smc.paris(one, model, fn, p, speed, args.speed_n, args.k).block_until_ready()
    first = time.perf_counter() - start
    walls, cpus = [], []
    for rep in range(3):
        key = jax.random.split(jax.random.PRNGKey(args.seed + 2 + rep), 1)
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        smc.paris(key, model, fn, p, speed, args.speed_n, args.k).block_until_ready()
        walls.append(time.perf_counter() - start_wall)
        cpus.append(time.process_time() - start_cpu)
    return {"exact": exact, "estimates": estimates.tolist(), "speed_wall_s": min(walls),
            "speed_cpu_s": cpus[int(np.argmin(walls))], "compile_and_first_run_s": first,
            "jax_version": jax.__version__, "backend": jax.default_backend()}


def summarize(exact, est):
    est = np.asarray(est)
    return {"bias": float(est.mean() - exact), "se": float(est.std(ddof=1) / math.sqrt(len(est))),
            "sd": float(est.std(ddof=1)), "replicates": len(est)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--particles-python", default="/tmp/particles-venv/bin/python",
                    help="python of a venv with particles==0.4 and numpy<2")
    ap.add_argument("--accuracy-n", type=int, default=16, help="N of the accuracy comparison")
    ap.add_argument("--accuracy-steps", type=int, default=50, help="T of the accuracy comparison")
    ap.add_argument("--replicates", type=int, default=400, help="PaRIS runs per library (accuracy)")
    ap.add_argument("--speed-n", type=int, default=1000, help="N of the timed run")
    ap.add_argument("--speed-steps", type=int, default=1000, help="T of the timed run")
    ap.add_argument("--k", type=int, default=2, help="backward draws per particle (particles' Nparis)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--worker-data", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(json.dumps(particles_worker(args)))
        return {}

    acc_ys = simulate_data(args.accuracy_steps, args.seed)
    speed_ys = simulate_data(args.speed_steps, args.seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        files = [str(Path(tmp) / "acc.npy"), str(Path(tmp) / "speed.npy")]
        np.save(files[0], acc_ys)
        np.save(files[1], speed_ys)
        cmd = [args.particles_python, str(Path(__file__).resolve()), "--worker", "--worker-data", *files,
               "--accuracy-n", str(args.accuracy_n), "--replicates", str(args.replicates),
               "--speed-n", str(args.speed_n), "--k", str(args.k)]
        start = time.perf_counter()
        theirs = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        theirs_total = time.perf_counter() - start
    mine = ours(args, acc_ys, speed_ys)

    exact = mine["exact"]
    a, b = summarize(exact, mine["estimates"]), summarize(exact, theirs["estimates"])
    combined = math.hypot(a["se"], b["se"])
    steps = args.speed_n * (args.speed_steps + 1)
    result = {
        "setup": {"model": "x'=0.9x+N(0,1), y=x+N(0,1)", "functional": "sum_t x_t x_{t+1}", "K": args.k,
                  "accuracy_N": args.accuracy_n, "accuracy_T": args.accuracy_steps,
                  "speed_N": args.speed_n, "speed_T": args.speed_steps, "seed": args.seed},
        "exact_kalman": exact,
        "ours": a, "particles": b,
        "bias_difference_in_combined_se": abs(a["bias"] - b["bias"]) / combined,
        "agree_within_3_se": abs(a["bias"] - b["bias"]) < 3 * combined,
        "ours_particle_steps_per_s": steps / mine["speed_wall_s"],
        "particles_particle_steps_per_s": steps / theirs["speed_wall_s"],
        "speed_ratio_wall": theirs["speed_wall_s"] / mine["speed_wall_s"],
        "speed_ratio_cpu": theirs["speed_cpu_s"] / mine["speed_cpu_s"],
        "timings_s": {"ours_wall": mine["speed_wall_s"], "ours_cpu": mine["speed_cpu_s"],
                      "ours_compile_and_first_run": mine["compile_and_first_run_s"],
                      "particles_wall": theirs["speed_wall_s"], "particles_cpu": theirs["speed_cpu_s"],
                      "particles_subprocess_total": theirs_total},
        "versions": {"jax": mine["jax_version"], "backend": mine["backend"], "numpy_here": np.__version__},
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
