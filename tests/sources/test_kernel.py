"""KernelInfo: PREEMPT_RT, the preemption model and IRQ time accounting, from hand-written trees."""

from __future__ import annotations

from pathlib import Path

from irqlab.sources.fs import Roots
from irqlab.sources.kernel import parse_preempt, parse_release, read_kernel
from irqlab.sources.sampler import Sampler, SampleSpec
from irqlab.sources.stat import read_stat
from irqlab.sources.tasks import classify, read_tasks
from irqlab.sources.threads import read_threads

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kernel"


def roots(name: str) -> Roots:
    return Roots.of(FIXTURES / name / "proc", FIXTURES / name / "sys")


def test_mainline_rt_is_told_by_sys_kernel_realtime() -> None:
    r = roots("rt-6.12-2cpu")
    k = read_kernel(r, read_stat(r))
    assert k.realtime and k.realtime_from == "/sys/kernel/realtime"
    assert k.release_tuple == (6, 12) and k.bh_workqueues
    assert k.irq_time_accounting is True and "pressure" in k.irq_time_evidence


def test_an_rt_kernel_without_the_sysfs_file_is_told_by_uname_v() -> None:
    k = read_kernel(roots("rt-patch-5.15-1cpu"))
    assert k.realtime and k.realtime_from == "uname -v"
    assert not k.bh_workqueues  # 5.15: tasklets are still tasklets
    assert k.irq_time_accounting is None  # no /proc/stat given: nothing tells


def test_preempt_dynamic_and_no_irq_time_accounting_like_this_vm() -> None:
    r = roots("dynamic-6.18-2cpu")
    k = read_kernel(r, read_stat(r))
    assert not k.realtime and k.preempt_dynamic and k.preempt == "full"
    assert k.irq_time_accounting is False and "irq column is 0" in k.irq_time_evidence


def test_preempt_file_and_release_parsing() -> None:
    assert parse_preempt("none voluntary (full) lazy\n") == "full"
    assert parse_preempt("(none) voluntary full") == "none"
    assert parse_preempt("garbage") is None
    assert parse_release("6.9.0-rc1") == (6, 9) and parse_release("weird") is None


def test_an_empty_root_gives_an_unknown_kernel_not_an_error(tmp_path: Path) -> None:
    k = read_kernel(Roots.of(tmp_path / "proc", tmp_path / "sys"))
    assert (k.release, k.realtime, k.preempt, k.irq_time_accounting) == ("", False, None, None)


def test_the_sampler_puts_the_kernel_into_the_snapshot() -> None:
    snap = Sampler(roots("rt-6.12-2cpu"), SampleSpec(tasks=True, irqinfo=False, strict=False, required=())).take()
    assert snap.kernel is not None and snap.kernel.realtime
    assert "kernel" in {s.source for s in snap.statuses}


def test_rt_thread_list_has_ktimers_ksoftirqd_and_irq_threads() -> None:
    assert classify("ktimers/3") == ("ktimers", 3, None)
    tasks, problems = read_tasks(roots("rt-6.12-2cpu"))
    assert not problems
    kinds = {t.comm: (t.kind, t.policy, t.rt_priority) for t in tasks}
    assert kinds["ktimers/1"] == ("ktimers", "fifo", 1)
    assert kinds["ksoftirqd/1"] == ("ksoftirqd", "other", 0)
    assert kinds["irq/41-eth0-rx-0"] == ("irq", "fifo", 50)
    assert "rtapp" not in kinds  # a user task: in the thread list, not the kernel's interrupt threads
    rtapp = next(t for t in read_threads(roots("rt-6.12-2cpu")) if t.comm == "rtapp")
    assert (rtapp.policy, rtapp.rt_priority, rtapp.last_cpu, rtapp.kthread) == ("fifo", 80, 1, False)


def test_a_capture_keeps_what_tells_the_kernel_flavour(tmp_path: Path) -> None:
    import shutil

    from irqlab.sources.snapshot_dir import collect

    shutil.copytree(FIXTURES / "rt-6.12-2cpu", tmp_path / "m")
    (tmp_path / "m" / "proc" / "interrupts").write_text("           CPU0       CPU1\n  0:         10          0   IO-APIC   2-edge      timer\n")
    raw = collect(Roots.of(tmp_path / "m" / "proc", tmp_path / "m" / "sys"))
    assert raw.files["sys/kernel/realtime"] == b"1\n"
    assert b"PREEMPT_RT" in raw.files["proc/sys/kernel/version"]
