"""The on-disk journal's size limits with a real keel-init: --journal-max-use and
--journal-max-file-size hold while a service writes far more than that, the oldest files go
first so the newest lines survive, and `keelctl journal --disk-usage` / `--vacuum-size=`.
"""

import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="keel-init tests need root (cgroups)")

PY = "/usr/bin/python3"
MAX_USE = 512 * 1024
MAX_FILE = 64 * 1024


def journal_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.iterdir() if p.name.startswith("journal-"))


def test_size_limits_hold_and_the_newest_lines_survive(init, tmp_path):
    k = init()
    k.start(extra=("--journal-max-use", "512K", "--journal-max-file-size", "64K"))
    n = 30000  # ~3 MiB of output: six times the limit
    k.unit("chatty.service", "[Service]\nType=oneshot\n"
                             f"ExecStart={PY} -c 'for i in range({n}): print(\"line %%06d \" %% i + \"x\" * 80)'\n")
    assert k.ctl("daemon-reload").returncode == 0
    assert k.ctl("start", "chatty.service").returncode == 0
    jd = k.journal_dir
    last = f"line {n - 1:06d}"
    k.wait(lambda: last in k.journal("-u", "chatty.service", "-n", "3", "-o", "cat").stdout,
           timeout=60, what="the last line in the journal")
    files = [p for p in jd.iterdir() if p.name.startswith("journal-") and p.name.endswith(".kj")]
    assert len(files) >= 2, files  # it rotated
    assert all(p.stat().st_size <= MAX_FILE for p in files), [(p.name, p.stat().st_size) for p in files]
    assert journal_bytes(jd) <= MAX_USE, journal_bytes(jd)
    out = k.journal("-u", "chatty.service", "-o", "cat", "-n", "all").stdout
    kept = [int(m) for m in re.findall(r"^line (\d+)", out, re.M)]
    # the newest lines, contiguous up to the last one; the oldest were deleted
    assert kept and kept[-1] == n - 1 and kept[0] > 0, (kept[:3], kept[-3:])
    assert kept == list(range(kept[0], n)), "a gap in the newest lines"

    # --disk-usage: what the files take (allocated blocks)
    r = k.journal("--disk-usage")
    assert r.returncode == 0, r.stderr
    m = re.match(r"Archived and active journals take up ([\d.]+)([BKMG]) in the file system\.", r.stdout)
    assert m, r.stdout
    used = float(m.group(1)) * {"B": 1, "K": 1024, "M": 1 << 20, "G": 1 << 30}[m.group(2)]
    assert 0 < used <= MAX_USE + 64 * 4096

    # --vacuum-size=: the oldest files go, the newest (keel-init's) stays with the last line
    r = k.journal("--vacuum-size=100K")
    assert r.returncode == 0 and "Vacuuming done, freed" in r.stderr, (r.stdout, r.stderr)
    newest = max(p.stat().st_size for p in jd.iterdir() if p.name.endswith(".kj"))
    assert journal_bytes(jd) <= max(100 * 1024, newest) + 64 * 1024
    assert last in k.journal("-u", "chatty.service", "-n", "3", "-o", "cat").stdout
