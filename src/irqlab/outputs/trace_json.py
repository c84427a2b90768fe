"""JSON form of a TraceResult (schema in docs/trace.md): durations in integer nanoseconds."""

from __future__ import annotations

from typing import Any

from irqlab import __version__
from irqlab.model.histogram import Histogram
from irqlab.model.trace_result import CONTEXTS, Handler, ThreadTime, TraceResult

SCHEMA_VERSION = 1


def stats_json(h: Histogram | None) -> dict[str, Any]:
    """count, total_ns and min/avg/p50/p90/p99/p99.9/max in ns (null when nothing was seen)."""
    if h is None:
        return {"count": 0, "total_ns": 0, "min_ns": None, "avg_ns": None, "p50_ns": None, "p90_ns": None,
                "p99_ns": None, "p999_ns": None, "max_ns": None}
    s = h.stats()
    return {
        "count": s.count,
        "total_ns": h.sum_ns,
        "min_ns": s.min_ns,
        "avg_ns": None if s.avg_ns is None else round(s.avg_ns),
        "p50_ns": s.p50_ns,
        "p90_ns": s.p90_ns,
        "p99_ns": s.p99_ns,
        "p999_ns": s.p999_ns,
        "max_ns": s.max_ns,
    }


def _block(h: Histogram | None) -> dict[str, Any]:
    return {**stats_json(h), "histogram": h.to_dict() if h is not None else None}


def handler_json(h: Handler, cpus: tuple[int, ...] | None = None) -> dict[str, Any]:
    """One handler: totals over cpus, the same per CPU, net durations, and for softirqs latency and contexts."""
    ident: dict[str, Any] = {"softirq": {"vector": h.name, "nr": h.key}, "irq": {"irq": h.key, "name": h.name or None},
                             "vector": {"vector": h.name, "number": h.key}, "tasklet": {"function": h.name, "address": f"0x{h.key:x}" if h.key >= 0 else None},
                             "bhwork": {"function": h.name, "address": f"0x{h.key:x}" if h.key >= 0 else None}}[h.kind]
    out: dict[str, Any] = {"kind": h.kind, **ident, **_block(h.merged("gross", cpus)), "net": stats_json(h.merged("net", cpus))}
    per_cpu: dict[str, Any] = {}
    for c in sorted(set(h.gross) | set(h.latency)):
        if cpus is not None and c not in cpus:
            continue
        row = {**stats_json(h.gross.get(c)), "net": stats_json(h.net.get(c))}
        if h.kind == "softirq":
            row["latency"] = stats_json(h.latency.get(c))
            row["contexts"] = _contexts(h, (c,))
        per_cpu[str(c)] = row
    if h.kind == "softirq":
        out["latency"] = _block(h.merged("latency", cpus))
        out["contexts"] = _contexts(h, cpus)
        runs, time = h.context_share("ksoftirqd", cpus)
        out["ksoftirqd_share"] = {"runs": _share(runs), "time": _share(time)}
    out["per_cpu"] = per_cpu
    return out


def _share(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _contexts(h: Handler, cpus) -> dict[str, Any]:
    sel = [c for c in h.runs_by_context if cpus is None or c in cpus]
    return {ctx: {"runs": sum(h.runs_by_context[c].get(ctx, 0) for c in sel), "total_ns": sum(h.ns_by_context[c].get(ctx, 0) for c in sel)}
            for ctx in CONTEXTS}


def _by_cpu(d: dict[int, int], cpus: tuple[int, ...]) -> dict[str, int]:
    return {str(c): int(d.get(c, 0)) for c in cpus}


def trace_json(r: TraceResult) -> dict[str, Any]:
    """The whole result; CPU keys are strings, as in every irqlab JSON."""
    cpus = r.cpus
    return {
        "schema": SCHEMA_VERSION,
        "command": "trace",
        "irqlab_version": __version__,
        "source": r.source or None,
        "window_s": round(r.window_ns / 1e9, 6),
        "cpus": list(cpus),
        "complete": r.complete,
        "lost_events": _by_cpu(r.lost, cpus),
        "events": _by_cpu(r.events, cpus),
        "histogram_layout": {"bucket_ns": r.layout.bucket_ns, "limit_ns": r.layout.limit_ns},
        "ksoftirqd_pids": list(r.ksoftirqd_pids),
        "softirqs": [handler_json(h, cpus) for h in r.softirqs],
        "hardirqs": [handler_json(h, cpus) for h in r.hardirqs],
        "tasklets": [handler_json(h, cpus) for h in r.tasklets],
        "softirq_passes": {str(c): {"passes": r.passes.get(c, 0), "restarts": r.restarts.get(c, 0)} for c in cpus},
        "truncated": {what: _by_cpu(per_cpu, cpus) for what, per_cpu in sorted(r.truncated.items())},
        "napi_threads": [napi_thread_json(t, r.window_ns) for t in r.threads],
    }


def napi_thread_json(t: ThreadTime, window_ns: int) -> dict[str, Any]:
    """One napi/DEV-ID kthread on one CPU: its run time in the window (thread time, not NET_RX softirq time)."""
    return {"pid": t.pid, "comm": t.comm, "device": t.device or None, "napi_id": t.napi_id, "cpu": t.cpu,
            "runs": t.runs if t.source == "sched_switch" else None, "run_ns": t.run_ns,
            "cpu_share": round(t.run_ns / window_ns, 4) if window_ns > 0 else None,
            "prio": t.prio, "priority": t.priority or None, "source": t.source}
