"""keel-run end to end, as root, with a busybox-static rootfs: the runc command line, each config
field checked from inside the container, bad input, and nothing left behind."""

import copy
import json
import os
import subprocess
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
from runtime import BASE_CONFIG, Runtime, leftovers, make_rootfs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="keel-run tests need root")


@pytest.fixture(scope="module")
def rootfs():
    # Outside pytest's 0700 tmp tree: a user namespace's root (host uid 100000) must reach it.
    base = Path(tempfile.mkdtemp(prefix="keelrun-"))
    base.chmod(0o755)
    try:
        yield make_rootfs(base / "rootfs")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def rt(build_dir, rootfs, tmp_path):
    runtime = Runtime(build_dir / "cmd" / "keel-run" / "keel-run", tmp_path / "state", rootfs,
                      tmp_path)
    yield runtime
    runtime.cleanup()
    for cid in runtime.created:
        assert leftovers(runtime, cid) == []


def run_out(rt, cid, script, **changes):
    """`run` a shell script in a fresh container; returns (exit status, stdout, stderr)."""
    b = rt.bundle(cid, ["sh", "-c", script], **changes)
    p = rt("run", "--bundle", b, cid, check=False)
    return p.returncode, p.stdout, p.stderr


def test_run_echo_and_exit_status(rt):
    b = rt.bundle("echo", ["echo", "hello", "from", "keel"])
    p = rt("run", "--bundle", b, "echo")
    assert p.stdout == "hello from keel\n"
    code, _, _ = run_out(rt, "exit3", "exit 3")
    assert code == 3
    assert leftovers(rt, "echo") == [] and leftovers(rt, "exit3") == []


