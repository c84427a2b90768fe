"""Real servers in live tests (Prometheus, irqlab export): wait for them, stop them, and never
let a missing binary turn a check into a skip when the suite runs as root."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

PROMETHEUS = "/usr/bin/prometheus"


def require_prometheus() -> str:
    """The prometheus binary; as root a missing one fails (bash scripts/test.sh installs it)."""
    if not os.access(PROMETHEUS, os.X_OK):
        if os.geteuid() == 0:
            pytest.fail(f"{PROMETHEUS} not installed (bash scripts/test.sh installs it)")
        pytest.skip("prometheus not installed and not root to install it")
    return PROMETHEUS


def wait_for(what: str, fn, timeout_s: float = 40.0):
    """Call fn every 0.5 s until it returns something true; fail with the last answer."""
    end, last = time.monotonic() + timeout_s, None
    while time.monotonic() < end:
        try:
            last = fn()
            if last:
                return last
        except OSError as exc:  # not up yet
            last = exc
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; last: {last}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def missing_tool(what: str) -> None:
    """A tool the test drives is not installed: as root (CI) that is a broken set-up and fails,
    since bash scripts/test.sh installs every one of them; without root, skip."""
    if os.geteuid() == 0:
        pytest.fail(f"{what} not installed (bash scripts/test.sh installs it)")
    pytest.skip(f"{what} not installed")
