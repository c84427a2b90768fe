"""The tracepoint programs: per-CPU histograms of handler durations and raise->entry latency.

Everything is assembled here from field offsets read out of tracefs `format` files. Two maps
hold the data (both per-CPU, so programs never need atomics: a tracepoint program cannot
nest on its CPU, trace_call_bpf's bpf_prog_active guard skips and counts a nested run):

- `irqlab_state` (1 element): entry timestamps per softirq vector / IRQ / system vector / tasklet /
  BH work item,
  the pending-raise timestamp per vector, hardirq nesting depth and accumulated hardirq time
  (for NET durations), the softirq pass bookkeeping, and monotonic counters (events, passes,
  restarts, truncated runs) that userspace differences between reads.
- `irqlab_hist` (2 generations x SeriesLayout.series elements): one series per histogram: count,
  sum, max, ~min, runs/ns by context, the log2 buckets, the linear buckets and overflow.
  Programs write the generation named by `irqlab_ctl`; userspace flips it, then reads and
  zeroes the other one, so each run lands in exactly one interval.

The semantics mirror analysis/trace_aggregate.py (durations exit - entry on one CPU; latency from the
first raise of a clear pending bit to that vector's next entry; ksoftirqd / irq_exit / other
context per handle_softirqs() pass) with the differences listed in backend.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from irqlab.bpf.asm import R0, R1, R2, R3, R6, R7, R8, R9, R10, Asm, Reg
from irqlab.model.events import VECTOR_BY_ID
from irqlab.model.vectors import NR_SOFTIRQS, SOFTIRQ_NR
from irqlab.tracing.decode import BH_WORK
from irqlab.tracing.formats import EventFormat

MAX_IRQ = 1024  # the most IRQ slots a layout may have (state element: 2 words per IRQ)
# A work item's start and end (kernel/workqueue.c process_one_work()), kept only for BH pools'
# work: what runs inside a TASKLET or HI softirq (bh_worker() from tasklet_action() and
# tasklet_hi_action(), kernel/softirq.c v6.18).
BH_WORK_EVENTS: tuple[str, ...] = tuple(BH_WORK)
BH_VECTORS: tuple[int, ...] = (SOFTIRQ_NR["HI"], SOFTIRQ_NR["TASKLET"])
# irq_vectors:<name>_entry/_exit pairs, in slot order: the VECTOR_* ids of model/events.
VECTOR_EVENTS: tuple[str, ...] = VECTOR_BY_ID

# Series header words; then LOG2 (64 words), LINEAR (nbuckets), OVERFLOW (1). H_RUNS and H_NS
# hold one word per context of model.trace.CONTEXTS, in its order.
H_COUNT, H_SUM, H_MAX, H_INVMIN, H_RUNS, H_NS, H_KEY = 0, 1, 2, 3, 4, 7, 10
HDR = 12
LOG2 = 64
# Monotonic counters in the state element (word index after the state slots).
MISC = ("events", "passes", "restarts", "trunc_softirq", "trunc_hardirq", "unraised", "dropped_irq",
        "trunc_tasklet", *(f"entries{v}" for v in range(NR_SOFTIRQS)), "trunc_bhwork")


@dataclass(frozen=True, slots=True)
class SeriesLayout:
    """Word positions of every series and state slot, shared by the programs and the reader."""

    bucket_ns: int = 1_000
    nbuckets: int = 1_000
    max_irq: int = 256  # IRQ numbers >= this are counted (dropped_irq), not histogrammed

    # series numbers
    soft_gross: int = 0
    soft_net: int = NR_SOFTIRQS
    soft_lat: int = 2 * NR_SOFTIRQS
    tasklet: int = 3 * NR_SOFTIRQS  # gross, net
    vec_base: int = 3 * NR_SOFTIRQS + 2  # 2 per vector event: gross, net
    irq_base: int = 3 * NR_SOFTIRQS + 2 + 2 * len(VECTOR_EVENTS)  # gross max_irq, then net max_irq

    @property
    def bhwork(self) -> int:
        """BH workqueue work: gross, net (after the IRQ series, so the others keep their numbers)."""
        return self.irq_base + 2 * self.max_irq

    @property
    def series(self) -> int:
        return self.bhwork + 2

    @property
    def irq_net(self) -> int:
        return self.irq_base + self.max_irq

    @property
    def state_words(self) -> int:
        return S_IRQ_TS + 2 * self.max_irq

    @property
    def irq_inner(self) -> int:
        """State word of IRQ 0's nested-time snapshot (IRQ entry times start at S_IRQ_TS)."""
        return S_IRQ_TS + self.max_irq

    @property
    def words(self) -> int:
        return HDR + LOG2 + self.nbuckets + 1

    @property
    def linear_word(self) -> int:
        return HDR + LOG2

    @property
    def overflow_word(self) -> int:
        return HDR + LOG2 + self.nbuckets


