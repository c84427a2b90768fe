"""Rates between snapshots: the counter quirks that make naive differencing lie."""

from __future__ import annotations

import math

import numpy as np
import pytest

from builders import NS, interrupts, ksoftirqd, snapshot, softirqs, softnet, stat
from irqlab.analysis.delta import compute_rates, interrupt_rates, softirq_rates, softnet_rates
from irqlab.errors import IrqlabError

WRAP = 1 << 32


def test_plain_rates_are_delta_over_seconds():
    a = interrupts([0, 1], [("41", "virtio3-rx", [100, 0]), ("LOC", "Local timer interrupts", [1000, 2000])])
    b = interrupts([0, 1], [("41", "virtio3-rx", [1100, 50]), ("LOC", "Local timer interrupts", [1250, 2250])])
    r = interrupt_rates(a, b, 2 * NS)
    assert r.delta[0].tolist() == [1000.0, 50.0]
    assert r.rate[0].tolist() == [500.0, 25.0]
    assert r.total_rate.tolist() == [525.0, 250.0]
    assert r.warnings == ()


def test_32bit_wrap_is_differenced_modulo_2_32_without_warning():
    a = interrupts([0], [("41", "eth0", [WRAP - 100])])
    b = interrupts([0], [("41", "eth0", [400])])
    r = interrupt_rates(a, b, NS)
    assert r.delta[0, 0] == 500.0
    assert r.warnings == ()


def test_counter_reset_is_reported_not_turned_into_a_huge_rate():
    a = interrupts([0, 1], [("41", "eth0", [5000, 7000])])
    b = interrupts([0, 1], [("41", "eth0", [100, 7100])])
    r = interrupt_rates(a, b, NS)
    assert math.isnan(r.delta[0, 0])
    assert r.delta[0, 1] == 100.0
    assert math.isnan(r.total_rate[0])
    assert [w.kind for w in r.warnings] == ["reset"]
    assert "CPU0" in r.warnings[0].message


def test_implausible_jump_is_a_reset_too():
    # 3e9 -> 1000 looks like a wrap of ~1.3e9 in 1 s: more than any device does per CPU.
    a = interrupts([0], [("41", "eth0", [3_000_000_000])])
    b = interrupts([0], [("41", "eth0", [1000])])
    r = interrupt_rates(a, b, NS)
    assert math.isnan(r.delta[0, 0])
    assert r.warnings[0].kind == "reset"


def test_cpus_are_matched_by_id_when_one_goes_offline():
    a = interrupts([0, 1, 2], [("41", "eth0", [10, 20, 30])])
    b = interrupts([0, 2], [("41", "eth0", [15, 40])])
    r = interrupt_rates(a, b, NS)
    assert r.cpus == (0, 2)
    assert r.delta[0].tolist() == [5.0, 10.0]
    assert [w.kind for w in r.warnings] == ["cpu-offline"]


def test_cpu_coming_online_is_left_out_until_next_interval():
    a = interrupts([0, 2], [("41", "eth0", [10, 30])])
    b = interrupts([0, 1, 2], [("41", "eth0", [11, 5, 33])])
    r = interrupt_rates(a, b, NS)
    assert r.cpus == (0, 2)
    assert r.delta[0].tolist() == [1.0, 3.0]
    assert [w.kind for w in r.warnings] == ["cpu-online"]


def test_irq_number_reallocated_to_another_device_is_not_differenced():
    a = interrupts([0], [("41", "virtio3-rx", [1000])])
    b = interrupts([0], [("41", "nvme0q1", [1005])])
    r = interrupt_rates(a, b, NS)
    assert r.lines == ()
    assert [w.kind for w in r.warnings] == ["reallocated"]
    assert "virtio3-rx" in r.warnings[0].message and "nvme0q1" in r.warnings[0].message


def test_appeared_and_vanished_rows():
    a = interrupts([0], [("40", "old", [1]), ("41", "eth0", [1])])
    b = interrupts([0], [("41", "eth0", [2]), ("42", "new", [3])])
    r = interrupt_rates(a, b, NS)
    assert [line.irq for line in r.lines] == ["41"]
    assert sorted(w.kind for w in r.warnings) == ["appeared", "vanished"]


