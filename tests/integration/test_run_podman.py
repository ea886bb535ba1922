"""podman 4.3 driving keel-run as its OCI runtime (`--runtime`), configured as
/work/shared/docs/ANCHORS.md says, with every piece of state in a temporary directory of the
test's own (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, CNI config): run --rm, run -d with exec,
logs, stop and rm, run -it and exec -it on a pty, pause/unpause, update --memory, a bridge
network between two containers, and a pod whose containers share one network namespace.
Everything podman made is removed at the end, also when a test fails."""

import json
import os
import pty
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from keelharness import machine_lock, unused_subnet

PODMAN = shutil.which("podman")
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="podman tests need root"),
    pytest.mark.skipif(PODMAN is None or shutil.which("conmon") is None,
                       reason="podman and conmon are not installed"),
]

IMAGE = "localhost/keelbb"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def make_image_tar(base: Path) -> Path:
    rootfs = base / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    for name in subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                               check=True).stdout.split():
        if name != "busybox" and "/" not in name:
            (rootfs / "bin" / name).symlink_to("busybox")
    for d in ("proc", "sys", "dev", "tmp", "etc", "root", "www"):
        (rootfs / d).mkdir()
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    (rootfs / "www" / "index.html").write_text("served by keel\n")
    tar = base / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
    return tar


def libpod_cgroups() -> set[Path]:
    """podman's cgroupfs directories (libpod_parent and what is below it) in every hierarchy."""
    out = set()
    for h in Path("/sys/fs/cgroup").iterdir():
        for d in ([h] if (h / "cgroup.procs").exists() else list(h.iterdir())
                  if h.is_dir() else []):
            parent = d / "libpod_parent"
            if parent.is_dir():
                out.add(parent)
                out.update(p for p in parent.iterdir() if p.is_dir())
    return out


def iptables_chains() -> set[str]:
    p = subprocess.run(["iptables-save"], capture_output=True, text=True)
    return {line.split()[0][1:] for line in p.stdout.splitlines() if line.startswith(":")}


