"""The BPF backend: load the programs, read their maps each interval into TraceResult.

The rules are analysis/trace_aggregate.py's (durations, NET, latency from the first raise of a clear
pending bit, passes ended only by sched_switch or a raise outside a hardirq, contexts).
Differences from the tracefs backend (for docs/trace.md):
- Nothing is lost to a ring buffer; a program run that the kernel skipped because another
  BPF program was running on that CPU (recursion_misses in /proc/self/fdinfo) is reported as
  lost on CPU -1 (the kernel does not say which CPU).
- State persists across intervals: a run that spans two reports is measured in the second,
  so only the first report can have runs cut by its start ("truncated" then counts exits
  without an entry; "unraised" counts entries with no recorded raise; "latency" stays empty).
- Tasklets are not told apart by function: one row, keyed by the last function seen; the same
  for BH workqueue work (one "bhwork" row). A work item is a BH pool's when it runs inside a
  TASKLET or HI softirq by the programs' own entry/exit stamps (tracefs tests the record's
  softirq flag, which a tracepoint program may not read).
- IRQ numbers above the highest allocated at load time + 32 get no histogram: their runs count
  as truncated hardirqs (the map holds one series pair per IRQ slot, per CPU).
- The hardirq nesting depth is reset at every softirq entry/exit and sched_switch (no
  softirq or context switch runs inside a traced hardirq), which heals a depth that a
  skipped exit left behind.
- System vector rows are keyed by the last vector number each event reported.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from irqlab.bpf import programs as P
from irqlab.bpf import syscall
from irqlab.bpf.asm import encode
from irqlab.bpf.maps import ARRAY, HASH, PERCPU_ARRAY, Map
from irqlab.errors import IrqlabError, MissingSource
from irqlab.model.events import VECTOR_NAMES
from irqlab.model.histogram import Histogram
from irqlab.model.trace_result import CONTEXTS, Handler, HistogramLayout, TraceResult, tasklet_name
from irqlab.model.vectors import NR_SOFTIRQS, SOFTIRQ_NAMES
from irqlab.sources.fs import Roots
from irqlab.sources.irqinfo import allocated_irqs, read_actions
from irqlab.sources.tasks import ksoftirqd_pids
from irqlab.tracing.formats import EventFormat, load_format
from irqlab.tracing.instance import tracefs_for_setup

FLIP_SETTLE_S = 0.002  # a program that read the old generation finishes long before this
MAX_VALUE_BYTES = 32 * 1024  # per-CPU element limit (PCPU_MIN_UNIT_SIZE, mm/percpu.c)
NAME_PREFIX = "irqlab_"
LIVE = Roots()  # the programs run on this machine: its /proc and /sys


def _events_wanted() -> list[str]:
    out = [f"irq:{e}" for e in ("softirq_entry", "softirq_exit", "softirq_raise", "irq_handler_entry",
                                "irq_handler_exit", "tasklet_entry", "tasklet_exit")] + ["sched:sched_switch", *P.BH_WORK_EVENTS]
    for v in P.VECTOR_EVENTS:
        out += [f"irq_vectors:{v}_entry", f"irq_vectors:{v}_exit"]
    return out


class BpfLayoutUnsupported(syscall.BpfUnavailable):
    """This kernel's tracepoint layout is not one the programs can read; the message is the one-line reason."""


# The events the programs cannot do without: a softirq's and a hardirq's entry and exit, and the
# context switch that ends a softirq pass (bpf/programs.py, sched_switch()).
REQUIRED_EVENTS: tuple[str, ...] = ("irq:softirq_entry", "irq:softirq_exit", "irq:irq_handler_entry",
                                    "irq:irq_handler_exit", "sched:sched_switch")
