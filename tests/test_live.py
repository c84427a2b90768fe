"""Live tests on this machine's real kernel (marker `live`; the load ones also `root`)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from irqlab.analysis.delta import compute_rates
from irqlab.model.vectors import SOFTIRQ_NR
from irqlab.sources.sampler import take_snapshot
from live_load import load

pytestmark = pytest.mark.live


def test_live_snapshot_reads_every_counter_file():
    snap = take_snapshot()
    assert snap.interrupts is not None and len(snap.interrupts.cpus) >= 1
    assert snap.softirqs is not None and "NET_RX" in snap.softirqs.vectors
    assert snap.stat is not None and snap.stat.softirq is not None
    assert snap.softnet is not None and snap.softnet.rows
    assert {t.cpu for t in snap.tasks if t.kind == "ksoftirqd"} >= set(snap.interrupts.cpus)


@pytest.mark.root
@pytest.mark.slow
def test_net_rx_under_udp_flood_is_nonzero_and_matches_proc_stat():
    with load("-m", "udp", "-l", "64", "-n", "2", duration=10):
        a = take_snapshot()
        time.sleep(3)
        b = take_snapshot()
    rates = compute_rates(a, b)
    net_rx = rates.softirqs.vector_rate("NET_RX")
    assert net_rx is not None
    total = float(np.nansum(net_rx))
    assert total > 1000, f"NET_RX only {total:.0f}/s under a UDP flood"
    # /proc/stat's softirq line is the same per-vector counter summed over CPUs; it is read a
    # moment after /proc/softirqs, so allow a small difference.
    stat_rate = rates.cpu.softirq_rate[SOFTIRQ_NR["NET_RX"]]
    assert stat_rate == pytest.approx(total, rel=0.05)
