"""A tracefs mount irqlab made is undone, even when the run that made it was killed (root)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from servers import missing_tool

pytestmark = [pytest.mark.live, pytest.mark.root]
REPO = Path(__file__).resolve().parents[2]

# Runs in a private mount namespace (the host's own tracefs mount is never touched).
DRIVER = r"""
import json, os, signal, subprocess, sys
from pathlib import Path

def mounts():
    return [l.split()[1] for l in Path("/proc/self/mounts").read_text().splitlines() if l.split()[2] == "tracefs"]

for m in mounts():
    subprocess.run(["umount", m], check=True)
marker = Path(os.environ["IRQLAB_RUN_DIR"]) / "tracefs-mount"
out = {"before": mounts()}
child = subprocess.Popen([sys.executable, "-c",
    "import time\nfrom irqlab.tracing.session import TraceSession\n"
    "s = TraceSession(events=('irq:softirq_entry',)).__enter__()\nprint('up', flush=True)\ntime.sleep(60)"],
    stdout=subprocess.PIPE, text=True)
out["child"] = child.stdout.readline().strip()
child.send_signal(signal.SIGKILL)
child.wait()
out["after_kill"] = mounts()
out["marker_after_kill"] = marker.exists()
again = subprocess.run([sys.executable, "-m", "irqlab", "trace", "--backend", "tracefs", "-d", "0.2", "--json"],
                       capture_output=True, text=True)
out["rc"], out["stderr"] = again.returncode, again.stderr
out["after_next_run"] = mounts()
out["marker_after_next_run"] = marker.exists()
print(json.dumps(out))
"""


def _in_private_mount_namespace(driver: str, tmp_path: Path) -> dict:
    """Run a driver script in its own mount namespace (the host's mounts are never touched),
    with its own run directory for the mount record; its last stdout line is its JSON."""
    if shutil.which("unshare") is None:
        missing_tool("unshare (util-linux)")
    env = {**os.environ, "IRQLAB_RUN_DIR": str(tmp_path / "run")}
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c", driver],
                       capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_a_mount_left_by_a_killed_run_is_undone_by_the_next_run(tmp_path):
    out = _in_private_mount_namespace(DRIVER, tmp_path)
    assert out["before"] == [] and out["child"] == "up"
    # SIGKILL gives no chance to clean up: the mount and its record stay...
    assert out["after_kill"] == ["/sys/kernel/tracing"] and out["marker_after_kill"]
    # ...until the next run, which adopts the mount of the dead run and undoes it when done.
    assert out["rc"] == 0, out["stderr"]
    assert out["after_next_run"] == [] and not out["marker_after_next_run"], out


# Two runs overlap: the first mounts and ends while the second still traces on the mount.
OVERLAP = r"""
import json, os, subprocess, sys
from pathlib import Path

def mounts():
    return [l.split()[1] for l in Path("/proc/self/mounts").read_text().splitlines() if l.split()[2] == "tracefs"]

for m in mounts():
    subprocess.run(["umount", m], check=True)
RUN = ("import sys\nfrom irqlab.tracing.session import TraceSession\n"
       "with TraceSession(events=('irq:softirq_entry',)) as s:\n"
       "    print('up', s.instance.tracefs.mounted_here, flush=True)\n    sys.stdin.readline()\n"
       "print('closed', flush=True)\n")
out = {"before": mounts()}
first = subprocess.Popen([sys.executable, "-c", RUN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
out["first"] = first.stdout.readline().split()
second = subprocess.Popen([sys.executable, "-c", RUN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
out["second"] = second.stdout.readline().split()
first.stdin.write("\n"); first.stdin.flush(); out["first_end"] = first.stdout.readline().strip(); first.wait()
out["after_first"] = mounts()
second.stdin.write("\n"); second.stdin.flush(); out["second_end"] = second.stdout.readline().strip(); second.wait()
out["after_second"] = mounts()
out["marker"] = (Path(os.environ["IRQLAB_RUN_DIR"]) / "tracefs-mount").exists()
print(json.dumps(out))
"""


def test_when_the_run_that_mounted_ends_first_the_last_run_to_end_unmounts(tmp_path):
    out = _in_private_mount_namespace(OVERLAP, tmp_path)
    assert out["before"] == []
    assert out["first"] == ["up", "True"] and out["second"] == ["up", "False"]  # the first mounted
    # The first could not unmount (the second's instance holds it: EBUSY), so it stays...
    assert out["first_end"] == "closed" and out["after_first"] == ["/sys/kernel/tracing"]
    # ...and the second, ending last, undoes the dead run's mount.
    assert out["second_end"] == "closed" and out["after_second"] == [] and not out["marker"], out
