"""Which CPU columns and rows to show, so a 1152-CPU machine stays readable in a terminal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from irqlab.cpulist import format_cpulist


@dataclass(frozen=True, slots=True)
class CpuColumn:
    """One displayed column: a single CPU, or a range of CPUs whose values are summed."""

    label: str  # "CPU7", or "0-71" for a range of CPUs
    cpus: tuple[int, ...]
    index: tuple[int, ...]  # positions in the source arrays


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    columns: tuple[CpuColumn, ...]
    hidden_idle: tuple[int, ...]  # CPUs left out because nothing happened on them

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Values (..., ncpus) -> (..., ncolumns), summing grouped CPUs."""
        out = [np.nansum(values[..., list(col.index)], axis=-1) for col in self.columns]
        return np.stack(out, axis=-1) if out else np.zeros(values.shape[:-1] + (0,))


def plan_columns(
    cpus: tuple[int, ...],
    activity: np.ndarray | None,
    only: tuple[int, ...] | None = None,
    max_columns: int = 16,
    hide_idle: bool = True,
) -> ColumnPlan:
    """Keep the selected CPUs, drop idle ones, then group neighbours into ranges if too many."""
    chosen = None if only is None else frozenset(only)
    keep = [(i, c) for i, c in enumerate(cpus) if chosen is None or c in chosen]
    hidden: list[int] = []
    if hide_idle and activity is not None and len(keep) > 1:
        a = np.asarray(activity)  # whole-array comparisons, not one numpy scalar per CPU
        moved, idle = (a > 0).tolist(), (a <= 0).tolist()  # NaN is neither
        busy = [(i, c) for i, c in keep if moved[i]]
        hidden = [c for i, c in keep if idle[i]]
        keep = busy or keep[:1]
        if not busy:
            hidden = hidden[1:]
    if len(keep) <= max_columns:
        cols = tuple(CpuColumn(f"CPU{c}", (c,), (i,)) for i, c in keep)
        return ColumnPlan(cols, tuple(hidden))
    size = -(-len(keep) // max_columns)  # ceiling division
    cols = []
    for start in range(0, len(keep), size):
        chunk = keep[start : start + size]
        ids = tuple(c for _, c in chunk)
        cols.append(CpuColumn(format_cpulist(ids), ids, tuple(i for i, _ in chunk)))
    return ColumnPlan(tuple(cols), tuple(hidden))
