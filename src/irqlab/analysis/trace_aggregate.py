"""Handler durations, softirq raise->entry latency and ksoftirqd share from one EventBatch.

Pure and vectorised: the batch is sorted once by (cpu, time) and every pairing is done with
numpy (see trace_pairs.py), so a few million events take about a second. The rules (all
documented in docs/trace.md, with the kernel code they rest on):

- Durations are exit - entry on the same CPU. A hardirq's net duration subtracts the
  handlers nested in it; a softirq's or tasklet's net duration subtracts the hardirq and
  system-vector handlers that ran inside it on that CPU.
- Raise -> entry latency of vector v on CPU c: the first raise of v after the previous entry
  of v on c starts the clock (the pending bit was clear), later raises before the entry are
  ignored (the bit was already set: __raise_softirq_irqoff() only ORs it in), and the next
  entry of v on c stops it. kernel/softirq.c (v6.18): or_softirq_pending() sets the bit of the
  raising CPU only, so raises never apply across CPUs; handle_softirqs() clears all pending
  bits at `restart:` (set_softirq_pending(0)) and then runs the set bits in ascending order.
- A handle_softirqs() pass: consecutive softirq runs on a CPU, by the same task, with only
  hardirq/vector events and raises inside them in between. A next run of a lower or equal
  vector in the same pass is a restart (one iteration runs vectors in ascending order).
- Context of a pass: ksoftirqd when the task is a ksoftirqd thread; irq_exit when the event
  just before its first entry on that CPU is a hardirq or vector exit; otherwise other
  (local_bh_enable(), or an interrupt exit whose handler was not traced).
- Runs cut by the window edges or by lost events are counted as truncated, never as durations.
- Threaded NAPI: a napi/DEV-ID kthread runs from a sched_switch that switches it in to the
  next sched_switch on that CPU; a run cut by the window's edge counts up to the edge. This is
  thread time (net/core/dev.c napi_threaded_poll(), v6.18), reported beside the softirqs.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import numpy as np

from irqlab.analysis.trace_pairs import Runs, busy_before, nested_time, pair_flat, pair_nested
from irqlab.model.events import EventBatch, EventKind
from irqlab.model.histogram import Histogram
from irqlab.model.snapshot import TaskInfo
from irqlab.model.trace_result import CONTEXTS, Handler, HistogramLayout, ThreadTime, TraceResult, tasklet_name, vector_name
from irqlab.model.vectors import SOFTIRQ_NAMES

KSOFTIRQD = re.compile(r"ksoftirqd/\d+$")
NAPI_THREAD = "napi/"  # net/core/dev.c napi_kthread_create(): "napi/%s-%d"
_VECTOR_KEY = 1 << 40  # keeps vector keys apart from IRQ numbers in one hardirq pairing
Truncated = dict[str, dict[int, int]]  # TraceResult.truncated: kind -> cpu -> runs cut short


def ksoftirqd_pids_of(comms: dict[int, str], extra: Collection[int] = ()) -> tuple[int, ...]:
    """The pids whose comm is ksoftirqd/N (from the batch), plus pids the caller knows."""
    return tuple(sorted({p for p, c in comms.items() if KSOFTIRQD.match(c)} | set(extra)))


@dataclass(frozen=True, slots=True)
class _Sorted:
    """The batch's columns sorted by (cpu, ts_ns), original order kept for ties."""

    ts: np.ndarray
    cpu: np.ndarray
    kind: np.ndarray
    pid: np.ndarray
    arg0: np.ndarray
    arg1: np.ndarray
    arg2: np.ndarray

    @classmethod
    def of(cls, batch: EventBatch, cpus: Collection[int] | None) -> _Sorted:
        keep = np.ones(len(batch), dtype=bool) if cpus is None else np.isin(batch.cpu, list(cpus))
        order = np.flatnonzero(keep)
        order = order[np.lexsort((batch.ts_ns[order], batch.cpu[order]))]
        return cls(batch.ts_ns[order], batch.cpu[order], batch.kind[order], batch.pid[order], batch.arg0[order], batch.arg1[order],
                   batch.arg2[order])


