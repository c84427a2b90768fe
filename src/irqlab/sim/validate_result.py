"""The result of one validation experiment (validate.py, validate_netrx.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Result:
    """One experiment: its curves, the criterion, and whether the model met it."""

    name: str
    claim: str
    xlabel: str
    xs: tuple
    series: dict[str, list[float]]
    ylabel: str
    criterion: str
    passed: bool
    detail: str
    tests: str = "published"  # what the experiment tests; see TESTS
    seconds: float = 0.0  # wall time the experiment took