# State element word positions.
S_SOFT_TS, S_SOFT_HARD, S_RAISE = 0, 10, 20
S_VEC_TS, S_VEC_INNER = 30, 30 + len(VECTOR_EVENTS)
_S = 30 + 2 * len(VECTOR_EVENTS)
S_DEPTH, S_HARD_IN, S_HARD_NS, S_INNER_NS, S_LAST_HARD, S_PASS_PID, S_CTX, S_PREV_VEC = range(_S, _S + 8)
S_TASKLET_TS, S_TASKLET_HARD = _S + 8, _S + 9
S_MISC = _S + 10
S_BHWORK_TS, S_BHWORK_HARD = S_MISC + len(MISC), S_MISC + len(MISC) + 1
S_IRQ_TS = S_MISC + len(MISC) + 2  # then max_irq entry times, then max_irq nested-time snapshots

# Stack slots (offsets from r10).
FP_KEY0, FP_HKEY, FP_GEN, FP_PID, FP_SAVE = -8, -4, -16, -24, -32


@dataclass(frozen=True, slots=True)
class Maps:
    """Fds the programs reference: per-CPU state, per-CPU histograms, control array, ksoftirqd pids."""

    state: int
    hist: int
    ctl: int
    kpids: int


class _Builder:
    """Asm plus the macros every program shares (registers: r9 state, r8 now, r7 key, r6 value)."""

    def __init__(self, maps: Maps, layout: SeriesLayout) -> None:
        self.a = Asm()
        self.m = maps
        self.lay = layout
        self._n = 0

    def fresh(self, stem: str) -> str:
        self._n += 1
        return f"{stem}{self._n}"

    def prologue(self, field_off: int | None, field_size: int = 4, count: bool = True) -> None:
        """r7 = the event field, r8 = now, r9 = this CPU's state; gen*series on the stack; events += 1 if count."""
        a = self.a
        if field_off is not None:
            a.ldx("dw" if field_size == 8 else "w", R7, R1, field_off)
        a.call("ktime_get_ns").mov(R8, R0)
        a.st("w", R10, FP_KEY0, 0).mov(R2, R10).add(R2, FP_KEY0).ld_map_fd(R1, self.m.state)
        a.call("map_lookup_elem").jmp("jeq", R0, 0, "out").mov(R9, R0)
        a.ld_map_value(R1, self.m.ctl).ldx("w", R1, R1, 0).alu("and", R1, 1).alu("mul", R1, self.lay.series)
        a.stx("dw", R10, FP_GEN, R1)
        if count:
            self.misc_inc("events")

    def epilogue(self) -> list:
        self.a.label("out").mov(R0, 0).exit()
        return self.a.assemble()

    def s(self, word: int) -> int:
        return word * 8

    def misc_inc(self, name: str, by: Reg | None = None) -> None:
        off = self.s(S_MISC + MISC.index(name))
        self.a.ldx("dw", R1, R9, off).add(R1, by if by is not None else 1).stx("dw", R9, off, R1)

    def state_ptr(self, dst: Reg, index: Reg, bound: int, skip: str) -> None:
        """dst = r9 + index*8 once index < bound is proven (else goto skip)."""
        self.a.jmp("jge", index, bound, skip).mov(dst, index).lsh(dst, 3).add(dst, R9)

    def record(self, series: int, key: Reg | None, value: Reg, with_ctx: bool = False) -> None:
        """Add `value` (ns) to histogram series (+ key register when given) of this generation."""
        a, lay = self.a, self.lay
        done = self.fresh("rec_done")
        a.ldx("dw", R1, R10, FP_GEN).add(R1, series)
        if key is not None:
            a.add(R1, key)
        a.stx("w", R10, FP_HKEY, R1).mov(R2, R10).add(R2, FP_HKEY).ld_map_fd(R1, self.m.hist)
        a.call("map_lookup_elem").jmp("jeq", R0, 0, done)
        for word, op in ((H_COUNT, None), (H_SUM, value)):
            a.ldx("dw", R1, R0, word * 8).add(R1, op if op is not None else 1).stx("dw", R0, word * 8, R1)
        keep = self.fresh("max")
        a.ldx("dw", R1, R0, H_MAX * 8).jmp("jge", R1, value, keep).stx("dw", R0, H_MAX * 8, value).label(keep)
        keep = self.fresh("min")
        a.mov(R2, value).alu("xor", R2, -1).ldx("dw", R1, R0, H_INVMIN * 8).jmp("jge", R1, R2, keep)
        a.stx("dw", R0, H_INVMIN * 8, R2).label(keep)
        if with_ctx:
            a.ldx("dw", R1, R9, self.s(S_CTX)).alu("and", R1, 3)
            ok = self.fresh("ctx")
            a.jmp("jle", R1, 2, ok).mov(R1, 2).label(ok).lsh(R1, 3).mov(R3, R0).add(R3, R1)
            a.ldx("dw", R1, R3, H_RUNS * 8).add(R1, 1).stx("dw", R3, H_RUNS * 8, R1)
            a.ldx("dw", R1, R3, H_NS * 8).add(R1, value).stx("dw", R3, H_NS * 8, R1)
        # log2 bucket = bit length of value, by halving (no loop: the verifier needs none).
        a.mov(R1, value).mov(R2, 0)
        for shift in (32, 16, 8, 4, 2, 1):
            nxt = self.fresh("bit")
            a.mov(R3, R1).rsh(R3, shift).jmp("jeq", R3, 0, nxt).mov(R1, R3).add(R2, shift).label(nxt)
        a.add(R2, R1)
        ok = self.fresh("log")
        a.jmp("jle", R2, LOG2 - 1, ok).mov(R2, LOG2 - 1).label(ok)
        a.lsh(R2, 3).mov(R3, R0).add(R3, R2)
        a.ldx("dw", R1, R3, HDR * 8).add(R1, 1).stx("dw", R3, HDR * 8, R1)
        # linear bucket, or the overflow row
        over = self.fresh("over")
        a.mov(R1, value).alu("div", R1, lay.bucket_ns).jmp("jge", R1, lay.nbuckets, over)
        a.lsh(R1, 3).mov(R3, R0).add(R3, R1)
        a.ldx("dw", R1, R3, lay.linear_word * 8).add(R1, 1).stx("dw", R3, lay.linear_word * 8, R1).ja(done)
        a.label(over).ldx("dw", R1, R0, lay.overflow_word * 8).add(R1, 1).stx("dw", R0, lay.overflow_word * 8, R1)
        a.label(done)

    def set_key_word(self, series: int, key: Reg | None, value: Reg) -> None:
        """Header word H_KEY of a series = value (the x86 vector number, the tasklet function)."""
        a = self.a
        done = self.fresh("key")
        a.ldx("dw", R1, R10, FP_GEN).add(R1, series)
        if key is not None:
            a.add(R1, key)
        a.stx("w", R10, FP_HKEY, R1).mov(R2, R10).add(R2, FP_HKEY).ld_map_fd(R1, self.m.hist)
        a.call("map_lookup_elem").jmp("jeq", R0, 0, done).stx("dw", R0, H_KEY * 8, value).label(done)

    # hardirq nesting: depth, time of top-level handlers (for NET), time of nested ones
    def hard_enter(self) -> None:
        a = self.a
        skip = self.fresh("henter")
        a.ldx("dw", R1, R9, self.s(S_DEPTH)).add(R1, 1).stx("dw", R9, self.s(S_DEPTH), R1)
        a.jmp("jne", R1, 1, skip).stx("dw", R9, self.s(S_HARD_IN), R8).label(skip)

    def hard_exit(self) -> None:
        """depth -= 1 (never below 0); at depth 0 add this top-level run to S_HARD_NS."""
        a = self.a
        done = self.fresh("hexit")
        a.ldx("dw", R1, R9, self.s(S_DEPTH)).jmp("jeq", R1, 0, done).sub(R1, 1).stx("dw", R9, self.s(S_DEPTH), R1)
        a.jmp("jne", R1, 0, done)
        a.ldx("dw", R2, R9, self.s(S_HARD_IN)).mov(R1, R8).sub(R1, R2)
        a.ldx("dw", R2, R9, self.s(S_HARD_NS)).add(R2, R1).stx("dw", R9, self.s(S_HARD_NS), R2)
        a.st("dw", R9, self.s(S_LAST_HARD), 1)
        a.label(done)

    def pid(self) -> None:
        """FP_PID = current thread id + 1 (0 stays 'nobody')."""
        self.a.call("get_current_pid_tgid").alu("and", R0, 0x7FFFFFFF).add(R0, 1).stx("dw", R10, FP_PID, R0)

    def hard_slot(self, key: Reg | None) -> None:
        """r1 = the state words of IRQ `key` (bounds-checked, else goto out), or r9 for a vector slot."""
        if key is not None:
            self.state_ptr(R1, key, self.lay.max_irq, "out")
        else:
            self.a.mov(R1, R9)

    # the end of a timed run (softirq, hardirq, vector, tasklet; raise -> entry latency)
    def elapsed(self, base: Reg, word: int, miss: str) -> None:
        """r6 = now - the stamp at base+word, which is cleared; no stamp: count `miss` and goto out."""
        a = self.a
        stamped = self.fresh("stamped")
        a.ldx("dw", R2, base, self.s(word)).jmp("jne", R2, 0, stamped)
        self.misc_inc(miss)
        a.ja("out")
        a.label(stamped).st("dw", base, self.s(word), 0).mov(R6, R8).sub(R6, R2)

    def save_since(self, base: Reg, snap_word: int, total_word: int) -> None:
        """FP_SAVE = this CPU's total at total_word less the snapshot of it at base+snap_word."""
        self.a.ldx("dw", R2, base, self.s(snap_word)).ldx("dw", R3, R9, self.s(total_word)).sub(R3, R2).stx("dw", R10, FP_SAVE, R3)

    def record_net(self, series: int, key: Reg | None) -> None:
        """Record r6 less FP_SAVE (the time nested inside it) in series; nothing when that exceeds it."""
        self.a.ldx("dw", R1, R10, FP_SAVE).jmp("jgt", R1, R6, "out").sub(R6, R1)
        self.record(series, key, R6)


