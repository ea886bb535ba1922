"""keel-kv's storage and listener flags, each also as ETCD_*: --wal-dir, --max-snapshots,
--max-wals, several --listen-peer-urls and --listen-client-urls."""

import json
import subprocess
import urllib.error
import urllib.request

from keelharness import free_ports
from test_kv_etcdctl import FAST, Member, http, keel_kv, wait_healthy


def single_argv(build_dir, m, data_dir, *extra):
    return [keel_kv(build_dir), "--name", m.name, "--data-dir", str(data_dir),
            "--listen-client-urls", m.url, "--advertise-client-urls", m.url,
            "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", f"{m.name}={m.peer_url}", *extra] + FAST


def start_single(daemons, build_dir, m, data_dir, run, *extra, env=None):
    m.proc = daemons.start(f"{m.name}-run{run}", single_argv(build_dir, m, data_dir, *extra), env=env,
                           ready_tcp=("127.0.0.1", m.client_port))
    wait_healthy(m)


def put_many(m, prefix, n, size=10):
    for i in range(n):
        status, _, body = http(m, "PUT", f"/v2/keys/{prefix}{i}", "value=" + "v" * size)
        assert status in (200, 201), body


def files(d, suffix):
    return sorted(p.name for p in d.iterdir() if p.name.endswith(suffix)) if d.exists() else []


def test_wal_dir_keeps_the_wal_apart(daemons, build_dir, tmp_path):
    m = Member("w1", *free_ports(2))
    data, wal = tmp_path / "data", tmp_path / "disks" / "fast" / "wal"  # parents made as needed
    start_single(daemons, build_dir, m, data, 1, "--wal-dir", str(wal))
    put_many(m, "k", 20)
    assert files(wal, ".wal") and not (data / "wal").exists()
    m.proc.stop()
    # The same through the environment, as cloud-config sets etcd up.
    start_single(daemons, build_dir, m, data, 2, env={"ETCD_WAL_DIR": str(wal)})
    status, _, body = http(m, "GET", "/v2/keys/k19")
    assert status == 200 and json.loads(body)["node"]["value"] == "v" * 10
    assert not (data / "wal").exists()


def test_max_snapshots_keeps_that_many_and_zero_keeps_all(daemons, build_dir, tmp_path):
    m = Member("s1", *free_ports(2))
    data = tmp_path / "data"
    start_single(daemons, build_dir, m, data, 1, "--snapshot-count", "10", "--max-snapshots", "2")
    put_many(m, "a", 100)
    kept = files(data / "snap", ".snap")
    assert 1 <= len(kept) <= 2, kept
    m.proc.stop()
    start_single(daemons, build_dir, m, data, 2, "--snapshot-count", "10", env={"ETCD_MAX_SNAPSHOTS": "0"})
    put_many(m, "b", 100)
    kept = files(data / "snap", ".snap")
    assert len(kept) >= 8, kept  # one per 10 entries, none deleted
    status, _, _ = http(m, "GET", "/v2/keys/a99")
    assert status == 200


def test_max_wals_deletes_old_segments_and_zero_keeps_all(daemons, build_dir, tmp_path):
    m = Member("l1", *free_ports(2))
    data = tmp_path / "data"
    small = ["--wal-segment-size", "65536", "--snapshot-count", "15"]
    start_single(daemons, build_dir, m, data, 1, *small, "--max-wals", "2")
    put_many(m, "a", 120, size=3000)  # ~360 KiB of entries: six segments and more
    kept = files(data / "wal", ".wal")
    # Covered segments go while more than two exist; at most one more was begun since.
    assert 1 <= len(kept) <= 3, kept
    m.proc.stop()
    start_single(daemons, build_dir, m, data, 2, *small, env={"ETCD_MAX_WALS": "0"})
    before = len(files(data / "wal", ".wal"))
    put_many(m, "b", 120, size=3000)
    kept = files(data / "wal", ".wal")
    assert len(kept) >= before + 5, kept
    m.proc.stop()
    start_single(daemons, build_dir, m, data, 3, *small)  # replays old segments it kept
    status, _, body = http(m, "GET", "/v2/keys/b119")
    assert status == 200 and len(json.loads(body)["node"]["value"]) == 3000


def healthy(url):
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=10) as resp:
            return resp.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def test_several_listen_urls_all_serve(daemons, build_dir, tmp_path):
    """Each member listens on two peer and two client URLs; the cluster is told the second
    peer URL, so peers only ever reach each other there."""
    ports = free_ports(12)
    ms = []
    for i in range(3):
        c1, c2, p1, p2 = ports[4 * i:4 * i + 4]
        m = Member(f"m{i + 1}", c1, p2)  # m.peer_url: the second peer URL
        m.urls = [f"http://127.0.0.1:{c1}", f"http://127.0.0.1:{c2}"]
        m.peer_urls = [f"http://127.0.0.1:{p1}", m.peer_url]
        ms.append(m)
    initial = ",".join(f"{m.name}={m.peer_url}" for m in ms)
    for m in ms:
        argv = [keel_kv(build_dir), "--name", m.name, "--data-dir", str(tmp_path / m.name),
                "--advertise-client-urls", m.url, "--initial-advertise-peer-urls", m.peer_url,
                "--initial-cluster", initial] + FAST
        listen = {"ETCD_LISTEN_CLIENT_URLS": ",".join(m.urls), "ETCD_LISTEN_PEER_URLS": ",".join(m.peer_urls)}
        if m.name == "m1":  # one through the environment, the others through flags
            env = listen
        else:
            env = None
            argv += ["--listen-client-urls", listen["ETCD_LISTEN_CLIENT_URLS"],
                     "--listen-peer-urls", listen["ETCD_LISTEN_PEER_URLS"]]
        m.proc = daemons.start(m.name, argv, env=env, ready_tcp=("127.0.0.1", m.client_port))
    for m in ms:
        wait_healthy(m)
        assert all(healthy(u) for u in m.urls)
    status, _, _ = http(ms[0], "PUT", "/v2/keys/x", "value=both")
    assert status == 201
    second = Member("m3b", int(ms[2].urls[1].rsplit(":", 1)[1]), 0)
    status, _, body = http(second, "GET", "/v2/keys/x?quorum=true")
    assert status == 200 and json.loads(body)["node"]["value"] == "both"


def test_listen_peer_urls_must_agree_on_the_scheme(build_dir, tmp_path):
    c, p1, p2 = free_ports(3)
    base = [keel_kv(build_dir), "--name", "x", "--data-dir", str(tmp_path / "x"),
            "--listen-client-urls", f"http://127.0.0.1:{c}",
            "--initial-cluster", f"x=http://127.0.0.1:{p1}"]
    mixed = subprocess.run(base + ["--listen-peer-urls", f"http://127.0.0.1:{p1},https://127.0.0.1:{p2}"],
                           capture_output=True, text=True, timeout=30)
    assert mixed.returncode == 2 and "mixes http and https" in mixed.stderr
    nocert = subprocess.run(base + ["--listen-peer-urls", f"https://127.0.0.1:{p1}"],
                            capture_output=True, text=True, timeout=30)
    assert nocert.returncode == 2 and "--peer-cert-file" in nocert.stderr
