"""In-kernel timing of each probe wake-up: deadline -> hrtimer expiry -> switch-in, as histograms.

Three tracepoint programs (the same perf-event attachment as backend.py) and five maps:

- `timer:hrtimer_start` in a probe's context (current pid in `irqlab_wk_pid`) with function
  hrtimer_wakeup (the clock_nanosleep sleeper, kernel/time/hrtimer.c v6.18) records
  `irqlab_wk_tmr[hrtimer pointer] = (slot, softexpires)`. softexpires is the absolute
  CLOCK_MONOTONIC time the probe asked for: exactly its deadline (TIMER_ABSTIME; the timer
  slack only moves `expires`). The event carries it, so nothing is read from kernel memory
  and no structure offsets are assumed.
- `timer:hrtimer_expire_entry` of an hrtimer_wakeup timer looks the pointer up, deletes it, and stores (deadline, now)
  in the probe's slot of `irqlab_wk_pend` (the timer may fire on another CPU).
- `sched:sched_switch` with next_pid a probe takes its slot's pending expiry and adds
  IRQ = expiry - deadline, THREAD = switch-in - expiry and KERNEL = their sum to the
  per-CPU histogram series 0, 1, 2 of `irqlab_wk_hist` (backend.py's series layout).

"now" is bpf_ktime_get_ns() (CLOCK_MONOTONIC) in each program, the probe's own clock; the
event's `now` field is the hrtimer base's time at interrupt entry, earlier than the event.
A timer that expires while its probe still runs (an overrun) has no switch-in: the probe's
next hrtimer_start finds the expiry pending and counts it as no_switch_in. Nothing crosses
to user space per event; with keep > 0 (tests, the benchmark) each timed wake-up is also
written to a ring `irqlab_wk_each` of keep records per probe, read once at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from irqlab.bpf import programs as P
from irqlab.bpf import syscall
from irqlab.bpf.asm import R0, R1, R2, R3, R4, R6, R7, R8, R9, R10, Asm, Insn, encode
from irqlab.bpf.backend import MAX_VALUE_BYTES, _hists
from irqlab.bpf.maps import ARRAY, HASH, PERCPU_ARRAY, Map
from irqlab.errors import IrqlabError
from irqlab.model.histogram import Histogram
from irqlab.model.trace_result import HistogramLayout
from irqlab.tracing.formats import EventFormat, load_format
from irqlab.tracing.instance import tracefs_for_setup

EVENTS = ("timer:hrtimer_start", "timer:hrtimer_expire_entry", "sched:sched_switch")
PARTS = ("irq", "thread", "kernel")  # histogram series 0, 1, 2
COUNTERS = ("starts", "expiries", "timed", "untimed_switch_in", "no_switch_in", "timers_full")
MAX_PROBES = 1024
MAX_TIMERS = 4096  # pending probe sleeps: one per probe, plus cancelled ones not yet reused

# Stack slots of these programs (record() of programs._Builder uses -4, -8 and -16).
FP_PID, FP_SLOT, FP_KEY, FP_VAL, FP_SOFT, FP_EXP = -24, -28, -40, -56, -64, -72


@dataclass(frozen=True, slots=True)
class WakeupMaps:
    pids: int
    timers: int
    pending: int
    hist: int
    counters: int
    each: int = -1  # the per-wake-up ring (keep > 0 only)


def series_layout(layout: HistogramLayout) -> P.SeriesLayout:
    return P.SeriesLayout(layout.bucket_ns, layout.limit_ns // layout.bucket_ns, 0)


def _builder(m: WakeupMaps, lay: P.SeriesLayout) -> P._Builder:
    return P._Builder(P.Maps(state=-1, hist=m.hist, ctl=-1, kpids=-1), lay)


def _counters(a: Asm, m: WakeupMaps) -> None:
    """r9 = this CPU's counters (or out)."""
    a.st("w", R10, FP_KEY, 0).mov(R2, R10).add(R2, FP_KEY).ld_map_fd(R1, m.counters)
    a.call("map_lookup_elem").jmp("jeq", R0, 0, "out").mov(R9, R0)


def _inc(a: Asm, name: str) -> None:
    off = COUNTERS.index(name) * 8
    a.ldx("dw", R1, R9, off).add(R1, 1).stx("dw", R9, off, R1)