def softirq_entry(maps: Maps, lay: SeriesLayout, fmt: EventFormat) -> list:
    b = _Builder(maps, lay)
    a = b.a
    b.prologue(fmt.field("vec").offset)
    a.jmp("jge", R7, NR_SOFTIRQS, "out")
    a.mov(R1, R7).lsh(R1, 3).add(R1, R9)  # entries<v>
    a.ldx("dw", R2, R1, b.s(S_MISC + MISC.index("entries0"))).add(R2, 1).stx("dw", R1, b.s(S_MISC + MISC.index("entries0")), R2)
    # Pass bookkeeping: the same pass when this task's softirq_exit came last (only hardirqs
    # and raises inside them in between); else a new pass whose context is decided now.
    b.pid()
    a.ldx("dw", R1, R9, b.s(S_PASS_PID)).ldx("dw", R2, R10, FP_PID).jmp("jne", R1, R2, "new_pass")
    a.ldx("dw", R1, R9, b.s(S_PREV_VEC)).jmp("jlt", R1, R7, "ctx_done")  # ascending: same iteration
    b.misc_inc("restarts")
    a.ja("ctx_done")
    a.label("new_pass")
    b.misc_inc("passes")
    a.ldx("dw", R1, R10, FP_PID).sub(R1, 1).stx("w", R10, FP_SAVE, R1)
    a.mov(R2, R10).add(R2, FP_SAVE).ld_map_fd(R1, maps.kpids).call("map_lookup_elem")
    a.mov(R1, 0).jmp("jne", R0, 0, "ctx_set")
    a.ldx("dw", R2, R9, b.s(S_LAST_HARD)).mov(R1, 1).jmp("jne", R2, 0, "ctx_set").mov(R1, 2)
    a.label("ctx_set").stx("dw", R9, b.s(S_CTX), R1)
    a.label("ctx_done")
    a.st("dw", R9, b.s(S_PASS_PID), 0).stx("dw", R9, b.s(S_PREV_VEC), R7).st("dw", R9, b.s(S_LAST_HARD), 0)
    # Softirqs never run inside a traced hardirq (irq_exit_rcu() runs them after the exit
    # tracepoint, kernel/softirq.c v6.18), so the depth is 0 here; this heals a depth left
    # by an exit the kernel skipped (recursion miss) or an entry seen just before attach.
    a.st("dw", R9, b.s(S_DEPTH), 0)
    # entry timestamp and the hardirq time so far (for NET), per vector
    b.state_ptr(R1, R7, NR_SOFTIRQS, "out")
    a.stx("dw", R1, b.s(S_SOFT_TS), R8).ldx("dw", R2, R9, b.s(S_HARD_NS)).stx("dw", R1, b.s(S_SOFT_HARD), R2)
    # raise -> entry latency: the clock started at the first raise of a clear pending bit
    b.elapsed(R1, S_RAISE, "unraised")
    b.record(lay.soft_lat, R7, R6)
    return b.epilogue()


