"""The storm detector on snapshot sequences: ramps, spikes, flapping, wrap, baselines."""

from __future__ import annotations

import numpy as np

import builders as b
from irqlab.analysis.delta import compute_rates
from irqlab.analysis.storm import Baseline, DetectorConfig, Level, Rule, StormDetector, baseline_limit, classify

WRAP = 1 << 32


def irq_series(per_s: list[float], start: int = 0, irq: str = "41", name: str = "eth0-rx-0"):
    """Snapshots 1 s apart whose IRQ `irq` fires per_s[i] times/s on CPU0 (32-bit counter)."""
    count = start
    snaps = []
    for t, rate in enumerate([0.0, *per_s]):
        count += int(rate)
        snaps.append(b.snapshot(t, interrupts=b.interrupts([0, 1], [(irq, name, [count % WRAP, 5]), ("LOC", "Local timer interrupts", [1000 * t, 1000 * t])])))
    return snaps


def run(snaps, cfg: DetectorConfig | None = None):
    det = StormDetector(cfg or DetectorConfig(baseline=Baseline(enabled=False)))
    events = []
    for i, (a, c) in enumerate(zip(snaps, snaps[1:]), 1):
        events += [(i, e.event, e.storm.key, e.storm.level) for e in det.update(compute_rates(a, c))]
    return det, events


def test_a_ramp_warns_after_k_intervals_then_escalates_once_it_stays_above_act():
    rates = [1e3, 5e4, 2e5, 3e5, 6e5, 1.2e6, 1.5e6, 1.5e6, 1.5e6]
    _, events = run(irq_series(rates))
    irq_events = [e for e in events if e[2] == "irq:41"]
    # over 100k from interval 3; K=2 -> start at 4; over 1M from 6; K=2 -> escalation at 7
    assert irq_events == [(4, "storm_start", "irq:41", Level.WARN), (7, "escalation", "irq:41", Level.ACT)]


def test_a_short_spike_of_one_interval_does_not_start_a_storm():
    _, events = run(irq_series([100, 100, 5e6, 100, 100, 100]))
    assert [e for e in events if e[2] == "irq:41"] == []


def test_a_flapping_rate_gives_one_storm_not_one_alert_per_interval():
    # Alternates just above and just below the warn threshold, never under end_ratio * warn.
    flapping = [150_000, 150_000] + [90_000, 150_000] * 8
    _, events = run(irq_series(flapping))
    assert [e[1] for e in events if e[2] == "irq:41"] == ["storm_start"]


def test_a_storm_ends_after_m_intervals_under_the_lower_threshold():
    _, events = run(irq_series([2e5, 2e5, 2e5, 4e4, 4e4, 4e4, 4e4]))
    ev = [e for e in events if e[2] == "irq:41"]
    assert ev == [(2, "storm_start", "irq:41", Level.WARN), (6, "storm_end", "irq:41", Level.WARN)]


def test_a_rate_between_the_end_and_warn_thresholds_does_not_end_the_storm():
    _, events = run(irq_series([2e5, 2e5] + [60_000] * 6))
    assert [e[1] for e in events if e[2] == "irq:41"] == ["storm_start"]


def test_counter_wrap_during_a_storm_keeps_it_going_without_a_false_end():
    # Starts 3.5 M below 2^32 at 1.2 M/s: wraps in the third interval.
    snaps = irq_series([1.2e6] * 6, start=WRAP - 3_500_000)
    det, events = run(snaps)
    assert [(e[1], e[3]) for e in events if e[2] == "irq:41"] == [("storm_start", Level.ACT)]
    assert det.active["irq:41"].value == 1.2e6


