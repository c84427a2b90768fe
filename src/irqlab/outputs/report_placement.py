"""The report's placement grid: each busy IRQ against the CPUs, allowed / effective / landed.

One HTML table (no image: the cells carry the numbers as titles, and a browser's find works on
them). A cell shows where the IRQ landed (its rate), whether the CPU is in its effective
affinity (bold border) or only allowed (light fill), and strays (landed outside the effective
affinity) in red. Columns are CPUs, or ranges of CPUs on a large machine (outputs/columns.py).
"""

from __future__ import annotations

import html

import numpy as np

from irqlab.analysis.delta import Rates
from irqlab.analysis.landing import Landing, landings
from irqlab.cpulist import format_cpulist
from irqlab.outputs.columns import plan_columns
from irqlab.units import format_rate

CSS = """
table.place td.c { text-align: center; padding: .1em .3em; min-width: 2.2em; font-size: .85em; border: 1px solid #eee; }
table.place td.allowed { background: #eef4fb; } table.place td.eff { border: 2px solid #357; }
table.place td.hit { background: #fde0b0; } table.place td.stray { background: #f6b0b0; color: #800; font-weight: bold; }
table.place th.c { font-size: .8em; writing-mode: vertical-rl; }
"""

MAX_ROWS = 40
MAX_COLUMNS = 32


def _cpus(cpus: tuple[int, ...] | None) -> str:
    return "?" if cpus is None else format_cpulist(cpus) or "-"


def _movable(r: Landing) -> str:
    if r.movable is None:
        return "?"
    return "yes" if r.movable else "no"


def placement_html(rates: Rates, max_rows: int = MAX_ROWS) -> str:
    """The placement section for one interval (the report passes first-to-last sample)."""
    rows = landings(rates, active_only=True)
    if rates.interrupts is None or not rows:
        return "<p>No numbered IRQ took an interrupt in this interval.</p>"
    cpus = rates.interrupts.cpus
    shown = rows[:max_rows]
    activity = np.zeros(len(cpus))
    pos = {c: i for i, c in enumerate(cpus)}
    for r in shown:
        for c, v in r.landed.items():
            activity[pos[c]] += v
        for c in set(r.affinity or ()) | set(r.effective or ()):
            if c in pos:
                activity[pos[c]] += 1e-9  # allowed CPUs stay visible even when idle
    plan = plan_columns(cpus, activity, max_columns=MAX_COLUMNS)
    e = html.escape
    head = "".join(f"<th class=c>{e(col.label.removeprefix('CPU'))}</th>" for col in plan.columns)
    body = []
    for r in shown:
        allowed, eff, strays = set(r.affinity or ()), set(r.effective or r.affinity or ()), set(r.strays)
        cells = []
        for col in plan.columns:
            ids = col.cpus
            rate = sum(r.landed.get(c, 0.0) for c in ids)
            cls = ["c"]
            if any(c in allowed for c in ids):
                cls.append("allowed")
            if any(c in eff for c in ids):
                cls.append("eff")
            if any(c in strays for c in ids):
                cls.append("stray")
            elif rate > 0:
                cls.append("hit")
            title = f"IRQ {r.irq} on CPU {col.label.removeprefix('CPU')}: {rate:,.1f}/s"
            cells.append(f"<td class='{' '.join(cls)}' title='{e(title)}'>{format_rate(rate) if rate > 0 else ''}</td>")
        why = f" title='{e(r.why)}'" if r.why else ""
        body.append(
            f"<tr><td>{r.irq}</td><td>{e(r.name)}</td><td>{e(r.queue or '-')}</td><td>{format_rate(r.rate_per_s)}</td>"
            f"<td>{_cpus(r.affinity)}</td><td>{_cpus(r.effective)}</td><td{why}>{_movable(r)}</td>{''.join(cells)}</tr>"
        )
    note = f"<p>{len(rows) - len(shown)} quieter IRQs left out.</p>" if len(rows) > len(shown) else ""
    stray_rows = [r for r in shown if r.strays]
    stray_note = "".join(
        f"<p class=warning>IRQ {r.irq} ({e(r.name)}) took interrupts on CPU {format_cpulist(r.strays)}, outside its "
        f"effective affinity {_cpus(r.effective or r.affinity)}: its affinity changed during the recording.</p>"
        for r in stray_rows
    )
    return (
        "<p>Each busy IRQ against the CPUs: light fill = allowed (smp_affinity_list), framed = where the kernel "
        "sends it (effective_affinity_list), orange = interrupts per second that landed there, red = landed "
        "outside the effective affinity.</p>"
        "<table class=place><tr><th>IRQ</th><th>name</th><th>queue</th><th>rate /s</th><th>allowed CPUs</th>"
        f"<th>effective CPUs</th><th>movable</th>{head}</tr>\n" + "\n".join(body) + "</table>" + note + stray_note
    )
