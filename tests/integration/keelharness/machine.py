"""Machine-wide exclusion between test runs.

Several test runs may share one machine (one per git worktree, CI beside them). Most of what
a test makes is its own (ports from free_port, namespaces and cgroups named after the PID),
but some programs under test keep state in one fixed place per machine - keel-pod's /keel-pod
cgroup parent, podman's libpod_parent - and the tests check that state (nothing left behind,
the shared parent removed with the last pod). `machine_lock(name)` lets the tests of one such
program run in one test run at a time.
"""

import contextlib
import fcntl
import os
import time
from pathlib import Path

LOCK_DIR = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")


@contextlib.contextmanager
def machine_lock(name: str, timeout: float = 1800.0):
    """Hold the machine-wide lock `name` (an flock, released if this process dies)."""
    path = LOCK_DIR / f"keel-tests-{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{path} still held by another test run after {timeout}s")
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # releases the lock
