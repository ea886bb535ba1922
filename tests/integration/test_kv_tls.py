"""keel-kv with TLS for clients (and client-certificate authentication) and for peers."""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from keelharness import free_ports
from test_kv_etcdctl import FAST, keel_kv


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path):
    """A CA, a server/peer certificate for 127.0.0.1 and a client certificate, plus a second
    CA whose client certificate must be refused."""
    d = tmp_path / "pki"
    d.mkdir()
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN={ca}", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
    for name, ca in (("server", "ca"), ("client", "ca"), ("stranger", "other-ca")):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return d


def etcdctl(url, pki, *args, cert=None):
    env = dict(os.environ, ETCDCTL_API="2")
    cmd = ["etcdctl", "--endpoints", url, "--ca-file", str(pki / "ca.pem")]
    if cert:
        cmd += ["--cert-file", str(pki / f"{cert}.pem"), "--key-file", str(pki / f"{cert}.key")]
    return subprocess.run(cmd + list(args), env=env, capture_output=True, text=True, timeout=20)


def test_client_tls_with_client_cert_auth_and_peer_tls(daemons, build_dir, tmp_path, pki):
    client_port, peer_port = free_ports(2)
    url = f"https://127.0.0.1:{client_port}"
    peer = f"https://127.0.0.1:{peer_port}"
    daemons.start("keel-kv", [
        keel_kv(build_dir), "--name", "s1", "--data-dir", str(tmp_path / "s1"),
        "--listen-client-urls", url, "--advertise-client-urls", url,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"s1={peer}",
        "--cert-file", str(pki / "server.pem"), "--key-file", str(pki / "server.key"),
        "--client-cert-auth", "--trusted-ca-file", str(pki / "ca.pem"),
        "--peer-cert-file", str(pki / "server.pem"), "--peer-key-file", str(pki / "server.key"),
        "--peer-client-cert-auth", "--peer-trusted-ca-file", str(pki / "ca.pem"),
        "--heartbeat-interval", "20", "--election-timeout", "200"],
        ready_tcp=("127.0.0.1", client_port))
    ok = None
    for _ in range(100):
        ok = etcdctl(url, pki, "set", "/secure", "yes", cert="client")
        if ok.returncode == 0:
            break
    assert ok.returncode == 0, ok.stderr
    assert etcdctl(url, pki, "get", "/secure", cert="client").stdout == "yes\n"
    # No client certificate, or one from another CA: refused at the handshake.
    assert etcdctl(url, pki, "get", "/secure").returncode != 0
    assert etcdctl(url, pki, "get", "/secure", cert="stranger").returncode != 0


def test_three_members_with_peer_tls_refuse_a_peer_from_another_ca(daemons, build_dir, tmp_path, pki):
    """Peer TLS with client-certificate authentication: three members elect and replicate; a
    member whose certificate another CA signed is refused both ways and stays alone until it
    comes back with the cluster's certificate."""
    ports = free_ports(6)
    names = ["p1", "p2", "p3"]
    client = {n: ports[2 * i] for i, n in enumerate(names)}
    peer = {n: f"https://127.0.0.1:{ports[2 * i + 1]}" for i, n in enumerate(names)}
    initial = ",".join(f"{n}={peer[n]}" for n in names)

    def start(n, cert, run):
        url = f"http://127.0.0.1:{client[n]}"
        return daemons.start(f"{n}-run{run}", [
            keel_kv(build_dir), "--name", n, "--data-dir", str(tmp_path / n),
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", peer[n], "--initial-advertise-peer-urls", peer[n],
            "--initial-cluster", initial,
            "--peer-cert-file", str(pki / f"{cert}.pem"), "--peer-key-file", str(pki / f"{cert}.key"),
            "--peer-client-cert-auth", "--peer-trusted-ca-file", str(pki / "ca.pem")] + FAST,
            ready_tcp=("127.0.0.1", client[n]))

    def get(n, path, method="GET", data=None):
        req = urllib.request.Request(f"http://127.0.0.1:{client[n]}{path}", method=method,
                                     data=data.encode() if data else None)
        if data:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def wait_health(n, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if get(n, "/health")[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    start("p1", "server", 1)
    start("p2", "server", 1)
    rogue = start("p3", "stranger", 1)
    assert wait_health("p1") and wait_health("p2")
    assert get("p1", "/v2/keys/tls", "PUT", "value=secret")[0] == 201
    status, body = get("p2", "/v2/keys/tls?quorum=true")
    assert status == 200 and json.loads(body)["node"]["value"] == "secret"
    # The stranger never hears from the cluster: no leader, no data.
    time.sleep(1.0)
    assert get("p3", "/health")[0] == 503
    assert get("p3", "/v2/keys/tls")[0] == 404
    leader = json.loads(get("p1", "/v2/members/leader")[1])["name"]
    assert leader in ("p1", "p2")
    rogue.stop()
    # With the cluster's certificate it joins in and catches up.
    start("p3", "server", 2)
    assert wait_health("p3")
    status, body = get("p3", "/v2/keys/tls?quorum=true")
    assert status == 200 and json.loads(body)["node"]["value"] == "secret"
