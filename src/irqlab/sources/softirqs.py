"""/proc/softirqs: per-CPU counts of each softirq vector (fs/proc/softirqs.c, show_softirqs()).

The kernel prints a header of `CPU%-8d` labels for every POSSIBLE CPU (for_each_possible_cpu,
unlike /proc/interrupts and /proc/stat, which list online CPUs), then one `%12s:` row per
vector with a ` %10u` count per CPU. Counts are unsigned int per CPU, so they wrap at 2^32.
"""

from __future__ import annotations

import re

import numpy as np

from irqlab.errors import ParseError
from irqlab.model.snapshot import Softirqs
from irqlab.model.vectors import canonical
from irqlab.sources.fs import Roots, read_text

# kstat_softirqs_cpu() returns unsigned int (include/linux/kernel_stat.h).
COUNT_MAX = 2**32 - 1

_CPU_LABEL = re.compile(r"CPU([0-9]{1,5})")
# A vector name as softirq_to_name[] spells it (kernel/softirq.c): letters, digits, "_".
_VECTOR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _header(line: str, path: str, lineno: int) -> tuple[int, ...]:
    """CPU ids from the header labels (`CPU0 CPU1 ... CPU1151`)."""
    cpus: list[int] = []
    for token in line.split():
        match = _CPU_LABEL.fullmatch(token)
        if match is None:
            raise ParseError(path, lineno, token, "header label is not CPUn")
        cpus.append(int(match.group(1)))
    if len(set(cpus)) != len(cpus):
        dup = next(f"CPU{c}" for c in cpus if cpus.count(c) > 1)
        raise ParseError(path, lineno, dup, "CPU label appears twice in the header")
    return tuple(cpus)


def _counts(tokens: list[str], path: str, lineno: int) -> list[int]:
    """Decimal per-CPU counts of one row, each within 32 bits."""
    joined = "".join(tokens)
    # One check over the joined row (1152 CPUs make 11,520 tokens). isascii() first:
    # str.isdigit() also accepts "²" and other non-ASCII digits.
    if tokens and not (joined.isascii() and joined.isdigit() and len(max(tokens, key=len)) <= 10):
        bad = next(t for t in tokens if not (t.isascii() and t.isdigit() and len(t) <= 10))
        raise ParseError(path, lineno, bad, "softirq count is not a 32-bit decimal number")
    values = [int(token) for token in tokens]
    if values and max(values) > COUNT_MAX:
        bad = tokens[values.index(max(values))]
        raise ParseError(path, lineno, bad, "softirq count exceeds 32 bits")
    return values


def _row(line: str, ncpus: int, path: str, lineno: int) -> tuple[str, list[int]]:
    """One `NAME: counts` row, fitted to the header's width."""
    name, colon, rest = line.partition(":")
    if not colon:
        # The example output in commit aa0ce5bbc2db (v2.6.31, "softirq: introduce statistics
        # for softirq") has no colon after the name; accept `NAME counts` as well.
        name, rest = (line.split(maxsplit=1) + [""])[:2]
    name = name.strip()
    if _VECTOR_NAME.fullmatch(name) is None:
        raise ParseError(path, lineno, name, "not a softirq vector name")
    values = _counts(rest.split(), path, lineno)
    # The kernel prints every row as wide as its header, but captures and hand-edited files
    # (sysstat's tests) need not be. Rather than refuse the whole file, read what is there:
    # a short row counts 0 for the CPUs it lacks, and counts beyond the header are dropped,
    # since no label says which CPU they belong to.
    values = values[:ncpus] + [0] * (ncpus - len(values))
    return canonical(name), values


def parse_softirqs(text: str, path: str = "/proc/softirqs") -> Softirqs:
    """Parse the text of /proc/softirqs."""
    cpus: tuple[int, ...] | None = None
    vectors: list[str] = []
    rows: list[list[int]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if cpus is None:
            cpus = _header(line, path, lineno)
            continue
        name, values = _row(line, len(cpus), path, lineno)
        if name in vectors:
            # BLOCK_IOPOLL and IRQ_POLL are one vector (model/vectors.py), never both.
            raise ParseError(path, lineno, name, "vector appears twice")
        vectors.append(name)
        rows.append(values)
    if cpus is None:
        raise ParseError(path, 1, "", "empty file: no CPU header")
    counts = np.array(rows, dtype=np.int64).reshape(len(rows), len(cpus))
    return Softirqs(cpus=cpus, vectors=tuple(vectors), counts=counts)


def read_softirqs(roots: Roots) -> Softirqs:
    """Read and parse /proc/softirqs under roots."""
    path = roots.proc("softirqs")
    return parse_softirqs(read_text(path), str(path))