def _slot_of(a: Asm, m: WakeupMaps) -> None:
    """FP_SLOT = the slot of the pid at FP_PID (or out)."""
    a.mov(R2, R10).add(R2, FP_PID).ld_map_fd(R1, m.pids).call("map_lookup_elem").jmp("jeq", R0, 0, "out")
    a.ldx("w", R1, R0, 0).stx("w", R10, FP_SLOT, R1)


def _pending(a: Asm, m: WakeupMaps) -> None:
    """r0 = the pending element of FP_SLOT (or out)."""
    a.mov(R2, R10).add(R2, FP_SLOT).ld_map_fd(R1, m.pending).call("map_lookup_elem").jmp("jeq", R0, 0, "out")


def hrtimer_start(m: WakeupMaps, fmt: EventFormat, wakeup_fn: int) -> list[Insn]:
    a = Asm()
    a.mov(R6, R1)
    if wakeup_fn:  # first: most timers started on the machine are not sleepers, and this is cheapest
        a.ldx("dw", R1, R6, fmt.field("function").offset).ld_imm64(R2, wakeup_fn).jmp("jne", R1, R2, "out")
    a.call("get_current_pid_tgid").stx("w", R10, FP_PID, R0)  # low half: the thread id
    _slot_of(a, m)
    _counters(a, m)
    _inc(a, "starts")
    _pending(a, m)
    a.ldx("dw", R1, R0, 8).jmp("jeq", R1, 0, "clean").st("dw", R0, 8, 0)
    _inc(a, "no_switch_in")  # the last expiry never switched the probe in: it was still running
    a.label("clean")
    a.ldx("dw", R1, R6, fmt.field("hrtimer").offset).stx("dw", R10, FP_KEY, R1)
    a.ldx("w", R1, R10, FP_SLOT).stx("dw", R10, FP_VAL, R1)
    a.ldx("dw", R1, R6, fmt.field("softexpires").offset).stx("dw", R10, FP_VAL + 8, R1)
    a.ld_map_fd(R1, m.timers).mov(R2, R10).add(R2, FP_KEY).mov(R3, R10).add(R3, FP_VAL).mov(R4, 0)
    a.call("map_update_elem").jmp("jeq", R0, 0, "out")
    _inc(a, "timers_full")
    a.label("out").mov(R0, 0).exit()
    return a.assemble()


def hrtimer_expire(m: WakeupMaps, fmt: EventFormat, wakeup_fn: int = 0) -> list[Insn]:
    a = Asm()
    a.mov(R6, R1)
    if wakeup_fn:  # only sleepers can be a probe's timer: skip the hash lookup for the others
        a.ldx("dw", R1, R6, fmt.field("function").offset).ld_imm64(R2, wakeup_fn).jmp("jne", R1, R2, "out")
    a.call("ktime_get_ns").mov(R8, R0)
    a.ldx("dw", R1, R6, fmt.field("hrtimer").offset).stx("dw", R10, FP_KEY, R1)
    a.mov(R2, R10).add(R2, FP_KEY).ld_map_fd(R1, m.timers).call("map_lookup_elem").jmp("jeq", R0, 0, "out")
    a.ldx("dw", R1, R0, 0).stx("w", R10, FP_SLOT, R1).ldx("dw", R1, R0, 8).stx("dw", R10, FP_SOFT, R1)
    a.mov(R2, R10).add(R2, FP_KEY).ld_map_fd(R1, m.timers).call("map_delete_elem")
    _counters(a, m)
    _inc(a, "expiries")
    _pending(a, m)
    a.ldx("dw", R1, R10, FP_SOFT).stx("dw", R0, 0, R1).stx("dw", R0, 8, R8)
    a.label("out").mov(R0, 0).exit()
    return a.assemble()


def _clamp(a: Asm, reg, label: str) -> None:
    """reg = max(reg, 0) as a signed value (clocks of two CPUs; never expected)."""
    a.jmp("jsge", reg, 0, label).mov(reg, 0).label(label)


