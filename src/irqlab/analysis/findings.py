"""Finding: one explained problem (or all-clear) with its evidence and a recommendation."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from irqlab.analysis.actions import Action


class Severity(IntEnum):
    """How bad a finding is; the doctor's exit code follows the worst one."""

    OK = 0
    INFO = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Finding:
    """What is wrong, the numbers that prove it, and what to change."""

    severity: Severity
    code: str  # stable identifier: "storm", "ksoftirqd-pressure", ...
    subject: str  # "IRQ 41 (virtio3-rx)", "CPU1", "NET_RX"
    title: str
    evidence: tuple[str, ...] = ()
    recommendation: str = ""
    metrics: dict[str, float | int | str | None] = field(default_factory=dict)
    actions: tuple[Action, ...] = ()  # the writes that fix it, on this machine
    folded: tuple[Finding, ...] = ()  # symptom findings this cause explains (not listed again)


def rank(findings: list[Finding]) -> list[Finding]:
    """Worst first; within a severity causes (by harm) before symptoms (by size), then by subject."""

    def weight(f: Finding) -> float:
        # A cause is weighed by its harm score (analysis/causes.py), a symptom by its size.
        value = f.metrics.get("harm", f.metrics.get("rate_per_s", f.metrics.get("pct", 0.0)))
        return float(value) if isinstance(value, (int, float)) else 0.0

    return sorted(findings, key=lambda f: (-int(f.severity), "harm" not in f.metrics, -weight(f), f.code, f.subject))


def worst(findings: list[Finding]) -> Severity:
    """The highest severity present (OK when there is none)."""
    return max((f.severity for f in findings), default=Severity.OK)
