"""Where a result came from: git commit, package versions, device."""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("paperlib", "numpy", "scipy", "jax", "jaxlib", "matplotlib", "scikit-learn",
            "papermill", "ipykernel")


def git_commit(root: Path = REPO_ROOT) -> str:
    """HEAD's hash, with '+dirty' when tracked files other than the results in figures/ differ from it
    (a reproduce run rewrites figures/ notebook by notebook); 'unknown' outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)figures"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on, for run.json."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


_DEVICE_PROBE = """
import json, platform, jax
d = jax.devices()[0]
print(json.dumps({"backend": jax.default_backend(), "device": getattr(d, "device_kind", str(d)),
                  "device_count": jax.device_count(), "platform": platform.platform(),
                  "processor": platform.processor() or platform.machine(), "cpu_count": __import__("os").cpu_count()}))
"""


@functools.cache
def device_info() -> dict:
    """The JAX backend and first device, probed in a separate process so that the caller never
    initialises (and on a GPU never pre-allocates) an accelerator itself."""
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    try:
        out = subprocess.run([sys.executable, "-c", _DEVICE_PROBE], capture_output=True, text=True,
                             check=True, env=env, timeout=120).stdout
        return json.loads(out.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as e:
        return {"backend": "unknown", "device": "unknown", "error": str(e)[:200]}