def test_a_counter_reset_is_no_data_not_a_storm_end():
    snaps = irq_series([2e5, 2e5, 2e5])
    # The IRQ is freed and re-requested: its counter starts from 0 again (not a wrap).
    snaps.append(b.snapshot(4, interrupts=b.interrupts([0, 1], [("41", "eth0-rx-0", [10, 5]), ("LOC", "Local timer interrupts", [4000, 4000])])))
    det, events = run(snaps, DetectorConfig(baseline=Baseline(enabled=False), end_intervals=1))
    assert [e[1] for e in events if e[2] == "irq:41"] == ["storm_start"]
    assert "irq:41" in det.active


def test_thresholds_follow_the_first_matching_irq_name_pattern():
    cfg = DetectorConfig(irq=(Rule("eth0-*", 1000.0, 5000.0), Rule("*", 1e9, None)), baseline=Baseline(enabled=False))
    _, events = run(irq_series([2000, 2000, 2000]), cfg)
    assert [(e[1], e[3]) for e in events if e[2] == "irq:41"] == [("storm_start", Level.WARN)]
    _, events = run(irq_series([2000, 2000, 2000], irq="42", name="nvme0q1"), cfg)
    assert [e for e in events if e[2] == "irq:42"] == []


def test_the_baseline_flags_a_rate_unusual_for_this_machine_below_the_absolute_limit():
    quiet = [1000 + 10 * (i % 5) for i in range(20)]
    cfg = DetectorConfig(baseline=Baseline(enabled=True, min_samples=10, k=8.0, min_rate=1000.0))
    _, events = run(irq_series(quiet + [30_000] * 3), cfg)
    ev = [e for e in events if e[2] == "irq:41"]
    assert ev == [(22, "storm_start", "irq:41", Level.WARN)]


def test_storm_intervals_do_not_teach_the_baseline():
    cfg = DetectorConfig(baseline=Baseline(enabled=True, min_samples=10, window=20))
    quiet = [1000] * 15
    det, _ = run(irq_series(quiet + [50_000] * 30), cfg)
    assert "irq:41" in det.active  # 30 storm intervals later it is still unusual


def test_baseline_limit_floors_a_flat_history_and_respects_min_rate():
    b_ = Baseline(min_samples=3, k=8.0, min_rate=100.0)
    assert baseline_limit([0, 0, 0], b_) == 100.0
    assert baseline_limit([0, 0, 0], Baseline(min_samples=3, k=8.0, min_rate=0.0)) == 8 * 1.4826  # MAD floored at 1
    assert baseline_limit([1000, 1000, 1000], b_) == 1000 + 8 * 1.4826 * 50
    assert baseline_limit([1, 2], b_) is None


def test_classify_prefers_the_absolute_act_limit():
    assert classify(2e6, Rule("*", 1e5, 1e6), 5000.0)[:2] == (Level.ACT, 1e6)
    assert classify(6000, Rule("*", 1e5, 1e6), 5000.0) == (Level.WARN, 5000.0, "baseline")
    assert classify(50, Rule("*", None, None), None)[0] is Level.NONE


