"""The same requests to etcd 3.4 (the reference, from Debian's etcd-server, v2 API on) and to
keel-kv: status codes, bodies and the X-Etcd-Index header must be the same, once the few values
that depend on the wall clock (expiration, ttl) are normalised."""

import base64
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

from keelharness import free_ports
from test_kv_etcdctl import Member, keel_kv, wait_healthy

# (method, path and query, form body or None)
SEQUENCE = [
    ("PUT", "/v2/keys/message", "value=Hello world"),
    ("GET", "/v2/keys/message", None),
    ("PUT", "/v2/keys/message", "value=Hello etcd"),
    ("GET", "/v2/keys/missing", None),
    ("GET", "/v2/keys/message/sub", None),
    ("PUT", "/v2/keys/dir", "dir=true"),
    ("PUT", "/v2/keys/dir/a", "value=1"),
    ("PUT", "/v2/keys/dir/b", "value=2"),
    ("PUT", "/v2/keys/dir/_hidden", "value=h"),
    ("GET", "/v2/keys/dir?recursive=true&sorted=true", None),
    ("GET", "/v2/keys/dir/_hidden", None),
    ("DELETE", "/v2/keys/dir?dir=true", None),
    ("DELETE", "/v2/keys/dir/a", None),
    ("POST", "/v2/keys/queue", "value=job1"),
    ("POST", "/v2/keys/queue", "value=job2"),
    ("GET", "/v2/keys/queue?recursive=true&sorted=true", None),
    ("PUT", "/v2/keys/message?prevValue=wrong", "value=x"),
    ("PUT", "/v2/keys/message?prevValue=Hello etcd", "value=swapped"),
    ("PUT", "/v2/keys/message?prevIndex=1", "value=y"),
    ("PUT", "/v2/keys/message?prevExist=false", "value=z"),
    ("PUT", "/v2/keys/nope?prevExist=true", "value=z"),
    ("PUT", "/v2/keys/newkey?prevExist=false", "value=created"),
    ("PUT", "/v2/keys/newkey?prevExist=true", "value=updated"),
    ("DELETE", "/v2/keys/newkey?prevValue=other", None),
    ("DELETE", "/v2/keys/newkey?prevValue=updated", None),
    ("PUT", "/v2/keys/ttlkey", "value=t&ttl=100"),
    ("PUT", "/v2/keys/ttlkey?refresh=true&prevExist=true", "ttl=200"),
    ("PUT", "/v2/keys/ttlkey?prevExist=true", "value=t2&ttl="),
    ("PUT", "/v2/keys/quiet?noValueOnSuccess=true", "value=q"),
    ("PUT", "/v2/keys/message", "value=1&ttl=abc"),
    ("PUT", "/v2/keys/message", "value=1&prevIndex=abc"),
    ("PUT", "/v2/keys/message?prevValue=", "value=1"),
    ("PUT", "/v2/keys/message?refresh=true&ttl=5", "value=v"),
    ("PUT", "/v2/keys/", "value=root"),
    ("DELETE", "/v2/keys/?recursive=true", None),
    ("PUT", "/v2/keys/dir2?dir=true", None),
    ("PUT", "/v2/keys/dir2", "value=onadir"),
    ("DELETE", "/v2/keys/dir2", None),
    ("DELETE", "/v2/keys/dir2?recursive=true", None),
    ("GET", "/v2/keys/message?wait=true&waitIndex=4", None),
    ("GET", "/v2/keys/?wait=true&waitIndex=1&recursive=true", None),
    ("PUT", "/v2/keys/utf8", "value=%E2%82%AC%3C%26%3E"),
    ("GET", "/v2/keys/utf8", None),
    ("PUT", "/v2/keys/bad%FFkey", "value=%FF%FEx%C3"),   # invalid UTF-8: Go writes U+FFFD
    ("GET", "/v2/keys/bad%FFkey", None),
    ("PUT", "/v2/keys/dots/../escaped", "value=1"),      # Go's ServeMux: 301 to the clean path
    ("GET", "/v2/keys/dots/../utf8", None),              # ... which a GET follows
    ("PUT", "/v2/keys//double", "value=1"),
    ("PATCH", "/v2/keys/utf8", "value=1"),                # 405
    ("PUT", "/v2/keys/message?ttl=-1", "value=1"),
    ("PUT", "/v2/keys/message?prevIndex=-3", "value=1"),
    ("GET", "/v2/keys/message?waitIndex=abc&wait=true", None),
    ("GET", "/v2/keys/?recursive=true&sorted=true", None),
]


