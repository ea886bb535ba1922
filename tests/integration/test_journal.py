"""keelctl journal against journals written by another process (tests/journal/journal-writer):
journalctl's output formats and filters, and -f following new records across rotations."""

import json
import os
import select
import socket
import subprocess
import time

import pytest

T0 = 1700000000000000  # 2023-11-14 22:13:20 UTC


@pytest.fixture
def tools(build_dir):
    keelctl = build_dir / "cmd" / "keelctl" / "keelctl"
    writer = build_dir / "tests" / "journal" / "journal-writer"
    if not keelctl.exists() or not writer.exists():
        pytest.skip(f"keelctl or journal-writer not built in {build_dir}")
    return keelctl, writer


ENV = dict(os.environ, TZ="UTC")


def write(writer, d, *args, stdin=None):
    subprocess.run([str(writer), str(d), *map(str, args)], check=True, env=ENV, timeout=60,
                   input=stdin, capture_output=True)


def journal(keelctl, d, *args, rc=0):
    p = subprocess.run([str(keelctl), "journal", "-D", str(d), *args], env=ENV, timeout=60,
                       capture_output=True, text=True)
    assert p.returncode == rc, p.stderr
    return p.stdout


def test_short_json_cat(tools, tmp_path):
    keelctl, writer = tools
    d = tmp_path / "j"
    write(writer, d, "--unit", "web.service", "--ident", "httpd", "--pid", 4242, "--count", 2,
          "--realtime-usec", T0, "--prefix", "GET /")
    write(writer, d, "--unit", "db.service", "--priority", 3, "--count", 1,
          "--realtime-usec", T0 + 1_000_000, "--prefix", "disk ")
    host = socket.gethostname()
    assert journal(keelctl, d).splitlines() == [
        f"Nov 14 22:13:20 {host} httpd[4242]: GET /0",
        f"Nov 14 22:13:20 {host} httpd[4242]: GET /1",
        f"Nov 14 22:13:21 {host} db.service: disk 0",
    ]
    assert journal(keelctl, d, "-o", "cat", "-u", "web").splitlines() == ["GET /0", "GET /1"]
    recs = [json.loads(l) for l in journal(keelctl, d, "-o", "json").splitlines()]
    assert len(recs) == 3
    r = recs[0]
    assert r["__REALTIME_TIMESTAMP"] == str(T0)
    assert r["_SYSTEMD_UNIT"] == "web.service"
    assert r["SYSLOG_IDENTIFIER"] == "httpd"
    assert r["_PID"] == "4242"
    assert r["PRIORITY"] == "6"
    assert r["MESSAGE"] == "GET /0"
    assert r["_HOSTNAME"] == host
    assert len(r["_BOOT_ID"]) == 32
    assert recs[2]["PRIORITY"] == "3" and "_PID" not in recs[2]


def test_binary_message(tools, tmp_path):
    keelctl, writer = tools
    d = tmp_path / "j"
    write(writer, d, "--realtime-usec", T0, stdin=b"a\x01b\n")
    assert journal(keelctl, d, "-o", "cat").encode() == b"a\x01b\n"
    assert journal(keelctl, d).endswith("test.service: [3B blob data]\n")
    assert json.loads(journal(keelctl, d, "-o", "json"))["MESSAGE"] == [97, 1, 98]