def softirq_exit(maps: Maps, lay: SeriesLayout, fmt: EventFormat) -> list:
    b = _Builder(maps, lay)
    a = b.a
    b.prologue(fmt.field("vec").offset)
    b.pid()
    a.ldx("dw", R1, R10, FP_PID).stx("dw", R9, b.s(S_PASS_PID), R1).st("dw", R9, b.s(S_LAST_HARD), 0).st("dw", R9, b.s(S_DEPTH), 0)
    b.state_ptr(R1, R7, NR_SOFTIRQS, "out")
    b.elapsed(R1, S_SOFT_TS, "trunc_softirq")
    b.save_since(R1, S_SOFT_HARD, S_HARD_NS)
    b.record(lay.soft_gross, R7, R6, with_ctx=True)
    b.record_net(lay.soft_net, R7)  # net = gross - hardirq time inside
    return b.epilogue()


def softirq_raise(maps: Maps, lay: SeriesLayout, fmt: EventFormat) -> list:
    b = _Builder(maps, lay)
    a = b.a
    b.prologue(fmt.field("vec").offset)
    # A raise outside a hardirq ends a pass (analysis.trace: only nested raises may sit inside one).
    a.ldx("dw", R1, R9, b.s(S_DEPTH)).jmp("jne", R1, 0, "nested")
    a.st("dw", R9, b.s(S_PASS_PID), 0).st("dw", R9, b.s(S_LAST_HARD), 0)
    a.label("nested")
    b.state_ptr(R1, R7, NR_SOFTIRQS, "out")
    # __raise_softirq_irqoff() only ORs the bit in: a later raise of a pending vector changes nothing.
    a.ldx("dw", R2, R1, b.s(S_RAISE)).jmp("jne", R2, 0, "out").stx("dw", R1, b.s(S_RAISE), R8)
    return b.epilogue()


