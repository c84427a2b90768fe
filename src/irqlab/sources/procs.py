"""Processes by name: /proc/PID/comm, for the daemons irqlab must know about (irqbalance)."""

from __future__ import annotations

from irqlab.errors import SourceError
from irqlab.sources.fs import Roots, list_dir, read_text


def pids_named(roots: Roots, comm: str) -> tuple[int, ...]:
    """PIDs whose comm is exactly `comm` (a process that exits while read is skipped)."""
    out = []
    for name in list_dir(roots.procfs):
        if not (name.isascii() and name.isdigit()):
            continue
        try:
            if read_text(roots.proc(name, "comm")).strip() == comm:
                out.append(int(name))
        except SourceError:
            continue  # gone, or another user's process we may not read
    return tuple(sorted(out))
