"""/sys/kernel/debug/irq/domains/VECTOR: the x86 vector matrix per CPU (CONFIG_GENERIC_IRQ_DEBUGFS).

kernel/irq/matrix.c irq_matrix_debug_show() (v6.18) prints, after the domain's own lines:

    Online bitmaps:        8
    Global available:   1580
    ...
     | CPU | avl | man | mac | act | vectors
         0   197     0     0    4  33-35,48
         2     0     0     0  202  32-49,51-127,129-235

one row per online CPU (the vector list is empty when none is allocated). irqlab never mounts
debugfs: it reads the file when debugfs is mounted and the kernel has it, else the caller
estimates the matrix from /proc/interrupts (analysis/irqvectors.py) and says so.
"""

from __future__ import annotations

from pathlib import Path

from irqlab.errors import MissingSource, ParseError, PermissionDenied
from irqlab.model.irqvectors import CpuVectors, VectorMatrix
from irqlab.sources.fs import read_text

VECTOR_FILE = Path("irq/domains/VECTOR")  # under the debugfs mount
HEADER = "| CPU | avl | man | mac | act | vectors"


def parse_vector_matrix(text: str, path: str) -> VectorMatrix:
    """The per-CPU rows after the `| CPU | avl |...` header."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == HEADER), None)
    if start is None:
        raise ParseError(path, 1, lines[0] if lines else "", f"no '{HEADER}' line: not the x86 VECTOR domain")
    cpus: dict[int, CpuVectors] = {}
    for n, line in enumerate(lines[start + 1:], start + 2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (5, 6) or not all(f.isdigit() for f in fields[:5]):
            raise ParseError(path, n, line, "expected CPU avl man mac act [vectors]")
        cpu, avl, man, mac, act = (int(f) for f in fields[:5])
        cpus[cpu] = CpuVectors(cpu, avl, man, mac, act)
    if not cpus:
        raise ParseError(path, start + 1, lines[start], "no CPU rows")
    return VectorMatrix(cpus, path)


def read_vector_matrix(debugfs: Path = Path("/sys/kernel/debug")) -> tuple[VectorMatrix | None, str]:
    """The matrix from debugfs, or None and why not (not mounted, no such file, not root)."""
    path = debugfs / VECTOR_FILE
    try:
        return parse_vector_matrix(read_text(path), str(path)), ""
    except MissingSource:
        return None, f"{path} is absent (debugfs not mounted, or a kernel without CONFIG_GENERIC_IRQ_DEBUGFS)"
    except PermissionDenied:
        return None, f"{path}: permission denied (root reads it)"