# The one payload field each program loads (programs.py, _Builder.prologue(): a 4-byte load, or
# 8 for a pointer), with the widths that load handles. Offsets are read from the format file, so a
# layout that moves a field (the RT patch set's extra common fields put `vec` at 12, not 8) is
# understood; a field missing, of another width, or misaligned (the verifier refuses a misaligned
# context read, kernel/trace/bpf_trace.c tp_prog_is_valid_access()) is not.
PROGRAM_FIELDS: dict[str, tuple[str, tuple[int, ...]]] = {
    **{f"irq:softirq_{e}": ("vec", (4,)) for e in ("entry", "exit", "raise")},
    **{f"irq:irq_handler_{e}": ("irq", (4,)) for e in ("entry", "exit")},
    **{f"irq:tasklet_{e}": ("func", (4, 8)) for e in ("entry", "exit")},
    **{q: ("function", (4, 8)) for q in P.BH_WORK_EVENTS},
    **{f"irq_vectors:{v}_{e}": ("vector", (4,)) for v in P.VECTOR_EVENTS for e in ("entry", "exit")},
}


def check_layout(formats: dict[str, EventFormat]) -> str | None:
    """None when the programs can read these formats, else the one-line reason they cannot.

    The programs are plain tracepoint programs: they need no BTF (CONFIG_DEBUG_INFO_BTF), only
    the format files, so a kernel without BTF is not refused for that.
    """
    missing = [q for q in REQUIRED_EVENTS if q not in formats]
    if missing:
        return f"no {', '.join(missing)} event"
    for q, fmt in formats.items():
        name, widths = PROGRAM_FIELDS.get(q, ("", ()))
        if not name:
            continue
        if not fmt.has(name):
            return f"{q} has no field {name!r} (fields: {', '.join(f.name for f in fmt.fields if not f.name.startswith('common_'))})"
        f = fmt.field(name)
        if f.size not in widths or f.array_len is not None or f.data_loc:
            return f"{q} field {name!r} is {f.ctype} ({f.size} bytes); the programs read {' or '.join(map(str, widths))} bytes"
        if f.offset % f.size:
            return f"{q} field {name!r} at offset {f.offset} is not {f.size}-byte aligned"
    return None


def load_formats(events_dir: Path) -> dict[str, EventFormat]:
    """Formats of every event the programs use that this kernel has (irq_vectors is x86 only).

    A layout the programs cannot read raises BpfLayoutUnsupported (check_layout()).
    """
    out = {}
    for q in _events_wanted():
        try:
            out[q] = load_format(events_dir, q)
        except MissingSource:
            continue  # not on this kernel or architecture; any other failure is raised
    reason = check_layout(out)
    if reason is not None:
        raise BpfLayoutUnsupported(f"BPF backend: {reason}")
    return out


def highest_irq(roots: Roots = LIVE) -> int:
    """The highest IRQ number allocated now (sources/irqinfo.py's allocated_irqs()), 0 when none.

    A listing that fails for another reason than absence raises (SourceError): IRQ slots sized
    from a guess would silently count most handlers as truncated.
    """
    return max(allocated_irqs(roots), default=0)


