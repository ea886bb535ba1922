"""keel-init with real processes: as PID 1 of a new pid namespace and as a supervisor.

Each test writes unit files into a temp dir, starts its own keel-init on them (own runtime dir,
own cgroup root), and leaves nothing behind: keel-init is shut down, then every cgroup under
the test's root is emptied by PID and removed (keelharness/init.py), pass or fail.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from keelharness import free_port
from keelharness.init import own_cgroup_dirs

PY = "/usr/bin/python3"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="keel-init tests need root (cgroups)")


def http_get(port, path="/", timeout=10):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.status, r.read()


def times(path):
    return [float(x) for x in Path(path).read_text().split()]


# -- the job engine -----------------------------------------------------------------

def test_ordering_and_parallel_start_as_pid1(init, tmp_path):
    k = init(pid1=True)
    out = tmp_path / "out"
    out.mkdir()
    stamp = "date +%%s.%%N >> {f}; sleep {d}; date +%%s.%%N >> {f}"
    k.unit("a.service", f"[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c '{stamp.format(f=out/'a', d='0.4')}'\n")
    k.unit("b.service", f"[Unit]\nRequires=a.service\nAfter=a.service\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
                        f"ExecStart=/bin/sh -c '{stamp.format(f=out/'b', d='0.1')}'\n")
    for n in ("c", "d"):
        k.unit(f"{n}.service", f"[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c '{stamp.format(f=out/n, d='0.6')}'\n")
    k.unit("test.target", "[Unit]\nWants=b.service c.service d.service\nAfter=b.service c.service d.service\n")
    k.start("test.target")
    k.wait_state("test.target", "active")
    a, b, c, d = (times(out / n) for n in "abcd")
    assert b[0] >= a[1], "b started before a finished"
    # c and d have no ordering between them: their runs overlap
    assert c[0] < d[1] and d[0] < c[1], f"c {c} and d {d} did not run in parallel"
    assert k.state("b.service") == ("active", "exited")
    # PID 1: keel-init saw itself as PID 1 of the namespace
    assert "(pid 1)" in k.log()


def test_ordered_shutdown_as_pid1(init, tmp_path):
    k = init(pid1=True)
    order = tmp_path / "order"
    for n, after in (("a", None), ("b", "a"), ("c", "b")):
        dep = f"[Unit]\nRequires={after}.service\nAfter={after}.service\n" if after else ""
        k.unit(f"{n}.service", dep + f"[Service]\nExecStart=/bin/sleep 1000\nExecStopPost=/bin/sh -c 'echo {n} >> {order}'\n")
    k.unit("test.target", "[Unit]\nWants=c.service\n")
    k.start("test.target")
    k.wait_state("a.service", "active")
    k.wait_state("c.service", "active")
    assert k.shutdown() == 0
    assert order.read_text().split() == ["c", "b", "a"]


def test_dependency_cycle_is_broken_with_a_log_line(init):
    k = init()
    k.unit("x.service", "[Unit]\nAfter=y.service\n[Service]\nExecStart=/bin/sleep 1000\n")
    k.unit("y.service", "[Unit]\nAfter=x.service\n[Service]\nExecStart=/bin/sleep 1000\n")
    k.unit("cyc.target", "[Unit]\nWants=x.service y.service\n")
    k.start()
    r = k.ctl("start", "cyc.target")
    assert r.returncode == 0, r.stderr
    k.wait(lambda: "Breaking ordering cycle by deleting job" in k.log(), what="the cycle log line")
    assert "Found ordering cycle on" in k.log()
    started = [u for u in ("x.service", "y.service") if k.state(u)[0] == "active"]
    assert len(started) == 1, started
    # keel-init keeps working
    assert k.ctl("is-active", "cyc.target").returncode == 0


def test_requires_cycle_fails_the_transaction(init):
    k = init()
    k.unit("p.service", "[Unit]\nRequires=q.service\nAfter=q.service\n[Service]\nExecStart=/bin/sleep 1000\n")
    k.unit("q.service", "[Unit]\nRequires=p.service\nAfter=p.service\n[Service]\nExecStart=/bin/sleep 1000\n")
    k.start()
    r = k.ctl("start", "p.service")
    assert r.returncode == 1
    assert "Transaction order is cyclic" in r.stderr
    assert k.state("p.service")[0] == "inactive"


def test_failed_requirement_fails_dependents(init):
    k = init()
    k.unit("bad.service", "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 3'\n")
    k.unit("top.service", "[Unit]\nRequires=bad.service\nAfter=bad.service\n[Service]\nExecStart=/bin/sleep 1000\n")
    k.unit("hook.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
    k.unit("bad2.service", "[Unit]\nOnFailure=hook.service\n[Service]\nExecStart=/bin/false\n")
    k.start()
    r = k.ctl("start", "top.service")
    assert r.returncode == 1
    assert "A dependency job for top.service failed" in r.stderr
    assert k.state("top.service") == ("inactive", "dead")
    assert k.state("bad.service") == ("failed", "failed")
    assert k.prop("bad.service", "ExecMainStatus") == "3"
    # OnFailure= runs when a unit enters failed
    k.ctl("start", "bad2.service")
    k.wait(lambda: "Finished" in k.unit_log("hook.service"), what="OnFailure= unit")


def test_missing_binary_gives_failed_state_and_message(init):
    k = init()
    k.unit("ghost.service", "[Service]\nExecStart=/nonexistent/ghostd --flag\n")
    k.unit("fine.service", "[Service]\nExecStart=/bin/sleep 1000\n")
    k.start()
    k.ctl("start", "ghost.service")
    k.wait_state("ghost.service", "failed")
    st = k.ctl("status", "ghost.service")
    assert st.returncode == 3
    assert "status=203/EXEC" in st.stdout
    assert "Failed at step EXEC spawning /nonexistent/ghostd: No such file or directory" in st.stdout
    assert k.ctl("is-failed", "ghost.service").returncode == 0
    assert k.ctl("start", "fine.service").returncode == 0
    assert "cgroup_mode" in k.call({"method": "ping"})
    assert k.ctl("is-active", "fine.service").returncode == 0
    nf = k.ctl("start", "nosuch.service")
    assert nf.returncode == 5 and "Unit nosuch.service not found." in nf.stderr


# -- services ------------------------------------------------------------------------

def test_restart_after_kill_9(init):
    k = init()
    port = free_port()
    k.unit("web.service", f"[Service]\nExecStart={PY} -m http.server {port} --bind 127.0.0.1\nRestart=always\nRestartSec=100ms\n")
    k.start()
    assert k.ctl("start", "web.service").returncode == 0
    k.wait(lambda: _http_ok(port), what="http.server")
    pid = int(k.prop("web.service", "MainPID"))
    os.kill(pid, signal.SIGKILL)
    k.wait(lambda: k.prop("web.service", "NRestarts") == "1" and k.state("web.service") == ("active", "running"),
           what="the restart")
    assert int(k.prop("web.service", "MainPID")) != pid
    k.wait(lambda: _http_ok(port), what="http.server after restart")
    assert "Scheduled restart job, restart counter is at 1." in k.unit_log("web.service")


def _http_ok(port):
    try:
        return http_get(port, timeout=1)[0] == 200
    except OSError:
        return False


def test_start_limit_stops_a_crash_loop(init):
    k = init()
    k.unit("crash.service", "[Unit]\nStartLimitIntervalSec=30s\nStartLimitBurst=3\n"
                            "[Service]\nExecStart=/bin/sh -c 'exit 1'\nRestart=always\nRestartSec=50ms\n")
    k.start()
    k.ctl("start", "crash.service")
    k.wait(lambda: k.prop("crash.service", "Result") == "start-limit-hit", what="start-limit-hit")
    assert k.state("crash.service") == ("failed", "failed")
    assert "Start request repeated too quickly." in k.unit_log("crash.service")
    n = k.prop("crash.service", "NRestarts")
    time.sleep(0.5)
    assert k.prop("crash.service", "NRestarts") == n, "still restarting"
    assert k.ctl("reset-failed", "crash.service").returncode == 0
    assert k.state("crash.service")[0] == "inactive"


@pytest.mark.parametrize("cgroups", ["v2-tracking", "v1-only"])
def test_stop_timeout_kills_a_service_ignoring_sigterm(init, cgroups):
    k = init(cgroup_v1=cgroups == "v1-only")
    k.unit("stubborn.service",
           "[Service]\nExecStart=/usr/bin/python3 -c 'import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
           "print(\"up\", flush=True); time.sleep(1000)'\nTimeoutStopSec=1\n")
    k.start()
    k.ctl("start", "stubborn.service")
    k.wait(lambda: "up" in k.unit_log("stubborn.service"), what="the service to run")
    pid = int(k.prop("stubborn.service", "MainPID"))
    t0 = time.monotonic()
    k.ctl("stop", "stubborn.service")
    took = time.monotonic() - t0
    assert took >= 0.9, f"stopped after {took:.2f}s, before TimeoutStopSec"
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert "State 'stop-sigterm' timed out. Killing." in k.unit_log("stubborn.service")
    assert k.state("stubborn.service") == ("failed", "failed")
    assert k.prop("stubborn.service", "Result") == "timeout"


@pytest.mark.parametrize("cgroups", ["v2-tracking", "v1-only"])
def test_forking_daemon_tracked_through_pidfile(init, tmp_path, cgroups):
    k = init(cgroup_v1=cgroups == "v1-only")
    pidfile = tmp_path / "forky.pid"
    k.unit("forky.service", f"[Service]\nType=forking\nPIDFile={pidfile}\n"
                            f"ExecStart=/bin/sh -c 'sleep 1000 & echo $! > {pidfile}'\n")
    k.start()
    assert k.ctl("start", "forky.service").returncode == 0
    assert k.state("forky.service") == ("active", "running")
    pid = int(pidfile.read_text())
    assert k.prop("forky.service", "MainPID") == str(pid)
    os.kill(pid, signal.SIGKILL)
    k.wait_state("forky.service", "failed")
    assert k.prop("forky.service", "Result") == "signal"


def test_notify_service(init, tmp_path):
    k = init()
    script = tmp_path / "notify.py"
    script.write_text(
        "import os, socket, time\n"
        "time.sleep(0.5)\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        "s.sendto(b'READY=1\\nSTATUS=serving requests', os.environ['NOTIFY_SOCKET'])\n"
        "time.sleep(1000)\n")
    k.unit("notif.service", f"[Service]\nType=notify\nExecStart={PY} {script}\n")
    k.start()
    t0 = time.monotonic()
    r = k.ctl("start", "notif.service")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 >= 0.45, "start returned before READY=1"
    assert k.state("notif.service") == ("active", "running")
    assert k.prop("notif.service", "StatusText") == "serving requests"
    assert 'Status: "serving requests"' in k.ctl("status", "notif.service").stdout


def test_service_output_environment_and_exec_prefixes(init, tmp_path):
    k = init()
    envf = tmp_path / "env"
    envf.write_text("FROM_FILE=\"file value\"\n# comment\nexport OTHER=x\n")
    out = tmp_path / "append.txt"
    k.unit("envy.service",
           f"[Service]\nType=oneshot\nEnvironment=GREETING=hello WORDS=\"a b\"\nEnvironmentFile={envf}\n"
           f"EnvironmentFile=-/nonexistent/env\n"
           f"ExecStartPre=-/bin/false\n"
           f"ExecStart=/bin/echo $GREETING ${{FROM_FILE}} $WORDS\n"
           f"ExecStart=/bin/sh -c 'echo \"<3>bad thing\"; echo to-stderr >&2; pwd; umask'\n"
           f"StandardOutput=journal\nWorkingDirectory={tmp_path}\nUMask=0077\n")
    k.unit("filey.service", f"[Service]\nType=oneshot\nExecStart=/bin/echo appended\nStandardOutput=append:{out}\n")
    k.start()
    assert k.ctl("start", "envy.service").returncode == 0
    log = k.unit_log("envy.service")
    assert "hello file value a b" in log
    assert "bad thing" in log and "<3>" not in log
    recs = [json.loads(x) for x in k.journal("-u", "envy.service", "-o", "json").stdout.splitlines()]
    bad = [r for r in recs if r["MESSAGE"] == "bad thing"]
    assert bad and bad[0]["PRIORITY"] == "3" and bad[0]["SYSLOG_IDENTIFIER"] == "sh", recs
    assert "to-stderr" in log
    assert str(tmp_path) in log and "0077" in log
    k.ctl("start", "filey.service")
    k.ctl("start", "filey.service")
    assert out.read_text() == "appended\nappended\n"


# -- cgroups -------------------------------------------------------------------------

@pytest.mark.parametrize("cgroups", ["v2-tracking", "v1-only"])
def test_tasks_max_contains_a_fork_bomb(init, tmp_path, cgroups):
    k = init(cgroup_v1=cgroups == "v1-only")
    bomb = tmp_path / "bomb.py"
    # forks for ever; a fork refused by the pids controller is retried
    bomb.write_text("import os, time\n"
                    "while True:\n"
                    "    try:\n"
                    "        if os.fork() == 0:\n"
                    "            time.sleep(60)\n"
                    "            os._exit(0)\n"
                    "    except OSError:\n"
                    "        time.sleep(0.01)\n")
    k.unit("bomb.service", f"[Service]\nExecStart={PY} {bomb}\nTasksMax=12\nTimeoutStopSec=5\n")
    k.start()
    k.ctl("start", "bomb.service")
    k.wait(lambda: k.prop("bomb.service", "TasksCurrent") == "12", what="pids.current to reach TasksMax")
    time.sleep(0.3)
    assert int(k.prop("bomb.service", "TasksCurrent")) <= 12
    assert k.ctl("is-active", "bomb.service").returncode == 0
    k.ctl("stop", "bomb.service")
    assert k.state("bomb.service")[0] in ("inactive", "failed")
    for d in own_cgroup_dirs(k.cg_root):
        assert not (d / "bomb.service").exists(), f"cgroup {d}/bomb.service was not removed"


def test_memory_max_is_enforced(init):
    k = init()
    k.unit("hog.service", "[Service]\nExecStart=/usr/bin/python3 -c 'x = bytearray(300 * 1024 * 1024); import time; time.sleep(100)'\n"
                          "MemoryMax=40M\n")
    k.start()
    k.ctl("start", "hog.service")
    k.wait_state("hog.service", "failed")
    assert k.prop("hog.service", "Result") == "signal"
    assert k.prop("hog.service", "ExecMainStatus") == str(signal.SIGKILL)


# -- sockets and timers -----------------------------------------------------------------

SERVE_FD3 = (
    "import os, socket\n"
    "assert os.environ['LISTEN_PID'] == str(os.getpid()), os.environ['LISTEN_PID']\n"
    "s = socket.socket(fileno=3)\n"
    "while True:\n"
    "    c, _ = s.accept()\n"
    "    c.recv(4096)\n"
    "    c.sendall(b'HTTP/1.0 200 OK\\r\\n\\r\\nfds=' + os.environ['LISTEN_FDS'].encode() + b' names=' + os.environ['LISTEN_FDNAMES'].encode())\n"
    "    c.close()\n")


def test_socket_activation_accept_no(init, tmp_path):
    k = init(pid1=True)
    port = free_port()
    script = tmp_path / "serve.py"
    script.write_text(SERVE_FD3)
    k.unit("web.socket", f"[Socket]\nListenStream=127.0.0.1:{port}\n[Install]\nWantedBy=sockets.target\n")
    k.unit("web.service", f"[Service]\nExecStart={PY} {script}\n")
    k.unit("test.target", "[Unit]\nWants=web.socket\n")
    k.start("test.target")
    k.wait_state("web.socket", "active", "listening")
    assert k.state("web.service")[0] == "inactive"
    status, body = http_get(port)
    assert status == 200 and body == b"fds=1 names=web.socket"
    assert k.state("web.service") == ("active", "running")
    assert k.state("web.socket") == ("active", "running")
    assert "127.0.0.1:%d" % port in k.ctl("list-sockets").stdout


def test_socket_activation_accept_yes(init, tmp_path):
    k = init()
    path = tmp_path / "echo.sock"
    k.unit("echo.socket", f"[Socket]\nListenStream={path}\nAccept=yes\n")
    k.unit("echo@.service", "[Service]\nExecStart=/bin/sh -c 'read line; echo \"got $line from $$$$\"'\n"
                            "StandardInput=socket\nStandardOutput=socket\n")
    k.start()
    assert k.ctl("start", "echo.socket").returncode == 0
    answers = []
    for word in ("one", "two"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(10)
            c.connect(str(path))
            c.sendall(word.encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = c.recv(100)
                if not chunk:
                    break
                data += chunk
            answers.append(data.decode())
    assert answers[0].startswith("got one from ") and answers[1].startswith("got two from ")
    assert answers[0] != answers[1].replace("two", "one")  # two processes
    assert k.prop("echo.socket", "NAccepted") == "2"
    k.wait(lambda: k.prop("echo.socket", "NConnections") == "0", what="instances to finish")


def test_timer_fires(init, tmp_path):
    k = init()
    mark = tmp_path / "fired"
    k.unit("tick.timer", "[Timer]\nOnActiveSec=3s\nAccuracySec=1ms\nUnit=tick-job.service\n")
    k.unit("tick-job.service", f"[Service]\nType=oneshot\nExecStart=/bin/sh -c 'date +%%s.%%N >> {mark}'\n")
    k.start()
    t0 = time.time()
    assert k.ctl("start", "tick.timer").returncode == 0
    assert "tick.timer" in k.ctl("list-timers").stdout
    # the shell creates the file before date has written to it
    k.wait(lambda: mark.exists() and mark.read_text().strip(), timeout=15, what="the timer to fire")
    fired = times(mark)[0]
    assert fired - t0 >= 2.9
    k.wait(lambda: k.state("tick.timer") == ("active", "elapsed"), what="timer elapsed")


# -- control -------------------------------------------------------------------------

def test_control_api_load_start_subscribe(init):
    k = init()
    k.start()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect(str(k.socket))
        f = s.makefile("rwb")

        def send(obj):
            f.write(json.dumps(obj).encode() + b"\n")
            f.flush()

        send({"id": 1, "method": "subscribe"})
        assert json.loads(f.readline()) == {"id": 1, "ok": True}
        send({"id": 2, "method": "load", "unit": "api.service",
              "content": "[Unit]\nDescription=From the API\n[Service]\nExecStart=/bin/sleep 1000\nBogusKey=1\n"})
        events, reply = [], None
        while reply is None:
            m = json.loads(f.readline())
            if m.get("id") == 2:
                reply = m
            else:
                events.append(m)
        assert reply["ok"] and reply["load_state"] == "loaded"
        assert "BogusKey" in reply["diagnostics"]
        send({"id": 3, "method": "start", "unit": "api.service"})
        reply = None
        while reply is None:
            m = json.loads(f.readline())
            if m.get("id") == 3:
                reply = m
            else:
                events.append(m)
        assert reply["ok"] and reply["result"] == "done"
        assert {"event": "unit", "unit": "api.service", "active": "active", "sub": "running"}.items() <= \
            next(e for e in events if e.get("event") == "unit" and e["unit"] == "api.service" and e["active"] == "active").items()
        assert any(e.get("event") == "job-removed" and e["unit"] == "api.service" for e in events)
    assert k.prop("api.service", "Description") == "From the API"


def test_keelctl_verbs(init):
    k = init()
    k.unit("svc.service", "[Unit]\nDescription=Verb test\n[Service]\nExecStart=/bin/sleep 1000\nExecReload=/bin/true\n"
                          "[Install]\nWantedBy=multi-user.target\n")
    k.start()
    r = k.ctl("is-enabled", "svc.service")
    assert r.returncode == 1 and r.stdout.strip() == "disabled"
    r = k.ctl("enable", "svc.service")
    assert r.returncode == 0 and "Created symlink" in r.stdout
    assert (k.etc / "multi-user.target.wants" / "svc.service").is_symlink()
    assert k.ctl("is-enabled", "svc.service").stdout.strip() == "enabled"
    assert "svc.service" in k.ctl("list-unit-files").stdout
    assert k.ctl("is-active", "svc").returncode == 3
    assert k.ctl("start", "svc").returncode == 0
    assert k.ctl("reload", "svc").returncode == 0
    assert k.ctl("restart", "svc").returncode == 0
    assert k.ctl("try-restart", "svc").returncode == 0
    assert k.ctl("reload-or-restart", "svc").returncode == 0
    assert k.ctl("show", "-p", "ActiveState,SubState", "svc").stdout == "ActiveState=active\nSubState=running\n"
    assert k.ctl("show", "-p", "Description", "--value", "svc").stdout == "Verb test\n"
    assert "# " + str(k.units / "svc.service") in k.ctl("cat", "svc").stdout
    st = k.ctl("status", "svc")
    assert st.returncode == 0 and "Active: active (running)" in st.stdout and "sleep 1000" in st.stdout
    assert "svc.service" in k.ctl("list-units").stdout
    assert k.ctl("kill", "-s", "KILL", "svc").returncode == 0
    k.wait_state("svc.service", "failed")
    assert k.ctl("reset-failed").returncode == 0
    assert k.ctl("status", "svc").returncode == 3
    assert k.ctl("status", "nope.service").returncode == 4
    r = k.ctl("disable", "svc.service")
    assert r.returncode == 0 and "Removed" in r.stdout
    assert k.ctl("mask", "svc.service").returncode == 0
    r = k.ctl("start", "svc")
    assert r.returncode != 0 and "masked" in r.stderr
    assert k.ctl("unmask", "svc.service").returncode == 0
    assert k.ctl("daemon-reload").returncode == 0
    assert k.ctl("start", "svc").returncode == 0
