"""Atomic file and folder writes: a crash leaves either the old content or the new, never half."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def readable_mode(directory: bool = False) -> int:
    """The mode a plain ``open``/``mkdir`` would give under the current umask (0644/0755 by default);
    ``tempfile`` makes 0600/0700, which other users of a shared machine cannot read."""
    return (0o777 if directory else 0o666) & ~_umask()


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A fresh folder inside ``parent`` with the umask's usual permissions."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(work, readable_mode(directory=True))
    return work


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, readable_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def replace_dir(new: Path, final: Path) -> None:
    """Move the finished folder ``new`` to ``final``, replacing what was there.

    The old folder is renamed aside first and removed only once ``new`` is in place, so an
    interruption leaves either the old folder or the new one at ``final``.
    """
    final = Path(final)
    old = final.with_name(f".old-{final.name}-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    try:
        os.replace(new, final)
    except BaseException:
        if old.exists() and not final.exists():
            os.replace(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)