def _hist_by(cpus: np.ndarray, values: np.ndarray, layout: HistogramLayout) -> dict[int, Histogram]:
    """One histogram per CPU (one sort, not one pass per CPU: machines have hundreds)."""
    order = np.argsort(cpus, kind="stable")
    c, v = cpus[order], values[order]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]]) if c.size else np.zeros(0, dtype=np.int64)
    out = {}
    for lo, hi in zip(starts, np.r_[starts[1:], c.size]):
        h = layout.new()
        h.add_many(v[lo:hi])
        out[int(c[lo])] = h
    return out


def _by_cpu_context(cpu: np.ndarray, ctx: np.ndarray, gross: np.ndarray) -> tuple[dict[int, dict[str, int]], dict[int, dict[str, int]]]:
    """cpu -> context -> (runs, gross ns), counted with one np.unique."""
    key = cpu.astype(np.int64) * len(CONTEXTS) + ctx
    uniq, inv = np.unique(key, return_inverse=True)
    runs, ns = np.bincount(inv, minlength=uniq.size), np.bincount(inv, weights=gross, minlength=uniq.size)
    out_runs: dict[int, dict[str, int]] = {}
    out_ns: dict[int, dict[str, int]] = {}
    for k, r, t in zip(uniq.tolist(), runs.tolist(), ns.tolist()):
        c, i = divmod(k, len(CONTEXTS))
        out_runs.setdefault(c, dict.fromkeys(CONTEXTS, 0))[CONTEXTS[i]] = int(r)
        out_ns.setdefault(c, dict.fromkeys(CONTEXTS, 0))[CONTEXTS[i]] = int(round(t))
    return out_runs, out_ns


def _count_by_cpu(cpus: np.ndarray) -> dict[int, int]:
    vals, counts = np.unique(cpus, return_counts=True)
    return {int(v): int(n) for v, n in zip(vals, counts)}


@dataclass(frozen=True, slots=True)
class _Hard:
    """Matched hardirq/vector runs in sorted-row positions, for nesting and context tests."""

    entry: np.ndarray
    exit: np.ndarray
    level: np.ndarray


def _hardirqs(s: _Sorted, batch: EventBatch, layout: HistogramLayout, truncated: Truncated) -> tuple[list[Handler], _Hard]:
    k = s.kind
    is_irq = (k == EventKind.IRQ_ENTRY) | (k == EventKind.IRQ_EXIT)
    is_vec = (k == EventKind.VECTOR_ENTRY) | (k == EventKind.VECTOR_EXIT)
    rows = np.flatnonzero(is_irq | is_vec)
    key = s.arg0[rows] + np.where(is_vec[rows], _VECTOR_KEY, 0)
    is_entry = (k[rows] == EventKind.IRQ_ENTRY) | (k[rows] == EventKind.VECTOR_ENTRY)
    runs: Runs = pair_nested(s.cpu[rows], is_entry, key)
    entry, exit_ = rows[runs.entry], rows[runs.exit]
    t_in, t_out, cpu = s.ts[entry], s.ts[exit_], s.cpu[entry]
    gross = t_out - t_in
    net = gross - nested_time(cpu, t_in, t_out, runs.level)
    truncated["hardirq"] = _count_by_cpu(s.cpu[rows[np.r_[runs.truncated_entries, runs.truncated_exits]]])
    out = []
    run_key = key[runs.entry]
    irq_keys = np.unique(run_key[run_key < _VECTOR_KEY])
    for irq in irq_keys:
        sel = run_key == irq
        out.append(Handler("irq", int(irq), batch.irq_names.get(int(irq), ""), _hist_by(cpu[sel], gross[sel], layout), _hist_by(cpu[sel], net[sel], layout)))
    # System vectors are reported by /proc/interrupts row (CAL counts two vectors).
    vec_rows = run_key >= _VECTOR_KEY
    names: dict[str, list[int]] = {}
    for v, vid in set(zip((run_key[vec_rows] - _VECTOR_KEY).tolist(), s.arg1[entry[vec_rows]].tolist())):
        names.setdefault(vector_name(v, vid), []).append(v)
    for name, numbers in sorted(names.items()):
        sel = vec_rows & np.isin(run_key - _VECTOR_KEY, numbers)
        out.append(Handler("vector", min(numbers), name, _hist_by(cpu[sel], gross[sel], layout), _hist_by(cpu[sel], net[sel], layout)))
    return out, _Hard(entry, exit_, runs.level)