def _hard_entry(b: _Builder, ts_word: int, inner_word: int, key: Reg | None) -> None:
    """Entry of an IRQ (key = r7) or a vector slot: nesting, entry time, nested-time snapshot."""
    a = b.a
    b.hard_enter()
    b.hard_slot(key)
    a.stx("dw", R1, b.s(ts_word), R8).ldx("dw", R2, R9, b.s(S_INNER_NS)).stx("dw", R1, b.s(inner_word), R2)


def _hard_exit(b: _Builder, ts_word: int, inner_word: int, key: Reg | None, gross: int, net: int) -> None:
    a = b.a
    b.hard_exit()
    b.hard_slot(key)
    b.elapsed(R1, ts_word, "trunc_hardirq")
    b.save_since(R1, inner_word, S_INNER_NS)
    # A handler that exits still nested adds its time to S_INNER_NS, for its parent's NET.
    a.ldx("dw", R1, R9, b.s(S_DEPTH)).jmp("jeq", R1, 0, "top")
    a.ldx("dw", R1, R9, b.s(S_INNER_NS)).add(R1, R6).stx("dw", R9, b.s(S_INNER_NS), R1)
    a.label("top")
    b.record(gross, key, R6)
    b.record_net(net, key)


def irq_entry(maps: Maps, lay: SeriesLayout, fmt: EventFormat) -> list:
    b = _Builder(maps, lay)
    b.prologue(fmt.field("irq").offset)
    b.a.jmp("jlt", R7, lay.max_irq, "small")
    b.misc_inc("dropped_irq")
    b.hard_enter()
    b.a.ja("out").label("small")
    _hard_entry(b, S_IRQ_TS, lay.irq_inner, R7)
    return b.epilogue()


