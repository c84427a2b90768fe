"""JSON renderings (schemas in docs/json.md): numbers are numbers, NaN is null, CPU keys are strings.

`diff` and `top` print the rates in one of two schemas: 1 keys every CPU of every row (on a
1152-CPU machine 44 MB, nearly all of it zeros), 2 (the default) leaves zero deltas out and
prints one row per line with the standard library's C encoder.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from irqlab import __version__
from irqlab.analysis.delta import Rates
from irqlab.cpulist import format_cpulist
from irqlab.model.snapshot import KernelInfo, Snapshot

SCHEMA_VERSION = 1  # doctor
RATES_SCHEMAS = (1, 2)  # diff and top: 1 every cell, 2 sparse (zero deltas left out)
RATES_SCHEMA_DEFAULT = 2


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


def nums(values: np.ndarray) -> list[float | int | None]:
    """num() of every value of an array, the same results, without a Python call per value."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    with np.errstate(invalid="ignore"):
        whole = finite & (np.floor(v) == v) & (np.abs(v) < 2**53)
    return [
        int(x) if w else (round(x, 3) if f else None)
        for x, w, f in zip(v.tolist(), whole.tolist(), finite.tolist())
    ]


def by_cpu(cpus: tuple[int, ...], values: np.ndarray, only: tuple[int, ...] | None = None) -> dict[str, Any]:
    cols = _columns(cpus, only)
    return dict(zip([str(cpus[i]) for i in cols.tolist()], nums(values[cols])))


def _columns(cpus: tuple[int, ...], only: tuple[int, ...] | None) -> np.ndarray:
    """Column indices of the CPUs kept by -C (all of them without it)."""
    if only is None:
        return np.arange(len(cpus))
    keep = set(only)
    return np.array([i for i, c in enumerate(cpus) if c in keep], dtype=np.intp)


