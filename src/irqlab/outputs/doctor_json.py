"""The doctor's JSON report (schema in docs/json.md and docs/doctor.md): findings with their actions and folded symptoms."""

from __future__ import annotations

from typing import Any

from irqlab import __version__
from irqlab.analysis.actions import Action
from irqlab.analysis.delta import Rates
from irqlab.analysis.findings import Finding
from irqlab.outputs.jsonout import SCHEMA_VERSION, num


def action_json(a: Action) -> dict[str, Any]:
    ns = a.namespace
    return {
        "kind": a.kind,
        "path": a.path,
        "namespace": None if ns is None else {"label": ns.label, "name": ns.name, "pid": ns.pid, "enter": ns.enter},
        "old": a.old,
        "new": a.new,
        "why": a.why,
        "effect": a.effect,
        "command": a.command,
        "undo": a.undo,
    }


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "severity": f.severity.label,
        "code": f.code,
        "subject": f.subject,
        "title": f.title,
        "evidence": list(f.evidence),
        "recommendation": f.recommendation or None,
        "metrics": {k: (num(v) if not isinstance(v, str) else v) for k, v in f.metrics.items()},
        "actions": [action_json(a) for a in f.actions],
        "folded": [{"severity": g.severity.label, "code": g.code, "subject": g.subject, "title": g.title} for g in f.folded],
    }


def doctor_json(findings: list[Finding], rates: Rates, exit_code: int) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "irqlab_version": __version__,
        "status": max(findings, key=lambda f: f.severity).severity.label if findings else "ok",
        "exit_code": exit_code,
        "interval_s": num(rates.interval_s),
        "host": {"hostname": rates.after.host.hostname or None, "kernel": rates.after.host.kernel or None},
        "findings": [finding_json(f) for f in findings],
    }