def irq_exit(maps: Maps, lay: SeriesLayout, fmt: EventFormat) -> list:
    b = _Builder(maps, lay)
    b.prologue(fmt.field("irq").offset)
    b.a.jmp("jlt", R7, lay.max_irq, "small")
    b.hard_exit()
    b.a.ja("out").label("small")
    _hard_exit(b, S_IRQ_TS, lay.irq_inner, R7, lay.irq_base, lay.irq_net)
    return b.epilogue()


def vector_entry(maps: Maps, lay: SeriesLayout, fmt: EventFormat, slot: int) -> list:
    b = _Builder(maps, lay)
    b.prologue(fmt.field("vector").offset)
    _hard_entry(b, S_VEC_TS + slot, S_VEC_INNER + slot, None)
    b.set_key_word(lay.vec_base + 2 * slot, None, R7)
    return b.epilogue()


def vector_exit(maps: Maps, lay: SeriesLayout, fmt: EventFormat, slot: int) -> list:
    b = _Builder(maps, lay)
    b.prologue(None)
    _hard_exit(b, S_VEC_TS + slot, S_VEC_INNER + slot, None, lay.vec_base + 2 * slot, lay.vec_base + 2 * slot + 1)
    return b.epilogue()


def tasklet_entry(maps: Maps, lay: SeriesLayout, fmt: EventFormat) -> list:
    b = _Builder(maps, lay)
    f = fmt.field("func")
    b.prologue(f.offset, f.size)
    b.a.stx("dw", R9, b.s(S_TASKLET_TS), R8).ldx("dw", R2, R9, b.s(S_HARD_NS)).stx("dw", R9, b.s(S_TASKLET_HARD), R2)
    b.set_key_word(lay.tasklet, None, R7)
    return b.epilogue()


def tasklet_exit(maps: Maps, lay: SeriesLayout, fmt: EventFormat) -> list:
    b = _Builder(maps, lay)
    b.prologue(None)
    b.elapsed(R9, S_TASKLET_TS, "trunc_tasklet")
    b.save_since(R9, S_TASKLET_HARD, S_HARD_NS)
    b.record(lay.tasklet, None, R6)
    b.record_net(lay.tasklet + 1, None)
    return b.epilogue()


def _in_bh_softirq(b: _Builder) -> None:
    """Goto out unless this CPU is inside a TASKLET or HI softirq run; else count the event.

    That tells a BH pool's work from a kworker's, as the tracefs backend's `common_flags & 16`
    filter does (docs/trace.md). A tracepoint program cannot read common_flags itself: the verifier
    refuses context reads below offset 8 ("invalid bpf_context access off=2 size=1",
    kernel/trace/bpf_trace.c tp_prog_is_valid_access()). So the test is the programs' own
    softirq entry stamps (softirq_entry() sets, softirq_exit() clears them).
    """
    a = b.a
    hi, tasklet = BH_VECTORS
    a.ldx("dw", R2, R9, b.s(S_SOFT_TS + hi)).ldx("dw", R3, R9, b.s(S_SOFT_TS + tasklet)).alu("or", R2, R3)
    a.jmp("jeq", R2, 0, "out")
    b.misc_inc("events")


