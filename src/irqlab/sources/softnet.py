"""/proc/net/softnet_stat: one row of hex counters per online CPU's softnet_data.

Printed by softnet_seq_show() (net/core/net-procfs.c in 3.10 and later, net/core/dev.c in 2.6),
every column "%08x". Rows skip offline CPUs (softnet_get_online() has walked only online
CPUs since 2.6), so a row's position is its CPU id only while no CPU is offline; from v5.10
(commit 7d58e6555870, "net-sysfs: add backlog len and CPU id to softnet data") the 13th
column carries the id. The width of a row tells the kernel: 9 columns up to 2.6.34, 10 from
2.6.35 (received_rps), 11 from 3.11 (flow_limit_count), 13 from 5.10 (backlog_len, cpu),
15 from 6.4 (input_qlen, process_qlen: commit 59da2d7b0e99). See SOFTNET_FIELDS.
"""

from __future__ import annotations

import re
from dataclasses import fields

from irqlab.errors import ParseError
from irqlab.model.snapshot import SOFTNET_FIELDS, Softnet, SoftnetRow
from irqlab.sources.fs import Roots, read_text

# processed .. cpu_collision: every kernel since 2.6 prints at least these.
MIN_COLUMNS = 9
CPU_COLUMN = SOFTNET_FIELDS.index("cpu")

# The counter columns SoftnetRow keeps (cpu is set apart below). zero3..zero7 and
# cpu_collision are dropped: "was fastroute" / "was cpu_collision", always 0 by v4.19.
_KEPT = (frozenset(f.name for f in fields(SoftnetRow)) & frozenset(SOFTNET_FIELDS)) - {"cpu"}
# The kernel prints "%08x" of u32 values: lower case, at most 8 digits. Upper case is
# accepted too, as any hex reader would.
_HEX32 = re.compile(r"[0-9a-fA-F]{1,8}")


def _columns(line: str, path: str, lineno: int) -> list[int]:
    """The hex numbers of one row."""
    tokens = line.split()
    if len(tokens) < MIN_COLUMNS:
        raise ParseError(path, lineno, line.strip(), f"{len(tokens)} columns, expected at least {MIN_COLUMNS}")
    for token in tokens:
        if _HEX32.fullmatch(token) is None:
            raise ParseError(path, lineno, token, "not a 32-bit hex number")
    return [int(token, 16) for token in tokens]


def _row(values: list[int], position: int) -> SoftnetRow:
    """A SoftnetRow from the columns a kernel printed; columns it did not print stay None."""
    # Columns beyond SOFTNET_FIELDS (a kernel newer than this table) are not read.
    named = {name: value for name, value in zip(SOFTNET_FIELDS, values) if name in _KEPT}
    from_column = len(values) > CPU_COLUMN
    cpu = values[CPU_COLUMN] if from_column else position
    return SoftnetRow(cpu=cpu, cpu_from_column=from_column, ncolumns=len(values), **named)


def parse_softnet(text: str, path: str = "/proc/net/softnet_stat") -> Softnet:
    """Parse the text of /proc/net/softnet_stat."""
    rows: list[SoftnetRow] = []
    seen: set[int] = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        row = _row(_columns(line, path, lineno), len(rows))
        if row.cpu in seen:
            raise ParseError(path, lineno, line.strip(), f"CPU {row.cpu} has two rows")
        seen.add(row.cpu)
        rows.append(row)
    return Softnet(rows=tuple(rows))


def read_softnet(roots: Roots) -> Softnet:
    """Read and parse /proc/net/softnet_stat under roots."""
    path = roots.proc("net", "softnet_stat")
    return parse_softnet(read_text(path), str(path))
