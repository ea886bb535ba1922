"""keel-init unit semantics with real processes, beyond test_init.py: the watchdog, Conflicts=,
PartOf=/BindsTo= stop propagation, Requisite=, User=, PrivateTmp=, OnCalendar= firing, and
reload through ExecReload= and the notify protocol's RELOADING=1.

Each test runs its own keel-init (the `init` fixture in conftest.py) and leaves no process or
cgroup behind.
"""

import os
import pwd
import signal
import time
from pathlib import Path

import pytest

PY = "/usr/bin/python3"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="keel-init tests need root (cgroups)")

# A notify service: READY=1, then WATCHDOG=1 every 0.2s for `pings` pings, then silence (it
# keeps running). SIGHUP: RELOADING=1, a line "reloaded N", READY=1 after 0.5s.
NOTIFY_PY = r'''
import os, signal, socket, sys, time
pings = int(sys.argv[1])
addr = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def send(m):
    s.sendto(m.encode(), "\0" + addr[1:] if addr.startswith("@") else addr)
n = 0
hup = False
def on_hup(*_):
    global hup
    hup = True
signal.signal(signal.SIGHUP, on_hup)
print("watchdog usec", os.environ.get("WATCHDOG_USEC", "none"), flush=True)
send("READY=1")
while True:
    if hup:
        hup = False
        n += 1
        send("RELOADING=1")
        print(f"reloaded {n}", flush=True)
        time.sleep(1.5)  # the test must see the reloading state in between, on a busy machine too
        send("READY=1")
    if pings > 0:
        send("WATCHDOG=1")
        pings -= 1
    time.sleep(0.2)
'''


def notify_script(tmp_path) -> Path:
    p = tmp_path / "notifier.py"
    p.write_text(NOTIFY_PY)
    return p


def test_watchdog_kills_and_restarts_a_silent_service(init, tmp_path):
    k = init()
    script = notify_script(tmp_path)
    # pings for ~1s, with a 1s watchdog: alive while it pings, killed once it stops
    k.unit("dog.service", f"[Service]\nType=notify\nExecStart={PY} {script} 5\nWatchdogSec=1s\n"
                          "Restart=on-watchdog\nRestartSec=100ms\n")
    k.unit("once.service", f"[Service]\nType=notify\nExecStart={PY} {script} 0\nWatchdogSec=700ms\n")
    k.unit("steady.service", f"[Service]\nType=notify\nExecStart={PY} {script} 1000000\nWatchdogSec=1s\n"
                             "Restart=on-watchdog\n")
    k.start()
    assert k.ctl("start", "dog.service", "once.service", "steady.service").returncode == 0
    pid = int(k.prop("dog.service", "MainPID"))
    k.wait(lambda: k.prop("dog.service", "NRestarts") == "1", timeout=30, what="the watchdog restart")
    k.wait_state("dog.service", "active", "running")
    assert int(k.prop("dog.service", "MainPID")) != pid
    log = k.unit_log("dog.service")
    assert "Watchdog timeout (limit 1s)!" in log, log
    assert "Failed with result 'watchdog'." in log, log
    assert "watchdog usec 1000000" in log, log  # WATCHDOG_USEC= in the environment
    # Restart=no: the service ends failed with result watchdog
    k.wait_state("once.service", "failed", timeout=30)
    assert k.prop("once.service", "Result") == "watchdog"
    assert "code=killed, status=6/ABRT" in k.unit_log("once.service")  # WatchdogSignal=SIGABRT
    # one that keeps pinging is left alone
    assert k.state("steady.service") == ("active", "running")
    assert k.prop("steady.service", "NRestarts") == "0"
    assert "Watchdog timeout" not in k.unit_log("steady.service")


def test_watchdog_with_restart_always(init, tmp_path):
    k = init()
    script = notify_script(tmp_path)
    k.unit("dog.service", f"[Service]\nType=notify\nExecStart={PY} {script} 0\nWatchdogSec=500ms\n"
                          "Restart=always\nRestartSec=100ms\n")
    k.start()
    assert k.ctl("start", "dog.service").returncode == 0
    k.wait(lambda: int(k.prop("dog.service", "NRestarts") or 0) >= 2, timeout=30, what="two watchdog restarts")
    assert k.unit_log("dog.service").count("Watchdog timeout") >= 2


def sleeper(extra=""):
    return f"[Unit]\n{extra}\n[Service]\nExecStart=/bin/sleep 300\n"


