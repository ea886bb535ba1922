"""Fixtures for Keel's integration tests.

  build_dir   where the meson build put Keel's binaries ($KEEL_BUILD_DIR,
              default <repo>/build)
  tmp_logs    a per-test directory for daemon logs
  daemons     daemons.start(name, argv, ready_tcp=..., ...) -> ready Daemon;
              every daemon is stopped (by PID) when the test ends, pass or fail
  test_hosts  test_hosts(n) -> TestHosts; always closed when the test ends
  init        init(pid1=False, cgroup_v1=False) -> KeelInit (keelharness/init.py); each is
              shut down and its cgroups swept by PID when the test ends

When a test fails, the logs of the daemons it started are added to its
failure report.  Tests marked `@pytest.mark.netns` (or using test_hosts) are
skipped with a reason where namespaces cannot be made (not root, no ip/nft).
"""

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from keelharness import Daemons, TestHosts, netns_unavailable_reason, sweep_stale  # noqa: E402

LOG_LINES_IN_REPORT = 200
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
_DAEMONS = pytest.StashKey[Daemons]()
_LOGS_REPORTED = pytest.StashKey[bool]()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "netns: needs root plus the ip and nft commands (network namespaces)")
    # A crashed earlier run may have left namespaces behind; clear them now.
    if netns_unavailable_reason() is None:
        sweep_stale()


def pytest_runtest_setup(item):
    if item.get_closest_marker("netns"):
        reason = netns_unavailable_reason()
        if reason:
            pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On the first failing phase of a test, attach its daemons' logs."""
    outcome = yield
    report = outcome.get_result()
    daemons = item.stash.get(_DAEMONS, None)
    if report.failed and daemons and not item.stash.get(_LOGS_REPORTED, False):
        item.stash[_LOGS_REPORTED] = True
        for daemon in daemons:
            report.sections.append((f"daemon {daemon.name} log ({daemon.log_path})",
                                    daemon.log_tail(LOG_LINES_IN_REPORT)))


@pytest.fixture(scope="session")
def build_dir() -> Path:
    return Path(os.environ.get("KEEL_BUILD_DIR", REPO / "build"))


@pytest.fixture
def tmp_logs(tmp_path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    return logs


@pytest.fixture
def daemons(request, tmp_logs):
    group = Daemons(tmp_logs)
    request.node.stash[_DAEMONS] = group
    yield group
    group.stop_all()
    # Under a sanitizer build (make test-asan) a daemon reports memory errors, undefined
    # behaviour and leaks in its log: any such report fails the test that ran it.
    for daemon in group:
        text = daemon.log_text()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                pytest.fail(f"daemon {daemon.name}: sanitizer report ({marker!r}) in {daemon.log_path}")


@pytest.fixture
def init(build_dir, tmp_path, daemons):
    from keelharness.init import KeelInit
    made = []

    def make(pid1=False, cgroup_v1=False):
        k = KeelInit(build_dir, tmp_path / f"k{len(made)}", daemons, pid1=pid1, cgroup_v1=cgroup_v1)
        made.append(k)
        return k

    yield make
    leftovers = []
    for k in made:
        leftovers += k.close()
    assert not leftovers, f"processes left in the units' cgroups after shutdown: {leftovers}"


@pytest.fixture
def test_hosts():
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    made = []

    def make(n: int, prefix: str | None = None) -> TestHosts:
        hosts = TestHosts(n, prefix)
        made.append(hosts)
        return hosts

    yield make
    for hosts in reversed(made):
        hosts.close()
