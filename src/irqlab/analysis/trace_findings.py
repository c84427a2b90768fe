"""Doctor findings from a TraceResult: slow softirq/hardirq handlers, ksoftirqd delegation, restarts, lost events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from irqlab.analysis.findings import Finding, Severity
from irqlab.model.histogram import Histogram
from irqlab.model.trace_result import Handler, TraceResult


@dataclass(frozen=True, slots=True)
class TraceThresholds:
    """Where a handler's tail becomes worth a finding (ns) and delegation worth noting."""

    softirq_p99_warn_ns: int = 200_000  # 200 us of one softirq run delays everything on that CPU
    softirq_p99_crit_ns: int = 2_000_000
    hardirq_p99_warn_ns: int = 50_000  # hardirqs run with interrupts off
    hardirq_p99_crit_ns: int = 500_000
    # The local timer vector runs every expired hrtimer callback (tick, scheduler, timers), and
    # in a VM its measured time includes host preemption (steal): 30 us averages are normal
    # there, so system vectors get their own, wider limits.
    vector_p99_warn_ns: int = 250_000
    vector_p99_crit_ns: int = 2_000_000
    latency_p99_warn_ns: int = 1_000_000  # raise -> run waits of 1 ms mean ksoftirqd or long passes
    wait_busy_pct: float = 10.0  # a CPU busy less than this (% of the sample) was idle: its waits harmed no one
    ksoftirqd_time_info: float = 0.25  # share of a vector's time in ksoftirqd that is mentioned
    restart_info: float = 0.10  # share of passes that restarted
    min_runs: int = 100  # fewer runs than this give no percentile findings


def _us(ns: int | None) -> str:
    return "-" if ns is None else (f"{ns / 1000:.0f} us" if ns < 10_000_000 else f"{ns / 1e6:.1f} ms")


def _level(value: int | None, warn: int, crit: int) -> Severity | None:
    if value is None or value < warn:
        return None
    return Severity.CRITICAL if value >= crit else Severity.WARNING


@dataclass(frozen=True, slots=True)
class _Busy:
    """How busy one CPU was: /proc/stat's share of the sample, and the trace's interrupt time."""

    stat_pct: float | None  # user + nice + system + irq + softirq, % of the sample; None = unknown
    irq_pct: float  # hardirq and softirq handlers, % of the trace window (a lower bound of busy)

    @property
    def pct(self) -> float | None:
        return None if self.stat_pct is None else max(self.stat_pct, self.irq_pct)

    def idle(self, limit_pct: float) -> bool:
        """Known to be idle: without /proc/stat nothing proves that no task waited."""
        return self.pct is not None and self.pct < limit_pct

    def describe(self, cpu: int) -> str:
        stat = "unknown (no /proc/stat)" if self.stat_pct is None else f"{self.stat_pct:.1f} % of the sample (/proc/stat)"
        return f"CPU{cpu} busy {stat}, {self.irq_pct:.1f} % of the trace in interrupt handlers"


def _irq_time_pct(result: TraceResult, cpu: int) -> float:
    """Share of the window (percent) the CPU spent in hardirq and softirq handlers (net of nesting)."""
    ns = sum(h.gross[cpu].sum_ns for h in result.hardirqs if cpu in h.gross)
    ns += sum(h.net[cpu].sum_ns for h in result.softirqs if cpu in h.net)
    return 100.0 * ns / result.window_ns if result.window_ns > 0 else 0.0


def _softirq_findings(h: Handler, cpu: int, t: TraceThresholds, busy: _Busy) -> list[Finding]:
    out: list[Finding] = []
    g = h.gross.get(cpu)
    if g is None or g.count < t.min_runs:
        return out
    p99 = g.percentile(99)
    runs, share = h.context_share("ksoftirqd", (cpu,))
    where = f", {100 * share:.0f} % of it in ksoftirqd/{cpu}" if share else ""
    sev = _level(p99, t.softirq_p99_warn_ns, t.softirq_p99_crit_ns)
    if sev is not None:
        out.append(Finding(
            sev, "trace-softirq-slow", f"{h.name} on CPU{cpu}",
            f"{h.name} p99 {_us(p99)} on CPU{cpu}{where}",
            (f"{g.count} runs, avg {_us(round(g.sum_ns / g.count))}, max {_us(g.max_ns)} (softirq_entry -> softirq_exit)",),
            "Long softirq runs delay every task on that CPU: spread the load (RSS/RPS, IRQ affinity), "
            "lower net.core.netdev_budget(_usecs) for NET_RX, or move the work to threaded NAPI.",
            {"p99_ns": p99, "cpu": cpu, "ksoftirqd_time_share": share, "pct": 100 * (share or 0)},
        ))
    elif share is not None and share >= t.ksoftirqd_time_info:
        out.append(Finding(
            Severity.INFO, "trace-ksoftirqd-delegation", f"{h.name} on CPU{cpu}",
            f"{100 * share:.0f} % of {h.name} time on CPU{cpu} ran in ksoftirqd/{cpu}",
            (f"{100 * (runs or 0):.0f} % of {g.count} runs; ksoftirqd runs at normal priority, so this work now competes with tasks",),
            "Expected under sustained load; if latency matters, check netdev_budget and the CPU's other load.",
            {"cpu": cpu, "ksoftirqd_time_share": share, "pct": 100 * share},
        ))
    lat = h.latency.get(cpu)
    lp99 = lat.percentile(99) if lat is not None and lat.count >= t.min_runs else None
    if lat is not None and lp99 is not None and lp99 >= t.latency_p99_warn_ns:
        out.append(_wait_finding(h, cpu, lat, lp99, busy, t))
    return out


