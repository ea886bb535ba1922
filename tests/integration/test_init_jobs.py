"""keel-init job semantics against systemd 252's: ExecCondition=, Type=exec's start job,
JobTimeoutSec=/JobRunningTimeoutSec=, StopWhenUnneeded=, Upholds=, isolate, Persistent= timers.

Each test runs its own keel-init (the `init` fixture) and leaves no process or cgroup behind.
"""

import os
import re
import time

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="keel-init tests need root (cgroups)")


def test_exec_condition_skips_or_fails(init, tmp_path):
    k = init()
    mark = tmp_path / "ran"
    k.unit("skip.service", f"[Service]\nType=oneshot\nExecCondition=/bin/sh -c 'exit 1'\n"
                           f"ExecStartPre=/bin/touch {mark}\nExecStart=/bin/true\n")
    k.unit("fail.service", "[Service]\nExecCondition=/bin/sh -c 'exit 255'\nExecStart=/bin/sleep 100\n")
    k.unit("sig.service", "[Service]\nExecCondition=/bin/sh -c 'kill -9 $$$$'\nExecStart=/bin/sleep 100\n")
    k.unit("pass.service", "[Service]\nExecCondition=/bin/true\nExecCondition=/bin/sh -c 'exit 0'\n"
                           "ExecStart=/bin/sleep 100\n")
    k.unit("second.service", "[Service]\nExecCondition=/bin/true\nExecCondition=/bin/sh -c 'exit 3'\n"
                             "ExecStart=/bin/sleep 100\n")
    k.start()
    r = k.ctl("start", "skip.service")
    assert r.returncode == 0, r.stderr  # skipped is not failed (systemctl exits 0)
    assert k.state("skip.service") == ("inactive", "dead")
    assert not mark.exists()  # ExecStartPre= did not run
    assert k.prop("skip.service", "Result") == "exec-condition"
    assert k.prop("skip.service", "ConditionResult") == "no"
    log = k.unit_log("skip.service")
    assert "Skipped due to 'exec-condition'." in log, log
    assert "Condition check resulted in skip.service being skipped." in log, log
    assert "Failed" not in log, log
    # 255 and a signal fail the unit
    r = k.ctl("start", "fail.service")
    assert r.returncode == 1, r.stderr
    assert k.state("fail.service")[0] == "failed"
    assert k.prop("fail.service", "Result") == "exit-code"
    r = k.ctl("start", "sig.service")
    assert r.returncode == 1
    assert k.prop("sig.service", "Result") == "signal"
    # all conditions pass: the service runs
    assert k.ctl("start", "pass.service").returncode == 0
    assert k.state("pass.service") == ("active", "running")
    assert k.prop("pass.service", "ConditionResult") == "yes"
    # the second of two says no
    assert k.ctl("start", "second.service").returncode == 0
    assert k.state("second.service") == ("inactive", "dead")


def test_type_exec_start_job_waits_for_execve(init, tmp_path):
    k = init()
    k.unit("missing.service", "[Service]\nType=exec\nExecStart=/nonexistent/binary\n")
    k.unit("simple-missing.service", "[Service]\nType=simple\nExecStart=/nonexistent/binary\n")
    k.unit("ok.service", "[Service]\nType=exec\nExecStart=/bin/sleep 100\n")
    k.unit("baduser.service", "[Service]\nType=exec\nExecStart=/bin/sleep 100\nWorkingDirectory=/nonexistent-dir\n")
    k.unit("after.service", "[Unit]\nRequires=missing.service\nAfter=missing.service\n"
                            "[Service]\nExecStart=/bin/sleep 100\n")
    k.start()
    r = k.ctl("start", "missing.service")
    assert r.returncode == 1, (r.stdout, r.stderr)  # systemctl start fails for Type=exec
    assert "Job for missing.service failed" in r.stderr, r.stderr
    assert k.state("missing.service")[0] == "failed"
    assert k.prop("missing.service", "ExecMainStatus") == "203"
    # Type=simple: the start job succeeded before the exec failed (systemd's documented difference)
    assert k.ctl("start", "simple-missing.service").returncode == 0
    k.wait_state("simple-missing.service", "failed")
    assert k.ctl("start", "ok.service").returncode == 0
    assert k.state("ok.service") == ("active", "running")
    assert k.ctl("start", "baduser.service").returncode == 1
    assert k.prop("baduser.service", "ExecMainStatus") == "200"
    r = k.ctl("start", "after.service")
    assert r.returncode == 1
    assert "A dependency job for after.service failed" in r.stderr, r.stderr


