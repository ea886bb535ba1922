"""keel-kv against the real clients: etcdctl (ETCDCTL_API=2) and python-etcd.

Each test starts real keel-kv processes on free loopback ports and talks to them
only the way etcd's own clients do.
"""

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from keelharness import free_ports

# Short timeouts keep elections quick in tests (etcd's flags, same meaning).
FAST = ["--heartbeat-interval", "20", "--election-timeout", "200"]


def keel_kv(build_dir):
    path = build_dir / "cmd" / "keel-kv" / "keel-kv"
    if not path.exists():
        pytest.fail(f"{path} is not built (run `make`)")
    return str(path)


class Member:
    def __init__(self, name, client_port, peer_port):
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        self.url = f"http://127.0.0.1:{client_port}"
        self.peer_url = f"http://127.0.0.1:{peer_port}"
        self.proc = None


def start_cluster(daemons, build_dir, tmp_path, n=1, run=1, members=None):
    if members is None:
        ports = free_ports(2 * n)
        members = [Member(f"m{i + 1}", ports[2 * i], ports[2 * i + 1]) for i in range(n)]
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    for m in members:
        argv = [keel_kv(build_dir), "--name", m.name, "--data-dir", str(tmp_path / f"{m.name}.etcd"),
                "--listen-client-urls", m.url, "--advertise-client-urls", m.url,
                "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
                "--initial-cluster", initial] + FAST
        # Listening first; healthy only once a leader exists, which needs the others running.
        m.proc = daemons.start(f"{m.name}-run{run}", argv, ready_tcp=("127.0.0.1", m.client_port))
    for m in members:
        wait_healthy(m)
    return members


