"""--strict-reconfig-check (on by default in etcd 3.4): a member add or remove that would leave
the cluster without a started, connected quorum is refused with etcd's 500 "Internal Server
Error". The same requests go to a 3-member etcd 3.4 and a 3-member keel-kv, each with one
member stopped: the answers must be the same. With the check off keel-kv lets such changes through."""

import json
import shutil
import time

import pytest

from keelharness import free_ports
from test_kv_etcdctl import FAST, Member, http, http_json, keel_kv, retry_reconfig, wait_healthy

pytestmark = pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd (Debian etcd-server) is not installed")


def start_three(daemons, tmp_path, kind, argv0, extra=()):
    ports = free_ports(6)
    members = [Member(f"{kind}{i + 1}", ports[2 * i], ports[2 * i + 1]) for i in range(3)]
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    for m in members:
        m.proc = daemons.start(m.name, argv0 + [
            "--name", m.name, "--data-dir", str(tmp_path / m.name),
            "--listen-client-urls", m.url, "--advertise-client-urls", m.url,
            "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", initial, *extra] + FAST,
            ready_tcp=("127.0.0.1", m.client_port))
    for m in members:
        wait_healthy(m, timeout=30)
    return members


def answers_with_one_member_down(members):
    """What a running member answers to the changes, once the third member is stopped."""
    ids = {x["name"]: x["id"] for x in json.loads(http(members[0], "GET", "/v2/members")[2])["members"]}
    members[2].proc.stop()
    first, second, gone = members
    free = free_ports(1)[0]
    got = {}
    # Adding a member: not every peer is connected, so the new quorum may not be reachable.
    status, _, body = http_json(first, "POST", "/v2/members", {"peerURLs": [f"http://127.0.0.1:{free}"]})
    got["add"] = (status, json.loads(body))
    # Removing a running member would leave one running member of two.
    status, _, body = http(first, "DELETE", f"/v2/members/{ids[second.name]}")
    got["remove running"] = (status, json.loads(body) if body else None)
    # Removing the stopped one is safe (it is no part of the active quorum).
    status, _, body = retry_reconfig(lambda: http(first, "DELETE", f"/v2/members/{ids[gone.name]}"))
    got["remove stopped"] = (status, body)
    # Nothing refused was proposed: the two left form the cluster and take writes. (Proposed,
    # either change would have needed the stopped member to commit, and blocked the cluster.)
    got["write"] = retry_reconfig(lambda: http(second, "PUT", "/v2/keys/after", "value=1"))[0]
    got["members"] = sorted(x["name"] for x in json.loads(http(first, "GET", "/v2/members")[2])["members"])
    return got


def test_strict_reconfig_check_refuses_like_etcd(daemons, build_dir, tmp_path):
    etcd = start_three(daemons, tmp_path, "etcd", ["etcd", "--enable-v2=true"])
    keel = start_three(daemons, tmp_path, "keel", [keel_kv(build_dir)])
    want = answers_with_one_member_down(etcd)
    got = answers_with_one_member_down(keel)
    refused = (500, {"message": "Internal Server Error"})
    assert want == {"add": refused, "remove running": refused, "remove stopped": (204, ""), "write": 201,
                    "members": ["etcd1", "etcd2"]}, want
    want["members"] = ["keel1", "keel2"]
    assert got == want
    log = keel[0].proc.log_text()
    assert "rejecting member add request" in log and "rejecting member remove request" in log, log


def test_without_strict_reconfig_check_adds_go_through(daemons, build_dir, tmp_path):
    """Two members added in a row, neither started: the second add is one the check refuses
    (a voting member is not connected), but without it both commit (three of five voters run)."""
    keel = start_three(daemons, tmp_path, "keel", [keel_kv(build_dir)], extra=["--strict-reconfig-check=false"])
    for port in free_ports(2):
        status, _, body = http_json(keel[0], "POST", "/v2/members", {"peerURLs": [f"http://127.0.0.1:{port}"]})
        assert status == 201, body
    # keel[0] answered once the second change applied there; keel[1] applies it when the
    # leader's next message tells it the commit index.
    deadline = time.monotonic() + 15
    while len(listed := json.loads(http(keel[1], "GET", "/v2/members")[2])["members"]) != 5:
        assert time.monotonic() < deadline, listed
        time.sleep(0.1)
