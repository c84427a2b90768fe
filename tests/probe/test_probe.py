"""The timer latency probe on this machine: bindings, the measuring processes, their cleanup."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from irqlab.errors import PermissionDenied
from irqlab.probe import dma, libc
from irqlab.probe.runner import ProbeError, measure

pytestmark = pytest.mark.live
root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def test_clock_nanosleep_to_a_past_absolute_deadline_returns_at_once_with_zero():
    ts = libc.Timespec(0, 0)
    assert libc.clock_nanosleep(libc.CLOCK_MONOTONIC, libc.TIMER_ABSTIME, ts, None) == 0


def test_clock_nanosleep_sleeps_to_the_absolute_deadline_not_past_it():
    deadline = time.monotonic_ns() + 2_000_000
    ts = libc.Timespec(*divmod(deadline, 1_000_000_000))
    libc.clock_nanosleep(libc.CLOCK_MONOTONIC, libc.TIMER_ABSTIME, ts, None)
    assert time.monotonic_ns() >= deadline  # never early: latency is never negative


def test_an_unprivileged_policy_still_measures_and_keeps_every_breach_deadline():
    run = measure([0], 1_000_000, 50, policy="other", explain_over_ns=0)
    (cpu,) = run.cpus
    assert cpu.policy == "other" and cpu.samples_ns.size + cpu.missed == 50
    assert (cpu.samples_ns > 0).all()
    # with a threshold of 0 every wake-up is a breach; deadlines are start + k * interval
    ks = [(d - run.start_ns) / 1_000_000 for d, _ in cpu.breaches]
    assert ks[:3] == [1.0, 2.0, 3.0] or cpu.missed
    assert [w - d for d, w in cpu.breaches] == cpu.samples_ns.tolist()


def test_a_cpu_outside_the_machine_is_one_clear_error():
    with pytest.raises(ProbeError, match="CPU 4000"):
        measure([4000], 1_000_000, 10, policy="other")


def test_progress_reports_the_running_max_per_cpu():
    seen: list[dict[int, int]] = []
    run = measure([0], 1_000_000, 600, policy="other", on_progress=seen.append)
    assert seen and set(seen[-1]) == {0}
    assert seen[-1][0] <= int(run.cpus[0].samples_ns.max())


@root
def test_root_probe_runs_fifo_locked_and_sane_for_three_seconds():
    cpus = sorted(os.sched_getaffinity(0))
    interval_ns, seconds = 1_000_000, 3
    run = measure(cpus, interval_ns, seconds * 1_000_000_000 // interval_ns, policy="fifo", priority=95)
    for r in run.cpus:
        s = r.samples_ns
        assert (r.policy, r.priority, r.lock_error) == ("fifo", 95, None)
        assert s.min() > 0
        p50, p99 = np.percentile(s, [50, 99])
        assert s.max() >= p99 >= p50
        # every deadline of the run is either a sample or counted as missed (a wake-up that
        # overran whole periods, on this shared VM: host stalls); not one is lost or invented
        assert s.size + r.missed == seconds * 1e9 // interval_ns
        # The probe ran: at least half its deadlines are samples. This floor is not a tolerance
        # on a measurement (the line above is exact): inside the guest a SCHED_FIFO 95 task
        # that uses ~4 % of its CPU preempts all other work there and is never RT-throttled
        # (sched_rt_runtime_us 950000 of 1000000, kernel/sched/rt.c), so misses come only from
        # the host not running the vCPU; more than 1.5 s of that in 3 s is a broken machine.
        assert s.size >= 0.5 * seconds * 1e9 / interval_ns, f"{r.missed} deadlines missed: the host stalled"
        assert r.cpu_time_ns > 0


@root
def test_dma_latency_is_held_at_zero_only_while_the_file_is_open():
    def current() -> int:
        with open(dma.PATH, "rb") as f:  # cpu_latency_qos_read(): the aggregate target, s32
            return struct.unpack("i", f.read(4))[0]

    before = current()
    with dma.hold_zero():
        assert current() == 0
    assert current() == before


def test_dma_latency_without_permission_is_one_clear_error(tmp_path):
    path = tmp_path / "cpu_dma_latency"
    path.write_bytes(b"")
    path.chmod(0)
    if os.geteuid() == 0:
        pytest.skip("root opens any file")
    with pytest.raises(PermissionDenied):
        with dma.hold_zero(str(path)):
            pass


@root
def test_killing_irqlab_ends_its_measuring_processes():
    proc = subprocess.Popen([sys.executable, "-m", "irqlab", "latency", "-D", "60", "-a", "0", "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        children: list[int] = []
        for _ in range(50):  # wait until the child measuring process exists
            time.sleep(0.1)
            children = [int(p) for p in open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()]
            if children:
                break
        assert children
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for _ in range(50):
            if not any(os.path.exists(f"/proc/{c}") and _not_zombie(c) for c in children):
                break
            time.sleep(0.1)
        assert not any(os.path.exists(f"/proc/{c}") and _not_zombie(c) for c in children)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _not_zombie(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_late_last_wake_up_misses_no_deadline_beyond_the_run(monkeypatch):
    """samples + missed == loops even when the last wake-up overruns several periods (seen under
    load: 44 samples + 8 missed for 50 loops, the last one 2.7 ms late at a 1 ms interval)."""
    from array import array

    from irqlab.probe import worker

    interval, loops, start = 1_000_000, 10, 5_000_000_000
    state = {"k": 0}

    def fake_sleep(clock, flags, ts, rem):
        t = ts._obj  # the absolute deadline the worker asked for
        state["k"] = (t.tv_sec * 1_000_000_000 + t.tv_nsec - start) // interval
        return 0

    def fake_now():
        # every wake-up on time, except deadline 4 (3.5 periods late) and the last (2.7 periods late)
        k = state["k"]
        late = {4: 3_500_000, loops: 2_700_000}.get(k, 1000)
        return start + k * interval + late

    monkeypatch.setattr(worker.libc, "clock_nanosleep", fake_sleep)
    monkeypatch.setattr(worker.time, "monotonic_ns", fake_now)
    cfg = worker.WorkerConfig(cpu=0, interval_ns=interval, loops=loops, policy="other", priority=0,
                              explain_over_ns=None, progress_every=0)
    buf = array("q", [0] * loops)
    n, missed = worker._loop(cfg, start, buf, [], None)
    # deadlines 5-7 are skipped after the 4th; the last, 10, overran only deadlines past the run
    assert (n, missed) == (7, 3) and n + missed == loops
