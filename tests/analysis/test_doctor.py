"""Doctor rules: each problem the seed describes produces its finding, with numbers and advice."""

from __future__ import annotations

import dataclasses

from builders import interrupts, ksoftirqd, snapshot, softirqs, softnet, stat
from irqlab.analysis.delta import compute_rates
from irqlab.analysis.doctor import Thresholds, diagnose
from irqlab.analysis.findings import Severity, worst
from irqlab.model.snapshot import IrqInfo, Spurious, TaskInfo, Unreadable


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