def test_conflicts_stops_the_other(init):
    k = init()
    k.unit("a.service", sleeper("Conflicts=b.service"))
    k.unit("b.service", sleeper())
    k.start()
    assert k.ctl("start", "b.service").returncode == 0
    assert k.state("b.service")[0] == "active"
    assert k.ctl("start", "a.service").returncode == 0
    assert k.state("a.service")[0] == "active"
    # keelctl (like systemctl) waits for the job it asked for, not for the conflict's stop job,
    # which runs in parallel (no ordering between the two)
    k.wait_state("b.service", "inactive")
    # and the other way round: the conflict holds in both directions
    assert k.ctl("start", "b.service").returncode == 0
    assert k.state("b.service")[0] == "active"
    k.wait_state("a.service", "inactive")


def test_part_of_and_binds_to_propagate_stop(init):
    k = init()
    k.unit("parent.service", sleeper())
    k.unit("part.service", sleeper("PartOf=parent.service"))
    k.unit("bound.service", sleeper("BindsTo=parent.service\nAfter=parent.service"))
    k.unit("other.service", sleeper())
    k.start()
    assert k.ctl("start", "part.service", "bound.service", "other.service").returncode == 0
    assert k.state("parent.service")[0] == "active"  # BindsTo= pulls it in, as Requires= does
    assert k.state("part.service")[0] == "active"
    # stopping the parent stops both
    assert k.ctl("stop", "parent.service").returncode == 0
    k.wait_state("part.service", "inactive")
    k.wait_state("bound.service", "inactive")
    assert k.state("other.service")[0] == "active"
    # PartOf= is one-way: stopping the part leaves the parent running
    assert k.ctl("start", "parent.service", "part.service").returncode == 0
    assert k.ctl("stop", "part.service").returncode == 0
    assert k.state("parent.service")[0] == "active"
    # restart of the parent restarts the part
    assert k.ctl("start", "part.service").returncode == 0
    part_pid = k.prop("part.service", "MainPID")
    assert k.ctl("restart", "parent.service").returncode == 0
    k.wait_state("part.service", "active")
    assert k.prop("part.service", "MainPID") != part_pid
    # BindsTo=: the parent dying on its own (not through a stop job) stops the bound unit too
    assert k.ctl("start", "bound.service").returncode == 0
    os.kill(int(k.prop("parent.service", "MainPID")), signal.SIGKILL)
    k.wait_state("bound.service", "inactive")
    assert k.state("part.service")[0] == "active"  # PartOf= reacts to stop jobs only


def test_requisite_fails_when_inactive(init):
    k = init()
    k.unit("need.service", sleeper())
    k.unit("user.service", sleeper("Requisite=need.service\nAfter=need.service"))
    k.start()
    r = k.ctl("start", "user.service")
    assert r.returncode == 1, r
    assert k.state("user.service")[0] == "inactive"
    assert k.state("need.service")[0] == "inactive"  # not pulled in
    assert k.ctl("start", "need.service").returncode == 0
    assert k.ctl("start", "user.service").returncode == 0
    assert k.state("user.service")[0] == "active"


def test_user_switches_identity(init):
    k = init()
    nobody = pwd.getpwnam("nobody")
    k.unit("who.service", "[Service]\nType=oneshot\nUser=nobody\n"
                          "ExecStart=/bin/sh -c 'echo uid=$(id -u) gid=$(id -g) user=$USER home=$HOME'\n"
                          "ExecStart=+/bin/sh -c 'echo plus-uid=$(id -u)'\n")
    k.start()
    assert k.ctl("start", "who.service").returncode == 0
    log = k.unit_log("who.service")
    assert f"uid={nobody.pw_uid} gid={nobody.pw_gid} user=nobody home={nobody.pw_dir}" in log, log
    assert "plus-uid=0" in log, log  # "+" runs with full privileges


def test_private_tmp_is_empty_and_private(init, tmp_path):
    k = init()
    host_file = Path(f"/tmp/keel-host-{os.getpid()}-{time.monotonic_ns()}")
    inside = f"keel-inside-{os.getpid()}-{time.monotonic_ns()}"
    host_file.write_text("host")
    try:
        k.unit("priv.service", "[Service]\nType=oneshot\nPrivateTmp=yes\n"
                               f"ExecStart=/bin/sh -c 'echo count=$(ls -A /tmp | wc -l); touch /tmp/{inside}; "
                               f"test -e {host_file} && echo sees-host || echo no-host; "
                               "echo vcount=$(ls -A /var/tmp | wc -l)'\n"
                               f"ExecStart=/bin/sh -c 'test -e /tmp/{inside} && echo kept'\n")
        k.unit("shared.service", "[Service]\nType=oneshot\n"
                                 f"ExecStart=/bin/sh -c 'test -e {host_file} && echo sees-host'\n")
        k.start()
        assert k.ctl("start", "priv.service").returncode == 0
        log = k.unit_log("priv.service")
        assert "count=0" in log and "no-host" in log and "vcount=0" in log, log
        assert "kept" in log, log  # one private /tmp for all the unit's commands
        assert not (Path("/tmp") / inside).exists()
        assert k.ctl("start", "shared.service").returncode == 0
        assert "sees-host" in k.unit_log("shared.service")
    finally:
        host_file.unlink()


