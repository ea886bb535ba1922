#!/usr/bin/python3
"""keel-init start-up benchmark (issue #6): 1,000 oneshot units running /bin/true in a random
acyclic Requires=/After= graph, started through one target, against the floor - a C program
that fork+execs /bin/true 1,000 times, two at a time - measured in the same run. Prints both
times, the ratio (target <= 3x) and keel-init's RSS once the units are loaded (target
<= 8 MiB).

    bench/bench_init.py [--build build] [--units 1000] [--runs 3] [--seed 1]
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from keelharness.init import sweep_cgroups  # noqa: E402


def write_units(d: Path, n: int, seed: int):
    rnd = random.Random(seed)
    names = [f"u{i:04d}.service" for i in range(n)]
    edges = 0
    for i, name in enumerate(names):
        deps = sorted({rnd.randrange(i) for _ in range(rnd.randint(0, 3))}) if i else []
        edges += len(deps)
        dep = " ".join(names[j] for j in deps)
        text = "[Service]\nType=oneshot\nExecStart=/bin/true\n"
        if dep:
            text = f"[Unit]\nRequires={dep}\nAfter={dep}\n" + text
        (d / name).write_text(text)
    wants = d / "bench.target.wants"
    wants.mkdir()
    for name in names:
        (wants / name).symlink_to(d / name)
    (d / "bench.target").write_text("[Unit]\nDescription=Benchmark\n")
    return edges


def call(sock: Path, req: dict, timeout=600):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock))
        s.sendall(json.dumps(dict(req, id=1)).encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("connection closed")
            buf += chunk
        return json.loads(buf.split(b"\n", 1)[0])


def rss_kib(pid: int, key="VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def run_keel(build: Path, units: Path, n: int):
    tmp = Path(tempfile.mkdtemp(prefix="bench-init-"))
    cg = f"bench-init-{os.getpid()}.slice"
    argv = [str(build / "cmd/keel-init/keel-init"), "--unit-path", str(units), "--no-default-paths",
            "--runtime-dir", str(tmp / "run"), "--journal-dir", str(tmp / "journal"), "--cgroup-root", cg,
            "--no-boot", "--log-level", "warn"]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(tmp / "keel-init.log", "w"))
    sock = tmp / "run" / "keel-init.sock"
    try:
        for _ in range(500):
            if sock.exists():
                try:
                    if call(sock, {"method": "ping"})["ok"]:
                        break
                except OSError:
                    pass
            time.sleep(0.01)
        idle = rss_kib(p.pid)
        t0 = time.monotonic()
        r = call(sock, {"method": "start", "unit": "bench.target"})
        elapsed = time.monotonic() - t0
        if not r.get("ok"):
            raise RuntimeError(f"start failed: {r}")
        units_listed = call(sock, {"method": "list-units", "all": True})["units"]
        finished = sum(1 for u in units_listed if u["unit"].startswith("u") and u["unit"].endswith(".service"))
        rss = rss_kib(p.pid)
        hwm = rss_kib(p.pid, "VmHWM")
        if finished != n:
            raise RuntimeError(f"only {finished} units loaded")
        return elapsed, idle, rss, hwm
    finally:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        sweep_cgroups(cg)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--units", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    build = Path(a.build).resolve()
    units = Path(tempfile.mkdtemp(prefix="bench-init-units-"))
    try:
        edges = write_units(units, a.units, a.seed)
        print(f"{a.units} oneshot units (/bin/true), {edges} Requires=+After= edges, seed {a.seed}")
        floors, keels, rss, hwm, idle = [], [], [], [], []
        for i in range(a.runs):
            out = subprocess.run([str(build / "bench/init_floor"), str(a.units), "2"], capture_output=True,
                                 text=True, check=True)
            floors.append(float(out.stdout))
            e, idle_kib, rss_k, hwm_k = run_keel(build, units, a.units)
            keels.append(e)
            rss.append(rss_k)
            hwm.append(hwm_k)
            idle.append(idle_kib)
            print(f"run {i + 1}: floor {floors[-1]:.3f} s, keel-init {e:.3f} s ({e / floors[-1]:.2f}x), "
                  f"RSS idle {idle_kib / 1024:.1f} MiB, with units {rss_k / 1024:.1f} MiB, peak {hwm_k / 1024:.1f} MiB")
        f, k = statistics.median(floors), statistics.median(keels)
        print(f"median: floor {f:.3f} s, keel-init {k:.3f} s, ratio {k / f:.2f}x (target <= 3x); "
              f"RSS with {a.units} units loaded {statistics.median(rss) / 1024:.1f} MiB, "
              f"peak {max(hwm) / 1024:.1f} MiB (target <= 8 MiB)")
    finally:
        shutil.rmtree(units, ignore_errors=True)


if __name__ == "__main__":
    main()