def test_job_timeout_cancels_the_job_not_the_unit(init, tmp_path):
    k = init()
    # a notify service that never says READY=1: its start job times out after 1s, the unit stays
    # activating (TimeoutStartSec=infinity)
    k.unit("slow.service", "[Unit]\nJobTimeoutSec=1s\n[Service]\nType=notify\nExecStart=/bin/sleep 100\n"
                           "TimeoutStartSec=infinity\n")
    k.unit("dep.service", "[Unit]\nRequires=slow.service\nAfter=slow.service\n[Service]\nExecStart=/bin/sleep 100\n")
    k.unit("running.service", "[Unit]\nJobRunningTimeoutSec=1s\n[Service]\nType=notify\nExecStart=/bin/sleep 100\n"
                              "TimeoutStartSec=infinity\n")
    # a waiting job times out too (JobTimeoutSec= counts from installation): blocked behind slow2
    k.unit("slow2.service", "[Service]\nType=notify\nExecStart=/bin/sleep 100\nTimeoutStartSec=infinity\n")
    k.unit("waiter.service", "[Unit]\nAfter=slow2.service\nJobTimeoutSec=1s\nJobTimeoutAction=none\n"
                             "[Service]\nExecStart=/bin/sleep 100\n")
    k.start()
    t0 = time.monotonic()
    r = k.ctl("start", "dep.service")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert time.monotonic() - t0 < 30
    assert "A dependency job for dep.service failed" in r.stderr, r.stderr
    r = k.ctl("start", "slow.service")  # a new job, which times out again
    assert r.returncode == 1
    assert "Job for slow.service timed out." in r.stderr, r.stderr
    assert k.state("slow.service") == ("activating", "start")  # the unit did not change state
    log = k.unit_log("slow.service")
    assert "Job slow.service/start timed out." in log, log
    assert k.prop("slow.service", "JobTimeoutUSec") == "1s"
    assert k.prop("slow.service", "JobRunningTimeoutUSec") == "infinity"
    assert k.prop("waiter.service", "JobTimeoutAction") == "none"
    assert "Timed out starting slow.service." in log, log
    assert k.state("dep.service")[0] == "inactive"
    r = k.ctl("start", "running.service")
    assert r.returncode == 1 and "timed out" in r.stderr, r.stderr
    r = k.ctl("--no-block", "start", "slow2.service")
    assert r.returncode == 0
    r = k.ctl("start", "waiter.service")
    assert r.returncode == 1 and "Job for waiter.service timed out." in r.stderr, r.stderr
    assert k.state("waiter.service")[0] == "inactive"  # it never ran
    for u in ("slow.service", "running.service", "slow2.service"):
        assert k.ctl("stop", u).returncode == 0


def test_stop_when_unneeded_and_upholds(init, tmp_path):
    k = init()
    k.unit("helper.service", "[Unit]\nStopWhenUnneeded=yes\n[Service]\nExecStart=/bin/sleep 100\n")
    k.unit("user1.service", "[Unit]\nWants=helper.service\n[Service]\nExecStart=/bin/sleep 100\n")
    k.unit("user2.service", "[Unit]\nRequires=helper.service\n[Service]\nExecStart=/bin/sleep 100\n")
    k.unit("keeper.service", "[Unit]\nUpholds=kept.service\n[Service]\nExecStart=/bin/sleep 100\n")
    k.unit("kept.service", "[Service]\nExecStart=/bin/sleep 100\n")
    k.start()
    assert k.ctl("start", "user1.service", "user2.service").returncode == 0
    assert k.state("helper.service") == ("active", "running")
    assert k.ctl("stop", "user1.service").returncode == 0
    time.sleep(0.3)
    assert k.state("helper.service") == ("active", "running")  # user2 still needs it
    assert k.ctl("stop", "user2.service").returncode == 0
    k.wait_state("helper.service", "inactive")
    # started alone, nothing needs it: stopped again at once (systemd does the same)
    assert k.ctl("start", "helper.service").returncode == 0
    k.wait_state("helper.service", "inactive")
    # Upholds=: kept comes back whenever it stops while keeper runs
    assert k.ctl("start", "keeper.service").returncode == 0
    k.wait_state("kept.service", "active", "running")
    assert k.prop("keeper.service", "Upholds") == "kept.service"
    assert k.prop("kept.service", "UpheldBy") == "keeper.service"
    assert k.prop("helper.service", "StopWhenUnneeded") == "yes"
    pid = int(k.prop("kept.service", "MainPID"))
    os.kill(pid, 9)
    k.wait(lambda: k.state("kept.service")[0] == "active" and int(k.prop("kept.service", "MainPID")) not in (0, pid),
           what="kept.service started again")
    assert k.ctl("stop", "keeper.service").returncode == 0
    assert k.ctl("stop", "kept.service").returncode == 0
    time.sleep(0.3)
    assert k.state("kept.service")[0] == "inactive"  # keeper no longer runs