def layout_for(layout: HistogramLayout, max_irq: int = 256) -> P.SeriesLayout:
    """The map layout for a histogram HistogramLayout; max_irq IRQ slots (2 series each, per CPU)."""
    lay = P.SeriesLayout(layout.bucket_ns, layout.limit_ns // layout.bucket_ns, min(max_irq, P.MAX_IRQ))
    if lay.words * 8 > MAX_VALUE_BYTES or lay.overflow_word * 8 >= 1 << 15 or layout.bucket_ns >= 1 << 31:
        raise syscall.BpfUnavailable(f"BPF backend: at most {(MAX_VALUE_BYTES // 8) - P.HDR - P.LOG2 - 1} linear buckets "
                                     f"below 2.1 s each (asked {lay.nbuckets} of {layout.bucket_ns} ns)")
    return lay


@dataclass
class Counters:
    """The programs' monotonic counters at one instant; intervals are differences of two."""

    misc: np.ndarray  # (ncpus, len(MISC)) cumulative
    misses: int  # recursion misses summed over the programs


@dataclass
class BpfTracer:
    """Loaded maps and attached programs; use as a context manager (everything closed on exit)."""

    tracefs: Path | None = None  # None: the mounted tracefs, mounted for the set-up only if need be
    layout: HistogramLayout = HistogramLayout()
    ksoftirqd_pids: tuple[int, ...] = ()
    maps: dict[str, Map] = field(default_factory=dict)
    prog_fds: list[int] = field(default_factory=list)
    perf_fds: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    _gen: int = 0
    _t_flip: int = 0
    _last: Counters | None = None

    def __enter__(self) -> BpfTracer:
        try:
            self.open()
        except BaseException as exc:
            self._close_after(exc)
            raise
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.close()
        else:
            self._close_after(exc)

    def _close_after(self, exc: BaseException) -> None:
        """close() while exc is on its way up: a failure to close is noted on exc, not raised over it."""
        try:
            self.close()
        except IrqlabError as failed:
            exc.add_note(str(failed))

    def open(self) -> None:
        # IRQ slots for the IRQs that exist now (+ room for a few more): the histogram map is
        # 2 generations x series x (8 * words) bytes x possible CPUs, mostly IRQ series.
        lay = self.lay = layout_for(self.layout, highest_irq() + 33)
        with tracefs_for_setup(self.tracefs) as tfs:
            formats = load_formats(tfs.root / "events")
        m = self.maps
        m["state"] = Map.create("irqlab_state", PERCPU_ARRAY, 4, lay.state_words * 8, 1)
        m["hist"] = Map.create("irqlab_hist", PERCPU_ARRAY, 4, lay.words * 8, 2 * lay.series)
        m["ctl"] = Map.create("irqlab_ctl", ARRAY, 4, 8, 1)
        m["kpids"] = Map.create("irqlab_kpids", HASH, 4, 4, 4096)
        if not self.ksoftirqd_pids:  # the programs compare the current pid with these
            self.ksoftirqd_pids = ksoftirqd_pids(LIVE)
        for pid in self.ksoftirqd_pids:
            m["kpids"].update_bytes(pid, b"\1\0\0\0")
        fds = P.Maps(m["state"].fd, m["hist"].fd, m["ctl"].fd, m["kpids"].fd)
        specs = P.build_all(fds, lay, formats)
        for spec in specs:  # load all first: a refusal attaches nothing
            self.prog_fds.append(syscall.prog_load(encode(spec.insns), spec.name))
            self.names.append(spec.name)
        self._last = self._counters()
        self._t_flip = time.monotonic_ns()
        # Exits before entries: an entry whose exit is not attached yet would leave a stale depth.
        order = sorted(zip(specs, self.prog_fds), key=lambda sf: not sf[0].event.endswith(("_exit", "switch")))
        for spec, fd in order:
            pfd = syscall.perf_tracepoint(formats[spec.event].id)
            self.perf_fds.append(pfd)
            syscall.attach(pfd, fd)
        self._t_flip = time.monotonic_ns()

    def close(self) -> None:
        """Detach and free: closing the perf fds detaches, closing the last prog/map fd frees.

        Every descriptor is closed even when one fails; the failures are then raised together
        as one IrqlabError (a descriptor that will not close was closed twice: a bug to see).
        """
        failed = syscall.close_all(self.perf_fds, self.prog_fds, self.maps)
        self.perf_fds, self.prog_fds, self.maps = [], [], {}
        if failed:
            raise IrqlabError(f"BPF backend: closing failed ({'; '.join(failed)})")

    def prog_ids(self) -> list[int]:
        return [syscall.prog_info(fd)[0] for fd in self.prog_fds]

    def _counters(self) -> Counters:
        state = self.maps["state"].lookup_u64(0)
        return Counters(state[:, P.S_MISC:P.S_MISC + len(P.MISC)].astype(np.int64), 0)

    def misses(self) -> dict[str, int]:
        """Program name -> runs the kernel skipped because another BPF program ran on that CPU."""
        return {n: int(syscall.fdinfo(fd).get("recursion_misses", "0")) for n, fd in zip(self.names, self.prog_fds)}

    def flip(self) -> tuple[int, int, Counters, Counters]:
        """Switch generations; (old generation, window ns, counters then, counters now).

        The counters are read first and the generation switched right after, so a caller that
        reads /proc/softirqs just before flip() has the same window within microseconds.
        """
        counters = self._counters()
        old = self._gen
        self._gen ^= 1
        self.maps["ctl"].update_u64(0, np.array([self._gen], dtype=np.uint64))
        now = time.monotonic_ns()
        window, self._t_flip = now - self._t_flip, now
        counters.misses = sum(self.misses().values())
        before, self._last = self._last, counters
        time.sleep(FLIP_SETTLE_S)
        return old, window, before, self._last

    def read_series(self, gen: int) -> dict[int, np.ndarray]:
        """Non-empty series of a generation (series -> (ncpus, words) u64), zeroed after reading."""
        hist = self.maps["hist"]
        zero = None
        out = {}
        for s in range(self.lay.series):
            key = gen * self.lay.series + s
            arr = hist.lookup_u64(key)
            if arr[:, P.H_COUNT].any():
                out[s] = arr.copy()
                if zero is None:
                    zero = np.zeros_like(arr)
                hist.update_u64(key, zero)
        return out

    def windows(self, seconds: float, count: int | None, **filters) -> Iterator[TraceResult]:
        """One TraceResult per `seconds` on absolute deadlines from now (count of them, or forever)."""
        from irqlab.tracing.symbols import Kallsyms

        symbols: dict[int, str] = {}
        kallsyms = None
        deadline = time.monotonic()
        n = 0
        while count is None or n < count:
            deadline += seconds
            time.sleep(max(0.0, deadline - time.monotonic()))
            gen, window, before, now = self.flip()
            series = self.read_series(gen)
            funcs = [int(t[:, P.H_KEY].max().astype(np.int64)) for t in map(series.get, (self.lay.tasklet, self.lay.bhwork)) if t is not None]
            if funcs:
                kallsyms = kallsyms or Kallsyms.load()
                symbols.update(kallsyms.lookup(funcs))
            yield to_result(series, self.lay, self.layout, window, before, now, self.ksoftirqd_pids, symbols=symbols, **filters)
            n += 1

    def snapshot(self, **filters) -> TraceResult:
        """Close the current interval and return its result."""
        gen, window, before, now = self.flip()
        series = self.read_series(gen)
        return to_result(series, self.lay, self.layout, window, before, now, self.ksoftirqd_pids, **filters)


# ---------------------------------------------------------------- maps -> result types


def _hists(arr: np.ndarray, lay: P.SeriesLayout, layout: HistogramLayout, cpus: Collection[int] | None) -> dict[int, Histogram]:
    out = {}
    a = arr.astype(np.int64)  # counts and ns sums stay far below 2^63
    for c in range(arr.shape[0]):
        n = int(a[c, P.H_COUNT])
        if n == 0 or (cpus is not None and c not in cpus):
            continue
        h = layout.new()
        h.add_buckets(a[c, lay.linear_word:lay.overflow_word], int(a[c, lay.overflow_word]), a[c, P.HDR:P.HDR + P.LOG2],
                      n, int(a[c, P.H_SUM]), int(~arr[c, P.H_INVMIN]), int(arr[c, P.H_MAX]))
        out[c] = h
    return out


def _merge_into(dst: dict[int, Histogram], src: dict[int, Histogram]) -> None:
    for c, h in src.items():
        if c in dst:
            dst[c].merge(h)
        else:
            dst[c] = h


def _by_cpu(col: np.ndarray, cpus: Collection[int] | None) -> dict[int, int]:
    return {c: int(n) for c, n in enumerate(col) if n and (cpus is None or c in cpus)}


def irq_name(irq: int, roots: Roots = LIVE) -> str:
    """The handler names of an IRQ (sources/irqinfo.py's read_actions()), as irq_handler_entry shows them; "" if unknown."""
    return ",".join(read_actions(roots, irq) or ())


def _softirqs(series, lay, layout, cpus, vectors) -> list[Handler]:
    out = []
    empty = np.zeros((1, lay.words), dtype=np.uint64)
    for v in range(NR_SOFTIRQS):
        if vectors is not None and v not in vectors:
            continue
        g, n, lat = (series.get(base + v) for base in (lay.soft_gross, lay.soft_net, lay.soft_lat))
        if g is None and lat is None:
            continue
        gross = _hists(g if g is not None else empty, lay, layout, cpus)
        runs = {c: {name: int(g[c, P.H_RUNS + i]) for i, name in enumerate(CONTEXTS)} for c in gross} if g is not None else {}
        ns = {c: {name: int(g[c, P.H_NS + i]) for i, name in enumerate(CONTEXTS)} for c in gross} if g is not None else {}
        out.append(Handler("softirq", v, SOFTIRQ_NAMES[v], gross, _hists(n if n is not None else empty, lay, layout, cpus),
                           _hists(lat if lat is not None else empty, lay, layout, cpus), runs, ns))
    return [h for h in out if h.gross or h.latency]


def _hardirqs(series, lay, layout, cpus, irqs) -> list[Handler]:
    out = []
    empty = np.zeros((1, lay.words), dtype=np.uint64)
    for irq in range(lay.max_irq):
        g = series.get(lay.irq_base + irq)
        if g is None:
            continue
        n = series.get(lay.irq_net + irq, empty)
        h = Handler("irq", irq, irq_name(irq), _hists(g, lay, layout, cpus), _hists(n, lay, layout, cpus))
        if h.gross:
            out.append(h)
    # System vectors by /proc/interrupts row: CAL is call_function and call_function_single.
    rows: dict[str, tuple[list[int], dict, dict]] = {}
    for slot, event in enumerate(P.VECTOR_EVENTS):
        g = series.get(lay.vec_base + 2 * slot)
        if g is None:
            continue
        n = series.get(lay.vec_base + 2 * slot + 1, empty)
        numbers, gross, net = rows.setdefault(VECTOR_NAMES.get(event, event), ([], {}, {}))
        numbers.append(int(g[:, P.H_KEY].max()))
        _merge_into(gross, _hists(g, lay, layout, cpus))
        _merge_into(net, _hists(n, lay, layout, cpus))
    for name, (numbers, gross, net) in sorted(rows.items()):
        if gross:
            out.append(Handler("vector", min(numbers), name, gross, net))
    if irqs is not None:
        wanted = {str(i) for i in irqs}
        out = [h for h in out if (str(h.key) if h.kind == "irq" else h.name) in wanted]
    return sorted(out, key=lambda h: (h.kind, h.key))


def _tasklets(series, lay, layout, cpus, symbols: dict[int, str]) -> list[Handler]:
    """The tasklet row and the BH work row: each one series pair keyed by the last function seen."""
    out = []
    for kind, base in (("tasklet", lay.tasklet), ("bhwork", lay.bhwork)):
        g = series.get(base)
        if g is None:
            continue
        func = int(g[:, P.H_KEY].max().astype(np.int64))  # the batch keeps addresses as int64
        n = series.get(base + 1, np.zeros_like(g))
        h = Handler(kind, func, tasklet_name(func, symbols), _hists(g, lay, layout, cpus), _hists(n, lay, layout, cpus))
        if h.gross:
            out.append(h)
    return out


def to_result(series: dict[int, np.ndarray], lay: P.SeriesLayout, layout: HistogramLayout, window_ns: int, before: Counters,
              now: Counters, ksoftirqd_pids: tuple[int, ...] = (), *, cpus: Collection[int] | None = None,
              vectors: Collection[int] | None = None, irqs: Collection[int | str] | None = None,
              symbols: dict[int, str] | None = None, online: Collection[int] | None = None) -> TraceResult:
    """The TraceResult of one interval from its series and the counters at its two ends."""
    d = now.misc - before.misc
    col = {name: d[:, i] for i, name in enumerate(P.MISC)}
    misses = now.misses - before.misses
    seen = [c for c in range(d.shape[0]) if col["events"][c] and (cpus is None or c in cpus)]
    trunc_hard = col["trunc_hardirq"] + col["dropped_irq"]
    tasklets = tuple(_tasklets(series, lay, layout, cpus, symbols or {}))
    # "bhwork" only when BH work was seen, as the tracefs backend (analysis/trace_aggregate.py _bh_work())
    bhwork = {"bhwork": _by_cpu(col["trunc_bhwork"], cpus)} if lay.bhwork in series or col["trunc_bhwork"].any() else {}
    return TraceResult(
        window_ns=window_ns,
        cpus=tuple(sorted(set(cpus))) if cpus is not None else tuple(seen),
        events=_by_cpu(col["events"], cpus),
        lost={-1: misses} if misses else {},
        hardirqs=tuple(_hardirqs(series, lay, layout, cpus, irqs)),
        softirqs=tuple(_softirqs(series, lay, layout, cpus, vectors)),
        tasklets=tasklets,
        passes=_by_cpu(col["passes"], cpus),
        restarts=_by_cpu(col["restarts"], cpus),
        truncated={"hardirq": _by_cpu(trunc_hard, cpus), "softirq": _by_cpu(col["trunc_softirq"], cpus),
                   "tasklet": _by_cpu(col["trunc_tasklet"], cpus), "latency": {}, "unraised": _by_cpu(col["unraised"], cpus),
                   **bhwork},
        ksoftirqd_pids=tuple(ksoftirqd_pids),
        source="bpf",
        layout=layout,
    )


def softirq_entries(before: Counters, now: Counters) -> np.ndarray:
    """(ncpus, NR_SOFTIRQS) softirq_entry hits between two counter reads (to check /proc/softirqs)."""
    i = P.MISC.index("entries0")
    return (now.misc - before.misc)[:, i:i + NR_SOFTIRQS]


def check_permitted() -> str | None:
    """None when this process may load tracepoint BPF programs, else the one-line reason.

    Loads (and closes) a two-instruction TRACEPOINT program: map creation alone can be allowed
    to users whose programs are still refused (kernel.unprivileged_bpf_disabled, CAP_PERFMON).
    """
    from irqlab.bpf.asm import R0, Asm

    try:
        fd = syscall.prog_load(encode(Asm().mov(R0, 0).exit().assemble()), "irqlab_probe")
    except IrqlabError as exc:
        return str(exc).splitlines()[0]
    os.close(fd)
    return None


def choose_backend(requested: str) -> tuple[str, str | None]:
    """(backend, note) for --backend auto|bpf|tracefs; note is the one line auto prints on fallback.

    Raises BpfUnavailable when bpf was asked for explicitly and is not permitted.
    """
    if requested == "tracefs":
        return "tracefs", None
    reason = check_permitted()
    if reason is None:
        return "bpf", None
    if requested == "bpf":
        raise syscall.BpfUnavailable(f"--backend bpf: {reason}")
    return "tracefs", f"BPF backend not available ({reason}); using tracefs"


def stream(tracefs: Path | None, seconds: float, count: int | None, *, layout: HistogramLayout = HistogramLayout(),
           ksoftirqd_pids: tuple[int, ...] = (), **filters) -> Iterator[TraceResult]:
    """One TraceResult per `seconds` (count of them, or forever), programs attached throughout."""
    with BpfTracer(tracefs, layout, tuple(ksoftirqd_pids)) as tracer:
        yield from tracer.windows(seconds, count, **filters)
