"""The isolation report as JSON (docs/isolation.md): per quiet CPU its verdict, offenders with cause and fix, and what may land."""

from __future__ import annotations

from typing import Any

from irqlab import __version__
from irqlab.analysis.delta import Rates
from irqlab.analysis.isolation import CpuIsolation, IsolationReport, Offender
from irqlab.analysis.isolation_trace import TraceAttribution
from irqlab.outputs.doctor_json import action_json
from irqlab.outputs.jsonout import SCHEMA_VERSION, num


def offender_json(o: Offender) -> dict[str, Any]:
    return {
        "kind": o.kind,
        "name": o.name,
        "rate_per_s": num(o.rate_per_s),
        "threshold_per_s": num(o.threshold_per_s),
        "cause": o.cause,
        "fix": action_json(o.action) if o.action is not None else None,
        "hint": o.hint or None,
    }


def cpu_json(c: CpuIsolation) -> dict[str, Any]:
    return {
        "verdict": c.verdict,
        "declared": list(c.declared),
        "nohz_full": c.nohz_full,
        "offenders": [offender_json(o) for o in c.offenders],
        "tolerated": [offender_json(o) for o in c.tolerated],
        "allowed": [{"kind": a.kind, "name": a.name, "detail": a.detail} for a in c.allowed],
    }


def attribution_json(t: TraceAttribution) -> dict[str, Any]:
    return {
        "window_s": num(t.window_s),
        "lost_events": t.lost,
        "cpus": {str(cpu): [{"kind": x.kind, "what": x.what, "site": x.site or None, "senders": list(x.senders),
                             "count": x.count, "rate_per_s": num(x.rate_per_s)} for x in ts]
                 for cpu, ts in sorted(t.by_cpu.items())},
    }


def isolation_json(report: IsolationReport, rates: Rates, exit_code: int) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "irqlab_version": __version__,
        "exit_code": exit_code,
        "interval_s": num(report.interval_s),
        "host": {"hostname": rates.after.host.hostname or None, "kernel": rates.after.host.kernel or None},
        "housekeeping": list(report.housekeeping),
        "attribution": attribution_json(report.trace) if report.trace is not None else None,
        "attribution_note": report.trace_note or None,
        "cpus": {str(c.cpu): cpu_json(c) for c in report.cpus},
    }
