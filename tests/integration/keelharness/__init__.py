"""Keel's integration-test harness.

Small, dependency-free helpers (standard library only) for tests that run
real Keel daemons:

* `ports`  - free TCP ports, never the same one twice per process, and unused
             /24 subnets for bridges;
* `daemon` - start a process, wait until it is ready, stop it by PID, and
             keep its output in a log file for failure reports;
* `hosts`  - several pretend hosts (network namespaces on a private bridge)
             with partitions, all invisible to the real network;
* `machine` - a machine-wide lock, for tests of programs whose state is one
             per machine (several test runs may share the machine);
* `linearizability` - a checker for histories of a register with
             compare-and-swap (Wing & Gong's search with Lowe's memoisation).

The pytest fixtures built on these live in tests/integration/conftest.py.
"""

from .daemon import Daemon, DaemonError, Daemons
from .hosts import (Host, HostsError, TestHosts, call_in_netns, enter_netns, list_netns,
                    netns_argv, netns_unavailable_reason, sweep_stale)
from .machine import machine_lock
from .ports import free_port, free_ports, unused_subnet

__all__ = [
    "Daemon", "DaemonError", "Daemons",
    "Host", "HostsError", "TestHosts", "call_in_netns", "enter_netns", "list_netns",
    "netns_argv", "netns_unavailable_reason", "sweep_stale",
    "free_port", "free_ports", "unused_subnet", "machine_lock",
]
