"""Timing and subprocess helpers shared by the benchmark scripts (standard library and numpy only,
so that the anchors' own virtual environments can import this file too)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
REPEATS = 5  # every timing is the median of at least this many calls


def load() -> list[float]:
    """1-, 5- and 15-minute load averages of the (shared) machine."""
    return [round(v, 2) for v in os.getloadavg()]


def timed(fn: Callable, repeats: int = REPEATS, warmup: bool = True) -> dict:
    """Median wall time of ``repeats`` calls of ``fn`` (which must block until its result is ready).

    With ``warmup`` the first call is made apart and reported as ``first_call_s`` (compilation plus
    one run for jitted code); ``compile_s`` = first call - median. The load averages before and
    after are recorded because the machine is shared. Returns the last call's value as
    ``value``."""
    out: dict = {"load_before": load()}
    if warmup:
        t0 = time.perf_counter()
        fn()
        out["first_call_s"] = time.perf_counter() - t0
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    out.update(median_s=statistics.median(times), times_s=times, repeats=repeats, load_after=load())
    if warmup:
        out["compile_s"] = max(out["first_call_s"] - out["median_s"], 0.0)
    out["value"] = value
    return out


def strip_value(t: dict) -> dict:
    """A timing record without its (possibly large) ``value``."""
    return {k: v for k, v in t.items() if k != "value"}


def run_worker(python: str, script: Path, payload: dict, timeout: float = 1800) -> dict:
    """Run ``script --worker`` with the anchor's ``python``; ``payload`` goes in as JSON on stdin
    and the worker prints one JSON object as its last stdout line."""
    proc = subprocess.run(
        [python, str(script), "--worker"],
        input=json.dumps(payload),
        text=True,
        capture_output=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script.name} worker failed ({python}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def worker_main(fn: Callable[[dict], dict]) -> None:
    """Entry point of a worker: payload from stdin, result as the last stdout line."""
    payload = json.loads(sys.stdin.read())
    print(json.dumps(fn(payload)))


def script_main(run: Callable[[dict], dict], worker: Callable[[dict], dict], anchor: str,
                default_python: str) -> None:
    """``__main__`` of a comparison script: with ``--worker``, the anchor's side (run inside the
    anchor's venv); otherwise both sides, printed as JSON (argv[1]: the anchor venv's python)."""
    if "--worker" in sys.argv:
        worker_main(worker)
    else:
        print(json.dumps(run({anchor: sys.argv[1] if len(sys.argv) > 1 else default_python}), indent=1))


def row(
    id_: str,
    quantity: str,
    size: str,
    ours: dict,
    theirs: dict,
    ours_label: str,
    theirs_label: str,
    agreement: str,
    agree: bool | None,
    note: str = "",
    rate_unit: str | None = None,
    work: float | None = None,
) -> dict:
    """One table row. ``ours``/``theirs`` are :func:`timed` records (without values); ``ratio`` is
    theirs / ours median time (> 1: ours faster). With ``work`` (e.g. particle-steps per call) the
    rates work / median are reported in ``rate_unit``."""
    r = {
        "id": id_,
        "quantity": quantity,
        "size": size,
        "ours_label": ours_label,
        "theirs_label": theirs_label,
        "ours": strip_value(ours),
        "theirs": strip_value(theirs),
        "ratio": theirs["median_s"] / ours["median_s"],
        "agreement": agreement,
        "agree": None if agree is None else bool(agree),
        "note": note,
    }
    if work is not None:
        r.update(
            rate_unit=rate_unit,
            ours_rate=work / ours["median_s"],
            theirs_rate=work / theirs["median_s"],
        )
    return r
