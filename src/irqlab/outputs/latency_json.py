"""JSON of `irqlab latency` (schema in docs/latency.md): latencies in microseconds as numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from irqlab import __version__
from irqlab.analysis.latency import Blame, CpuLatency, Explanation, LatencyReport, ThreadNote, Verdict
from irqlab.analysis.wakeup import WakeupSummary

SCHEMA_VERSION = 1


def _us(ns: float | None) -> float | None:
    return None if ns is None else round(ns / 1000, 3)


def cpu_json(c: CpuLatency) -> dict[str, Any]:
    s = c.stats
    return {"samples": s.count, "min_us": _us(s.min_ns), "avg_us": _us(s.avg_ns), "p50_us": _us(s.p50_ns),
            "p90_us": _us(s.p90_ns), "p99_us": _us(s.p99_ns), "p999_us": _us(s.p999_ns), "max_us": _us(s.max_ns),
            "overflows": s.overflows, "missed": c.missed, "histogram": c.hist.to_dict()}


def report_json(report: LatencyReport) -> dict[str, Any]:
    return {"cpus": {str(c.cpu): cpu_json(c) for c in report.per_cpu}, "overall": cpu_json(report.overall)}


def verdict_json(v: Verdict) -> dict[str, Any]:
    return {"name": v.budget.name, "cpus": list(v.budget.cpus) if v.budget.cpus else None,
            "result": "PASS" if v.passed else "FAIL", "consequence": v.budget.consequence,
            "checks": [{"metric": c.metric, "limit_us": _us(c.limit_ns), "measured_us": _us(c.measured_ns), "ok": c.ok}
                       for c in v.checks]}


def explanation_json(e: Explanation) -> dict[str, Any]:
    b = e.breach
    return {"cpu": b.cpu, "deadline_ns": b.deadline_ns, "latency_us": _us(b.latency_ns), "complete": e.complete,
            "timer_irq_us": _us(e.timer_irq_ns),
            "woken_after_us": None if e.woken_ns is None else _us(e.woken_ns - b.deadline_ns),
            "switched_in_after_us": None if e.switched_in_ns is None else _us(e.switched_in_ns - b.deadline_ns),
            "kernel_irq_us": _us(e.irq_ns), "kernel_thread_us": _us(e.thread_ns),
            "kernel_us": _us(e.kernel_ns) if e.irq_ns is not None else None,
            "parts": [{"kind": p.kind, "context": p.label, "time_us": _us(p.duration_ns), "runs": p.count} for p in e.parts]}


def blame_json(rows: Sequence[Blame]) -> list[dict[str, Any]]:
    return [{"kind": r.kind, "context": r.label, "total_us": _us(r.total_ns), "breaches": r.breaches,
             "worst_us": _us(r.worst_ns)} for r in rows]


def threads_json(notes: Sequence[ThreadNote]) -> list[dict[str, Any]]:
    return [{"pid": n.task.pid, "comm": n.task.comm, "irq": n.task.irq, "policy": n.task.policy,
             "priority": n.task.rt_priority, "allowed_cpus": list(n.task.allowed_cpus) if n.task.allowed_cpus else None,
             "probe_cpus": list(n.cpus), "relation": n.relation} for n in notes]


def lost_json(lost: dict[int, int]) -> dict[str, int]:
    """Events the kernel dropped, by CPU id, only CPUs that lost any ({} when the trace is complete)."""
    return {str(c): int(n) for c, n in sorted(lost.items()) if n}


def document(meta: dict[str, Any], **sections: Any) -> dict[str, Any]:
    """The top-level object: version, run parameters, then whatever sections the run produced."""
    return {"irqlab_version": __version__, "schema": SCHEMA_VERSION, "command": "latency", **meta,
            **{k: v for k, v in sections.items() if v is not None}}


def _part(h) -> dict[str, Any]:
    s = h.stats()
    return {"count": s.count, "avg_us": _us(s.avg_ns), "p99_us": _us(s.p99_ns), "max_us": _us(s.max_ns)}


def wakeup_json(wakeups: Sequence[WakeupSummary]) -> dict[str, Any]:
    """Per CPU: kernel-timed wake-ups, their parts, and the probe's figure (tracefs: for the same ones)."""
    out = {}
    for w in wakeups:
        k, u = w.kernel.stats(), w.user.stats()
        ret = None if k.avg_ns is None or u.avg_ns is None else _us(u.avg_ns - k.avg_ns)
        out[str(w.cpu)] = {"pid": w.pid, "source": w.source, "wakeups": w.samples, "matched": w.timed,
                           "unmatched": w.samples - w.timed, "no_switch_in": w.no_switch_in, "not_seen": w.not_seen,
                           "kernel_above_user": w.kernel_above_user,
                           "irq": _part(w.irq), "thread": _part(w.thread), "kernel": _part(w.kernel),
                           "user": _part(w.user), "return": {"avg_us": ret}}
    return out
