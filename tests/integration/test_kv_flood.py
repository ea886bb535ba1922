"""keel-kv under a connection flood (issue #4).

The leader of a 3-member cluster runs with a descriptor limit of 1024 (prlimit, under the
hard limit). The test opens about twice that many TCP connections to its client port: 700
close at once (half with a reset), then of 1400 that stay, half send half a request and go
silent and half send nothing. Meanwhile:
  * the process stays up and keeps descriptors in reserve: client connections are capped
    at RLIMIT_NOFILE - 150 (as etcd does), the rest wait in the listen backlog;
  * a client that was already connected keeps getting answers, and the other members
    serve new clients;
  * Raft keeps working on the flooded member: writes commit, snapshots are taken (they
    need new files), and a follower that is killed and restarted reconnects and catches up;
and once the flood's sockets are closed, the member's descriptor count (/proc/PID/fd)
comes back to where it was and new clients are served again.

Silent half-requests are closed by keel-kv after its 60 s idle timeout (lib/http; see
test_http_glue.py's idle tests, with a short timeout); etcd's client server has no read
timeout and keeps them until the client leaves. This test closes them itself.
"""

import http.client
import os
import resource
import select
import signal
import socket
import struct
import time

import pytest

from kvcluster import Cluster

NOFILE = 1024
RESERVED = 150  # lib/kv/server.c: RESERVED_FDS, etcd's reservedInternalFDNum
FLOOD_CLOSE = 700   # connections closed at once
FLOOD_KEEP = 1400   # connections kept open: more than the limit, fewer than limit + backlog


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def snapshots(member):
    snap = member.data_dir / "snap"
    return {p.name for p in snap.glob("*.snap")} if snap.is_dir() else set()


def open_flood(port, n, deadline_s=10.0):
    """n non-blocking connects to 127.0.0.1:port; returns the connected sockets (the kernel
    completes handshakes into the listen backlog whether or not the server accepts)."""
    pending = {}
    poller = select.poll()
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        pending[s.fileno()] = s
        poller.register(s, select.POLLOUT)
    connected, failed = [], []
    deadline = time.monotonic() + deadline_s
    while pending and time.monotonic() < deadline:
        for fd, _ in poller.poll(100):
            s = pending.pop(fd)
            poller.unregister(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected.append(s)
            else:
                failed.append(s)
    for s in list(pending.values()) + failed:  # handshakes the kernel dropped (backlog full)
        s.close()
    return connected


class KeepAlive:
    """A client connected before the flood, reusing its one connection."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)

    def put(self, key, value):
        self.conn.request("PUT", f"/v2/keys{key}", body=f"value={value}",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        resp = self.conn.getresponse()
        resp.read()
        assert not resp.will_close, "the kept connection was closed"
        return resp.status

    def close(self):
        self.conn.close()

    def get(self, key):
        self.conn.request("GET", f"/v2/keys{key}?quorum=true")
        resp = self.conn.getresponse()
        return resp.status, resp.read()


@pytest.fixture
def own_nofile():
    """Enough descriptors in this process for the flood, never above the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = FLOOD_CLOSE + FLOOD_KEEP + 512
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"the flood needs {want} descriptors; the hard limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_connection_flood_leaves_the_member_serving_and_leaks_nothing(
        daemons, build_dir, tmp_path, own_nofile):
    cluster = Cluster(daemons, build_dir, tmp_path, wrap=["prlimit", f"--nofile={NOFILE}:{NOFILE}", "--"],
                      extra=["--snapshot-count", "50"])
    cluster.start_all()
    leader = cluster.leader()
    pid = leader.daemon.pid
    with open(f"/proc/{pid}/limits") as f:
        assert any(line.startswith("Max open files") and f" {NOFILE} " in line for line in f), \
            "prlimit did not apply to keel-kv's own process"
    kept = KeepAlive(leader.client_port)
    assert kept.put("/flood/kept", "before") in (200, 201)
    # The baseline once the peers' connections have settled: the same count for a second.
    deadline = time.monotonic() + 30
    counts = [fd_count(pid)]
    while len(counts) < 5 or len(set(counts[-5:])) > 1:
        assert time.monotonic() < deadline, f"descriptor count never settled: {counts}"
        time.sleep(0.25)
        counts.append(fd_count(pid))
    baseline = counts[-1]
    snaps_before = snapshots(leader)

    flood = []
    try:
        # First the connections that close at once (every other one with a reset), then the
        # ones that stay: half send half a request and go silent, half send nothing.
        for i, s in enumerate(open_flood(leader.client_port, FLOOD_CLOSE)):
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        flood = open_flood(leader.client_port, FLOOD_KEEP)
        assert len(flood) > NOFILE - RESERVED, f"only {len(flood)} connections made it"
        for i, s in enumerate(flood):
            if i % 2:
                continue
            try:
                s.send(b"PUT /v2/keys/flood/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf"
                       if i % 4 else b"GET /v2/keys/flood/x HTTP/1.1\r\nHost: x\r\nAcc")
            except BlockingIOError:
                pass

        # The member is up, and its descriptors are not all gone: the reserve is intact.
        deadline = time.monotonic() + 10
        while fd_count(pid) < NOFILE - RESERVED and time.monotonic() < deadline:
            time.sleep(0.05)  # until the server has accepted up to its limit
        during = fd_count(pid)
        assert leader.daemon.alive
        assert during <= NOFILE - RESERVED + baseline + 5, \
            f"{during} descriptors open during the flood (limit {NOFILE}, baseline {baseline})"

        # The connected client is served; Raft commits and snapshots on the flooded member.
        others = [m for m in cluster.members if m is not leader]
        for i in range(120):
            assert kept.put(f"/flood/k{i % 5}", f"v{i}") in (200, 201)
            if i % 10 == 0:
                status, _, body = cluster.call(others[i % 2], "PUT", "/v2/keys/flood/other", {"value": str(i)})
                assert status in (200, 201), (status, body)
        status, body = kept.get("/flood/k4")
        assert status == 200 and b'"value":"v119"' in body, body
        assert snapshots(leader) - snaps_before, "no snapshot was taken during the flood"

        # A follower restarted during the flood reconnects to the flooded leader.
        follower = others[0]
        cluster.kill(follower, signal.SIGKILL)
        assert kept.put("/flood/while-down", "yes") in (200, 201)
        cluster.start(follower)
        deadline = time.monotonic() + 30
        while True:
            status, _, body = cluster.call(follower, "GET", "/v2/keys/flood/while-down")
            if status == 200 and cluster.call(follower, "GET", "/health")[0] == 200:
                break
            assert time.monotonic() < deadline, f"restarted follower did not catch up: {status} {body}"
            time.sleep(0.1)
        assert leader.daemon.alive
    finally:
        for s in flood:
            s.close()
        kept.close()
    kept = KeepAlive(leader.client_port)  # a new one: the flood is over

    # Every descriptor the flood cost comes back.
    deadline = time.monotonic() + 20
    while fd_count(pid) > baseline + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    after = fd_count(pid)
    assert after <= baseline + 2, f"{after} descriptors after the flood, {baseline} before"
    status, _, body = cluster.call(leader, "GET", "/v2/keys/flood/k4?quorum=true")
    assert status == 200 and body["node"]["value"] == "v119"
    assert kept.put("/flood/kept", "after") in (200, 201)
    kept.close()
    cluster.wait_settled()
