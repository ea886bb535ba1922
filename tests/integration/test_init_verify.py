"""keelctl verify, calendar and timespan against systemd-analyze, which is installed here.

  * the oracle corpus (init_oracle/): every file gives the same diagnostics and the same
    success or failure from both tools;
  * every .service/.socket/.target/.timer in /lib/systemd/system and /usr/lib/systemd/system
    (with their drop-ins) loads with no diagnostic that systemd does not also give;
  * calendar expressions normalise and elapse identically (UTC and a DST zone);
  * bad input (huge lines, NUL bytes, invalid UTF-8, open quotes and continuations) is
    reported clearly and handled without crash or leak (ASan builds report into stderr).
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ORACLE = HERE / "init_oracle"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed")

# Lines only one side prints, by design (docs/init.md "keelctl verify"):
#  - systemd-analyze also builds start transactions and checks socket services at runtime;
#  - keel-init says which systemd settings it does not implement.
SYSTEMD_ONLY = re.compile(r"socket cannot be started|Failed to create .*/start")
KEEL_ONLY = re.compile(r"is not supported by keel-init")


@pytest.fixture(scope="module")
def keelctl(build_dir):
    path = build_dir / "cmd" / "keelctl" / "keelctl"
    if not path.exists():
        pytest.skip(f"{path} not built")
    return path


def run(argv, cwd=None, env=None):
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, errors="replace", timeout=120)
    for marker in SANITIZER_MARKERS:
        assert marker not in proc.stderr, proc.stderr
    return proc


def lines(text, drop):
    return sorted(line for line in text.splitlines() if line and not drop.search(line))


def oracle_files():
    return sorted(p.name for p in ORACLE.iterdir()
                  if p.is_file() and p.suffix in (".service", ".socket", ".timer", ".target"))


@needs_systemd
@pytest.mark.parametrize("name", oracle_files())
def test_verify_matches_systemd_analyze(keelctl, name):
    sd = run(["systemd-analyze", "verify", "--man=no", f"./{name}"], cwd=ORACLE)
    kl = run([keelctl, "verify", f"./{name}"], cwd=ORACLE)
    assert lines(kl.stderr, KEEL_ONLY) == lines(sd.stderr, SYSTEMD_ONLY)
    if not SYSTEMD_ONLY.search(sd.stderr):  # those checks fail systemd-analyze on their own
        assert (kl.returncode == 0) == (sd.returncode == 0), (kl.stderr, sd.stderr)


def test_oracle_corpus_is_not_empty():
    assert len(oracle_files()) >= 60


def system_units():
    seen, files = set(), []
    for d in ("/lib/systemd/system", "/usr/lib/systemd/system"):
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if not name.endswith((".service", ".socket", ".target", ".timer")):
                continue
            key = os.path.realpath(d), name
            if key in seen:
                continue
            seen.add(key)
            files.append(path)
    return files


@needs_systemd
def test_every_system_unit_loads(keelctl):
    files = system_units()
    assert len(files) > 100, "expected Debian's units in /lib/systemd/system"
    kl = run([keelctl, "--systemd-paths", "verify", *files])
    sd = run(["systemd-analyze", "verify", "--man=no", *files])
    keel = lines(kl.stderr, KEEL_ONLY)
    # Nothing keel-init rejects that systemd accepts: no parse error, no unknown key.
    assert keel == lines(sd.stderr, SYSTEMD_ONLY)
    for line in keel:
        assert "failed to load properly" not in line and "bad unit file setting" not in line, line


def test_every_system_unit_loads_without_parse_errors(keelctl):
    """The same without the oracle: only masks and missing binaries may be reported."""
    files = system_units()
    if not files:
        pytest.skip("no systemd units on this machine")
    kl = run([keelctl, "--systemd-paths", "verify", *files])
    for line in lines(kl.stderr, KEEL_ONLY):
        assert re.search(r"^Unit \S+ is masked\.$|: Command \S+ is not executable: ", line), line


CALENDAR_SPECS = [
    "minutely", "hourly", "daily", "weekly", "monthly", "quarterly", "semiannually", "yearly",
    "*-*-* 00:00:00", "Mon *-*-* 00:00:00", "Mon..Fri 9:30", "Sat,Sun 12:00", "Mon,Wed..Fri 08:00",
    "*-*-1/2 4:00", "2024-*-* 00/6:00", "*-02-29 12:00", "*-*~1", "*-*~03 01:02", "12:00",
    "*:0/15", "*:*:0/10", "*:*:*", "0:0:0.5", "*-*-* *:*:1.25/0.5", "2025-01-01", "@1700000000",
    "Fri *-*-13 00:00", "*-1,4,7-1 0:0", "1..5:0", "daily UTC", "Mon 12:00 UTC", "*-*-* 8,20:00",
    "*-04-31", "Sun..Mon", "Mon..", "*-*-* 25:00", "0:60", "bogus", "*-*-* 02:30",
    "*-*-* 00:00:00 Europe/Berlin", "*-*-* 03:30 Europe/Berlin", "Sat *-*-1..7 18:00",
]
CALENDAR_LINE = re.compile(r"Normalized|Next elapse|Iter\.|UTC\):|Failed")


@needs_systemd
@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin"])
@pytest.mark.parametrize("base", ["2024-02-28 12:00:00 UTC", "2024-03-30 22:00:00 UTC",
                                  "2024-10-26 22:00:00 UTC"])
def test_calendar_matches_systemd_analyze(keelctl, tz, base):
    if tz != "UTC" and not os.path.exists(f"/usr/share/zoneinfo/{tz}"):
        pytest.skip(f"no zoneinfo for {tz}")
    env = dict(os.environ, TZ=tz)
    for spec in CALENDAR_SPECS:
        args = ["calendar", "--iterations=3", f"--base-time={base}", spec]
        sd = run(["systemd-analyze", *args], env=env)
        kl = run([keelctl, *args], env=env)
        want = [l for l in (sd.stdout + sd.stderr).splitlines() if CALENDAR_LINE.search(l)]
        got = [l for l in (kl.stdout + kl.stderr).splitlines() if CALENDAR_LINE.search(l)]
        assert got == want, spec
        assert (kl.returncode == 0) == (sd.returncode == 0), spec


TIMESPANS = ["5", "5 min", "5min 20s", "1.5", ".5", "+5s", "1min30", "1y", "1M", "1w 2d", "2µs",
             "5 msec", "infinity", "0", "1.", "5x", "-1", "3.sec", "1e3", "5mins", "584542y", "1h 30min"]


@needs_systemd
def test_timespan_matches_systemd_analyze(keelctl):
    for span in TIMESPANS:
        sd = run(["systemd-analyze", "timespan", "--", span])
        kl = run([keelctl, "timespan", "--", span])
        want = [l.strip() for l in (sd.stdout + sd.stderr).splitlines() if "μs:" in l or "Failed" in l]
        got = [l.strip() for l in (kl.stdout + kl.stderr).splitlines() if "μs:" in l or "Failed" in l]
        assert got == want, span


def test_verify_reports_what_cannot_be_loaded(keelctl, tmp_path):
    (tmp_path / "ok.service").write_text("[Service]\nExecStart=/bin/true\n")
    (tmp_path / "masked.service").symlink_to("/dev/null")
    (tmp_path / "x.mount").write_text("[Mount]\nWhat=/dev/x\n")
    (tmp_path / "tmpl@.service").write_text("[Service]\nExecStart=/bin/echo %i\n")
    (tmp_path / "nobin.service").write_text("[Service]\nExecStart=/nonexistent/x\n")
    ok = run([keelctl, "verify", "ok.service", "tmpl@.service"], cwd=tmp_path)
    assert ok.returncode == 0 and ok.stderr == ""
    for name, message in [("masked.service", "Unit masked.service is masked."),
                          ("missing.service", "Unit missing.service not found."),
                          ("x.mount", "Unit x.mount: keel-init does not run .mount units."),
                          ("bad!.service", "Failed to prepare filename bad!.service: Invalid argument"),
                          ("nobin.service", "nobin.service: Command /nonexistent/x is not executable: "
                                            "No such file or directory")]:
        proc = run([keelctl, "verify", name], cwd=tmp_path)
        assert proc.returncode == 1, name
        assert message in proc.stderr.splitlines(), proc.stderr


def test_verify_reads_drop_ins_next_to_the_file(keelctl, tmp_path):
    (tmp_path / "a.service").write_text("[Service]\nExecStart=/bin/true\n")
    (tmp_path / "a.service.d").mkdir()
    (tmp_path / "a.service.d" / "x.conf").write_text("[Service]\nRestart=sometimes\n")
    proc = run([keelctl, "verify", str(tmp_path / "a.service")])
    assert proc.stderr.splitlines() == [
        f"{tmp_path}/a.service.d/x.conf:2: Failed to parse service restart specifier, ignoring: sometimes"]
    assert proc.returncode == 0


BAD_INPUT = {
    "huge-line.service": b"[Service]\nExecStart=/bin/echo " + b"x" * (2 << 20) + b"\n",
    "huge-continuation.service": b"[Service]\nExecStart=/bin/echo " + (b"y" * 300000 + b" \\\n") * 5 + b"z\n",
    "nul.service": b"[Service]\nExecStart=/bin/true\x00\x00\x00Junk\x00=\x00\n",
    "utf8.service": b"[Service]\nDescription=\xc3\x28\nExecStart=/bin/true\n",
    "open-quote.service": b"[Service]\nExecStart=/bin/true \"never closed\n",
    "open-continuation.service": b"[Service]\nExecStart=/bin/true \\",
    "binary.service": bytes(range(256)) * 64,
    "only-garbage.service": b"\xff" * 5000,
    "many-sections.service": b"[Service]\n[Unit]\n" * 20000 + b"[Service]\nExecStart=/bin/true\n",
    "deep-escapes.service": b"[Service]\nExecStart=/bin/echo " + b"\\x41\\u00e9\\U0001F600" * 20000 + b"\n",
}


@pytest.mark.parametrize("name", sorted(BAD_INPUT))
def test_bad_input_gives_a_clear_message(keelctl, tmp_path, name):
    (tmp_path / name).write_bytes(BAD_INPUT[name])
    proc = run([keelctl, "verify", name], cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr  # no crash
    if name.startswith("huge"):
        assert re.search(r":\d+: (Line too long|Continuation line too long)$", proc.stderr, re.M), proc.stderr
        assert "failed to load properly" in proc.stderr
    if name == "utf8.service":
        assert "String is not UTF-8 clean, ignoring assignment: Description=\ufffd(" in proc.stderr
    if name in ("open-quote.service", "open-continuation.service"):
        assert proc.returncode == (1 if name == "open-quote.service" else 0), proc.stderr
    if name == "open-quote.service":
        assert 'Unbalanced quoting, ignoring: "/bin/true "never closed"' in proc.stderr
