"""Vectorised pairing of entry/exit trace events into handler runs (the building blocks of trace.py).

Every function takes plain numpy columns of ONE kind family already sorted by (cpu, ts_ns) and
returns index arrays, so that millions of events are paired without a Python loop per event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Runs:
    """Matched entry/exit pairs: row indices into the caller's arrays, plus the leftovers."""

    entry: np.ndarray  # row of each run's entry
    exit: np.ndarray  # row of each run's exit
    level: np.ndarray  # nesting level of the run (1 = outermost); all 1 for flat pairing
    truncated_entries: np.ndarray  # rows of entries with no matching exit (window end, lost events)
    truncated_exits: np.ndarray  # rows of exits with no matching entry (window start, lost events)


def pair_flat(cpu: np.ndarray, is_entry: np.ndarray, key: np.ndarray) -> Runs:
    """Pair entry i with exit i+1 on the same CPU and key: handlers that never nest on one CPU.

    Softirq handlers do not nest on a CPU (handle_softirqs runs with the softirq count raised,
    so irq_exit() does not start another pass: kernel/softirq.c, v6.18, invoke_softirq() is
    only reached when !in_interrupt()); tasklets run one at a time inside TASKLET/HI.
    """
    n = cpu.shape[0]
    idx = np.arange(n)
    if n < 2:
        ok = np.zeros(0, dtype=bool)
    else:
        ok = is_entry[:-1] & ~is_entry[1:] & (cpu[:-1] == cpu[1:]) & (key[:-1] == key[1:])
    entry = idx[:-1][ok] if n else idx
    exit_ = entry + 1
    matched = np.zeros(n, dtype=bool)
    matched[entry] = True
    matched[exit_] = True
    return Runs(entry, exit_, np.ones(entry.shape[0], dtype=np.int64),
                idx[is_entry & ~matched], idx[~is_entry & ~matched])


def pair_nested(cpu: np.ndarray, is_entry: np.ndarray, key: np.ndarray) -> Runs:
    """Pair entries and exits that may nest (an interrupt inside another on the same CPU).

    The nesting depth is the running sum of +1 (entry) / -1 (exit) per CPU, shifted so that
    exits whose entry fell before the window start from a level >= 1. An entry at level L
    matches the next exit at level L on that CPU; runs are then entry/exit pairs that are
    adjacent once the rows are sorted by (cpu, level, time).
    """
    n = cpu.shape[0]
    step = np.where(is_entry, 1, -1).astype(np.int64)
    depth = np.cumsum(step)
    # Restart the running sum at each CPU's first row.
    first = np.r_[True, cpu[1:] != cpu[:-1]] if n else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(first)
    base = np.repeat(depth[starts] - step[starts], np.diff(np.r_[starts, n]))
    depth = depth - base
    # Level of an entry is the depth after it; of an exit, the depth before it.
    level = np.where(is_entry, depth, depth + 1)
    # Shift each CPU so the lowest level it reaches is 1 (leading exits of a truncated window).
    low = np.minimum.reduceat(level, starts) if n else np.zeros(0, dtype=np.int64)
    level = level - np.repeat(low - 1, np.diff(np.r_[starts, n]))
    order = np.lexsort((np.arange(n), level, cpu))
    e, lv, c, k = is_entry[order], level[order], cpu[order], key[order]
    if n >= 2:
        ok = e[:-1] & ~e[1:] & (c[:-1] == c[1:]) & (lv[:-1] == lv[1:]) & (k[:-1] == k[1:])
    else:
        ok = np.zeros(0, dtype=bool)
    pos = np.flatnonzero(ok)
    entry, exit_ = order[pos], order[pos + 1]
    matched = np.zeros(n, dtype=bool)
    matched[entry] = True
    matched[exit_] = True
    idx = np.arange(n)
    return Runs(entry, exit_, level[entry], idx[is_entry & ~matched], idx[~is_entry & ~matched])


def nested_time(cpu: np.ndarray, t_in: np.ndarray, t_out: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Time spent in direct children of each run (runs one level deeper, inside it, same CPU)."""
    child_ns = np.zeros(t_in.shape[0], dtype=np.int64)
    for lv in np.unique(level):
        kids = np.flatnonzero(level == lv + 1)
        if kids.size == 0:
            continue
        parents = np.flatnonzero(level == lv)
        for c in np.unique(cpu[kids]):
            # Parents of one level never overlap on a CPU: for each child, the last parent
            # that entered before it is the only candidate.
            par_c = parents[cpu[parents] == c]
            kid_c = kids[cpu[kids] == c]
            if par_c.size == 0:
                continue
            par_c = par_c[np.argsort(t_in[par_c], kind="stable")]
            pos = np.searchsorted(t_in[par_c], t_in[kid_c], side="right") - 1
            ok = pos >= 0
            par = par_c[np.maximum(pos, 0)]
            ok &= t_out[par] >= t_out[kid_c]
            np.add.at(child_ns, par[ok], (t_out[kid_c] - t_in[kid_c])[ok])
    return child_ns


def busy_before(cpu_runs: np.ndarray, t_in: np.ndarray, t_out: np.ndarray, cpu_q: np.ndarray, t_q: np.ndarray) -> np.ndarray:
    """For each query (cpu, t): total time of the given runs on that CPU that ended by t.

    Used to subtract the hardirq time nested in a softirq or tasklet run: the difference of
    busy_before() at its exit and at its entry. Softirq boundaries are never inside a hardirq
    handler (softirqs run from irq_exit(), after the handler's exit tracepoint), so a run that
    ended by the exit but not by the entry lies inside the softirq run.
    """
    out = np.zeros(t_q.shape[0], dtype=np.int64)
    for c in np.unique(cpu_q):
        sel = cpu_runs == c
        q = cpu_q == c
        if not sel.any():
            continue
        ends = t_out[sel]
        order = np.argsort(ends, kind="stable")
        ends = ends[order]
        cum = np.r_[0, np.cumsum((t_out[sel] - t_in[sel])[order])]
        out[q] = cum[np.searchsorted(ends, t_q[q], side="right")]
    return out
