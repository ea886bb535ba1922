"""keel-init's sandboxing settings (systemd.exec(5)) seen from inside real services: each service
writes what it sees into a file, and the test reads it. Capabilities, NoNewPrivileges=,
SecureBits=, the file-system protections in a private mount namespace (and nothing of it left in
the host's mount table), PrivateDevices=, PrivateNetwork=, SystemCallFilter= and
RuntimeDirectory=/StateDirectory= & co.

Each test runs its own keel-init (the `init` fixture in conftest.py) and leaves no process,
cgroup, mount or directory behind.
"""

import os
import pwd
import shutil
import time
from pathlib import Path

import pytest

PY = "/usr/bin/python3"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="keel-init tests need root")


def status_caps(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k.startswith("Cap") or k == "NoNewPrivs":
            out[k] = int(v.strip(), 16) if k.startswith("Cap") else int(v.strip())
    return out


def bits(*caps) -> int:
    return sum(1 << c for c in caps)


CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE, CAP_NET_RAW, CAP_SYS_MODULE = 0, 5, 10, 13, 16
CAP_SYS_RAWIO, CAP_SYS_ADMIN, CAP_MKNOD = 17, 21, 27


def mountinfo() -> list[str]:
    # "mount point, options" of every mount the test process sees
    return sorted(" ".join(l.split()[4:6]) for l in Path("/proc/self/mountinfo").read_text().splitlines())


def run_oneshot(k, name, body, out):
    k.unit(name, "[Service]\nType=oneshot\n" + body)
    assert k.ctl("daemon-reload").returncode == 0
    r = k.ctl("start", name)
    assert r.returncode == 0, (r.stdout, r.stderr, k.unit_log(name))
    return Path(out).read_text()


def test_capabilities_and_no_new_privileges(init, tmp_path):
    k = init()
    k.start()
    host_bnd = status_caps(Path("/proc/self/status").read_text())["CapBnd"]
    out = tmp_path / "caps"
    # an allow list over two lines adds up
    text = run_oneshot(k, "bnd.service",
                       "CapabilityBoundingSet=CAP_CHOWN CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_KILL\n"
                       f"ExecStart=/bin/sh -c 'cat /proc/self/status > {out}'\n", out)
    c = status_caps(text)
    assert c["CapBnd"] == bits(CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE), hex(c["CapBnd"])
    assert c["CapEff"] == c["CapBnd"]  # root keeps what the bounding set allows
    assert c["NoNewPrivs"] == 0
    # "~" takes capabilities out; a second "~" line takes out more
    text = run_oneshot(k, "inv.service",
                       "CapabilityBoundingSet=~CAP_SYS_ADMIN\nCapabilityBoundingSet=~CAP_NET_RAW\n"
                       "NoNewPrivileges=yes\n"
                       f"ExecStart=/bin/sh -c 'cat /proc/self/status > {out}'\n", out)
    c = status_caps(text)
    assert c["CapBnd"] == host_bnd & ~bits(CAP_SYS_ADMIN, CAP_NET_RAW), hex(c["CapBnd"])
    assert c["NoNewPrivs"] == 1
    # an unprivileged user with one ambient capability
    # (nobody cannot write below pytest's 0700 directory: its output goes to the journal)
    nobody = pwd.getpwnam("nobody")
    run_oneshot(k, "amb.service", "User=nobody\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"
                "ExecStart=/bin/sh -c 'grep ^Cap /proc/self/status; id -u'\n", "/dev/null")
    # The output goes through a pipe that keel-init reads on its own time: the start job may
    # finish before the last line is in the journal.
    k.wait(lambda: any(l.isdigit() for l in k.unit_log("amb.service").splitlines()), what="amb.service's output")
    text = "\n".join(l for l in k.unit_log("amb.service").splitlines() if l.startswith("Cap") or l.isdigit())
    c = status_caps(text)
    assert text.strip().splitlines()[-1] == str(nobody.pw_uid)
    assert c["CapAmb"] == bits(CAP_NET_BIND_SERVICE), hex(c["CapAmb"])
    assert c["CapEff"] == bits(CAP_NET_BIND_SERVICE), hex(c["CapEff"])
    # SecureBits=: read back with prctl(PR_GET_SECUREBITS)
    text = run_oneshot(k, "sec.service",
                       "SecureBits=noroot noroot-locked\n"
                       f"ExecStart={PY} -c 'import ctypes; print(ctypes.CDLL(None).prctl(27, 0, 0, 0, 0), "
                       f"file=open(\"{out}\", \"w\"))'\n", out)
    assert int(text) == 0b11, text


@pytest.fixture
def probes_removed():
    """The probe touches /usr, /etc and /var where a sandbox lets it: gone again, pass or fail."""
    yield
    for d in ("/usr", "/etc", "/var"):
        for p in Path(d).glob("keel-probe-*"):
            p.unlink(missing_ok=True)


def test_file_system_protections_in_a_private_namespace(init, tmp_path, probes_removed):
    k = init()
    k.start()
    before = mountinfo()
    rw = tmp_path / "rw"
    ro = tmp_path / "ro"
    secret = tmp_path / "secret"
    src = tmp_path / "src"
    dst = tmp_path / "dst"
    scratch = tmp_path / "scratch"
    for d in (rw, ro, secret, src, dst, scratch):
        d.mkdir()
    (secret / "key").write_text("s3cret")
    (src / "file").write_text("from-src")
    out = rw / "report"
    script = tmp_path / "probe.sh"
    script.write_text(f"""
try() {{ if sh -c "$2" 2>/dev/null; then echo "$1=yes"; else echo "$1=no"; fi; }}
{{
try usr_writable 'touch /usr/keel-probe-$$'
try etc_writable 'touch /etc/keel-probe-$$'
try var_writable 'touch /var/keel-probe-$$'
try rw_writable 'touch {rw}/x'
try ro_writable 'touch {ro}/x'
try secret_readable 'cat {secret}/key'
try bound 'test "$(cat {dst}/file)" = from-src'
try bound_writable 'touch {dst}/y'
try scratch_empty 'test -z "$(ls -A {scratch})"'
try scratch_writable 'touch {scratch}/z'
try home_empty 'test -z "$(ls -A /root)"'
try sysctl_writable 'echo 1 > /proc/sys/kernel/printk_ratelimit'
try cgroup_writable 'mkdir /sys/fs/cgroup/keel-probe-$$ && rmdir /sys/fs/cgroup/keel-probe-$$'
try modules_visible 'ls /usr/lib/modules/$(uname -r) >/dev/null'
echo devs=$(ls /dev | tr '\\n' ' ')
try null_works 'echo x > /dev/null'
}} > {out}
""")
    (scratch / "hidden").write_text("x")
    body = ("ProtectSystem=strict\n"
            f"ReadWritePaths={rw}\nReadOnlyPaths={ro}\n"
            f"InaccessiblePaths={secret} -/nonexistent/keel\n"
            f"BindPaths={src}:{dst}\n"
            f"TemporaryFileSystem={scratch}\n"
            "ProtectHome=tmpfs\nPrivateDevices=yes\nProtectKernelTunables=yes\n"
            "ProtectKernelModules=yes\nProtectControlGroups=yes\n"
            f"ExecStart=/bin/sh {script}\n")
    text = run_oneshot(k, "fs.service", body, out)
    got = dict(l.split("=", 1) for l in text.splitlines())
    assert got["usr_writable"] == "no" and got["etc_writable"] == "no" and got["var_writable"] == "no", got
    assert got["rw_writable"] == "yes" and got["ro_writable"] == "no", got
    assert got["secret_readable"] == "no", got
    assert got["bound"] == "yes" and got["bound_writable"] == "yes", got
    assert got["scratch_empty"] == "yes" and got["scratch_writable"] == "yes", got
    assert got["home_empty"] == "yes", got
    assert got["sysctl_writable"] == "no" and got["cgroup_writable"] == "no", got
    assert got["modules_visible"] == "no", got
    devs = set(got["devs"].split())
    assert {"null", "zero", "urandom", "pts", "shm"} <= devs, devs
    assert not any(d.startswith(("sd", "nvme", "vd", "loop", "mem", "kmsg")) for d in devs), devs
    assert got["null_works"] == "yes", got
    # what the service wrote through the bind mount is on the host; nothing else changed
    assert (src / "y").exists()
    assert not (scratch / "z").exists() and (scratch / "hidden").exists()
    # ProtectSystem=yes / full: /usr read-only, /etc only with full
    for mode, etc_ro in (("yes", False), ("full", True)):
        text = run_oneshot(k, f"ps-{mode}.service",
                           f"ProtectSystem={mode}\nExecStart=/bin/sh {script}\n", out)
        got = dict(l.split("=", 1) for l in text.splitlines())
        assert got["usr_writable"] == "no", (mode, got)
        assert got["etc_writable"] == ("no" if etc_ro else "yes"), (mode, got)
        assert got["var_writable"] == "yes", (mode, got)
    assert k.ctl("stop", "fs.service").returncode == 0
    # Nothing of the service's namespace reached the host's mount table. (Other tests on this
    # machine may mount things meanwhile, so only the places this sandbox touched are compared.)
    touched = ("/", "/usr", "/etc", "/var", "/boot", "/efi", "/home", "/root", "/run/user", "/dev",
               "/dev/pts", "/dev/shm", "/dev/null", "/proc/sys", "/proc/kcore", "/proc/kallsyms", "/sys",
               "/sys/fs/cgroup", "/usr/lib/modules")
    changed = set(before) ^ set(mountinfo())
    leaked = [m for m in changed if m.split()[0] in touched or m.split()[0].startswith(str(tmp_path))]
    assert not leaked, leaked


def test_a_missing_path_without_dash_fails_the_start(init, tmp_path):
    k = init()
    k.start()
    k.unit("miss.service", "[Service]\nType=oneshot\nReadOnlyPaths=/nonexistent/keel\nExecStart=/bin/true\n")
    assert k.ctl("daemon-reload").returncode == 0
    assert k.ctl("start", "miss.service").returncode != 0
    k.wait(lambda: "Failed at step NAMESPACE" in k.unit_log("miss.service"), what="the NAMESPACE step in the journal")


def test_private_network_has_only_lo(init, tmp_path):
    k = init()
    k.start()
    out = tmp_path / "net"
    prog = tmp_path / "net.py"
    prog.write_text(f"""
import socket
names = [n for _, n in socket.if_nameindex()]
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
c = socket.create_connection(s.getsockname(), timeout=5)
open("{out}", "w").write(" ".join(names) + " connected")
""")
    text = run_oneshot(k, "net.service", f"PrivateNetwork=yes\nExecStart={PY} {prog}\n", out)
    assert text == "lo connected", text
    host = [n for _, n in __import__("socket").if_nameindex()]
    assert host != ["lo"]  # the host has more: the service's view was its own


def test_system_call_filter(init, tmp_path):
    k = init()
    k.start()
    out = tmp_path / "sc"
    prog = tmp_path / "sc.py"
    prog.write_text(f"""
import os, errno
res = []
for name, f in (("mkdir", lambda: os.mkdir("{tmp_path}/d")), ("unlink", lambda: os.unlink("{tmp_path}/nonexistent")),
                ("chroot", lambda: os.chroot("/")), ("uname", lambda: os.uname())):
    try:
        f(); res.append(name + "=ok")
    except OSError as e:
        res.append(name + "=" + errno.errorcode[e.errno])
open("{out}", "w").write(" ".join(res))
""")
    # a deny list with a default errno and one of its own
    text = run_oneshot(k, "deny.service",
                       "SystemCallFilter=~mkdir mkdirat\nSystemCallFilter=~unlink:EXDEV unlinkat:EXDEV\n"
                       f"SystemCallErrorNumber=EPERM\nExecStart={PY} {prog}\n", out)
    assert text == "mkdir=EPERM unlink=EXDEV chroot=ok uname=ok", text
    os.rmdir(tmp_path / "d") if (tmp_path / "d").exists() else None
    # an allow list: @system-service has no chroot; architectures native only
    text = run_oneshot(k, "allow.service",
                       "SystemCallFilter=@system-service\nSystemCallErrorNumber=EACCES\n"
                       f"SystemCallArchitectures=native\nExecStart={PY} {prog}\n", out)
    assert text == "mkdir=ok unlink=ENOENT chroot=EACCES uname=ok", text
    os.rmdir(tmp_path / "d")
    # removing from an allow list: a later "~" line
    text = run_oneshot(k, "allow2.service",
                       "SystemCallFilter=@system-service\nSystemCallFilter=~mkdir mkdirat\n"
                       f"SystemCallErrorNumber=EPERM\nExecStart={PY} {prog}\n", out)
    assert text.startswith("mkdir=EPERM"), text
    # without SystemCallErrorNumber= a denied call kills the process with SIGSYS
    k.unit("kill.service", f"[Service]\nType=oneshot\nSystemCallFilter=~@file-system\nExecStart={PY} {prog}\n")
    assert k.ctl("daemon-reload").returncode == 0
    assert k.ctl("start", "kill.service").returncode != 0
    k.wait(lambda: "status=31/SYS" in k.unit_log("kill.service"), what="the SIGSYS in the journal")


def test_runtime_state_cache_logs_directories(init, tmp_path):
    k = init()
    k.start()
    tag = f"keel-test-{os.getpid()}-{time.monotonic_ns()}"
    nobody = pwd.getpwnam("nobody")
    made = [Path("/run") / tag, Path("/var/lib") / tag, Path("/var/cache") / tag, Path("/var/log") / tag]
    try:
        k.unit("d.service", "[Service]\nType=simple\nUser=nobody\n"
                            f"RuntimeDirectory={tag}/a {tag}/b\nRuntimeDirectoryMode=0750\n"
                            f"StateDirectory={tag}\nStateDirectoryMode=0700\n"
                            f"CacheDirectory={tag}\nLogsDirectory={tag}\n"
                            "ExecStart=/bin/sh -c 'echo \"dirs=$RUNTIME_DIRECTORY|$STATE_DIRECTORY|$CACHE_DIRECTORY|"
                            f"$LOGS_DIRECTORY\"; touch /run/{tag}/a/x /var/lib/{tag}/y && echo wrote; "
                            "exec sleep 1000'\n")
        # a state directory left by root: its contents are handed to the user too
        (Path("/var/lib") / tag / "old").mkdir(parents=True)
        (Path("/var/lib") / tag / "old" / "f").write_text("x")
        k.unit("p.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
                            f"RuntimeDirectory={tag}/kept\nRuntimeDirectoryPreserve=yes\nExecStart=/bin/true\n")
        k.unit("r.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
                            f"RuntimeDirectory={tag}/rae\nExecStart=/bin/true\n")
        assert k.ctl("daemon-reload").returncode == 0
        assert k.ctl("start", "d.service", "p.service", "r.service").returncode == 0
        assert Path(f"/run/{tag}/rae").is_dir()  # kept while the unit is active (exited)
        k.wait(lambda: "wrote" in k.unit_log("d.service"), what="the service's report")
        line = next(l for l in k.unit_log("d.service").splitlines() if l.startswith("dirs="))
        envs = line[5:].split("|")
        assert envs == [f"/run/{tag}/a:/run/{tag}/b", f"/var/lib/{tag}", f"/var/cache/{tag}", f"/var/log/{tag}"], envs
        st = os.stat(f"/run/{tag}/a")
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (nobody.pw_uid, nobody.pw_gid, 0o750)
        st = os.stat(f"/var/lib/{tag}")
        assert (st.st_uid, st.st_mode & 0o777) == (nobody.pw_uid, 0o700)
        assert os.stat(f"/var/lib/{tag}/old/f").st_uid == nobody.pw_uid
        assert os.stat(f"/var/log/{tag}").st_mode & 0o777 == 0o755
        assert k.ctl("stop", "d.service", "p.service", "r.service").returncode == 0
        assert not Path(f"/run/{tag}/rae").exists()
        # RuntimeDirectory= goes at stop, unless preserved; the others stay
        assert not Path(f"/run/{tag}/a").exists() and not Path(f"/run/{tag}/b").exists()
        assert Path(f"/run/{tag}/kept").is_dir()
        assert Path(f"/var/lib/{tag}/y").exists()
    finally:
        for d in made:
            shutil.rmtree(d, ignore_errors=True)