def test_create_start_state_kill_delete(rt, tmp_path):
    b = rt.bundle("life", ["sleep", "300"])
    pidfile = tmp_path / "life.pid"
    rt("create", "--bundle", b, "--pid-file", pidfile, "life")
    st = rt.state("life")
    assert st["status"] == "created"
    assert st["id"] == "life" and st["bundle"] == str(b) and st["pid"] > 0
    assert int(pidfile.read_text()) == st["pid"]
    # The init waits before exec: its command line is still keel-run's.
    assert b"keel-run" in Path(f"/proc/{st['pid']}/cmdline").read_bytes()
    listed = rt("list", "--format", "json").stdout
    assert [c["id"] for c in json.loads(listed)] == ["life"]
    assert "life" in rt("list").stdout and rt("list", "-q").stdout == "life\n"

    rt("start", "life")
    st = rt.state("life")
    assert st["status"] == "running"
    assert Path(f"/proc/{st['pid']}/cmdline").read_bytes() == b"sleep\x00300\x00"
    p = rt("start", "life", check=False)
    assert p.returncode == 1 and "already running" in p.stderr

    # sleep is pid 1 of its namespace with no handler: SIGTERM from outside is ignored.
    rt("kill", "life", "TERM")
    time.sleep(0.2)
    assert rt.state("life")["status"] == "running"
    p = rt("delete", "life", check=False)
    assert p.returncode == 1 and "not stopped" in p.stderr
    rt("kill", "life", "9")
    deadline = time.monotonic() + 10
    while rt.state("life")["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    p = rt("kill", "life", "KILL", check=False)
    assert p.returncode == 1 and "not running" in p.stderr
    rt("delete", "life")
    assert leftovers(rt, "life") == []
    p = rt("state", "life", check=False)
    assert p.returncode == 1 and "does not exist" in p.stderr


def test_kill_with_a_handler_and_kill_all(rt):
    b = rt.bundle("trap", ["sh", "-c", "trap 'exit 7' TERM; sleep 300 & sleep 300 & wait"])
    rt("run", "--detach", "--bundle", b, "trap")
    assert rt.state("trap")["status"] == "running"
    rt("kill", "trap", "SIGTERM")
    deadline = time.monotonic() + 10
    while rt.state("trap")["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    rt("delete", "trap")

    # Without a pid namespace of its own, --all reaches every process of the container.
    b = rt.bundle("all", ["sh", "-c", "sleep 300 & sleep 300 & wait"],
                  linux__namespaces=[{"type": t} for t in ("network", "ipc", "uts", "mount")])
    rt("run", "-d", "--bundle", b, "all")
    rt("kill", "--all", "all", "KILL")
    deadline = time.monotonic() + 10
    while rt.state("all")["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    rt("delete", "all")


def test_delete_force_and_delete_created(rt):
    b = rt.bundle("f1", ["sleep", "300"])
    rt("run", "-d", "--bundle", b, "f1")
    rt("delete", "--force", "f1")
    assert leftovers(rt, "f1") == []
    b = rt.bundle("c1", ["sleep", "300"])
    rt("create", "--bundle", b, "c1")
    pid = rt.state("c1")["pid"]
    rt("delete", "c1")  # a created container may be deleted without --force, as in runc
    assert leftovers(rt, "c1") == []
    assert not Path(f"/proc/{pid}").exists() or \
        Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    # --force on an unknown container is not an error (podman relies on that).
    rt("delete", "--force", "never-was")


def test_hostname_env_cwd_user_umask_groups(rt):
    code, out, err = run_out(
        rt, "ident", "hostname; echo $FOO; pwd; id -u; id -g; id -G; umask",
        hostname="box1",
        process__env=["PATH=/bin", "FOO=bar baz"],
        process__cwd="/tmp",
        process__user={"uid": 1000, "gid": 1001, "additionalGids": [1002, 1003], "umask": 0o27})
    assert code == 0, err
    assert out.split("\n")[:7] == ["box1", "bar baz", "/tmp", "1000", "1001", "1001 1002 1003",
                                   "0027"]


def test_pid_namespace_and_isolation_fields(rt):
    code, out, err = run_out(
        rt, "pidns",
        "echo $$; ps -o pid,comm | sed 1d | head -1; cat /proc/self/oom_score_adj; "
        "grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status; ulimit -n; ulimit -Hn",
        process__oomScoreAdj=500,
        process__rlimits=[{"type": "RLIMIT_NOFILE", "hard": 1000, "soft": 900}])
    assert code == 0, err
    lines = out.split("\n")
    assert lines[0] == "1"
    assert lines[1].split() == ["1", "sh"]
    assert lines[2] == "500"
    caps = 1 << 29 | 1 << 5 | 1 << 10  # AUDIT_WRITE, KILL, NET_BIND_SERVICE
    assert lines[3].split()[1] == f"{caps:016x}"  # CapBnd
    assert lines[4].split()[1] == f"{caps:016x}"  # CapEff
    assert lines[5].split() == ["NoNewPrivs:", "1"]
    assert lines[6:8] == ["900", "1000"]


def test_rlimit_above_hard_limit_is_a_clear_error(rt):
    hard = int(subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout)
    code, _, err = run_out(rt, "rlim", "true",
                           process__rlimits=[{"type": "RLIMIT_NOFILE", "hard": hard + 1000,
                                              "soft": 1024}])
    assert code == 1
    assert "RLIMIT_NOFILE" in err and "CAP_SYS_RESOURCE" in err
    assert leftovers(rt, "rlim") == []


def test_bind_mount_masked_and_readonly_paths(rt, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "file").write_text("from the host\n")
    (rt.rootfs / "etc" / "secret").write_text("do not show\n")
    code, out, err = run_out(
        rt, "mnt",
        "cat /mnt/data/file; echo x > /mnt/data/new && echo wrote; "
        "echo -n '[' ; cat /etc/secret; echo ']'; ls /proc/acpi 2>&1 | wc -l; "
        "echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo ro-proc-sys; "
        "touch /rootfile 2>/dev/null && echo root-writable",
        mounts=copy.deepcopy(BASE_CONFIG["mounts"]) + [
            {"destination": "/mnt/data", "type": "bind", "source": str(data),
             "options": ["rbind", "ro"]}],
        linux__maskedPaths=["/etc/secret", "/proc/acpi"],
    )
    assert code == 0, err
    assert out.split("\n")[:4] == ["from the host", "[]", "0", "ro-proc-sys"]
    assert "wrote" not in out and "root-writable" in out
    assert not (data / "new").exists()

    code, out, err = run_out(rt, "roroot", "touch /rootfile 2>&1 || echo read-only",
                             root={"path": str(rt.rootfs), "readonly": True})
    assert code == 0, err
    assert "read-only" in out


def test_memory_limit_is_enforced(rt):
    # 64 MB held in a shell variable: fine without a limit, killed with 24 MB.
    script = "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived ${#x}"
    code, out, err = run_out(rt, "nomem", script)
    assert code == 0 and "survived 64000000" in out, err
    res = {"devices": [{"allow": False, "access": "rwm"}],
           "memory": {"limit": 24 * 1024 * 1024, "swap": 24 * 1024 * 1024}}
    code, out, err = run_out(
        rt, "mem", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; " + script,
        linux__resources=res)
    assert out.split("\n")[0] == str(24 * 1024 * 1024)
    assert "survived" not in out
    assert code != 0


def test_pids_limit_and_cpu_shares(rt):
    code, out, err = run_out(
        rt, "pids",
        "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.shares; "
        "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; wait",
        linux__resources={"pids": {"limit": 4}, "cpu": {"shares": 512}})
    lines = out.split("\n")
    assert lines[:2] == ["4", "512"], (out, err)
    assert "can't fork" in out + err or "Resource temporarily unavailable" in out + err, (out, err)


def test_cpuset_parent_made_by_someone_else_and_not_yet_filled(rt):
    # Another process has just made the parent cgroup and not yet copied cpuset.cpus/mems into
    # it (two pods starting at once do this to each other): the container must still start,
    # its parent filled on the way, instead of failing with ENOSPC when its task is attached.
    cpuset = Path("/sys/fs/cgroup/cpuset")
    if not (cpuset / "cpuset.cpus").exists():
        pytest.skip("no cgroup v1 cpuset hierarchy")
    parent = cpuset / f"keeltest-{os.getpid()}-unfilled"
    parent.mkdir()
    try:
        assert (parent / "cpuset.cpus").read_text().strip() == ""
        code, out, err = run_out(rt, "cpusetrace", "cat /sys/fs/cgroup/cpuset/cpuset.cpus",
                                 linux__cgroupsPath=f"/{parent.name}/c")
        assert code == 0, err
        assert out.strip() == (cpuset / "cpuset.cpus").read_text().strip()
        assert (parent / "cpuset.cpus").read_text().strip() != ""
        assert not (parent / "c").exists()
    finally:
        if (parent / "c").exists():
            (parent / "c").rmdir()
        parent.rmdir()


def test_joined_network_namespace_is_shared(rt):
    name = f"keeltest-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", "kveth0", "type", "veth",
                        "peer", "name", "kveth1"], check=True)
        ns = [{"type": t} for t in ("pid", "ipc", "uts", "mount")] + [
            {"type": "network", "path": f"/run/netns/{name}"}]
        code, out, err = run_out(rt, "netns", "cat /proc/net/dev", linux__namespaces=ns)
        assert code == 0, err
        assert "kveth0" in out
        # A new network namespace has only lo.
        code, out, err = run_out(rt, "netns2", "cat /proc/net/dev")
        assert "kveth0" not in out and "lo:" in out
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_sysctl_and_user_namespace(rt):
    code, out, err = run_out(rt, "sysctl", "cat /proc/sys/net/ipv4/ip_forward",
                             linux__sysctl={"net.ipv4.ip_forward": "1"})
    assert code == 0 and out == "1\n", err
    ns = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "user", "cgroup")]
    maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    code, out, err = run_out(rt, "userns", "cat /proc/self/uid_map; id -u; cat /proc/self/cgroup | head -1",
                             linux__namespaces=ns, linux__uidMappings=maps, linux__gidMappings=maps)
    assert code == 0, err
    lines = out.split("\n")
    assert lines[0].split() == ["0", "100000", "65536"]
    assert lines[1] == "0"
    assert lines[2].endswith(":/")  # a cgroup namespace rooted at the container's cgroup


