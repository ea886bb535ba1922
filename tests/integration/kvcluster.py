"""A 3-member keel-kv cluster for fault tests, on loopback or on TestHosts, plus a recorded
client workload (writes, compare-and-swaps, quorum reads) for the linearizability checker.

Used by test_kv_linearizability.py and test_kv_flood.py.  Everything runs through the
`daemons` fixture, so every member is stopped by PID when the test ends, pass or fail.
"""

import http.client
import json
import random
import re
import signal
import threading
import time
import urllib.parse

from keelharness import enter_netns, free_ports
from keelharness.linearizability import MISSING, History

# etcd's flags, same meaning: quick elections keep the fault tests short.
FAST = ["--heartbeat-interval", "20", "--election-timeout", "200"]
CLIENT, PEER = 2379, 2380  # ports inside test hosts (each host has its own addresses)


def keel_kv_binary(build_dir):
    path = build_dir / "cmd" / "keel-kv" / "keel-kv"
    if not path.exists():
        raise AssertionError(f"{path} is not built (run `make`)")
    return str(path)


class Member:
    """One member: its URLs, data directory, and the Daemon of its current run."""

    def __init__(self, name, addr, client_port, peer_port, data_dir, host=None):
        self.name = name
        self.addr = addr
        self.client_port = client_port
        self.url = f"http://{addr}:{client_port}"
        self.peer_url = f"http://{addr}:{peer_port}"
        self.data_dir = data_dir
        self.host = host  # a TestHosts Host, or None on loopback
        self.daemon = None
        self.runs = 0

    @property
    def netns(self):
        return self.host.name if self.host else None

    def __repr__(self):
        return f"<Member {self.name} {self.url}>"


