"""Live tests on this machine's real kernel (marker `live`; the load ones also `root`)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from irqlab.analysis.delta import compute_rates
from irqlab.model.vectors import SOFTIRQ_NR
from irqlab.sources.fs import Roots
from irqlab.sources.sampler import take_snapshot
from irqlab.sources.stat import read_stat
from live_counters import softirq_counts, softirq_delta
from live_load import load

pytestmark = pytest.mark.live


def test_live_snapshot_reads_every_counter_file():
    snap = take_snapshot()
    assert snap.interrupts is not None and len(snap.interrupts.cpus) >= 1
    assert snap.softirqs is not None and "NET_RX" in snap.softirqs.vectors
    assert snap.stat is not None and snap.stat.softirq is not None
    assert snap.softnet is not None and snap.softnet.rows
    assert {t.cpu for t in snap.tasks if t.kind == "ksoftirqd"} >= set(snap.interrupts.cpus)


def _stat_net_rx() -> int:
    """The NET_RX number of /proc/stat's softirq line."""
    return read_stat(Roots()).softirq[SOFTIRQ_NR["NET_RX"]]


@pytest.mark.root
@pytest.mark.slow
def test_net_rx_under_udp_flood_is_nonzero_and_matches_proc_stat():
    with load("-m", "udp", "-l", "64", "-n", "2", duration=60):
        # /proc/softirqs read on both sides of each snapshot: the snapshot's own reads lie
        # between them (see the bracket below).
        outer_a = softirq_counts("NET_RX")
        a = take_snapshot()
        inner_a = softirq_counts("NET_RX")
        stat_a = _stat_net_rx()
        after_stat_a = softirq_counts("NET_RX")
        time.sleep(3)
        before_stat_b = softirq_counts("NET_RX")
        stat_b = _stat_net_rx()
        inner_b = softirq_counts("NET_RX")
        b = take_snapshot()
        outer_b = softirq_counts("NET_RX")
    rates = compute_rates(a, b)
    net_rx = rates.softirqs.vector_rate("NET_RX")
    assert net_rx is not None
    inner, outer = softirq_delta(inner_a, inner_b), softirq_delta(outer_a, outer_b)
    assert inner > 3 * 1000, f"NET_RX only {inner} in 3 s under a UDP flood: the load did not run"
    # /proc/stat's softirq line sums the very counters /proc/softirqs prints
    # (fs/proc/stat.c show_stat(): per_softirq_sums[j] += kstat_softirqs_cpu(j, i) over every
    # possible CPU; fs/proc/softirqs.c show_softirqs() prints kstat_softirqs_cpu(i, j)). Each
    # per-CPU count only grows, and each file is generated whole in one read, so counts read
    # in between two reads of /proc/softirqs lie between them: no tolerance is needed.
    from_softirqs = round(float(np.nansum(net_rx)) * rates.interval_s)
    from_stat = round(float(rates.cpu.softirq_rate[SOFTIRQ_NR["NET_RX"]]) * rates.interval_s)
    assert inner <= from_softirqs <= outer, (inner, from_softirqs, outer)
    assert inner <= from_stat <= outer, (inner, from_stat, outer)
    # The same, read back to back without a snapshot between: a bracket one /proc/stat read wide.
    direct = (stat_b - stat_a) % (1 << 32)  # per_softirq_sums[] is an unsigned int
    assert softirq_delta(after_stat_a, before_stat_b) <= direct <= softirq_delta(inner_a, inner_b)
