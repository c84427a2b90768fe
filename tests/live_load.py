"""Run ../shared/tools/load.sh for a bounded time around a test (root, live), and size trace
windows from what this machine's load really produces.

The machines this suite runs on differ in speed: the same flood makes 2x more events on a
faster VM. Tests that trace a load therefore measure first (the bytes per second each CPU's
trace buffer fills with, under the running load) and size the buffer and window from that, so
that the kernel's buffer alone holds the whole window whatever the reader manages to do.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
LOAD_SH = Path(os.environ.get("IRQLAB_LOAD_SH", REPO.parent / "shared" / "tools" / "load.sh"))


def require_load() -> Path:
    """load.sh and the tools it drives, or a failure (never a skip) as root.

    Without root the tests that use this are not runnable at all (namespaces, tracefs), so they
    skip; as root a missing tool is a broken set-up (`bash scripts/test.sh` installs them), and
    it must not turn a check into a skip.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root (load.sh makes network namespaces)")
    if not LOAD_SH.is_file():
        pytest.fail(f"{LOAD_SH} not present (../shared/tools/load.sh beside the repository)")
    missing = [tool for tool in ("iperf3", "ip", "timeout", "stress-ng", "chrt") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed (bash scripts/test.sh installs them)")
    return LOAD_SH


@contextmanager
def load(*args: str, duration: int = 10, warmup_s: float = 2.0):
    """Start load.sh with args for `duration` seconds; yield after warm-up; always stop it."""
    script = require_load()
    # Always SCHED_OTHER, whatever this process runs at: a flood at a real-time priority
    # (inherited from a caller inside reader_priority()) would starve the machine, its own
    # `timeout` guards included.
    proc = subprocess.Popen(
        ["chrt", "--other", "0", "bash", str(script), "-q", "-d", str(duration), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        time.sleep(warmup_s)
        if proc.poll() is not None:
            pytest.fail(f"load.sh exited early: {proc.stdout.read()}")
        yield proc
    finally:
        ended = proc.poll()
        if ended is None:
            proc.terminate()  # load.sh's EXIT trap kills its children and deletes the netns
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        if ended is not None:
            # It ended by itself (its clients exited) before the test's block did: whatever failed
            # next, its summary says why (iperf3's own errors are in it).
            sys.stderr.write(f"load.sh {' '.join(args)} ended by itself (exit {ended}) before the test did:\n{proc.stdout.read()}\n")


def softirq_counts(vector: str = "NET_RX") -> dict[int, int]:
    """One vector's /proc/softirqs counts by CPU id (from the CPUn labels)."""
    from irqlab.sources.fs import Roots
    from irqlab.sources.softirqs import read_softirqs

    s = read_softirqs(Roots())
    row = s.counts[s.vectors.index(vector)]
    return {int(c): int(n) for c, n in zip(s.cpus, row)}


def softirq_rate(vector: str = "NET_RX", seconds: float = 0.5) -> dict[int, float]:
    """Runs per second of one vector on each CPU, measured now (32-bit wrap taken into account)."""
    a = softirq_counts(vector)
    t0 = time.monotonic()
    time.sleep(seconds)
    b = softirq_counts(vector)
    dt = time.monotonic() - t0
    return {c: ((b[c] - a.get(c, 0)) % (1 << 32)) / dt for c in b}


@contextmanager
def reader_priority(priority: int = 1):
    """Run this thread (and the threads it starts, such as a TraceSession's drain thread) at
    SCHED_FIFO `priority` for the block, as `chrt -f 1` would.

    Never start a load inside it (load() forces SCHED_OTHER on its own children anyway).
    A flood on both CPUs of this VM kind leaves a SCHED_OTHER reader without CPU for seconds
    (a 0.25 s calibration window was seen to last long enough to lose 700k events per CPU in
    32 MiB): the softirq work itself still comes first (hard IRQ exit), but the reader is no
    longer queued behind iperf3 and ksoftirqd, which are SCHED_OTHER.
    """
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    try:
        yield
    finally:
        os.sched_setscheduler(0, policy, param)


def trace_fill_rate(events: Sequence[str], optional: Sequence[str] = (), seconds: float = 0.25,
                    buffer_kb: int = 32768) -> dict[int, float]:
    """Bytes per second each CPU's trace buffer fills with `events` under the load running now.

    Counted as whole pages drained (a short last page counts whole: an over-estimate), in a
    window short enough that a 32 MiB buffer holds it at any rate this VM kind reaches (about
    7 MB/s per CPU seen under load.sh's flood); if the kernel lost events, it is refused.
    """
    from irqlab.tracing.session import TraceSession

    with reader_priority(), TraceSession(events=events, optional=optional, buffer_kb=buffer_kb) as s:
        before = s.read_stats()
        s.start()
        t0 = time.monotonic()
        time.sleep(seconds)
        s.stop()
        dt = time.monotonic() - t0
        s.drain()
        pages = s.take_pages()
        after = s.read_stats()
        size = s.layout.page_size
    lost = {c: after[c].lost - before[c].lost for c in after}
    assert not any(lost.values()), f"calibration window lost events {lost}: shorten it"
    out = {c: 0.0 for c in after}
    for cpu, _ in pages:
        out[cpu] += size / dt
    return out


def plan_window(fill_bytes_per_s: dict[int, float], want_s: float = 0.5, safety: float = 8.0,
                cap_kb: int = 262144, min_s: float = 0.2) -> tuple[int, float]:
    """(buffer_kb, window_s) such that each CPU's buffer alone holds `safety` x the window.

    The reader drains concurrently, so this is a bound, not a need: no event can be lost even
    if the reader gets no CPU at all during the window. The safety factor is large because a
    flood on both CPUs can starve the reading process: a 1 s window was seen to end after
    3.8 s in CI (the read returns when the process runs again), so the buffer holds 8 x. On a machine too fast for `want_s` in
    `cap_kb`, the window shrinks (never below min_s: that would be a broken calibration).
    """
    peak = max(fill_bytes_per_s.values(), default=0.0)
    need_kb = math.ceil(peak * want_s * safety / 1024)
    if need_kb <= cap_kb:
        return max(8192, need_kb), want_s
    window = cap_kb * 1024 / (peak * safety)
    assert window >= min_s, f"{peak / 1e6:.0f} MB/s per CPU: even {min_s} s does not fit {cap_kb} KiB"
    return cap_kb, window


def assert_ran(delta: int | float, expected: float, what: str, share: float = 0.25, floor: int = 5000) -> None:
    """The load really ran: `delta` reached a share of what was measured before (the tracer slows
    the load by about 10-20 % on this VM kind), and an absolute floor."""
    need = max(floor, share * expected)
    assert delta >= need, f"{what}: {delta:.0f} < {need:.0f} (expected about {expected:.0f}): the load did not run"


def per_cpu_array(d: dict[int, int], cpus: Sequence[int]) -> np.ndarray:
    return np.array([d.get(c, 0) for c in cpus], dtype=np.int64)
