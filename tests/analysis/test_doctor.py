"""Doctor rules: each problem the seed describes produces its finding, with numbers and advice."""

from __future__ import annotations

import dataclasses

from builders import interrupts, ksoftirqd, snapshot, softirqs, softnet, stat
from irqlab.analysis.delta import compute_rates
from irqlab.analysis.doctor import diagnose
from irqlab.analysis.findings import Severity, worst
from irqlab.analysis.thresholds import Thresholds
from irqlab.model.snapshot import IrqInfo, Pressure, Spurious, TaskInfo
from irqlab.model.unreadable import Unreadable


def codes(findings):
    return [(f.code, f.severity) for f in findings]


def rates_of(a, b):
    return compute_rates(a, b)


def test_quiet_machine_gets_an_all_clear():
    a = snapshot(0, interrupts=interrupts([0, 1], [("41", "eth0", [0, 0])]))
    b = snapshot(1, interrupts=interrupts([0, 1], [("41", "eth0", [100, 100])]))
    findings = diagnose(rates_of(a, b))
    assert codes(findings) == [("healthy", Severity.OK)]
    assert worst(findings) == Severity.OK


def test_storm_thresholds_follow_the_seed_100k_warn_1m_critical():
    a = snapshot(0, interrupts=interrupts([0, 1], [("24", "eth0", [0, 0]), ("25", "eth1", [0, 0]), ("26", "sda", [0, 0])]))
    b = snapshot(
        1, interrupts=interrupts([0, 1], [("24", "eth0", [1_200_000, 0]), ("25", "eth1", [60_000, 60_000]), ("26", "sda", [99_999, 0])])
    )
    findings = diagnose(rates_of(a, b))
    storms = [f for f in findings if f.code == "storm"]
    assert [(f.subject, f.severity) for f in storms] == [
        ("IRQ 24 (eth0)", Severity.CRITICAL),
        ("IRQ 25 (eth1)", Severity.WARNING),
    ]
    assert "CPU0 1.20M/s" in storms[0].evidence[1]
    assert "/proc/irq/24/smp_affinity_list" in storms[0].recommendation
    assert worst(findings) == Severity.CRITICAL


def test_storm_thresholds_are_configurable():
    a = snapshot(0, interrupts=interrupts([0], [("24", "eth0", [0])]))
    b = snapshot(1, interrupts=interrupts([0], [("24", "eth0", [5_000])]))
    findings = diagnose(rates_of(a, b), Thresholds(storm_warn_rate=1_000, storm_crit_rate=10_000))
    assert ("storm", Severity.WARNING) in codes(findings)


def test_ksoftirqd_at_45_percent_like_the_seeds_top_is_a_warning_with_the_softirq_mix():
    cpus = [0, 1]
    a = snapshot(0, tasks=(ksoftirqd(0, 0), ksoftirqd(1, 0)), softirqs=softirqs(cpus, {"NET_RX": [0, 0]}))
    b = snapshot(
        1,
        tasks=(ksoftirqd(0, 452_000_000), ksoftirqd(1, 1_000_000)),
        softirqs=softirqs(cpus, {"NET_RX": [900_000, 800_000], "NET_TX": [100, 0]}),
    )
    findings = [f for f in diagnose(rates_of(a, b)) if f.code == "ksoftirqd-pressure"]
    assert [(f.subject, f.severity) for f in findings] == [("CPU0", Severity.WARNING)]
    assert "45.2 %" in findings[0].title
    assert "NET_RX 900.0k/s" in findings[0].evidence[1]


def test_net_rx_on_one_cpu_while_the_other_idles_suggests_rps():
    cpus = [0, 1]
    a = snapshot(0, softirqs=softirqs(cpus, {"NET_RX": [0, 0]}), stat=stat(cpus, [[0] * 10, [0] * 10]))
    b = snapshot(
        1,
        softirqs=softirqs(cpus, {"NET_RX": [50_000, 100]}),
        stat=stat(cpus, [[10, 0, 10, 40, 0, 0, 40, 0, 0, 0], [5, 0, 5, 90, 0, 0, 0, 0, 0, 0]]),
    )
    findings = diagnose(rates_of(a, b))
    conc = [f for f in findings if f.code == "softirq-concentration"]
    assert len(conc) == 1 and conc[0].severity == Severity.WARNING
    assert conc[0].metrics["cpu"] == 0
    assert "rps_cpus" in conc[0].recommendation
    assert any("CPU1 was more than" in e for e in conc[0].evidence)
    irq_time = [f for f in findings if f.code == "irq-time"]
    assert [f.subject for f in irq_time] == ["CPU0"]