def request(url, method, path, body):
    data = body.encode() if body is not None else None
    req = urllib.request.Request(url + path.replace(" ", "%20"), data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers.get("X-Etcd-Index"), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("X-Etcd-Index"), e.read().decode()


def normalise(text):
    """Wall-clock dependent fields: expiration timestamps and the ttl left."""
    try:
        doc = json.loads(text)
    except ValueError:
        return text

    def walk(n):
        if isinstance(n, dict):
            return {k: ("<time>" if k == "expiration" else "<ttl>" if k == "ttl" else walk(v))
                    for k, v in n.items()}
        if isinstance(n, list):
            return [walk(x) for x in n]
        return n

    return walk(doc)


def start_pair(daemons, build_dir, tmp_path):
    """etcd 3.4 and keel-kv, one member each, both healthy."""
    ports = free_ports(4)
    etcd = Member("etcd", ports[0], ports[1])
    keel = Member("keel", ports[2], ports[3])
    daemons.start("etcd", [
        "etcd", "--name", "s1", "--data-dir", str(tmp_path / "etcd"),
        "--listen-client-urls", etcd.url, "--advertise-client-urls", etcd.url,
        "--listen-peer-urls", etcd.peer_url, "--initial-advertise-peer-urls", etcd.peer_url,
        "--initial-cluster", f"s1={etcd.peer_url}", "--enable-v2=true",
        "--heartbeat-interval", "20", "--election-timeout", "200"],
        ready_tcp=("127.0.0.1", etcd.client_port))
    daemons.start("keel-kv", [
        keel_kv(build_dir), "--name", "s1", "--data-dir", str(tmp_path / "keel"),
        "--listen-client-urls", keel.url, "--advertise-client-urls", keel.url,
        "--listen-peer-urls", keel.peer_url, "--initial-advertise-peer-urls", keel.peer_url,
        "--initial-cluster", f"s1={keel.peer_url}",
        "--heartbeat-interval", "20", "--election-timeout", "200"],
        ready_tcp=("127.0.0.1", keel.client_port))
    wait_healthy(etcd, timeout=30)
    wait_healthy(keel)
    return etcd, keel


@pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd (Debian etcd-server) is not installed")
def test_same_requests_same_answers_as_etcd(daemons, build_dir, tmp_path):
    etcd, keel = start_pair(daemons, build_dir, tmp_path)
    differences = []
    for method, path, body in SEQUENCE:
        want = request(etcd.url, method, path, body)
        got = request(keel.url, method, path, body)
        if (want[0], want[1], normalise(want[2])) != (got[0], got[1], normalise(got[2])):
            differences.append(f"{method} {path} {body or ''}\n  etcd:    {want}\n  keel-kv: {got}")
    assert not differences, "\n".join(differences)


# The v2 auth API and the checks it adds: (method, path, JSON or form body or None, user:password
# or None). Indexes, statuses and bodies must be the same; so must the store counters etcd's auth
# code moves (its own GETs of /2/enabled, users and roles count as gets).
AUTH_SEQUENCE = [
    ("GET", "/v2/auth/enable", None, None),
    ("GET", "/v2/auth/users", None, None),
    ("GET", "/v2/auth/roles", None, None),
    ("PUT", "/v2/auth/enable", None, None),
    ("PUT", "/v2/auth/users/bob", '{"user":"bob","password":"pw"}', None),
    ("GET", "/v2/auth/users", None, None),
    ("GET", "/v2/auth/users/bob", None, None),
    ("PUT", "/v2/auth/users/bob", '{"user":"bob"}', None),
    ("PUT", "/v2/auth/users/bob", '{"user":"bob"}', None),
    ("PUT", "/v2/auth/users/root", '{"user":"root","password":"rootpw"}', None),
    ("PUT", "/v2/keys/foo/a", "value=1", None),
    ("PUT", "/v2/auth/roles/r1", '{"role":"r1","permissions":{"kv":{"read":["/foo/*"],"write":["/foo/a"]}}}', None),
    ("PUT", "/v2/auth/users/bob", '{"user":"bob","grant":["r1"]}', None),
    ("GET", "/v2/auth/users", None, None),
    ("PUT", "/v2/auth/enable", None, None),
    ("GET", "/v2/auth/enable", None, None),
    ("PUT", "/v2/auth/enable", None, "root:rootpw"),
    ("GET", "/v2/auth/roles", None, None),
    ("GET", "/v2/auth/roles", None, "root:rootpw"),
    ("GET", "/v2/auth/roles", None, "root:bad"),
    ("GET", "/v2/auth/roles", None, "bob:pw"),
    ("GET", "/v2/keys/foo/a", None, None),
    ("GET", "/v2/keys/foo/a", None, "bob:pw"),
    ("GET", "/v2/keys/foo/a", None, "bob:bad"),
    ("GET", "/v2/keys/foo/a", None, "nobody:pw"),
    ("GET", "/v2/keys/foo?recursive=true", None, "bob:pw"),
    ("GET", "/v2/keys/foo/?recursive=true", None, "bob:pw"),
    ("GET", "/v2/keys/other", None, "bob:pw"),
    ("PUT", "/v2/keys/foo/a", "value=2", "bob:pw"),
    ("PUT", "/v2/keys/foo/b", "value=2", "bob:pw"),
    ("DELETE", "/v2/keys/foo/a", None, "bob:pw"),
    ("GET", "/v2/keys/foo/a?wait=true&waitIndex=1", None, "bob:pw"),
    ("PUT", "/v2/keys/foo/x?ttl=abc", "value=1", "bob:bad"),
    ("DELETE", "/v2/auth/roles/guest", None, "root:rootpw"),
    ("GET", "/v2/keys/foo/a", None, None),
    ("PUT", "/v2/auth/roles/guest", '{"role":"guest","permissions":{"kv":{"read":["/pub/*"]}}}', "root:rootpw"),
    ("PUT", "/v2/keys/pub/x", "value=1", "root:rootpw"),
    ("GET", "/v2/keys/pub/x", None, None),
    ("GET", "/v2/keys/pub?recursive=true", None, None),
    ("GET", "/v2/keys/pub/?recursive=true", None, None),
    ("PUT", "/v2/keys/pub/x", "value=2", None),
    ("GET", "/v2/keys", None, None),
    ("GET", "/v2/keys/", None, None),
    ("POST", "/v2/members", '{"peerURLs":["http://127.0.0.1:1"]}', None),
    ("DELETE", "/v2/members/1234", None, "bob:pw"),
    ("GET", "/v2/auth/users/bob", None, "root:rootpw"),
    ("PUT", "/v2/auth/users/bob", '{"user":"bob","password":"pw2"}', "root:rootpw"),
    ("GET", "/v2/keys/foo/a", None, "bob:pw"),
    ("GET", "/v2/keys/foo/a", None, "bob:pw2"),
    ("PUT", "/v2/auth/users/bob", '{"user":"bob","revoke":["r1"]}', "root:rootpw"),
    ("GET", "/v2/keys/foo/a", None, "bob:pw2"),
    ("DELETE", "/v2/auth/users/root", None, "root:rootpw"),
    ("PUT", "/v2/auth/users/root", '{"user":"root","revoke":["root"]}', "root:rootpw"),
    ("GET", "/v2/auth/users/root", None, "root:rootpw"),
    ("DELETE", "/v2/auth/enable", None, "bob:pw2"),
    ("DELETE", "/v2/auth/enable", None, "root:rootpw"),
    ("DELETE", "/v2/auth/enable", None, "root:rootpw"),
    # Decoding as Go does, etcd's merges and its messages.
    ("PUT", "/v2/auth/users/pct", '{"user":"pct","password":"p","roles":["a%d"]}', None),
    ("PUT", "/v2/auth/users/pct", '{"user":"pct","grant":["a%d"]}', None),
    ("PUT", "/v2/auth/users/pct", '{"user":"pct","revoke":["b%s% x%[2]*.*d%-5.3v%"]}', None),
    ("PUT", "/v2/auth/users/Pct", '{"USER":"Pct","pa\u017f\u017fword":"p"}', None),
    ("GET", "/v2/auth/users/Pct", None, None),
    ("PUT", "/v2/auth/users/x", '{"user":"x","password":"p"} garbage', None),
    ("PUT", "/v2/auth/users/y", "null", None),
    ("PUT", "/v2/auth/users/y", "", None),
    ("PUT", "/v2/auth/users/y", "[]", None),
    ("PUT", "/v2/auth/users/y", '{"user":5}', None),
    ("PUT", "/v2/auth/users/y", '{"user":"y","roles":[1]}', None),
    ("PUT", "/v2/auth/users/y", '{"user":"y","extra":{"deep":[1,{}]},"password":"p","roles":[null,"z"]}', None),
    ("PUT", "/v2/auth/users/y", '{"user":"y","revoke":["", "z"]}', None),
    ("GET", "/v2/auth/users/y", None, None),
    ("PUT", "/v2/auth/users/y", '{"user":"y","roles":["a"],"grant":["b"]}', None),
    ("PUT", "/v2/auth/users/y", '{"user":"y","roles":["a"]}', None),
    ("PUT", "/v2/auth/users/y", '{"user":"y","grant":["q","r","q"]}', None),
    ("PUT", "/v2/auth/users/y", '{"user":"y","grant":["q","r"],"revoke":["r","r"]}', None),
    ("PUT", "/v2/auth/users/y", '{"user":"y","grant":["q","r"],"revoke":["r"]}', None),
    ("PUT", "/v2/auth/users/nobody", '{"user":"nobody","grant":["q"]}', None),
    ("PUT", "/v2/auth/users/e", '{"user":"e"}', None),
    ("PUT", "/v2/auth/users/e", '{"user":"e","roles":["x"]}', None),
    ("PUT", "/v2/auth/users/b%3C%3E", '{"user":"b<>","password":"p","roles":["\u2028"]}', None),
    ("GET", "/v2/auth/users/b%3C%3E", None, None),
    ("PUT", "/v2/auth/roles/r2", '{"role":"r2","grant":{"kv":{"read":[]}}}', None),
    ("GET", "/v2/auth/roles/r2", None, None),
    ("PUT", "/v2/auth/roles/r2", '{"role":"r2","revoke":{"kv":{"read":["/nope"]}}}', None),
    ("PUT", "/v2/auth/roles/r2", '{"role":"r2","revoke":{"kv":{"read":["/nope"]}}}', None),
    ("PUT", "/v2/auth/roles/r3", '{"role":"r3","permissions":{"kv":{"read":["/a","/a"]}}}', None),
    ("PUT", "/v2/auth/roles/r3", '{"role":"r3","grant":{"kv":{"write":["/w"]}}}', None),
    ("PUT", "/v2/auth/roles/r3", '{"role":"r3","grant":{"kv":{"write":["/w"]}}}', None),
    ("PUT", "/v2/auth/roles/r3", '{"role":"r3","grant":{"kv":{"read":["/x","/x"]}}}', None),
    ("PUT", "/v2/auth/roles/r3", '{"role":"r3","grant":{"kv":{"read":["/y"]}},"permissions":{"kv":{"read":["/z"]}}}',
     None),
    ("PUT", "/v2/auth/roles/r3", '{"role":"r3","grant":{"kv":{"read":["/y"]}},"revoke":{"kv":{"read":["/y","/a"]}}}',
     None),
    ("PUT", "/v2/auth/roles/r3", '{"role":"r3"}', None),
    ("PUT", "/v2/auth/roles/r4", '{"role":"r4","grant":null,"revoke":{"kv":null}}', None),
    ("PUT", "/v2/auth/roles/nobody", '{"role":"nobody","grant":{"kv":{"read":["/y"]}}}', None),
    ("PUT", "/v2/auth/roles/r5", '{"role":"r5x"}', None),
    ("PUT", "/v2/auth/roles/r5", '{"role":"r5","permissions":"x"}', None),
    ("PUT", "/v2/auth/roles/root", '{"role":"root"}', None),
    ("PUT", "/v2/auth/roles/root", '{"role":"root","grant":{"kv":{"read":["/y"]}}}', None),
    ("GET", "/v2/auth/roles/root", None, None),
    ("GET", "/v2/auth/roles", None, None),
    ("GET", "/v2/auth/users", None, None),
    ("DELETE", "/v2/auth/roles/root", None, None),
    ("DELETE", "/v2/auth/users/nobody", None, None),
    ("DELETE", "/v2/auth/roles/nobody", None, None),
    ("DELETE", "/v2/auth/roles/r4", None, None),
    ("DELETE", "/v2/auth/users/pct", None, None),
    ("GET", "/v2/auth/roles/nobody", None, None),
    ("GET", "/v2/auth/users/nobody", None, None),
    ("POST", "/v2/auth/users/nobody", None, None),
    ("POST", "/v2/auth/users", None, None),
    ("POST", "/v2/auth/users/", None, None),
    ("GET", "/v2/auth/users/", None, None),
    ("GET", "/v2/auth/roles/", None, None),
    ("GET", "/v2/auth/users/a/b", None, None),
    ("GET", "/v2/auth/enable/x", None, None),
    ("GET", "/v2/auth", None, None),
    ("POST", "/v2/auth/enable", None, None),
    ("PUT", "/v2/keys/after", "value=1", None),
]


def auth_request(url, method, path, body, user):
    data = body.encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method)
    if data is not None:
        kind = "application/json" if path.startswith(("/v2/auth", "/v2/members")) else \
            "application/x-www-form-urlencoded"
        req.add_header("Content-Type", kind)
    if user:
        req.add_header("Authorization", "Basic " + base64.b64encode(user.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, resp.headers.get("X-Etcd-Index"), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("X-Etcd-Index"), e.read().decode()


def store_stats(url):
    with urllib.request.urlopen(url + "/v2/stats/store", timeout=10) as resp:
        return json.loads(resp.read())


def ctl(url, args, user=None, stdin=""):
    env = dict(os.environ, ETCDCTL_API="2")
    argv = ["etcdctl", "--endpoints", url] + (["--username", user] if user else []) + args
    p = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


# etcdctl's user, role and auth commands, and key commands as permitted and forbidden users.
ETCDCTL_SEQUENCE = [
    (["auth", "enable"], None), (["user", "add", "root:rootpw"], None), (["user", "add", "ann:apw"], None),
    (["user", "add", "ben:bpw"], None), (["user", "list"], None), (["role", "add", "r1"], None),
    (["role", "add", "r1"], None),
    (["role", "grant", "r1", "--path", "/app/*", "--readwrite"], None),
    (["role", "grant", "r1", "--path", "/ro", "--read"], None),
    (["role", "grant", "r1", "--path", "/ro", "--read"], None),
    (["role", "get", "r1"], None), (["role", "list"], None), (["role", "get", "nope"], None),
    (["user", "grant", "ann", "--roles", "r1"], None), (["user", "grant", "ann", "--roles", "r1"], None),
    (["user", "get", "ann"], None), (["user", "get", "root"], None), (["user", "get", "nope"], None),
    (["set", "/ro", "v"], None), (["auth", "enable"], None), (["auth", "enable"], None),
    (["role", "revoke", "guest", "--path", "/*", "--readwrite"], "root:rootpw"),
    (["role", "get", "guest"], "root:rootpw"),
    (["set", "/app/x", "1"], None), (["set", "/app/x", "1"], "ann:apw"), (["get", "/app/x"], "ann:apw"),
    (["get", "/ro"], "ann:apw"), (["set", "/ro", "2"], "ann:apw"), (["ls", "/"], "ann:apw"),
    (["get", "/app/x"], "ann:bad"), (["get", "/app/x"], "ben:bpw"), (["get", "/app/x"], "nobody:x"),
    (["user", "list"], "ann:apw"), (["user", "list"], "root:rootpw"),
    (["user", "revoke", "ann", "--roles", "r1"], "root:rootpw"),
    (["user", "revoke", "ann", "--roles", "r1"], "root:rootpw"),
    (["get", "/app/x"], "ann:apw"), (["user", "remove", "ben"], "root:rootpw"),
    (["user", "remove", "ben"], "root:rootpw"), (["role", "remove", "r1"], "root:rootpw"),
    (["role", "remove", "r1"], "root:rootpw"), (["user", "remove", "root"], "root:rootpw"),
    (["auth", "disable"], "ann:apw"), (["auth", "disable"], "root:rootpw"), (["auth", "disable"], None),
    (["get", "/app/x"], None),
]


@pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd (Debian etcd-server) is not installed")
def test_auth_api_same_answers_as_etcd(daemons, build_dir, tmp_path):
    etcd, keel = start_pair(daemons, build_dir, tmp_path)
    differences = []
    # The members' own startup differs; what auth moves must not.
    before = (store_stats(etcd.url), store_stats(keel.url))
    for method, path, body, user in AUTH_SEQUENCE:
        want = auth_request(etcd.url, method, path, body, user)
        got = auth_request(keel.url, method, path, body, user)
        if want != got:
            differences.append(f"{method} {path} {body or ''} ({user})\n  etcd:    {want}\n  keel-kv: {got}")
    after = (store_stats(etcd.url), store_stats(keel.url))
    moved = [{k: a[k] - b[k] for k in a if k != "watchers"} for a, b in zip(after, before)]
    if moved[0] != moved[1]:
        differences.append(f"store counters moved differently:\n  etcd:    {moved[0]}\n  keel-kv: {moved[1]}")
    for args, user in ETCDCTL_SEQUENCE:
        want, got = ctl(etcd.url, args, user), ctl(keel.url, args, user)
        if want != got:
            differences.append(f"etcdctl {' '.join(args)} ({user})\n  etcd:    {want}\n  keel-kv: {got}")
    # A password changed through etcdctl's prompt.
    for url in (etcd.url, keel.url):
        ctl(url, ["user", "add", "root:rootpw"])
        ctl(url, ["user", "add", "cat:c1"])
    want = ctl(etcd.url, ["user", "passwd", "cat"], stdin="c2\n")
    got = ctl(keel.url, ["user", "passwd", "cat"], stdin="c2\n")
    if want != got:
        differences.append(f"etcdctl user passwd\n  etcd:    {want}\n  keel-kv: {got}")
    assert not differences, "\n".join(differences)