def test_single_value_rows_difference_their_total():
    a = interrupts([0, 1], [("ERR", "", 5), ("LOC", "timer", [1, 1])])
    b = interrupts([0, 1], [("ERR", "", 9), ("LOC", "timer", [2, 2])])
    r = interrupt_rates(a, b, NS)
    assert r.total_delta.tolist() == [4.0, 2.0]
    assert np.isnan(r.delta[0]).all()


def test_powerpc_duplicate_loc_rows_are_matched_by_key():
    a = interrupts([0], [("LOC", "timer event device", [10]), ("LOC", "others", [100])])
    b = interrupts([0], [("LOC", "timer event device", [15]), ("LOC", "others", [300])])
    r = interrupt_rates(a, b, NS)
    assert r.total_delta.tolist() == [5.0, 200.0]


def test_softirq_wrap_and_missing_vector():
    a = softirqs([0, 1], {"NET_RX": [WRAP - 10, 5]})
    b = softirqs([0, 1], {"NET_RX": [20, 15]})
    r = softirq_rates(a, b, NS)
    assert r.vector_rate("NET_RX").tolist() == [30.0, 10.0]
    assert r.vector_rate("NOPE") is None


def test_softnet_rows_matched_by_cpu_id_with_wrap():
    a = softnet([(0, WRAP - 1, 0, 0), (3, 100, 1, 2)])
    b = softnet([(0, 9, 0, 0), (3, 200, 1, 5)])
    r = softnet_rates(a, b, NS)
    assert r.cpus == (0, 3)
    assert r.field("processed").tolist() == [10.0, 100.0]
    assert r.field("time_squeeze").tolist() == [0.0, 3.0]
    assert math.isnan(r.field("received_rps")[0])  # column absent: no answer, not zero


def test_stat_percentages_exclude_guest_from_total():
    a = stat([0], [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    b = stat([0], [[50, 0, 10, 20, 0, 0, 20, 0, 30, 0]])
    r = compute_rates(snapshot(0, stat=a), snapshot(1, stat=b))
    pct = dict(zip(r.cpu.fields, r.cpu.pct[0]))
    assert pct["user"] == 50.0 and pct["softirq"] == 20.0 and pct["idle"] == 20.0
    assert pct["guest"] == 30.0  # guest is part of user; it is not added to the total


def test_ksoftirqd_pct_from_schedstat_ns():
    a = snapshot(0, tasks=(ksoftirqd(0, 0), ksoftirqd(1, 0)))
    b = snapshot(2, tasks=(ksoftirqd(0, 500_000_000), ksoftirqd(1, 20_000_000)))
    r = compute_rates(a, b)
    assert r.ksoftirqd_pct() == pytest.approx({0: 25.0, 1: 1.0})


def test_interval_must_be_positive():
    a = snapshot(5, interrupts=interrupts([0], [("1", "x", [1])]))
    b = snapshot(5, interrupts=interrupts([0], [("1", "x", [2])]))
    with pytest.raises(IrqlabError, match="not later"):
        compute_rates(a, b)
    assert compute_rates(a, b, interval_ns=NS).interrupts.total_rate[0] == 1.0


def test_one_reading_gives_averages_since_boot():
    from irqlab.analysis.delta import since_boot

    snap = snapshot(100, interrupts=interrupts([0, 1], [("41", "eth0", [1000, 3000]), ("ERR", "", 7)]),
                    softirqs=softirqs([0, 1], {"NET_RX": [500, 0]}), tasks=(ksoftirqd(0, 2_000_000_000),))
    r = since_boot(snap)
    assert r.interval_s == 100
    assert r.interrupts.rate[0].tolist() == [10.0, 30.0] and r.interrupts.total_rate[1] == 0.07
    assert r.softirqs.vector_rate("NET_RX").tolist() == [5.0, 0.0]
    assert r.ksoftirqd_pct() == pytest.approx({0: 2.0})


def test_a_reading_without_time_has_no_average():
    from irqlab.analysis.delta import since_boot

    with pytest.raises(IrqlabError, match="no time since boot"):
        since_boot(snapshot(0, interrupts=interrupts([0], [("41", "eth0", [1])])))
