"""keel-kv across test hosts (network namespaces): a partition isolates the leader."""

import json
import time
import urllib.error
import urllib.request

import pytest

from test_kv_etcdctl import FAST, keel_kv

pytestmark = pytest.mark.netns

CLIENT, PEER = 2379, 2380


def http(url, method="GET", data=None, timeout=10):
    body = data.encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def test_isolated_leader_steps_aside_and_rejoins_with_nothing_lost(daemons, test_hosts, build_dir, tmp_path):
    hosts = test_hosts(3)
    names = {h.index: f"m{h.index}" for h in hosts}
    initial = ",".join(f"m{h.index}=http://{h.addr}:{PEER}" for h in hosts)
    for h in hosts:
        url = f"http://{h.addr}:{CLIENT}"
        daemons.start(f"m{h.index}", [
            keel_kv(build_dir), "--name", names[h.index], "--data-dir", str(tmp_path / f"m{h.index}"),
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", f"http://{h.addr}:{PEER}",
            "--initial-advertise-peer-urls", f"http://{h.addr}:{PEER}",
            "--initial-cluster", initial] + FAST,
            netns=h.name, ready_tcp=(h.addr, CLIENT))

    def call(h, path, method="GET", data=None, timeout=10):
        return h.call(lambda: http(f"http://{h.addr}:{CLIENT}{path}", method, data, timeout))

    def leader_name(h):
        status, body = call(h, "/v2/members/leader", timeout=10)
        return json.loads(body)["name"] if status == 200 else None

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(call(h, "/health", timeout=10)[0] == 200 for h in hosts):
        time.sleep(0.1)
    while (name := leader_name(hosts[0])) is None:
        assert time.monotonic() < deadline, "no leader"
        time.sleep(0.1)
    old = next(h for h in hosts if names[h.index] == name)
    for i in range(10):
        assert call(old, f"/v2/keys/k{i}", "PUT", f"value=v{i}")[0] in (200, 201)

    hosts.isolate(old)
    rest = [h for h in hosts if h is not old]
    deadline = time.monotonic() + 30
    new = None
    while time.monotonic() < deadline and new is None:
        name = leader_name(rest[0])
        if name and name != names[old.index]:
            new = next(h for h in rest if names[h.index] == name)
        time.sleep(0.05)
    assert new is not None, "the majority side elected no leader"
    assert call(new, "/v2/keys/after", "PUT", "value=partition")[0] in (200, 201)

    # The cut-off member can neither write nor serve a linearizable read.
    status, body = call(old, "/v2/keys/k0?quorum=true", timeout=10)
    assert status == 500 and json.loads(body)["errorCode"] == 300, body
    status, body = call(old, "/v2/keys/lost", "PUT", "value=x", timeout=10)
    assert status == 500 and json.loads(body)["errorCode"] == 300, body

    hosts.heal_all()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, body = call(old, "/v2/keys/after")
        if status == 200:
            break
        time.sleep(0.1)
    assert status == 200 and json.loads(body)["node"]["value"] == "partition"
    for h in hosts:
        for i in range(10):
            status, body = call(h, f"/v2/keys/k{i}?quorum=true")
            assert status == 200 and json.loads(body)["node"]["value"] == f"v{i}"
        assert call(h, "/v2/keys/lost")[0] == 404


def test_isolated_follower_serves_soon_after_a_long_partition_heals(daemons, test_hosts, build_dir, tmp_path):
    """15 s cut off: its peer connections saw data go unacknowledged. After the heal it must
    serve a quorum read within a few seconds (peer connections with unacknowledged data are
    given up after an I/O timeout and redialled), not wait out TCP's retransmission backoff."""
    hosts = test_hosts(3)
    names = {h.index: f"m{h.index}" for h in hosts}
    initial = ",".join(f"m{h.index}=http://{h.addr}:{PEER}" for h in hosts)
    for h in hosts:
        url = f"http://{h.addr}:{CLIENT}"
        daemons.start(f"m{h.index}", [
            keel_kv(build_dir), "--name", names[h.index], "--data-dir", str(tmp_path / f"m{h.index}"),
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", f"http://{h.addr}:{PEER}",
            "--initial-advertise-peer-urls", f"http://{h.addr}:{PEER}",
            "--initial-cluster", initial] + FAST,
            netns=h.name, ready_tcp=(h.addr, CLIENT))

    def call(h, path, method="GET", data=None, timeout=10):
        return h.call(lambda: http(f"http://{h.addr}:{CLIENT}{path}", method, data, timeout))

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all(call(h, "/health", timeout=2)[0] == 200 for h in hosts):
        time.sleep(0.1)
    deadline = time.monotonic() + 15
    while (status := (answer := call(hosts[0], "/v2/members/leader", timeout=2))[0]) != 200:
        assert time.monotonic() < deadline, answer  # no leader known for 15 s
        time.sleep(0.1)
    leader = json.loads(answer[1])["name"]
    follower = next(h for h in hosts if names[h.index] != leader)
    deadline = time.monotonic() + 15  # (writing the same value again is harmless)
    while (answer := call(follower, "/v2/keys/k", "PUT", "value=1"))[0] not in (200, 201):
        assert time.monotonic() < deadline, answer
        time.sleep(0.1)

    hosts.isolate(follower)
    rest = [h for h in hosts if h is not follower]
    end = time.monotonic() + 15
    while time.monotonic() < end:  # the others keep writing: the leader sends it appends
        call(rest[0], "/v2/keys/k", "PUT", "value=2", timeout=2)
        time.sleep(0.5)
    hosts.heal_all()
    healed = time.monotonic()
    status, body = 0, ""
    while time.monotonic() - healed < 30:
        status, body = call(follower, "/v2/keys/k?quorum=true", timeout=2)
        if status == 200:
            break
        time.sleep(0.1)
    took = time.monotonic() - healed
    print(f"isolated follower served a quorum read {took:.1f} s after the heal")
    assert status == 200 and json.loads(body)["node"]["value"] == "2", body
    # Generous: one election timeout (0.2 s here) plus redialling, on a busy machine under ASan.
    assert took < 8, f"took {took:.1f} s after the heal"
