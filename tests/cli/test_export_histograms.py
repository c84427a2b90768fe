"""`irqlab export --bpf-histograms`: real Prometheus histograms aggregated in the kernel."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.live, pytest.mark.root]  # the probe runs SCHED_FIFO only as root


def test_histograms_from_bpf_appear_in_the_exposition_and_programs_are_released():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    proc = subprocess.run([sys.executable, "-m", "irqlab", "export", "--once", "--bpf-histograms"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "# TYPE irqlab_softirq_duration_seconds histogram" in lines
    counts = [line for line in lines if line.startswith("irqlab_softirq_duration_seconds_count{")]
    assert counts and all(float(line.rsplit(" ", 1)[1]) >= 0 for line in counts)
    assert sum(float(line.rsplit(" ", 1)[1]) for line in counts) > 0  # softirqs ran during the scrape window


def test_without_bpf_permission_it_is_one_line_and_exit_3():
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/setpriv"):
        pytest.skip("needs root and setpriv to drop to nobody")
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    proc = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-m", "irqlab",
                           "export", "--once", "--bpf-histograms"], capture_output=True, text=True, timeout=120, env=env, cwd="/")
    assert proc.returncode == 3, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "bpf" in proc.stderr.lower()


@pytest.mark.slow
def test_latency_probe_histograms_are_exported_per_cpu():
    """--latency-probe runs the probe in windows; --once waits for the first whole window."""
    proc = subprocess.run([sys.executable, "-m", "irqlab", "export", "--once", "--latency-probe", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "# TYPE irqlab_timer_latency_seconds histogram" in lines
    count = [line for line in lines if line.startswith('irqlab_timer_latency_seconds_count{cpu="0"}')]
    # The probe ran through the window: a 5 s window at 1 ms intervals has 5000 deadlines. Only
    # the host not running the vCPU makes the SCHED_FIFO probe miss some (misses are counted
    # apart, not samples); a fifth of them is a floor for "it ran", not a measured tolerance.
    assert count and float(count[0].rsplit(" ", 1)[1]) >= 1000


def test_a_bad_probe_cpu_list_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "irqlab", "export", "--once", "--latency-probe", "0-x"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 64 and "--latency-probe" in proc.stderr
