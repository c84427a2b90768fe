"""JSON renderings (schemas in docs/json.md): numbers are numbers, NaN is null, CPU keys are strings."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from irqlab import __version__
from irqlab.analysis.delta import Rates
from irqlab.analysis.findings import Finding
from irqlab.cpulist import format_cpulist
from irqlab.model.snapshot import Snapshot

SCHEMA_VERSION = 1


def num(value: Any) -> float | int | None:
    """A JSON number: ints stay ints, NaN becomes null."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        return None
    return int(v) if v.is_integer() and abs(v) < 2**53 else round(v, 3)


def by_cpu(cpus: tuple[int, ...], values: np.ndarray, only: tuple[int, ...] | None = None) -> dict[str, Any]:
    return {str(c): num(values[i]) for i, c in enumerate(cpus) if only is None or c in only}


def snapshot_meta(snap: Snapshot) -> dict[str, Any]:
    return {
        "origin": snap.origin,
        "taken_ns": snap.taken_ns,
        "wall_time": snap.wall_time or None,
        "hostname": snap.host.hostname or None,
        "kernel": snap.host.kernel or None,
        "unreadable": [{"source": u.source, "path": u.path, "reason": u.reason} for u in snap.unreadable],
    }


def irqs_json(rates: Rates, only: tuple[int, ...] | None, include_idle: bool = True) -> list[dict[str, Any]]:
    irq = rates.interrupts
    if irq is None:
        return []
    info = rates.after.irqinfo
    out = []
    for k, line in enumerate(irq.lines):
        if not include_idle and not (np.nan_to_num(irq.total_rate[k]) > 0):
            continue
        entry: dict[str, Any] = {
            "irq": line.irq,
            "name": line.name,
            "chip": line.chip or None,
            "hwirq": line.hwirq or None,
            "trigger": line.trigger or None,
            "actions": list(line.actions),
            "per_cpu": line.per_cpu,
            "delta": by_cpu(irq.cpus, irq.delta[k], only) if line.per_cpu else {},
            "rate": by_cpu(irq.cpus, irq.rate[k], only) if line.per_cpu else {},
            "total_delta": num(irq.total_delta[k]),
            "total_rate": num(irq.total_rate[k]),
        }
        if line.numbered and int(line.irq) in info:
            i = info[int(line.irq)]
            entry["affinity"] = format_cpulist(i.affinity) if i.affinity is not None else None
            entry["effective_affinity"] = format_cpulist(i.effective_affinity) if i.effective_affinity is not None else None
        out.append(entry)
    return out


def softirqs_json(rates: Rates, only: tuple[int, ...] | None) -> list[dict[str, Any]]:
    s = rates.softirqs
    if s is None:
        return []
    return [
        {
            "vector": v,
            "delta": by_cpu(s.cpus, s.delta[i], only),
            "rate": by_cpu(s.cpus, s.rate[i], only),
            "total_delta": num(np.nansum(s.delta[i])),
            "total_rate": num(np.nansum(s.rate[i])),
        }
        for i, v in enumerate(s.vectors)
    ]


def cpus_json(rates: Rates, only: tuple[int, ...] | None) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {}
    if rates.cpu is not None:
        for i, c in enumerate(rates.cpu.cpus):
            out.setdefault(str(c), {}).update(
                {f"{name}_pct": num(rates.cpu.pct[i, j]) for j, name in enumerate(rates.cpu.fields)}
            )
    for c, pct in rates.ksoftirqd_pct().items():
        out.setdefault(str(c), {})["ksoftirqd_pct"] = num(pct)
    if rates.softnet is not None:
        for i, c in enumerate(rates.softnet.cpus):
            row = out.setdefault(str(c), {})
            for j, name in enumerate(rates.softnet.fields):
                row[f"softnet_{name}_per_s"] = num(rates.softnet.rate[i, j])
            row["softnet_backlog_len"] = rates.softnet.backlog_len[i]
    if only is not None:
        out = {k: v for k, v in out.items() if int(k) in only}
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


def rates_json(rates: Rates, only: tuple[int, ...] | None = None, include_idle: bool = True) -> dict[str, Any]:
    """Everything differenced between two snapshots."""
    return {
        "schema": SCHEMA_VERSION,
        "irqlab_version": __version__,
        "interval_s": num(rates.interval_s),
        "before": snapshot_meta(rates.before),
        "after": snapshot_meta(rates.after),
        "cpus": [c for c in (rates.interrupts.cpus if rates.interrupts else ()) if only is None or c in only],
        "irqs": irqs_json(rates, only, include_idle),
        "softirqs": softirqs_json(rates, only),
        "per_cpu": cpus_json(rates, only),
        "threads": [
            {"pid": r.task.pid, "comm": r.task.comm, "kind": r.task.kind, "cpu_pct": num(r.cpu_pct),
             "policy": r.task.policy, "rt_priority": r.task.rt_priority}
            for r in rates.tasks
        ],
        "warnings": [{"source": w.source, "subject": w.subject, "kind": w.kind, "message": w.message} for w in rates.warnings],
    }


def finding_json(f: Finding) -> dict[str, Any]:
    """One doctor finding (outputs/doctor_json.py renders the doctor's report)."""
    from irqlab.outputs.doctor_json import finding_json as render

    return render(f)


def doctor_json(findings: list[Finding], rates: Rates, exit_code: int) -> dict[str, Any]:
    """The doctor's report; kept here for callers of this module (outputs/doctor_json.py renders it)."""
    from irqlab.outputs.doctor_json import doctor_json as render

    return render(findings, rates, exit_code)


def dumps(obj: Any, pretty: bool = True) -> str:
    return json.dumps(obj, indent=2 if pretty else None, sort_keys=False) + "\n"