def test_even_net_rx_is_not_concentration():
    cpus = [0, 1]
    a = snapshot(0, softirqs=softirqs(cpus, {"NET_RX": [0, 0]}))
    b = snapshot(1, softirqs=softirqs(cpus, {"NET_RX": [475_000, 465_000]}))
    assert not [f for f in diagnose(rates_of(a, b)) if f.code == "softirq-concentration"]


def test_softnet_drops_and_squeeze_quote_the_knobs():
    a = snapshot(0, softnet=softnet([(0, 0, 0, 0), (1, 0, 0, 0)]))
    b = dataclasses.replace(
        snapshot(1, softnet=softnet([(0, 1000, 2000, 0), (1, 1000, 0, 30)])),
        sysctl={"net.core.netdev_max_backlog": 1000, "net.core.netdev_budget": 300, "net.core.netdev_budget_usecs": 2000},
    )
    findings = diagnose(rates_of(a, b))
    drops = [f for f in findings if f.code == "softnet-drops"]
    squeeze = [f for f in findings if f.code == "time-squeeze"]
    assert [(f.subject, f.severity) for f in drops] == [("CPU0", Severity.CRITICAL)]
    assert "now 1000" in drops[0].recommendation
    assert [f.subject for f in squeeze] == ["CPU1"]
    assert "now 300" in squeeze[0].recommendation and "now 2000" in squeeze[0].recommendation


def test_softnet_without_cpu_column_says_the_ids_are_guesses():
    a = snapshot(0, softnet=softnet([(0, 0, 0, 0)], with_cpu_column=False))
    b = snapshot(1, softnet=softnet([(0, 0, 5, 0)], with_cpu_column=False))
    f = [f for f in diagnose(rates_of(a, b)) if f.code == "softnet-drops"][0]
    assert f.subject == "row 0 (CPU0?)"


def test_effective_affinity_outside_requested_mask():
    irq = interrupts([0, 1], [("41", "eth0", [0, 0])])
    info = {41: IrqInfo(41, affinity=(1,), effective_affinity=(0,)), 42: IrqInfo(42, affinity=(0, 1), effective_affinity=(1,))}
    a = snapshot(0, interrupts=irq)
    b = snapshot(1, interrupts=irq, irqinfo=info)
    f = [f for f in diagnose(rates_of(a, b)) if f.code == "affinity-mismatch"]
    assert [x.subject for x in f] == ["IRQ 41 (eth0)"]


def test_irq_threads_are_listed_and_non_rt_ones_flagged():
    def thread(pid, comm, irq, policy, prio):
        return TaskInfo(pid, comm, "irq", None, irq, 0, 0, 0, policy, prio, 0, (0, 1))

    tasks = (thread(100, "irq/41-eth0", 41, "fifo", 50), thread(101, "irq/42-eth1", 42, "other", 0))
    findings = diagnose(rates_of(snapshot(0, tasks=tasks), snapshot(1, tasks=tasks)))
    info = [f for f in findings if f.code == "irq-threads"][0]
    assert "irq/41-eth0 (pid 100): FIFO 50, CPUs 0-1" in info.evidence[0]
    assert [f.subject for f in findings if f.code == "irq-thread-policy"] == ["irq/42-eth1"]


def test_unreadable_sources_are_reported_once_per_kind():
    u = tuple(Unreadable("irqinfo", f"/proc/irq/{n}/spurious", "permission", "denied") for n in (1, 2, 3))
    findings = diagnose(rates_of(snapshot(0), snapshot(1, unreadable=u)))
    f = [f for f in findings if f.code == "unreadable"]
    assert len(f) == 1 and "and 2 more" in f[0].evidence[0] and "root" in f[0].recommendation


def test_findings_are_ranked_worst_first():
    a = snapshot(0, interrupts=interrupts([0], [("24", "eth0", [0]), ("25", "eth1", [0])]), tasks=(ksoftirqd(0, 0),))
    b = snapshot(1, interrupts=interrupts([0], [("24", "eth0", [150_000]), ("25", "eth1", [2_000_000])]), tasks=(ksoftirqd(0, 200_000_000),))
    sev = [f.severity for f in diagnose(rates_of(a, b))]
    assert sev == sorted(sev, reverse=True)
    assert sev[0] == Severity.CRITICAL