# Vectors whose late run delays no packet, block completion or timer: their raise -> run wait
# is information whatever the CPU's load (kernel/rcu/tree.c: RCU_SOFTIRQ invokes callbacks
# whose grace period already ended, so a late run only frees memory later; kernel/sched/fair.c:
# SCHED_SOFTIRQ is the periodic load balancer). Measured on the idle VM: RCU p99 2-4 ms, one
# scheduler tick, while another process kept the CPU 16 % busy.
HOUSEKEEPING: dict[str, str] = {
    "RCU": "RCU_SOFTIRQ runs callbacks whose grace period has ended; running them later only frees memory later.",
    "SCHED": "SCHED_SOFTIRQ is the periodic load balancer; a late run only balances later.",
}


def _wait_finding(h: Handler, cpu: int, lat: Histogram, lp99: int, busy: _Busy, t: TraceThresholds) -> Finding:
    """A long raise -> run wait: a WARNING on a busy CPU, information on an idle one.

    kernel/softirq.c (v6.18): a softirq raised outside interrupt context (raise_softirq_irqoff())
    or left over by a handle_softirqs() pass past 2 ms or 10 restarts is handed to ksoftirqd
    (wakeup_softirqd()). On an idle CPU the wait is ksoftirqd's wake-up: one scheduler tick at
    worst on a NO_HZ idle CPU (measured here: p99 2.1 ms for RCU on an idle 2-CPU VM, more when
    the host runs the vCPU late). No task was running there, so no task waited; on a busy CPU
    ksoftirqd (SCHED_NORMAL) competes with the tasks, and the work and the tasks both wait.
    """
    ks_runs, _ = h.context_share("ksoftirqd", (cpu,))
    in_ks = f"{100 * ks_runs:.0f} % of runs in ksoftirqd/{cpu}" if ks_runs is not None else "no runs seen"
    base = f"{h.name} waited p99 {_us(lp99)} from raise to run on CPU{cpu}"
    evidence = (f"{lat.count} raise -> entry waits, max {_us(lat.max_ns)}; {in_ks}", busy.describe(cpu))
    metrics: dict[str, float | int | str | None] = {"p99_ns": lp99, "cpu": cpu, "pct": 100 * (ks_runs or 0), "busy_pct": busy.pct}
    if h.name in HOUSEKEEPING:
        return Finding(
            Severity.INFO, "trace-softirq-wait", f"{h.name} on CPU{cpu}", f"{base}: housekeeping, no I/O or timer waited", evidence,
            f"Nothing to do: {HOUSEKEEPING[h.name]}", metrics,
        )
    if busy.idle(t.wait_busy_pct):
        how = "deferred to ksoftirqd on an idle CPU" if ks_runs else "on an idle CPU"
        return Finding(
            Severity.INFO, "trace-softirq-wait", f"{h.name} on CPU{cpu}", f"{base}: {how}, no task waited", evidence,
            "Nothing to do: ksoftirqd's wake-up on an idle CPU delays only the deferred work itself.", metrics,
        )
    return Finding(
        Severity.WARNING, "trace-softirq-wait", f"{h.name} on CPU{cpu}", f"{base} ({in_ks})", evidence,
        "Raised softirqs wait for ksoftirqd or for a long pass of other vectors: find what occupies the CPU.", metrics,
    )


