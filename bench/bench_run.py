#!/usr/bin/python3
"""keel-run beside crun and runc, one run, one bundle (busybox-static, /bin/true), as root.

Measures with hyperfine -N: `run`, then `create`, `start`, `state`, `delete` on their own, `exec`
of /bin/true into a running container; then peak RSS of one `run` (GNU time's %M); then
`podman run --rm` end to end with each runtime (podman's state in a temporary directory, see
tests/integration/test_run_podman.py; skipped without podman or with --no-podman). crun refuses this machine's hybrid cgroups, so it runs
inside a private mount namespace that hides /sys/fs/cgroup/unified/cgroup.controllers (the
recipe in shared/docs/ANCHORS.md) for `run` and `create` (start, state and delete work without
it); keel-run's `run` is measured both directly and through the same wrapper, so the wrapper's
cost is visible and the like-for-like ratio is keel-run (masked) / crun (masked). Prints medians and keel-run/crun ratios.

usage: bench/bench_run.py [--keel-run build/cmd/keel-run/keel-run] [--runs 100] [--podman-runs 20]
                          [--no-podman] [--json OUT]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MASK = ("unshare -m --propagation private sh -c "
        "'mount --bind /dev/null /sys/fs/cgroup/unified/cgroup.controllers; exec {cmd}'")


def make_bundle(base: Path) -> Path:
    rootfs = base / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    for name in ("true", "sh", "sleep"):
        (rootfs / "bin" / name).symlink_to("busybox")
    for d in ("proc", "sys", "dev", "tmp"):
        (rootfs / d).mkdir()
    subprocess.run(["runc", "spec"], cwd=base, check=True)
    cfg = json.loads((base / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    cfg["root"]["path"] = str(rootfs)  # runc wants no symlink here; an absolute path suits all
    (base / "config.json").write_text(json.dumps(cfg, indent=1))
    return base


def hyperfine(commands: dict, runs: int, tmp: Path, prepare: str | None = None,
              cleanup: str | None = None) -> dict:
    out = tmp / "hf.json"
    argv = ["hyperfine", "-N", "--warmup", "3", "--runs", str(runs), "--export-json", str(out),
            "--style", "none"]
    if prepare:
        argv += ["--prepare", prepare]
    if cleanup:
        argv += ["--cleanup", cleanup]
    for name, cmd in commands.items():
        argv += ["-n", name, cmd]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    res = json.loads(out.read_text())["results"]
    return {r["command"]: (statistics.median(r["times"]) * 1000, min(r["times"]) * 1000) for r in res}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keel-run", default=str(REPO / "build" / "cmd" / "keel-run" / "keel-run"))
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--podman-runs", type=int, default=20)
    ap.add_argument("--no-podman", action="store_true")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_run: needs root")
    for tool in ("hyperfine", "crun", "runc", "/usr/bin/time"):
        if not shutil.which(tool):
            sys.exit(f"bench_run: {tool} is missing (scripts/install-deps)")

    tmp = Path(tempfile.mkdtemp(prefix="keel-bench-run-"))
    results = {}
    try:
        bundle = make_bundle(tmp / "bundle")
        roots = {rt: tmp / f"root-{rt}" for rt in ("keel", "crun", "runc")}
        keel = f"{args.keel_run} --root {roots['keel']}"
        crun = f"crun --root {roots['crun']}"
        runc = f"runc --root {roots['runc']}"
        masked = lambda c: MASK.format(cmd=c)  # noqa: E731
        b = f"--bundle {bundle}"

        print(f"run of /bin/true, hyperfine -N, {args.runs} runs (ms)")
        runs = hyperfine({
            "keel-run": f"{keel} run {b} kb",
            "keel-run (masked)": masked(f"{keel} run {b} kbm"),
            "crun (masked)": masked(f"{crun} run {b} cb"),
            "runc": f"{runc} run {b} rb",
        }, args.runs, tmp)
        results["run"] = runs

        # create, start, delete, state each on its own: the other steps go in --prepare.
        steps = {}
        for rt, cli, wrap in (("keel-run", keel, str), ("crun", crun, masked),
                              ("runc", runc, str)):
            cid = f"step-{rt.split()[0]}"
            create = wrap(f"{cli} create {b} {cid}")
            # Only creating needs crun's mask; start, state and delete work on this machine as is.
            delete = f"{cli} delete --force {cid}"
            quiet_delete = f'sh -c "{delete} >/dev/null 2>&1 || true"'
            steps[rt] = {
                "create": hyperfine({rt: create}, args.runs, tmp, prepare=quiet_delete,
                                    cleanup=quiet_delete)[rt],
                "start": hyperfine({rt: f"{cli} start {cid}"}, args.runs, tmp,
                                   prepare=f'sh -c "{delete} >/dev/null 2>&1; {create}"',
                                   cleanup=quiet_delete)[rt],
                "delete": hyperfine({rt: f"{cli} delete {cid}"}, args.runs, tmp,
                                    prepare=create, cleanup=quiet_delete)[rt],
            }
            subprocess.run(create, shell=True, check=True)
            steps[rt]["state"] = hyperfine({rt: f"{cli} state {cid}"}, args.runs, tmp)[rt]
            subprocess.run(delete, shell=True, check=True)
        results["steps"] = steps

        # exec into a running container (sleep), one per runtime. crun's exec works without the
        # mask (only its create needs it): the like-for-like ratio is keel-run / crun unmasked;
        # both are measured through the mask too.
        sleeper = tmp / "sleeper"
        sleeper.mkdir()
        cfg = json.loads((bundle / "config.json").read_text())
        cfg["process"]["args"] = ["/bin/sleep", "100000"]
        (sleeper / "config.json").write_text(json.dumps(cfg))
        sb = f"--bundle {sleeper}"
        started = []
        try:
            for cli, wrap, cid in ((keel, str, "ex-keel"), (crun, masked, "ex-crun"), (runc, str, "ex-runc")):
                subprocess.run(wrap(f"{cli} run -d {sb} {cid}"), shell=True, check=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
                started.append((cli, cid))
            print(f"exec of /bin/true into a running container, {args.runs} runs (ms)")
            execs = hyperfine({
                "keel-run": f"{keel} exec ex-keel /bin/true",
                "keel-run (masked)": masked(f"{keel} exec ex-keel /bin/true"),
                "crun": f"{crun} exec ex-crun /bin/true",
                "crun (masked)": masked(f"{crun} exec ex-crun /bin/true"),
                "runc": f"{runc} exec ex-runc /bin/true",
            }, args.runs, tmp)
        finally:
            for cli, cid in started:
                subprocess.run(f"{cli} delete --force {cid}", shell=True, check=False)
        results["exec"] = execs

        rss = {}
        for rt, cmd in (("keel-run", f"{keel} run {b} rss1"), ("crun (masked)", masked(f"{crun} run {b} rss2")),
                        ("runc", f"{runc} run {b} rss3")):
            samples = []
            for _ in range(5):
                p = subprocess.run(["/usr/bin/time", "-f", "%M", "sh", "-c", f"exec {cmd}"],
                                   capture_output=True, text=True, check=True)
                samples.append(int(p.stderr.strip().splitlines()[-1]))
            rss[rt] = statistics.median(samples) / 1024
        results["rss_mib"] = rss
        if not args.no_podman and shutil.which("podman"):
            results["podman"] = bench_podman(args, tmp, bundle / "rootfs")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{'':24}{'median':>9}{'min':>9}{'vs crun':>9}")
    crun_med = runs["crun (masked)"][0]
    for name, (med, mn) in runs.items():
        print(f"run  {name:19}{med:9.2f}{mn:9.2f}{med / crun_med:8.2f}x")
    print("\n(crun's create is masked; its start, delete and state are not)")
    for step in ("create", "start", "delete", "state"):
        c = steps["crun"][step][0]
        for rt in steps:
            med, mn = steps[rt][step]
            print(f"{step:6} {rt:17}{med:9.2f}{mn:9.2f}{med / c:8.2f}x")
    crun_exec = execs["crun"][0]
    print()
    for name, (med, mn) in execs.items():
        print(f"exec {name:19}{med:9.2f}{mn:9.2f}{med / crun_exec:8.2f}x")
    if "podman" in results:
        pc = results["podman"]["crun"][0]
        print(f"\npodman run --rm IMAGE true (masked), {args.podman_runs} runs (ms)")
        for name, (med, mn) in results["podman"].items():
            print(f"podman --runtime {name:10}{med:9.1f}{mn:9.1f}{med / pc:8.2f}x")
    print("\npeak RSS of one run (MiB, median of 5; GNU time %M)")
    for rt, v in rss.items():
        print(f"  {rt:17}{v:6.2f}  {v / rss['crun (masked)']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def bench_podman(args, tmp: Path, rootfs: Path) -> dict:
    """podman run --rm of /bin/true with each runtime, podman itself in crun's mount-namespace
    mask so that crun accepts the cgroups; its state in tmp/podman, removed at the end."""
    base = tmp / "podman"
    base.mkdir()
    (base / "containers.conf").write_text(f"""[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{base}/events.log"
runtime_supports_json = ["crun", "runc", "keel-run"]
tmp_dir = "{base}/libpod-tmp"
volume_path = "{base}/volumes"
[engine.runtimes]
keel-run = ["{args.keel_run}"]
""")
    (base / "storage.conf").write_text(f"""[storage]
driver = "overlay"
runroot = "{base}/run"
graphroot = "{base}/graph"
""")
    env = dict(os.environ, CONTAINERS_CONF=str(base / "containers.conf"),
               CONTAINERS_STORAGE_CONF=str(base / "storage.conf"))
    tar = base / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
    try:
        subprocess.run(["podman", "import", str(tar), "localhost/keelbench"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cmds = {rt: MASK.format(cmd=f"podman --runtime {rt} run --rm localhost/keelbench /bin/true")
                for rt in ("keel-run", "crun", "runc")}
        os.environ.update(CONTAINERS_CONF=env["CONTAINERS_CONF"],
                          CONTAINERS_STORAGE_CONF=env["CONTAINERS_STORAGE_CONF"])
        return hyperfine(cmds, args.podman_runs, tmp)
    finally:
        subprocess.run(["podman", "system", "reset", "-f"], env=env, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            if line.split()[4].startswith(str(base)):
                subprocess.run(["umount", "-l", line.split()[4]], check=False)
        for k in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"):
            os.environ.pop(k, None)


if __name__ == "__main__":
    main()
