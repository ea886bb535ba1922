"""Pretend hosts for multi-node tests: network namespaces on a private bridge.

Keel is a cluster system, so its tests need several machines that can talk
to each other and that we can partition at will.  Network namespaces give us
that on one kernel.  `TestHosts(3)` builds:

    <prefix>-h1  eth0 10.77.K.1/24 --+
    <prefix>-h2  eth0 10.77.K.2/24 --+-- h1 h2 h3 -- br0    (in <prefix>-sw)
    <prefix>-h3  eth0 10.77.K.3/24 --+

The rule that shapes this layout: the test must add nothing to the root
network namespace (the real machine) and no packet may leave the machine.
So even the bridge lives in a namespace of its own, the "switch", and each
veth pair is created directly between a host namespace and the switch.
Nothing is routed anywhere else, so the 10.77.K.0/24 addresses can never
reach a real network.  Deleting the namespaces deletes the veths and the
bridge with them, which makes cleanup one command per namespace.

Partitions are done with nftables inside each host: a set `blocked` of peer
addresses whose packets are dropped on input and output.  Cutting a from b
puts b's address into a's set and a's into b's.

Namespace names are `<root><pid>-<k>-sw` / `<root><pid>-<k>-h<i>`, with the
pid of the creating process, so `sweep_stale` can tell which leftovers
belong to processes that died without cleaning up.
"""

import atexit
import ctypes
import ipaddress
import itertools
import os
import re
import shutil
import subprocess
import threading
from typing import Callable, TypeVar

IP = shutil.which("ip") or "/usr/sbin/ip"
NFT = shutil.which("nft") or "/usr/sbin/nft"
PREFIX_ROOT = "keel"
HOSTS_NETWORK = ipaddress.ip_network("10.77.0.0/16")  # all TestHosts addresses

_PARTITION_RULES = """
table inet keel_part {
    set blocked { type ipv4_addr; }
    chain input {
        type filter hook input priority 0; policy accept;
        ip saddr @blocked drop
    }
    chain output {
        type filter hook output priority 0; policy accept;
        ip daddr @blocked drop
    }
}
"""

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_instance_numbers = itertools.count()
_open_instances: set["TestHosts"] = set()

T = TypeVar("T")


class HostsError(Exception):
    """A namespace, link or firewall command failed."""


def netns_unavailable_reason() -> str | None:
    """Why namespace tests cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"needs the `{tool}` command"
    return None


def netns_argv(netns: str, argv) -> list[str]:
    """`argv` prefixed so that it runs inside network namespace `netns`.

    `ip netns exec` execs the command, so the process keeps its PID: a PID
    taken from Popen is the command's own, safe to signal.
    """
    return [IP, "netns", "exec", netns, *map(str, argv)]


def call_in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Call `fn()` on a throwaway thread that has joined network namespace `netns`.

    Joining a network namespace (setns) affects only the calling thread, so
    a short-lived thread lets this process open sockets inside a test host
    (for example to probe a daemon's port) without changing anything else.
    """
    outcome: dict = {}

    def body():
        try:
            enter_netns(netns)
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=body, name=f"netns {netns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def enter_netns(netns: str) -> None:
    """Move the *calling thread* into network namespace `netns` (setns), for good.

    Only for threads made for the purpose (a client thread of a test that
    talks to one test host); anything else wants call_in_netns.  Refused on
    the main thread, which must stay in the root namespace.
    """
    if threading.current_thread() is threading.main_thread():
        raise RuntimeError("enter_netns on the main thread: use call_in_netns")
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({netns}): {os.strerror(errno)}")
    finally:
        os.close(fd)


def in_hosts_network(host: str) -> bool:
    """Is `host` an address that only exists inside TestHosts namespaces?

    From the root namespace such an address is routed to the real network,
    so anything aimed at it from there would leave the machine.
    """
    try:
        return ipaddress.ip_address(host) in HOSTS_NETWORK
    except ValueError:
        return False


def list_netns() -> list[str]:
    """Names of all named network namespaces (`ip netns list`)."""
    out = _run([IP, "netns", "list"])
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def sweep_stale(prefix_root: str = PREFIX_ROOT) -> list[str]:
    """Delete namespaces left behind by harness processes that have died.

    Only names of the harness's own pattern are considered, and only those
    whose creating pid is no longer running.  Returns the deleted names.
    """
    pattern = re.compile(rf"{re.escape(prefix_root)}(\d+)-\d+-(?:sw|h\d+)")
    removed = []
    for name in list_netns():
        match = pattern.fullmatch(name)
        if match and not _pid_alive(int(match.group(1))):
            _delete_netns(name)
            removed.append(name)
    return removed


class Host:
    """One pretend host: a network namespace with an address on the bridge."""

    def __init__(self, index: int, name: str, addr: str):
        self.index = index  # 1-based, as in the name "...-h<index>"
        self.name = name  # the network namespace
        self.addr = addr  # IPv4 address of its eth0

    def exec_argv(self, argv) -> list[str]:
        """`argv` prefixed to run inside this host (usable with Daemon)."""
        return netns_argv(self.name, argv)

    def run(self, argv, **kwargs) -> subprocess.CompletedProcess:
        """subprocess.run(argv) inside this host."""
        return subprocess.run(self.exec_argv(argv), **kwargs)

    def popen(self, argv, **kwargs) -> subprocess.Popen:
        """subprocess.Popen(argv) inside this host."""
        return subprocess.Popen(self.exec_argv(argv), **kwargs)

    def call(self, fn: Callable[[], T]) -> T:
        """Call `fn()` in this process, with sockets opened inside this host."""
        return call_in_netns(self.name, fn)

    def __repr__(self):
        return f"<Host {self.name} {self.addr}>"


