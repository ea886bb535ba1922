"""keel-run's commands on a running container: exec (flags and --process, env, cwd, user, caps,
tty, detach, exit status), ps, pause/resume, update, events; spec and features; bad input. Each
test removes its containers and checks nothing is left behind."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from runtime import Runtime, leftovers, make_rootfs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="keel-run tests need root")


@pytest.fixture(scope="module")
def rootfs():
    base = Path(tempfile.mkdtemp(prefix="keelrunx-"))
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


def started(rt, cid, args=("sleep", "300"), **changes):
    b = rt.bundle(cid, list(args), **changes)
    rt("run", "-d", "--bundle", b, cid)
    return rt.state(cid)


def wait_stopped(rt, cid):
    deadline = time.monotonic() + 10
    while rt.state(cid)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_exec_env_cwd_user_and_exit_status(rt):
    st = started(rt, "ex")
    p = rt("exec", "ex", "sh", "-c", "echo $$ $PATH; hostname; cat /proc/self/cgroup")
    pid, path = p.stdout.split("\n")[0].split()
    # Its own process in the container's pid namespace (the init is 1), the config's env.
    assert int(pid) > 1 and path == "/bin"
    assert p.stdout.split("\n")[1] == "keel"
    own = Path(f"/proc/{st['pid']}/cgroup").read_text()
    assert p.stdout.split("\n", 2)[2].strip() == own.strip()
    assert rt("exec", "ex", "sh", "-c", "exit 42", check=False).returncode == 42
    p = rt("exec", "--env", "FOO=bar", "-e", "PATH=/bin:/sbin", "--cwd", "/tmp", "--user",
           "1000:1001", "--additional-gids", "5", "ex", "sh", "-c",
           "echo $FOO $PATH; pwd; id -u; id -g; id -G; grep CapEff /proc/self/status")
    lines = p.stdout.split("\n")
    assert lines[0] == "bar /bin:/sbin" and lines[1] == "/tmp"
    assert lines[2:4] == ["1000", "1001"] and "5" in lines[4].split()
    assert lines[5].split()[1] == "0000000000000000"  # caps go with a non-root uid
    # --cap adds to the config's sets; --no-new-privs.
    p = rt("exec", "--cap", "CAP_SYS_ADMIN", "--no-new-privs", "ex", "sh", "-c",
           "grep -E 'CapEff|NoNewPrivs' /proc/self/status")
    eff = int(p.stdout.split()[1], 16)
    assert eff & (1 << 21) and eff & (1 << 5)  # SYS_ADMIN and KILL
    assert "NoNewPrivs:\t1" in p.stdout
    # A signal that kills the exec'd process: 128+n, as a shell would say.
    assert rt("exec", "ex", "sh", "-c", "kill -9 $$", check=False).returncode == 137


def test_exec_process_file_detach_and_pid_file(rt, tmp_path):
    st = started(rt, "exp")
    proc = {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c",
            "echo from-process-file $A > /tmp/exp-out; sleep 300"], "env": ["PATH=/bin", "A=1"],
            "cwd": "/", "noNewPrivileges": True,
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 77, "hard": 77}]}
    pf = tmp_path / "process.json"
    pf.write_text(json.dumps(proc))
    pidfile = tmp_path / "exec.pid"
    t0 = time.monotonic()
    rt("exec", "--process", pf, "--detach", "--pid-file", pidfile, "exp")
    assert time.monotonic() - t0 < 10
    pid = int(pidfile.read_text())
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{st['pid']}/ns/pid")
    deadline = time.monotonic() + 10
    while not (rt.rootfs / "tmp" / "exp-out").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert (rt.rootfs / "tmp" / "exp-out").read_text() == "from-process-file 1\n"
    (rt.rootfs / "tmp" / "exp-out").unlink()
    assert "Max open files            77" in Path(f"/proc/{pid}/limits").read_text()
    # ps lists the init and the detached process, in both formats.
    pids = json.loads(rt("ps", "--format", "json", "exp").stdout)
    assert set(pids) >= {st["pid"], pid}
    table = rt("ps", "exp").stdout.splitlines()
    assert "PID" in table[0].split() and len(table) >= 3
    assert any(str(pid) in line.split() for line in table[1:])
    rt("delete", "--force", "exp")
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_exec_tty_through_console_socket(rt, tmp_path):
    started(rt, "ext")
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
    rt("exec", "--tty", "--detach", "--console-socket", sock_path, "ext", "sh", "-c",
       "tty; echo done-$((2*3))")
    t.join(timeout=30)
    server.close()
    assert got["name"].startswith("/dev/pts/")
    data = b""
    with os.fdopen(got["fd"], "rb", buffering=0) as master:
        while b"done-6" not in data:
            try:
                chunk = master.read(1024)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    assert b"/dev/pts/0" in data and b"done-6" in data, data
    p = rt("exec", "--tty", "ext", "true", check=False)
    assert p.returncode == 255 and "console-socket" in p.stderr


def test_pause_resume_freezes(rt):
    counter = rt.rootfs / "tmp" / f"count-{os.getpid()}"
    try:
        started(rt, "pz", ["sh", "-c", f"i=0; while true; do i=$((i+1)); echo $i > /tmp/{counter.name}; done"])

        def value():
            try:
                return int(counter.read_text() or 0)
            except (FileNotFoundError, ValueError):
                return 0
        deadline = time.monotonic() + 10
        while value() < 10:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        rt("pause", "pz")
        assert rt.state("pz")["status"] == "paused"
        assert json.loads(rt("list", "--format", "json").stdout)[0]["status"] == "paused"
        v1 = value()
        time.sleep(0.3)
        assert value() == v1, "the counter moved while paused"
        p = rt("exec", "pz", "true", check=False)
        assert p.returncode == 255 and "paused" in p.stderr
        p = rt("pause", "pz", check=False)
        assert p.returncode == 1 and "not running" in p.stderr
        rt("resume", "pz")
        assert rt.state("pz")["status"] == "running"
        deadline = time.monotonic() + 10
        while value() <= v1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        p = rt("resume", "pz", check=False)
        assert p.returncode == 1 and "not paused" in p.stderr
        # A paused container: delete refuses without --force, and --force removes it.
        rt("pause", "pz")
        p = rt("delete", "pz", check=False)
        assert p.returncode == 1 and "paused" in p.stderr
        rt("delete", "--force", "pz")
    finally:
        counter.unlink(missing_ok=True)


def test_update_changes_limits_inside(rt, tmp_path):
    started(rt, "up", linux__resources={"devices": [{"allow": False, "access": "rwm"}],
                                        "memory": {"limit": 100 << 20}, "pids": {"limit": 50}})

    def inside(path_v1, path_v2):
        return rt("exec", "up", "sh", "-c",
                  f"cat /sys/fs/cgroup/{path_v1} 2>/dev/null || cat /sys/fs/cgroup/{path_v2}"
                  ).stdout.strip()
    assert inside("memory/memory.limit_in_bytes", "memory.max") == str(100 << 20)
    rt("update", "--memory", "64m", "--pids-limit", "20", "--cpu-shares", "512", "up")
    assert inside("memory/memory.limit_in_bytes", "memory.max") == str(64 << 20)
    assert inside("pids/pids.max", "pids.max") == "20"
    res = tmp_path / "res.json"
    res.write_text(json.dumps({"memory": {"limit": 48 << 20}, "pids": {"limit": 30}}))
    rt("update", "--resources", res, "up")
    assert inside("memory/memory.limit_in_bytes", "memory.max") == str(48 << 20)
    assert inside("pids/pids.max", "pids.max") == "30"
    rt("update", "--resources", "-", "up", input=json.dumps({"pids": {"limit": 31}}))
    assert inside("pids/pids.max", "pids.max") == "31"
    # The device rules from create still hold: /dev/null works, the rest is denied.
    assert rt("exec", "up", "sh", "-c", "echo x > /dev/null").returncode == 0
    ev = json.loads(rt("events", "--stats", "up").stdout)
    assert ev["type"] == "stats" and ev["id"] == "up"
    assert ev["data"]["memory"]["usage"]["limit"] == 48 << 20
    assert ev["data"]["pids"]["current"] >= 1
    for bad in (["--memory", "lots"], ["--resources", tmp_path / "none.json"],
                ["--kernel-memory", "1m"]):
        p = rt("update", *bad, "up", check=False)
        assert p.returncode == 1 and p.stderr.strip()
    res.write_text('{"memory": {"limit": "big"}}')
    p = rt("update", "--resources", res, "up", check=False)
    assert p.returncode == 1 and "memory.limit" in p.stderr


def test_events_reports_oom_and_stats(rt):
    """A process that allocates past the memory limit is OOM-killed: `events` prints runc's
    {"type":"oom","id":...} line (v1: eventfd on memory.oom_control; v2: memory.events)."""
    limit = 24 << 20
    started(rt, "oom", linux__resources={"memory": {"limit": limit, "swap": limit}})
    ev = json.loads(rt("events", "--stats", "oom").stdout)
    data = ev["data"]
    assert data["memory"]["usage"]["limit"] == limit
    assert data["memory"]["swap"]["limit"] == limit
    assert "failcnt" in data["memory"]["usage"] and isinstance(data["memory"]["raw"], dict)
    assert data["cpu"]["usage"]["total"] > 0 and "kernel" in data["cpu"]["usage"]
    assert "throttling" in data["cpu"] and data["pids"]["current"] >= 1
    argv = [str(rt.binary), "--root", str(rt.root), "events", "--interval", "1s", "oom"]
    with tempfile.TemporaryFile("w+") as err:
        ev = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True)
        guard = threading.Timer(120, ev.kill)  # a broken watch must not hang the suite
        guard.start()
        try:
            # The first stats line comes after the OOM watch is registered.
            first = json.loads(ev.stdout.readline())
            assert first["type"] == "stats" and first["id"] == "oom"
            # busybox dd allocates and fills a 64 MiB block: more than the 24 MiB limit.
            p = rt("exec", "oom", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1",
                   check=False)
            assert p.returncode == 137, (p.returncode, p.stderr)
            line = ev.stdout.readline()
            while line and json.loads(line)["type"] == "stats":
                line = ev.stdout.readline()
            assert json.loads(line) == {"type": "oom", "id": "oom"}
            # The container itself still runs; once it stops, events ends on its own.
            rt("kill", "oom", "KILL")
            assert ev.wait(timeout=30) == 0
        finally:
            guard.cancel()
            if ev.poll() is None:
                ev.kill()
                ev.wait()
            ev.stdout.close()
            err.seek(0)
            assert "ERROR" not in err.read().upper()


def test_bad_input(rt, tmp_path):
    for cmd in (["exec", "nope", "true"], ["ps", "nope"], ["pause", "nope"], ["resume", "nope"],
                ["update", "--memory", "1m", "nope"], ["events", "--stats", "nope"]):
        p = rt(*cmd, check=False)
        assert p.returncode in (1, 255) and "does not exist" in p.stderr, (cmd, p.stderr)
    assert rt("exec", "nope", "true", check=False).returncode == 255
    b = rt.bundle("stopped", ["true"])
    rt("run", "--keep", "--bundle", b, "stopped")
    assert rt.state("stopped")["status"] == "stopped"
    p = rt("exec", "stopped", "true", check=False)
    assert p.returncode == 255 and "stopped container" in p.stderr
    p = rt("ps", "stopped", check=False)
    assert p.returncode == 1 and "not running" in p.stderr
    rt("delete", "stopped")

    started(rt, "bad")
    pf = tmp_path / "p.json"
    pf.write_text('{"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},')
    p = rt("exec", "--process", pf, "bad", check=False)
    assert p.returncode == 255 and str(pf) in p.stderr
    pf.write_text('{"args": [], "cwd": "/", "user": {"uid": 0, "gid": 0}}')
    p = rt("exec", "--process", pf, "bad", check=False)
    assert p.returncode == 255 and "process.args" in p.stderr
    pf.write_text('{"args": ["true"], "cwd": "relative", "user": {"uid": 0, "gid": 0}}')
    p = rt("exec", "--process", pf, "bad", check=False)
    assert p.returncode == 255 and "process.cwd" in p.stderr
    p = rt("exec", "bad", "no-such-binary", check=False)
    assert p.returncode == 255 and "executable file not found" in p.stderr
    p = rt("exec", "--user", "root", "bad", "true", check=False)
    assert p.returncode == 255 and "UID[:GID]" in p.stderr
    p = rt("exec", "bad", check=False)
    assert p.returncode == 255 and "no command" in p.stderr
    # No exec process is left behind by the failures.
    assert json.loads(rt("ps", "--format", "json", "bad").stdout) == [rt.state("bad")["pid"]]
    p = rt("checkpoint", "--help", check=False)
    assert p.returncode == 1 and "CRIU" in p.stderr


def test_spec_and_features(rt, tmp_path):
    feats = json.loads(rt("features").stdout)
    assert feats["ociVersionMax"] == "1.1.0"
    assert "poststop" in feats["hooks"] and "rbind" in feats["mountOptions"]
    assert "network" in feats["linux"]["namespaces"]
    assert "CAP_SYS_ADMIN" in feats["linux"]["capabilities"]
    assert "SCMP_ACT_ERRNO" in feats["linux"]["seccomp"]["actions"]
    assert feats["linux"]["cgroup"]["v1"] is True

    for rootless in (False, True):
        cid = "specr" if rootless else "spec"
        bundle = tmp_path / cid
        bundle.mkdir()
        rt("spec", "--bundle", bundle, *(["--rootless"] if rootless else []))
        cfg = json.loads((bundle / "config.json").read_text())
        assert cfg["process"]["args"] == ["sh"] and cfg["process"]["terminal"] is True
        assert ({"type": "user"} in cfg["linux"]["namespaces"]) == rootless
        p = rt("spec", "--bundle", bundle, check=False)
        assert p.returncode == 1 and "exists" in p.stderr
        # Accepted back as it is but for the terminal, the command and a rootfs.
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = ["sh", "-c", "echo spec-ok; hostname"]
        cfg["root"]["path"] = str(rt.rootfs)
        cfg["root"]["readonly"] = True
        (bundle / "config.json").write_text(json.dumps(cfg))
        rt.created.append(cid)
        p = rt("run", "--bundle", bundle, cid)
        assert p.stdout == "spec-ok\nkeel-run\n"


def test_exec_joins_a_user_namespace(rt):
    ns = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "user")]
    idmap = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    st = started(rt, "exu", linux__namespaces=ns, linux__uidMappings=idmap,
                 linux__gidMappings=idmap)
    p = rt("exec", "exu", "sh", "-c", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user")
    uid, m_in, m_host, m_size, userns = p.stdout.split()
    assert (uid, m_in, m_host, m_size) == ("0", "0", "100000", "65536")
    assert userns == os.readlink(f"/proc/{st['pid']}/ns/user")
    rt("exec", "-d", "exu", "sleep", "300")
    pids = json.loads(rt("ps", "--format", "json", "exu").stdout)
    assert len(pids) == 2
    for pid in pids:  # host uid of the container's root
        assert Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0] == "100000"