def test_joined_user_namespace_with_new_pid_and_mount_namespaces(rt):
    # A user namespace someone else made (as a pod does): a process holds it, the maps are
    # written from outside. The container joins it by path and gets new pid and mount
    # namespaces, owned by it, with the init as their pid 1.
    holder = subprocess.Popen(["unshare", "--user", "sleep", "300"])
    try:
        maps = "0 100000 65536\n"
        for _ in range(500):
            if os.readlink(f"/proc/{holder.pid}/ns/user") != os.readlink("/proc/self/ns/user"):
                break
            time.sleep(0.01)
        Path(f"/proc/{holder.pid}/gid_map").write_text(maps)
        Path(f"/proc/{holder.pid}/uid_map").write_text(maps)
        userns = f"/proc/{holder.pid}/ns/user"
        ns = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
        ns.append({"type": "user", "path": userns})
        script = ("echo pid=$$; cat /proc/self/uid_map; id -u; ps -o pid,comm; "
                  "grep ' /proc proc ' /proc/self/mounts | wc -l")
        code, out, err = run_out(rt, "joinuser", script, linux__namespaces=ns)
        assert code == 0, err
        lines = out.split("\n")
        assert lines[0] == "pid=1"
        assert lines[1].split() == ["0", "100000", "65536"]
        assert lines[2] == "0"
        # Only the container's own processes, the shell as pid 1.
        rows = [l.split() for l in lines[4:] if l.strip() and not l.strip().isdigit()]
        assert ["1", "sh"] in rows and all(int(r[0]) < 10 for r in rows), out
        assert lines[-2] == "1"  # /proc is mounted

        # create: the state's pid is the init, in the joined user namespace, pid 1 inside.
        b = rt.bundle("joinuser2", ["sleep", "300"], linux__namespaces=ns)
        rt("create", "--bundle", b, "joinuser2")
        st = rt.state("joinuser2")
        assert os.readlink(f"/proc/{st['pid']}/ns/user") == os.readlink(userns)
        nspid = [l for l in Path(f"/proc/{st['pid']}/status").read_text().split("\n")
                 if l.startswith("NSpid:")][0].split()
        assert nspid[1] == str(st["pid"]) and nspid[-1] == "1"
        rt("start", "joinuser2")
        assert Path(f"/proc/{st['pid']}/cmdline").read_bytes() == b"sleep\x00300\x00"
        rt("delete", "--force", "joinuser2")
    finally:
        holder.kill()
        holder.wait()


