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

import socket
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
