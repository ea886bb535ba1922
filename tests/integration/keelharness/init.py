"""keel-init under test: unit files in a temp dir, keel-init started as a supervisor (a child
subreaper) or as PID 1 of a new pid namespace (`unshare -fp --mount-proc`), keelctl pointed at
its control socket, and a cleanup that leaves no process, cgroup or socket behind even when
keel-init itself died: every cgroup under the test's own root is emptied by PID (SIGKILL to
each process listed in its cgroup.procs) and removed.
"""

import itertools
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

_COUNTER = itertools.count()
CGROUP_FS = Path("/sys/fs/cgroup")


def own_cgroup_dirs(root: str) -> list[Path]:
    """Every <hierarchy>/<our cgroup>/<root> directory that exists."""
    dirs = []
    mine = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        mine[ctrls] = path
    for hier in CGROUP_FS.iterdir():
        if not hier.is_dir():
            continue
        key = None
        for ctrls in mine:
            names = ctrls.split(",") if ctrls else []
            if (hier.name == "unified" and ctrls == "") or hier.name in names or \
                    f"name={hier.name}" in names:
                key = ctrls
        if key is None:
            continue
        d = hier / mine[key].lstrip("/") / root
        if d.is_dir():
            dirs.append(d)
    return dirs


def _procs(d: Path) -> list[int]:
    pids = []
    for sub in [d] + [p for p in d.rglob("*") if p.is_dir()]:
        try:
            pids += [int(x) for x in (sub / "cgroup.procs").read_text().split()]
        except OSError:
            pass
    return pids


def sweep_cgroups(root: str) -> list[int]:
    """SIGKILL what is left in the test's cgroups (by PID), then remove them. Returns the PIDs
    that were found (a clean run finds none)."""
    found = []
    for _ in range(50):
        left = []
        for d in own_cgroup_dirs(root):
            left += _procs(d)
        if not left:
            break
        found += [p for p in left if p not in found]
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    for d in own_cgroup_dirs(root):
        for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            try:
                sub.rmdir()
            except OSError:
                pass
        try:
            d.rmdir()
        except OSError:
            pass
    return found


class KeelInit:
    def __init__(self, build_dir: Path, tmp_path: Path, daemons, *, pid1: bool = False, cgroup_v1: bool = False):
        self.bin = Path(build_dir) / "cmd" / "keel-init" / "keel-init"
        self.keelctl_bin = Path(build_dir) / "cmd" / "keelctl" / "keelctl"
        self.dir = tmp_path
        self.units = tmp_path / "units"
        self.units.mkdir(parents=True, exist_ok=True)
        self.etc = tmp_path / "etc"  # what enable/mask write, searched first
        self.etc.mkdir(exist_ok=True)
        self.run_dir = tmp_path / "run"
        self.journal_dir = tmp_path / "journal"
        self.state_dir = tmp_path / "state"  # Persistent= timer stamps
        self.cg_root = f"keel-test-{os.getpid()}-{next(_COUNTER)}.slice"
        self.daemons = daemons
        self.pid1 = pid1
        self.cgroup_v1 = cgroup_v1
        self.daemon = None

    # -- files ---------------------------------------------------------------

    def unit(self, name: str, text: str) -> Path:
        p = self.units / name
        p.write_text(text)
        return p

    @property
    def socket(self) -> Path:
        return self.run_dir / "keel-init.sock"

    # -- life cycle ----------------------------------------------------------

    def start(self, target: str | None = None, extra=()):
        argv = [str(self.bin), "--unit-path", str(self.etc), "--unit-path", str(self.units),
                "--config-dir", str(self.etc), "--no-default-paths",
                "--runtime-dir", str(self.run_dir), "--journal-dir", str(self.journal_dir),
                "--state-dir", str(self.state_dir),
                "--cgroup-root", self.cg_root, "--log-level", "debug", *extra]
        argv += ["--default-target", target] if target else ["--no-boot"]
        if self.cgroup_v1:
            argv.append("--cgroup-v1")
        if self.pid1:
            argv = ["unshare", "-fp", "--mount-proc", "--kill-child=SIGKILL"] + argv
        name = f"keel-init-{next(_COUNTER)}"
        self.daemon = self.daemons.start(name, argv, ready=lambda d: self._answers())
        return self

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return self.call({"method": "ping"}).get("ok", False)
        except OSError:
            return False

    @property
    def pid(self) -> int:
        """keel-init's PID as seen from here (the child of unshare in PID 1 mode)."""
        if not self.pid1:
            return self.daemon.pid
        for _ in range(100):
            kids = Path(f"/proc/{self.daemon.pid}/task/{self.daemon.pid}/children").read_text().split()
            if kids:
                return int(kids[0])
            time.sleep(0.02)
        raise RuntimeError("no keel-init under unshare")

    def shutdown(self, timeout: float = 30.0) -> int:
        """SIGTERM to keel-init itself: the ordered shutdown; returns its exit code."""
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.daemon.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        code = self.daemon.stop()
        return code

    def close(self):
        """Stop keel-init (if still running) and sweep its cgroups by PID."""
        if self.daemon is not None and self.daemon.alive:
            try:
                self.shutdown(timeout=20)
            except (OSError, RuntimeError):
                pass
            self.daemon.stop()
        return sweep_cgroups(self.cg_root)

    # -- talking to it -------------------------------------------------------

    def call(self, req: dict, timeout: float = 30.0) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.socket))
            req = dict(req, id=1)
            s.sendall(json.dumps(req).encode() + b"\n")
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("keel-init closed the connection")
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    msg = json.loads(line)
                    if msg.get("id") == 1 and "event" not in msg:
                        return msg

    def ctl(self, *args, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.keelctl_bin), "--socket", str(self.socket), *map(str, args)],
                              capture_output=True, text=True, timeout=timeout)

    def prop(self, unit: str, name: str) -> str:
        r = self.call({"method": "get", "unit": unit})
        return r["props"].get(name, "")

    def state(self, unit: str) -> tuple[str, str]:
        p = self.call({"method": "get", "unit": unit})["props"]
        return p["ActiveState"], p["SubState"]

    def wait(self, pred, timeout: float = 60.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; keel-init log:\n{self.log()}")

    def wait_state(self, unit: str, active: str, sub: str | None = None, timeout: float = 60.0):
        return self.wait(lambda: self.state(unit)[0] == active and (sub is None or self.state(unit)[1] == sub),
                         timeout, f"{unit} to be {active}/{sub}")

    def log(self) -> str:
        return self.daemon.log_text() if self.daemon else ""

    def journal(self, *args, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """`keelctl journal ARGS` against this keel-init (its journal directory comes from ping)."""
        return self.ctl("journal", *args, timeout=timeout)

    def unit_log(self, unit: str) -> str:
        """Everything the journal holds for unit: its output and keel-init's messages about it."""
        r = subprocess.run([str(self.keelctl_bin), "journal", "-D", str(self.journal_dir), "-u", unit,
                            "-o", "cat", "-q"], capture_output=True, text=True, timeout=60)
        return r.stdout
