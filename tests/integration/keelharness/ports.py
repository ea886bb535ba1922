"""Free TCP ports for daemons under test.

A port is picked at random below the kernel's ephemeral range
(net.ipv4.ip_local_port_range) and checked by binding it; the socket is
closed again and the number handed to a daemon.  Below that range, because
connect() takes its local port from the ephemeral range: a port from there
(what binding to port 0 returns) could become the source port of any client
connection on the machine - this run's thousands of test clients, other test
runs - before the daemon binds it, or while a daemon is down for a restart,
and the daemon would then fail with EADDRINUSE.  Another process could still
bind the same number in between; picking at random from some 20000 numbers
keeps that unlikely.

What we *can* rule out is this process handing out the same number twice:
every issued port is remembered and never issued again by this process.
"""

import random
import socket
import subprocess
import threading

_issued: set[int] = set()
_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on `host` and new to this process."""
    with _lock:
        for _ in range(1000):
            port = _unused_port(host)
            if port not in _issued:
                _issued.add(port)
                return port
    raise RuntimeError(f"no fresh free TCP port found on {host}")


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """Return `n` distinct free TCP ports (see `free_port`)."""
    return [free_port(host) for _ in range(n)]


_LOWEST = 10000
_rng = random.Random()  # seeded from the OS: concurrent runs pick different numbers


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(family, host: str, port: int) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _unused_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    low = _ephemeral_low()
    if low - _LOWEST >= 1000:
        for _ in range(200):
            port = _rng.randrange(_LOWEST, low)
            if _bindable(family, host, port):
                return port
    # No room below the ephemeral range on this machine: let the kernel choose.
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def unused_subnet(prefix: str) -> str:
    """The "a.b.c" of a /24 under prefix "a.b" that no address or route of the root namespace
    uses yet, picked at random, for tests that make bridges there: other test runs on the
    same machine make bridges of their own, and two bridges with one subnet (and the veth
    names derived from its addresses) would collide."""
    used = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                          text=True, check=True).stdout
    used += subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    third = [n for n in range(1, 255) if f" {prefix}.{n}." not in " " + used.replace("/", " ")]
    assert third, f"every {prefix}.N.0/24 is in use"
    return f"{prefix}.{random.choice(third)}"