# --- severity limits: each rule on both sides of each of its limits ---------------------------
# The counts below are chosen over a 1 s (or 2 s) interval so that every rate or percent is the
# exact float of the limit, or one step below it.


def test_ksoftirqd_warns_from_10_percent_and_is_critical_from_50():
    run_ns = {0: 99_000_000, 1: 100_000_000, 2: 499_000_000, 3: 500_000_000}  # of 1 s: 9.9 % to 50 %
    a = snapshot(0, tasks=tuple(ksoftirqd(c, 0) for c in run_ns))
    b = snapshot(1, tasks=tuple(ksoftirqd(c, ns) for c, ns in run_ns.items()))
    got = {f.subject: f.severity for f in diagnose(rates_of(a, b)) if f.code == "ksoftirqd-pressure"}
    assert got == {"CPU1": Severity.WARNING, "CPU2": Severity.WARNING, "CPU3": Severity.CRITICAL}


def test_ksoftirqd_critical_limit_is_configurable():
    a = snapshot(0, tasks=(ksoftirqd(0, 0),))
    b = snapshot(1, tasks=(ksoftirqd(0, 300_000_000),))
    t = Thresholds(ksoftirqd_warn_pct=5.0, ksoftirqd_crit_pct=30.0)
    assert [f.severity for f in diagnose(rates_of(a, b), t) if f.code == "ksoftirqd-pressure"] == [Severity.CRITICAL]


def _stat_row(irq: int, softirq: int) -> list[int]:
    """One /proc/stat cpu line over 100 ticks: the rest of the time idle."""
    return [0, 0, 0, 100 - irq - softirq, 0, irq, softirq, 0, 0, 0]


def test_interrupt_time_counts_hard_irq_and_softirq_together_from_25_percent():
    # (irq %, softirq %) per CPU: hard IRQ alone over the limit, the sum over it while neither
    # part is, the sum one tick under it, softirq alone exactly at it, hard IRQ one tick under.
    shares = [(30, 0), (15, 15), (12, 12), (0, 25), (24, 0)]
    cpus = list(range(len(shares)))
    a = snapshot(0, stat=stat(cpus, [[0] * 10 for _ in cpus]))
    b = snapshot(1, stat=stat(cpus, [_stat_row(irq, soft) for irq, soft in shares]))
    found = {f.subject: f for f in diagnose(rates_of(a, b)) if f.code == "irq-time"}
    assert sorted(found) == ["CPU0", "CPU1", "CPU3"]
    assert {s: f.severity for s, f in found.items()} == dict.fromkeys(found, Severity.WARNING)
    assert found["CPU0"].metrics["pct"] == 30.0
    assert found["CPU1"].metrics["pct"] == 30.0
    assert "softirq 15.0 %, irq 15.0 %" in found["CPU1"].evidence[0]


def test_storm_warns_from_exactly_100k_and_is_critical_from_exactly_1m():
    rows = [("30", "a", 99_999), ("31", "b", 100_000), ("32", "c", 999_999), ("33", "d", 1_000_000)]
    a = snapshot(0, interrupts=interrupts([0], [(irq, name, [0]) for irq, name, _ in rows]))
    b = snapshot(1, interrupts=interrupts([0], [(irq, name, [n]) for irq, name, n in rows]))
    got = {f.subject: f.severity for f in diagnose(rates_of(a, b)) if f.code == "storm"}
    assert got == {"IRQ 31 (b)": Severity.WARNING, "IRQ 32 (c)": Severity.WARNING, "IRQ 33 (d)": Severity.CRITICAL}


def test_softirq_concentration_needs_80_percent_of_at_least_10k_per_second():
    cpus = [0, 1]
    per_vector = {
        "NET_RX": [8_000, 2_000],  # 80 % of 10,000/s: concentrated
        "NET_TX": [7_999, 2_001],  # 79.99 %: not
        "BLOCK": [8_000, 1_999],  # 80.01 % of 9,999/s: too little to matter
        "TASKLET": [10_000, 0],  # all of 10,000/s
    }
    a = snapshot(0, softirqs=softirqs(cpus, {v: [0, 0] for v in per_vector}))
    b = snapshot(1, softirqs=softirqs(cpus, per_vector))
    got = [f.subject for f in diagnose(rates_of(a, b)) if f.code == "softirq-concentration"]
    assert sorted(got) == ["NET_RX", "TASKLET"]


