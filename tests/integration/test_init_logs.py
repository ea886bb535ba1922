"""keel-init's units writing into the journal, read back with keelctl journal and status.

Each test runs its own keel-init with --journal-dir in the test's temp dir; keelctl is pointed at
its control socket only (no -D), so these tests also check that `keelctl journal` finds the
journal keel-init writes (its "ping" answer names the directory).
"""

import json
import os
import select
import subprocess
import time

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="keel-init tests need root (cgroups)")


def records(k, *args):
    r = k.journal(*args, "-o", "json", "-q")
    assert r.returncode == 0, r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()]


def test_output_priorities_identifier_and_priority_filter(init):
    k = init()
    k.unit("talk.service",
           "[Service]\nType=oneshot\nSyslogIdentifier=talker\n"
           "ExecStart=/bin/sh -c 'echo \"<3>an error\"; echo \"<4>a warning\"; echo plain; "
           "echo \"<7>debugging\"; echo \"<13>not a prefix\"; echo on-stderr >&2'\n")
    k.start()
    assert k.ctl("start", "talk.service").returncode == 0
    recs = records(k, "-u", "talk.service")
    mine = [(r["MESSAGE"], r["PRIORITY"]) for r in recs if r["SYSLOG_IDENTIFIER"] == "talker"]
    assert mine == [("an error", "3"), ("a warning", "4"), ("plain", "6"), ("debugging", "7"),
                    ("<13>not a prefix", "6"), ("on-stderr", "6")], recs
    assert all(r["_SYSTEMD_UNIT"] == "talk.service" for r in recs)
    assert all("_PID" in r for r in recs if r["SYSLOG_IDENTIFIER"] == "talker")
    # keel-init's own messages about the unit are there too, under its own identifier
    own = [r["MESSAGE"] for r in recs if r["SYSLOG_IDENTIFIER"] == "keel-init"]
    assert any(m.startswith("Finished") for m in own), own

    errs = [r["MESSAGE"] for r in records(k, "-u", "talk.service", "-p", "err")]
    assert errs == ["an error"]
    warn = [r["MESSAGE"] for r in records(k, "-u", "talk.service", "-p", "4")]
    assert warn == ["an error", "a warning"]
    # -u without a type means .service; another unit's filter shows nothing of this one
    assert [r["MESSAGE"] for r in records(k, "-u", "talk", "-p", "err")] == ["an error"]
    assert records(k, "-u", "other.service") == []
    short = k.journal("-u", "talk.service", "-p", "err").stdout
    assert "talker[" in short and "]: an error" in short


def test_main_process_exit_and_restart_messages(init):
    k = init()
    k.unit("victim.service", "[Service]\nExecStart=/bin/sleep 300\nRestart=always\nRestartSec=100ms\n")
    k.start()
    assert k.ctl("start", "victim.service").returncode == 0
    pid = int(k.prop("victim.service", "MainPID"))
    os.kill(pid, 9)
    k.wait(lambda: k.prop("victim.service", "NRestarts") == "1", what="the restart")
    msgs = [r["MESSAGE"] for r in records(k, "-u", "victim.service")]
    assert "Main process exited, code=killed, status=9/KILL" in msgs, msgs
    assert "Scheduled restart job, restart counter is at 1." in msgs, msgs
    assert sum(1 for m in msgs if m.startswith("Started")) == 2, msgs


