"""One IRQ's interrupt rate over a series of snapshots: what `irqlab sim` replays.

Pure: snapshots in (a recording or captures, read by sources/), (times_s, rates) out, the
form of a scenario's `arrival = { process = "replay", ... }`. Each interval between two
consecutive snapshots becomes one piecewise-constant segment starting at the earlier one,
relative to the first snapshot. A row is found by IRQ number or by its /proc/interrupts name
(the action name, like "eth0-rx-0"); counter wrap is handled by analysis.delta.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from irqlab.analysis.delta import interrupt_rates
from irqlab.errors import IrqlabError
from irqlab.model.snapshot import Interrupts, IrqLine, Snapshot


class RateSeriesError(IrqlabError):
    """The snapshots cannot give the rate series asked for."""


def _row(lines: Sequence[IrqLine], irq: str) -> int | None:
    for i, line in enumerate(lines):
        if line.irq == irq or irq in (line.actions or ()):
            return i
    return None


def irq_rate_series(snapshots: Iterable[Snapshot], irq: str) -> tuple[list[float], list[float]]:
    """(times_s, rates per second) of `irq` (a number or an action name), all CPUs summed."""
    times: list[float] = []
    rates: list[float] = []
    prev: tuple[int, Interrupts] | None = None  # the snapshot before: taken_ns, /proc/interrupts
    t0 = 0
    found = False
    for snap in snapshots:
        irqs = snap.interrupts
        if irqs is None:
            raise RateSeriesError(f"a snapshot taken at {snap.taken_ns} ns has no /proc/interrupts")
        if prev is not None:
            prev_ns, prev_irqs = prev
            dt = snap.taken_ns - prev_ns
            if dt <= 0:
                raise RateSeriesError("snapshots are not in time order")
            r = interrupt_rates(prev_irqs, irqs, dt)
            row = _row(r.lines, irq)
            rate = 0.0
            if row is not None:
                found = True
                value = r.total_rate[row]
                rate = float(value) if np.isfinite(value) else 0.0
            times.append((prev_ns - t0) / 1e9)
            rates.append(max(rate, 0.0))
        else:
            t0 = snap.taken_ns
        prev = (snap.taken_ns, irqs)
    if not times:
        raise RateSeriesError("a rate series needs at least two snapshots")
    if not found:
        raise RateSeriesError(f"IRQ {irq!r} is in none of the snapshots' /proc/interrupts")
    return times, rates
