"""Test ordering for parallel workers: the long tests (each notebook under smoke, the scaffold run, the
runner's signal tests) start first, so the short ones fill the gaps instead of one worker finishing a
notebook alone at the end (longest-processing-time-first scheduling).

The library tests compile hundreds of small XLA programs, and compiling is most of their time: this
process's CPU backend is started with XLA's backend optimisation level 0 (a quarter less CPU for
compile-heavy test files, same verdicts). Only this process: the variable is restored before any test
runs, so the notebook kernels and command-line runs the tests start use the default level, as a user's
would. A level in the caller's own ``XLA_FLAGS`` comes later in the string and wins.
"""

import os

_CALLER_XLA_FLAGS = os.environ.get("XLA_FLAGS")
os.environ["XLA_FLAGS"] = f"--xla_backend_optimization_level=0 {_CALLER_XLA_FLAGS or ''}".strip()
import jax  # noqa: E402

jax.devices()  # the CPU backend reads XLA_FLAGS once, when it starts
if _CALLER_XLA_FLAGS is None:
    del os.environ["XLA_FLAGS"]
else:
    os.environ["XLA_FLAGS"] = _CALLER_XLA_FLAGS

# The notebooks the tests run at smoke write PNG only (figures.save's PDF twin costs as much again; the
# default and full runs write both, and tests/test_core.py checks the PDF writer itself).
os.environ["PAPERLIB_FIGURE_FORMATS"] = "png"

LONG = ("test_notebook_smoke", "test_the_scaffold_runs", "test_reproduce.py")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: not any(mark in item.nodeid for mark in LONG))
