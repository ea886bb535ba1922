"""Tests of the harness itself: ports, Daemon, the daemons fixture, failure logs."""

import os
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from keelharness import Daemon, DaemonError, free_port, free_ports

pytest_plugins = ["pytester"]

PY = "/usr/bin/python3"
CONFTEST = Path(__file__).with_name("conftest.py")


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def pid_gone_or_zombie(pid: int) -> bool:
    """For processes that are not our children (a zombie awaits someone else)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def python_daemon(code: str) -> list[str]:
    return [PY, "-c", code]


def test_http_daemon_serves_then_stops_by_sigterm(daemons, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "hello.txt").write_text("hello from keel\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    web = daemons.start("web", [PY, "-m", "http.server", "--bind", "127.0.0.1", port],
                        cwd=www, ready_http=f"{url}/")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{url}/hello.txt", timeout=5) as response:
        assert response.read() == b"hello from keel\n"

    pid = web.pid
    assert web.alive
    assert web.stop() == -signal.SIGTERM  # polite first: no SIGKILL needed
    assert pid_gone(pid)
    assert not web.alive
    assert "GET /hello.txt" in web.log_text()  # stderr went to the log too


def test_daemon_exiting_early_raises_with_code_and_output(daemons):
    with pytest.raises(DaemonError) as failure:
        daemons.start("quitter",
                      python_daemon("print('going away now'); raise SystemExit(3)"),
                      ready_tcp=("127.0.0.1", free_port()))
    message = str(failure.value)
    assert "exited with code 3" in message
    assert "going away now" in message
    assert daemons["quitter"].stop() == 3


def test_daemon_never_ready_times_out_with_log_tail(daemons):
    code = "import time; print('still booting', flush=True); time.sleep(60)"
    started = time.monotonic()
    with pytest.raises(DaemonError) as failure:
        daemons.start("slowpoke", python_daemon(code), timeout=1,
                      ready_tcp=("127.0.0.1", free_port()))
    assert time.monotonic() - started < 5
    assert "not ready after 1s" in str(failure.value)
    assert "still booting" in str(failure.value)
    assert daemons["slowpoke"].alive  # still running: the fixture must stop it


def test_daemon_ignoring_sigterm_is_killed(daemons):
    stubborn = daemons.start("stubborn", python_daemon(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ignoring SIGTERM', flush=True)\n"
        "time.sleep(60)\n"), ready=lambda d: "ignoring SIGTERM" in d.log_text())
    pid = stubborn.pid
    started = time.monotonic()
    assert stubborn.stop(timeout=0.5) == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - started < 5
    assert pid_gone(pid)


def test_stop_also_kills_what_the_daemon_left_behind(daemons):
    script = "sleep 60 & echo child=$!; exec sleep 60"
    parent = daemons.start("parent", ["/bin/sh", "-c", script],
                           ready=lambda d: "child=" in d.log_text())
    child = int(parent.log_text().split("child=")[1].split()[0])
    parent.stop()
    deadline = time.monotonic() + 5
    while not pid_gone_or_zombie(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid_gone_or_zombie(child)


def test_logs_capture_stdout_stderr_env_and_cwd(daemons, tmp_path):
    code = ("import os, sys, time\n"
            "print('out:', os.environ['KEEL_GREETING'], os.getcwd(), flush=True)\n"
            "print('err: on stderr', file=sys.stderr, flush=True)\n"
            "print('last line', flush=True)\n"
            "time.sleep(60)\n")
    talker = daemons.start("talker", python_daemon(code), env={"KEEL_GREETING": "hi"},
                           cwd=tmp_path, ready=lambda d: "last line" in d.log_text())
    assert talker.log_path == tmp_path / "logs" / "talker.log"
    log = talker.log_text()
    assert f"out: hi {tmp_path}" in log
    assert "err: on stderr" in log
    assert talker.log_tail(2).splitlines() == ["err: on stderr", "last line"]


def test_daemon_as_context_manager_and_kill(tmp_logs):
    with Daemon("sleeper", python_daemon("import time; time.sleep(60)"), tmp_logs) as sleeper:
        pid = sleeper.pid
        assert sleeper.alive
        sleeper.kill(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while sleeper.alive and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sleeper.exit_code == -signal.SIGKILL
    assert pid_gone(pid)
    assert sleeper.stop() == -signal.SIGKILL  # again: harmless, same answer


def test_daemon_names_are_unique_per_test(daemons):
    daemons.start("once", python_daemon("import time; time.sleep(60)"))
    with pytest.raises(ValueError):
        daemons.start("once", python_daemon("pass"))


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(40) + [free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    for port in ports[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


INNER_TEST = '''
from pathlib import Path

CHATTER = "print('KEEL' + '-MARKER-' + str(6 * 7), flush=True); import time; time.sleep(60)"

def test_fails_while_a_daemon_runs(daemons):
    chatty = daemons.start("chatty", ["/usr/bin/python3", "-c", CHATTER],
                           ready=lambda d: "-MARKER-" in d.log_text())
    Path(__file__).with_name("daemon.pid").write_text(str(chatty.pid))
    assert False, "failing on purpose"
'''


def test_failure_report_shows_daemon_log_and_daemon_is_stopped(pytester):
    pytester.makeconftest(CONFTEST.read_text())  # the very conftest under test
    pytester.makepyfile(test_inner=INNER_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    # The marker is only ever printed by the daemon; the source splits it up.
    result.stdout.fnmatch_lines(["*daemon chatty log*", "KEEL-MARKER-42"])
    pid = int((pytester.path / "daemon.pid").read_text())
    assert pid_gone(pid)
