"""Doctor rules: each problem the seed describes produces its finding, with numbers and advice."""

from __future__ import annotations

import dataclasses

from builders import interrupts, ksoftirqd, snapshot, softirqs, softnet, stat
from irqlab.analysis.delta import compute_rates
from irqlab.analysis.doctor import diagnose
from irqlab.analysis.findings import Severity, worst
from irqlab.analysis.thresholds import Thresholds
from irqlab.model.snapshot import IrqInfo, Pressure, Spurious, TaskInfo, Unreadable


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
    assert any("CPUs 1 were more than" in e for e in conc[0].evidence)
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


def test_unhandled_interrupts_near_the_nobody_cared_limit_are_critical():
    irq = interrupts([0], [("16", "ehci_hcd", [0]), ("17", "snd", [0]), ("26", "ttyS0", [0])])
    before = {17: IrqInfo(17, spurious=Spurious(990, 1, 5)), 26: IrqInfo(26, spurious=Spurious(10, 3, 5))}
    after = {
        16: IrqInfo(16, spurious=Spurious(95_000, 94_000, 10)),
        17: IrqInfo(17, spurious=Spurious(1000, 3, 5)),
        26: IrqInfo(26, spurious=Spurious(10, 3, 5)),
    }
    a = snapshot(0, interrupts=irq, irqinfo=before)
    findings = diagnose(rates_of(a, snapshot(1, interrupts=irq, irqinfo=after)))
    assert [(f.subject, f.severity) for f in findings if f.code == "unhandled-irq"] == [
        ("IRQ 16 (ehci_hcd)", Severity.CRITICAL),
        ("IRQ 17 (snd)", Severity.WARNING),  # grew by 2 during the sample
        ("1 IRQs", Severity.INFO),  # 3 old unhandled on a serial line: normal, summed up
    ]


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


def test_unhandled_irq_is_critical_from_90_percent_of_a_1000_window_and_warns_from_1000_old():
    lines = [(str(n), f"dev{n}", [0]) for n in range(50, 56)]
    spurious = {
        50: Spurious(1_000, 900, 5),  # 90 % of a 1,000 window: critical
        51: Spurious(1_000, 899, 5),  # 89.9 %, 899 old ones: a quiet note
        52: Spurious(999, 999, 5),  # all unhandled, but the window is too short to judge
        53: Spurious(100_000, 1_000, 5),  # 1,000 old unhandled: warning without growth
        54: Spurious(100_000, 999, 5),  # 999: a quiet note
        55: Spurious(100_000, 1, 5),  # one old one that grew during the sample: warning
    }
    before = {n: IrqInfo(n, spurious=s) for n, s in spurious.items() if n != 55}
    before[55] = IrqInfo(55, spurious=Spurious(99_000, 0, 5))
    irq = interrupts([0], lines)
    a = snapshot(0, interrupts=irq, irqinfo=before)
    b = snapshot(1, interrupts=irq, irqinfo={n: IrqInfo(n, spurious=s) for n, s in spurious.items()})
    found = [f for f in diagnose(rates_of(a, b)) if f.code == "unhandled-irq"]
    assert {f.subject: f.severity for f in found} == {
        "IRQ 50 (dev50)": Severity.CRITICAL,
        "IRQ 53 (dev53)": Severity.WARNING,
        "IRQ 55 (dev55)": Severity.WARNING,
        "3 IRQs": Severity.INFO,
    }
    quiet = next(f for f in found if f.severity is Severity.INFO)
    assert [e.split(":")[0] for e in quiet.evidence] == ["IRQ 51 (dev51)", "IRQ 52 (dev52)", "IRQ 54 (dev54)"]


def test_irq_pressure_warns_from_10_percent_avg10():
    def found(avg10):
        b = snapshot(1, pressure=Pressure(avg10=avg10, avg60=1.0, avg300=1.0, total_us=5))
        return [(f.code, f.severity) for f in diagnose(rates_of(snapshot(0), b)) if f.code == "irq-pressure"]

    assert found(9.99) == []
    assert found(10.0) == [("irq-pressure", Severity.WARNING)]
