"""Text of `irqlab latency`: a cyclictest-like summary, rtla-hist-like histograms, budget
verdicts, and the breakdown of each breach."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from irqlab.analysis.latency import EVENT_BYTES, Blame, CpuLatency, Explanation, LatencyReport, ThreadNote, Verdict
from irqlab.analysis.wakeup import WakeupSummary
from irqlab.units import printable

STAT_HEADER = ["CPU", "SAMPLES", "MIN_us", "AVG_us", "P50_us", "P90_us", "P99_us", "P99.9_us", "MAX_us", "OVER_LIMIT", "MISSED"]


def us(ns: float | None) -> str:
    """Microseconds with one decimal below 100 us, whole above; '-' for none."""
    if ns is None:
        return "-"
    return f"{ns / 1000:.1f}" if ns < 100_000 else f"{ns / 1000:.0f}"


def table(header: list[str], rows: list[list[str]], left: Sequence[int] = (0,)) -> list[str]:
    """Columns in `left` left-aligned, the others right-aligned."""
    # Thread and handler names come from the machine: escaped before the widths are measured.
    header, rows = [printable(v) for v in header], [[printable(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def cell(i: int, v: str) -> str:
        return v.ljust(widths[i]) if i in left else v.rjust(widths[i])

    return ["  ".join(cell(i, v) for i, v in enumerate(r)).rstrip() for r in [header] + rows]


def _stat_row(name: str, c: CpuLatency) -> list[str]:
    s = c.stats
    return [name, str(s.count), us(s.min_ns), us(s.avg_ns), us(s.p50_ns), us(s.p90_ns), us(s.p99_ns),
            us(s.p999_ns), us(s.max_ns), str(s.overflows), str(c.missed)]


def stats_lines(report: LatencyReport) -> list[str]:
    rows = [_stat_row(str(c.cpu), c) for c in report.per_cpu]
    if len(report.per_cpu) > 1:
        rows.append(_stat_row("all", report.overall))
    return table(STAT_HEADER, rows)


def hist_lines(report: LatencyReport, view: str) -> list[str]:
    """The histogram per CPU as rtla hist prints it: one column per CPU, an overflow row."""
    cpus = report.per_cpu
    head = ["LATENCY_us"] + [f"CPU-{c.cpu:03d}" for c in cpus]
    rows = []
    if view == "log2":
        lo_k, hi_k = _log2_span([c.hist.log2 for c in cpus])
        for k in range(lo_k, hi_k + 1):
            lo, hi = (0, 0) if k == 0 else (1 << (k - 1), (1 << k) - 1)
            rows.append([f"{lo / 1000:.3f} -> {hi / 1000:.3f}"] + [str(int(c.hist.log2[k])) for c in cpus])
        title = "# histogram (log2 buckets of ns, shown in us; includes what overflowed the linear view)"
    else:
        used = np.flatnonzero(sum(c.hist.linear for c in cpus)) if cpus else []
        b = cpus[0].hist.bucket_ns if cpus else 1000
        for i in used:
            rows.append([f"{int(i) * b / 1000:g}"] + [str(int(c.hist.linear[i])) for c in cpus])
        limit = cpus[0].hist.limit_ns if cpus else 0
        rows.append([f"over {limit / 1000:g}"] + [str(c.hist.overflow) for c in cpus])
        title = f"# histogram ({b / 1000:g} us buckets, lower edge in us; overflow row above {limit / 1000:g} us)"
    return [title] + table(head, rows)


def _log2_span(arrays: list[np.ndarray]) -> tuple[int, int]:
    nz = np.flatnonzero(sum(arrays)) if arrays else np.array([], dtype=np.int64)
    return (int(nz[0]), int(nz[-1])) if nz.size else (0, -1)


def verdict_lines(verdicts: Sequence[Verdict]) -> list[str]:
    head = ["CLASS", "CPUS", "SAMPLES", "P99_us", "P99.9_us", "MAX_us", "LIMITS_us", "RESULT"]
    rows = []
    for v in verdicts:
        s = v.stats
        limits = ", ".join(f"{c.metric}<={c.limit_ns / 1000:g}" + ("" if c.ok else "!") for c in v.checks)
        cpus = ",".join(str(c) for c in v.budget.cpus) if v.budget.cpus else "-"
        rows.append([v.budget.name, cpus, str(s.count), us(s.p99_ns), us(s.p999_ns), us(s.max_ns), limits,
                     "PASS" if v.passed else "FAIL"])
    out = table(head, rows, left=(0, 1, 6, 7))
    for v in verdicts:
        if not v.passed and v.budget.consequence:
            out.append(printable(f"  {v.budget.name}: {v.budget.consequence}"))
    failed = sum(not v.passed for v in verdicts)
    out.append(f"{len(verdicts) - failed} of {len(verdicts)} classes PASS" + (f", {failed} FAIL" if failed else ""))
    return out


def explanation_lines(e: Explanation, start_ns: int) -> list[str]:
    b = e.breach
    out = [f"CPU {b.cpu}: woke {us(b.latency_ns)} us late, deadline at +{(b.deadline_ns - start_ns) / 1e9:.6f} s"
           + ("" if e.complete else "  (trace incomplete here: lost events or outside the traced window)")]
    rows = [[us(p.duration_ns), f"{100 * p.duration_ns / max(b.latency_ns, 1):.0f}", str(p.count), p.label] for p in e.parts]
    out += ["  " + line for line in table(["TIME_us", "SHARE_%", "RUNS", "CONTEXT"], rows, left=(3,))]
    steps = []
    if e.timer_irq_ns is not None:
        steps.append(f"timer interrupt entered {us(e.timer_irq_ns)} us after the deadline")
    if e.woken_ns is not None:
        steps.append(f"probe woken at +{us(e.woken_ns - b.deadline_ns)} us")
    if e.switched_in_ns is not None:
        steps.append(f"switched in at +{us(e.switched_in_ns - b.deadline_ns)} us")
    if steps:
        out.append("  " + ", ".join(steps))
    if e.irq_ns is not None and e.thread_ns is not None and e.kernel_ns is not None:
        out.append(f"  kernel: IRQ {us(e.irq_ns)} (deadline -> hrtimer expiry) + THREAD {us(e.thread_ns)} (expiry -> "
                   f"switch-in) = KERNEL {us(e.kernel_ns)} us, the parts above up to the switch-in; then "
                   f"{us(b.latency_ns - e.kernel_ns)} us back to user space")
    if e.timer_irq_ns is not None and e.timer_irq_ns >= b.latency_ns / 2:
        out.append("  the timer interrupt itself came late: what ran before it had interrupts off, "
                   "or the (v)CPU was not running")
    blame = [p for p in e.parts if p.kind not in ("probe", "idle", "unknown")]
    if blame:
        out.append("  => " + ", then ".join(f"{p.label} {us(p.duration_ns)} us" for p in blame[:3]))
    else:
        out.append("  => no interrupt or task ran in the window: the delay is the timer itself "
                   "(idle exit, or the hypervisor) or the probe's own return to user space")
    return [printable(line) for line in out]  # context labels name IRQ handlers


def blame_lines(rows: Sequence[Blame], n_breaches: int, limit: int = 12) -> list[str]:
    head = ["TOTAL_us", "BREACHES", "WORST_us", "CONTEXT"]
    body = [[us(r.total_ns), f"{r.breaches}/{n_breaches}", us(r.worst_ns), r.label] for r in rows[:limit]]
    return table(head, body, left=(3,))


def thread_lines(notes: Sequence[ThreadNote], policy: str, priority: int) -> list[str]:
    """irq/N-name threads next to the probe's policy and priority, with a warning per conflict."""
    mine = f"{policy} {priority}" if policy in ("fifo", "rr") else "other"
    head = ["PID", "THREAD", "POLICY", "PRIO", "AFFINITY", "PROBE_CPUS", "PROBE", "NOTE"]
    rows = []
    for n in notes:
        t = n.task
        allowed = ",".join(str(c) for c in t.allowed_cpus) if t.allowed_cpus is not None else "-"
        note = {"above": "WARNING: its handler preempts the probe; its run time counts as latency",
                "equal": "same priority: FIFO order decides who waits",
                "below": "the probe preempts this handler: the device waits while the probe runs"}[n.relation]
        rows.append([str(t.pid), t.comm, t.policy, str(t.rt_priority), _short(allowed),
                     ",".join(str(c) for c in n.cpus), mine, note])
    if not rows:
        return [f"no irq/N threads share the probe's CPUs (the probe runs at {mine})"]
    return table(head, rows, left=(1, 2, 4, 5, 6, 7))


