"""The isolation report as text: per quiet CPU its verdict, offenders ranked with cause and fix, and what may land there."""

from __future__ import annotations

from irqlab.analysis.delta import Rates
from irqlab.analysis.isolation import CpuIsolation, IsolationReport, Offender
from irqlab.analysis.isolation_trace import TraceAttribution, Traced
from irqlab.cpulist import format_cpulist
from irqlab.outputs.doctor_text import INDENT, render_action
from irqlab.outputs.text import header_line
from irqlab.units import format_rate, printable


def render_offender(o: Offender) -> list[str]:
    out = [f"  {format_rate(o.rate_per_s):>8}/s  {o.kind:<7} {o.name}", f"{INDENT}cause: {o.cause}"]
    if o.action is not None:
        out += render_action(o.action)
    if o.hint:
        out.append(f"{INDENT}> {o.hint}")
    return out


TRACED_SHOWN = 8


def render_traced(ts: tuple[Traced, ...]) -> list[str]:
    """What the trace saw interrupt the CPU, most first."""
    out = [f"    {format_rate(t.rate_per_s):>8}/s  {t.kind:<7} {t.text}" for t in ts[:TRACED_SHOWN]]
    if len(ts) > TRACED_SHOWN:
        out.append(f"    ... {len(ts) - TRACED_SHOWN} more (--json lists them all)")
    return out


def render_cpu(c: CpuIsolation, trace: TraceAttribution | None = None) -> list[str]:
    out = [f"CPU{c.cpu}: {c.verdict.upper()}  (declared by {', '.join(c.declared)}"
           + ("; nohz_full" if c.nohz_full and not any(d.startswith("nohz_full") for d in c.declared) else "") + ")"]
    if c.offenders:
        out.append("  offenders (interruptions per second, most first):")
        for o in c.offenders:
            out += render_offender(o)
    else:
        out.append("  no offender at or above its threshold")
    if c.tolerated:
        out.append("  below threshold: " + ", ".join(f"{o.name} {format_rate(o.rate_per_s)}/s" for o in c.tolerated))
    if trace is not None:
        ts = trace.of(c.cpu)
        out.append("  traced (who caused it, per second):" + ("" if ts else " nothing"))
        out += render_traced(ts)
    out.append("  may land here:" + ("" if c.allowed else " nothing irqlab can see"))
    out += [f"    {a.kind:<11} {a.name}: {a.detail}" for a in c.allowed]
    return out


def render_isolation(report: IsolationReport, rates: Rates) -> str:
    parts = [header_line(rates.after, rates.interval_s, "irqlab isolation"),
             f"housekeeping CPUs: {format_cpulist(report.housekeeping) or 'none'}"]
    if report.trace_note:
        parts.append(f"note: {report.trace_note}")
    if report.trace is not None and report.trace.lost:
        parts.append(f"note: the kernel dropped {report.trace.lost} trace events: traced rates are lower bounds")
    parts.append("")
    for c in report.cpus:
        parts += render_cpu(c, report.trace) + [""]
    noisy = [c.cpu for c in report.cpus if c.verdict == "noisy"]
    parts.append(f"{len(noisy)} of {len(report.cpus)} quiet CPUs noisy (sampled {rates.interval_s:.1f} s)")
    return "".join(printable(p) + "\n" for p in parts)
