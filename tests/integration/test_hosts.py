"""Tests of the pretend hosts: connectivity, partitions, links and cleanup.

Every connectivity check runs its client with host.run(), so the connect
really happens inside the source host's namespace.
"""

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from keelharness import Daemon, TestHosts, list_netns, sweep_stale

pytestmark = pytest.mark.netns
pytest_plugins = ["pytester"]

PY = "/usr/bin/python3"
HERE = Path(__file__).resolve().parent
ECHO_PORT = 7000

ECHO_SERVER = """
import socket, sys, time
time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 0)
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
while True:
    conn, _ = server.accept()
    with conn:
        conn.settimeout(2)
        try:
            conn.sendall(conn.recv(64))
        except OSError:
            pass
"""

ECHO_CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1) as conn:
        conn.sendall(b"ping")
        sys.exit(0 if conn.recv(64) == b"ping" else 2)
except OSError as exc:
    sys.exit(f"{exc}")
"""

# Prints the first datagram that arrives: "hello" from the sender, or "end", which the test
# sends from inside the receiver's own host once the sender has finished (and a little
# later): the verdict waits for the sender, however slowly it starts on a busy machine.
UDP_RECEIVER = """
import socket, sys
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.bind((sys.argv[1], int(sys.argv[2])))
    sock.settimeout(60)
    print("bound", flush=True)
    try:
        print(sock.recv(64).decode())
    except TimeoutError:
        print("nothing")
"""

UDP_SENDER = """
import socket, sys
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.sendto(b"hello", (sys.argv[1], int(sys.argv[2])))
"""


def udp_delivered(src, dst) -> bool:
    """Does one datagram from src arrive at dst?  (No reply needed, unlike TCP.)"""
    receiver = dst.popen([PY, "-c", UDP_RECEIVER, dst.addr, ECHO_PORT],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout.readline().strip() == "bound"
        # (sendto fails with EPERM when the sender's own filter drops the datagram)
        src.run([PY, "-c", UDP_SENDER, dst.addr, ECHO_PORT], timeout=60, capture_output=True)
        time.sleep(0.5)  # a datagram that got through is in the receiver's queue long before
        dst.run([PY, "-c", UDP_SENDER.replace("hello", "end"), dst.addr, ECHO_PORT],
                timeout=60, check=True)
        got = receiver.stdout.readline().strip()
        assert got in ("hello", "end"), got
        return got == "hello"
    finally:
        receiver.kill()
        receiver.wait()


def reaches(src, dst) -> bool:
    """Does a TCP echo from inside src to dst's echo server work?"""
    probe = src.run([PY, "-c", ECHO_CLIENT, dst.addr, ECHO_PORT],
                    capture_output=True, timeout=10)
    return probe.returncode == 0


