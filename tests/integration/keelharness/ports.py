"""Free TCP ports for daemons under test.

We let the kernel choose: binding to port 0 yields a port nobody is using
right now.  The socket is closed again and the number handed to a daemon,
so in principle another process could grab it in between; for tests on one
machine that risk is small and accepted.

What we *can* rule out is this process handing out the same number twice.
The kernel readily returns a port that was just released, so two daemons
asking in quick succession could otherwise collide.  Every issued port is
therefore remembered and never issued again by this process.
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


def _unused_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
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