def _hardirq_findings(h: Handler, cpu: int, t: TraceThresholds) -> list[Finding]:
    g = h.gross.get(cpu)
    if g is None or g.count < t.min_runs:
        return []
    p99 = g.percentile(99)
    if h.kind == "irq":
        sev = _level(p99, t.hardirq_p99_warn_ns, t.hardirq_p99_crit_ns)
    else:
        sev = _level(p99, t.vector_p99_warn_ns, t.vector_p99_crit_ns)
    if sev is None:
        return []
    label = f"IRQ {h.key} ({h.name})" if h.kind == "irq" else f"{h.name} (system vector)"
    return [Finding(
        sev, "trace-hardirq-slow", f"{label} on CPU{cpu}", f"{label} handler p99 {_us(p99)} on CPU{cpu}",
        (f"{g.count} runs, max {_us(g.max_ns)}; interrupts are off on that CPU meanwhile",),
        "A hard IRQ handler should take microseconds: move work to a threaded handler or softirq, check the driver.",
        {"p99_ns": p99, "cpu": cpu},
    )]


def trace_summary(result: TraceResult, top: int = 3, thresholds: TraceThresholds = TraceThresholds()) -> Finding:
    """One info line with the busiest softirq vectors and hard IRQs of the window, measured, and
    the limits from which a handler's tail becomes a finding of its own."""
    lines = []
    for label, handlers in (("softirq", result.softirqs), ("hardirq", result.hardirqs)):
        merged = [(h, h.merged()) for h in handlers]
        busy = sorted(((h, m) for h, m in merged if m is not None and m.count), key=lambda hm: -hm[1].count)
        for h, m in busy[:top]:
            _, share = h.context_share("ksoftirqd") if label == "softirq" else (None, None)
            ks = f", {100 * share:.0f} % of time in ksoftirqd" if share else ""
            lines.append(
                f"{label} {h.name}: {m.count} runs, avg {_us(round(m.sum_ns / m.count))}, "
                f"p99 {_us(m.percentile(99))}, max {_us(m.max_ns)}{ks}"
            )
    seconds = result.window_ns / 1e9
    return Finding(
        Severity.INFO, "trace-summary", result.source or "trace",
        f"handler durations over {seconds:.1f} s of tracing" + ("" if result.complete else " (PARTIAL)"),
        tuple(lines) or ("no interrupt handler ran",),
        (f"a handler's tail becomes a finding from p99 {_us(thresholds.softirq_p99_warn_ns)} for a softirq vector, "
         f"{_us(thresholds.hardirq_p99_warn_ns)} for a device IRQ (it runs with interrupts off) and "
         f"{_us(thresholds.vector_p99_warn_ns)} for a system vector such as LOC, over at least {thresholds.min_runs} runs"),
        {"events": sum(result.events.values())},
    )


def trace_findings(
    result: TraceResult, thresholds: TraceThresholds = TraceThresholds(), cpu_busy_pct: Mapping[int, float] | None = None
) -> list[Finding]:
    """Findings for one trace window, per CPU; a PARTIAL result says so first.

    cpu_busy_pct: each CPU's busy share of the sample (percent, from /proc/stat), which tells a
    wait that delayed tasks from one on an idle CPU; without it, long waits stay warnings.
    """
    out: list[Finding] = []
    if not result.complete:
        lost = ", ".join(f"CPU{c}: {n}" if c >= 0 else f"{n} BPF runs skipped (any CPU)" for c, n in sorted(result.lost.items()) if n)
        out.append(Finding(
            Severity.INFO, "trace-lost-events", result.source or "trace",
            "trace is PARTIAL: the kernel dropped events", (lost,),
            ("BPF skips a program run that would nest in another on the same CPU (the kernel's recursion "
             "guard); counts and tails below are low estimates." if result.source == "bpf" else
             "Use a shorter window or a larger --buffer-kb; counts and tails below are low estimates."),
            {"lost": sum(result.lost.values())},
        ))
    for cpu in result.cpus:
        busy = _Busy((cpu_busy_pct or {}).get(cpu), _irq_time_pct(result, cpu))
        for h in result.softirqs:
            out += _softirq_findings(h, cpu, thresholds, busy)
        for h in result.hardirqs:
            out += _hardirq_findings(h, cpu, thresholds)
        passes, restarts = result.passes.get(cpu, 0), result.restarts.get(cpu, 0)
        # The event stream cannot always tell a new pass from a restart (an idle CPU woken by
        # one IPI after another runs every pass in the idle task, with only hardirqs between):
        # more restarts than passes means the estimate failed, so it says nothing.
        if passes >= thresholds.min_runs and restarts <= passes and restarts / passes >= thresholds.restart_info:
            out.append(Finding(
                Severity.INFO, "trace-softirq-restarts", f"CPU{cpu}",
                f"{100 * restarts / passes:.0f} % of softirq passes on CPU{cpu} restarted",
                (f"{restarts} of {passes} handle_softirqs() passes ran a vector again (estimated from the event order)",),
                "Softirqs are raised faster than one pass drains them; after 10 restarts or 2 ms the kernel hands over to ksoftirqd.",
                {"cpu": cpu, "pct": 100 * restarts / passes},
            ))
    return out