def _minus_hardirqs(s: _Sorted, hard: _Hard, entry: np.ndarray, exit_: np.ndarray) -> np.ndarray:
    """Gross duration of runs (sorted-row positions) minus the top-level hardirqs inside them."""
    top = hard.level == 1
    h_cpu, h_in, h_out = s.cpu[hard.entry[top]], s.ts[hard.entry[top]], s.ts[hard.exit[top]]
    cpu = s.cpu[entry]
    inside = busy_before(h_cpu, h_in, h_out, cpu, s.ts[exit_]) - busy_before(h_cpu, h_in, h_out, cpu, s.ts[entry])
    net: np.ndarray = s.ts[exit_] - s.ts[entry] - inside
    return net


def _in_hardirq(n: int, hard: _Hard) -> np.ndarray:
    """Rows (sorted positions) strictly inside a matched outermost hardirq run."""
    top = hard.level == 1
    cov = np.zeros(n + 1, dtype=np.int64)
    np.add.at(cov, hard.entry[top] + 1, 1)
    np.add.at(cov, hard.exit[top], -1)
    return np.cumsum(cov)[:n] > 0


def _passes(s: _Sorted, hard: _Hard, entry: np.ndarray, exit_: np.ndarray, ksoftirqd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pass id per run, restart flag per run, context index per run) for softirq runs in order."""
    if entry.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.astype(bool), empty
    n = s.ts.shape[0]
    k = s.kind
    hardk = np.isin(k, (EventKind.IRQ_ENTRY, EventKind.IRQ_EXIT, EventKind.VECTOR_ENTRY, EventKind.VECTOR_EXIT))
    nested_raise = (k == EventKind.SOFTIRQ_RAISE) & _in_hardirq(n, hard)
    bad = np.r_[0, np.cumsum(~(hardk | nested_raise))]  # bad[p] = disallowed rows before p
    vec = s.arg0
    prev_x, next_e = exit_[:-1], entry[1:]
    same = (
        (s.cpu[prev_x] == s.cpu[next_e])
        & (s.pid[prev_x] == s.pid[next_e])
        & (next_e > prev_x)
        & (bad[next_e] - bad[prev_x + 1] == 0)
    )
    restart = np.r_[False, same & (vec[next_e] <= vec[prev_x])]
    new_pass = np.r_[True, ~same]
    pass_id = np.cumsum(new_pass) - 1
    first = entry[new_pass]
    before = np.maximum(first - 1, 0)
    after_irq = (first > 0) & (s.cpu[before] == s.cpu[first]) & np.isin(k[before], (EventKind.IRQ_EXIT, EventKind.VECTOR_EXIT))
    ctx_pass = np.where(np.isin(s.pid[first], ksoftirqd), 0, np.where(after_irq, 1, 2))
    return pass_id, restart, ctx_pass[pass_id]


def _latency(s: _Sorted, truncated: Truncated) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(entry row, cpu, raise->entry ns) for softirq entries whose clock started in the window."""
    rows = np.flatnonzero((s.kind == EventKind.SOFTIRQ_RAISE) | (s.kind == EventKind.SOFTIRQ_ENTRY))
    rows = rows[np.lexsort((rows, s.arg0[rows], s.cpu[rows]))]
    cpu, vec, is_entry = s.cpu[rows], s.arg0[rows], s.kind[rows] == EventKind.SOFTIRQ_ENTRY
    n = rows.shape[0]
    new_key = np.r_[True, (cpu[1:] != cpu[:-1]) | (vec[1:] != vec[:-1])] if n else np.zeros(0, dtype=bool)
    # A segment ends at each entry: the rows after an entry of v belong to the next one.
    boundary = new_key | np.r_[False, is_entry[:-1]] if n else new_key
    seg = np.cumsum(boundary) - 1
    seg_start = np.flatnonzero(boundary)[seg]
    first_of_key = np.cumsum(new_key) - 1
    key_first_seg = seg[np.flatnonzero(new_key)][first_of_key]
    e = np.flatnonzero(is_entry)
    started = (~is_entry[seg_start[e]]) & (seg[e] != key_first_seg[e])
    # The first segment of each (cpu, vector) may have begun before the window: not measured.
    truncated["latency"] = _count_by_cpu(cpu[e][seg[e] == key_first_seg[e]])
    truncated["unraised"] = _count_by_cpu(cpu[e][~started & (seg[e] != key_first_seg[e])])
    # A key whose last row is a raise was still pending when the window closed.
    pending = ~is_entry & np.r_[new_key[1:], True] if n else is_entry
    for c, m in _count_by_cpu(cpu[pending]).items():
        truncated["latency"][c] = truncated["latency"].get(c, 0) + m
    e = e[started]
    return rows[e], cpu[e], s.ts[rows[e]] - s.ts[rows[seg_start[e]]]


