"""Helpers for keel-run's integration tests: a busybox-static rootfs, OCI bundles made from a base
config (what `runc spec` writes, plus a cgroupsPath of the test's own), a wrapper that runs
keel-run with a private --root, and checks that nothing is left behind."""

import copy
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BUSYBOX = "/bin/busybox"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CG_PREFIX = f"keeltest-{os.getpid()}"


def make_rootfs(path: Path) -> Path:
    """A rootfs with busybox-static and a link for each of its applets."""
    (path / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, path / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for name in applets:
        if name != "busybox" and "/" not in name:
            (path / "bin" / name).symlink_to("busybox")
    for d in ("proc", "sys", "dev", "tmp", "etc", "root"):
        (path / d).mkdir()
    (path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (path / "etc" / "group").write_text("root:x:0:\n")
    return path


BASE_CONFIG = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["true"],
        "env": ["PATH=/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                         for k in ("bounding", "effective", "permitted", "ambient")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": False},
    "hostname": "keel",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list",
                        "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger"],
    },
}


def cgroup_hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers and the unified one)."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        if fields[sep + 1] in ("cgroup", "cgroup2"):
            out.append(Path(fields[4]))
    return out


class Runtime:
    """keel-run with a private state root; every call checks for sanitizer reports."""

    def __init__(self, binary: Path, root: Path, rootfs: Path, tmp: Path):
        self.binary = binary
        self.root = root
        self.rootfs = rootfs
        self.tmp = tmp
        self.created: list[str] = []

    def __call__(self, *args, check=True, timeout=60, input=None, extra_global=(), pass_fds=(),
                 preexec_fn=None, wrap=()):
        """wrap: a command line keel-run's own is appended to (e.g. unshare ... sh -c ...)."""
        argv = [*map(str, wrap), str(self.binary), "--root", str(self.root), *extra_global,
                *map(str, args)]
        # Files, not pipes: a created container keeps keel-run's stdio open after it exits.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL if input is None else None,
                                  input=input, stdout=out, stderr=err, text=True, timeout=timeout,
                                  pass_fds=pass_fds, preexec_fn=preexec_fn)
            out.seek(0)
            err.seek(0)
            proc.stdout, proc.stderr = out.read(), err.read()
        for marker in SANITIZER_MARKERS:
            assert marker not in proc.stderr, f"{argv}: sanitizer report:\n{proc.stderr}"
        if check and proc.returncode != 0:
            raise AssertionError(f"{argv} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def bundle(self, cid: str, args=None, **changes) -> Path:
        """A bundle named after the container, its config the base one with changes applied:
        keys are paths with "__" between the levels (process__cwd), values replace what is there (None deletes)."""
        cfg = copy.deepcopy(BASE_CONFIG)
        cfg["root"]["path"] = str(self.rootfs)
        cfg["linux"]["cgroupsPath"] = f"/{CG_PREFIX}/{cid}"
        if args is not None:
            cfg["process"]["args"] = args
        for key, value in changes.items():
            parts = key.split("__")
            node = cfg
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            if value is None:
                node.pop(parts[-1], None)
            else:
                node[parts[-1]] = value
        bundle = self.tmp / f"bundle-{cid}"
        bundle.mkdir(exist_ok=True)
        (bundle / "config.json").write_text(json.dumps(cfg, indent=1))
        self.created.append(cid)
        return bundle

    def state(self, cid: str) -> dict:
        return json.loads(self("state", cid).stdout)

    def cleanup(self):
        for cid in self.created:
            self("delete", "--force", cid, check=False)


def leftovers(rt: Runtime, cid: str) -> list[str]:
    """What a container left: its state directory, cgroups (its own and the test's parent
    directory), mounts of the rootfs in this namespace."""
    found = []
    if (rt.root / cid).exists():
        found.append(f"state dir {rt.root / cid}")
    for h in cgroup_hierarchies():
        for rel in (f"{CG_PREFIX}/{cid}", CG_PREFIX):
            if (h / rel).exists():
                found.append(f"cgroup {h / rel}")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if str(rt.rootfs) in line or str(rt.tmp) in line:
            found.append(f"mount {line}")
    return found