def sched_switch(m: WakeupMaps, lay: P.SeriesLayout, fmt: EventFormat, keep: int) -> list[Insn]:
    b = _builder(m, lay)
    a = b.a
    a.mov(R6, R1).call("ktime_get_ns").mov(R8, R0)
    a.ldx("w", R1, R6, fmt.field("next_pid").offset).stx("w", R10, FP_PID, R1)
    _slot_of(a, m)
    _counters(a, m)
    _pending(a, m)
    a.mov(R6, R0).ldx("dw", R1, R6, 8).jmp("jne", R1, 0, "timed")
    _inc(a, "untimed_switch_in")  # woken by something else (the start message, a signal), or preempted
    a.ja("out")
    a.label("timed").st("dw", R6, 8, 0).stx("dw", R10, FP_EXP, R1)
    a.ldx("dw", R2, R6, 0).stx("dw", R10, FP_SOFT, R2)
    a.st("dw", R10, P.FP_GEN, 0)
    a.mov(R7, R1).sub(R7, R2)
    _clamp(a, R7, "irq_ok")
    b.record(0, None, R7)
    a.mov(R7, R8).ldx("dw", R1, R10, FP_EXP).sub(R7, R1)
    _clamp(a, R7, "thread_ok")
    b.record(1, None, R7)
    a.mov(R7, R8).ldx("dw", R1, R10, FP_SOFT).sub(R7, R1)
    _clamp(a, R7, "kernel_ok")
    b.record(2, None, R7)
    _inc(a, "timed")
    if keep:
        # each[slot * keep + seq % keep] = (deadline, expiry, switch-in); seq in pending word 2
        a.ldx("dw", R1, R6, 16).mov(R2, R1).add(R2, 1).stx("dw", R6, 16, R2)
        a.alu("mod", R1, keep).ldx("w", R2, R10, FP_SLOT).alu("mul", R2, keep).add(R1, R2).stx("w", R10, FP_KEY, R1)
        a.mov(R2, R10).add(R2, FP_KEY).ld_map_fd(R1, m.each).call("map_lookup_elem").jmp("jeq", R0, 0, "out")
        a.ldx("dw", R1, R10, FP_SOFT).stx("dw", R0, 0, R1).ldx("dw", R1, R10, FP_EXP).stx("dw", R0, 8, R1)
        a.stx("dw", R0, 16, R8)
    a.label("out").mov(R0, 0).exit()
    return a.assemble()


def hrtimer_wakeup_address(path: str = "/proc/kallsyms") -> int:
    """The address of hrtimer_wakeup, 0 when hidden (kptr_restrict) or absent: then no filter."""
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == "hrtimer_wakeup":
                    return int(parts[0], 16)
    except OSError:
        return 0
    return 0


@dataclass(frozen=True, slots=True)
class ProgramCost:
    """bpf stats of one program: runs and ns spent in it (run_time_ns needs stats enabled)."""

    name: str
    run_cnt: int
    run_time_ns: int
    recursion_misses: int = 0  # runs the kernel skipped: another BPF program was running on that CPU


@dataclass(frozen=True, eq=False, slots=True)
class WakeupCounts:
    """What the maps held at the end: per-CPU histograms per part, counters, per-probe records."""

    parts: dict[str, dict[int, Histogram]]  # part -> cpu -> histogram (CPU of the switch-in)
    counters: dict[str, dict[int, int]]  # counter -> cpu -> count
    each: dict[int, np.ndarray]  # pid -> (n, 3) int64 deadline, expiry, switch-in (keep > 0)
    misses: int = 0  # program runs the kernel skipped (another BPF program was running on that CPU)