def _short(text: str, width: int = 24) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


WAKEUP_HEADER = ["CPU", "WAKEUPS", "TIMED", "IRQ_AVG_us", "IRQ_MAX_us", "THREAD_AVG_us", "THREAD_MAX_us",
                 "KERNEL_AVG_us", "KERNEL_P99_us", "KERNEL_MAX_us", "USER_AVG_us", "USER_MAX_us", "RETURN_AVG_us"]
SOURCE = {"bpf": "in-kernel BPF histograms", "tracefs": "tracefs trace window"}


def _return_avg(w: WakeupSummary) -> float | None:
    k, u = w.kernel.stats(), w.user.stats()
    return None if k.avg_ns is None or u.avg_ns is None else u.avg_ns - k.avg_ns


def wakeup_lines(wakeups: Sequence[WakeupSummary], fallback: str | None = None) -> list[str]:
    """Kernel-timed wake-ups per CPU beside the probe's own figure; fallback: why not BPF."""
    rows = []
    for w in wakeups:
        i, t, k, u = (h.stats() for h in (w.irq, w.thread, w.kernel, w.user))
        rows.append([str(w.cpu), str(w.samples), str(w.timed), us(i.avg_ns), us(i.max_ns), us(t.avg_ns), us(t.max_ns),
                     us(k.avg_ns), us(k.p99_ns), us(k.max_ns), us(u.avg_ns), us(u.max_ns), us(_return_avg(w))])
    source = wakeups[0].source if wakeups else "tracefs"
    same = ("the same wake-ups" if source == "tracefs" else "all its wake-ups")
    out = [f"# kernel wake-up latency, from kernel events ({SOURCE[source]}), in us: KERNEL = deadline -> switch-in "
           f"= IRQ (deadline -> hrtimer expiry) + THREAD (expiry -> switch-in); USER = the probe's figure for {same}; "
           "RETURN = USER - KERNEL (return to user space and the interpreter's clock read)"]
    if fallback:
        out.append(f"# {fallback}")
    out += table(WAKEUP_HEADER, rows)
    for w in wakeups:
        if w.no_switch_in:
            out.append(f"# CPU {w.cpu}: {w.no_switch_in} wake-ups without a switch-in (not timed in the kernel)")
        if w.not_seen:
            why = "events lost, or outside the window" if w.source == "tracefs" else "no program ran at their expiry"
            out.append(f"# CPU {w.cpu}: {w.not_seen} wake-ups whose timer expiry the kernel side did not see ({why})")
        if w.kernel_above_user:
            out.append(f"# CPU {w.cpu}: {w.kernel_above_user} wake-ups with KERNEL > USER: the trace clock and "
                       "CLOCK_MONOTONIC disagree")
    return out


