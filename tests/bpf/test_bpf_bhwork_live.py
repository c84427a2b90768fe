"""The BPF backend traces BH workqueue work (Linux >= 6.9) as the tracefs backend does.

Under TCP load the TCP small-queues work (tcp_tsq_workfn, net/ipv4/tcp_output.c) runs on the
system BH workqueue (Linux >= 6.10), so a 2 s window on this VM holds hundreds of runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from tests.live_load import assert_ran, load, softirq_counts, softirq_rate

pytestmark = [pytest.mark.live, pytest.mark.root, pytest.mark.usefixtures("bpf_permitted")]


def _irqlab(*args: str) -> subprocess.CompletedProcess:
    # At SCHED_FIFO 1 from its first instruction, as docs/trace.md says to trace a flood
    # (tests/tracing/test_trace_full_flood_live.py: at SCHED_OTHER one run took up to 53 s).
    return subprocess.run(["chrt", "-f", "1", sys.executable, "-m", "irqlab", *args],
                          capture_output=True, text=True, timeout=120)


def test_bpf_lists_the_tcp_small_queue_work_as_one_bhwork_row_under_tcp_load():
    with load("-m", "tcp", duration=90) as tcp:  # ends with the block
        rate = sum(softirq_rate("NET_RX").values())
        before, t0 = sum(softirq_counts("NET_RX").values()), time.monotonic()
        run = _irqlab("trace", "--backend", "bpf", "-d", "2", "--json")
        after, t1 = sum(softirq_counts("NET_RX").values()), time.monotonic()
        assert tcp.poll() is None, "the TCP load ended before the trace did"
    assert run.returncode == 0, run.stderr
    assert_ran((after - before) % (1 << 32), rate * (t1 - t0), "NET_RX runs around the window")
    doc = json.loads(run.stdout)
    assert doc["source"] == "bpf"
    rows = [t for t in doc["tasklets"] if t["kind"] == "bhwork"]
    assert len(rows) == 1, doc["tasklets"]
    (row,) = rows
    assert row["function"] == "tcp_tsq_workfn" and row["count"] > 0, row
    # BH work runs inside the TASKLET and HI softirqs (bh_worker() from tasklet_action() and
    # tasklet_hi_action(), kernel/softirq.c v6.18), one item per run under one TCP stream: kworker
    # work let through the flag test would outnumber them. A run that ends just before the
    # window closes can have its softirq's exit in the next window: one per CPU at most.
    soft = {s["vector"]: s["count"] for s in doc["softirqs"]}
    assert row["count"] <= soft.get("TASKLET", 0) + soft.get("HI", 0) + len(doc["cpus"]), (row["count"], soft)