def _runs(s: _Sorted, hard: _Hard, entry_kind: int, exit_kind: int, what: str, truncated: Truncated
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Entry/exit pairs of one handler kind keyed by arg0 (vector or function): rows, CPU, key, gross and net ns.

    The unpaired ones (cut by the window) are counted in truncated[what].
    """
    rows = np.flatnonzero((s.kind == entry_kind) | (s.kind == exit_kind))
    runs = pair_flat(s.cpu[rows], s.kind[rows] == entry_kind, s.arg0[rows])
    truncated[what] = _count_by_cpu(s.cpu[rows[np.r_[runs.truncated_entries, runs.truncated_exits]]])
    entry, exit_ = rows[runs.entry], rows[runs.exit]
    return entry, exit_, s.cpu[entry], s.arg0[entry], s.ts[exit_] - s.ts[entry], _minus_hardirqs(s, hard, entry, exit_)


def _softirqs(s: _Sorted, hard: _Hard, ksoftirqd: np.ndarray, layout: HistogramLayout, vectors: Collection[int] | None,
              truncated: Truncated) -> tuple[list[Handler], dict[int, int], dict[int, int]]:
    """Softirq handlers, plus (passes, restarts) per CPU."""
    entry, exit_, cpu, vec, gross, net = _runs(s, hard, EventKind.SOFTIRQ_ENTRY, EventKind.SOFTIRQ_EXIT, "softirq", truncated)
    pass_id, restart, ctx = _passes(s, hard, entry, exit_, ksoftirqd)
    first = np.r_[True, pass_id[1:] != pass_id[:-1]] if pass_id.size else pass_id.astype(bool)
    passes, restarts = _count_by_cpu(cpu[first]), _count_by_cpu(cpu[restart])
    lat_row, lat_cpu, lat_ns = _latency(s, truncated)
    lat_vec = s.arg0[lat_row]
    out = []
    for v in np.unique(np.r_[vec, lat_vec]):
        if vectors is not None and int(v) not in vectors:
            continue
        sel, lsel = vec == v, lat_vec == v
        runs_ctx, ns_ctx = _by_cpu_context(cpu[sel], ctx[sel], gross[sel])
        name = SOFTIRQ_NAMES[v] if 0 <= v < len(SOFTIRQ_NAMES) else f"vec{int(v)}"
        out.append(Handler("softirq", int(v), name, _hist_by(cpu[sel], gross[sel], layout), _hist_by(cpu[sel], net[sel], layout),
                           _hist_by(lat_cpu[lsel], lat_ns[lsel], layout), runs_ctx, ns_ctx))
    return out, passes, restarts


def _by_function(s: _Sorted, hard: _Hard, batch: EventBatch, layout: HistogramLayout, truncated: Truncated,
                 kind: str, entry: int, exit_: int) -> list[Handler]:
    """Runs between entry and exit events, one Handler of `kind` per function (arg0)."""
    _, _, cpu, func, gross, net = _runs(s, hard, entry, exit_, kind, truncated)
    out = []
    for f in np.unique(func):
        sel = func == f
        out.append(Handler(kind, int(f), tasklet_name(int(f), batch.symbols), _hist_by(cpu[sel], gross[sel], layout), _hist_by(cpu[sel], net[sel], layout)))
    return out


def _tasklets(s: _Sorted, hard: _Hard, batch: EventBatch, layout: HistogramLayout, truncated: Truncated) -> list[Handler]:
    return _by_function(s, hard, batch, layout, truncated, "tasklet", EventKind.TASKLET_ENTRY, EventKind.TASKLET_EXIT)


def _bh_work(s: _Sorted, hard: _Hard, batch: EventBatch, layout: HistogramLayout, truncated: Truncated) -> list[Handler]:
    """BH workqueue work items (Linux >= 6.9), by function: what tasklets became, timed like them."""
    if not np.isin(s.kind, (EventKind.BH_WORK_ENTRY, EventKind.BH_WORK_EXIT)).any():
        return []  # none traced (before 6.9, or none ran): no row, and no "bhwork" in truncated
    return _by_function(s, hard, batch, layout, truncated, "bhwork", EventKind.BH_WORK_ENTRY, EventKind.BH_WORK_EXIT)


def napi_threads(s: _Sorted, comms: dict[int, str], start_ns: int, end_ns: int) -> list[ThreadTime]:
    """Run time of each napi/DEV-ID kthread on each CPU, from the sched_switch events.

    On a CPU, a switch whose next_pid is the thread starts a run and the next switch there ends
    it (its prev is the thread: common_pid). The first switch on a CPU whose prev is the thread
    means it ran since the window began; a run still open at the end counts up to the end.
    """
    pids = np.array(sorted(p for p, c in comms.items() if c.startswith(NAPI_THREAD)), dtype=np.int64)
    rows = np.flatnonzero(s.kind == EventKind.SCHED_SWITCH)
    if pids.size == 0 or rows.size == 0:
        return []
    cpu, ts, prev, nxt, prio = s.cpu[rows], s.ts[rows], s.pid[rows], s.arg0[rows], s.arg2[rows]
    last_on_cpu = np.r_[cpu[1:] != cpu[:-1], True]
    first_on_cpu = np.r_[True, cpu[1:] != cpu[:-1]]
    window = end_ns > start_ns  # a batch made without one spans its own events
    start = min(start_ns, int(ts.min())) if window else int(ts.min())
    end = np.where(last_on_cpu, max(end_ns, int(ts.max())) if window else int(ts.max()), np.r_[ts[1:], 0])
    runs_in = np.isin(nxt, pids)  # a run from this switch to the next one on this CPU (or the edge)
    ran_before = first_on_cpu & np.isin(prev, pids)  # a run from the window's start to this switch
    pid = np.r_[nxt[runs_in], prev[ran_before]]
    on = np.r_[cpu[runs_in], cpu[ran_before]]
    ns = np.r_[end[runs_in] - ts[runs_in], ts[ran_before] - start]
    counted = np.r_[np.ones(int(runs_in.sum()), dtype=np.int64), np.zeros(int(ran_before.sum()), dtype=np.int64)]
    out = []
    for p, c in sorted(set(zip(pid.tolist(), on.tolist()))):
        sel = (pid == p) & (on == c)
        last_prio = prio[runs_in][(nxt[runs_in] == p) & (cpu[runs_in] == c)]
        out.append(ThreadTime(p, comms[p], c, int(ns[sel].sum()), int(counted[sel].sum()),
                              int(last_prio[-1]) if last_prio.size else None))
    return out


def with_napi_tasks(result: TraceResult, before: Sequence[TaskInfo], after: Sequence[TaskInfo]) -> TraceResult:
    """The result with its napi threads' full names, and for a backend without sched_switch
    events (BPF) their run time from /proc/PID/schedstat read before and after the window.

    sched_switch carries the 16-byte comm ("napi/irqlab1767", the device cut off); /proc/PID/comm
    of a kthread has the whole name (fs/proc/array.c proc_task_name(), 5.17+). A schedstat
    delta has no CPU: it is put on the CPU the thread last ran on.
    """
    full = {t.pid: t.comm for t in after if t.kind == "napi"}
    threads = tuple(replace(t, comm=full.get(t.pid, t.comm)) for t in result.threads)
    if result.source == "bpf" and not threads:
        old = {(t.pid, t.comm): t for t in before if t.kind == "napi"}
        for t in after:
            prev = old.get((t.pid, t.comm))
            if t.kind != "napi" or prev is None or t.run_ns is None or prev.run_ns is None or t.run_ns <= prev.run_ns:
                continue
            if t.last_cpu is None or (result.cpus and t.last_cpu not in result.cpus):
                continue  # outside the traced CPUs (-C)
            prio = 99 - t.rt_priority if t.policy in ("fifo", "rr") else 120 + t.nice
            threads += (ThreadTime(t.pid, t.comm, t.last_cpu, t.run_ns - prev.run_ns, 0, prio, "schedstat"),)
    return replace(result, threads=threads)


def aggregate_trace(
    batch: EventBatch,
    *,
    cpus: Collection[int] | None = None,
    vectors: Collection[int] | None = None,
    irqs: Collection[int | str] | None = None,
    ksoftirqd_pids: Collection[int] = (),
    layout: HistogramLayout = HistogramLayout(),
) -> TraceResult:
    """Aggregate one batch into per-CPU histograms (see the module docstring for the rules).

    cpus keeps only those CPUs' events; vectors (softirq numbers) and irqs (IRQ numbers or
    system vector names like "LOC") only limit which handlers are reported, never the
    pairing, so a filtered report has the same numbers as an unfiltered one.
    """
    s = _Sorted.of(batch, cpus)
    truncated: Truncated = {}
    kpids = ksoftirqd_pids_of(batch.comms, ksoftirqd_pids)
    hardirqs, hard = _hardirqs(s, batch, layout, truncated)
    if irqs is not None:
        wanted = {str(i) for i in irqs}
        hardirqs = [h for h in hardirqs if (str(h.key) if h.kind == "irq" else h.name) in wanted]
    softirqs, passes, restarts = _softirqs(s, hard, np.array(kpids, dtype=np.int64), layout, vectors, truncated)
    tasklets = _tasklets(s, hard, batch, layout, truncated) + _bh_work(s, hard, batch, layout, truncated)
    seen = sorted(set(np.unique(s.cpu).tolist()) | (set(batch.lost) if cpus is None else set(batch.lost) & set(cpus)))
    lost = {c: n for c, n in batch.lost.items() if cpus is None or c in cpus}
    return TraceResult(
        window_ns=batch.window_ns,
        cpus=tuple(sorted(set(cpus))) if cpus is not None else tuple(int(c) for c in seen),
        events=_count_by_cpu(s.cpu),
        lost=lost,
        hardirqs=tuple(sorted(hardirqs, key=lambda h: (h.kind, h.key))),
        softirqs=tuple(softirqs),
        tasklets=tuple(tasklets),
        passes=passes,
        restarts=restarts,
        truncated=truncated,
        ksoftirqd_pids=kpids,
        source=batch.source,
        layout=layout,
        threads=tuple(napi_threads(s, batch.comms, batch.start_ns, batch.end_ns)),
    )
