"""A member that joins an existing cluster learns its id and the cluster id from its peers (as
etcd's does), so every member reports one X-Etcd-Cluster-ID, before and after restarts; added
members get time-based ids (etcd's NewMember), so a member removed and added again on the same
peer URL joins under a new id."""

import json
import re
import shutil
import time

from keelharness import free_ports
from test_kv_etcdctl import Member, etcdctl_reconfig, http, http_json, retry_reconfig, start_cluster, wait_healthy
from test_kv_members import member_argv, wait_exit


def view(m):
    """(cluster id, members sorted by id) as m reports them."""
    status, headers, body = http(m, "GET", "/v2/members")
    assert status == 200, body
    return headers["X-Etcd-Cluster-ID"], sorted(json.loads(body)["members"], key=lambda x: x["id"])


def wait_same_view(members, names, timeout=15.0):
    """Every member reports the same cluster id and the same member list, naming `names`."""
    deadline = time.monotonic() + timeout
    while True:
        views = [view(m) for m in members]
        if all(v == views[0] for v in views) and sorted(x["name"] for x in views[0][1]) == sorted(names):
            return views[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"members disagree: {views}")
        time.sleep(0.1)


def quorum_get(m, key):
    status, _, body = http(m, "GET", f"/v2/keys/{key}?quorum=true")
    assert status == 200, body
    return json.loads(body)["node"]["value"]


def test_joined_member_reports_the_clusters_id_and_rejoins_on_the_same_url(daemons, build_dir, tmp_path):
    members = start_cluster(daemons, build_dir, tmp_path, n=3)
    cluster_id, _ = wait_same_view(members, ["m1", "m2", "m3"])
    http(members[0], "PUT", "/v2/keys/before", "value=1")

    client_port, peer_port = free_ports(2)
    new = Member("m4", client_port, peer_port)
    out = etcdctl_reconfig(members[1], "member", "add", "m4", new.peer_url).stdout
    first_id = re.search(r"Added member named m4 with ID (\w+) to cluster", out).group(1)
    initial = re.search(r'ETCD_INITIAL_CLUSTER="([^"]+)"', out).group(1)
    argv = member_argv(build_dir, tmp_path, new, initial, "--initial-cluster-state", "existing")
    new.proc = daemons.start("m4-run1", argv, ready_tcp=("127.0.0.1", new.client_port))
    wait_healthy(new)
    assert quorum_get(new, "before") == "1"
    everyone = members + [new]
    cid, listed = wait_same_view(everyone, ["m1", "m2", "m3", "m4"])
    assert cid == cluster_id  # the new member reports the cluster's id, not one of its own
    assert next(x for x in listed if x["name"] == "m4")["id"] == first_id
    for key in ("before",):
        status, headers, _ = http(new, "GET", f"/v2/keys/{key}")
        assert status == 200 and headers["X-Etcd-Cluster-ID"] == cluster_id

    # Restarted, it keeps the ids it learned (no peer needs to answer for that).
    new.proc.stop()
    new.proc = daemons.start("m4-run2", argv, ready_tcp=("127.0.0.1", new.client_port))
    wait_healthy(new)
    assert wait_same_view(everyone, ["m1", "m2", "m3", "m4"]) == (cid, listed)

    # Removed, its data wiped, added again on the same peer URL: a new id (etcd hashes the
    # time into it), and it joins and serves.
    out = etcdctl_reconfig(members[0], "member", "remove", first_id).stdout
    assert f"Removed member {first_id} from cluster" in out
    assert wait_exit(new.proc) == 0
    shutil.rmtree(tmp_path / "m4.etcd")
    time.sleep(1.1)  # the id hashes the time in seconds: etcd refuses a re-add within the same second too
    status, _, body = retry_reconfig(lambda: http_json(members[0], "POST", "/v2/members", {"peerURLs": [new.peer_url]}))
    assert status == 201, body
    second_id = json.loads(body)["id"]
    assert second_id != first_id
    new.proc = daemons.start("m4-run3", argv, ready_tcp=("127.0.0.1", new.client_port))
    wait_healthy(new)
    assert quorum_get(new, "before") == "1"
    status, _, body = http(new, "PUT", "/v2/keys/from-m4", "value=2")
    assert status in (200, 201), body
    assert quorum_get(members[2], "from-m4") == "2"
    cid, listed = wait_same_view(everyone, ["m1", "m2", "m3", "m4"])
    assert cid == cluster_id
    assert next(x for x in listed if x["name"] == "m4")["id"] == second_id
    # The old id stays removed.
    status, _, body = http(members[0], "DELETE", f"/v2/members/{first_id}")
    assert (status, json.loads(body)) == (410, {"message": f"Member permanently removed: {first_id}"})