def test_joined_user_namespace_failure_is_reported(rt):
    # The helper fails to join (a network namespace given as the user namespace): its error
    # reaches `run` and nothing is left behind (rt's fixture checks the cgroups and state).
    ns = [{"type": t} for t in ("pid", "mount", "uts")]
    ns.append({"type": "user", "path": "/proc/self/ns/net"})
    code, out, err = run_out(rt, "joinbad", "true", linux__namespaces=ns)
    assert code != 0 and "joining the user namespace" in err, err


def test_seccomp_rule_returns_the_errno(rt):
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": 13}]}
    code, out, err = run_out(rt, "seccomp", "mkdir /tmp/x 2>&1; echo rc=$?", linux__seccomp=seccomp)
    assert "Permission denied" in out and "rc=1" in out, (out, err)


def test_hooks_run_with_state(rt, tmp_path):
    log = tmp_path / "hooks"
    log.mkdir()
    shared = tmp_path / "shared"
    shared.mkdir()

    def hook(name):
        return {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {log}/{name}.json"]}

    hooks = {k: [hook(k)] for k in ("prestart", "createRuntime", "createContainer", "poststart",
                                   "poststop")}
    # startContainer runs inside the container: its path and files are the container's.
    hooks["startContainer"] = [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /shared/start.json"]}]
    mounts = copy.deepcopy(BASE_CONFIG["mounts"]) + [
        {"destination": "/shared", "type": "bind", "source": str(shared), "options": ["rbind"]}]
    b = rt.bundle("hooks", ["true"], hooks=hooks, mounts=mounts,
                  annotations={"org.keel.test": "yes"})
    rt("run", "--bundle", b, "hooks")
    for k in ("prestart", "createRuntime", "createContainer", "poststart", "poststop"):
        state = json.loads((log / f"{k}.json").read_text())
        assert state["id"] == "hooks" and state["bundle"] == str(b), k
        assert state["annotations"] == {"org.keel.test": "yes"}
        assert state["pid"] > 0
    assert json.loads((shared / "start.json").read_text())["id"] == "hooks"


def test_failing_hook_fails_create_and_leaves_nothing(rt):
    hooks = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}]}
    b = rt.bundle("badhook", ["true"], hooks=hooks)
    p = rt("create", "--bundle", b, "badhook", check=False)
    assert p.returncode == 1 and "createRuntime hook /bin/sh exited with status 4" in p.stderr
    assert leftovers(rt, "badhook") == []


def root_propagation(out):
    """The optional fields (shared:N, master:N, ...) of / in a mountinfo text."""
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[4] == "/":
            return fields[6:fields.index("-")]
    raise AssertionError(f"no / in\n{out}")


