"""Counter deltas around a live test, so that it can assert its load really ran.

/proc/softirqs prints, for each possible CPU, the per-CPU `unsigned int` that
kstat_incr_softirqs_this_cpu() bumps (fs/proc/softirqs.c show_softirqs(), v6.18): each count
only grows (modulo 2^32) and the whole file is generated in one read, so a read taken after
another never shows a smaller count on any CPU.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from irqlab.sources.fs import Roots
from irqlab.sources.softirqs import read_softirqs

WRAP = 1 << 32


def softirq_counts(vector: str = "NET_RX") -> dict[int, int]:
    """One vector's /proc/softirqs counts by CPU id (from the CPUn labels)."""
    s = read_softirqs(Roots())
    row = s.counts[s.vectors.index(vector)]
    return {int(c): int(n) for c, n in zip(s.cpus, row, strict=True)}


def softirq_delta(before: dict[int, int], after: dict[int, int]) -> int:
    """Runs between two readings, summed over CPUs, each CPU's counter taken modulo 2^32."""
    return sum((n - before.get(c, 0)) % WRAP for c, n in after.items())


@dataclass
class Delta:
    """What `counting` measured: runs of one vector over all CPUs and the seconds they took."""

    vector: str
    count: int = 0
    seconds: float = 0.0

    @property
    def rate_per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


@contextmanager
def counting(vector: str = "NET_RX") -> Iterator[Delta]:
    """Count one softirq vector's runs over the body of a with block."""
    box = Delta(vector)
    before, t0 = softirq_counts(vector), time.monotonic()
    try:
        yield box
    finally:
        box.count = softirq_delta(before, softirq_counts(vector))
        box.seconds = time.monotonic() - t0
