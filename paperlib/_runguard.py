"""What keeps a reproduce run safe under faults: one run per output folder, child processes that die
with the runner, and signals turned into an orderly stop.

- :class:`OutputLock`: an exclusive ``flock`` on ``<out>/.paperlib.lock`` for the whole run; the
  kernel releases it when the runner dies, even by SIGKILL, so a stale lock never blocks.
- :class:`Children`: the live subprocesses, each in its own session (a terminal's Ctrl-C reaches only
  the runner) and sent SIGTERM by the kernel when the runner dies, even by SIGKILL (Linux
  ``PR_SET_PDEATHSIG``, see :func:`exec_dying_with_parent`); a Jupyter kernel exits by itself once its
  parent (papermill) is gone. A stop ends each child and everything it started.
- :func:`signals_raise`: SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread, as SIGINT
  raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import psutil

LOCK_NAME = ".paperlib.lock"


class Busy(Exception):
    """Another run holds the output folder."""


class Interrupted(Exception):
    """The runner received a termination signal."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class OutputLock:
    """An exclusive, non-blocking lock on an output folder, held while the run lasts."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> "OutputLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise Busy(f"another paperlib run (pid {holder}) is writing into {self.path.parent}; "
                       "wait for it to finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None


def exec_dying_with_parent(parent_pid: int, argv: list[str]) -> None:
    """Ask the kernel for SIGTERM when the parent dies (Linux ``PR_SET_PDEATHSIG``, kept across exec),
    then become ``argv``. Run as ``python -m paperlib._runguard PARENT_PID COMMAND...`` so that it
    happens in a fresh single-threaded process (a ``preexec_fn`` is unsafe in a threaded runner)."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        sys.exit(128 + signal.SIGTERM)
    os.execv(argv[0], argv)


class Children:
    """The subprocesses a run has started and not yet reaped."""

    def __init__(self):
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    def start(self, command: list[str], **kwargs) -> subprocess.Popen:
        with self._lock:
            if self.stopping.is_set():
                raise Interrupted(signal.SIGTERM)
            guarded = [sys.executable, "-m", "paperlib._runguard", str(os.getpid()), *command]
            proc = subprocess.Popen(guarded, start_new_session=True, **kwargs)
            self._procs.add(proc)
        return proc

    def done(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def stop_all(self, grace_s: float = 5.0) -> None:
        """Refuse new children; SIGTERM every live child with all its descendants (the Jupyter kernel
        runs in a session of its own), then SIGKILL what is left after ``grace_s``."""
        self.stopping.set()
        with self._lock:
            procs = list(self._procs)
        victims = []
        for proc in procs:
            try:
                parent = psutil.Process(proc.pid)
                victims += [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        for p in victims:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(victims, timeout=grace_s)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=grace_s)


@contextmanager
def signals_raise():
    """Within the block, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


if __name__ == "__main__":
    exec_dying_with_parent(int(sys.argv[1]), sys.argv[2:])