class Podman:
    def __init__(self, base: Path, runtime: Path):
        self.base = base
        self.runtime = runtime
        conf = base / "containers.conf"
        conf.write_text(f"""[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "none"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{base}/events.log"
runtime = "keel-run"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "keel-run"]
tmp_dir = "{base}/libpod-tmp"
volume_path = "{base}/volumes"

[engine.runtimes]
keel-run = ["{runtime}"]

[network]
network_backend = "cni"
network_config_dir = "{base}/cni"
cni_plugin_dirs = ["/usr/lib/cni"]
""")
        storage = base / "storage.conf"
        storage.write_text(f"""[storage]
driver = "overlay"
runroot = "{base}/run"
graphroot = "{base}/graph"
""")
        self.env = dict(os.environ, CONTAINERS_CONF=str(conf),
                        CONTAINERS_STORAGE_CONF=str(storage))
        self.networks: list[str] = []
        self.bridges: list[str] = []

    def __call__(self, *args, check=True, timeout=120, input=None):
        argv = [PODMAN, *map(str, args)]
        p = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout,
                           input=input, stdin=None if input is not None else subprocess.DEVNULL)
        for marker in SANITIZER_MARKERS:
            assert marker not in p.stderr, f"{argv}: sanitizer report:\n{p.stderr}"
        if check and p.returncode != 0:
            raise AssertionError(f"{argv} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p

    def inspect(self, cid: str) -> dict:
        return json.loads(self("inspect", cid).stdout)[0]

    def runtime_logs(self) -> list[str]:
        """Every line keel-run wrote to the --log files podman gave it (that are still there:
        podman's cleanup removes an exec session's directory, and its log, in the background)."""
        lines = []
        for top, _, files in os.walk(self.base):  # (os.walk skips directories that vanish)
            if "oci-log" in files:
                try:
                    lines += Path(top, "oci-log").read_text(errors="replace").splitlines()
                except FileNotFoundError:
                    pass
        return lines

    def cleanup(self):
        for cid in self("ps", "-aq", "--no-trunc", check=False).stdout.split():
            self("rm", "-f", "-t", "0", cid, check=False)
        for pod in self("pod", "ps", "-q", "--no-trunc", check=False).stdout.split():
            self("pod", "rm", "-f", "-t", "0", pod, check=False)
        for net in self.networks:
            self("network", "rm", "-f", net, check=False)
        self("system", "reset", "-f", check=False, timeout=180)
        # Whatever overlay or netns mounts are still below our directory.
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            target = line.split()[4]
            if target.startswith(str(self.base)):
                subprocess.run(["umount", "-l", target], check=False)


@pytest.fixture(scope="module", autouse=True)
def one_run_at_a_time():
    """podman's cgroups live under one libpod_parent per machine, and the tests check that
    nothing new is left there: another test run's containers (other worktrees on this
    machine) must not be there meanwhile."""
    with machine_lock("podman"):
        yield


@pytest.fixture(scope="module")
def podman(one_run_at_a_time, build_dir):
    base = Path(tempfile.mkdtemp(prefix="keelpodman-"))
    base.chmod(0o755)
    chains_before = iptables_chains()
    netns_before = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    links_before = set(os.listdir("/sys/class/net"))
    cgroups_before = libpod_cgroups()
    pm = Podman(base, build_dir / "cmd" / "keel-run" / "keel-run")
    try:
        pm("import", "--change", 'CMD ["/bin/sh"]', make_image_tar(base), IMAGE)
        yield pm
    finally:
        pm.cleanup()
        # Bridges the CNI plugin made for our networks, and the firewall plugin's chains if
        # they were not there before.
        for link in pm.bridges:
            if link not in links_before and os.path.exists(f"/sys/class/net/{link}"):
                subprocess.run(["ip", "link", "del", link], check=False)
        new_chains = iptables_chains() - chains_before
        if "CNI-FORWARD" in new_chains:
            subprocess.run(["iptables", "-D", "FORWARD", "-m", "comment", "--comment",
                            "CNI firewall plugin rules", "-j", "CNI-FORWARD"], check=False)
        for chain in sorted(new_chains, key=lambda c: c != "CNI-FORWARD"):
            if chain.startswith("CNI-"):
                subprocess.run(["iptables", "-F", chain], check=False)
                subprocess.run(["iptables", "-X", chain], check=False)
        # Only podman's own (cni-*): other tests on this machine make namespaces of theirs.
        left_netns = {ns for ns in (set(os.listdir("/run/netns")) if os.path.isdir("/run/netns")
                                    else set()) - netns_before if ns.startswith("cni-")}
        for ns in left_netns:
            subprocess.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(base, ignore_errors=True)
        # keel-run removes each container's libpod-<id> directories on delete; podman leaves
        # libpod_parent and libpod_parent/conmon (conmon's own), which go if we made them.
        new_cgroups = libpod_cgroups() - cgroups_before
        left_cgroups = [d for d in new_cgroups if d.name.startswith("libpod-")]
        for d in sorted(new_cgroups, key=lambda p: -len(p.parts)):
            try:
                d.rmdir()
            except OSError:
                pass
        assert not left_cgroups, f"container cgroups left behind: {left_cgroups}"
        assert not left_netns, f"network namespaces left behind: {left_netns}"
        assert not any(str(base) in line
                       for line in Path("/proc/self/mountinfo").read_text().splitlines())


@pytest.fixture
def pm(podman):
    """The module's podman; each test's containers are removed when it ends."""
    yield podman
    for cid in podman("ps", "-aq", "--no-trunc", check=False).stdout.split():
        podman("rm", "-f", "-t", "0", cid, check=False)
    for pod in podman("pod", "ps", "-q", "--no-trunc", check=False).stdout.split():
        podman("pod", "rm", "-f", "-t", "0", pod, check=False)


def wait_for(fn, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_podman_uses_keel_run(pm):
    info = json.loads(pm("info", "--format", "json").stdout)
    assert info["host"]["ociRuntime"]["name"] == "keel-run"
    assert info["host"]["ociRuntime"]["path"] == str(pm.runtime)


def test_podman_run_rm(pm):
    p = pm("run", "--rm", IMAGE, "echo", "hi")
    assert p.stdout == "hi\n"
    p = pm("run", "--rm", IMAGE, "sh", "-c", "exit 3", check=False)
    assert p.returncode == 3
    # podman reads keel-run's error to tell a missing command (127) from other failures.
    p = pm("run", "--rm", IMAGE, "no-such-command", check=False)
    assert p.returncode == 127, p.stderr
    assert "executable file not found" in p.stderr
    assert pm("ps", "-aq").stdout == ""
    for line in pm.runtime_logs():
        rec = json.loads(line)
        assert set(rec) == {"level", "msg", "time"}


def test_podman_detached_exec_logs_stop_rm(pm):
    cid = pm("run", "-d", IMAGE, "sh", "-c",
             "trap 'echo bye; exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); "
             "sleep 0.1; done").stdout.strip()
    assert pm.inspect(cid)["State"]["Status"] == "running"
    p = pm("exec", cid, "sh", "-c", "echo in $(hostname); cat /proc/1/cmdline | tr '\\0' ' '")
    assert p.stdout.startswith("in ") and "while true" in p.stdout
    assert pm("exec", cid, "sh", "-c", "exit 7", check=False).returncode == 7
    p = pm("exec", "-e", "FOO=bar", "-w", "/tmp", "-u", "1000:1000", cid, "sh", "-c",
           "echo $FOO; pwd; id -u; id -g")
    assert p.stdout.split() == ["bar", "/tmp", "1000", "1000"]
    p = pm("exec", cid, "no-such-command", check=False)
    assert p.returncode == 127 and "executable file not found" in p.stderr
    # podman reports keel-run's own words. (It gives keel-run a --log file in the exec
    # session's directory, which its cleanup removes at a time of its choosing - often before
    # `podman exec` returns - so the file is not looked for; whatever log lines are there
    # must be keel-run's JSON. test_run.py checks that format directly.)
    assert "keel-run: exec failed" in p.stderr, p.stderr
    for line in pm.runtime_logs():
        assert set(json.loads(line)) == {"level", "msg", "time"}
    # A detached exec keeps running in the container after podman returns.
    pm("exec", "-d", cid, "sleep", "300")
    wait_for(lambda: "sleep 300" in pm("top", cid, "args").stdout, what="the detached exec")
    wait_for(lambda: "tick 3" in pm("logs", cid).stdout, what="ticks in the log")
    pm("stop", "-t", "10", cid)
    st = pm.inspect(cid)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 0
    # conmon may still be copying the container's last output to the log
    wait_for(lambda: "bye" in pm("logs", cid).stdout, what="the trap's output in the log")
    pm("rm", cid)
    assert pm("ps", "-aq").stdout == ""


def test_podman_pause_unpause_update(pm):
    cid = pm("run", "-d", IMAGE, "sh", "-c",
             "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done").stdout.strip()
    wait_for(lambda: len(pm("logs", cid).stdout.split()) > 2, what="the counter")
    pm("pause", cid)
    assert pm.inspect(cid)["State"]["Status"] == "paused"
    n1 = len(pm("logs", cid).stdout.split())
    time.sleep(0.5)
    n2 = len(pm("logs", cid).stdout.split())
    assert n1 == n2, "the counter went on while paused"
    p = pm("exec", cid, "true", check=False)
    assert p.returncode != 0
    pm("unpause", cid)
    assert pm.inspect(cid)["State"]["Status"] == "running"
    wait_for(lambda: len(pm("logs", cid).stdout.split()) > n2 + 2, what="the counter to go on")

    pm("update", "--memory", "64m", cid)
    p = pm("exec", cid, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
           "2>/dev/null || cat /sys/fs/cgroup/memory.max")
    assert p.stdout.strip() == str(64 << 20)
    # And a paused container can still be removed.
    pm("pause", cid)
    pm("rm", "-f", "-t", "0", cid)
    assert pm("ps", "-aq").stdout == ""


def drive_pty(argv, env, steps, timeout=30.0):
    """Run argv on a new pty; for each (wait_for_bytes, send_bytes) step wait for the text,
    then type. Returns (everything read, exit status)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        for want, send in steps + [(None, None)]:
            while want is None or want not in out:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {want!r}; got {out!r}")
                r, _, _ = select.select([fd], [], [], min(left, 0.2))
                if not r:
                    continue
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    break
                out += data
            if send is None:
                break
            os.write(fd, send)
        _, status = os.waitpid(pid, 0)
        pid = 0
        return out, os.waitstatus_to_exitcode(status)
    finally:
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)


def test_podman_run_it_and_exec_it(pm):
    out, status = drive_pty([PODMAN, "run", "-it", "--rm", IMAGE, "sh"], pm.env,
                            [(b"# ", b"tty; echo mark$((6*7))\n"), (b"mark42", b"exit 3\n")])
    assert b"/dev/pts/0" in out and status == 3, out
    cid = pm("run", "-d", IMAGE, "sleep", "300").stdout.strip()
    out, status = drive_pty([PODMAN, "exec", "-it", cid, "sh"], pm.env,
                            [(b"# ", b"tty; stty size; echo mark$((7*7))\n"),
                             (b"mark49", b"exit 4\n")])
    assert b"/dev/pts/" in out and status == 4, out
    pm("rm", "-f", "-t", "0", cid)


def test_podman_bridge_network(pm):
    net = f"keelnet{os.getpid() % 200}"
    subnet = f"{unused_subnet('10.213')}.0/24"
    pm.networks.append(net)
    pm("network", "create", "--subnet", subnet, net)
    pm.bridges.append(json.loads(pm("network", "inspect", net).stdout)[0]["network_interface"])
    try:
        server = pm("run", "-d", "--network", net, IMAGE, "httpd", "-f", "-p", "8080",
                    "-h", "/www").stdout.strip()
        ip = pm.inspect(server)["NetworkSettings"]["Networks"][net]["IPAddress"]
        assert ip.startswith(subnet.rsplit(".", 2)[0])
        p = pm("run", "--rm", "--network", net, IMAGE, "sh", "-c",
               f"ip -4 addr show eth0; for i in $(seq 100); do "
               f"wget -qO- http://{ip}:8080/index.html && exit 0; sleep 0.2; done; exit 1")
        assert "served by keel" in p.stdout
        assert subnet.rsplit(".", 2)[0] in p.stdout
        pm("rm", "-f", "-t", "0", server)
    finally:
        pm("network", "rm", "-f", net, check=False)


def test_podman_pod_shares_the_network_namespace(pm):
    pod = f"keelpod{os.getpid()}"
    pm("pod", "create", "--name", pod)
    a = pm("run", "-d", "--pod", pod, IMAGE, "sh", "-c",
           "while true; do echo from-a | nc -l -p 7777; done").stdout.strip()
    b = pm("run", "-d", "--pod", pod, IMAGE, "sleep", "300").stdout.strip()
    ns_a = pm("exec", a, "readlink", "/proc/self/ns/net").stdout
    ns_b = pm("exec", b, "readlink", "/proc/self/ns/net").stdout
    assert ns_a == ns_b and ns_a.startswith("net:")
    assert pm("exec", a, "ip", "link").stdout == pm("exec", b, "ip", "link").stdout
    # b reaches a's listening port on the shared loopback.
    p = pm("exec", b, "sh", "-c", "for i in $(seq 100); do "
           "nc 127.0.0.1 7777 </dev/null && exit 0; sleep 0.2; done; exit 1")
    assert "from-a" in p.stdout
    # Each still has its own pid namespace and root.
    assert pm("exec", a, "readlink", "/proc/self/ns/pid").stdout != \
        pm("exec", b, "readlink", "/proc/self/ns/pid").stdout
    pm("pod", "rm", "-f", "-t", "0", pod)
    assert pm("pod", "ps", "-q").stdout == ""
