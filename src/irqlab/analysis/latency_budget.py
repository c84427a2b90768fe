"""Latency budgets from TOML: classes with CPUs, interval and limits on p99 / p99.9 / max.

Pure: parse_budgets() takes the decoded file (or its text); the cli reads the file and checks
who may write it. The keys are a schema table (irqlab/schema.py); every problem is one
BudgetError in the schema's format, e.g.
`budgets.toml: class[1].max_us: must be a duration above 0 and up to 10000000 us, not -5`.

    [defaults]              # optional; any class key except name, consequence
    interval_us = 1000
    duration_s = 5

    [[class]]
    name = "brake"
    cpus = "1"              # CPU list like -C; default: every selected CPU
    max_us = 50             # at least one of p99_us, p999_us, max_us ("50us", "0.05ms" too)
    consequence = "at 100 km/h the car travels 1.4 mm more per 50 us"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from irqlab.schema import Array, At, CpuList, Duration, Int, SchemaError, Str, Table, Values, decode_toml, read

LIMIT_KEYS = ("p99_us", "p999_us", "max_us")
MAX_CLASSES = 64
MAX_DURATION_S = 3600


class BudgetError(SchemaError):
    """A budget file that is not what irqlab latency expects."""


def _limit() -> Duration:
    return Duration(None, "us", 0, 10_000_000, lo_open=True)


# The keys a class may set; [defaults] may set all but name and consequence.
CLASS_SCHEMA = {
    "name": Str(required=True, max_len=80, nonempty=True),
    "cpus": CpuList(nonempty=True),
    "interval_us": _limit(),
    "duration_s": Duration(None, "s", 0, MAX_DURATION_S, lo_open=True),
    "priority": Int(None, 1, 99),
    "consequence": Str("", max_len=500),
    **{key: _limit() for key in LIMIT_KEYS},
}
DEFAULTS_SCHEMA = {k: v for k, v in CLASS_SCHEMA.items() if k not in ("name", "consequence")}
BUDGET_SCHEMA = {"defaults": Table(DEFAULTS_SCHEMA), "class": Array(CLASS_SCHEMA, max_items=MAX_CLASSES)}
CLASS_KEYS = frozenset(CLASS_SCHEMA)
DEFAULT_KEYS = frozenset(DEFAULTS_SCHEMA)


@dataclass(frozen=True, slots=True)
class BudgetClass:
    """One class of the budget: where and how to measure, and what it may not exceed (ns)."""

    name: str
    cpus: tuple[int, ...] | None  # None: the CPUs given on the command line (or all)
    interval_ns: int | None  # None: the command line's -i
    duration_s: float | None  # None: the command line's -D
    priority: int | None  # None: the command line's -p
    p99_ns: int | None
    p999_ns: int | None
    max_ns: int | None
    consequence: str = ""

    def limits(self) -> tuple[tuple[str, int], ...]:
        """(metric, limit ns) for each limit this class sets, in the order p99, p99.9, max."""
        pairs = (("p99", self.p99_ns), ("p99.9", self.p999_ns), ("max", self.max_ns))
        return tuple((m, v) for m, v in pairs if v is not None)


def parse_budgets(doc: Mapping[str, Any] | str, path: str = "<budgets>") -> tuple[BudgetClass, ...]:
    """Validate a budget file (decoded, or its TOML text); BudgetError naming the offending key."""
    if isinstance(doc, str):
        doc = decode_toml(doc, path, BudgetError)
    top = read(doc, BUDGET_SCHEMA, At(BudgetError, path))
    classes: list[Values] = top["class"]
    if not classes:
        raise top.fail("class", "no [[class]] tables: a budget needs at least one class")
    out: list[BudgetClass] = []
    for raw in classes:
        cls = _budget_class(raw, top["defaults"])
        for j, other in enumerate(out):
            if other.name == cls.name:
                raise raw.fail("name", f"used twice ({cls.name!r}, as class[{j}])")
        out.append(cls)
    return tuple(out)


def _budget_class(v: Values, defaults: Values) -> BudgetClass:
    """A class's own keys, else [defaults]'."""
    def get(key: str) -> Any:
        return v[key] if v[key] is not None else defaults.get(key)

    if all(get(k) is None for k in LIMIT_KEYS):
        raise v.at.fail(f"set at least one limit of {', '.join(LIMIT_KEYS)}")
    duration_ns = get("duration_s")
    return BudgetClass(name=v["name"].strip(), cpus=get("cpus"), interval_ns=get("interval_us"),
                       duration_s=duration_ns / 1e9 if duration_ns is not None else None, priority=get("priority"),
                       p99_ns=get("p99_us"), p999_ns=get("p999_us"), max_ns=get("max_us"),
                       consequence=v["consequence"].strip())