def sparse_by_cpu(
    cpus: tuple[int, ...], delta: np.ndarray, rate: np.ndarray, only: tuple[int, ...] | None,
    live: np.ndarray | None = None,
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Per row, (delta, rate) keyed by CPU id with the zero cells left out (schema 2).

    A cell that was not differenced (NaN: a reset) is not zero: it stays, as null. Only the
    nonzero cells are visited, so the cost follows the activity, not rows x CPUs. live: the
    only rows that can hold a nonzero cell, in order (the others are not read at all).
    """
    cols = _columns(cpus, only)
    live = np.arange(delta.shape[0]) if live is None else live
    d = delta[live] if len(live) < delta.shape[0] else delta
    d = d[:, cols] if only is not None else d
    picked, at = np.nonzero(d != 0)  # NaN != 0: kept
    rows = live[picked]
    bounds = np.searchsorted(rows, np.arange(delta.shape[0] + 1)).tolist()
    keys = [str(cpus[i]) for i in cols.tolist()]
    names = [keys[j] for j in at.tolist()]
    dv = nums(d[picked, at])
    rv = nums(rate[rows, cols[at]])
    return [
        (dict(zip(names[lo:hi], dv[lo:hi])), dict(zip(names[lo:hi], rv[lo:hi])))
        for lo, hi in zip(bounds, bounds[1:])
    ]


def snapshot_meta(snap: Snapshot) -> dict[str, Any]:
    return {
        "origin": snap.origin,
        "taken_ns": snap.taken_ns,
        "wall_time": snap.wall_time or None,
        "hostname": snap.host.hostname or None,
        "kernel": snap.host.kernel or None,
        "unreadable": [{"source": u.source, "path": u.path, "reason": u.reason} for u in snap.unreadable],
        **({"kernel_info": kernel_json(snap.kernel)} if snap.kernel is not None else {}),
    }


def kernel_json(k: KernelInfo) -> dict[str, Any]:
    """What kind of kernel (sources/kernel.py): PREEMPT_RT, preemption model, IRQ time accounting (null: unknown)."""
    return {"release": k.release or None, "realtime": k.realtime, "preempt": k.preempt, "preempt_dynamic": k.preempt_dynamic,
            "irq_time_accounting": k.irq_time_accounting, "irq_time_evidence": k.irq_time_evidence or None,
            "bh_workqueues": k.bh_workqueues}


def irqs_json(
    rates: Rates, only: tuple[int, ...] | None, include_idle: bool = True, schema: int = 1
) -> list[dict[str, Any]]:
    irq = rates.interrupts
    if irq is None:
        return []
    info = rates.after.irqinfo
    # A row whose total delta is 0 has a delta of 0 on every CPU (deltas are >= 0 or NaN, and a
    # NaN makes the total NaN): most rows of a big machine, whose cells need not be read.
    live = np.flatnonzero(irq.total_delta != 0)
    sparse = sparse_by_cpu(irq.cpus, irq.delta, irq.rate, only, live) if schema >= 2 else None
    busy = (np.nan_to_num(irq.total_rate) > 0).tolist()
    total_delta, total_rate = nums(irq.total_delta), nums(irq.total_rate)
    out = []
    for k, line in enumerate(irq.lines):
        if not include_idle and not busy[k]:
            continue
        if sparse is not None:
            delta, rate = sparse[k] if line.per_cpu else ({}, {})
        else:
            delta = by_cpu(irq.cpus, irq.delta[k], only) if line.per_cpu else {}
            rate = by_cpu(irq.cpus, irq.rate[k], only) if line.per_cpu else {}
        entry: dict[str, Any] = {
            "irq": line.irq,
            "name": line.name,
            "chip": line.chip or None,
            "hwirq": line.hwirq or None,
            "trigger": line.trigger or None,
            "actions": list(line.actions),
            "per_cpu": line.per_cpu,
            "delta": delta,
            "rate": rate,
            "total_delta": total_delta[k],
            "total_rate": total_rate[k],
        }
        if line.numbered and int(line.irq) in info:
            i = info[int(line.irq)]
            entry["affinity"] = format_cpulist(i.affinity) if i.affinity is not None else None
            entry["effective_affinity"] = format_cpulist(i.effective_affinity) if i.effective_affinity is not None else None
        out.append(entry)
    return out


def softirqs_json(rates: Rates, only: tuple[int, ...] | None, schema: int = 1) -> list[dict[str, Any]]:
    s = rates.softirqs
    if s is None:
        return []
    if schema >= 2:
        cells = sparse_by_cpu(s.cpus, s.delta, s.rate, only)
    else:
        cells = [(by_cpu(s.cpus, s.delta[i], only), by_cpu(s.cpus, s.rate[i], only)) for i in range(len(s.vectors))]
    return [
        {
            "vector": v,
            "delta": cells[i][0],
            "rate": cells[i][1],
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


def rates_json(
    rates: Rates, only: tuple[int, ...] | None = None, include_idle: bool = True, schema: int = 1
) -> dict[str, Any]:
    """Everything differenced between two snapshots, in schema 1 (every cell) or 2 (sparse)."""
    if schema not in RATES_SCHEMAS:
        raise ValueError(f"rates JSON schema {schema}: not one of {RATES_SCHEMAS}")
    return {
        "schema": schema,
        "irqlab_version": __version__,
        "interval_s": num(rates.interval_s),
        "before": snapshot_meta(rates.before),
        "after": snapshot_meta(rates.after),
        "cpus": [c for c in (rates.interrupts.cpus if rates.interrupts else ()) if only is None or c in only],
        "irqs": irqs_json(rates, only, include_idle, schema),
        "softirqs": softirqs_json(rates, only, schema),
        "per_cpu": cpus_json(rates, only),
        "threads": [
            {"pid": r.task.pid, "comm": r.task.comm, "kind": r.task.kind, "cpu_pct": num(r.cpu_pct),
             "policy": r.task.policy, "rt_priority": r.task.rt_priority, "last_cpu": r.task.last_cpu}
            for r in rates.tasks
        ],
        "warnings": [{"source": w.source, "subject": w.subject, "kind": w.kind, "message": w.message} for w in rates.warnings],
    }


def dumps(obj: Any, pretty: bool = True) -> str:
    return json.dumps(obj, indent=2 if pretty else None, sort_keys=False) + "\n"


def dumps_lines(obj: dict[str, Any], pretty: bool = True) -> str:
    """A document with one key per line and one list item (or dict entry) per line below it.

    For rates in schema 2: as readable as indent=2 for a row-per-line table, and every line is
    written by json's C encoder (json.dumps with indent falls back to the pure-Python one,
    about 2 us per value). Not pretty: one line, as `top --json` prints a report.
    """
    if not pretty:
        return json.dumps(obj) + "\n"
    enc = json.JSONEncoder().encode
    parts = []
    for key, value in obj.items():
        head = f"  {enc(key)}: "
        if isinstance(value, list) and value and isinstance(value[0], dict):
            body = ",\n".join("    " + enc(v) for v in value)
            parts.append(f"{head}[\n{body}\n  ]")
        elif isinstance(value, dict) and value and key in LINE_PER_ENTRY:
            body = ",\n".join(f"    {enc(k)}: {enc(v)}" for k, v in value.items())
            parts.append(f"{head}{{\n{body}\n  }}")
        else:
            parts.append(head + enc(value))
    return "{\n" + ",\n".join(parts) + "\n}\n"


LINE_PER_ENTRY = frozenset({"per_cpu"})  # dicts whose entries go one per line in dumps_lines()


def render_rates(
    rates: Rates, only: tuple[int, ...] | None = None, include_idle: bool = True, schema: int = RATES_SCHEMA_DEFAULT,
    pretty: bool = True,
) -> str:
    """The text of `diff --json` / `top --json`: schema 1 as indent=2 JSON, schema 2 a row per line."""
    doc = rates_json(rates, only, include_idle, schema)
    return dumps(doc, pretty) if schema == 1 else dumps_lines(doc, pretty)