class TestHosts:
    """N hosts joined by one switch; partitionable; removed by close().

    Behaves as a sequence of `Host`: `h1, h2, h3 = TestHosts(3)`.
    """

    __test__ = False  # a harness class, not a test class for pytest

    def __init__(self, n: int, prefix: str | None = None):
        if not 1 <= n <= 250:
            raise ValueError("between 1 and 250 hosts, please")
        number = next(_instance_numbers)
        self.prefix = prefix or f"{PREFIX_ROOT}{os.getpid()}-{number}"
        self.switch = f"{self.prefix}-sw"
        self.hosts: list[Host] = []
        self._subnet = f"10.77.{number % 256}"
        self._owner_pid = os.getpid()
        self._namespaces: list[str] = []  # everything close() must delete
        self._cuts: set[frozenset] = set()
        _open_instances.add(self)
        try:
            self._build(n)
        except BaseException:
            self.close()
            raise

    def _build(self, n: int) -> None:
        sw = self._add_netns(self.switch)
        _run([IP, "-n", sw, "link", "add", "br0", "type", "bridge"])
        _run([IP, "-n", sw, "link", "set", "br0", "up"])
        for i in range(1, n + 1):
            host = Host(i, self._add_netns(f"{self.prefix}-h{i}"), f"{self._subnet}.{i}")
            ns, port = host.name, f"h{i}"
            _run([IP, "-n", ns, "link", "add", "eth0", "type", "veth",
                  "peer", "name", port, "netns", sw])
            _run([IP, "-n", sw, "link", "set", port, "master", "br0", "up"])
            _run([IP, "-n", ns, "link", "set", "lo", "up"])
            _run([IP, "-n", ns, "addr", "add", f"{host.addr}/24", "dev", "eth0"])
            _run([IP, "-n", ns, "link", "set", "eth0", "up"])
            _run(host.exec_argv([NFT, "-f", "-"]), stdin=_PARTITION_RULES)
            self.hosts.append(host)

    def _add_netns(self, name: str) -> str:
        _run([IP, "netns", "add", name])
        self._namespaces.append(name)  # only once it is really ours
        return name

    # -- sequence of hosts -------------------------------------------------

    def __getitem__(self, i):
        return self.hosts[i]

    def __iter__(self):
        return iter(self.hosts)

    def __len__(self):
        return len(self.hosts)

    @property
    def namespaces(self) -> list[str]:
        """Every namespace this instance created and has not yet deleted."""
        return list(self._namespaces)

    # -- partitions ----------------------------------------------------------

    def cut(self, a: Host, b: Host) -> None:
        """Drop all traffic between a and b, both ways; others unaffected."""
        self._check(a, b)
        if a is b:
            raise ValueError("cannot cut a host from itself")
        self._blocked_set(a, "add", b.addr)
        self._blocked_set(b, "add", a.addr)
        self._cuts.add(frozenset((a, b)))

    def heal(self, a: Host, b: Host) -> None:
        """Undo cut(a, b); harmless if they were not cut."""
        self._check(a, b)
        if frozenset((a, b)) in self._cuts:
            self._blocked_set(a, "delete", b.addr)
            self._blocked_set(b, "delete", a.addr)
            self._cuts.discard(frozenset((a, b)))

    def isolate(self, a: Host) -> None:
        """Cut a from every other host."""
        for other in self.hosts:
            if other is not a:
                self.cut(a, other)

    def heal_all(self) -> None:
        """Remove every cut."""
        for host in self.hosts:
            _run(host.exec_argv([NFT, "flush", "set", "inet", "keel_part", "blocked"]))
        self._cuts.clear()

    def link_down(self, a: Host) -> None:
        """Unplug a's cable: set its eth0 down."""
        self._check(a)
        _run([IP, "-n", a.name, "link", "set", "eth0", "down"])

    def link_up(self, a: Host) -> None:
        """Plug a's cable back in."""
        self._check(a)
        _run([IP, "-n", a.name, "link", "set", "eth0", "up"])

    def _blocked_set(self, host: Host, verb: str, addr: str) -> None:
        _run(host.exec_argv([NFT, verb, "element", "inet", "keel_part", "blocked",
                             "{", addr, "}"]))

    def _check(self, *hosts: Host) -> None:
        for host in hosts:
            if host not in self.hosts:
                raise ValueError(f"{host!r} is not one of {self.prefix}'s hosts")

    # -- cleanup -------------------------------------------------------------

    def close(self) -> None:
        """Delete every namespace made here.  Idempotent; never raises.

        A forked child inherits this object but not the duty to clean up,
        so only the creating process deletes anything.
        """
        if os.getpid() != self._owner_pid:
            return
        _open_instances.discard(self)
        while self._namespaces:
            _delete_netns(self._namespaces.pop())  # hosts first, switch last

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return f"<TestHosts {self.prefix} x{len(self.hosts)}>"


def _run(argv: list[str], stdin: str | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise HostsError(f"{' '.join(argv)} failed ({proc.returncode}): "
                         f"{proc.stderr.strip()}")
    return proc.stdout


def _delete_netns(name: str) -> None:
    subprocess.run([IP, "netns", "delete", name], capture_output=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@atexit.register
def _close_forgotten() -> None:
    """Last resort for instances nobody closed (crashes go to sweep_stale)."""
    for hosts in list(_open_instances):
        hosts.close()