def test_on_calendar_fires_repeatedly(init, tmp_path):
    k = init()
    stamps = tmp_path / "stamps"
    k.unit("tick.timer", "[Timer]\nOnCalendar=*-*-* *:*:0/2\nAccuracySec=1ms\n")
    # The time of each elapse as keel-init saw it ($TRIGGER_TIMER_REALTIME_USEC, as systemd 251+
    # passes it), not when the shell got round to running: forking an ASan keel-init on a busy
    # machine can take longer than a second.
    k.unit("tick.service", "[Service]\nType=oneshot\nExecStart=/bin/sh -c "
           f"'echo $$TRIGGER_UNIT $$TRIGGER_TIMER_REALTIME_USEC $$TRIGGER_TIMER_MONOTONIC_USEC >> {stamps}'\n")
    k.start()
    assert k.ctl("start", "tick.timer").returncode == 0
    k.wait(lambda: stamps.exists() and len(stamps.read_text().splitlines()) >= 3, timeout=30,
           what="three firings")
    lines = [ln.split() for ln in stamps.read_text().splitlines()[:3]]
    assert all(len(f) == 3 and f[0] == "tick.timer" for f in lines), lines
    secs = [int(f[1]) // 1_000_000 for f in lines]
    monos = [int(f[2]) for f in lines]
    assert monos == sorted(set(monos)) and all(m > 0 for m in monos), monos
    # on even seconds only, and each firing in a later slot
    assert all(s % 2 == 0 for s in secs), secs
    assert secs == sorted(set(secs)), secs
    assert k.state("tick.timer") == ("active", "waiting")
    # a start that no timer caused gets no $TRIGGER_* (what the last elapse set is gone)
    assert k.ctl("stop", "tick.timer").returncode == 0
    k.wait(lambda: k.state("tick.service")[0] == "inactive" and k.prop("tick.service", "Job") == "0",
           what="tick.service to finish, with no start job left from the timer")
    assert k.ctl("start", "tick.service").returncode == 0
    assert stamps.read_text().splitlines()[-1].strip() == ""


def test_reload_with_exec_reload_and_notify_reloading(init, tmp_path):
    k = init()
    script = notify_script(tmp_path)
    k.unit("rel.service", f"[Service]\nType=notify\nExecStart={PY} {script} 0\n"
                          "ExecReload=/bin/kill -HUP $MAINPID\n")
    k.unit("norel.service", sleeper())
    k.start()
    assert k.ctl("start", "rel.service").returncode == 0
    pid = k.prop("rel.service", "MainPID")
    assert k.ctl("reload", "rel.service").returncode == 0
    k.wait(lambda: "reloaded 1" in k.unit_log("rel.service"), what="the reload")
    k.wait_state("rel.service", "active", "running")
    assert k.prop("rel.service", "MainPID") == pid
    # RELOADING=1 on its own (a SIGHUP from outside): reloading until READY=1
    os.kill(int(pid), signal.SIGHUP)
    k.wait(lambda: k.state("rel.service")[0] == "reloading", what="the reloading state")
    k.wait_state("rel.service", "active", "running")
    assert "reloaded 2" in k.unit_log("rel.service")
    # no ExecReload=: reload is refused, the service keeps running
    r = k.ctl("reload", "norel.service")
    assert r.returncode != 0, r
    assert k.state("norel.service") == ("inactive", "dead") or k.state("norel.service")[0] == "inactive"
    assert k.ctl("start", "norel.service").returncode == 0
    assert k.ctl("reload", "norel.service").returncode != 0
    assert k.state("norel.service") == ("active", "running")


def test_keelctl_start_of_several_units_gets_answers_in_any_order(init):
    k = init()
    # slow's job finishes a second after fast's: the answers come back in the other order
    k.unit("slow.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep 1\n")
    k.unit("fast.service", sleeper())
    k.start()
    r = k.ctl("start", "slow.service", "fast.service", timeout=30)
    assert r.returncode == 0, r
    assert k.state("slow.service")[0] == "active" and k.state("fast.service")[0] == "active"