def eventually_reaches(src, dst, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while not reaches(src, dst):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def root_netns_state() -> tuple:
    """What the test must never change: the root namespace's links, addresses, rules."""
    def out(*argv):
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    links = sorted(line.split(":")[1].strip() for line in out("ip", "-o", "link").splitlines())
    addrs = sorted(tuple(line.split()[1:4]) for line in out("ip", "-o", "addr").splitlines())
    return links, addrs, out("ip", "route"), out("nft", "list", "ruleset")


@pytest.fixture
def trio(test_hosts):
    """Three hosts, each running an echo server on its own address."""
    hosts = test_hosts(3)
    servers = []
    try:
        for host in hosts:
            server = host.popen([PY, "-c", ECHO_SERVER, host.addr, ECHO_PORT],
                                stdout=subprocess.PIPE, text=True)
            servers.append(server)
            assert server.stdout.readline().strip() == "listening"
        yield hosts
    finally:
        for server in servers:
            server.kill()  # by PID
            server.wait()


def test_hosts_have_names_and_addresses(trio):
    assert [h.index for h in trio] == [1, 2, 3]
    assert len({h.addr for h in trio}) == 3
    assert all(h.name in list_netns() for h in trio)
    assert trio.switch in list_netns()
    h1 = trio[0]
    shown = h1.run(["ip", "-o", "-4", "addr", "show", "dev", "eth0"],
                   capture_output=True, text=True, check=True).stdout
    assert f"{h1.addr}/24" in shown


def test_cut_and_heal(trio):
    h1, h2, h3 = trio
    assert eventually_reaches(h1, h2)
    trio.cut(h1, h2)
    assert not reaches(h1, h2)
    assert not reaches(h2, h1)
    assert eventually_reaches(h1, h3)
    assert eventually_reaches(h3, h2)
    trio.heal(h1, h2)
    assert eventually_reaches(h1, h2)
    assert eventually_reaches(h2, h1)


def test_cut_is_enforced_by_both_ends(test_hosts):
    hosts = test_hosts(2)
    h1, h2 = hosts
    assert udp_delivered(h1, h2)
    for bypassed in (h1, h2):  # either end alone must stop h1 -> h2
        hosts.heal_all()
        hosts.cut(h1, h2)
        bypassed.run(["nft", "flush", "set", "inet", "keel_part", "blocked"], check=True)
        assert not udp_delivered(h1, h2), f"only {bypassed.name}'s filter was guarding"


def test_isolate_and_heal_all(trio):
    h1, h2, h3 = trio
    trio.isolate(h1)
    for other in (h2, h3):
        assert not reaches(h1, other)
        assert not reaches(other, h1)
    assert eventually_reaches(h2, h3)
    trio.heal_all()
    assert eventually_reaches(h1, h2)
    assert eventually_reaches(h3, h1)


def test_link_down_and_up(trio):
    h1, h2, _ = trio
    trio.link_down(h1)
    assert not reaches(h1, h2)
    assert not reaches(h2, h1)
    trio.link_up(h1)
    assert eventually_reaches(h1, h2)
    assert eventually_reaches(h2, h1)


def test_daemon_inside_a_host(test_hosts, daemons):
    h1, h2 = test_hosts(2)
    # ready_tcp is probed from inside h2, and must wait out the server's 0.5 s delay.
    echo = daemons.start("echo-h2", [PY, "-c", ECHO_SERVER, h2.addr, ECHO_PORT, 0.5],
                         netns=h2.name, ready_tcp=(h2.addr, ECHO_PORT), timeout=30)
    assert "listening" in echo.log_text()  # ready means really listening
    assert eventually_reaches(h1, h2)
    # `ip netns exec` execs: the PID we hold is python's, not ip's.
    assert Path(f"/proc/{echo.pid}/cmdline").read_bytes().startswith(PY.encode())
    pid = echo.pid
    echo.stop()
    assert not Path(f"/proc/{pid}").exists()
    assert not reaches(h1, h2)


def test_probing_a_host_address_from_the_root_namespace_is_refused(test_hosts, tmp_logs):
    (h1,) = test_hosts(1)
    for check in ({"ready_tcp": (h1.addr, ECHO_PORT)},
                  {"ready_http": f"http://{h1.addr}:{ECHO_PORT}/"}):
        with pytest.raises(ValueError, match="netns="):
            Daemon("misaimed", ["true"], tmp_logs, **check)


def test_close_removes_every_namespace():
    hosts = TestHosts(2)
    made = hosts.namespaces
    assert len(made) == 3 and set(made) <= set(list_netns())
    hosts.close()
    assert not set(made) & set(list_netns())
    hosts.close()  # idempotent


def test_close_after_exception_in_with_block():
    with pytest.raises(RuntimeError):
        with TestHosts(2) as hosts:
            made = hosts.namespaces
            raise RuntimeError("boom")
    assert not set(made) & set(list_netns())


def test_close_tolerates_namespaces_already_gone():
    hosts = TestHosts(1)
    made = hosts.namespaces
    subprocess.run(["ip", "netns", "delete", hosts[0].name], check=True)
    hosts.close()
    assert not set(made) & set(list_netns())


def test_forgotten_hosts_are_closed_at_exit():
    script = ("import sys; sys.path.insert(0, sys.argv[1])\n"
              "from keelharness import TestHosts\n"
              "print(*TestHosts(2).namespaces)\n")
    made = subprocess.run([PY, "-c", script, HERE], capture_output=True, text=True,
                          check=True, timeout=30).stdout.split()
    assert len(made) == 3
    assert not set(made) & set(list_netns())


INNER_TEST = '''
from pathlib import Path

def test_fails_with_hosts(test_hosts):
    hosts = test_hosts(2)
    Path(__file__).with_name("netns.txt").write_text(" ".join(hosts.namespaces))
    assert False, "failing on purpose"
'''


def test_fixture_closes_hosts_of_a_failed_test(pytester):
    pytester.makeconftest((HERE / "conftest.py").read_text())
    pytester.makepyfile(test_inner=INNER_TEST)
    pytester.runpytest().assert_outcomes(failed=1)
    made = (pytester.path / "netns.txt").read_text().split()
    assert len(made) == 3
    assert not set(made) & set(list_netns())


def changes_of_ours(before, after, hosts) -> list[str]:
    """What changed in the root namespace between two root_netns_state()s that TestHosts could
    have done: its link names (eth0, h<i>, br0, its prefix), 10.77.0.0/16, its nft table.
    Other test runs on this machine change the root namespace meanwhile (bridges and veths
    of pods and podman, firewall rules): their changes are not ours to judge."""
    ours = re.compile(rf"(^|\W)(eth0|br0|h\d+|{re.escape(hosts.prefix)}\S*)(\W|$)|10\.77\.|keel_part")
    found = []
    for b, a in zip(before, after):
        b = set(map(str, b)) if isinstance(b, list) else set(b.splitlines())
        a = set(map(str, a)) if isinstance(a, list) else set(a.splitlines())
        found += [f"-{line}" for line in b - a if ours.search(line)]
        found += [f"+{line}" for line in a - b if ours.search(line)]
    return found


def test_root_namespace_untouched():
    before = root_netns_state()
    with TestHosts(3) as hosts:
        hosts.cut(hosts[0], hosts[1])
        hosts.link_down(hosts[2])
        assert changes_of_ours(before, root_netns_state(), hosts) == []
    assert changes_of_ours(before, root_netns_state(), hosts) == []


def test_sweep_stale_removes_only_dead_owners():
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead, alive = f"keeltest{finished.pid}-0-h1", f"keeltest{os.getpid()}-0-h1"
    for name in (dead, alive):
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        assert sweep_stale("keeltest") == [dead]
        assert dead not in list_netns()
        assert alive in list_netns()
    finally:
        for name in (dead, alive):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