def _concentration_severity(code: str, other_idle_pct: int) -> Severity:
    """Severity of a concentration on CPU0 while CPU1 is other_idle_pct % idle."""
    cpus = [0, 1]
    busy = [0, 0, 100, 0, 0, 0, 0, 0, 0, 0]
    other = [0, 0, 100 - other_idle_pct, other_idle_pct, 0, 0, 0, 0, 0, 0]
    a = snapshot(
        0,
        softirqs=softirqs(cpus, {"NET_RX": [0, 0]}),
        interrupts=interrupts(cpus, [("41", "eth0", [0, 0])]),
        stat=stat(cpus, [[0] * 10, [0] * 10]),
    )
    b = snapshot(
        1,
        softirqs=softirqs(cpus, {"NET_RX": [20_000, 0]}),
        interrupts=interrupts(cpus, [("41", "eth0", [20_000, 0])]),
        stat=stat(cpus, [busy, other]),
    )
    (f,) = [f for f in diagnose(rates_of(a, b)) if f.code == code]
    return f.severity


def test_softirq_concentration_is_a_warning_only_while_another_cpu_is_half_idle():
    assert _concentration_severity("softirq-concentration", 50) == Severity.WARNING
    assert _concentration_severity("softirq-concentration", 49) == Severity.INFO


def test_irq_concentration_is_a_warning_only_while_another_cpu_is_half_idle():
    assert _concentration_severity("irq-concentration", 50) == Severity.WARNING
    assert _concentration_severity("irq-concentration", 49) == Severity.INFO


def test_irq_concentration_needs_80_percent_of_at_least_10k_device_interrupts():
    def found(counts):
        a = snapshot(0, interrupts=interrupts([0, 1], [("41", "eth0", [0, 0]), ("LOC", "Local timer interrupts", [0, 0])]))
        b = snapshot(1, interrupts=interrupts([0, 1], [("41", "eth0", counts), ("LOC", "Local timer interrupts", [0, 90_000])]))
        return [f.subject for f in diagnose(rates_of(a, b)) if f.code == "irq-concentration"]

    assert found([8_000, 2_000]) == ["CPU0"]  # the timer row on CPU1 is not a device interrupt
    assert found([7_999, 2_001]) == []
    assert found([8_000, 1_999]) == []


def test_softnet_drops_warn_from_the_first_and_are_critical_from_1000_per_second_squeeze_from_1():
    # 2 s interval: (cpu, processed, dropped, time_squeeze) -> drops/s 0, 0.5, 999, 1000;
    # squeeze/s 0.5, 1.0, 0, 0.
    a = snapshot(0, softnet=softnet([(c, 0, 0, 0) for c in range(4)]))
    b = snapshot(2, softnet=softnet([(0, 10, 0, 1), (1, 10, 1, 2), (2, 10, 1_998, 0), (3, 10, 2_000, 0)]))
    findings = diagnose(rates_of(a, b))
    assert {f.subject: f.severity for f in findings if f.code == "softnet-drops"} == {
        "CPU1": Severity.WARNING,
        "CPU2": Severity.WARNING,
        "CPU3": Severity.CRITICAL,
    }
    assert {f.subject: f.severity for f in findings if f.code == "time-squeeze"} == {"CPU1": Severity.WARNING}


def _unhandled(lines: dict[int, tuple[int, Spurious, Spurious]]) -> tuple[dict[str, Severity], list[str]]:
    """Unhandled-irq severities by subject, and the quiet lines' evidence.

    lines: irq -> (its /proc/interrupts delta over the 1 s sample, spurious before, after).
    """
    def snap(t, counts, which):
        irq = interrupts([0], [(str(n), f"dev{n}", [counts[n]]) for n in lines])
        return snapshot(t, interrupts=irq, irqinfo={n: IrqInfo(n, spurious=v[which]) for n, v in lines.items()})

    a = snap(0, dict.fromkeys(lines, 0), 1)
    b = snap(1, {n: v[0] for n, v in lines.items()}, 2)
    found = [f for f in diagnose(rates_of(a, b)) if f.code == "unhandled-irq"]
    quiet = [e for f in found if f.severity is Severity.INFO for e in f.evidence]
    return {f.subject: f.severity for f in found}, quiet


