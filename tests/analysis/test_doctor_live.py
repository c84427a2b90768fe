"""The doctor under real faults made by load.sh (root): the injected cause is named in its top
findings, and an idle machine is healthy run after run.

Each case starts one bounded load, measures that it really runs (NET_RX runs per second now,
and the NET_RX runs during the doctor's sample), then runs `irqlab doctor --duration 3 --json`
at SCHED_FIFO 1 (a flood on both CPUs starves SCHED_OTHER readers for seconds). The checks are
those of the regression corpus (tests/fixtures/doctor), whose captures came from the same loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from tests.live_load import assert_ran, load, softirq_counts, softirq_rate

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the faults need network namespaces (root)")

IRQLAB = [sys.executable, "-m", "irqlab"]


def doctor(*extra: str) -> tuple[int, list[dict], dict[int, int]]:
    """Run the doctor at FIFO 1; its exit code, findings and the NET_RX runs during it."""
    before = softirq_counts()
    proc = subprocess.run(["chrt", "-f", "1", *IRQLAB, "doctor", "--duration", "3", "--json", *extra],
                          capture_output=True, text=True, timeout=120)
    after = softirq_counts()
    assert proc.returncode in (0, 1, 2), proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == proc.returncode
    return proc.returncode, doc["findings"], {c: after[c] - before.get(c, 0) for c in after}


def text_of(f: dict) -> str:
    return " ".join([f["title"], f["subject"], *f.get("evidence", ())])


def faulted(*args: str) -> list[dict]:
    """The doctor's findings under load.sh args, after checking the load ran."""
    with load(*args, duration=90) as _:  # ends with the block
        rate = sum(softirq_rate("NET_RX", 0.5).values())
        assert rate > 5000, f"load.sh {' '.join(args)} gave only {rate:.0f} NET_RX runs/s"
        _, found, ran = doctor()
    # The doctor samples for at least 3 s: the load must have run through it.
    assert_ran(sum(ran.values()), rate * 3, "NET_RX runs during the doctor's sample")
    return found


def test_udp_flood_names_net_rx_and_the_dropping_socket():
    top = faulted("-m", "udp", "-l", "16", "-n", "2")
    assert "NET_RX" in text_of(top[0]) and top[0]["metrics"].get("cpu") is not None, top[0]["title"]
    assert any(f["code"] == "socket-drops" or "RcvbufErrors" in text_of(f) for f in top[:2]), [f["title"] for f in top[:3]]


def test_rps_onto_one_cpu_names_rps_and_the_cpu():
    first = faulted("-m", "udp", "-l", "16", "-n", "2", "--rps", "1", "--pin", "cpu1")[0]
    assert first["metrics"].get("mechanism") == "rps" and first["metrics"].get("cpu") == 0, first["title"]
    assert "rps_cpus=1" in text_of(first)


def test_hog_and_rps_flood_names_rps_and_the_hog():
    first = faulted("-m", "udp", "-l", "16", "-n", "2", "--rps", "1", "--pin", "cpu1", "-H", "1", "--hog-cpus", "0")[0]
    assert first["metrics"].get("mechanism") == "rps" and first["metrics"].get("cpu") == 0, first["title"]
    assert "stress-ng" in text_of(first)


def test_tcp_with_a_tiny_budget_names_the_budget():
    first = faulted("-m", "tcp", "--gro", "--budget", "2")[0]
    assert "NET_RX" in text_of(first) and ("budget" in text_of(first) or "time_squeeze" in text_of(first)), first["title"]


def test_an_idle_machine_is_healthy_ten_times_in_a_row():
    codes = []
    for _ in range(10):
        code, found, _ = doctor()
        codes.append((code, [f["title"] for f in found if f["severity"] in ("warning", "critical")]))
    assert all(code == 0 for code, _ in codes), codes
