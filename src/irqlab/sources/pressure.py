"""/proc/pressure/irq: PSI for time stolen by hard and soft IRQs (kernel/sched/psi.c).

The file exists from v6.1 (commit 52b1364ba0b1, "sched/psi: Add PSI_IRQ to track IRQ/SOFTIRQ
pressure") and only with CONFIG_IRQ_TIME_ACCOUNTING. psi_show() prints one line per state,
`%s avg10=%lu.%02lu avg60=%lu.%02lu avg300=%lu.%02lu total=%llu`, with total in
microseconds; for PSI_IRQ it sets only_full, so the irq file has just the "full" line. The
cpu/io/memory files print "some" first; we read "full" and skip a "some" line if one is there.
"""

from __future__ import annotations

import re

from irqlab.errors import ParseError
from irqlab.model.snapshot import Pressure
from irqlab.sources.fs import Roots, read_optional

# The keys psi_show() prints, in order.
KEYS: tuple[str, ...] = ("avg10", "avg60", "avg300", "total")
STATES: tuple[str, ...] = ("some", "full")

# "%lu.%02lu": a percentage with two decimals (LOAD_INT/LOAD_FRAC of a fixed-point average).
_AVG = re.compile(r"[0-9]{1,6}\.[0-9]{1,2}|[0-9]{1,6}")
_TOTAL = re.compile(r"[0-9]{1,20}")


def _values(tokens: list[str], path: str, lineno: int) -> dict[str, str]:
    """The key=value pairs of one line, checked against KEYS."""
    pairs: dict[str, str] = {}
    for token in tokens:
        key, eq, value = token.partition("=")
        if not eq or key not in KEYS or key in pairs:
            raise ParseError(path, lineno, token, f"expected one each of {', '.join(k + '=' for k in KEYS)}")
        pattern = _TOTAL if key == "total" else _AVG
        if pattern.fullmatch(value) is None:
            raise ParseError(path, lineno, token, f"{key} is not a number")
        pairs[key] = value
    missing = [key for key in KEYS if key not in pairs]
    if missing:
        raise ParseError(path, lineno, " ".join(tokens), f"{missing[0]}= is missing")
    return pairs


def parse_pressure(text: str, path: str = "/proc/pressure/irq") -> Pressure:
    """Parse the text of /proc/pressure/irq; the "full" line is the one irqlab keeps."""
    full: dict[str, str] | None = None
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        state = tokens[0]
        if state not in STATES or state in seen:
            raise ParseError(path, lineno, state, "expected one 'some' and one 'full' line at most")
        seen.add(state)
        values = _values(tokens[1:], path, lineno)
        if state == "full":
            full = values
    if full is None:
        first = text.strip().splitlines()[:1]
        raise ParseError(path, 1, first[0] if first else "", "no 'full' line")
    return Pressure(
        avg10=float(full["avg10"]),
        avg60=float(full["avg60"]),
        avg300=float(full["avg300"]),
        total_us=int(full["total"]),
    )


def read_pressure(roots: Roots) -> Pressure | None:
    """Read /proc/pressure/irq under roots; None when this kernel has no such file."""
    path = roots.proc("pressure", "irq")
    text = read_optional(path)
    return None if text is None else parse_pressure(text, str(path))