def test_rootfs_propagation(rt):
    # The host's / is private here, so a slave of it would show no master. keel-run runs in a
    # mount namespace of its own (gone with it) where the rootfs is a shared bind mount.
    wrap = ["unshare", "--mount", "sh", "-c",
            'mount --bind "$0" "$0" && mount --make-shared "$0" && exec "$@"', rt.rootfs]
    seen = {}
    for prop in ("slave", "shared", "private"):
        cid = f"prop-{prop}"
        b = rt.bundle(cid, ["cat", "/proc/self/mountinfo"], linux__rootfsPropagation=prop)
        p = rt("run", "--bundle", b, cid, wrap=wrap)
        seen[prop] = root_propagation(p.stdout)
        assert leftovers(rt, cid) == []
    assert [f.split(":")[0] for f in seen["slave"]] == ["master"], seen
    assert "shared" in [f.split(":")[0] for f in seen["shared"]], seen
    assert seen["private"] == [], seen


def test_hook_timeout_fails_create_and_leaves_nothing(rt):
    # /bin/sleep itself is the hook: the SIGKILL at the timeout ends it, nothing outlives it.
    hooks = {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "60"], "timeout": 1}]}
    b = rt.bundle("slowhook", ["true"], hooks=hooks)
    start = time.monotonic()
    p = rt("create", "--bundle", b, "slowhook", check=False)
    assert time.monotonic() - start < 30
    assert p.returncode == 1, p.stderr
    assert "prestart hook /bin/sleep timed out after 1 s" in p.stderr
    assert leftovers(rt, "slowhook") == []
    assert rt("state", "slowhook", check=False).returncode == 1


