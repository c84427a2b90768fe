"""One self-contained HTML report of a recording: plots embedded as PNG, findings, storms.

No scripts, no external files: the page opens from a mail attachment or a ticket. The
findings are the doctor's over the whole recording (first to last sample); storm intervals
come from the per-interval rates and the storm thresholds, and are shaded on every plot.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass

import numpy as np

from irqlab.analysis.delta import Rates, compute_rates
from irqlab.analysis.doctor import diagnose
from irqlab.analysis.findings import Finding
from irqlab.analysis.storm_levels import storm_levels
from irqlab.analysis.thresholds import Thresholds
from irqlab.model.histogram import Histogram
from irqlab.model.snapshot import Snapshot
from irqlab.outputs import report_plots as plots
from irqlab.outputs.report_placement import CSS as PLACEMENT_CSS
from irqlab.outputs.report_placement import placement_html

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; } td, th { padding: .2em .8em; border-bottom: 1px solid #eee; text-align: left; }
.critical { color: #b00; font-weight: bold; } .warning { color: #b60; font-weight: bold; }
.info { color: #357; } .ok { color: #070; }
figure { margin: 1em 0; } img { max-width: 100%; }
.rec { color: #555; font-size: .95em; }
"""


@dataclass(frozen=True, slots=True)
class StormRow:
    """One storm event for the report's table (recorded, or found from the rates)."""

    wall_time: float
    irq: str
    name: str
    level: int
    rate_per_s: float


def interval_rates(snaps: list[Snapshot]) -> list[Rates]:
    """Rates of consecutive samples, skipping pairs that do not move forward in time."""
    out = []
    for a, b in zip(snaps, snaps[1:]):
        if b.taken_ns > a.taken_ns and a.interrupts is not None and b.interrupts is not None:
            out.append(compute_rates(a, b))
    return out


def _storms(rates: list[Rates], t: Thresholds) -> tuple[np.ndarray, list[StormRow]]:
    flags = np.zeros(len(rates), dtype=bool)
    rows = []
    for j, r in enumerate(rates):
        levels = storm_levels(r.interrupts.total_rate, t)
        flags[j] = bool(levels.any())
        for k in np.flatnonzero(levels):
            line = r.interrupts.lines[k]
            rows.append(StormRow(r.after.wall_time, line.irq, line.name, int(levels[k]), float(r.interrupts.total_rate[k])))
    return flags, rows


def _when(wall: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(wall)) if wall else "-"


def _findings_html(findings: list[Finding]) -> str:
    out = ["<table><tr><th>severity</th><th>subject</th><th>finding</th><th>evidence</th><th>recommendation</th></tr>"]
    for f in findings:
        e = html.escape
        out.append(
            f'<tr><td class="{f.severity.label}">{f.severity.label}</td><td>{e(f.subject)}</td><td>{e(f.title)}</td>'
            f"<td>{'<br>'.join(e(x) for x in f.evidence)}</td><td class=rec>{e(f.recommendation) or '-'}</td></tr>"
        )
    out.append("</table>")
    return "\n".join(out)


def _storm_table(rows: list[StormRow]) -> str:
    if not rows:
        return "<p>No IRQ crossed the storm threshold in any interval.</p>"
    body = "".join(
        f"<tr><td>{_when(r.wall_time)}</td><td>{html.escape(r.irq)}</td><td>{html.escape(r.name)}</td>"
        f"<td>{'critical' if r.level == 2 else 'storm'}</td><td>{r.rate_per_s:,.0f}</td></tr>"
        for r in rows[:200]
    )
    more = f"<p>... and {len(rows) - 200} more.</p>" if len(rows) > 200 else ""
    return f"<table><tr><th>interval end</th><th>IRQ</th><th>name</th><th>level</th><th>interrupts/s</th></tr>{body}</table>{more}"


def _img(alt: str, png: str) -> str:
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{png}"></figure>'


def _merged(histograms: list[tuple[float, str, dict[str, str], Histogram]]) -> dict[str, Histogram]:
    """One histogram per name and labels, merged over samples (layouts must match)."""
    out: dict[str, Histogram] = {}
    for _, name, labels, h in histograms:
        key = name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}" if labels else "")
        if key in out and out[key].same_layout(h):
            out[key].merge(h)
        elif key not in out:
            out[key] = h.copy()
    return out


def render_report(
    snaps: list[Snapshot],
    histograms: list[tuple[float, str, dict[str, str], Histogram]] = (),
    thresholds: Thresholds | None = None,
    title: str = "irqlab report",
) -> str:
    """The whole HTML page."""
    t = thresholds or Thresholds()
    rates = interval_rates(snaps)
    e = html.escape
    first, last = snaps[0], snaps[-1]
    host = last.host
    head = [
        f"<h1>{e(title)}</h1>",
        f"<p>{e(host.hostname or '?')}, kernel {e(host.kernel or '?')}, "
        f"{len(last.interrupts.cpus) if last.interrupts else '?'} CPUs; {len(snaps)} samples from "
        f"{_when(first.wall_time)} to {_when(last.wall_time)} ({(last.taken_ns - first.taken_ns) / 1e9:,.0f} s).</p>",
    ]
    parts = []
    if not rates:
        parts.append("<p>Fewer than two samples that move forward in time: no rates, no plots.</p>")
    else:
        flags, storm_rows = _storms(rates, t)
        whole = compute_rates(rates[0].before, rates[-1].after)
        parts.append("<h2>Findings (first to last sample)</h2>" + _findings_html(diagnose(whole, t)))
        parts.append(f"<h2>Storms (IRQs at or above {t.storm_warn_rate:,.0f}/s, shaded red in the plots)</h2>" + _storm_table(storm_rows))
        s = plots.build_series(rates, flags)
        parts.append("<h2>Hard interrupts</h2>")
        parts.append(_img("hard interrupts per second by CPU over time", plots.heat_cpu_time(s)))
        if len(s.irq_names):
            parts.append(_img("mean interrupts per second, IRQ by CPU", plots.heat_irq_cpu(s)))
            parts.append(_img("top IRQs over time", plots.top_irqs(s)))
        parts.append("<h2>IRQ placement (first to last sample)</h2>" + placement_html(whole))
        parts.append("<h2>Softirqs and ksoftirqd</h2>")
        if len(s.vectors):
            parts.append(_img("softirq vectors over time", plots.softirq_vectors(s)))
        if np.isfinite(s.ksoftirqd_pct).any():
            parts.append(_img("ksoftirqd CPU use over time", plots.ksoftirqd(s)))
        if np.isfinite(s.drops).any():
            parts.append("<h2>Softnet</h2>" + _img("softnet drops and time squeezes", plots.softnet(s)))
    merged = _merged(list(histograms))
    if merged:
        parts.append("<h2>Latency histograms</h2>")
        parts.extend(_img(key, plots.histogram(key, h)) for key, h in sorted(merged.items()))
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{e(title)}</title><style>{CSS}{PLACEMENT_CSS}</style></head><body>\n"
        + "\n".join(head + parts)
        + "\n<p class=rec>made by irqlab report</p></body></html>\n"
    )