class Cluster:
    def __init__(self, daemons, build_dir, tmp_path, hosts=None, n=3, extra=(), wrap=()):
        """Members on `hosts` (TestHosts) or, without, on loopback with free ports.

        `extra`: more keel-kv flags; `wrap`: a command prefix (e.g. prlimit) - it must exec
        keel-kv so that the daemon's PID stays keel-kv's own."""
        self.daemons = daemons
        self.binary = keel_kv_binary(build_dir)
        self.extra = list(extra)
        self.wrap = list(wrap)
        if hosts is not None:
            self.members = [Member(f"m{h.index}", h.addr, CLIENT, PEER, tmp_path / f"m{h.index}", h)
                            for h in list(hosts)[:n]]
        else:
            ports = free_ports(2 * n)
            self.members = [Member(f"m{i + 1}", "127.0.0.1", ports[2 * i], ports[2 * i + 1],
                                   tmp_path / f"m{i + 1}") for i in range(n)]
        self.initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    # -- processes ---------------------------------------------------------------------------

    def start(self, m, timeout=30.0):
        m.runs += 1
        argv = self.wrap + [
            self.binary, "--name", m.name, "--data-dir", str(m.data_dir),
            "--listen-client-urls", m.url, "--advertise-client-urls", m.url,
            "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", self.initial] + FAST + self.extra
        m.daemon = self.daemons.start(f"{m.name}-run{m.runs}", argv, netns=m.netns,
                                      ready_tcp=(m.addr, m.client_port), timeout=timeout)
        return m

    def start_all(self):
        for m in self.members:
            self.start(m)
        self.wait_settled()

    def kill(self, m, sig=signal.SIGKILL):
        """Signal the member's process (by PID), wait for it to end and reap it."""
        m.daemon.kill(sig)
        return self.reap(m)

    def reap(self, m, timeout=20.0):
        """Wait for a signalled member to exit, then reap it (Daemon.stop escalates only
        after `timeout`: a second SIGTERM would cut keel-kv's clean shutdown short)."""
        deadline = time.monotonic() + timeout
        while m.daemon.exit_code is None and time.monotonic() < deadline:
            time.sleep(0.02)
        code = m.daemon.stop(timeout=5)
        m.daemon = None
        return code

    def alive(self):
        return [m for m in self.members if m.daemon is not None and m.daemon.alive]

    # -- talking to members --------------------------------------------------------------------

    def call(self, m, method, path, data=None, timeout=10.0):
        """(status, headers, parsed JSON or text); status 0 on a connection error."""
        def go():
            return request(m.addr, m.client_port, method, path, data, timeout)
        return m.host.call(go) if m.host else go()

    def leader(self, via=None, timeout=30.0):
        """The member every live member names as leader (waits for agreement)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            names = set()
            for m in (via or self.alive()):
                status, _, body = self.call(m, "GET", "/v2/members/leader", timeout=2)
                names.add(body.get("name") if status == 200 and isinstance(body, dict) else None)
            if len(names) == 1 and None not in names:
                name = names.pop()
                return next(m for m in self.members if m.name == name)
            time.sleep(0.05)
        raise AssertionError(f"no agreed leader among {via or self.alive()} after {timeout}s")

    def new_leader(self, old, via, timeout=30.0):
        """Wait until the members `via` agree on a leader other than `old`."""
        deadline = time.monotonic() + timeout
        while True:
            leader = self.leader(via=via, timeout=max(1.0, deadline - time.monotonic()))
            if leader is not old:
                return leader
            assert time.monotonic() < deadline, f"{via} still follow {old} after {timeout}s"
            time.sleep(0.05)

    def wait_settled(self, timeout=30.0):
        """Every member healthy (a leader, published) and all agree on the leader."""
        deadline = time.monotonic() + timeout
        pending = list(self.members)
        while pending and time.monotonic() < deadline:
            pending = [m for m in pending if self.call(m, "GET", "/health", timeout=2)[0] != 200]
            if pending:
                time.sleep(0.05)
        if pending:
            raise AssertionError(f"{pending} not healthy after {timeout}s")
        return self.leader(timeout=max(1.0, deadline - time.monotonic()))


def request(addr, port, method, path, data=None, timeout=10.0):
    conn = http.client.HTTPConnection(addr, port, timeout=timeout)
    try:
        headers = {}
        body = None
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read().decode(errors="replace")
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed
    except (OSError, http.client.HTTPException) as e:
        return 0, {}, repr(e)
    finally:
        conn.close()


# -- the recorded workload -------------------------------------------------------------------

KEY_PREFIX = "/lin"
CAUSE = re.compile(r"^\[(.*) != (.*)\]$")


class Workload:
    """Client threads, each bound to one member, recording every operation in a History.

    Operations on a few keys under /lin: PUT value (write), PUT prevValue / prevIndex
    (compare-and-swap, with the value or index this client last saw) and GET ?quorum=true.
    Values are unique ("<client>-<seq>"). An answer decides the outcome:
      2xx                        ok
      412 (101) / 404 (100) CAS  ok, the compare failed (the cause names the actual value)
      refused connection         fail (nothing was sent)
      anything else              unknown (a timeout, a reset, 5xx: it may still happen)
    """

    # The committed log is checked through etcd's 1000-event watch history: the clients pace
    # themselves (think time) and stop writing after this many attempts.
    WRITE_BUDGET = 850
    THINK = (0.02, 0.08)

    def __init__(self, cluster, clients_per_member=2, keys=3, seed=1, timeout=10.0, quorum=True):
        self.cluster = cluster
        self._lock = threading.Lock()
        self.writes_sent = 0
        self.history = History()
        self.keys = [f"{KEY_PREFIX}/k{i}" for i in range(keys)]
        self.timeout = timeout
        self.read_query = "?quorum=true" if quorum else ""  # False: local reads, may be stale
        self.stop_event = threading.Event()
        self.index_of = {}        # op id -> modifiedIndex reported to the client
        self.cas_by_index = {}    # failed prevIndex CAS: op id -> the index the cause names
        self.unexpected = []      # answers the workload does not know how to read
        self.errors = []          # exceptions in client threads
        self.threads = []
        rng = random.Random(seed)
        for m in cluster.members:
            for c in range(clients_per_member):
                name = f"{m.name}.c{c}"
                t = threading.Thread(target=self._run, args=(m, name, random.Random(rng.random())),
                                     name=f"client {name}", daemon=True)
                self.threads.append(t)

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(self.timeout + 10)
        stuck = [t.name for t in self.threads if t.is_alive()]
        assert not stuck, f"client threads did not stop: {stuck}"
        assert not self.errors, f"client threads failed: {self.errors}"

    # -- one client ----------------------------------------------------------------------------

    def _run(self, m, name, rng):
        try:
            if m.netns:
                enter_netns(m.netns)
            conn = None
            last = {}  # key -> (value, modifiedIndex) this client saw last
            seq = 0
            while not self.stop_event.is_set():
                key = rng.choice(self.keys)
                r = rng.random()
                seq += 1
                value = f"{name}-{seq}"
                if r >= 0.4 and not self._may_write():
                    r = 0.0
                if r < 0.4:
                    op = self.history.invoke(name, "read", key)
                    req = ("GET", f"/v2/keys{key}{self.read_query}", None)
                elif r < 0.7 or key not in last:
                    op = self.history.invoke(name, "write", key, value=value)
                    req = ("PUT", f"/v2/keys{key}", {"value": value})
                elif r < 0.85:
                    expected = last[key][0]
                    op = self.history.invoke(name, "cas", key, value=value, expected=expected,
                                             note="prevValue")
                    req = ("PUT", f"/v2/keys{key}", {"value": value, "prevValue": expected})
                else:
                    expected, index = last[key]
                    op = self.history.invoke(name, "cas", key, value=value, expected=expected,
                                             note=f"prevIndex={index}")
                    req = ("PUT", f"/v2/keys{key}", {"value": value, "prevIndex": str(index)})
                conn, answer = self._send(m, conn, *req)
                self._record(op, key, answer, last)
                self.stop_event.wait(rng.uniform(*self.THINK))
        except Exception as e:  # reported by stop()
            self.errors.append(f"{name}: {e!r}")

    def _may_write(self):
        with self._lock:
            if self.writes_sent >= self.WRITE_BUDGET:
                return False
            self.writes_sent += 1
            return True

    def _send(self, m, conn, method, path, data):
        """(conn to reuse or None, (kind, status, body)); kind: http | refused | lost."""
        if conn is None:
            conn = http.client.HTTPConnection(m.addr, m.client_port, timeout=self.timeout)
            try:
                conn.connect()
            except ConnectionRefusedError:
                conn.close()
                return None, ("refused", 0, None)
            except OSError as e:
                conn.close()
                return None, ("lost", 0, repr(e))
        try:
            headers = {}
            body = None
            if data is not None:
                body = urllib.parse.urlencode(data).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            return None, ("lost", 0, repr(e))
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        if resp.will_close:
            conn.close()
            conn = None
        return conn, ("http", resp.status, parsed)

    def _record(self, op, key, answer, last):
        kind, status, body = answer
        h = self.history
        code = body.get("errorCode") if isinstance(body, dict) else None
        if kind == "refused":
            h.complete(op, "fail", note=op.note + " refused")
            return
        if kind == "lost" or status >= 500:
            h.complete(op, "unknown", note=f"{op.note} {status} {code or body}".strip())
            return
        if op.kind == "read":
            if status == 200:
                node = body["node"]
                h.complete(op, "ok", value=node["value"])
                last[key] = (node["value"], node["modifiedIndex"])
                self.index_of[op.id] = node["modifiedIndex"]
            elif status == 404 and code == 100:
                h.complete(op, "ok", value=None)
                last.pop(key, None)
            else:
                self.unexpected.append((op.describe(), status, body))
                h.complete(op, "fail")
            return
        if status in (200, 201):
            node = body["node"]
            if node.get("value") != op.value:
                self.unexpected.append((op.describe(), status, body))
            prev = body["prevNode"]["value"] if "prevNode" in body else None
            if op.kind == "write":
                h.complete(op, "ok", prev=prev)
            else:
                if prev != op.expected:
                    self.unexpected.append((op.describe(), status, body))
                h.complete(op, "ok", swapped=True)
            last[key] = (op.value, node["modifiedIndex"])
            self.index_of[op.id] = node["modifiedIndex"]
            return
        if op.kind == "cas" and status == 412 and code == 101:
            m = CAUSE.match(body.get("cause", ""))
            actual = MISSING
            if m and op.note == "prevValue":
                actual = m.group(2)
            elif m and op.note.startswith("prevIndex="):
                # Resolved to a value once the event log is known (resolve_cas_indexes).
                self.cas_by_index[op.id] = int(m.group(2))
            h.complete(op, "ok", swapped=False, prev=actual)
            last.pop(key, None)  # do not retry against a value known to be stale
            return
        if op.kind == "cas" and status == 404 and code == 100:
            h.complete(op, "ok", swapped=False, prev=None)
            last.pop(key, None)
            return
        self.unexpected.append((op.describe(), status, body))
        h.complete(op, "unknown", note=f"{op.note} {status}")


# -- after the faults: the committed event log, and what it must agree with --------------------

def walk_events(cluster, m, first, last, prefix=KEY_PREFIX):
    """Every event under `prefix` with index in [first, last], from m's watch history.

    `last` must be the index of an event under the prefix (the end marker), so every
    long poll has an answer."""
    events = []
    i = first
    while i <= last:
        status, _, body = cluster.call(m, "GET", f"/v2/keys{prefix}?wait=true&recursive=true"
                                       f"&waitIndex={i}", timeout=20)
        if status == 400 and isinstance(body, dict) and body.get("errorCode") == 401:
            raise AssertionError(f"{m.name}: index {i} left the 1000-event watch history "
                                 f"({body}); the workload wrote too much for this check")
        assert status == 200 and isinstance(body, dict), f"{m.name} waitIndex={i}: {status} {body}"
        node = body["node"]
        index = node["modifiedIndex"]
        assert index >= i, f"{m.name}: waitIndex={i} answered with the older event {body}"
        events.append((index, body["action"], node["key"], node.get("value"),
                       body["prevNode"].get("value") if "prevNode" in body else None))
        i = index + 1
    return events


def end_marker(cluster, m, timeout=30.0):
    """PUT /lin/end through m until it is acknowledged; its modifiedIndex."""
    deadline = time.monotonic() + timeout
    while True:
        status, _, body = cluster.call(m, "PUT", f"/v2/keys{KEY_PREFIX}/end", {"value": "end"})
        if status in (200, 201):
            return body["node"]["modifiedIndex"]
        assert time.monotonic() < deadline, f"end marker not written: {status} {body}"
        time.sleep(0.2)


def history_json(ops, index_of):
    def enc(v):
        return "<missing>" if v is MISSING else v
    return json.dumps([{"id": op.id, "process": op.process, "key": op.key, "kind": op.kind,
                        "status": op.status, "call": op.call, "ret": op.ret,
                        "value": enc(op.value), "expected": enc(op.expected),
                        "swapped": op.swapped, "prev": enc(op.prev), "note": op.note,
                        "index": index_of.get(op.id)} for op in ops], indent=1)
