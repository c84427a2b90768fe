"""The doctor on today's kernel flavours: PREEMPT_RT priorities, BH workqueues, no IRQ time accounting."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from builders import ksoftirqd, snapshot, softirqs, stat
from irqlab.analysis.causes import irq_time_in_tasks
from irqlab.analysis.delta import compute_rates
from irqlab.analysis.doctor import diagnose
from irqlab.analysis.findings import Severity
from irqlab.model.snapshot import KernelInfo
from irqlab.sources.fs import Roots
from irqlab.sources.kernel import read_kernel
from irqlab.sources.stat import read_stat
from irqlab.sources.tasks import read_tasks
from irqlab.sources.threads import read_threads

NS = 1_000_000_000
RT = Path(__file__).resolve().parent.parent / "fixtures" / "kernel" / "rt-6.12-2cpu"
ROOTS = Roots.of(RT / "proc", RT / "sys")


def rt_pair(rtapp_ran_s: float, kernel: KernelInfo | None = None):
    """Two snapshots one second apart of the RT fixture machine, rtapp (FIFO 80, CPU1) running rtapp_ran_s in between."""
    kernel = kernel or read_kernel(ROOTS, read_stat(ROOTS))
    tasks, _ = read_tasks(ROOTS)
    after = read_threads(ROOTS)
    before = tuple(dataclasses.replace(t, run_ns=t.run_ns - int(rtapp_ran_s * NS)) if t.comm == "rtapp" else t for t in after)
    a = snapshot(0, tasks=tasks, threads=before, threads_ns=0, kernel=kernel)
    b = snapshot(1, tasks=tasks, threads=after, threads_ns=NS, kernel=kernel)
    return compute_rates(a, b)


def by_code(findings, code):
    return [f for f in findings if f.code == code]


def test_an_rt_kernel_is_said_once_with_its_threads():
    (f,) = by_code(diagnose(rt_pair(0.0)), "preempt-rt")
    assert f.severity is Severity.INFO
    assert "every interrupt handler is a thread" in f.title
    assert "/sys/kernel/realtime" in f.evidence[0] and "2 irq/N-name threads, 2 ktimers/N threads" in f.evidence[1]


def test_an_irq_thread_below_a_busy_rt_task_on_its_cpu_is_a_warning_with_chrt_and_its_undo():
    (f,) = by_code(diagnose(rt_pair(0.9)), "rt-irq-thread-priority")
    assert f.severity is Severity.WARNING
    assert f.subject == "irq/41-eth0-rx-0 (pid 120)"
    assert "rtapp (FIFO 80)" in f.title and "CPU1" in f.title
    (act,) = f.actions
    assert (act.command, act.undo) == ("chrt -f -p 81 120", "chrt -f -p 50 120")
    assert "`chrt -f -p 81 120` (undo: `chrt -f -p 50 120`)" in f.recommendation


def test_an_idle_rt_task_above_an_irq_thread_is_only_information():
    (f,) = by_code(diagnose(rt_pair(0.01)), "rt-irq-thread-priority")
    assert f.severity is Severity.INFO


def test_the_same_machine_without_preempt_rt_has_no_rt_findings():
    rates = rt_pair(0.9, KernelInfo(release="6.18.0", release_tuple=(6, 18)))
    assert not by_code(diagnose(rates), "rt-irq-thread-priority") and not by_code(diagnose(rates), "preempt-rt")


def test_busy_ksoftirqd_on_rt_names_its_pid_and_a_chrt_with_undo_not_netdev_budget():
    rt = KernelInfo(release="6.12.0-rt7", realtime=True, realtime_from="uname -v", release_tuple=(6, 12))
    cpus = [0, 1]
    a = snapshot(0, tasks=(ksoftirqd(0, 0, pid=15), ksoftirqd(1, 0)), softirqs=softirqs(cpus, {"NET_RX": [0, 0]}),
                 sysctl={"net.core.netdev_budget": 300}, kernel=rt)
    b = snapshot(1, tasks=(ksoftirqd(0, 452_000_000, pid=15), ksoftirqd(1, 0)), softirqs=softirqs(cpus, {"NET_RX": [900_000, 0]}),
                 sysctl={"net.core.netdev_budget": 300}, kernel=rt)
    (f,) = by_code(diagnose(compute_rates(a, b)), "ksoftirqd-pressure")
    assert "PREEMPT_RT" in f.title
    assert "`chrt -f -p 1 15` (undo: `chrt -o -p 0 15`)" in f.recommendation
    assert "netdev_budget" in f.recommendation and "does not help" in f.recommendation
    assert f.actions[0].pid == 15


def test_tasklet_concentration_on_6_9_or_later_names_bh_workqueues():
    cpus = [0, 1]
    def pair(kernel):
        a = snapshot(0, softirqs=softirqs(cpus, {"TASKLET": [0, 0]}), kernel=kernel)
        b = snapshot(1, softirqs=softirqs(cpus, {"TASKLET": [50_000, 100]}), kernel=kernel)
        return by_code(diagnose(compute_rates(a, b)), "softirq-concentration")
    (new,) = pair(KernelInfo(release="6.9.0", release_tuple=(6, 9)))
    (old,) = pair(KernelInfo(release="6.8.0", release_tuple=(6, 8)))
    assert "BH workqueue" in new.title and "BH workqueue" not in old.title


def test_no_irq_time_accounting_is_said_once_with_its_evidence():
    k = KernelInfo(irq_time_accounting=False, irq_time_evidence="/proc/stat irq column is 0 on every CPU since boot")
    a, b = snapshot(0, kernel=k), snapshot(1, kernel=k)
    (f,) = by_code(diagnose(compute_rates(a, b)), "no-irq-time-accounting")
    assert f.severity is Severity.INFO and "irq column is 0" in f.evidence[0]
    assert not by_code(diagnose(compute_rates(snapshot(0), snapshot(1))), "no-irq-time-accounting")


def test_the_irq_time_correction_follows_the_kernel_not_the_sample():
    # An irq column that did not move during a short sample does not mean no accounting when
    # the kernel says it accounts (pressure/irq present): the correction must not be applied.
    cpus = [0]
    rows = [[100, 0, 100, 1000, 0, 50, 10]]
    acct = KernelInfo(irq_time_accounting=True, irq_time_evidence="/proc/pressure/irq exists")
    a = snapshot(0, stat=stat(cpus, rows), kernel=acct)
    b = snapshot(1, stat=stat(cpus, rows), kernel=acct)
    assert irq_time_in_tasks(compute_rates(a, b)) is False
    none = KernelInfo(irq_time_accounting=False)
    assert irq_time_in_tasks(compute_rates(dataclasses.replace(a, kernel=none), dataclasses.replace(b, kernel=none))) is True
