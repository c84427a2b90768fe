"""Each probe wake-up timed where it happens: the kernel's hrtimer expiry and switch-in.

Pure: the probe's samples and a tracefs EventBatch in, per-CPU figures out. A wake-up is the
chain the kernel traces on the probe's timer (kernel/time/hrtimer.c __run_hrtimer() ->
hrtimer_wakeup() -> try_to_wake_up(), v6.18):

    deadline  ->  timer:hrtimer_expire_entry  ->  sched:sched_waking(pid)  ->  sched:sched_switch(next_pid=pid)
              |<---- timer IRQ latency ---->|<------------- thread latency ------------->|
              |<------------------------- kernel wake-up latency ----------------------->|
              |<------------- user-visible latency (the probe's own figure) ---------------------> clock read

rtla timerlat calls the two parts "IRQ latency" and "thread latency"; cyclictest reports the
user-visible figure, which adds the return to user space (and here the interpreter's path to
its clock read). The probe's hrtimer is found through its pid: the waking of the probe that
comes straight after an hrtimer expiry on the same CPU (nothing is traced between the two:
hrtimer_wakeup() calls wake_up_process() directly). Each kernel wake-up belongs to the latest
deadline at or before its expiry, which is how it meets the probe's sample of that deadline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from irqlab.model.events import EventBatch, EventKind
from irqlab.model.histogram import Histogram


def deadlines_ns(samples_ns: np.ndarray, start_ns: int, interval_ns: int) -> np.ndarray:
    """The deadline of every sample, replaying the probe's skips (probe/worker.py _loop()).

    Sample i is deadline number k_i = i + 1 + the periods skipped by earlier overruns
    (lat // interval each); the last sample's own skip moves no later deadline.
    """
    s = np.asarray(samples_ns, dtype=np.int64)
    skips = np.maximum(s // interval_ns, 0)
    before = np.concatenate(([0], np.cumsum(skips)[:-1])) if s.size else np.zeros(0, np.int64)
    k = np.arange(1, s.size + 1, dtype=np.int64) + before
    return start_ns + k * interval_ns


def kernel_wakeups(batch: EventBatch, pid: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(expiry ts, switch-in ts) of every timer wake-up of `pid`; wakings not from a timer; and
    timer wake-ups with no switch-in traced before the task's next switch-out."""
    kind, ts, cpu, arg0 = batch.kind, batch.ts_ns, batch.cpu, batch.arg0
    waking = np.flatnonzero((kind == EventKind.SCHED_WAKEUP) & (arg0 == pid))
    # The event before each waking on the waker's CPU (where the timer fired): events grouped
    # by CPU, each CPU's in time order (the batch is sorted by time, stably).
    order = np.argsort(cpu, kind="stable")
    pos = np.empty_like(order)
    pos[order] = np.arange(order.size)
    prev = order[np.maximum(pos[waking] - 1, 0)]
    from_timer = (pos[waking] > 0) & (cpu[prev] == cpu[waking]) & (kind[prev] == EventKind.HRTIMER_EXPIRE)
    expiries = ts[prev]
    switch_ts = ts[(kind == EventKind.SCHED_SWITCH) & (arg0 == pid)]
    out_ts = np.append(ts[(kind == EventKind.SCHED_SWITCH) & (batch.pid == pid)], np.iinfo(np.int64).max)
    wake_ts, expiries = ts[waking][from_timer], expiries[from_timer]
    at = np.searchsorted(switch_ts, wake_ts, side="left")
    found = at < switch_ts.size
    # The switch-in must come before the task's next switch-out, and before its next waking: a
    # waking while still running (a timer that expired before the task slept) has none of its
    # own, nor has one whose switch-in the kernel did not trace. Either borrows no later one.
    found[found] &= switch_ts[at[found]] < out_ts[np.searchsorted(out_ts, wake_ts[found], side="left")]
    found &= np.concatenate((at[:-1] != at[1:], [True]))
    return expiries[found], switch_ts[at[found]], int((~from_timer).sum()), int((~found).sum())


@dataclass(frozen=True, eq=False, slots=True)
class CpuWakeups:
    """One CPU's matched wake-ups (ns arrays of equal length, by deadline) and what did not match."""

    cpu: int
    pid: int
    samples: int  # the probe's wake-ups (user-visible figures)
    deadline_ns: np.ndarray
    irq_ns: np.ndarray  # deadline -> hrtimer_expire_entry
    thread_ns: np.ndarray  # hrtimer_expire_entry -> switch-in
    user_ns: np.ndarray  # the probe's own figure for the same deadline
    other_wakings: int  # wakings of the probe not from its timer (the start signal, a signal)
    unmatched_kernel: int  # timer wake-ups with no sample of their deadline (before the run, or a duplicate)
    no_switch_in: int = 0  # timer wake-ups whose switch-in is not in the trace

    @property
    def kernel_ns(self) -> np.ndarray:
        """deadline -> switch-in; irq + thread exactly."""
        total: np.ndarray = self.irq_ns + self.thread_ns
        return total

    @property
    def unmatched_user(self) -> int:
        """Samples no traced wake-up met (lost events, or the trace ended first)."""
        return self.samples - int(self.deadline_ns.size)

    @property
    def kernel_above_user(self) -> int:
        """Wake-ups whose kernel figure exceeds the user one: never, unless the clocks disagree."""
        return int((self.kernel_ns > self.user_ns).sum())


def match(cpu: int, pid: int, samples_ns: np.ndarray, deadlines: np.ndarray, batch: EventBatch) -> CpuWakeups:
    """Meet each traced timer wake-up with the probe's sample of its deadline."""
    expiry, switch, other, no_switch_in = kernel_wakeups(batch, pid)
    idx = np.searchsorted(deadlines, expiry, side="right") - 1
    ok = idx >= 0
    ok[ok] &= np.concatenate(([True], idx[ok][1:] != idx[ok][:-1]))  # one wake-up per deadline: the first
    idx, expiry, switch = idx[ok], expiry[ok], switch[ok]
    d = deadlines[idx]
    return CpuWakeups(cpu, pid, int(np.asarray(samples_ns).size), d, expiry - d, switch - expiry,
                      np.asarray(samples_ns, np.int64)[idx], other, int((~ok).sum()), no_switch_in)


def wakeup_report(batch: EventBatch, runs: Sequence[tuple[int, int, np.ndarray]], start_ns: int,
                  interval_ns: int) -> tuple[CpuWakeups, ...]:
    """Per CPU (cpu, pid, samples), the kernel timing of every wake-up the probe measured."""
    return tuple(match(cpu, pid, s, deadlines_ns(s, start_ns, interval_ns), batch) for cpu, pid, s in runs)


@dataclass(frozen=True, eq=False, slots=True)
class WakeupSummary:
    """One CPU's kernel-timed wake-ups as histograms (ns), from either backend, beside the probe's figure.

    From the trace window (tracefs) each wake-up is met with the probe's sample of the same
    deadline, so `user` holds those samples and `kernel_above_user` is counted wake-up by
    wake-up. From the BPF backend the kernel keeps only histograms: `user` holds all the
    probe's samples and `kernel_above_user` is None (not known per wake-up).
    """

    cpu: int
    pid: int
    samples: int  # the probe's wake-ups
    irq: Histogram  # deadline -> hrtimer expiry
    thread: Histogram  # hrtimer expiry -> switch-in
    kernel: Histogram  # deadline -> switch-in
    user: Histogram  # the probe's figure
    no_switch_in: int  # timer wake-ups the kernel did not switch in (the probe was still running, or untraced)
    not_seen: int  # probe wake-ups whose expiry the kernel side never saw (lost, outside the window)
    kernel_above_user: int | None
    source: str  # "bpf" or "tracefs"

    @property
    def timed(self) -> int:
        return self.kernel.count


def _hist(values: np.ndarray, bucket_ns: int, limit_ns: int) -> Histogram:
    h = Histogram(bucket_ns, limit_ns)
    h.add_many(np.asarray(values, dtype=np.int64))
    return h


def summarize_matched(w: CpuWakeups, bucket_ns: int = 1_000, limit_ns: int = 1_000_000) -> WakeupSummary:
    """The trace window's matched wake-ups as histograms (user: the samples of the same deadlines)."""
    return WakeupSummary(w.cpu, w.pid, w.samples, _hist(w.irq_ns, bucket_ns, limit_ns), _hist(w.thread_ns, bucket_ns, limit_ns),
                         _hist(w.kernel_ns, bucket_ns, limit_ns), _hist(w.user_ns, bucket_ns, limit_ns), w.no_switch_in,
                         max(w.unmatched_user - w.no_switch_in, 0), w.kernel_above_user, "tracefs")


def _part(parts: dict[str, dict[int, Histogram]], name: str, cpu: int, bucket_ns: int, limit_ns: int) -> Histogram:
    h = parts.get(name, {}).get(cpu)
    return h if h is not None else Histogram(bucket_ns, limit_ns)


def summarize_bpf(runs: Sequence[tuple[int, int, np.ndarray]], parts: dict[str, dict[int, Histogram]],
                  counters: dict[str, dict[int, int]], bucket_ns: int = 1_000, limit_ns: int = 1_000_000) -> tuple[WakeupSummary, ...]:
    """Per probe (cpu, pid, samples): the in-kernel histograms of the CPU it ran on.

    Counters are per CPU that counted them: starts, switch-ins and no_switch_in on the probe's
    CPU; an expiry on the CPU whose timer interrupt ran it, so the wake-ups whose expiry was not
    seen are the samples neither timed nor left without a switch-in.
    """
    out = []
    for cpu, pid, samples in runs:
        irq, thread, kernel = (_part(parts, name, cpu, bucket_ns, limit_ns) for name in ("irq", "thread", "kernel"))
        n = int(np.asarray(samples).size)
        no_switch = counters.get("no_switch_in", {}).get(cpu, 0)
        out.append(WakeupSummary(cpu, pid, n, irq, thread, kernel, _hist(samples, bucket_ns, limit_ns),
                                 no_switch, max(n - kernel.count - no_switch, 0), None, "bpf"))
    return tuple(out)
