#!/usr/bin/python3
"""keel-kv beside etcd 3.4 (v2 API), same load generator (wrk), same disk, one run.

  bench/bench_kv.py [--build build] [--dir DIR] [--seconds 10] [--quick]

Cells: PUT of 256-byte values to random keys at 1, 16 and 64 connections, GET of one key at 16
and 64, on a single member and on a 3-member cluster (writes to the leader); then RSS after
writing 100,000 keys (both with --snapshot-count 1000000, so neither snapshots during the fill),
and a restart on that data: time until the member leads again, peak RSS while it recovered
(VmHWM) and RSS once it serves. Prints each cell and the keel/etcd ratio. Traffic stays on
loopback. --rss-only runs only the fill and the restart; --keel-only skips etcd there.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PUT_LUA = r"""
wrk.method = "PUT"
wrk.body = "value=" .. string.rep("v", 256)
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local chars = "abcdefghijklmnopqrstuvwxyz0123456789"
request = function()
  local t = {}
  for i = 1, 16 do local n = math.random(1, #chars); t[i] = chars:sub(n, n) end
  return wrk.format(nil, "/v2/keys/bench/" .. table.concat(t))
end
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Cluster:
    runs = 0

    def __init__(self, kind, binary, base, n):
        self.kind, self.procs, self.urls, self.argvs = kind, [], [], []
        Cluster.runs += 1  # a fresh data directory for every cluster started
        ports = [(free_port(), free_port()) for _ in range(n)]
        initial = ",".join(f"m{i}=http://127.0.0.1:{p[1]}" for i, p in enumerate(ports))
        for i, (cp, pp) in enumerate(ports):
            url = f"http://127.0.0.1:{cp}"
            argv = [binary, "--name", f"m{i}", "--data-dir", str(base / f"{kind}-{n}-r{Cluster.runs}-m{i}"),
                    "--listen-client-urls", url, "--advertise-client-urls", url,
                    "--listen-peer-urls", f"http://127.0.0.1:{pp}",
                    "--initial-advertise-peer-urls", f"http://127.0.0.1:{pp}",
                    "--initial-cluster", initial, "--snapshot-count", "1000000"]
            if kind == "etcd":
                argv += ["--enable-v2=true", "--log-level", "error"]
            self.argvs.append(argv)
            self.procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.urls.append(url)
        try:
            self.wait_leader()
        except BaseException:
            self.stop()  # never leave members running behind a failed start
            raise

    def wait_leader(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for url in self.urls:
                try:
                    with urllib.request.urlopen(url + "/v2/stats/self", timeout=1) as r:
                        if json.load(r)["state"] == "StateLeader":
                            self.leader = url
                            return
                except OSError:
                    pass
            time.sleep(0.1)
        raise SystemExit(f"{self.kind}: no leader")

    def restart(self):
        """Stop every member, start them again on the same data; seconds until a leader serves."""
        self.stop()
        t0 = time.monotonic()
        self.procs = [subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for a in self.argvs]
        try:
            self.wait_leader()
        except BaseException:
            self.stop()
            raise
        return time.monotonic() - t0

    def leader_pid(self):
        return self.procs[self.urls.index(self.leader)].pid

    def stop(self):
        for p in self.procs:  # by PID, never by name
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def wrk(url, path, conns, seconds, script=None):
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", url + path]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    return rps, float(p99.group(1)) * scale


def rss_mb(pid, field="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def fill(url, n):
    """100k PUTs over a few keep-alive connections (http.client), 256-byte values."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor
    host, port = url.split("//")[1].split(":")
    body = "value=" + "v" * 256

    def worker(start):
        c = http.client.HTTPConnection(host, int(port), timeout=30)
        for i in range(start, n, 8):
            c.request("PUT", f"/v2/keys/fill/k{i}", body, {"Content-Type": "application/x-www-form-urlencoded"})
            c.getresponse().read()
        c.close()

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(worker, range(8)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--dir", default=None, help="data directories (default: a temp dir under build/)")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="single member only, no RSS fill")
    ap.add_argument("--rss-only", action="store_true", help="only the RSS after 100,000 keys and the restart")
    ap.add_argument("--keel-only", action="store_true", help="RSS and restart: keel-kv only (before/after runs)")
    args = ap.parse_args()
    keel = str(Path(args.build) / "cmd" / "keel-kv" / "keel-kv")
    etcd = shutil.which("etcd")
    if not etcd or not shutil.which("wrk"):
        raise SystemExit("needs etcd (etcd-server) and wrk: scripts/install-deps")
    base = Path(args.dir or tempfile.mkdtemp(prefix="bench-kv-", dir=args.build))
    base.mkdir(parents=True, exist_ok=True)
    script = base / "put.lua"
    script.write_text(PUT_LUA)
    cells = [("PUT", 1), ("PUT", 16), ("PUT", 64), ("GET", 16), ("GET", 64)]
    sizes = [] if args.rss_only else [1] if args.quick else [1, 3]
    if sizes:
        print(f"{'cell':<22}{'etcd req/s':>12}{'p99 ms':>9}{'keel req/s':>12}{'p99 ms':>9}{'ratio':>8}")
    for n in sizes:
        results = {}
        for kind, binary in (("etcd", etcd), ("keel", keel)):
            c = Cluster(kind, binary, base, n)
            try:
                urllib.request.urlopen(urllib.request.Request(
                    c.leader + "/v2/keys/bench/get", data=b"value=" + b"v" * 256, method="PUT")).read()
                for verb, conns in cells:
                    if verb == "PUT":
                        results[(kind, verb, conns)] = wrk(c.leader, "/", conns, args.seconds, str(script))
                    else:
                        results[(kind, verb, conns)] = wrk(c.leader, "/v2/keys/bench/get", conns, args.seconds)
            finally:
                c.stop()
        for verb, conns in cells:
            e, k = results[("etcd", verb, conns)], results[("keel", verb, conns)]
            label = f"{verb} c={conns} ({'1 node' if n == 1 else '3 members'})"
            print(f"{label:<22}{e[0]:>12.0f}{e[1]:>9.1f}{k[0]:>12.0f}{k[1]:>9.1f}{k[0] / e[0]:>7.2f}x")
        sys.stdout.flush()
    if not args.quick:
        rss, rst = {}, {}
        kinds = (("keel", keel),) if args.keel_only else (("etcd", etcd), ("keel", keel))
        for kind, binary in kinds:
            c = Cluster(kind, binary, base, 1)
            try:
                fill(c.leader, 100_000)
                time.sleep(1)
                rss[kind] = rss_mb(c.leader_pid())
                secs = c.restart()
                pid = c.leader_pid()
                peak = rss_mb(pid, "VmHWM")
                time.sleep(1)
                rst[kind] = (secs, peak, rss_mb(pid))
            finally:
                c.stop()
        for kind, _ in kinds:
            print(f"{kind}: RSS after 100,000 keys of 256 B {rss[kind]:.0f} MB; restart: leader after "
                  f"{rst[kind][0]:.2f} s, peak RSS {rst[kind][1]:.0f} MB, then {rst[kind][2]:.0f} MB")
        if not args.keel_only:
            print(f"ratio keel/etcd: RSS {rss['keel'] / rss['etcd']:.2f}x, "
                  f"restart peak RSS {rst['keel'][1] / rst['etcd'][1]:.2f}x")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