def _softirq_series(per_s, vector="NET_RX"):
    snaps = []
    count = 0
    for t, r in enumerate([0, *per_s]):
        count += int(r)
        snaps.append(b.snapshot(t, softirqs=b.softirqs([0, 1], {vector: [count // 2, count - count // 2]})))
    return snaps


def test_softirq_vectors_are_summed_over_cpus_and_say_where():
    cfg = DetectorConfig(softirq=(Rule("NET_RX", 10_000.0, 50_000.0),), baseline=Baseline(enabled=False))
    det, events = run(_softirq_series([60_000] * 3), cfg)
    assert [(e[1], e[2], e[3]) for e in events] == [("storm_start", "softirq:NET_RX", Level.ACT)]
    assert dict(det.active["softirq:NET_RX"].per_cpu) == {0: 30_000.0, 1: 30_000.0}


def test_softnet_drops_start_a_storm_on_their_cpu():
    snaps = [b.snapshot(t, softnet=b.softnet([(0, 100 * t, 0, 0), (1, 100 * t, 5000 * t, 0)])) for t in range(4)]
    _, events = run(snaps)
    assert [(e[1], e[2], e[3]) for e in events] == [("storm_start", "softnet_drop:1", Level.ACT)]


def test_hard_and_soft_irq_time_share_of_a_cpu_is_watched():
    # cpu0: 95 % of its ticks in irq+softirq each second; cpu1 idle.
    snaps = [b.snapshot(t, stat=b.stat([0, 1], [[5 * t, 0, 0, 0, 0, 45 * t, 50 * t], [0, 0, 0, 100 * t, 0, 0, 0]])) for t in range(4)]
    _, events = run(snaps)
    assert [(e[1], e[2], e[3]) for e in events] == [("storm_start", "irqtime:0", Level.ACT)]


def test_unhandled_growth_counts_a_spurious_window_restart_as_growth():
    from irqlab.model.snapshot import IrqInfo, Spurious

    unhandled = [0, 5000, 10000, 300, 5300]  # the kernel zeroed it after 100,000 interrupts
    snaps = [b.snapshot(t, irqinfo={9: IrqInfo(9, spurious=Spurious(0, u, 0), actions=("acpi",))}) for t, u in enumerate(unhandled)]
    det, events = run(snaps)
    assert [(e[1], e[2]) for e in events] == [("storm_start", "spurious:9")]
    assert det.active["spurious:9"].value == 5000.0


def test_per_cpu_interrupt_totals_are_watched():
    cfg = DetectorConfig(cpu=Rule("*", 50_000.0, None), irq=(Rule("*", None, None),), baseline=Baseline(enabled=False))
    _, events = run(irq_series([60_000] * 3), cfg)
    assert [(e[1], e[2]) for e in events] == [("storm_start", "cpu:0")]


def test_replacing_the_config_keeps_running_storms():
    snaps = irq_series([2e5] * 6)
    det = StormDetector(DetectorConfig(baseline=Baseline(enabled=False)))
    events = []
    for i, (a, c) in enumerate(zip(snaps, snaps[1:])):
        if i == 3:
            det.config = DetectorConfig(irq=(Rule("*", 150_000.0, 1e7),), baseline=Baseline(enabled=False))
        events += det.update(compute_rates(a, c))
    assert [e.event for e in events if e.storm.key == "irq:41"] == ["storm_start"]


def test_same_input_same_events():
    snaps = irq_series(list(np.linspace(0, 2e6, 12)))
    assert run(snaps)[1] == run(snaps)[1]


def test_a_reload_that_raises_the_limits_ends_a_running_storm_after_m_intervals():
    snaps = irq_series([2e6] * 8)
    det = StormDetector(DetectorConfig(baseline=Baseline(enabled=False)))
    events = []
    for i, (a, c) in enumerate(zip(snaps, snaps[1:]), 1):
        if i == 4:
            det.config = DetectorConfig(irq=(Rule("*", 1e9, 1e10),), baseline=Baseline(enabled=False))
        events += [(i, e.event) for e in det.update(compute_rates(a, c)) if e.storm.key == "irq:41"]
    assert events == [(2, "storm_start"), (6, "storm_end")]


def test_a_storm_that_crosses_act_as_it_starts_is_a_warn_storm_with_the_warn_limit():
    """Over warn in the first interval and over act in the second: the storm starts at warn
    (act has not held for start_intervals), so it shows the warn limit, then escalates."""
    det = StormDetector(DetectorConfig(baseline=Baseline(enabled=False)))
    snaps = irq_series([2e5, 1.5e6, 1.5e6])
    starts = []
    for a, c in zip(snaps, snaps[1:]):
        starts += [e for e in det.update(compute_rates(a, c)) if e.storm.key == "irq:41"]
    assert [(e.event, e.storm.level) for e in starts] == [("storm_start", Level.WARN), ("escalation", Level.ACT)]
    assert starts[0].storm.threshold == 100_000.0 and starts[0].storm.reason == "absolute"
    assert starts[1].storm.threshold == 1_000_000.0
