"""Storm levels by plain thresholds, and which IRQ rows stormed in each interval of a series.

The exporter's storm gauges, the recorder's storm table and the report's shaded periods use
this simple per-interval view (the seed's warn/critical limits); the watch daemon's detector
with baseline and hysteresis is analysis/storm.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from irqlab.analysis.delta import interrupt_rates
from irqlab.analysis.thresholds import Thresholds
from irqlab.model.snapshot import Snapshot


def storm_levels(rate_per_s: np.ndarray, t: Thresholds) -> np.ndarray:
    """0 quiet, 1 storm (>= storm_warn_rate), 2 critical storm (>= storm_crit_rate) per row."""
    r = np.nan_to_num(np.asarray(rate_per_s, dtype=np.float64))
    return (r >= t.storm_warn_rate).astype(np.int64) + (r >= t.storm_crit_rate).astype(np.int64)


@dataclass(frozen=True, slots=True)
class StormInterval:
    """An IRQ above the storm threshold during the interval that ended at a sample."""

    irq: str
    name: str
    level: int  # 1 storm, 2 critical
    rate_per_s: float
    started_wall: float  # wall time the storm was first seen (for a continuing storm: its start)


class StormTracker:
    """Storm events between consecutive samples: each IRQ row above the storm threshold."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.prev: Snapshot | None = None
        self.started: dict[str, float] = {}  # row key -> wall time its storm was first seen

    def update(self, snap: Snapshot) -> list[StormInterval]:
        """Events for the interval that ended at snap (none for the first sample)."""
        prev, self.prev = self.prev, snap
        if prev is None or prev.interrupts is None or snap.interrupts is None or snap.taken_ns <= prev.taken_ns:
            return []
        rates = interrupt_rates(prev.interrupts, snap.interrupts, snap.taken_ns - prev.taken_ns)
        levels = storm_levels(rates.total_rate, self.thresholds)
        out, started = [], {}
        for k in np.flatnonzero(levels):
            line = rates.lines[k]
            started[line.key] = self.started.get(line.key, prev.wall_time)
            out.append(StormInterval(line.irq, line.name, int(levels[k]), float(rates.total_rate[k]), started[line.key]))
        self.started = started
        return out
