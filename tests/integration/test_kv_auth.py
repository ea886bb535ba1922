"""keel-kv's v2 auth API through the real clients: etcdctl (ETCDCTL_API=2) user / role / auth
commands and python-etcd with credentials; key access as a permitted user, a forbidden one and
the guest; auth state replicated to three members and kept over restarts and snapshots;
password checks that run off the event loop; bad input answered, never a crash.

The byte-for-byte comparison with etcd 3.4 is in test_kv_vs_etcd.py."""

import base64
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from keelharness import free_ports
from test_kv_etcdctl import FAST, Member, keel_kv, start_cluster, wait_healthy


@pytest.fixture
def single(daemons, build_dir, tmp_path):
    return start_cluster(daemons, build_dir, tmp_path, n=1)[0]


def ctl(member, *args, user=None, stdin=None, check=True):
    env = dict(os.environ, ETCDCTL_API="2")
    argv = ["etcdctl", "--endpoints", member.url]
    if user:
        argv += ["--username", user]
    proc = subprocess.run(argv + list(args), env=env, input=stdin if stdin is not None else "",
                          capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise AssertionError(f"etcdctl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def req(member, method, path, body=None, auth=None, ctype="application/json"):
    data = body.encode() if isinstance(body, str) else body
    r = urllib.request.Request(member.url + path, data=data, method=method)
    if data is not None:
        r.add_header("Content-Type", ctype)
    if auth is not None:
        r.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(r, timeout=20) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


NO_AUTH = (401, '{"errorCode":110,"message":"The request requires user authentication",'
                '"cause":"Insufficient credentials","index":0}\n')


def test_etcdctl_users_roles_and_key_access(single):
    m = single
    # Auth needs a root user first.
    r = ctl(m, "auth", "enable", check=False)
    assert r.returncode != 0 and "No root user available, please create one" in r.stderr
    assert ctl(m, "user", "add", "root:rootpw").stdout == "User root created\n"
    assert ctl(m, "user", "add", "alice:apw").stdout == "User alice created\n"
    assert ctl(m, "user", "add", "bob:bpw").stdout == "User bob created\n"
    assert ctl(m, "user", "list").stdout == "alice\nbob\nroot\n"
    assert ctl(m, "role", "add", "app").stdout == "Role app created\n"
    ctl(m, "role", "grant", "app", "--path", "/app/*", "--readwrite")
    ctl(m, "role", "grant", "app", "--path", "/config", "--read")
    assert ctl(m, "role", "get", "app").stdout == "Role: app\nKV Read:\n\t/app/*\n\t/config\nKV Write:\n\t/app/*\n"
    assert ctl(m, "role", "list").stdout == "app\nroot\n"
    assert ctl(m, "user", "grant", "alice", "--roles", "app").stdout == "User alice updated\n"
    assert ctl(m, "user", "get", "alice").stdout == "User: alice\nRoles:  app\n"
    assert ctl(m, "user", "get", "root").stdout == "User: root\nRoles:  root\n"
    ctl(m, "set", "/config", "c1")
    assert ctl(m, "auth", "enable").stdout == "Authentication Enabled\n"
    # The guest role etcd makes on enable can read and write everything: take that away.
    assert ctl(m, "role", "list", user="root:rootpw").stdout == "app\nguest\nroot\n"
    ctl(m, "role", "revoke", "guest", "--path", "/*", "--readwrite", user="root:rootpw")
    ctl(m, "role", "grant", "guest", "--path", "/public/*", "--read", user="root:rootpw")
    # Managing users needs root now.
    r = ctl(m, "user", "list", check=False)
    assert r.returncode != 0 and "Insufficient credentials" in r.stderr
    r = ctl(m, "user", "list", user="alice:apw", check=False)
    assert r.returncode != 0 and "Insufficient credentials" in r.stderr
    # alice: read and write under /app, read /config, nothing else.
    assert ctl(m, "set", "/app/x", "1", user="alice:apw").stdout == "1\n"
    assert ctl(m, "get", "/app/x", user="alice:apw").stdout == "1\n"
    assert ctl(m, "get", "/config", user="alice:apw").stdout == "c1\n"
    # "/app/*" covers keys under /app/, not /app itself: a recursive GET needs the slash (etcd).
    assert req(m, "GET", "/v2/keys/app/?recursive=true", auth="alice:apw")[0] == 200
    denied = "Error:  110: The request requires user authentication (Insufficient credentials) [0]\n"
    for args in (["set", "/config", "2"], ["get", "/other"], ["ls", "/"], ["rm", "--recursive", "/config"],
                 ["ls", "--recursive", "/app"]):
        r = ctl(m, *args, user="alice:apw", check=False)
        assert (r.returncode, r.stderr) == (4, denied), args
    # A wrong password, an unknown user, bob without roles: denied alike.
    for who in ("alice:nope", "mallory:x", "bob:bpw"):
        r = ctl(m, "get", "/app/x", user=who, check=False)
        assert (r.returncode, r.stderr) == (4, denied), who
    # The guest: /public only, read only.
    ctl(m, "set", "/public/motd", "hi", user="root:rootpw")
    assert ctl(m, "get", "/public/motd").stdout == "hi\n"
    r = ctl(m, "set", "/public/motd", "x", check=False)
    assert (r.returncode, r.stderr) == (4, denied)
    assert req(m, "GET", "/v2/keys/app/x")[::2] == NO_AUTH
    # root can do anything.
    assert ctl(m, "get", "/app/x", user="root:rootpw").stdout == "1\n"
    # A new password: the old one stops working at once (the check cache is keyed by the hash).
    assert ctl(m, "user", "passwd", "alice", user="root:rootpw", stdin="apw2\n").stdout.endswith(
        "Password updated\n")
    r = ctl(m, "get", "/app/x", user="alice:apw", check=False)
    assert (r.returncode, r.stderr) == (4, denied)
    assert ctl(m, "get", "/app/x", user="alice:apw2").stdout == "1\n"
    # Revoking the role takes the access away.
    assert ctl(m, "user", "revoke", "alice", "--roles", "app", user="root:rootpw").stdout == "User alice updated\n"
    r = ctl(m, "user", "revoke", "alice", "--roles", "app", user="root:rootpw", check=False)
    assert r.returncode != 0 and "auth: Revoking ungranted role app for user alice" in r.stderr
    r = ctl(m, "get", "/app/x", user="alice:apw2", check=False)
    assert (r.returncode, r.stderr) == (4, denied)
    # Removing things, and the rules about root.
    r = ctl(m, "user", "remove", "root", user="root:rootpw", check=False)
    assert r.returncode != 0 and "auth: Cannot delete root user while auth is enabled." in r.stderr
    r = ctl(m, "role", "remove", "root", user="root:rootpw", check=False)
    assert r.returncode != 0 and "auth: Cannot modify role root: is root role." in r.stderr
    assert ctl(m, "user", "remove", "bob", user="root:rootpw").stdout == "User bob removed\n"
    r = ctl(m, "user", "remove", "bob", user="root:rootpw", check=False)
    assert r.returncode != 0 and "auth: User bob does not exist" in r.stderr
    assert ctl(m, "role", "remove", "app", user="root:rootpw").stdout == "Role app removed\n"
    r = ctl(m, "role", "remove", "app", user="root:rootpw", check=False)
    assert r.returncode != 0 and "auth: Role app doesn't exist." in r.stderr
    # Members changes need root too (reads do not).
    assert req(m, "GET", "/v2/members")[0] == 200
    assert req(m, "POST", "/v2/members", '{"peerURLs":["http://127.0.0.1:1"]}')[::2] == (
        401, '{"message":"Insufficient credentials"}')
    r = ctl(m, "auth", "disable", check=False)
    assert r.returncode != 0
    assert ctl(m, "auth", "disable", user="root:rootpw").stdout == "Authentication Disabled\n"
    assert ctl(m, "get", "/app/x").stdout == "1\n"
    r = ctl(m, "auth", "disable", check=False)
    assert r.returncode != 0 and "auth: already disabled" in r.stderr
    assert m.proc.alive


def test_python_etcd_with_username_and_password(single):
    etcd = pytest.importorskip("etcd")
    import etcd.auth
    admin = etcd.Client(host="127.0.0.1", port=single.client_port, allow_reconnect=False)
    root = etcd.auth.EtcdUser(admin, "root")
    root.password = "rootpw"
    root.write()
    role = etcd.auth.EtcdRole(admin, "py")
    role.grant("/py/*", "RW")
    role.write()
    user = etcd.auth.EtcdUser(admin, "pyuser")
    user.password = "pypw"
    user.roles = {"py"}
    user.write()
    assert sorted(u["user"] for u in etcd.auth.EtcdUser(admin, "x").names) == ["pyuser", "root"]
    got = etcd.auth.EtcdRole(admin, "py")
    got.read()
    assert got.acls == {"/py/*": "RW"}
    auth = etcd.auth.Auth(admin)
    assert auth.active is False
    auth.active = True
    assert auth.active is True
    req(single, "PUT", "/v2/auth/roles/guest", '{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}',
        auth="root:rootpw")
    c = etcd.Client(host="127.0.0.1", port=single.client_port, username="pyuser", password="pypw",
                    allow_reconnect=False)
    c.write("/py/a", "1")
    assert c.read("/py/a").value == "1"
    with pytest.raises(etcd.EtcdInsufficientPermissions):
        c.write("/elsewhere", "x")
    with pytest.raises(etcd.EtcdInsufficientPermissions):
        admin.read("/py/a")
    wrong = etcd.Client(host="127.0.0.1", port=single.client_port, username="pyuser", password="no",
                        allow_reconnect=False)
    with pytest.raises(etcd.EtcdInsufficientPermissions):
        wrong.read("/py/a")


def start_members(daemons, build_dir, tmp_path, members, run, extra=()):
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    for m in members:
        argv = [keel_kv(build_dir), "--name", m.name, "--data-dir", str(tmp_path / f"{m.name}.etcd"),
                "--listen-client-urls", m.url, "--advertise-client-urls", m.url,
                "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
                "--initial-cluster", initial] + FAST + list(extra)
        m.proc = daemons.start(f"{m.name}-run{run}", argv, ready_tcp=("127.0.0.1", m.client_port))
    for m in members:
        wait_healthy(m, timeout=30)


def until(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_auth_state_replicates_and_survives_restart(daemons, build_dir, tmp_path):
    ports = free_ports(6)
    members = [Member(f"a{i + 1}", ports[2 * i], ports[2 * i + 1]) for i in range(3)]
    # A low snapshot count: the auth tree must come back from snapshots as well as the WAL.
    start_members(daemons, build_dir, tmp_path, members, 1, ["--snapshot-count", "8"])
    m1, m2, m3 = members
    ctl(m1, "user", "add", "root:rootpw")
    ctl(m2, "role", "add", "web")
    ctl(m3, "role", "grant", "web", "--path", "/web/*", "--readwrite")
    ctl(m1, "user", "add", "www:wpw")
    ctl(m2, "user", "grant", "www", "--roles", "web")
    ctl(m3, "auth", "enable")
    ctl(m1, "role", "revoke", "guest", "--path", "/*", "--readwrite", user="root:rootpw")
    for i in range(12):  # past a couple of snapshots
        ctl(members[i % 3], "set", f"/web/k{i}", str(i), user="www:wpw")
    for m in members:
        assert until(lambda: req(m, "GET", "/v2/auth/enable")[2] == '{"enabled":true}\n'), m.name
        assert until(lambda: req(m, "GET", "/v2/keys/web/k11", auth="www:wpw")[0] == 200), m.name
        assert req(m, "GET", "/v2/keys/web/k11")[::2] == NO_AUTH
        assert req(m, "GET", "/v2/keys/web/k11", auth="www:bad")[::2] == NO_AUTH
    indexes = {req(m, "GET", "/v2/keys/web/k11?quorum=true", auth="www:wpw")[1]["X-Etcd-Index"] for m in members}
    assert len(indexes) == 1
    for m in members:
        m.proc.stop()
    start_members(daemons, build_dir, tmp_path, members, 2, ["--snapshot-count", "8"])
    for m in members:
        assert req(m, "GET", "/v2/auth/enable")[2] == '{"enabled":true}\n'
        status, _, body = req(m, "GET", "/v2/keys/web/k3", auth="www:wpw")
        assert status == 200 and json.loads(body)["node"]["value"] == "3"
        assert req(m, "GET", "/v2/keys/web/k3")[::2] == NO_AUTH
        assert ctl(m, "user", "list", user="root:rootpw").stdout == "root\nwww\n"
    assert {req(m, "GET", "/v2/keys/web/k11", auth="www:wpw")[1]["X-Etcd-Index"] for m in members} == indexes
    ctl(m2, "auth", "disable", user="root:rootpw")
    for m in members:
        assert until(lambda: req(m, "GET", "/v2/keys/web/k3")[0] == 200), m.name


def test_password_checks_run_off_the_loop(single):
    """Many clients with credentials not checked yet, one that leaves during its check, and a
    stop while checks are queued: everyone gets an answer, nothing crashes or leaks."""
    m = single
    ctl(m, "user", "add", "root:rootpw")
    for i in range(6):
        ctl(m, "user", "add", f"u{i}:p{i}")
    ctl(m, "role", "add", "all")
    ctl(m, "role", "grant", "all", "--path", "/*", "--readwrite")
    for i in range(6):
        ctl(m, "user", "grant", f"u{i}", "--roles", "all")
    ctl(m, "auth", "enable")
    ctl(m, "set", "/k", "v", user="root:rootpw")
    results = []
    lock = threading.Lock()

    def one(i):
        who = f"u{i % 6}:p{i % 6}" if i % 4 else f"u{i % 6}:wrong"
        status = req(m, "GET", "/v2/keys/k", auth=who)[0]
        with lock:
            results.append((i, status))

    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    # Meanwhile the loop serves requests that need no check at once.
    assert req(m, "GET", "/v2/auth/enable")[0] == 200
    assert req(m, "GET", "/version")[0] == 200
    for t in threads:
        t.join(60)
    assert sorted(results) == [(i, 401 if i % 4 == 0 else 200) for i in range(24)]
    assert time.monotonic() - started < 60
    # A client that leaves while its check runs.
    s = socket.create_connection(("127.0.0.1", m.client_port), timeout=5)
    cred = base64.b64encode(b"u1:another").decode()
    s.sendall(f"GET /v2/keys/k HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {cred}\r\n\r\n".encode())
    s.close()
    assert req(m, "GET", "/v2/keys/k", auth="u1:p1")[0] == 200
    # Stop with checks queued and running: a clean exit (0; under ASan, no leak reports).
    socks = []
    for i in range(8):
        s = socket.create_connection(("127.0.0.1", m.client_port), timeout=5)
        cred = base64.b64encode(f"u{i % 6}:late{i}".encode()).decode()
        s.sendall(f"GET /v2/keys/k HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {cred}\r\n\r\n".encode())
        socks.append(s)
    time.sleep(0.05)
    assert m.proc.stop() == 0
    for s in socks:
        s.close()


def test_bad_input_gets_etcds_answers(single):
    m = single
    cases = [
        ("PUT", "/v2/auth/users/x", "", 400, '{"message":"Invalid JSON in request body."}'),
        ("PUT", "/v2/auth/users/x", "{\"user\":", 400, '{"message":"Invalid JSON in request body."}'),
        ("PUT", "/v2/auth/users/x", "[1,2]", 400, '{"message":"Invalid JSON in request body."}'),
        ("PUT", "/v2/auth/users/x", '{"user":7}', 400, '{"message":"Invalid JSON in request body."}'),
        ("PUT", "/v2/auth/users/x", '{"user":"y"}', 400,
         '{"message":"User JSON name does not match the name in the URL"}'),
        ("PUT", "/v2/auth/users/x", '{"user":"x","roles":["a"]}', 400,
         '{"message":"auth: Cannot create user x with an empty password"}'),
        ("PUT", "/v2/auth/users/x", '{"user":"x","roles":["a"],"grant":["b"]}', 400,
         '{"message":"User JSON contains both roles and grant/revoke"}'),
        ("PUT", "/v2/auth/users/x", '{"user":"x","grant":["b"]}', 404,
         '{"message":"auth: User x does not exist."}'),
        ("GET", "/v2/auth/users/x", None, 404, '{"message":"auth: User x does not exist."}'),
        ("DELETE", "/v2/auth/users/x", None, 404, '{"message":"auth: User x does not exist"}'),
        ("PUT", "/v2/auth/roles/r", '{"role":"r","permissions":[]}', 400,
         '{"message":"Invalid JSON in request body."}'),
        ("PUT", "/v2/auth/roles/r", '{"role":"r","grant":{"kv":{"read":["/a"]}},"permissions":{"kv":{"read":["/b"]}}}',
         400, '{"message":"Role JSON contains both permissions and grant/revoke"}'),
        ("PUT", "/v2/auth/roles/root", '{"role":"root"}', 403, '{"message":"auth: Cannot modify role root: is root role."}'),
        ("GET", "/v2/auth/roles/r", None, 404, '{"message":"auth: Role r does not exist."}'),
        ("GET", "/v2/auth/users/a/b", None, 400, '{"message":"Invalid path"}'),
        ("PUT", "/v2/auth/enable", None, 409, '{"message":"auth: No root user available, please create one"}'),
        ("DELETE", "/v2/auth/enable", None, 409, '{"message":"auth: already disabled"}'),
        ("GET", "/v2/auth/nothing", None, 404, "404 page not found\n"),
        ("POST", "/v2/auth/users", None, 405, "Method Not Allowed\n"),
    ]
    for method, path, body, status, want in cases:
        got = req(m, method, path, body)
        assert got[::2] == (status, want), (method, path, body, got)
    assert req(m, "POST", "/v2/auth/users/x")[1]["Allow"] == "GET,PUT,DELETE"
    # Invalid UTF-8 in a name is decoded the way Go does (U+FFFD), not refused.
    status, _, body = req(m, "PUT", "/v2/auth/roles/%EF%BF%BD", b'{"role":"\xff"}')
    assert status == 201 and json.loads(body)["role"] == "\ufffd"
    # Garbage Authorization headers are just bad credentials once auth is on.
    ctl(m, "user", "add", "root:rootpw")
    ctl(m, "auth", "enable")
    for header in ("Basic", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(), "Bearer x",
                   "Basic " + base64.b64encode(b"root:rootpw").decode()[:-2]):
        r = urllib.request.Request(m.url + "/v2/auth/users", headers={"Authorization": header})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(r, timeout=10)
        assert e.value.code == 401, header
    # "basic" in any case, as Go accepts.
    r = urllib.request.Request(m.url + "/v2/auth/users",
                               headers={"Authorization": "bAsIc " + base64.b64encode(b"root:rootpw").decode()})
    assert urllib.request.urlopen(r, timeout=10).status == 200
    # The store's hidden trees stay out of reach of the keys API: Go's ServeMux redirects.
    s = socket.create_connection(("127.0.0.1", m.client_port), timeout=5)
    s.sendall(b"GET /v2/keys/../2/users/root HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 301 Moved Permanently\r\n")
    s.close()
    assert m.proc.alive