def test_a_few_unhandled_interrupts_on_a_busy_virtio_queue_are_only_information():
    # An idle VM: virtio2-input.0 handled 3,000 interrupts in the sample and left 5 unhandled
    # (0.17 %): normal on a virtio queue, far below the kernel's 99,900 of 100,000.
    got, quiet = _unhandled({38: (3_000, Spurious(50_000, 0, 0), Spurious(53_000, 5, 100))})
    assert got == {"1 IRQs": Severity.INFO}
    assert quiet == ["IRQ 38 (dev38): 5 of 53000; 5 of 3000 during the sample (0.17 %)"]


def test_unhandled_interrupts_warn_from_1_percent_of_the_samples_interrupts():
    got, _ = _unhandled({
        50: (1_000, Spurious(0, 0, 0), Spurious(1_000, 10, 5)),  # 10 of 1,000: 1 %
        51: (1_001, Spurious(0, 0, 0), Spurious(1_001, 10, 5)),  # 10 of 1,001: just under 1 %
    })
    assert got == {"IRQ 50 (dev50)": Severity.WARNING, "1 IRQs": Severity.INFO}


def test_unhandled_interrupts_warn_only_from_10_in_the_sample():
    got, _ = _unhandled({
        52: (100, Spurious(0, 0, 0), Spurious(100, 10, 5)),  # 10 of 100
        53: (90, Spurious(0, 0, 0), Spurious(90, 9, 5)),  # 9 of 90: the same share, too few
    })
    assert got == {"IRQ 52 (dev52)": Severity.WARNING, "1 IRQs": Severity.INFO}


def test_unhandled_interrupts_are_critical_from_90_percent_of_at_least_1000_in_the_sample():
    got, _ = _unhandled({
        60: (1_000, Spurious(0, 0, 0), Spurious(1_000, 900, 5)),  # 90 % of 1,000: critical
        61: (1_000, Spurious(0, 0, 0), Spurious(1_000, 899, 5)),  # 89.9 %: a warning
        62: (999, Spurious(0, 0, 0), Spurious(999, 999, 5)),  # all of 999: too few to be critical
    })
    assert got == {"IRQ 60 (dev60)": Severity.CRITICAL, "IRQ 61 (dev61)": Severity.WARNING, "IRQ 62 (dev62)": Severity.WARNING}


def test_a_window_on_course_for_nobody_cared_is_critical_even_with_few_interrupts_in_the_sample():
    # 500 interrupts in the sample, all unhandled: too few to be critical by the sample alone.
    # A window 90 % full that can still end above 99,900 unhandled (kernel/irq/spurious.c
    # disables the line then) is critical.
    got, _ = _unhandled({
        70: (500, Spurious(89_500, 89_401, 4), Spurious(90_000, 89_901, 5)),  # can still reach 99,901
        71: (500, Spurious(89_500, 89_400, 4), Spurious(90_000, 89_900, 5)),  # ends at 99,900 at best
        72: (500, Spurious(89_499, 89_499, 4), Spurious(89_999, 89_999, 5)),  # window under 90 % full
    })
    assert got == {"IRQ 70 (dev70)": Severity.CRITICAL, "IRQ 71 (dev71)": Severity.WARNING, "IRQ 72 (dev72)": Severity.WARNING}


def test_old_unhandled_totals_with_none_in_the_sample_are_one_information_line():
    # Neither a large old total nor an old window near the limit matters while nothing is
    # left unhandled now; the serial line's 3 of 10 is the usual case.
    same = {80: Spurious(99_000, 5_000, 5), 81: Spurious(95_000, 94_990, 5), 26: Spurious(10, 3, 5)}
    got, quiet = _unhandled({n: (1_000, s, s) for n, s in same.items()})
    assert got == {"3 IRQs": Severity.INFO}
    assert quiet == ["IRQ 26 (dev26): 3 of 10", "IRQ 80 (dev80): 5000 of 99000", "IRQ 81 (dev81): 94990 of 95000"]