class LineReader:
    """Lines from a pipe as they come (no buffering hides them from select)."""

    def __init__(self, fd):
        self.fd, self.buf = fd, b""

    def next(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def test_follow_prints_lines_as_a_running_service_writes_them(init):
    k = init()
    k.unit("ticker.service",
           "[Service]\nExecStart=/bin/sh -c 'i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done'\n")
    k.start()
    assert k.ctl("start", "ticker.service").returncode == 0
    k.wait(lambda: "tick 1" in k.unit_log("ticker.service"), what="the first ticks")
    follower = subprocess.Popen([str(k.keelctl_bin), "--socket", str(k.socket), "journal", "-f", "-n", "0",
                                 "-u", "ticker.service", "-o", "cat"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = LineReader(follower.stdout.fileno())
        got = [out.next(30) for _ in range(4)]
        assert None not in got, (got, follower.poll())
        # -n 0: only new lines, and they come one by one, in order, while the service runs
        ticks = [int(x.split()[1]) for x in got]
        assert ticks == list(range(ticks[0], ticks[0] + 4)), got
        assert ticks[0] >= 1
        # keel-init's own message about the stop reaches the follower too
        assert k.ctl("stop", "ticker.service").returncode == 0
        line = ""
        while line is not None and not line.startswith("Stopped"):
            line = out.next(30)
        assert line is not None, "no Stopped message"
        assert follower.poll() is None, "-f must keep running"
    finally:
        follower.kill()
        follower.wait()


def test_status_shows_the_last_lines(init):
    k = init()
    k.unit("chatty.service",
           "[Service]\nSyslogIdentifier=chat\n"
           "ExecStart=/bin/sh -c 'for i in $(seq 1 20); do echo line $i; done; exec sleep 300'\n")
    k.start()
    assert k.ctl("start", "chatty.service").returncode == 0
    k.wait(lambda: "line 20" in k.unit_log("chatty.service"), what="the output")
    out = k.ctl("status", "-n", "5", "chatty.service").stdout
    tail = [ln for ln in out.splitlines() if "chat[" in ln]
    assert [ln.split("]: ", 1)[1] for ln in tail] == [f"line {i}" for i in range(16, 21)], out
    out = k.ctl("status", "chatty.service").stdout  # systemctl's default: 10 lines
    assert "line 11" in out and "line 10\n" not in out, out
    # keel-init's own message shows in status as well
    k.ctl("stop", "chatty.service")
    out = k.ctl("status", "-n", "3", "chatty.service").stdout
    assert "Stopped" in out, out


def test_lines_and_since(init):
    k = init()
    k.unit("batch.service",
           "[Service]\nType=oneshot\nSyslogIdentifier=batch\nEnvironment=WHICH=one\n"
           "ExecStart=/bin/sh -c 'for i in 1 2 3 4 5; do echo $WHICH $i; done'\n")
    k.start()
    assert k.ctl("start", "batch.service").returncode == 0
    # --since takes whole seconds: the second batch starts in a later second than the first
    boundary = int(time.time()) + 1
    time.sleep(max(0.0, boundary - time.time()) + 0.05)
    k.unit("batch.service",
           "[Service]\nType=oneshot\nSyslogIdentifier=batch\nEnvironment=WHICH=two\n"
           "ExecStart=/bin/sh -c 'for i in 1 2 3 4 5; do echo $WHICH $i; done'\n")
    assert k.ctl("daemon-reload").returncode == 0
    assert k.ctl("start", "batch.service").returncode == 0

    def batch(*args):
        return [r["MESSAGE"] for r in records(k, "-u", "batch.service", *args) if r["SYSLOG_IDENTIFIER"] == "batch"]

    assert batch() == [f"one {i}" for i in range(1, 6)] + [f"two {i}" for i in range(1, 6)]
    last3 = k.journal("-u", "batch.service", "-n", "3", "-o", "cat").stdout.splitlines()
    assert len(last3) == 3
    assert last3 == ["two 5", "Deactivated successfully.", "Finished batch.service."], last3
    assert batch("-n", "2", "-u", "batch.service") == []  # the last 2 are keel-init's
    assert k.journal("-u", "batch.service", "-n", "all", "-o", "cat").stdout.count("\n") >= 14
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(boundary))
    assert batch("--since", since) == [f"two {i}" for i in range(1, 6)]
    assert batch("--since", f"@{boundary}") == [f"two {i}" for i in range(1, 6)]
    assert batch("--until", f"@{boundary}") == [f"one {i}" for i in range(1, 6)]
    assert batch("--since", "@%d" % (boundary + 3600)) == []