def wait_healthy(m, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{m.url}/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{m.name} not healthy after {timeout}s")


def metric(member, name):
    """One value from the member's /metrics (a float), or None if it is not there."""
    status, _, text = http(member, "GET", "/metrics")
    assert status == 200, text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def wait_watchers(member, n, timeout=30.0):
    """Wait until the member has registered `n` watchers: a client started in another process
    or thread has its watch in place only some time after it was started."""
    deadline = time.monotonic() + timeout
    while (got := metric(member, "etcd_debugging_store_watchers")) != n:
        assert time.monotonic() < deadline, f"{got} watchers on {member.name}, not {n}, after {timeout}s"
        time.sleep(0.02)


def etcdctl(member, *args, check=True):
    env = dict(os.environ, ETCDCTL_API="2")
    proc = subprocess.run(["etcdctl", "--endpoints", member.url, *args], env=env,
                          capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise AssertionError(f"etcdctl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def retry_reconfig(fn, timeout=20.0):
    """A member change, repeated while it gets 500: with --strict-reconfig-check (on by default,
    as in etcd 3.4) a change is refused until this member has been connected to every peer for
    5 s, so right after a start an operator (or a test) has to try again."""
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        failed = result[0] == 500 if isinstance(result, tuple) else result.returncode != 0
        if not failed or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


def etcdctl_reconfig(member, *args):
    proc = retry_reconfig(lambda: etcdctl(member, *args, check=False))
    if proc.returncode != 0:
        raise AssertionError(f"etcdctl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def http(member, method, path, data=None):
    body = data.encode() if isinstance(data, str) else data
    req = urllib.request.Request(member.url + path, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


@pytest.fixture
def single(daemons, build_dir, tmp_path):
    return start_cluster(daemons, build_dir, tmp_path, n=1)[0]


def test_etcdctl_basic_commands(single):
    m = single
    assert etcdctl(m, "set", "/foo", "bar").stdout == "bar\n"
    assert etcdctl(m, "get", "/foo").stdout == "bar\n"
    assert etcdctl(m, "mk", "/new", "v").stdout == "v\n"
    dup = etcdctl(m, "mk", "/new", "again", check=False)
    assert dup.returncode != 0 and "105: Key already exists" in dup.stderr
    etcdctl(m, "mkdir", "/dir")
    etcdctl(m, "set", "/dir/a", "1")
    etcdctl(m, "set", "/dir/b", "2")
    assert etcdctl(m, "ls", "--sort", "--recursive", "/").stdout == "/dir\n/dir/a\n/dir/b\n/foo\n/new\n"
    assert etcdctl(m, "update", "/foo", "baz").stdout == "baz\n"
    missing = etcdctl(m, "update", "/nope", "x", check=False)
    assert "100: Key not found (/nope)" in missing.stderr
    etcdctl(m, "rm", "/new")
    notempty = etcdctl(m, "rmdir", "/dir", check=False)
    assert "108: Directory not empty (/dir)" in notempty.stderr
    etcdctl(m, "rm", "--recursive", "/dir")
    etcdctl(m, "setdir", "/d2")
    etcdctl(m, "updatedir", "/d2", "--ttl", "100")
    etcdctl(m, "rmdir", "/d2")
    assert etcdctl(m, "ls", "/").stdout == "/foo\n"
    assert "healthy" in etcdctl(m, "cluster-health").stdout
    members = etcdctl(m, "member", "list").stdout
    assert "name=m1" in members and f"clientURLs={m.url}" in members and "isLeader=true" in members


def test_index_numbering_matches_etcd(single):
    # A fresh etcd 3.4 store gives the first user write index 4 (1-3 are membership writes).
    status, headers, body = http(single, "PUT", "/v2/keys/first", "value=1")
    assert status == 201
    ev = json.loads(body)
    assert ev == {"action": "set", "node": {"key": "/first", "value": "1", "modifiedIndex": 4,
                                            "createdIndex": 4}}
    assert headers["X-Etcd-Index"] == "4"
    assert int(headers["X-Raft-Term"]) >= 2 and "X-Raft-Index" in headers and "X-Etcd-Cluster-ID" in headers


def test_ttl_expires_and_fires_expire_event(single):
    m = single
    etcdctl(m, "set", "/ttl", "x", "--ttl", "1")
    status, _, body = http(m, "GET", "/v2/keys/ttl?wait=true")
    assert status == 200
    ev = json.loads(body)
    assert ev["action"] == "expire" and ev["node"]["key"] == "/ttl"
    assert ev["prevNode"]["value"] == "x"
    assert "100: Key not found" in etcdctl(m, "get", "/ttl", check=False).stderr


def test_etcdctl_watch_and_after_index(single):
    m = single
    first = json.loads(http(m, "PUT", "/v2/keys/w", "value=one")[2])["node"]["modifiedIndex"]
    http(m, "PUT", "/v2/keys/w", "value=two")
    # --after-index replays from the history.
    out = etcdctl(m, "watch", "--after-index", str(first - 1), "/w").stdout
    assert out == "one\n"
    env = dict(os.environ, ETCDCTL_API="2")
    watcher = subprocess.Popen(["etcdctl", "--endpoints", m.url, "watch", "/w"], env=env,
                               stdout=subprocess.PIPE, text=True)
    try:
        wait_watchers(m, 1)
        http(m, "PUT", "/v2/keys/w", "value=three")
        assert watcher.communicate(timeout=10)[0] == "three\n"
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()


def test_etcdctl_exec_watch(single, tmp_path):
    m = single
    out = tmp_path / "exec.out"
    env = dict(os.environ, ETCDCTL_API="2")
    # etcdctl only keeps "<key> -- <command>" in that order when a flag is given.
    proc = subprocess.Popen(["etcdctl", "--endpoints", m.url, "exec-watch", "--recursive", "/ew", "--",
                             "sh", "-c", f'echo "$ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE" >> {out}'],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_watchers(m, 1)
        http(m, "PUT", "/v2/keys/ew/a", "value=1")
        http(m, "PUT", "/v2/keys/ew/b", "value=2")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 2):
            time.sleep(0.05)
        # etcdctl starts each event's command in a goroutine of its own: the two may finish
        # (and append) in either order.
        assert sorted(out.read_text().splitlines()) == ["set /ew/a 1", "set /ew/b 2"]
    finally:
        proc.kill()
        proc.wait()


def test_python_etcd_client(single):
    etcd = pytest.importorskip("etcd")
    c = etcd.Client(host="127.0.0.1", port=single.client_port, allow_reconnect=False)
    c.write("/py/a", "1")
    assert c.read("/py/a").value == "1"
    c.write("/py/a", "2", prevValue="1")
    with pytest.raises(etcd.EtcdCompareFailed):
        c.write("/py/a", "3", prevValue="1")
    first = c.write("/py/queue", "job1", append=True)
    second = c.write("/py/queue", "job2", append=True)
    assert first.key < second.key and len(first.key.split("/")[-1]) == 20
    items = [r.value for r in c.read("/py/queue", sorted=True).children]
    assert items == ["job1", "job2"]
    result = {}

    def wait():
        result["ev"] = c.watch("/py/a", timeout=10)

    t = threading.Thread(target=wait)
    t.start()
    wait_watchers(single, 1)
    c.write("/py/a", "4")
    t.join(10)
    assert result["ev"].value == "4"
    c.delete("/py/a")
    with pytest.raises(etcd.EtcdKeyNotFound):
        c.read("/py/a")


def test_python_etcd_lock_excludes(single):
    """python-etcd's Lock (in-order keys under /_locks, watches on the predecessor, TTLs):
    four threads take it in turn; no two ever hold it at once, and every one gets it."""
    etcd = pytest.importorskip("etcd")
    holders, overlaps, done = [], [], []
    guard = threading.Lock()

    def worker(n):
        c = etcd.Client(host="127.0.0.1", port=single.client_port, allow_reconnect=False)
        lock = etcd.Lock(c, "job")
        for _ in range(3):
            assert lock.acquire(blocking=True, lock_ttl=30, timeout=20)
            with guard:
                holders.append(n)
                if len(holders) > 1:
                    overlaps.append(list(holders))
            time.sleep(0.02)
            with guard:
                holders.remove(n)
            lock.release()
        done.append(n)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(done) == [0, 1, 2, 3] and not overlaps, (done, overlaps)
    c = etcd.Client(host="127.0.0.1", port=single.client_port, allow_reconnect=False)
    left = c.read("/_locks/job", recursive=True)
    assert not [n for n in left.children if n.key != "/_locks/job"]  # every lock key released


def test_bad_input_gets_etcd_errors(single):
    m = single
    cases = [
        ("PUT", "/v2/keys/x", "value=1&ttl=abc", 400, 202, 'invalid value for "ttl"'),
        ("PUT", "/v2/keys/x", "value=1&prevIndex=z", 400, 203, 'invalid value for "prevIndex"'),
        ("GET", "/v2/keys/x?wait=true&waitIndex=q", None, 400, 203, 'invalid value for "waitIndex"'),
        ("PUT", "/v2/keys/x", "value=1&prevValue=", 400, 201, '"prevValue" cannot be empty'),
        ("PUT", "/v2/keys/x", "value=1&recursive=maybe", 400, 209, 'invalid value for "recursive"'),
        ("PUT", "/v2/keys/x?refresh=true&ttl=5", "value=v", 400, 211, "A value was provided on a refresh"),
        ("PUT", "/v2/keys/x?refresh=true", None, 400, 212, "No TTL value set"),
        ("PUT", "/v2/keys/x", "value=%zz", 400, 210, None),
    ]
    for method, path, data, status, code, cause in cases:
        got_status, _, body = http(m, method, path, data)
        err = json.loads(body)
        assert (got_status, err["errorCode"]) == (status, code), (method, path, data, body)
        if cause is not None:
            assert err["cause"] == cause
    status, headers, _ = http(m, "PATCH", "/v2/keys/x", "value=1")
    assert status == 405 and headers["Allow"] == "HEAD,GET,PUT,POST,DELETE"
    big = "value=" + "x" * (2 * 1024 * 1024)
    assert http(m, "PUT", "/v2/keys/big", big)[0] == 413
    assert m.proc.alive


def test_three_members_survive_leader_kill(daemons, build_dir, tmp_path):
    members = start_cluster(daemons, build_dir, tmp_path, n=3)
    listed = etcdctl(members[0], "member", "list").stdout
    assert listed.count("name=") == 3
    acked = {}
    for i in range(30):
        m = members[i % 3]  # followers forward writes to the leader
        status, _, body = http(m, "PUT", f"/v2/keys/k{i}", f"value=v{i}")
        assert status in (200, 201), body
        acked[f"/k{i}"] = f"v{i}"
    leader_id = json.loads(http(members[0], "GET", "/v2/members/leader")[2])["name"]
    leader = next(m for m in members if m.name == leader_id)
    # /v2/stats/leader: the leader reports both followers; a follower refuses like etcd.
    time.sleep(0.2)
    status, _, body = http(leader, "GET", "/v2/stats/leader")
    stats = json.loads(body)
    assert status == 200 and len(stats["followers"]) == 2, body
    for f in stats["followers"].values():
        assert f["counts"]["success"] > 0 and f["counts"]["fail"] >= 0
        assert 0 < f["latency"]["current"] < 1 and f["latency"]["maximum"] >= f["latency"]["minimum"]
    follower = next(m for m in members if m is not leader)
    assert http(follower, "GET", "/v2/stats/leader")[0] == 403
    leader.proc.kill(signal.SIGKILL)
    others = [m for m in members if m is not leader]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, _, body = http(others[0], "PUT", "/v2/keys/after", "value=kill")
        if status in (200, 201):
            break
        time.sleep(0.1)
    else:
        pytest.fail("no write accepted after the leader was killed")
    for key, value in acked.items():
        status, _, body = http(others[1], "GET", f"/v2/keys{key}?quorum=true")
        assert status == 200 and json.loads(body)["node"]["value"] == value
    # The killed member comes back and catches up.
    leader.proc.stop()
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    argv = [keel_kv(build_dir), "--name", leader.name, "--data-dir", str(tmp_path / f"{leader.name}.etcd"),
            "--listen-client-urls", leader.url, "--advertise-client-urls", leader.url,
            "--listen-peer-urls", leader.peer_url, "--initial-advertise-peer-urls", leader.peer_url,
            "--initial-cluster", initial] + FAST
    daemons.start(f"{leader.name}-run2", argv, ready_tcp=("127.0.0.1", leader.client_port))
    wait_healthy(leader)
    status, _, body = http(leader, "GET", "/v2/keys/after?quorum=true")
    assert status == 200 and json.loads(body)["node"]["value"] == "kill"


def test_member_add_and_remove(daemons, build_dir, tmp_path):
    members = start_cluster(daemons, build_dir, tmp_path, n=3)
    leader_name = json.loads(http(members[0], "GET", "/v2/members/leader")[2])["name"]
    leader = next(m for m in members if m.name == leader_name)
    http(leader, "PUT", "/v2/keys/before", "value=1")
    client_port, peer_port = free_ports(2)
    new = Member("m4", client_port, peer_port)
    status, _, body = retry_reconfig(lambda: http_json(leader, "POST", "/v2/members", {"peerURLs": [new.peer_url]}))
    assert status == 201, body
    added = json.loads(body)
    assert added["peerURLs"] == [new.peer_url] and added["name"] == "" and added["id"]
    # etcd's --strict-reconfig-check runs before the duplicate check: with m4 added but not
    # started, another add is refused with 500 (as etcd 3.4 answers it).
    dup = http_json(leader, "POST", "/v2/members", {"peerURLs": [new.peer_url]})
    assert (dup[0], json.loads(dup[2])) == (500, {"message": "Internal Server Error"})
    assert http_json(leader, "POST", "/v2/members", {"peerURLs": ["ftp://x"]})[0] == 400
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members + [new])
    argv = [keel_kv(build_dir), "--name", new.name, "--data-dir", str(tmp_path / "m4.etcd"),
            "--listen-client-urls", new.url, "--advertise-client-urls", new.url,
            "--listen-peer-urls", new.peer_url, "--initial-advertise-peer-urls", new.peer_url,
            "--initial-cluster", initial, "--initial-cluster-state", "existing"] + FAST
    new.proc = daemons.start("m4-run1", argv, ready_tcp=("127.0.0.1", new.client_port))
    wait_healthy(new)
    status, _, body = http(new, "GET", "/v2/keys/before?quorum=true")
    assert status == 200 and json.loads(body)["node"]["value"] == "1"
    listed = json.loads(http(leader, "GET", "/v2/members")[2])["members"]
    assert sorted(m["name"] for m in listed) == ["m1", "m2", "m3", "m4"]
    assert http(leader, "DELETE", "/v2/members/ffffffffffff")[0] == 404
    status, _, _ = retry_reconfig(lambda: http(leader, "DELETE", f"/v2/members/{added['id']}"))
    assert status == 204
    listed = json.loads(http(leader, "GET", "/v2/members")[2])["members"]
    assert sorted(m["name"] for m in listed) == ["m1", "m2", "m3"]
    # The remaining three go on; the removed member learns it from its peers and exits
    # (test_kv_members.py has the details).
    deadline = time.monotonic() + 30
    while new.proc.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    assert new.proc.exit_code == 0
    status, _, _ = http(leader, "PUT", "/v2/keys/after", "value=2")
    assert status in (200, 201)
    assert json.loads(http(leader, "GET", "/v2/members/leader")[2])["name"] == leader_name


def http_json(member, method, path, obj):
    req = urllib.request.Request(member.url + path, data=json.dumps(obj).encode(), method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def test_data_dir_of_another_member_is_refused(daemons, build_dir, tmp_path):
    m = start_cluster(daemons, build_dir, tmp_path, n=1)[0]
    m.proc.stop()
    other_peer = free_ports(1)[0]
    url = f"http://127.0.0.1:{other_peer}"
    proc = subprocess.run([keel_kv(build_dir), "--name", m.name, "--data-dir", str(tmp_path / f"{m.name}.etcd"),
                           "--listen-client-urls", m.url, "--listen-peer-urls", url,
                           "--initial-cluster", f"{m.name}={url}"] + FAST,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "holds the data of another member" in proc.stderr


def test_idle_watch_ends_with_empty_200_and_metrics(daemons, build_dir, tmp_path):
    client_port, peer_port = free_ports(2)
    m = Member("w1", client_port, peer_port)
    argv = [keel_kv(build_dir), "--name", m.name, "--data-dir", str(tmp_path / "w1"),
            "--listen-client-urls", m.url, "--advertise-client-urls", m.url,
            "--listen-peer-urls", m.peer_url, "--initial-cluster", f"{m.name}={m.peer_url}",
            "--watch-timeout", "1s"] + FAST
    m.proc = daemons.start("w1", argv, ready_tcp=("127.0.0.1", client_port))
    wait_healthy(m)
    started = time.monotonic()
    status, headers, body = http(m, "GET", "/v2/keys/idle?wait=true")
    waited = time.monotonic() - started
    # etcd ends an idle watch with 200 and nothing in the body; clients watch again. (After
    # the 1 s asked for, and long before the 5 min default: room for ASan on a busy machine.)
    assert status == 200 and body == "" and 0.8 < waited < 30, (status, body, waited)
    assert headers["X-Etcd-Index"]
    status, _, text = http(m, "GET", "/metrics")
    assert status == 200
    values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert values["etcd_server_has_leader"] == "1" and values["etcd_server_is_leader"] == "1"
    assert int(values["etcd_server_leader_changes_seen_total"]) >= 1
    assert int(values["etcd_server_proposals_applied_total"]) >= 3
    assert int(values["process_resident_memory_bytes"]) > 1 << 20
    assert "# TYPE etcd_disk_wal_fsync_total counter" in text


def test_thousands_of_watchers_and_clients_that_vanish(single):
    """2000 long polls at once; half the clients vanish before the event; the rest all get it,
    and the server is left with no watchers and keeps serving."""
    import resource
    import selectors
    import socket as sk
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    m = single
    n = 2000
    socks = []
    try:
        for _ in range(n):
            s = sk.create_connection(("127.0.0.1", m.client_port), timeout=10)
            s.sendall(b"GET /v2/keys/crowd?wait=true HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        # Every watch is registered once its headers came back (etcd flushes them at once).
        for s in socks:
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        for s in socks[: n // 2]:
            s.close()
        wait_watchers(m, n // 2)
        status, _, _ = http(m, "PUT", "/v2/keys/crowd", "value=everyone")
        assert status == 201
        sel = selectors.DefaultSelector()
        remaining = socks[n // 2:]
        for s in remaining:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, bytearray())
        done = 0
        deadline = time.monotonic() + 20
        while done < len(remaining) and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                chunk = key.fileobj.recv(65536)
                key.data.extend(chunk)
                if b'"value":"everyone"' in key.data or not chunk:
                    sel.unregister(key.fileobj)
                    done += b'"value":"everyone"' in key.data
        assert done == len(remaining), f"only {done} of {len(remaining)} watchers got the event"
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    wait_watchers(m, 0)
    assert http(m, "PUT", "/v2/keys/after", "value=1")[0] == 201