def test_unhandled_count_restarted_by_the_kernel_still_counts_in_the_sample():
    # note_interrupt() restarts irqs_unhandled at 1 when the last one is over HZ/10 old: the
    # count fell from 40 to 12, but last_unhandled moved, so at least 12 happened meanwhile.
    got, _ = _unhandled({90: (100, Spurious(5_000, 40, 100), Spurious(5_100, 12, 200))})
    assert got == {"IRQ 90 (dev90)": Severity.WARNING}


def test_unhandled_share_without_a_proc_interrupts_row_uses_the_kernels_window():
    # No /proc/interrupts row for the line: the spurious count's growth (20) is the denominator.
    before, after = {91: IrqInfo(91, spurious=Spurious(1_000, 0, 0))}, {91: IrqInfo(91, spurious=Spurious(1_020, 18, 5))}
    found = [f for f in diagnose(rates_of(snapshot(0, irqinfo=before), snapshot(1, irqinfo=after))) if f.code == "unhandled-irq"]
    # 18 of 20 is 90 %, but 20 interrupts are too few to be critical.
    assert [(f.severity, f.metrics["grew"], f.metrics["interrupts"]) for f in found] == [(Severity.WARNING, 18, 20)]


def test_irq_pressure_warns_from_10_percent_avg10():
    def found(avg10):
        b = snapshot(1, pressure=Pressure(avg10=avg10, avg60=1.0, avg300=1.0, total_us=5))
        return [(f.code, f.severity) for f in diagnose(rates_of(snapshot(0), b)) if f.code == "irq-pressure"]

    assert found(9.99) == []
    assert found(10.0) == [("irq-pressure", Severity.WARNING)]


def test_cpu_busy_share_counts_user_system_and_interrupts_not_idle_iowait_or_steal():
    from irqlab.analysis.doctor import cpu_busy_pct

    cpus = [0, 1]
    a = snapshot(0, stat=stat(cpus, [[0] * 10, [0] * 10]))
    # user, nice, system, idle, iowait, irq, softirq, steal over 100 ticks
    b = snapshot(1, stat=stat(cpus, [[5, 1, 2, 80, 5, 1, 1, 5, 0, 0], [0, 0, 0, 100, 0, 0, 0, 0, 0, 0]]))
    assert cpu_busy_pct(rates_of(a, b)) == {0: 10.0, 1: 0.0}
    assert cpu_busy_pct(rates_of(snapshot(0), snapshot(1))) == {}


def _storm_on_cpu0(info: IrqInfo | None):
    """IRQ 24 at 1.2M/s, all on CPU0 of a 4-CPU machine, with its /proc/irq/24 as given."""
    from irqlab.model.snapshot import HostInfo

    cpus = [0, 1, 2, 3]
    host = HostInfo(hostname="test", kernel="6.18", online_cpus=(0, 1, 2, 3))
    extra = {"irqinfo": {24: info}} if info is not None else {}
    a = dataclasses.replace(snapshot(0, interrupts=interrupts(cpus, [("24", "eth0", [0, 0, 0, 0])]), **extra), host=host)
    b = dataclasses.replace(snapshot(1, interrupts=interrupts(cpus, [("24", "eth0", [1_200_000, 0, 0, 0])]), **extra), host=host)
    (storm,) = [f for f in diagnose(rates_of(a, b)) if f.code == "storm"]
    return storm


def test_a_storm_gets_the_exact_move_off_its_busiest_cpu_with_its_undo():
    storm = _storm_on_cpu0(IrqInfo(24, affinity=(0, 1, 2, 3), effective_affinity=(0,), managed=False))
    (move,) = storm.actions
    assert (move.kind, move.path, move.old, move.new) == ("irq-affinity", "/proc/irq/24/smp_affinity_list", "0-3", "1-3")
    assert move.command == "echo 1-3 > /proc/irq/24/smp_affinity_list"
    assert move.undo == "echo 0-3 > /proc/irq/24/smp_affinity_list"
    assert "CPU0 handles 1.20M/s of IRQ 24" in move.why and "lands on CPUs 1-3" in move.effect
    assert storm.recommendation.startswith("move it off CPU0 (below)") and "<cpus>" not in storm.recommendation