def lost_lines(lost: dict[int, int], cpu: int, rate: float, buffer_kb: int, bigger_kb: int, realtime: int | None,
               drain_s: float, again: str) -> list[str]:
    """What a trace that lost events means for the explanations, and the command that keeps them.

    The kernel drops events when a CPU's buffer is full before the reader drains it: a reader
    starved by a flood on every CPU (SCHED_OTHER, behind ksoftirqd and the flood's own tasks), or
    a buffer too small for the event rate. lost: events lost by CPU (only CPUs that lost any);
    cpu, rate: the busiest of them; bigger_kb: a buffer that holds it; again: the command to run.
    """
    cells = ", ".join(f"{n} events on CPU{c}" if i == 0 else f"{n} on CPU{c}" for i, (c, n) in enumerate(sorted(lost.items())))
    out = [f"# the trace lost {cells}: a breach there is explained only in part (marked incomplete)"]
    held = buffer_kb * 1024 / EVENT_BYTES / rate if rate else 0.0
    size = (f"; CPU{cpu} made about {rate:,.0f} events/s, which {buffer_kb} KiB holds for {held:.2f} s "
            f"(the reader drains every {drain_s:g} s)" if bigger_kb > buffer_kb else "")
    if realtime is None:
        out.append("# its reader ran SCHED_OTHER and can starve behind interrupt work and the tasks it delays"
                   f"{size}; read at SCHED_FIFO 1 (below the probe): {again}")
    elif bigger_kb > buffer_kb:
        out.append(f"# even at SCHED_FIFO {realtime}{size}: {again}")
    else:
        out.append(f"# even at SCHED_FIFO {realtime} with {buffer_kb} KiB per CPU: interrupt work or real-time "
                   "tasks above it held the reader (`ps -eLo pid,cls,rtprio,pcpu,comm --sort=-rtprio | head` lists them)")
    return out