def test_create_killed_half_way_is_cleaned_by_delete_force(rt, tmp_path):
    # keel-run is SIGKILLed while a createRuntime hook runs: the init (in its cgroups by then)
    # dies with it, the cgroups and the state directory stay until `delete --force`.
    hook_pid = tmp_path / "hook.pid"
    hooks = {"createRuntime": [{"path": "/bin/sh",
                                "args": ["sh", "-c", f"echo $$ > {hook_pid}; exec sleep 120"]}]}
    b = rt.bundle("halfway", ["true"], hooks=hooks)
    argv = [str(rt.binary), "--root", str(rt.root), "create", "--bundle", str(b), "halfway"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    hook = 0
    try:
        deadline = time.monotonic() + 30
        while not (hook_pid.exists() and hook_pid.read_text().strip()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        hook = int(hook_pid.read_text())
        proc.kill()
        proc.wait()
        left = leftovers(rt, "halfway")
        assert any(x.startswith("cgroup ") for x in left), left
        # A second create of the id fails without touching what is there.
        p = rt("create", "--bundle", b, "halfway", check=False)
        assert p.returncode == 1 and "container with id exists: halfway" in p.stderr
        assert leftovers(rt, "halfway") == left
        p = rt("state", "halfway", check=False)
        assert p.returncode == 1
        rt("delete", "--force", "halfway")
        assert leftovers(rt, "halfway") == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if hook:
            try:
                os.kill(hook, 9)
            except ProcessLookupError:
                pass


def test_errors_duplicate_unknown_missing_rootfs_bad_config(rt, tmp_path):
    b = rt.bundle("dup", ["sleep", "300"])
    rt("create", "--bundle", b, "dup")
    p = rt("create", "--bundle", b, "dup", check=False)
    assert p.returncode == 1 and "container with id exists: dup" in p.stderr
    assert rt.state("dup")["status"] == "created"  # the failed create took nothing away
    rt("delete", "dup")

    for cmd in (["state"], ["start"], ["kill"], ["delete"]):
        p = rt(*cmd, "nope", check=False)
        assert p.returncode == 1 and "container does not exist" in p.stderr, cmd

    b = rt.bundle("norootfs", ["true"], root={"path": str(tmp_path / "missing")})
    p = rt("run", "--bundle", b, "norootfs", check=False)
    assert p.returncode == 1 and "rootfs" in p.stderr and "does not exist" in p.stderr
    assert leftovers(rt, "norootfs") == []

    b = rt.bundle("noexe", ["/bin/not-there"])
    p = rt("create", "--bundle", b, "noexe", check=False)
    assert p.returncode == 1 and "not-there" in p.stderr
    assert leftovers(rt, "noexe") == []

    b = rt.bundle("badmount", ["true"], mounts=[
        {"destination": "/x", "type": "bind", "source": str(tmp_path / "nothing-here")}])
    p = rt("run", "--bundle", b, "badmount", check=False)
    assert p.returncode == 1 and "nothing-here" in p.stderr
    assert leftovers(rt, "badmount") == []

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text('{"ociVersion": "1.0.2", "root": {"path": "rootfs"},')
    p = rt("run", "--bundle", bad, "bad", check=False)
    assert p.returncode == 1 and "line 1" in p.stderr
    (bad / "config.json").write_text(json.dumps({
        "ociVersion": "1.0.2", "root": {"path": str(rt.rootfs)}, "hostname": "h",
        "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "linux": {"namespaces": [{"type": "mount"}]}}))
    p = rt("run", "--bundle", bad, "bad", check=False)
    assert p.returncode == 1 and "hostname needs a new uts namespace" in p.stderr
    (bad / "config.json").write_text(json.dumps({
        "ociVersion": "1.0.2", "root": {"path": str(rt.rootfs)},
        "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "linux": {"namespaces": [{"type": "mount"}], "intelRdt": {"closID": "x"}}}))
    p = rt("run", "--bundle", bad, "bad", check=False)
    assert p.returncode == 1 and "linux.intelRdt is not supported" in p.stderr
    assert leftovers(rt, "bad") == []


def test_concurrent_creates_of_one_id(rt):
    b = rt.bundle("race", ["sleep", "300"])
    results = []

    def create():
        results.append(rt("create", "--bundle", b, "race", check=False))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.returncode for p in results) == [0, 1, 1, 1]
    assert rt.state("race")["status"] == "created"
    rt("delete", "race")


def test_log_format_json(rt, tmp_path):
    log = tmp_path / "log.json"
    p = rt("state", "nope", check=False, extra_global=["--log", log, "--log-format", "json"])
    assert p.returncode == 1
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and "does not exist" in entry["msg"]


def test_console_socket_gets_the_pty(rt, tmp_path):
    sock_path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(1)
    got = {}

    def accept():
        conn, _ = server.accept()
        with conn:
            msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
            got["name"], got["fd"] = msg.decode(), fds[0]

    t = threading.Thread(target=accept)
    t.start()
    b = rt.bundle("tty", ["sh", "-c", "tty; echo cols=$(stty size)"],
                  process__terminal=True, process__consoleSize={"height": 30, "width": 100})
    rt("run", "-d", "--console-socket", sock_path, "--bundle", b, "tty")
    t.join(timeout=30)
    server.close()
    assert got["name"].startswith("/dev/pts/")
    with os.fdopen(got["fd"], "rb", buffering=0) as master:
        data = b""
        while b"cols=" not in data or not data.endswith(b"\n"):
            try:
                chunk = master.read(1024)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            data += chunk
    text = data.decode().replace("\r", "")
    assert "/dev/pts/0" in text and "cols=30 100" in text, text
    deadline = time.monotonic() + 10
    while rt.state("tty")["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    rt("delete", "tty")


def test_time_namespace_devices_preserve_fds_no_pivot(rt, tmp_path):
    ns = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "time")]
    code, out, err = run_out(rt, "timens", "cut -d' ' -f1 /proc/uptime",
                             linux__namespaces=ns,
                             linux__timeOffsets={"boottime": {"secs": 864000, "nanosecs": 0}})
    assert code == 0, err
    assert float(out) >= 864000

    code, out, err = run_out(rt, "devs", "ls -ln /dev/fuse",
                             linux__devices=[{"path": "/dev/fuse", "type": "c", "major": 10,
                                              "minor": 229, "fileMode": 0o600, "uid": 7, "gid": 8}])
    assert code == 0, err
    fields = out.split()
    assert fields[0] == "crw-------" and fields[2:4] == ["7", "8"] and fields[4] == "10,", out

    r, w = os.pipe()
    try:
        b = rt.bundle("fds", ["sh", "-c", "echo via-fd3 >&3; ls /proc/self/fd | wc -l"])
        # keel-run gets the pipe as its fd 3 (set up in the child only: pytest owns our 3).
        p = rt("run", "--preserve-fds", "1", "--bundle", b, "fds", pass_fds=(3, w),
               preexec_fn=lambda: os.dup2(w, 3))
        os.close(w)
        w = -1
        assert os.read(r, 100) == b"via-fd3\n"
        assert p.stdout.strip() == "5"  # 0, 1, 2, 3 and ls's own directory fd
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)

    b = rt.bundle("nopivot", ["sh", "-c", "ls /; cat /proc/self/mountinfo | wc -l"])
    p = rt("run", "--no-pivot", "--bundle", b, "nopivot")
    assert "busybox" not in p.stdout and "bin" in p.stdout