def test_a_managed_storming_irq_is_not_offered_a_move_the_kernel_refuses():
    storm = _storm_on_cpu0(IrqInfo(24, affinity=(0, 1, 2, 3), effective_affinity=(0,), managed=True))
    assert storm.actions == ()
    assert storm.recommendation.startswith("IRQ 24 is managed") and "EPERM" in storm.recommendation


def test_a_storm_whose_affinity_already_leaves_its_cpu_out_says_so_instead_of_a_no_op_move():
    storm = _storm_on_cpu0(IrqInfo(24, affinity=(2, 3), effective_affinity=(2,), managed=False))
    assert storm.actions == ()
    assert storm.recommendation.startswith("its affinity 2-3 already leaves CPU0 out, yet CPU0 handled it")


def test_a_storm_without_irq_files_keeps_the_general_advice():
    storm = _storm_on_cpu0(None)
    assert storm.actions == () and "`echo <cpus> > /proc/irq/24/smp_affinity_list`" in storm.recommendation


def test_a_storming_nic_irq_gets_coalescing_and_polling_for_its_own_device_with_the_values_to_restore():
    from irqlab.model.net import NapiInstance, NetDevice, NetNamespace, NetState, NetView, RxQueue, TxQueue

    host = NetNamespace(inode=4026531840, pid=1, nprocs=90, comms=("systemd",), names=(), ns_path="/proc/1/ns/net", host=True)
    eth = NetDevice("ens5", {}, (RxQueue(0, (), 0),), (TxQueue(0, ()),), 0, 0, 20000, 0, "ena", ifindex=2)
    # netdev netlink ties the device's NAPI instance to IRQ 24 (netif_napi_set_irq())
    napi = NapiInstance(8193, 2, 24, None)
    netstate = NetState((NetView(host, {}, (), (eth,), napis=(napi,)),))
    storm = _storm_on_cpu0(IrqInfo(24, affinity=(0, 1, 2, 3), effective_affinity=(0,), managed=False))
    assert "DEV" in storm.recommendation  # no netlink view: the general form
    from irqlab.model.snapshot import HostInfo

    cpus = [0, 1, 2, 3]
    host_info = HostInfo(hostname="test", kernel="6.18", online_cpus=(0, 1, 2, 3))
    info = {24: IrqInfo(24, affinity=(0, 1, 2, 3), effective_affinity=(0,), managed=True)}
    a = dataclasses.replace(snapshot(0, interrupts=interrupts(cpus, [("24", "ens5-Tx-Rx-0", [0] * 4)]), irqinfo=info, net=netstate), host=host_info)
    b = dataclasses.replace(snapshot(1, interrupts=interrupts(cpus, [("24", "ens5-Tx-Rx-0", [300_000, 0, 0, 0])]), irqinfo=info, net=netstate), host=host_info)
    (storm,) = [f for f in diagnose(rates_of(a, b)) if f.code == "storm"]
    assert storm.actions == ()  # managed: the kernel refuses the move
    rec = storm.recommendation
    assert "it is ens5's: coalesce its interrupts (`ethtool -C ens5 rx-usecs 50`" in rec and "DEV" not in rec
    assert "`echo 2 > /sys/class/net/ens5/napi_defer_hard_irqs; echo 200000 > /sys/class/net/ens5/gro_flush_timeout` (now 0 and 20000; " in rec
    assert "undo `echo 0 > /sys/class/net/ens5/napi_defer_hard_irqs; echo 20000 > /sys/class/net/ens5/gro_flush_timeout`" in rec


def _irq_pile_on_cpu0(info: dict[int, IrqInfo]):
    """Device IRQs 41 (eth0-rx, 15k/s) and 42 (eth0-tx, 5k/s) all on CPU0 of 3; CPU2 idles, CPU1 is busy."""
    from irqlab.model.snapshot import HostInfo

    cpus = [0, 1, 2]
    host = HostInfo(hostname="test", kernel="6.18", online_cpus=(0, 1, 2))
    rows0 = [("41", "eth0-rx", [0, 0, 0]), ("42", "eth0-tx", [0, 0, 0])]
    rows1 = [("41", "eth0-rx", [15_000, 0, 0]), ("42", "eth0-tx", [5_000, 0, 0])]
    busy, idle = [0, 0, 100, 0, 0, 0, 0, 0, 0, 0], [0, 0, 10, 90, 0, 0, 0, 0, 0, 0]
    a = dataclasses.replace(snapshot(0, interrupts=interrupts(cpus, rows0), stat=stat(cpus, [[0] * 10] * 3), irqinfo=info), host=host)
    b = dataclasses.replace(snapshot(1, interrupts=interrupts(cpus, rows1), stat=stat(cpus, [busy, busy, idle]), irqinfo=info), host=host)
    (f,) = [f for f in diagnose(rates_of(a, b)) if f.code == "irq-concentration"]
    return f


