"""The doctor names threaded NAPI kthreads: device, policy, priority, CPU and run time as thread time."""

from __future__ import annotations

from builders import snapshot
from irqlab.analysis.delta import compute_rates
from irqlab.analysis.doctor import diagnose
from irqlab.model.snapshot import TaskInfo


def napi(run_ns: int, policy: str = "other", rt_priority: int = 0) -> TaskInfo:
    return TaskInfo(pid=1789, comm="napi/irqlab1767v0-289", kind="napi", cpu=None, irq=None, utime_ticks=0,
                    stime_ticks=0, run_ns=run_ns, policy=policy, rt_priority=rt_priority, nice=0,
                    allowed_cpus=(0, 1), last_cpu=0)


def test_a_napi_thread_is_named_with_its_device_policy_cpu_and_thread_time():
    rates = compute_rates(snapshot(1.0, tasks=(napi(10**9),)), snapshot(3.0, tasks=(napi(10**9 + 570_000_000),)))
    (f,) = [f for f in diagnose(rates) if f.code == "napi-threads"]
    assert f.metrics == {"count": 1, "cpu_pct": 28.5}
    assert "not NET_RX softirq" in f.title
    assert f.evidence == ("napi/irqlab1767v0-289 (pid 1789): polls irqlab1767v0, OTHER nice 0, last on CPU0, CPUs 0-1, "
                          "28.5 % CPU as thread time",)


def test_a_real_time_napi_thread_shows_its_priority_and_no_napi_threads_no_finding():
    rates = compute_rates(snapshot(1.0, tasks=(napi(0, "fifo", 50),)), snapshot(2.0, tasks=(napi(0, "fifo", 50),)))
    (f,) = [f for f in diagnose(rates) if f.code == "napi-threads"]
    assert "FIFO 50" in f.evidence[0]
    assert not [f for f in diagnose(compute_rates(snapshot(1.0), snapshot(2.0))) if f.code == "napi-threads"]
