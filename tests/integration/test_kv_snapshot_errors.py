"""A snapshot that cannot be saved (the WAL still fine) is logged as an error with the file and
errno, counted in /metrics, and retried; the member goes on serving."""

import re
import time
import urllib.request

from keelharness import free_ports
from test_kv_etcdctl import FAST, Member, http, keel_kv, wait_healthy


def test_failed_snapshot_is_logged_and_counted(daemons, build_dir, tmp_path):
    client_port, peer_port = free_ports(2)
    m = Member("s1", client_port, peer_port)
    argv = [keel_kv(build_dir), "--name", "s1", "--data-dir", str(tmp_path / "s1.etcd"),
            "--listen-client-urls", m.url, "--advertise-client-urls", m.url,
            "--listen-peer-urls", m.peer_url, "--initial-cluster", f"s1={m.peer_url}",
            "--snapshot-count", "5"] + FAST
    # Every rename after the WAL's first segment fails: snapshot files cannot be published.
    m.proc = daemons.start("s1", argv, env={"KEEL_FAULT": "rename:1:-1:EACCES"},
                           ready_tcp=("127.0.0.1", client_port))
    wait_healthy(m)
    for i in range(12):
        assert http(m, "PUT", f"/v2/keys/k{i}", f"value={i}")[0] in (200, 201)
    deadline = time.monotonic() + 15
    failures = 0
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{m.url}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        failures = int(re.search(r"^keel_snap_save_failures_total (\d+)$", metrics, re.M).group(1))
        if failures >= 1:
            break
        time.sleep(0.1)
    assert failures >= 1, metrics
    assert re.search(r"^etcd_debugging_snap_save_total_count 0$", metrics, re.M)
    log = m.proc.log_text()
    assert re.search(r"ERROR .*cannot save a snapshot.*errno=13 .*rename .*\.snap\.tmp: Permission denied", log), log
    # Still serving, writes included.
    status, _, _ = http(m, "PUT", "/v2/keys/after", "value=x")
    assert status in (200, 201)
    status, _, body = http(m, "GET", "/v2/keys/k3?quorum=true")
    assert status == 200 and '"value":"3"' in body
