"""Real daemon processes for integration tests.

A `Daemon` is one process that a test starts, waits for, and stops.  Its
stdout and stderr go to one log file, because a daemon's own words are the
first thing anyone wants to see when a test fails.

Stopping is careful about *which* process it signals:

* Signals go to the PID we started, never to a process name: a name could
  match unrelated processes (another test run, the developer's own daemon).
* The child is not reaped until `stop()` has finished signalling.  While it
  is unreaped (a zombie at worst) the kernel cannot reuse its PID, so a
  signal can never hit a stranger that happened to get the same number.
  Status checks therefore use waitid(WNOWAIT), which looks without reaping.
* The daemon runs in a session of its own (`start_new_session=True`).
  After the daemon itself is gone, anything it left running in its process
  group is killed too, so helpers do not outlive the test.
"""

import http.client
import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from .hosts import call_in_netns, in_hosts_network, netns_argv

_POLL_INTERVAL = 0.05
_PROBE_TIMEOUT = 0.5
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DaemonError(Exception):
    """A daemon died, did not become ready, or was misused."""


class Daemon:
    """One process under test, with a log file and a readiness check.

    Readiness is at most one of:
      ready_tcp=(host, port)  a TCP connect succeeds;
      ready_http=url          a GET returns 2xx (proxies are bypassed);
      ready=callable          ready(daemon) returns true.
    For a daemon in a network namespace (`netns=`), the TCP and HTTP probes
    run inside that namespace; a callable runs as it is, in this process.
    Without a check, the daemon counts as ready once it has been started.
    Probing a TestHosts address without `netns=` is refused: from the root
    namespace that packet would go out to the real network.
    """

    def __init__(self, name: str, argv, log_dir, *, env: dict | None = None,
                 cwd=None, netns: str | None = None,
                 ready_tcp: tuple[str, int] | None = None,
                 ready_http: str | None = None,
                 ready: Callable[["Daemon"], bool] | None = None):
        if sum(check is not None for check in (ready_tcp, ready_http, ready)) > 1:
            raise ValueError("give at most one of ready_tcp, ready_http, ready")
        probed = ready_tcp[0] if ready_tcp else urllib.parse.urlsplit(ready_http or "").hostname
        if netns is None and probed and in_hosts_network(probed):
            raise ValueError(f"{probed} is inside a test host: pass netns= to probe it there")
        self.name = name
        self.argv = [str(arg) for arg in argv]
        self.env = dict(env or {})
        self.cwd = cwd
        self.netns = netns
        self.log_path = Path(log_dir) / f"{name}.log"
        self._ready_tcp = ready_tcp
        self._ready_http = ready_http
        self._ready = ready
        self._proc: subprocess.Popen | None = None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> "Daemon":
        """Start the process, output appended to `log_path`."""
        if self._proc is not None:
            raise DaemonError(f"daemon {self.name!r} was already started")
        argv = netns_argv(self.netns, self.argv) if self.netns else self.argv
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **self.env}, cwd=self.cwd, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 30.0) -> "Daemon":
        """Return once the readiness check passes; DaemonError if it dies or times out."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.exit_code
            if code is not None:
                raise DaemonError(self._describe(
                    f"exited with code {code} before it was ready"))
            if self._is_ready():
                return self
            if time.monotonic() >= deadline:
                raise DaemonError(self._describe(f"was not ready after {timeout}s"))
            time.sleep(_POLL_INTERVAL)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` s; reap; return the exit code.

        Exit codes follow subprocess: negative means killed by that signal.
        Returns None if the daemon was never started.  Safe to call twice.
        """
        if self._proc is None:
            return None
        if self.exit_code is None:
            self.kill(signal.SIGTERM)
            if self._wait_exit(timeout) is None:
                self.kill(signal.SIGKILL)
                self._wait_exit(None)
        if self._proc.returncode is None:  # not reaped yet: the ids are still ours
            self._kill_leftovers()
        return self._proc.wait()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the daemon's PID (no-op once it has been reaped)."""
        if self._proc is not None and self._proc.returncode is None:
            os.kill(self._proc.pid, sig)

    def __enter__(self) -> "Daemon":
        if self._proc is None:
            self.start()
            try:
                self.wait_ready()
            except BaseException:
                self.stop()
                raise
        return self

    def __exit__(self, *exc_info):
        self.stop()

    # -- state ---------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self.exit_code is None

    @property
    def exit_code(self) -> int | None:
        """The exit code once the process has ended, else None (never reaps)."""
        if self._proc is None:
            return None
        if self._proc.returncode is not None:
            return self._proc.returncode
        info = os.waitid(os.P_PID, self._proc.pid,
                         os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is None:
            return None
        if info.si_code == os.CLD_EXITED:
            return info.si_status
        return -info.si_status  # killed or dumped by signal si_status

    def log_text(self) -> str:
        """Everything the daemon has written so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 40) -> str:
        """The last `n` lines of the log."""
        return "\n".join(self.log_text().splitlines()[-n:])

    def __repr__(self):
        return f"<Daemon {self.name} pid={self.pid} alive={self.alive}>"

    # -- helpers -------------------------------------------------------------

    def _is_ready(self) -> bool:
        if self._ready is not None:
            return bool(self._ready(self))
        if self._ready_tcp is not None:
            return self._probe(_tcp_accepts, *self._ready_tcp)
        if self._ready_http is not None:
            return self._probe(_http_ok, self._ready_http)
        return True

    def _probe(self, check, *args) -> bool:
        if self.netns:
            return call_in_netns(self.netns, lambda: check(*args))
        return check(*args)

    def _wait_exit(self, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.exit_code) is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.02)
        return code

    def _kill_leftovers(self) -> None:
        # Runs before reaping: the zombie keeps the process-group id ours.
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _describe(self, what: str) -> str:
        return (f"daemon {self.name!r} (pid {self.pid}) {what}\n"
                f"command: {shlex.join(self.argv)}\n"
                f"--- last lines of {self.log_path} ---\n{self.log_tail()}")


class Daemons:
    """The daemons of one test: one log directory, stopped together.

    Each daemon is registered before it starts, so `stop_all()` stops it
    even when starting or waiting for it failed.
    """

    def __init__(self, log_dir):
        self.log_dir = Path(log_dir)
        self._by_name: dict[str, Daemon] = {}

    def start(self, name: str, argv, *, timeout: float = 30.0, **options) -> Daemon:
        """Start a Daemon (options as for Daemon) and wait until it is ready."""
        if name in self._by_name:
            raise ValueError(f"a daemon named {name!r} already exists in this test")
        daemon = self._by_name[name] = Daemon(name, argv, self.log_dir, **options)
        daemon.start()
        return daemon.wait_ready(timeout)

    def stop_all(self) -> None:
        """Stop every daemon, newest first; then report the first failure."""
        errors = []
        for daemon in reversed(list(self._by_name.values())):
            try:
                daemon.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        if errors:
            raise errors[0]

    def __getitem__(self, name: str) -> Daemon:
        return self._by_name[name]

    def __iter__(self):
        return iter(list(self._by_name.values()))

    def __len__(self):
        return len(self._by_name)


def _tcp_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with _NO_PROXY.open(url, timeout=_PROBE_TIMEOUT) as response:
            return 200 <= response.status < 300
    except (OSError, http.client.HTTPException):
        return False
