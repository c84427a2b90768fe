"""The doctor's text report: findings worst first, each cause with its chain, actions (command and undo) and folded symptoms."""

from __future__ import annotations

from irqlab.analysis.actions import Action
from irqlab.analysis.delta import Rates
from irqlab.analysis.findings import Finding, Severity
from irqlab.outputs.text import header_line
from irqlab.units import printable

SEVERITY_MARK = {
    Severity.CRITICAL: "CRITICAL",
    Severity.WARNING: "WARNING ",
    Severity.INFO: "info    ",
    Severity.OK: "ok      ",
}
INDENT = " " * 9
CHAIN = ("<- ", "-> ")  # evidence lines of a causal chain: back to a source, forward to harm


def render_action(a: Action) -> list[str]:
    """A write as a person runs it: the command, what it replaces and why, what to expect, the undo."""
    where = f" (in {a.namespace.label})" if a.namespace is not None else ""
    return [
        f"{INDENT}$ {a.command}",
        f"{INDENT}  {a.path}{where}: {a.old} -> {a.new}; {a.why}",
        f"{INDENT}  expect: {a.effect}",
        f"{INDENT}  undo: {a.undo}",
    ]


def render_finding(f: Finding) -> list[str]:
    out = [f"{SEVERITY_MARK[f.severity]} {f.title}  [{f.code}: {f.subject}]"]
    out += [f"{INDENT}{e}" if e.startswith(CHAIN) else f"{INDENT}- {e}" for e in f.evidence]
    if f.recommendation:
        out.append(f"{INDENT}> {f.recommendation}")
    for a in f.actions:
        out += render_action(a)
    out += [f"{INDENT}explains {g.severity.label} [{g.code}: {g.subject}] {g.title}" for g in f.folded]
    return out


def render_doctor(findings: list[Finding], rates: Rates) -> str:
    parts = [header_line(rates.after, rates.interval_s, "irqlab doctor"), ""]
    counts = {s: sum(1 for f in findings if f.severity == s) for s in Severity}
    for f in findings:
        parts += render_finding(f) + [""]
    parts.append(
        f"{counts[Severity.CRITICAL]} critical, {counts[Severity.WARNING]} warning, "
        f"{counts[Severity.INFO]} info (sampled {rates.interval_s:.1f} s)"
    )
    return "".join(printable(p) + "\n" for p in parts)
