"""keel-kv membership with real processes and etcdctl: changes sent to a follower, a member
that joins with --initial-cluster-state existing, new peer URLs, and removed members that
learn it (by applying their removal, or from their peers) and exit as etcd's do."""

import json
import re
import time

from keelharness import free_ports
from test_kv_etcdctl import (FAST, Member, etcdctl, etcdctl_reconfig, http, http_json, keel_kv, retry_reconfig,
                             start_cluster, wait_healthy)

REMOVED_LINE = "the member has been permanently removed from the cluster"


def member_argv(build_dir, tmp_path, m, initial, *extra, peer_url=None):
    peer_url = peer_url or m.peer_url
    return [keel_kv(build_dir), "--name", m.name, "--data-dir", str(tmp_path / f"{m.name}.etcd"),
            "--listen-client-urls", m.url, "--advertise-client-urls", m.url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", initial, *extra] + FAST


def leader_of(members, timeout=15.0):
    """The member members[0] names as leader; asked again while it knows none (an election
    after a stop, or a spurious one on a busy machine with the 200 ms election timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        status, _, body = http(members[0], "GET", "/v2/members/leader")
        if status == 200:
            name = json.loads(body)["name"]
            return next(m for m in members if m.name == name)
        assert time.monotonic() < deadline, (status, body)
        time.sleep(0.1)


def members_by_name(m):
    return {x["name"]: x for x in json.loads(http(m, "GET", "/v2/members")[2])["members"]}


def wait_exit(proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while proc.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not proc.alive, f"{proc.name} still running after {timeout}s"
    return proc.exit_code


def put(m, key, value):
    status, headers, body = http(m, "PUT", f"/v2/keys/{key}", f"value={value}")
    assert status in (200, 201), body
    return int(headers["X-Etcd-Index"])


def test_member_add_update_remove_through_a_follower(daemons, build_dir, tmp_path):
    members = start_cluster(daemons, build_dir, tmp_path, n=3)
    leader = leader_of(members)
    follower = next(m for m in members if m is not leader)
    put(follower, "before", "1")

    # etcdctl member add, sent to a follower: it prints what the new member needs.
    client_port, peer_port = free_ports(2)
    new = Member("m4", client_port, peer_port)
    out = etcdctl_reconfig(follower, "member", "add", "m4", new.peer_url).stdout
    added = re.search(r"Added member named m4 with ID (\w+) to cluster", out)
    assert added, out
    new_id = added.group(1)
    initial = re.search(r'ETCD_INITIAL_CLUSTER="([^"]+)"', out).group(1)
    assert 'ETCD_INITIAL_CLUSTER_STATE="existing"' in out
    assert sorted(initial.split(",")) == sorted(f"{m.name}={m.peer_url}" for m in members + [new])

    # The new member joins with --initial-cluster-state existing and catches up.
    argv = member_argv(build_dir, tmp_path, new, initial, "--initial-cluster-state", "existing")
    new.proc = daemons.start("m4-run1", argv, ready_tcp=("127.0.0.1", new.client_port))
    wait_healthy(new)
    status, _, body = http(new, "GET", "/v2/keys/before?quorum=true")
    assert status == 200 and json.loads(body)["node"]["value"] == "1"
    put(new, "from-m4", "x")  # it takes writes too
    listed = members_by_name(follower)
    assert sorted(listed) == ["m1", "m2", "m3", "m4"]
    assert listed["m4"]["id"] == new_id and listed["m4"]["peerURLs"] == [new.peer_url]

    # New peer URLs, sent to a follower while m4 is down; m4 comes back listening only there
    # (with the ids it learned when it joined, kept in its data directory) and the others
    # reach it at the new address: it gets what was written meanwhile.
    new.proc.stop()
    put(follower, "while-down", "2")
    moved = f"http://127.0.0.1:{free_ports(1)[0]}"
    out = etcdctl(follower, "member", "update", new_id, moved).stdout
    assert f"Updated member with ID {new_id} in cluster" in out
    assert members_by_name(leader)["m4"]["peerURLs"] == [moved]
    argv = member_argv(build_dir, tmp_path, new, initial, "--initial-cluster-state", "existing",
                       peer_url=moved)
    new.proc = daemons.start("m4-run2", argv, ready_tcp=("127.0.0.1", new.client_port))
    wait_healthy(new)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, _, body = http(new, "GET", "/v2/keys/while-down")  # a local read: replicated here
        if status == 200:
            break
        time.sleep(0.1)
    assert status == 200 and json.loads(body)["node"]["value"] == "2"
    # etcd's answers to bad updates.
    status, _, body = http_json(follower, "PUT", f"/v2/members/{new_id}", {"peerURLs": [leader.peer_url]})
    assert (status, json.loads(body)) == (409, {"message": "membership: peerURL exists"})
    status, _, body = http_json(follower, "PUT", "/v2/members/123abc", {"peerURLs": ["http://127.0.0.1:1"]})
    assert (status, json.loads(body)) == (404, {"message": "No such member: 123abc"})

    # Removal through a follower: the running member learns it from its peers and exits 0.
    out = etcdctl_reconfig(follower, "member", "remove", new_id).stdout
    assert f"Removed member {new_id} from cluster" in out
    assert wait_exit(new.proc) == 0
    log = new.proc.log_text()
    assert REMOVED_LINE in log and "the data-dir used by this member must be removed" in log
    assert re.search(r'how="member [0-9a-f]+ says so"', log), log
    assert sorted(members_by_name(follower)) == ["m1", "m2", "m3"]
    status, _, body = http(follower, "DELETE", f"/v2/members/{new_id}")
    assert (status, json.loads(body)) == (410, {"message": f"Member permanently removed: {new_id}"})
    put(follower, "after", "3")
    for m in members:
        assert m.proc.alive


def test_removed_leader_applies_its_removal_and_exits(daemons, build_dir, tmp_path):
    """The leader commits its own removal, answers, steps down, applies it and stops."""
    members = start_cluster(daemons, build_dir, tmp_path, n=3)
    leader = leader_of(members)
    follower = next(m for m in members if m is not leader)
    leader_id = members_by_name(follower)[leader.name]["id"]
    put(follower, "k", "v")
    # Sent to the leader itself: it answers before it stops (etcd waits 10 ticks for that).
    status, _, body = retry_reconfig(lambda: http(leader, "DELETE", f"/v2/members/{leader_id}"))
    assert status == 204 and body == ""
    assert wait_exit(leader.proc) == 0
    log = leader.proc.log_text()
    assert REMOVED_LINE in log and 'how="applied its own removal"' in log, log
    rest = [m for m in members if m is not leader]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, _, _ = http(rest[0], "PUT", "/v2/keys/after", "value=new-leader")
        if status in (200, 201):
            break
        time.sleep(0.1)
    assert status in (200, 201)
    assert sorted(members_by_name(rest[1])) == sorted(m.name for m in rest)
    assert leader_of(rest) in rest


def test_member_removed_while_down_is_told_when_it_returns(daemons, build_dir, tmp_path):
    members = start_cluster(daemons, build_dir, tmp_path, n=3)
    # Stop a follower: stopping the leader would lose the next write forwarded to it before
    # the others notice (etcd's answer too: a timeout), which is not what this test is about.
    leader = leader_of(members)
    gone = next(m for m in reversed(members) if m is not leader)
    members.remove(gone)
    members.append(gone)
    gone_id = members_by_name(members[0])[gone.name]["id"]
    gone.proc.stop()
    before = put(members[0], "k", "1")
    status, _, _ = retry_reconfig(lambda: http(members[0], "DELETE", f"/v2/members/{gone_id}"))
    assert status == 204
    # As in etcd, a removal takes two store writes (the member, then /0/removed_members).
    assert put(members[0], "k", "2") == before + 3
    # It comes back with its old data, not knowing: the first peer it talks to tells it.
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    gone.proc = daemons.start("m3-run2", member_argv(build_dir, tmp_path, gone, initial))
    assert wait_exit(gone.proc) == 0
    log = gone.proc.log_text()
    assert REMOVED_LINE in log and re.search(r'how="member [0-9a-f]+ says so"', log), log
    status, _, body = http(members[1], "GET", "/v2/keys/k?quorum=true")
    assert status == 200 and json.loads(body)["node"]["value"] == "2"
    # A follower removing itself through itself: out of the configuration before the entry
    # can reach it, it hears of it from the leader; it answers, then stops.
    leader = leader_of(members[:2])
    quitter = next(m for m in members[:2] if m is not leader)
    quitter_id = members_by_name(leader)[quitter.name]["id"]
    status, _, body = retry_reconfig(lambda: http(quitter, "DELETE", f"/v2/members/{quitter_id}"))
    assert status == 204, body
    assert wait_exit(quitter.proc) == 0
    assert re.search(r'how="member [0-9a-f]+ says so"', quitter.proc.log_text())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, _, _ = http(leader, "PUT", "/v2/keys/alone", "value=1")
        if status in (200, 201):
            break
        time.sleep(0.1)
    assert status in (200, 201)


def test_member_change_without_a_quorum_gets_etcds_error(daemons, build_dir, tmp_path):
    """No quorum: the change cannot commit (or no leader takes it); etcd answers 500
    {"message":"Internal Server Error"}, at the latest after its request timeout."""
    members = start_cluster(daemons, build_dir, tmp_path, n=3)
    leader = leader_of(members)
    for m in members:
        if m is not leader:
            m.proc.stop()
    started = time.monotonic()
    status, headers, body = http_json(leader, "POST", "/v2/members", {"peerURLs": ["http://127.0.0.1:9"]})
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    assert headers["Content-Type"] == "application/json" and "X-Etcd-Cluster-ID" in headers
    assert time.monotonic() - started < 10  # 5 s + two election timeouts at most