def test_isolate(init, tmp_path):
    k = init()
    k.unit("rescue.target", "[Unit]\nAllowIsolate=yes\nWants=a.service\n")
    k.unit("plain.target", "[Unit]\nWants=a.service\n")
    k.unit("a.service", "[Service]\nExecStart=/bin/sleep 100\n")
    k.unit("b.service", "[Service]\nExecStart=/bin/sleep 100\n")
    k.unit("c.service", "[Unit]\nIgnoreOnIsolate=yes\n[Service]\nExecStart=/bin/sleep 100\n")
    k.unit("d.service", "[Service]\nExecStart=/bin/sleep 100\n")
    k.start()
    assert k.ctl("start", "b.service", "c.service", "d.service", "a.service").returncode == 0
    r = k.ctl("isolate", "plain")  # "plain" -> plain.target, as systemctl
    assert r.returncode == 1, r.stderr
    assert "Failed to start plain.target: Operation refused, unit may not be isolated." in r.stderr, r.stderr
    assert k.state("b.service")[0] == "active"
    r = k.ctl("isolate", "rescue.target")
    assert r.returncode == 0, r.stderr
    assert k.state("rescue.target")[0] == "active"
    assert k.state("a.service") == ("active", "running")   # pulled in by the target: kept
    # everything else is stopped, by stop jobs that run beside the start keelctl waits for
    k.wait_state("b.service", "inactive")
    k.wait_state("d.service", "inactive")
    assert k.state("c.service") == ("active", "running")   # IgnoreOnIsolate=yes
    assert k.ctl("stop", "a.service", "c.service").returncode == 0


def _timer_row(k, unit):
    r = k.ctl("list-timers")
    assert r.returncode == 0, r.stderr
    for line in r.stdout.splitlines():
        if f" {unit} " in line:
            return line
    raise AssertionError(r.stdout)


