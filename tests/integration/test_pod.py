"""keel-pod (lib/run/pod*.c): pods of apps from images in keel-run's image store.

Images are OCI layouts written by keelharness.oci around Debian's busybox-static (no registry,
no podman needed) and imported with keel-image into a store of the module's own. Each test
runs keel-pod with a private --root, checks the apps' effects from inside (shared network,
separate mounts, hostname, env/cmd from the image config, volumes, memory limit, capabilities,
seccomp, masked paths, no_new_privs) and that `pod rm` leaves nothing behind: no state, no
mounts, no cgroups, and the image holds released so `image rm` works. Needs root.
"""

import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from keelharness import machine_lock
from keelharness.oci import OciLayout, digest, tar_bytes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="pods need root")

BUSYBOX = "/bin/busybox"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def busybox_image_tar():
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    entries = [("bin", "d", None, 0o755), ("bin/busybox", "f", bb, 0o755)]
    entries += [(f"bin/{a}", "l", "busybox", 0o777) for a in applets if a != "busybox" and "/" not in a]
    for d in ("etc", "proc", "sys", "dev", "root", "srv", "mnt"):
        entries.append((d, "d", None, 0o755))
    entries += [("tmp", "d", None, 0o1777),
                ("etc/passwd", "f", b"root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000::/srv:/bin/sh\n", None),
                ("etc/group", "f", b"root:x:0:\nweb:x:1000:\n", None)]
    return tar_bytes(entries)


IMAGE_CONFIG = {"Cmd": ["sh", "-c", "echo greeting=$GREETING cwd=$(pwd) uid=$(id -u) gid=$(id -g)"],
                "Env": ["PATH=/bin", "GREETING=from-image"], "WorkingDir": "/srv", "User": "web"}


