"""Run ../shared/tools/load.sh for a bounded time around a test (root, live)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LOAD_SH = Path(os.environ.get("IRQLAB_LOAD_SH", REPO.parent / "shared" / "tools" / "load.sh"))


def require_load() -> Path:
    if os.geteuid() != 0:
        pytest.skip("needs root (load.sh makes network namespaces)")
    if not LOAD_SH.is_file():
        pytest.skip(f"{LOAD_SH} not present")
    for tool in ("iperf3", "ip", "timeout"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (bash scripts/test.sh installs it)")
    return LOAD_SH


@contextmanager
def load(*args: str, duration: int = 10, warmup_s: float = 2.0):
    """Start load.sh with args for `duration` seconds; yield after warm-up; always stop it."""
    script = require_load()
    proc = subprocess.Popen(
        ["bash", str(script), "-q", "-d", str(duration), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        time.sleep(warmup_s)
        if proc.poll() is not None:
            pytest.fail(f"load.sh exited early: {proc.stdout.read()}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()  # load.sh's EXIT trap kills its children and deletes the netns
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