@dataclass
class WakeupHist:
    """Loaded maps and attached programs; a context manager (everything closed on exit)."""

    layout: HistogramLayout = HistogramLayout()
    keep: int = 0
    probes: int = 64  # with keep: how many probes the ring has room for
    tracefs: Path | None = None
    maps: dict[str, Map] = field(default_factory=dict)
    prog_fds: list[int] = field(default_factory=list)
    perf_fds: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    slots: dict[int, int] = field(default_factory=dict)  # pid -> slot

    def __enter__(self) -> WakeupHist:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        with tracefs_for_setup(self.tracefs) as tfs:
            formats = {q: load_format(tfs.root / "events", q) for q in EVENTS}
        lay = series_layout(self.layout)
        if lay.words * 8 > MAX_VALUE_BYTES or self.layout.bucket_ns >= 1 << 31:
            raise syscall.BpfUnavailable(f"BPF wake-up timing: {lay.nbuckets} histogram buckets are more than one "
                                         f"map element holds ({(MAX_VALUE_BYTES // 8) - P.HDR - P.LOG2 - 1})")
        mk = Map.create
        m = self.maps
        m["pids"] = mk("irqlab_wk_pid", HASH, 4, 4, MAX_PROBES)
        m["timers"] = mk("irqlab_wk_tmr", HASH, 8, 16, MAX_TIMERS)
        m["pending"] = mk("irqlab_wk_pend", ARRAY, 4, 24, MAX_PROBES)
        m["hist"] = mk("irqlab_wk_hist", PERCPU_ARRAY, 4, lay.words * 8, len(PARTS))
        m["counters"] = mk("irqlab_wk_cnt", PERCPU_ARRAY, 4, 8 * len(COUNTERS), 1)
        if self.keep:
            m["each"] = mk("irqlab_wk_each", ARRAY, 4, 24, self.probes * self.keep)
        fds = WakeupMaps(m["pids"].fd, m["timers"].fd, m["pending"].fd, m["hist"].fd, m["counters"].fd,
                         m["each"].fd if self.keep else -1)
        fn = hrtimer_wakeup_address()
        specs = [("irqlab_wk_start", "timer:hrtimer_start", hrtimer_start(fds, formats["timer:hrtimer_start"], fn)),
                 ("irqlab_wk_expire", "timer:hrtimer_expire_entry", hrtimer_expire(fds, formats["timer:hrtimer_expire_entry"], fn)),
                 ("irqlab_wk_switch", "sched:sched_switch", sched_switch(fds, lay, formats["sched:sched_switch"], self.keep))]
        for name, _event, insns in specs:  # load all first: a refusal attaches nothing
            self.prog_fds.append(syscall.prog_load(encode(insns), name))
            self.names.append(name)
        # Consumers first: an expiry recorded before the switch program runs is simply pending.
        for (_name, event, _insns), fd in reversed(list(zip(specs, self.prog_fds))):
            pfd = syscall.perf_tracepoint(formats[event].id)
            self.perf_fds.append(pfd)
            syscall.attach(pfd, fd)

    def add_probes(self, pids: dict[int, int]) -> None:
        """Time these probe threads (cpu -> pid); before their first sleep."""
        room = self.probes if self.keep else MAX_PROBES
        if len(self.slots) + len(pids) > room:
            raise IrqlabError(f"BPF wake-up timing: room for {room} probes, asked {len(self.slots) + len(pids)}")
        for pid in pids.values():
            slot = len(self.slots)
            self.slots[pid] = slot
            self.maps["pids"].update_bytes(pid, slot.to_bytes(4, "little"))

    def read(self) -> WakeupCounts:
        lay = series_layout(self.layout)
        parts = {name: _hists(self.maps["hist"].lookup_u64(i), lay, self.layout, None) for i, name in enumerate(PARTS)}
        words = self.maps["counters"].lookup_u64(0).astype(np.int64)
        counters = {name: {c: int(n) for c, n in enumerate(words[:, i]) if n} for i, name in enumerate(COUNTERS)}
        each = {}
        for pid, slot in self.slots.items():
            seq = int(self.maps["pending"].lookup_u64(slot)[2])
            n = min(seq, self.keep)
            rows = [self.maps["each"].lookup_u64(slot * self.keep + (i % self.keep)) for i in range(seq - n, seq)]
            each[pid] = np.array(rows, dtype=np.int64).reshape(-1, 3)
        return WakeupCounts(parts, counters, each, sum(c.recursion_misses for c in self.costs()))

    def costs(self) -> list[ProgramCost]:
        out = []
        for name, fd in zip(self.names, self.prog_fds):
            info = syscall.fdinfo(fd)
            out.append(ProgramCost(name, int(info.get("run_cnt", "0")), int(info.get("run_time_ns", "0")),
                                   int(info.get("recursion_misses", "0"))))
        return out

    def prog_ids(self) -> list[int]:
        return [syscall.prog_info(fd)[0] for fd in self.prog_fds]

    def close(self) -> None:
        """Detach (perf fds), then free programs and maps (their last fds)."""
        failed = syscall.close_all(self.perf_fds, self.prog_fds, self.maps)
        self.perf_fds, self.prog_fds, self.maps = [], [], {}
        if failed:
            raise IrqlabError(f"BPF wake-up timing: closing failed ({'; '.join(failed)})")


def settle(seconds: float = 0.002) -> None:
    """Let a program that started before detach finish writing (read() after the run)."""
    time.sleep(seconds)