def test_filters(tools, tmp_path):
    keelctl, writer = tools
    d = tmp_path / "j"
    for i in range(30):
        write(writer, d, "--unit", f"u{i % 3}.service", "--priority", i % 8, "--count", 1,
              "--realtime-usec", T0 + i * 60_000_000, "--prefix", f"m{i}-")
    cat = lambda *a: journal(keelctl, d, "-o", "cat", *a).splitlines()
    assert cat("-u", "u1.service") == [f"m{i}-0" for i in range(1, 30, 3)]
    assert cat("-u", "u1", "-u", "u2") == [f"m{i}-0" for i in range(30) if i % 3]
    assert cat("-n", "3") == ["m27-0", "m28-0", "m29-0"]
    assert cat("-n", "2", "-u", "u0.service") == ["m24-0", "m27-0"]
    assert cat("-p", "err") == [f"m{i}-0" for i in range(30) if i % 8 <= 3]
    assert cat("-p", "1") == [f"m{i}-0" for i in range(30) if i % 8 <= 1]
    assert cat("--since", "2023-11-14 22:40:20 UTC", "--until", "2023-11-14 22:42:20 UTC") == [
        "m27-0", "m28-0", "m29-0"]
    assert cat("--since", "@1700001600") == ["m27-0", "m28-0", "m29-0"]
    assert journal(keelctl, d, "--since", "-1h") == "-- No entries --\n"
    assert journal(keelctl, d, "--since", "-1h", "-q") == ""
    journal(keelctl, d, "--since", "whenever", rc=2)
    journal(keelctl, d, "-p", "loud", rc=2)
    journal(keelctl, d, "-o", "xml", rc=2)


def test_global_options_before_journal(tools, tmp_path):
    """keelctl's own options are parsed anywhere; journal's -p/-n/-u must still be journal's."""
    keelctl, writer = tools
    d = tmp_path / "j"
    write(writer, d, "--unit", "a.service", "--priority", 2, "--count", 3, "--prefix", "crit ")
    write(writer, d, "--unit", "a.service", "--priority", 6, "--count", 1, "--prefix", "info ")
    p = subprocess.run([str(keelctl), "--log-level", "err", "journal", "-D", str(d), "-u", "a",
                        "-p", "crit", "-n", "2", "-o", "cat"], env=ENV, timeout=60,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["crit 1", "crit 2"]


def test_missing_directory(tools, tmp_path):
    keelctl, _ = tools
    assert journal(keelctl, tmp_path / "none") == "-- No entries --\n"


class Lines:
    """Lines of a process's stdout, read with a deadline."""

    def __init__(self, proc):
        self.proc, self.buf = proc, b""

    def read(self, n, timeout=30):
        out, deadline = [], time.monotonic() + timeout
        while len(out) < n:
            while b"\n" in self.buf and len(out) < n:
                line, self.buf = self.buf.split(b"\n", 1)
                out.append(line.decode())
            if len(out) >= n:
                break
            left = deadline - time.monotonic()
            assert left > 0, f"timed out with {out!r}"
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                assert chunk, f"follower exited ({self.proc.poll()}) after {out!r}"
                self.buf += chunk
        return out


def test_follow_across_rotation(tools, tmp_path):
    keelctl, writer = tools
    d = tmp_path / "j"
    write(writer, d, "--count", 20, "--prefix", "old ")
    follower = subprocess.Popen([str(keelctl), "journal", "-D", str(d), "-f", "-o", "cat", "-n", "2"],
                                stdout=subprocess.PIPE, env=ENV)
    feeder = subprocess.Popen([str(writer), str(d), "--max-file-size", "2048",
                               "--max-use", str(10 << 20)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=ENV)
    try:
        lines = Lines(follower)
        assert lines.read(2) == ["old 18", "old 19"]
        acks = Lines(feeder)
        for i in range(300):
            feeder.stdin.write(f"new {i:03d}\n".encode())
            feeder.stdin.flush()
            if i % 50 == 49:
                acks.read(50)
                assert lines.read(50) == [f"new {k:03d}" for k in range(i - 49, i + 1)]
        files = [f for f in os.listdir(d) if f.endswith(".kj")]
        assert len(files) > 3, files  # the follower went through several rotations
        feeder.stdin.close()
        assert feeder.wait(timeout=30) == 0
        # a new writer (a restarted keel-init) starts another file; the follower goes on
        write(writer, d, "--count", 2, "--prefix", "restart ")
        assert lines.read(2) == ["restart 0", "restart 1"]
    finally:
        for p in (feeder, follower):
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