def test_persistent_timer_catches_up_once(init, tmp_path):
    k = init()
    out = tmp_path / "runs"
    k.unit("catch.service", f"[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo run >> {out}'\n")
    # daily: the stamp says the last run was 3 days ago -> one run at once, not three
    k.unit("catch.timer", "[Timer]\nOnCalendar=daily\nPersistent=true\nWakeSystem=true\n")
    k.unit("recent.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
    # yearly, last run an hour ago: nothing missed (unless New Year is within the hour)
    k.unit("recent.timer", "[Timer]\nOnCalendar=yearly\nPersistent=true\n")
    k.unit("fresh.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
    k.unit("fresh.timer", "[Timer]\nOnCalendar=yearly\nPersistent=true\n")
    k.unit("plain.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
    k.unit("plain.timer", "[Timer]\nOnCalendar=daily\n")
    stamps = k.state_dir / "timers"
    stamps.mkdir(parents=True)
    now = time.time()
    for name, age in (("catch.timer", 3 * 86400), ("recent.timer", 3600), ("plain.timer", 3 * 86400)):
        p = stamps / f"stamp-{name}"
        p.write_text("")
        os.utime(p, (now - age, now - age))
    k.start()
    assert k.ctl("start", "catch.timer", "recent.timer", "fresh.timer", "plain.timer").returncode == 0
    k.wait(lambda: out.exists() and out.read_text() == "run\n", what="the missed run")
    k.wait_state("catch.timer", "active", "waiting")
    assert "WakeSystem= is not supported by keel-init" in k.unit_log("catch.timer")
    assert k.prop("catch.timer", "Persistent") == "yes" and k.prop("catch.timer", "WakeSystem") == "yes"
    # the stamp now holds the run's time; LAST/PASSED show it
    assert abs(os.stat(stamps / "stamp-catch.timer").st_mtime - time.time()) < 60
    row = _timer_row(k, "catch.timer")
    assert "n/a" not in row.split("catch.timer")[0].split("left", 1)[1], row
    assert "s ago" in row or "ms ago" in row, row
    time.sleep(0.5)
    assert out.read_text() == "run\n"  # once
    # LAST from the stamp: its time, and PASSED an hour and however long the above took (past
    # the second, on a busy machine: "1h 2s ago")
    row = _timer_row(k, "recent.timer")
    assert time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(now - 3600)) in row, row
    assert re.search(r"\s1h( \d+min)?( \d+s)? ago\s", row), row
    assert k.state("recent.service")[0] == "inactive" and k.prop("recent.service", "ExecMainPID") in ("", "0")
    # no stamp yet: created at start, LAST n/a, nothing fired
    assert (stamps / "stamp-fresh.timer").exists()
    row = _timer_row(k, "fresh.timer")
    assert row.split("left", 1)[1].split()[0] == "n/a", row
    # Persistent=false: the stamp is not read
    row = _timer_row(k, "plain.timer")
    assert row.split("left", 1)[1].split()[0] == "n/a", row
    assert k.prop("plain.service", "ExecMainPID") in ("", "0")


def _os_release(key):
    for line in open("/etc/os-release"):
        k, _, v = line.strip().partition("=")
        if k == key:
            return v.strip('"')
    return ""


def _detect_virt(*args):
    import subprocess
    r = subprocess.run(["systemd-detect-virt", *args], capture_output=True, text=True)
    return r.stdout.strip() or "none"


@pytest.mark.skipif(not os.path.exists("/usr/bin/systemd-detect-virt"), reason="systemd-detect-virt is the reference")
def test_conditions_agree_with_the_machine(init, tmp_path):
    k = init()
    virt = _detect_virt()
    container = _detect_virt("--container")
    capbnd = 0
    for line in open("/proc/self/status"):
        if line.startswith("CapBnd:"):
            capbnd = int(line.split()[1], 16)
    have_sys_module = bool(capbnd & (1 << 16))
    cmdline = open("/proc/cmdline").read().split()
    first = cmdline[0].split("=")[0] if cmdline else "nothing-at-all"
    ncpu = len(os.sched_getaffinity(0))
    checks = {
        # name: (condition lines, expected to run)
        "virt-id": (f"ConditionVirtualization={virt}", virt != "none"),
        "virt-yes": ("ConditionVirtualization=yes", virt != "none"),
        "virt-container": ("ConditionVirtualization=container", container != "none"),
        "virt-vm": ("ConditionVirtualization=vm", container == "none" and virt != "none"),
        "virt-other": ("ConditionVirtualization=bochs", virt == "bochs"),
        "cap-module": ("ConditionCapability=CAP_SYS_MODULE", have_sys_module),
        "cap-bogus": ("ConditionCapability=CAP_BOGUS", False),
        "cmdline": (f"ConditionKernelCommandLine={first}", True),
        "cmdline-no": ("ConditionKernelCommandLine=keel.surely.not.there", False),
        "cpus": (f"ConditionCPUs={ncpu}\nConditionCPUs=>={ncpu}\nConditionCPUs=!={ncpu + 1}", True),
        "cpus-more": (f"ConditionCPUs={ncpu + 1}", False),
        "memory": ("ConditionMemory=>=1M", True),
        "memory-huge": ("ConditionMemory=1000T", False),
        "security": ("ConditionSecurity=bogus", False),
        "firstboot": ("ConditionFirstBoot=no", not os.path.exists("/run/systemd/first-boot")),
        "needsupdate": (f"ConditionNeedsUpdate={tmp_path}/never-updated", True),
        "cgroup": ("ConditionControlGroupController=bogus-controller", True),
        "osrelease": (f"ConditionOSRelease=ID={_os_release('ID')}", True),
        "osrelease-no": ("ConditionOSRelease=ID=keel-surely-not", False),
    }
    for name, (cond, _) in checks.items():
        k.unit(f"{name}.service", f"[Unit]\n{cond}\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n")
    k.start()
    for name, (cond, expect) in checks.items():
        r = k.ctl("start", f"{name}.service")
        assert r.returncode == 0, (name, r.stderr)  # a failed condition is not a failed start
        got = k.state(f"{name}.service")[0] == "active"
        assert got == expect, (name, cond, k.unit_log(f"{name}.service"))
        assert k.prop(f"{name}.service", "ConditionResult") == ("yes" if expect else "no"), name
    log = k.unit_log("virt-other.service")
    assert "ConditionVirtualization=bochs failed." in log, log
    assert "Condition check resulted in virt-other.service being skipped." in log, log
