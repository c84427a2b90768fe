"""Plain-text renderings: the top tables, doctor findings, diff. Units in every header."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from irqlab.analysis.delta import Rates
from irqlab.cpulist import format_cpulist
from irqlab.model.snapshot import Snapshot
from irqlab.outputs.columns import ColumnPlan, plan_columns
from irqlab.units import format_pct, format_rate, printable


@dataclass(frozen=True, slots=True)
class TableOptions:
    """How much of the machine to show."""

    only_cpus: tuple[int, ...] | None = None
    top: int = 20  # hard-IRQ rows
    max_columns: int = 12  # CPU columns before CPUs are grouped into ranges
    hide_idle: bool = True  # rows and CPUs with no events
    name_width: int = 32


def _cell(value: float) -> str:
    return "-" if np.isnan(value) else format_rate(float(value))


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Right-aligned columns except the first `left` and the last (names)."""
    # Names come from other machines' files: escaped before the widths are measured.
    header, rows = [printable(v) for v in header], [[printable(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    out = []
    for r in [header] + rows:
        cells = []
        for i, v in enumerate(r):
            if i == len(r) - 1 and i >= left:
                cells.append(v)
            elif i < left:
                cells.append(v.ljust(widths[i]))
            else:
                cells.append(v.rjust(widths[i]))
        out.append("  ".join(cells).rstrip())
    return out


def header_line(snap: Snapshot, interval_s: float, title: str = "irqlab") -> str:
    h = snap.host
    ncpu = len(snap.interrupts.cpus) if snap.interrupts else 0
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(snap.wall_time)) if snap.wall_time else "capture"
    host = h.hostname or "?"
    kernel = f" ({h.kernel})" if h.kernel else ""
    return f"{title} - {host}{kernel}, {ncpu} CPUs online, interval {interval_s:.2f} s, {when}"


def _activity(rate: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Events per second per CPU over all rows; a cell not differenced (NaN) counts as 0.

    rows: the only rows that can hold a nonzero rate (the others add nothing, exactly).
    """
    # fmax(NaN, 0) is 0: one pass, where nansum(nan_to_num(...)) made two copies first.
    out: np.ndarray = np.fmax(rate if rows is None else rate[rows], 0.0).sum(axis=0)
    return out


def _plan(rates: Rates, cpus: tuple[int, ...], activity: np.ndarray, opts: TableOptions) -> ColumnPlan:
    return plan_columns(cpus, activity, opts.only_cpus, opts.max_columns, opts.hide_idle)


def _grouped(plan: ColumnPlan) -> str:
    return "; columns that are CPU ranges show sums" if any(len(c.cpus) > 1 for c in plan.columns) else ""


def irq_table(rates: Rates, opts: TableOptions) -> list[str]:
    irq = rates.interrupts
    if irq is None:
        return ["hard IRQs: /proc/interrupts not available"]
    # A row whose total delta is 0 has no event on any CPU (deltas are >= 0 or NaN, and a NaN
    # makes the total NaN): at 1152 CPUs 944 of 1056 rows, whose cells need not be read.
    plan = _plan(rates, irq.cpus, _activity(irq.rate, np.flatnonzero(irq.total_delta != 0)), opts)
    totals = np.nan_to_num(irq.total_rate, nan=-1.0)
    order = [int(k) for k in np.argsort(-totals, kind="stable") if not (opts.hide_idle and totals[k] <= 0)]
    shown = order[: opts.top]
    # Only the shown rows are summed into columns: at 1152 CPUs the whole matrix is 1.2 M cells.
    per_col = plan.apply(irq.rate[shown])
    info = rates.after.irqinfo
    rows = []
    for n, k in enumerate(shown):
        line = irq.lines[k]
        name = line.name
        eff = info.get(int(line.irq)).effective_affinity if line.numbered and int(line.irq) in info else None
        cells = [_cell(v) for v in per_col[n]] if line.per_cpu else ["-"] * len(plan.columns)
        rows.append(
            [line.irq, _cell(irq.total_rate[k])]
            + cells
            + [format_cpulist(eff) if eff else "-", printable(name)[: opts.name_width]]
        )
    head = ["IRQ", "TOTAL"] + [c.label for c in plan.columns] + ["EFF", "NAME"]
    title = f"hard IRQs (interrupts/s{_grouped(plan)}): {len(shown)} of {len(irq.lines)} rows"
    if len(order) > len(shown):
        title += f", {len(order) - len(shown)} more active rows not shown (--top)"
    out = [title] + _table(head, rows)
    if plan.hidden_idle:
        out.append(f"  idle CPUs not shown: {format_cpulist(plan.hidden_idle)}")
    return out


def softirq_table(rates: Rates, opts: TableOptions) -> list[str]:
    s = rates.softirqs
    if s is None:
        return ["softirqs: /proc/softirqs not available"]
    plan = _plan(rates, s.cpus, _activity(s.rate), opts)
    per_col = plan.apply(s.rate)
    total = np.nansum(s.rate, axis=1)
    rows = [
        [v, _cell(total[i])] + [_cell(x) for x in per_col[i]] + [""]
        for i, v in enumerate(s.vectors)
        if not (opts.hide_idle and total[i] <= 0)
    ]
    head = ["VECTOR", "TOTAL"] + [c.label for c in plan.columns] + [""]
    out = [f"softirqs (softirqs/s{_grouped(plan)})"] + _table(head, rows)
    if plan.hidden_idle:
        out.append(f"  idle CPUs not shown: {format_cpulist(plan.hidden_idle)}")
    return out


def cpu_table(rates: Rates, opts: TableOptions) -> list[str]:
    """Per-CPU summary: %irq, %softirq, %idle, ksoftirqd %CPU, softnet rates."""
    cpus = rates.cpu.cpus if rates.cpu else (rates.interrupts.cpus if rates.interrupts else ())
    ks = rates.ksoftirqd_pct()
    napi = rates.napi_pct()  # None: no threaded NAPI, and no column
    sn = rates.softnet.rate if rates.softnet else None
    sn_cpu = {c: i for i, c in enumerate(rates.softnet.cpus)} if rates.softnet else {}
    busy = _busy_cpus(rates, cpus, ks, sn_cpu)
    hide = opts.hide_idle and len(cpus) > opts.max_columns
    only = None if opts.only_cpus is None else frozenset(opts.only_cpus)
    rows = []
    for i, c in enumerate(cpus):
        if (only is not None and c not in only) or (hide and not busy[i]):
            continue
        pct = rates.cpu.pct[i] if rates.cpu else None
        j = sn_cpu.get(c)
        snv = sn[j] if sn is not None and j is not None else np.full(5, np.nan)
        rows.append(
            [
                f"{c}",
                format_pct(None if pct is None or np.isnan(pct[5]) else float(pct[5])),
                format_pct(None if pct is None or np.isnan(pct[6]) else float(pct[6])),
                format_pct(None if pct is None or np.isnan(pct[3]) else float(pct[3])),
                format_pct(ks.get(c)),
                *([] if napi is None else [format_pct(napi.get(c, 0.0))]),
                _cell(snv[0]),
                _cell(snv[1]),
                _cell(snv[2]),
                "",
            ]
        )
    head = ["CPU", "%irq", "%soft", "%idle", "%ksoftirqd", *([] if napi is None else ["%napi"]), "pkts/s", "drop/s", "squeeze/s", ""]
    out = ["per CPU (%irq/%soft/%idle from /proc/stat; softnet_stat packets/s)"] + _table(head, rows)
    if napi is not None:
        out += napi_lines(rates)
    if rates.softnet is not None and not rates.softnet.cpu_ids_known:
        out.append("  softnet_stat has no CPU column before Linux 5.14: CPU ids of its rows are guesses")
    return out


def napi_lines(rates: Rates, limit: int = 8) -> list[str]:
    """The threaded-NAPI kthreads (receive work as thread time, not in %soft), busiest first."""
    napi = sorted((r for r in rates.tasks if r.task.kind == "napi"), key=lambda r: (-r.cpu_pct, r.task.pid))
    rows = [[r.task.comm, f"{r.task.pid}", format_pct(r.cpu_pct), "-" if r.task.last_cpu is None else f"{r.task.last_cpu}",
             r.task.policy, f"{r.task.rt_priority}" if r.task.policy in ("fifo", "rr") else f"nice {r.task.nice}"]
            for r in napi[:limit]]
    out = ["threaded NAPI kthreads (their receive work is thread time, not %soft)"]
    out += _table(["THREAD", "PID", "%CPU", "CPU", "POLICY", "PRIO"], rows, left=1)
    if len(napi) > limit:
        out.append(f"  +{len(napi) - limit} more")
    return out


def _busy_cpus(rates: Rates, cpus: tuple[int, ...], ks: dict[int, float], sn_cpu: dict[int, int]) -> list[bool]:
    """Per CPU: any irq or softirq time, ksoftirqd time or softnet events (arrays, not a loop of numpy calls)."""
    busy = np.zeros(len(cpus), bool)
    if rates.cpu:
        pct = rates.cpu.pct
        busy |= (np.nan_to_num(pct[:, 5]) + np.nan_to_num(pct[:, 6])) > 0
    position = {c: i for i, c in enumerate(cpus)}
    for c, v in ks.items():
        if c in position and v > 0:
            busy[position[c]] = True
    if rates.softnet is not None and sn_cpu:
        moved = np.nansum(rates.softnet.rate, axis=1) > 0
        for c, j in sn_cpu.items():
            if c in position and moved[j]:
                busy[position[c]] = True
    out: list[bool] = busy.tolist()
    return out


def kernel_notes(snap: Snapshot) -> list[str]:
    """What this kernel does not measure, said under the tables it affects (sources/kernel.py)."""
    k = snap.kernel
    if k is None or k.irq_time_accounting is not False:
        return []
    return ["note: this kernel does not account IRQ time (no CONFIG_IRQ_TIME_ACCOUNTING): %irq stays 0, %softirq is "
            "sampled by the tick and interrupt time counts as the interrupted task's; `irqlab trace` (root) measures it"]


def warnings_block(rates: Rates) -> list[str]:
    bad = [w for w in rates.warnings if w.kind not in ("appeared", "vanished")]
    return [f"warning: {w.message}" for w in bad]


def render_top(rates: Rates, opts: TableOptions) -> str:
    parts = [header_line(rates.after, rates.interval_s, "irqlab top"), ""]
    parts += irq_table(rates, opts) + [""] + softirq_table(rates, opts) + [""] + cpu_table(rates, opts)
    parts += warnings_block(rates) + kernel_notes(rates.after)
    return _lines(parts)


def _lines(parts: list[str]) -> str:
    """The report's lines, each shown safely: a host or IRQ name may hold ESC or newlines."""
    return "".join(printable(p) + "\n" for p in parts)
