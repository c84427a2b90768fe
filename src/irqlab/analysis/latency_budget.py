"""Latency budgets from TOML: classes with CPUs, interval and limits on p99 / p99.9 / max.

Pure: parse_budgets() takes the file's text (the cli reads the file and checks who may write
it). Every problem is one BudgetError naming the file and the key, e.g.
`budgets.toml: class "brake": max_us: must be a positive number of microseconds, got -5`.

    [defaults]              # optional; any class key except name, consequence
    interval_us = 1000
    duration_s = 5

    [[class]]
    name = "brake"
    cpus = "1"              # CPU list like -C; default: every selected CPU
    max_us = 50             # at least one of p99_us, p999_us, max_us
    consequence = "at 100 km/h the car travels 1.4 mm more per 50 us"
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from typing import TypeGuard

from irqlab.cpulist import parse_cpulist
from irqlab.errors import IrqlabError, ParseError

Table = dict[str, object]  # a parsed TOML table

LIMIT_KEYS = ("p99_us", "p999_us", "max_us")
CLASS_KEYS = frozenset({"name", "cpus", "interval_us", "duration_s", "priority", "consequence", *LIMIT_KEYS})
DEFAULT_KEYS = CLASS_KEYS - {"name", "consequence"}
MAX_CLASSES = 64
MAX_DURATION_S = 3600


class BudgetError(IrqlabError):
    """A budget file that is not what irqlab latency expects."""


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


def parse_budgets(text: str, path: str = "<budgets>") -> tuple[BudgetClass, ...]:
    """Parse and validate a budget file; raises BudgetError naming the offending key."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BudgetError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - {"defaults", "class"})
    if unknown:
        raise BudgetError(f"{path}: unknown table {unknown[0]!r} (expected [defaults] and [[class]])")
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise BudgetError(f"{path}: defaults: must be a table")
    _check_keys(defaults, DEFAULT_KEYS, f"{path}: [defaults]")
    classes = doc.get("class")
    if not isinstance(classes, list) or not classes:
        raise BudgetError(f"{path}: no [[class]] tables: a budget needs at least one class")
    if len(classes) > MAX_CLASSES:
        raise BudgetError(f"{path}: {len(classes)} classes; at most {MAX_CLASSES}")
    out, seen = [], set()
    for i, raw in enumerate(classes, 1):
        if not isinstance(raw, dict):
            raise BudgetError(f"{path}: class #{i}: must be a table")
        cls = _parse_class({**defaults, **raw}, raw, f"{path}: class #{i}")
        if cls.name in seen:
            raise BudgetError(f"{path}: class {cls.name!r}: name: used twice")
        seen.add(cls.name)
        out.append(cls)
    return tuple(out)


def _check_keys(table: Table, allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise BudgetError(f"{where}: {unknown[0]}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _parse_class(merged: Table, raw: Table, where: str) -> BudgetClass:
    _check_keys(raw, CLASS_KEYS, where)
    name = merged.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 80:
        raise BudgetError(f"{where}: name: must be a non-empty string of at most 80 characters")
    where = f"{where.rsplit(':', 1)[0]}: class {name!r}"
    limits = {k: _us(merged, k, where) for k in LIMIT_KEYS}
    if all(v is None for v in limits.values()):
        raise BudgetError(f"{where}: p99_us, p999_us, max_us: set at least one limit")
    consequence = merged.get("consequence", "")
    if not isinstance(consequence, str) or len(consequence) > 500:
        raise BudgetError(f"{where}: consequence: must be a string of at most 500 characters")
    duration = merged.get("duration_s")
    if duration is not None and (not _number(duration) or not 0 < duration <= MAX_DURATION_S):
        raise BudgetError(f"{where}: duration_s: must be a number of seconds in (0, {MAX_DURATION_S}], got {duration!r}")
    prio = merged.get("priority")
    if prio is not None and (type(prio) is not int or not 1 <= prio <= 99):
        raise BudgetError(f"{where}: priority: must be an integer 1..99, got {prio!r}")
    interval = _us(merged, "interval_us", where)
    return BudgetClass(name=name.strip(), cpus=_cpus(merged, where), interval_ns=interval,
                       duration_s=float(duration) if duration is not None else None, priority=prio,
                       p99_ns=limits["p99_us"], p999_ns=limits["p999_us"], max_ns=limits["max_us"],
                       consequence=consequence.strip())


def _number(v: object) -> TypeGuard[int | float]:
    return (type(v) is int or type(v) is float) and math.isfinite(v)  # bool is not a number here


def _us(table: Table, key: str, where: str) -> int | None:
    """A positive microsecond value (int or float, at most 10 s) as integer ns."""
    v = table.get(key)
    if v is None:
        return None
    if not _number(v) or not 0 < v <= 10_000_000:
        raise BudgetError(f"{where}: {key}: must be a positive number of microseconds up to 10000000, got {v!r}")
    ns = round(v * 1000)
    if ns < 1:
        raise BudgetError(f"{where}: {key}: {v!r} us is below one nanosecond")
    return ns


def _cpus(table: Table, where: str) -> tuple[int, ...] | None:
    v = table.get("cpus")
    if v is None:
        return None
    if type(v) is int:
        v = str(v)
    if not isinstance(v, str):
        raise BudgetError(f"{where}: cpus: must be a CPU list string like \"0-3,8\", got {v!r}")
    try:
        cpus = parse_cpulist(v, "cpus")
    except ParseError as exc:
        raise BudgetError(f"{where}: cpus: {exc.message}") from None
    if not cpus:
        raise BudgetError(f"{where}: cpus: empty CPU list")
    return cpus