class Pods:
    """keel-pod with a private --root and the module's image store."""

    def __init__(self, build_dir, root, image_root):
        self.bin = Path(build_dir) / "cmd" / "keel-pod" / "keel-pod"
        self.image_bin = Path(build_dir) / "cmd" / "keel-image" / "keel-image"
        self.root = Path(root)
        self.image_root = Path(image_root)
        self.made = []
        self.env = dict(os.environ)

    def __call__(self, *args, check=True, timeout=120):
        argv = [str(self.bin), "--root", str(self.root), "--image-root", str(self.image_root), *map(str, args)]
        # Files, not pipes: a detached pod's monitor must not hold our pipes open.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, text=True,
                               timeout=timeout, env=self.env)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        for m in SANITIZER_MARKERS:
            assert m not in p.stderr, p.stderr
        if check and p.returncode != 0:
            raise AssertionError(f"{argv}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def image(self, *args, check=True):
        p = subprocess.run([str(self.image_bin), *map(str, args)], env=dict(os.environ, KEEL_IMAGE_ROOT=str(self.image_root)),
                           capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"keel-image {args}: {p.stderr}")
        return p

    def run(self, name, *args, **kw):
        self.made.append(name)
        return self("run", "--name", name, *args, **kw)

    def status(self, name):
        return json.loads(self("status", "--format", "json", name).stdout)

    def wait_app(self, pod, app, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status(pod)
            a = next(a for a in st["apps"] if a["name"] == app)
            if a["status"] == "exited" and a["exit_code"] is not None:
                return a["exit_code"]
            time.sleep(0.1)
        raise AssertionError(f"app {app} of pod {pod} still runs: {self.status(pod)}")

    def logs(self, pod, app):
        return self("logs", "--app", app, pod).stdout

    def cleanup(self):
        for name in self.made:
            if (self.root / name).exists():
                self("rm", "--force", name, check=False)


def leftovers(pods, name):
    found = []
    if (pods.root / name).exists():
        found.append(f"state dir {pods.root / name}")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if f"{pods.root}/{name}/" in line:
            found.append(f"mount {line}")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        if fields[sep + 1] in ("cgroup", "cgroup2") and (Path(fields[4]) / "keel-pod" / name).exists():
            found.append(f"cgroup {Path(fields[4]) / 'keel-pod' / name}")
    return found


@pytest.fixture(scope="module", autouse=True)
def one_run_at_a_time():
    """keel-pod's cgroups live under one /keel-pod parent per machine, named after the pods,
    and the tests check that parent: another test run's pods (other worktrees on this
    machine) must not be there meanwhile."""
    with machine_lock("keel-pod"):
        yield


@pytest.fixture(scope="module")
def store(one_run_at_a_time, build_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("podimages")
    lay = OciLayout(root / "layout")
    layer = busybox_image_tar()
    lay.add(lay.image([layer], config=IMAGE_CONFIG), ref_name="localhost/pbox:latest")
    lay.finish()
    store = root / "store"
    env = dict(os.environ, KEEL_IMAGE_ROOT=str(store))
    binary = Path(build_dir) / "cmd" / "keel-image" / "keel-image"
    subprocess.run([str(binary), "import", str(root / "layout")], env=env, check=True, capture_output=True)
    return {"root": root, "store": store, "layer": layer}


@pytest.fixture
def pods(build_dir, store, tmp_path):
    p = Pods(build_dir, tmp_path / "pods", store["store"])
    yield p
    p.cleanup()
    for name in p.made:
        assert leftovers(p, name) == [], leftovers(p, name)


def test_two_apps_share_network_and_volume_not_mounts(pods, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    server = ("mkdir -p /tmp/www && echo pod-hello > /tmp/www/index.html && touch /tmp/only-in-server && "
              "echo server > /data/from-server && exec httpd -f -p 127.0.0.1:8080 -h /tmp/www")
    client = ("for i in $(seq 1 300); do wget -q -O - http://127.0.0.1:8080/ && break; sleep 0.1; done; "
              "ls /tmp/only-in-server 2>/dev/null && echo LEAKED; "
              "for i in $(seq 1 100); do [ -f /data/from-server ] && break; sleep 0.1; done; "
              "echo got=$(cat /data/from-server); echo client > /data/from-client; hostname")
    pods.run("p2", "-d", "--hostname", "podhost", "--volume", f"data:{shared}",
             "localhost/pbox", "--name", "server", "--user", "0", "--mount", "volume=data,target=/data",
             "--exec", "sh", "-c", server, "---",
             "localhost/pbox", "--name", "client", "--user", "0", "--mount", "volume=data,target=/data",
             "--exec", "sh", "-c", client)
    assert pods.wait_app("p2", "client") == 0
    out = pods.logs("p2", "client")
    assert "pod-hello" in out, out
    assert "LEAKED" not in out
    assert "got=server" in out and "podhost" in out, out
    assert (shared / "from-client").read_text() == "client\n"
    st = pods.status("p2")
    assert st["hostname"] == "podhost" and st["net"] == "none"
    assert [a["status"] for a in st["apps"]] == ["running", "exited"]
    listed = json.loads(pods("list", "--format", "json").stdout)
    assert [p["name"] for p in listed] == ["p2"]
    assert "p2" in pods("list").stdout
    pods("stop", "--timeout", "1", "p2")
    st = pods.status("p2")
    assert st["status"] == "exited"
    assert st["apps"][0]["exit_code"] is not None
    pods("rm", "p2")
    assert leftovers(pods, "p2") == []


def test_image_config_gives_env_cmd_workdir_user_and_exit_status(pods):
    p = pods.run("p3", "localhost/pbox", "---",
                 "localhost/pbox", "--name", "other", "--env", "GREETING=override", "--workdir", "/tmp",
                 "--exec", "sh", "-c", "echo greeting=$GREETING cwd=$(pwd); exit 3",
                 check=False)
    assert p.returncode == 3, p.stderr
    assert pods.logs("p3", "pbox").strip() == "greeting=from-image cwd=/srv uid=1000 gid=1000"
    assert pods.logs("p3", "other").strip() == "greeting=override cwd=/tmp"
    st = pods.status("p3")
    assert [(a["name"], a["exit_code"]) for a in st["apps"]] == [("pbox", 0), ("other", 3)]
    out = pods("logs", "p3").stdout
    assert "==> pbox <==" in out and "==> other <==" in out
    pods("rm", "p3")


def test_security_defaults(pods):
    script = ("grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; "
              "unshare -r true 2>/dev/null; echo unshare=$?; "
              "mount -t tmpfs none /mnt 2>/dev/null; echo mount=$?; "
              "echo masked=$(wc -c < /proc/timer_list); "
              "echo 1 > /proc/sys/kernel/domainname 2>/dev/null; echo rosys=$?; "
              "hostname")
    p = pods.run("p4", "localhost/pbox", "--user", "0", "--exec", "sh", "-c", script, check=False)
    assert p.returncode == 0, p.stderr
    out = dict(line.split(":", 1) if ":" in line else line.split("=", 1)
               for line in pods.logs("p4", "pbox").split("\n") if line and ("=" in line or ":" in line))
    # The OCI default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    # NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
    assert out["CapEff"].strip() == "00000000a80425fb"
    assert out["CapBnd"].strip() == "00000000a80425fb"
    assert out["NoNewPrivs"].strip() == "1"
    assert out["Seccomp"].strip() == "2"
    assert out["unshare"] == "1"  # user namespaces need no capability: seccomp's EPERM
    assert out["mount"] != "0"
    assert out["masked"] == "0"
    assert out["rosys"] != "0"
    assert pods.logs("p4", "pbox").strip().endswith("p4")  # hostname defaults to the pod name
    pods("rm", "p4")


def test_seccomp_profile_denies_with_eperm(pods, build_dir):
    # busybox has no keyctl or ptrace applet; a static helper is overkill here: check the
    # profile lib/run loads via the config.json the pod wrote.
    pods.run("p5", "-d", "localhost/pbox", "--exec", "sleep", "1000")
    cfg = json.loads((pods.root / "p5" / "apps" / "pbox" / "config.json").read_text())
    sc = cfg["linux"]["seccomp"]
    assert sc["defaultAction"] == "SCMP_ACT_ALLOW"
    denied = set(sc["syscalls"][0]["names"])
    for name in ("keyctl", "add_key", "request_key", "ptrace", "mount", "umount2", "reboot", "kexec_load",
                 "init_module", "bpf", "perf_event_open", "unshare", "setns"):
        assert name in denied
    assert cfg["process"]["noNewPrivileges"] is True
    assert "/proc/kcore" in cfg["linux"]["maskedPaths"]
    assert "/proc/sys" in cfg["linux"]["readonlyPaths"]
    pods("rm", "--force", "p5")


def test_memory_limit_is_enforced(pods):
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; "
              "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived ${#x}")
    p = pods.run("p6", "--memory", "32m", "localhost/pbox", "--exec", "sh", "-c", script, check=False)
    out = pods.logs("p6", "pbox")
    assert "survived" not in out, out
    assert p.returncode != 0
    # The pod's cgroup holds the limit; the app's sits below it.
    cg = [CGROUP_ROOT / "memory" / "keel-pod" / "p6", CGROUP_ROOT / "keel-pod" / "p6"]
    limits = [(c / "memory.limit_in_bytes") for c in cg if (c / "memory.limit_in_bytes").exists()]
    limits += [(c / "memory.max") for c in cg if (c / "memory.max").exists()]
    assert limits and limits[0].read_text().strip() == str(32 * 1024 * 1024)
    pods("rm", "p6")
    # An app's own limit (an app flag, after its image) sits on the app's cgroup.
    p = pods.run("p6b", "localhost/pbox", "--memory", "32m", "--exec", "sh", "-c", script, check=False)
    out = pods.logs("p6b", "pbox")
    assert "survived" not in out and out.split("\n")[0] in (str(32 * 1024 * 1024), "33554432"), out
    assert p.returncode != 0
    pods("rm", "p6b")


def test_enter_runs_in_the_app(pods):
    pods.run("p7", "-d", "--hostname", "enterhost", "localhost/pbox", "--user", "0",
             "--exec", "sh", "-c", "echo mark > /tmp/mark; exec sleep 1000")
    for _ in range(100):
        if pods("enter", "p7", "cat", "/tmp/mark", check=False).stdout == "mark\n":
            break
        time.sleep(0.1)
    p = pods("enter", "--app", "pbox", "p7", "sh", "-c",
             "cat /tmp/mark; hostname; grep CapEff /proc/self/status; ps | grep -c sleep; exit 5", check=False)
    assert p.returncode == 5, p.stderr
    lines = p.stdout.split("\n")
    assert lines[0] == "mark" and lines[1] == "enterhost"
    assert "a80425fb" in lines[2]
    p = pods("enter", "--app", "nope", "p7", "true", check=False)
    assert p.returncode == 1 and "has no app nope" in p.stderr
    p = pods("rm", "p7", check=False)
    assert p.returncode == 1 and "is running" in p.stderr
    pods("stop", "--timeout", "0", "p7")
    p = pods("enter", "p7", "true", check=False)
    assert p.returncode == 1 and "not running" in p.stderr
    pods("rm", "p7")


def test_stop_with_sigterm_then_rm_releases_the_image(pods, store):
    lay = OciLayout(store["root"] / "layout2")
    lay.add(lay.image([store["layer"]], config={"Cmd": ["sh"], "Env": ["PATH=/bin"]}), ref_name="localhost/only:1")
    lay.finish()
    pods.image("import", store["root"] / "layout2")
    pods.run("p8", "-d", "localhost/only:1", "--exec", "sh", "-c",
             "trap 'exit 7' TERM; while :; do sleep 0.1; done")
    p = pods.image("rm", "localhost/only:1", check=False)
    assert p.returncode != 0 and "use" in p.stderr.lower(), p.stderr
    pods("stop", "--timeout", "20", "p8")
    assert pods.status("p8")["apps"][0]["exit_code"] == 7
    pods("rm", "p8")
    assert leftovers(pods, "p8") == []
    pods.image("rm", "localhost/only:1")


def test_bad_input_is_a_clear_error_and_leaves_nothing(pods, tmp_path):
    p = pods.run("bad1", "localhost/nosuch", check=False)
    assert p.returncode == 1 and "unknown image localhost/nosuch" in p.stderr
    assert leftovers(pods, "bad1") == []
    p = pods.run("bad2", "localhost/pbox", "---", "localhost/pbox", check=False)
    assert p.returncode == 1 and "duplicate app name pbox" in p.stderr
    assert leftovers(pods, "bad2") == []
    p = pods.run("bad3", "--volume", "nocolon", "localhost/pbox", check=False)
    assert p.returncode == 2 and "invalid --volume" in p.stderr
    p = pods.run("bad4", "localhost/pbox", "--mount", "volume=undeclared,target=/x", check=False)
    assert p.returncode == 1 and "no volume named undeclared" in p.stderr
    p = pods.run("bad5", "--volume", f"v:{tmp_path}/missing", "localhost/pbox", check=False)
    assert p.returncode == 1 and "missing" in p.stderr
    # A second app whose image is unknown: the first one's overlay and hold go too.
    p = pods.run("bad6", "localhost/pbox", "---", "localhost/nosuch", check=False)
    assert p.returncode == 1 and "unknown image" in p.stderr
    assert leftovers(pods, "bad6") == []
    for cmd in (("status", "ghost"), ("stop", "ghost"), ("rm", "ghost"), ("logs", "ghost"),
                ("enter", "ghost", "true")):
        p = pods(*cmd, check=False)
        assert p.returncode == 1 and "pod ghost does not exist" in p.stderr, (cmd, p.stderr)
    pods.run("dup", "-d", "localhost/pbox", "--exec", "sleep", "1000")
    p = pods.run("dup", "localhost/pbox", check=False)
    assert p.returncode == 1 and "pod dup already exists" in p.stderr
    assert pods.status("dup")["apps"][0]["status"] == "running"
    p = pods("run", "--net", "bridge", "--subnet", "10.1.2.0/33", "--name", "br", "localhost/pbox", check=False)
    assert p.returncode == 1 and "invalid --subnet" in p.stderr
    p = pods("run", "--bridge", "x", "--name", "br", "localhost/pbox", check=False)
    assert p.returncode == 1 and "need --net bridge" in p.stderr
    assert leftovers(pods, "br") == []
    p = pods.run("uns", "--user-ns", "--net", "host", "localhost/pbox", check=False)
    assert p.returncode == 1 and "--user-ns cannot be used with --net host" in p.stderr
    assert leftovers(pods, "uns") == []
    pods("rm", "--force", "dup")
    for name in ("bad1", "bad2", "bad3", "bad4", "bad5", "bad6", "dup"):
        assert leftovers(pods, name) == [], name


def test_net_host_shares_the_hosts_network_namespace_and_none_does_not(pods):
    script = "readlink /proc/self/ns/net; readlink /proc/self/ns/uts"
    pods.run("ph", "--net", "host", "localhost/pbox", "--exec", "sh", "-c", script)
    pods.run("pn", "localhost/pbox", "--exec", "sh", "-c", script)
    host_net, host_uts = os.readlink("/proc/self/ns/net"), os.readlink("/proc/self/ns/uts")
    h = pods.logs("ph", "pbox").split()
    n = pods.logs("pn", "pbox").split()
    assert h[0] == host_net and h[1] != host_uts
    assert n[0] != host_net and n[1] != host_uts
    assert not (pods.root / "ph" / "ns" / "net").exists()
    pods("rm", "ph")
    pods("rm", "pn")
    # ph made the shared /keel-pod parent, pn still used it when ph went: it goes with pn.
    # (Unless pods of another --root use it: another checkout's tests running beside these
    # ones. It may stay then, holding their pods, never empty for long.)
    parent = CGROUP_ROOT / "memory" / "keel-pod"

    def empty():
        try:
            return not any(p.is_dir() for p in parent.iterdir())
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while empty():
        assert time.monotonic() < deadline, f"{parent} left behind empty"
        time.sleep(0.1)


def test_keel_run_dispatches_image_and_pod(build_dir, store, pods):
    """`keel-run image ...` and `keel-run pod ...` are the image store's and the pods' CLIs."""
    keel_run = str(Path(build_dir) / "cmd" / "keel-run" / "keel-run")
    env = dict(os.environ, KEEL_IMAGE_ROOT=str(store["store"]))
    via_run = subprocess.run([keel_run, "image", "list", "--format", "json"], env=env,
                             capture_output=True, text=True, timeout=60)
    direct = pods.image("list", "--format", "json")
    assert via_run.returncode == 0, via_run.stderr
    assert json.loads(via_run.stdout) == json.loads(direct.stdout)
    assert any("pbox" in json.dumps(i) for i in json.loads(via_run.stdout))
    bad = subprocess.run([keel_run, "pod", "status", "no-such-pod"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0 and "no-such-pod" in bad.stderr


def test_etc_hosts_and_resolv_conf(pods):
    script = "cat /etc/hosts; echo ==; cat /etc/resolv.conf 2>&1; echo ==; echo x > /etc/hosts || echo ro"
    pods.run("eh", "--hostname", "box1", "localhost/pbox", "--user", "0", "--exec", "sh", "-c", script)
    hosts, resolv, wr = pods.logs("eh", "pbox").split("==")
    assert "127.0.0.1\tlocalhost" in hosts and "127.0.1.1\tbox1" in hosts
    assert "No such file" in resolv  # --net none: no resolver
    assert "ro" in wr.split()
    pods.run("eh2", "--net", "host", "localhost/pbox", "--exec", "sh", "-c", "cat /etc/resolv.conf")
    assert pods.logs("eh2", "pbox") == Path("/etc/resolv.conf").read_text()
    pods("rm", "eh")
    pods("rm", "eh2")


def link_exists(name):
    return Path("/sys/class/net", name).exists()


# Networks of this test run's own: other test trees on the machine (other checkouts running
# their tests at the same time) make bridges, veths and addresses in the same host namespace,
# and keel-pod names a pod's host veth after its address. Unique per pid modulo 16000.
_NET_TAG = os.getpid() % 16000
POD_NET = f"10.{160 + _NET_TAG // 256}.{_NET_TAG % 256}"  # the bridge fixture's /24 (10.160-222.x)
CLIENT_NET = f"10.{224 + _NET_TAG // 1024}.{_NET_TAG // 4 % 256}.{_NET_TAG % 4 * 4}"  # client_netns' /30


def pod_ip(host):
    return f"{POD_NET}.{host}"


def pod_veth(host):
    """keel-pod's host end of the veth of the pod at pod_ip(host): kv + the address in hex."""
    return "kv" + "".join(f"{int(o):02x}" for o in pod_ip(host).split("."))


@pytest.fixture
def bridge(pods):
    name = f"kpt{os.getpid() % 100000}"
    subnet = f"{POD_NET}.0/24"
    assert not link_exists(name)
    yield name, subnet
    pods.cleanup()
    if link_exists(name):
        subprocess.run(["ip", "link", "del", name], check=False)
        raise AssertionError(f"bridge {name} left behind")
    assert not (pods.root / ".net" / name).exists() or not any((pods.root / ".net" / name).iterdir())


def test_bridge_pods_reach_each_other_and_rm_frees_everything(pods, bridge):
    br, subnet = bridge
    net = ("--net", "bridge", "--bridge", br, "--subnet", subnet)
    serve = "mkdir -p /tmp/w && echo hello-from-a > /tmp/w/i && exec httpd -f -p 8080 -h /tmp/w"
    pods.run("ba", "-d", *net, "localhost/pbox", "--exec", "sh", "-c", serve)
    assert pods.status("ba")["ip"] == pod_ip(2)
    assert link_exists(br) and link_exists(pod_veth(2))
    assert Path(f"/sys/class/net/{pod_veth(2)}/master").resolve().name == br
    fetch = (f"for i in $(seq 100); do wget -qO- http://{pod_ip(2)}:8080/i && break; sleep 0.2; done; "
             f"ping -c1 -W10 {pod_ip(1)} >/dev/null && echo gw-ok; ip -4 addr show eth0; ip route; "
             "ip link show lo; cat /etc/hosts")
    pods.run("bb", *net, "--hostname", "bbhost", "localhost/pbox", "--user", "0", "--exec", "sh", "-c", fetch)
    out = pods.logs("bb", "pbox")
    assert "hello-from-a" in out and "gw-ok" in out, out
    assert f"inet {pod_ip(3)}/24" in out and f"default via {pod_ip(1)} dev eth0" in out, out
    assert "UP" in out.split("lo:")[1].split("\n")[0], out
    assert f"{pod_ip(3)}\tbbhost" in out
    assert (pods.root / ".net" / br / pod_ip(3)).exists()
    pods("rm", "bb")
    assert not link_exists(pod_veth(3)) and not (pods.root / ".net" / br / pod_ip(3)).exists()
    assert link_exists(br)  # ba still uses it
    # The freed address is handed out again.
    pods.run("bc", "-d", *net, "localhost/pbox", "--exec", "sleep", "1000")
    assert pods.status("bc")["ip"] == pod_ip(3)
    pods("rm", "--force", "bc")
    pods("rm", "--force", "ba")
    assert not link_exists(pod_veth(2)) and not link_exists(br)
    assert not (pods.root / ".net" / br).exists()


def test_bridge_failure_after_network_setup_leaves_nothing(pods, bridge):
    br, subnet = bridge
    p = pods.run("bf", "--net", "bridge", "--bridge", br, "--subnet", subnet, "localhost/pbox",
                 "--exec", "/nonexistent", check=False)
    assert p.returncode == 1 and "nonexistent" in p.stderr
    assert leftovers(pods, "bf") == []
    assert not link_exists(pod_veth(2)) and not link_exists(br)


def test_bridge_that_exists_bare_is_configured(pods, bridge):
    br, subnet = bridge
    subprocess.run(["ip", "link", "add", "name", br, "type", "bridge"], check=True)
    pods.run("bd", "--net", "bridge", "--bridge", br, "--subnet", subnet, "localhost/pbox", "--user", "0",
             "--exec", "sh", "-c", f"ping -c1 -W10 {pod_ip(1)} >/dev/null && echo gw-ok")
    assert "gw-ok" in pods.logs("bd", "pbox")
    pods("rm", "bd")
    assert not link_exists(br)


USERNS_BASE = 1879048192  # a base of the test's own, away from other roots' default ranges


@pytest.fixture
def upods(build_dir, store):
    # Outside pytest's 0700 tmp tree: the apps' init runs as the pod's root (a high host uid),
    # which must get through the pods' root to its app's root file system.
    base = Path(tempfile.mkdtemp(prefix="keelpod-uns-"))
    base.chmod(0o711)
    p = Pods(build_dir, base / "pods", store["store"])
    # subid files of the test's own (empty: nothing listed for anyone), not the machine's.
    for var, name in (("KEEL_SUBUID_FILE", "subuid"), ("KEEL_SUBGID_FILE", "subgid")):
        (base / name).write_text("")
        p.env[var] = str(base / name)
    try:
        yield p
        p.cleanup()
        for name in p.made:
            assert leftovers(p, name) == [], leftovers(p, name)
    finally:
        p.cleanup()
        subprocess.run(["rm", "-rf", "--one-file-system", str(base)], check=False)


def test_user_ns_pod_maps_root_to_its_own_range(upods):
    vol = upods.root.parent / "vol"
    vol.mkdir()
    vol.chmod(0o777)
    script = ("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; "
              "stat -c '%u:%g %n' / /bin/busybox /etc/passwd; echo $$; "
              "touch /data/made && touch /rootfile && echo wrote; "
              "mount -t tmpfs none /mnt 2>&1; echo mount=$?; "
              "unshare -U true 2>&1; echo unshare=$?; readlink /proc/self/ns/user")
    upods.run("u1", "--user-ns", "--user-ns-base", str(USERNS_BASE), "--volume", f"data:{vol}",
              "localhost/pbox", "--user", "0", "--mount", "volume=data,target=/data",
              "--exec", "sh", "-c", script)
    assert upods.wait_app("u1", "pbox") == 0
    out = upods.logs("u1", "pbox").split("\n")
    assert out[0] == "0" and out[1] == "0", out
    assert out[2].split() == ["0", str(USERNS_BASE), "65536"], out
    assert out[3].split() == ["0", str(USERNS_BASE), "65536"], out
    # The image's files (unpacked as uid 0) and the root directory belong to root inside.
    assert out[4:7] == ["0:0 /", "0:0 /bin/busybox", "0:0 /etc/passwd"], out
    assert out[7] == "1" and out[8] == "wrote", out
    # The default seccomp profile still refuses mount and new namespaces.
    assert "mount=1" in out and "unshare=1" in out, out
    assert out[-2] != os.readlink("/proc/self/ns/user"), out
    # On the host: what the app made belongs to the mapped root.
    assert os.stat(vol / "made").st_uid == USERNS_BASE
    assert os.stat(vol / "made").st_gid == USERNS_BASE
    upper = upods.root / "u1" / "apps" / "pbox" / "upper"
    assert os.stat(upper / "rootfile").st_uid == USERNS_BASE
    doc = json.loads((upods.root / "u1" / "pod.json").read_text())
    assert doc["userns"] == {"base": USERNS_BASE, "size": 65536}
    assert (upods.root / ".userns" / str(USERNS_BASE)).read_text() == "u1\n"

    # A second pod gets the next range; rm frees each.
    upods.run("u2", "-d", "--user-ns", "--user-ns-base", str(USERNS_BASE), "localhost/pbox",
              "--exec", "sleep", "1000")
    st = upods.status("u2")
    pid = st["apps"][0]["pid"]
    m = Path(f"/proc/{pid}/uid_map").read_text().split()
    assert m == ["0", str(USERNS_BASE + 65536), "65536"]
    # enter joins the pod's user namespace too (the image's user is web, 1000).
    out = upods("enter", "u2", "sh", "-c", "id -u; cat /proc/self/uid_map").stdout.split("\n")
    assert out[0] == "1000" and out[1].split() == m, out
    upods("rm", "--force", "u2")
    assert not (upods.root / ".userns" / str(USERNS_BASE + 65536)).exists()
    upods("rm", "u1")
    assert not (upods.root / ".userns" / str(USERNS_BASE)).exists()
    assert leftovers(upods, "u1") == [] and leftovers(upods, "u2") == []


def test_user_ns_pod_that_fails_frees_its_range(upods):
    p = upods.run("u3", "--user-ns", "--user-ns-base", str(USERNS_BASE), "localhost/pbox", "---",
                  "localhost/nosuch", check=False)
    assert p.returncode == 1 and "unknown image" in p.stderr
    assert leftovers(upods, "u3") == []
    assert not any((upods.root / ".userns").glob("[0-9]*"))
    p = upods.run("u4", "--user-ns-base", "4294967295", "--user-ns", "localhost/pbox", check=False)
    assert p.returncode == 1 and "leaves no room" in p.stderr


def test_user_ns_ranges_follow_subuid_and_subgid(upods):
    """Ranges /etc/subuid and /etc/subgid give root are used when there are any; otherwise
    ranges other users are given are skipped; no range left is a clear error."""
    su, sg = Path(upods.env["KEEL_SUBUID_FILE"]), Path(upods.env["KEEL_SUBGID_FILE"])
    b = USERNS_BASE
    both = f"# comment\nalice:100000:65536\nroot:{b}:131072\n0:{b + 4 * 65536}:100\n"
    su.write_text(both)
    sg.write_text(both)
    try:
        upods.run("s1", "-d", "--user-ns", "localhost/pbox", "--exec", "sleep", "1000")
        upods.run("s2", "-d", "--user-ns", "localhost/pbox", "--exec", "sleep", "1000")
        assert json.loads((upods.root / "s1" / "pod.json").read_text())["userns"]["base"] == b
        assert json.loads((upods.root / "s2" / "pod.json").read_text())["userns"]["base"] == b + 65536
        p = upods.run("s3", "--user-ns", "localhost/pbox", check=False)
        assert p.returncode == 1 and "no free range of 65536 ids" in p.stderr and "give root" in p.stderr, p.stderr
        assert "2 in use by other pods" in p.stderr, p.stderr
        assert leftovers(upods, "s3") == []
        upods("rm", "--force", "s2")
        # A base above root's ranges leaves none.
        p = upods.run("s4", "--user-ns", "--user-ns-base", str(b + 2 * 65536), "localhost/pbox", check=False)
        assert p.returncode == 1 and "above --user-ns-base" in p.stderr, p.stderr
        # Only one of the two files lists root: refused (both must).
        sg.write_text(f"alice:{b}:65536\n")
        p = upods.run("s5", "--user-ns", "localhost/pbox", check=False)
        assert p.returncode == 1 and "to both files" in p.stderr, p.stderr
        upods("rm", "--force", "s1")
        # keel-pod's own name counts like root's; podman's "containers" is someone else's.
        su.write_text(f"containers:{b}:65536\nkeel-pod:{b + 65536}:65536\n")
        sg.write_text(f"keel-pod:{b}:131072\n")
        upods.run("s7", "--user-ns", "localhost/pbox", "--exec", "true")
        assert json.loads((upods.root / "s7" / "pod.json").read_text())["userns"]["base"] == b + 65536
        upods("rm", "s7")
        # Nothing for root: from the base up, skipping what other users have.
        su.write_text(f"alice:{b}:65536\n")
        sg.write_text(f"bob:{b + 65536}:10\n")
        upods.run("s6", "-d", "--user-ns", "--user-ns-base", str(b), "localhost/pbox", "--exec", "sleep", "1000")
        assert json.loads((upods.root / "s6" / "pod.json").read_text())["userns"]["base"] == b + 2 * 65536
        st = upods.status("s6")
        m = Path(f"/proc/{st['apps'][0]['pid']}/uid_map").read_text().split()
        assert m == ["0", str(b + 2 * 65536), "65536"]
        upods("rm", "--force", "s6")
    finally:
        upods.cleanup()
    assert not any((upods.root / ".userns").glob("[0-9]*"))


def nft_publish():
    """The elements of keel's publish map, or None when its table does not exist."""
    p = subprocess.run(["nft", "-j", "list", "map", "inet", "keel-pod", "publish"], capture_output=True,
                       text=True)
    if p.returncode != 0:
        return None
    for item in json.loads(p.stdout)["nftables"]:
        if "map" in item:
            return item["map"].get("elem", [])
    return []


def published_to(ip):
    return [e for e in (nft_publish() or []) if e[1]["concat"][0] == ip]


def fetch(url, timeout=30):
    import urllib.request
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def client_netns():
    """A network namespace of the test's own, linked to the host by a veth pair (CLIENT_NET/30)."""
    tag = os.getpid() % 100000
    a, b, c, d = map(int, CLIENT_NET.split("."))
    host_addr, ns_addr = f"{a}.{b}.{c}.{d + 1}", f"{a}.{b}.{c}.{d + 2}"
    ns, host_end, ns_end = f"kpc{tag}", f"kpch{tag}", f"kpcn{tag}"
    cmds = [["ip", "netns", "add", ns],
            ["ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end],
            ["ip", "link", "set", ns_end, "netns", ns],
            ["ip", "addr", "add", f"{host_addr}/30", "dev", host_end],
            ["ip", "link", "set", host_end, "up"],
            ["ip", "-n", ns, "addr", "add", f"{ns_addr}/30", "dev", ns_end],
            ["ip", "-n", ns, "link", "set", ns_end, "up"],
            ["ip", "-n", ns, "link", "set", "lo", "up"]]
    try:
        for c in cmds:
            subprocess.run(c, check=True, capture_output=True)
        yield ns, host_addr
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_publish_reaches_the_pod_from_localhost_and_another_netns(pods, bridge, client_netns):
    from keelharness.ports import free_port
    br, subnet = bridge
    ns, host_addr = client_netns
    net = ("--net", "bridge", "--bridge", br, "--subnet", subnet)
    hport = free_port()
    serve = "mkdir -p /tmp/w && echo hello-published > /tmp/w/i && exec httpd -f -p 8080 -h /tmp/w"
    try:
        pods.run("pub", "-d", *net, "--publish", f"{hport}:8080", "-p", f"{hport}:8053/udp",
                 "localhost/pbox", "--exec", "sh", "-c", serve)
        ip = pods.status("pub")["ip"]
        assert pods.status("pub")["ports"] == [f"{hport}:8080/tcp", f"{hport}:8053/udp"]
        assert sorted((e[0]["concat"][0], e[0]["concat"][1], e[1]["concat"][1]) for e in published_to(ip)) == \
            [("tcp", hport, 8080), ("udp", hport, 8053)]
        assert Path(f"/proc/sys/net/ipv4/conf/{br}/route_localnet").read_text().strip() == "1"
        # From the host's loopback (route_localnet + masquerade) and by name.
        assert fetch(f"http://127.0.0.1:{hport}/i") == "hello-published\n"
        assert fetch(f"http://localhost:{hport}/i") == "hello-published\n"
        # From another network namespace, through the host's address on its link.
        client = ("import sys, urllib.request\n"
                  "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode(), end='')")
        out = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", client,
                              f"http://{host_addr}:{hport}/i"], capture_output=True, text=True, timeout=60)
        assert out.stdout == "hello-published\n", out.stderr
        # A host port can be published once; the second pod fails and leaves nothing.
        p = pods.run("pub2", *net, "--publish", f"{hport}:80", "localhost/pbox", "--exec", "true", check=False)
        assert p.returncode == 1 and f"host port {hport}/tcp is already published" in p.stderr, p.stderr
        assert leftovers(pods, "pub2") == [] and len(published_to(ip)) == 2
        # A port something on the host listens on is refused too.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            busy = s.getsockname()[1]
            p = pods.run("pub3", *net, "-p", f"{busy}:80", "localhost/pbox", "--exec", "true", check=False)
            assert p.returncode == 1 and "in use on the host" in p.stderr, p.stderr
        # Bad flags.
        for bad in ("80", "0:80", "80:70000", "80:80/sctp", "x:80"):
            p = pods.run("pub4", *net, "-p", bad, "localhost/pbox", check=False)
            assert p.returncode == 2 and "invalid --publish" in p.stderr
        p = pods.run("pub4", "-p", "8080:80", "localhost/pbox", check=False)
        assert p.returncode == 1 and "--publish needs --net bridge" in p.stderr
        # A second pod whose monitor is SIGKILLed: `pod rm` still withdraws its ports.
        hport2 = free_port()
        pods.run("pubk", "-d", *net, "-p", f"{hport2}:8080", "localhost/pbox", "--exec", "sleep", "1000")
        ipk = pods.status("pubk")["ip"]
        assert len(published_to(ipk)) == 1
        os.kill(int((pods.root / "pubk" / "monitor").read_text().split()[0]), 9)
        pods("rm", "--force", "pubk")
        assert published_to(ipk) == [] and leftovers(pods, "pubk") == []
        assert len(published_to(ip)) == 2
        pods("rm", "--force", "pub")
        assert published_to(ip) == []
        with pytest.raises(OSError):
            import urllib.request
            urllib.request.urlopen(f"http://127.0.0.1:{hport}/i", timeout=3)
        # A pod that fails after its ports were published loses them again.
        p = pods.run("pubf", *net, "-p", f"{hport}:80", "localhost/pbox", "--exec", "/nonexistent", check=False)
        assert p.returncode == 1 and leftovers(pods, "pubf") == []
        assert published_to(ip) == []
    finally:
        pods.cleanup()
    # keel's table goes with its last port (unless pods of other roots still publish some).
    assert nft_publish() is None or all(e[1]["concat"][0].startswith(f"{POD_NET}.") is False for e in nft_publish())
    assert not link_exists(br)


def test_logs_are_rotated_at_the_max_size(pods):
    """--log-max-size: an app's log never grows past it; the part before goes to log.1 (one
    rotated file is kept) and `pod logs` shows log.1 then log."""
    script = "i=0; while [ $i -lt 600 ]; do printf 'line %05d %s\\n' $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done"
    expected = "".join(f"line {i:05d} {'x' * 32}\n" for i in range(600))  # 26400 bytes
    pods.run("lg", "--log-max-size", "8k", "localhost/pbox", "--exec", "sh", "-c", script)
    app = pods.root / "lg" / "apps" / "pbox"
    cur, old = (app / "log").read_bytes(), (app / "log.1").read_bytes()
    assert 0 < len(cur) <= 8192 and len(old) == 8192
    assert not (app / "log.2").exists()
    shown = pods.logs("lg", "pbox")
    assert shown == (old + cur).decode() and expected.endswith(shown)
    assert len(shown) == len(expected) - 2 * 8192  # 26400 bytes: rotated at 8k, 16k and 24k
    for bad in ("1k", "lots"):
        p = pods.run("lg2", "--log-max-size", bad, "localhost/pbox", check=False)
        assert p.returncode == 2 and "invalid --log-max-size" in p.stderr
    # Without the flag the default (8 MiB) leaves small logs alone.
    pods.run("lg3", "localhost/pbox", "--exec", "sh", "-c", script)
    assert pods.logs("lg3", "pbox") == expected
    assert not (pods.root / "lg3" / "apps" / "pbox" / "log.1").exists()