def bh_work_entry(maps: Maps, lay: SeriesLayout, fmt: EventFormat) -> list:
    """workqueue_execute_start of a BH pool's work: stamped and keyed like a tasklet_entry."""
    b = _Builder(maps, lay)
    f = fmt.field("function")
    b.prologue(f.offset, f.size, count=False)
    _in_bh_softirq(b)
    b.a.stx("dw", R9, b.s(S_BHWORK_TS), R8).ldx("dw", R2, R9, b.s(S_HARD_NS)).stx("dw", R9, b.s(S_BHWORK_HARD), R2)
    b.set_key_word(lay.bhwork, None, R7)
    return b.epilogue()


def bh_work_exit(maps: Maps, lay: SeriesLayout, fmt: EventFormat) -> list:
    b = _Builder(maps, lay)
    b.prologue(None, count=False)
    _in_bh_softirq(b)
    b.elapsed(R9, S_BHWORK_TS, "trunc_bhwork")
    b.save_since(R9, S_BHWORK_HARD, S_HARD_NS)
    b.record(lay.bhwork, None, R6)
    b.record_net(lay.bhwork + 1, None)
    return b.epilogue()


def sched_switch(maps: Maps, lay: SeriesLayout, fmt: EventFormat) -> list:
    """A context switch ends a softirq pass and hides an earlier hardirq exit (as analysis.trace)."""
    b = _Builder(maps, lay)
    b.prologue(None)
    b.a.st("dw", R9, b.s(S_PASS_PID), 0).st("dw", R9, b.s(S_LAST_HARD), 0).st("dw", R9, b.s(S_DEPTH), 0)
    return b.epilogue()


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    """One program to load: its name (<= 15 chars), the tracepoint it attaches to, its code."""

    name: str
    event: str  # "irq:softirq_entry"
    insns: list


def build_all(maps: Maps, lay: SeriesLayout, formats: dict[str, EventFormat]) -> list[ProgramSpec]:
    """Every program whose tracepoint exists here (formats: qualified name -> EventFormat)."""
    out = []
    fixed = [("irq:softirq_entry", "irqlab_si_in", softirq_entry), ("irq:softirq_exit", "irqlab_si_out", softirq_exit),
             ("irq:softirq_raise", "irqlab_si_raise", softirq_raise), ("irq:irq_handler_entry", "irqlab_hi_in", irq_entry),
             ("irq:irq_handler_exit", "irqlab_hi_out", irq_exit), ("irq:tasklet_entry", "irqlab_tl_in", tasklet_entry),
             ("irq:tasklet_exit", "irqlab_tl_out", tasklet_exit),
             ("sched:sched_switch", "irqlab_switch", sched_switch)]
    # BH workqueue work (Linux >= 6.9): both events or neither (an entry never ended would leave a stamp)
    if all(q in formats for q in BH_WORK_EVENTS):
        fixed += [(BH_WORK_EVENTS[0], "irqlab_bh_in", bh_work_entry), (BH_WORK_EVENTS[1], "irqlab_bh_out", bh_work_exit)]
    for event, name, fn in fixed:
        if event in formats:
            out.append(ProgramSpec(name, event, fn(maps, lay, formats[event])))
    for slot, vec in enumerate(VECTOR_EVENTS):
        entry, exit_ = f"irq_vectors:{vec}_entry", f"irq_vectors:{vec}_exit"
        if entry in formats and exit_ in formats:
            out.append(ProgramSpec(f"irqlab_v{slot}_in", entry, vector_entry(maps, lay, formats[entry], slot)))
            out.append(ProgramSpec(f"irqlab_v{slot}_out", exit_, vector_exit(maps, lay, formats[exit_], slot)))
    return out
