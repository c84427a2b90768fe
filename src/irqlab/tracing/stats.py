"""per_cpu/cpuN/stats: how many events a CPU's buffer lost, as the kernel counts them.

Printed by tracing_stats_read (kernel/trace/trace.c, v6.18): `entries`, `overrun` (events
overwritten before a reader took them, overwrite mode), `commit overrun` (events lost when
nested writers filled a whole page), `bytes`, `oldest event ts`, `now ts`, `dropped events`
(events refused because the buffer was full, non-overwrite mode) and `read events`.
"""

from __future__ import annotations

from dataclasses import dataclass

from irqlab.errors import ParseError

_KEYS = {"entries": "entries", "overrun": "overrun", "commit overrun": "commit_overrun",
         "bytes": "bytes", "dropped events": "dropped", "read events": "read"}


@dataclass(frozen=True, slots=True)
class CpuStats:
    """The counters of one CPU's ring buffer."""

    entries: int = 0
    overrun: int = 0
    commit_overrun: int = 0
    bytes: int = 0
    dropped: int = 0
    read: int = 0

    @property
    def lost(self) -> int:
        """Every event the kernel recorded as lost on this CPU, by any of the three ways."""
        return self.overrun + self.commit_overrun + self.dropped


def parse_stats(text: str, path: str = "stats") -> CpuStats:
    """Parse one per_cpu/cpuN/stats file; the timestamp lines are skipped."""
    vals: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        key, sep, value = line.partition(":")
        attr = _KEYS.get(key.strip())
        if not sep or attr is None:
            continue
        token = value.strip()
        if not token.isdigit():
            raise ParseError(path, lineno, token, f"{key.strip()} is not a count")
        vals[attr] = int(token)
    if "overrun" not in vals:
        raise ParseError(path, 1, text[:40], "no 'overrun:' line: not a per_cpu stats file")
    return CpuStats(**vals)


def lost_between(before: dict[int, CpuStats], after: dict[int, CpuStats]) -> dict[int, int]:
    """Events lost per CPU between two readings (a CPU missing from `before` counts from 0)."""
    return {cpu: max(0, a.lost - before.get(cpu, CpuStats()).lost) for cpu, a in after.items()}
