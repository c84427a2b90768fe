"""Decoded ring-buffer records -> model.events.EventBatch, by the column table in model/events.py.

Every field is read through its `format` layout (formats.Field), vectorised per event type:
one fancy-index gather per field over all records of that type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from irqlab.errors import TracefsUnavailable
from irqlab.model.events import COLUMNS, DTYPES, VECTOR_BY_ID, EventBatch, EventKind
from irqlab.tracing.formats import EventFormat, Field, load_format
from irqlab.tracing.ringbuf import Records

# The VECTOR_* id that decoding stores in arg1, by tracepoint base name (model.events.VECTOR_BY_ID).
VECTOR_IDS: dict[str, int] = {name: i for i, name in enumerate(VECTOR_BY_ID)}

# tracepoint -> (kind, fields giving arg0, arg1, arg2); None = 0, an int = that constant.
# Field names are those of the v6.18 format files (include/trace/events/irq.h, sched.h, napi.h).
Spec = tuple[EventKind, tuple[str | int | None, ...]]
SPECS: dict[str, Spec] = {
    "irq:irq_handler_entry": (EventKind.IRQ_ENTRY, ("irq",)),
    "irq:irq_handler_exit": (EventKind.IRQ_EXIT, ("irq", "ret")),
    "irq:softirq_raise": (EventKind.SOFTIRQ_RAISE, ("vec",)),
    "irq:softirq_entry": (EventKind.SOFTIRQ_ENTRY, ("vec",)),
    "irq:softirq_exit": (EventKind.SOFTIRQ_EXIT, ("vec",)),
    # Linux >= 5.13 (commit f4bf3ca2e5cb "tracing: Add tasklet tracepoints"); present on 6.18.
    "irq:tasklet_entry": (EventKind.TASKLET_ENTRY, ("func",)),
    "irq:tasklet_exit": (EventKind.TASKLET_EXIT, ("func",)),
    "sched:sched_switch": (EventKind.SCHED_SWITCH, ("next_pid", "prev_state", "next_prio")),
    "sched:sched_waking": (EventKind.SCHED_WAKEUP, ("pid", "target_cpu", "prio")),
    "sched:sched_wakeup": (EventKind.SCHED_WAKEUP, ("pid", "target_cpu", "prio")),
    "napi:napi_poll": (EventKind.NAPI_POLL, ("work", "budget")),  # arg2: device index, below
    # kernel/time/hrtimer.c __run_hrtimer(): the timer's callback is about to run (v6.18).
    "timer:hrtimer_expire_entry": (EventKind.HRTIMER_EXPIRE, ("hrtimer", "now", "function")),
    # Who interrupted a CPU (irqlab isolation). include/trace/events/ipi.h (Linux >= 6.6, commit
    # 68e2d17c9eb3 "trace: Add trace_ipi_send_cpu()"): recorded on the sender, `callsite` its
    # _RET_IP_, `callback` the function the target runs (NULL for a reschedule IPI).
    "ipi:ipi_send_cpu": (EventKind.IPI_SEND, ("cpu", "callsite", "callback")),
    "ipi:ipi_send_cpumask": (EventKind.IPI_SEND_MASK, (None, "callsite", "callback")),  # arg0: below
    "workqueue:workqueue_execute_start": (EventKind.WORK_EXECUTE, ("function", "work")),
    "timer:timer_expire_entry": (EventKind.TIMER_EXPIRE, ("function", "timer")),
    # include/trace/events/csd.h (Linux >= 6.6): the function a function-call IPI runs on the
    # target (ipi_send_cpu's callback is only generic_smp_call_function_single_interrupt).
    "csd:csd_queue_cpu": (EventKind.CSD_QUEUE, ("cpu", "callsite", "func")),
}
for _name, _id in VECTOR_IDS.items():  # arch/x86/include/asm/trace/irq_vectors.h
    SPECS[f"irq_vectors:{_name}_entry"] = (EventKind.VECTOR_ENTRY, ("vector", _id))
    SPECS[f"irq_vectors:{_name}_exit"] = (EventKind.VECTOR_EXIT, ("vector", _id))

# Work items that run in softirq context are a BH workqueue's (WQ_BH, Linux >= 6.9): bh_worker()
# runs them from the TASKLET and HI softirqs (kernel/workqueue.c, kernel/softirq.c tasklet_action()).
# The events name neither the workqueue nor its flags (include/trace/events/workqueue.h, v6.18:
# work and function only), so the record's context tells: TRACE_FLAG_SOFTIRQ in common_flags,
# set when the event fired in_serving_softirq() (kernel/trace/trace.c tracing_gen_ctx_irq_test()).
BH_WORK: dict[str, EventKind] = {
    "workqueue:workqueue_execute_start": EventKind.BH_WORK_ENTRY,
    "workqueue:workqueue_execute_end": EventKind.BH_WORK_EXIT,
}
TRACE_FLAG_SOFTIRQ = 0x10  # kernel/trace/trace.h
# Kernel filters (events.rst; common fields are filterable) that keep only BH work in the buffer:
# kworker work is most of these events and none of the interrupt path.
BH_WORK_FILTERS: tuple[tuple[str, str], ...] = tuple((q, f"common_flags & {TRACE_FLAG_SOFTIRQ}") for q in BH_WORK)

# What `irqlab trace` enables: the interrupt path and the task a softirq ran in.
DEFAULT_EVENTS: tuple[str, ...] = (
    "irq:irq_handler_entry", "irq:irq_handler_exit", "irq:softirq_raise", "irq:softirq_entry",
    "irq:softirq_exit", "sched:sched_switch",
)
OPTIONAL_EVENTS: tuple[str, ...] = (
    "irq:tasklet_entry", "irq:tasklet_exit", *BH_WORK,
    *(f"irq_vectors:{n}_{e}" for n in VECTOR_BY_ID for e in ("entry", "exit")),
)

_DT = {1: ("u1", "i1"), 2: ("<u2", "<i2"), 4: ("<u4", "<i4"), 8: ("<u8", "<i8")}


@dataclass(frozen=True, slots=True)
class Catalog:
    """The formats of the enabled events, by the id that starts each payload (common_type)."""

    by_id: Mapping[int, EventFormat]
    common_type: Field
    common_pid: Field
    common_flags: Field | None = None  # TRACE_FLAG_* of the context the event fired in

    @classmethod
    def of(cls, formats: Iterable[EventFormat]) -> Catalog:
        fmts = list(formats)
        if not fmts:
            raise TracefsUnavailable("no event formats to decode with")
        first = fmts[0]
        return cls({f.id: f for f in fmts}, first.field("common_type"), first.field("common_pid"),
                   first.field("common_flags") if first.has("common_flags") else None)

    @classmethod
    def load(cls, events_dir: Path, names: Iterable[str]) -> Catalog:
        return cls.of(load_format(events_dir, q) for q in names)


def gather(data: np.ndarray, offsets: np.ndarray, f: Field) -> np.ndarray:
    """One numeric field of every record at `offsets`, as int64 (u64 addresses wrap, as in C)."""
    if f.size not in _DT:
        raise TracefsUnavailable(f"field {f.name} is {f.size} bytes wide: not a number")
    if f.offset % 4 == 0 and f.size in (4, 8) and data.shape[0] % 4 == 0:
        # Payloads start 4-byte aligned (records are 4-byte units, ring_buffer.c RB_ALIGNMENT),
        # so whole 32-bit words can be picked directly: 1-D indexing, far cheaper than bytes.
        words = data.view("<u4")
        at = (offsets + f.offset) >> 2
        lo = words[at].astype(np.uint64)
        if f.size == 8:
            return (lo | (words[at + 1].astype(np.uint64) << np.uint64(32))).view(np.int64)
        return lo.astype(np.uint32).view(np.int32).astype(np.int64) if f.signed else lo.astype(np.int64)
    idx = offsets[:, None] + (f.offset + np.arange(f.size))
    return data[idx].view(_DT[f.size][f.signed]).ravel().astype(np.int64)


def string_at(data: np.ndarray, off: int, length: int, f: Field) -> str:
    """A char array or __data_loc string of one record, cut at its NUL."""
    if f.data_loc:  # u32: offset from the payload start (low 16 bits), length (high 16 bits)
        loc = int(data[off + f.offset: off + f.offset + 4].view("<u4")[0])
        start, n = off + (loc & 0xFFFF), loc >> 16
        if (loc & 0xFFFF) + n > length:
            return "?"
    else:
        start, n = off + f.offset, f.size
    raw = bytes(data[start:start + n])
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _first_strings(data, keys, offs, lens, f: Field) -> dict[int, str]:
    """key -> string of the first record with that key (names change rarely; read each once)."""
    uniq, first = np.unique(keys, return_index=True)
    return {int(k): string_at(data, int(offs[i]), int(lens[i]), f) for k, i in zip(uniq, first)}


def _column(data, offs, fmt: EventFormat, src) -> np.ndarray:
    if src is None:
        return np.zeros(offs.shape[0], np.int64)
    if isinstance(src, int):
        return np.full(offs.shape[0], src, np.int64)
    return gather(data, offs, fmt.field(src))


def decode(buf, recs: Records, page_cpu: np.ndarray, catalog: Catalog, **meta) -> EventBatch:
    """Turn records into an EventBatch sorted by time (stable, so per-CPU order holds)."""
    data = np.frombuffer(buf, np.uint8) if not isinstance(buf, np.ndarray) else buf
    if len(recs) == 0:
        return EventBatch.empty(**meta)
    types = gather(data, recs.offset, catalog.common_type)
    n = len(recs)
    # Columns are filled in record order (page order: each CPU's pages in read order), one
    # event type at a time, then sorted once by time.
    out = {c: np.zeros(n, DTYPES[c]) for c in COLUMNS}
    out["ts_ns"][:] = recs.ts
    out["cpu"][:] = page_cpu[recs.page]
    out["pid"][:] = gather(data, recs.offset, catalog.common_pid)
    keep = np.zeros(n, bool)
    names: dict[int, str] = {}
    comms: dict[int, str] = {}
    devices: list[str] = list(meta.pop("devices", ()))
    for ident in np.nonzero(np.bincount(types))[0]:  # common_type is a u16: bincount beats unique
        fmt = catalog.by_id.get(int(ident))
        spec = SPECS.get(fmt.qualified) if fmt else None
        sel = np.nonzero(types == ident)[0]
        if fmt is not None and fmt.qualified in BH_WORK:
            sel = _bh_work(data, recs, sel, fmt, catalog, out, keep)  # what is left ran in a kworker
        if spec is None or not sel.size:
            continue  # an event we did not ask for, or cannot place in the table
        kind, srcs = spec
        offs, lens = recs.offset[sel], recs.length[sel]
        keep[sel] = True
        out["kind"][sel] = int(kind)
        srcs = tuple(srcs) + (None,) * (3 - len(srcs))
        for col, src in zip(("arg0", "arg1", "arg2"), srcs):
            if src is not None:
                out[col][sel] = _column(data, offs, fmt, src)
        if kind is EventKind.IRQ_ENTRY and fmt.has("name"):
            names.update(_first_strings(data, out["arg0"][sel], offs, lens, fmt.field("name")))
        elif kind is EventKind.SCHED_SWITCH:
            for p, c in (("prev_pid", "prev_comm"), ("next_pid", "next_comm")):
                comms.update(_first_strings(data, gather(data, offs, fmt.field(p)), offs, lens, fmt.field(c)))
        elif kind is EventKind.SCHED_WAKEUP and fmt.has("comm"):
            comms.update(_first_strings(data, out["arg0"][sel], offs, lens, fmt.field("comm")))
        elif kind is EventKind.NAPI_POLL:
            out["arg2"][sel] = _napi_devices(data, offs, lens, fmt, devices)
        elif kind is EventKind.IPI_SEND_MASK:
            out["arg0"][sel] = _cpumask_bits(data, offs, lens, fmt.field("cpumask"))
    rows = np.nonzero(keep)[0]
    rows = rows[np.argsort(out["ts_ns"][rows], kind="stable")]
    return EventBatch(**{c: v[rows] for c, v in out.items()}, irq_names=names, comms=comms,
                      devices=tuple(devices), **meta)


def _bh_work(data, recs: Records, sel: np.ndarray, fmt: EventFormat, catalog: Catalog, out: dict[str, np.ndarray],
             keep: np.ndarray) -> np.ndarray:
    """Fill the rows of a workqueue event that ran in softirq context as BH work; return the other rows."""
    if catalog.common_flags is None or not fmt.has("function"):
        return sel
    offs = recs.offset[sel]
    bh = (gather(data, offs, catalog.common_flags) & TRACE_FLAG_SOFTIRQ) != 0
    rows = sel[bh]
    keep[rows] = True
    out["kind"][rows] = int(BH_WORK[fmt.qualified])
    out["arg0"][rows] = gather(data, offs[bh], fmt.field("function"))
    out["arg1"][rows] = gather(data, offs[bh], fmt.field("work"))
    return sel[~bh]


def _napi_devices(data, offs, lens, fmt: EventFormat, devices: list[str]) -> np.ndarray:
    """arg2 of NAPI_POLL: index of the device name in `devices` (keyed by the napi pointer)."""
    napi = gather(data, offs, fmt.field("napi"))
    by_ptr = _first_strings(data, napi, offs, lens, fmt.field("dev_name"))
    for name in by_ptr.values():
        if name not in devices:
            devices.append(name)
    uniq, inverse = np.unique(napi, return_inverse=True)
    return np.array([devices.index(by_ptr[int(k)]) for k in uniq], np.int64)[inverse]


def _cpumask_bits(data, offs, lens, f: Field) -> np.ndarray:
    """arg0 of IPI_SEND_MASK: the first word of each record's __data_loc cpumask (unsigned longs,
    little-endian), CPUs 0-62 as bits; CPUs from 63 on are not kept (the column is an int64)."""
    out = np.zeros(offs.shape[0], np.int64)
    for i, (off, length) in enumerate(zip(offs.tolist(), lens.tolist())):
        loc = int(data[off + f.offset: off + f.offset + 4].view("<u4")[0])
        start, n = loc & 0xFFFF, loc >> 16
        if n == 0 or start + n > length:
            continue
        word = bytes(data[off + start: off + start + min(n, 8)]).ljust(8, b"\0")
        out[i] = int.from_bytes(word, "little") & 0x7FFF_FFFF_FFFF_FFFF
    return out