def test_irq_concentration_moves_the_busiest_device_irq_to_the_cpus_that_idled():
    f = _irq_pile_on_cpu0({41: IrqInfo(41, affinity=(0, 1, 2), managed=False), 42: IrqInfo(42, affinity=(0, 1, 2), managed=False)})
    (move,) = f.actions
    assert (move.command, move.undo) == ("echo 2 > /proc/irq/41/smp_affinity_list", "echo 0-2 > /proc/irq/41/smp_affinity_list")
    assert "IRQ 41 (eth0-rx) is the busiest device IRQ on CPU0, 15.0k/s" in move.why and "CPU2 idled meanwhile" in move.effect
    assert f.recommendation == "move IRQ 41 (eth0-rx) off CPU0 (below), or let irqbalance spread the IRQs"


def test_irq_concentration_passes_over_a_managed_irq_and_says_why():
    f = _irq_pile_on_cpu0({41: IrqInfo(41, affinity=(0,), managed=True), 42: IrqInfo(42, affinity=(0, 1, 2), managed=False)})
    (move,) = f.actions
    assert move.command == "echo 2 > /proc/irq/42/smp_affinity_list"
    assert f.recommendation.startswith("IRQ 41 is managed") and "; so move IRQ 42 (eth0-tx) off CPU0 (below)" in f.recommendation
    both = _irq_pile_on_cpu0({41: IrqInfo(41, affinity=(0,), managed=True), 42: IrqInfo(42, affinity=(0,), managed=True)})
    assert both.actions == () and both.recommendation.endswith("; let irqbalance spread the other IRQs")


def test_interrupt_time_names_the_busiest_softirqs_and_hard_irqs_on_its_cpu():
    cpus = [0, 1]
    a = snapshot(0, stat=stat(cpus, [[0] * 10] * 2), softirqs=softirqs(cpus, {"NET_RX": [0, 0], "TIMER": [0, 0]}),
                 interrupts=interrupts(cpus, [("41", "eth0", [0, 0]), ("LOC", "Local timer interrupts", [0, 0])]))
    b = snapshot(1, stat=stat(cpus, [_stat_row(0, 40), _stat_row(0, 0)]),
                 softirqs=softirqs(cpus, {"NET_RX": [30_000, 0], "TIMER": [250, 250]}),
                 interrupts=interrupts(cpus, [("41", "eth0", [4_000, 0]), ("LOC", "Local timer interrupts", [250, 250])]))
    (f,) = [f for f in diagnose(rates_of(a, b)) if f.code == "irq-time"]
    assert "softirqs on CPU0: NET_RX 30.0k/s, TIMER 250/s" in f.evidence
    assert any(e.startswith("hard IRQs on CPU0: IRQ 41 (eth0) 4000/s, LOC (") and e.endswith(" 250/s") for e in f.evidence), f.evidence
    assert "irqlab top" not in f.recommendation and "rps_cpus" in f.recommendation
    assert f.evidence[-1] == "CPU1 was more than 50 % idle"


def test_irq_pressure_names_the_busiest_interrupt_cpu_and_what_ran_there():
    cpus = [0, 1]
    a = snapshot(0, stat=stat(cpus, [[0] * 10] * 2), softirqs=softirqs(cpus, {"NET_RX": [0, 0]}))
    b = snapshot(1, stat=stat(cpus, [_stat_row(5, 10), _stat_row(10, 30)]), softirqs=softirqs(cpus, {"NET_RX": [100, 20_000]}),
                 pressure=Pressure(avg10=12.0, avg60=1.0, avg300=1.0, total_us=5))
    (f,) = [f for f in diagnose(rates_of(a, b)) if f.code == "irq-pressure"]
    assert f.evidence[1:] == ("busiest CPU in interrupts: CPU1, 40 % (/proc/stat irq + softirq)", "softirqs on CPU1: NET_RX 20.0k/s")
    assert "irqlab top" not in f.recommendation
