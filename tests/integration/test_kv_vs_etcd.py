"""The same requests to etcd 3.4 (the reference, from Debian's etcd-server, v2 API on) and to
keel-kv: status codes, bodies and the X-Etcd-Index header must be the same, once the few values
that depend on the wall clock (expiration, ttl) are normalised."""

import json
import shutil
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


@pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd (Debian etcd-server) is not installed")
def test_same_requests_same_answers_as_etcd(daemons, build_dir, tmp_path):
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
    differences = []
    for method, path, body in SEQUENCE:
        want = request(etcd.url, method, path, body)
        got = request(keel.url, method, path, body)
        if (want[0], want[1], normalise(want[2])) != (got[0], got[1], normalise(got[2])):
            differences.append(f"{method} {path} {body or ''}\n  etcd:    {want}\n  keel-kv: {got}")
    assert not differences, "\n".join(differences)
