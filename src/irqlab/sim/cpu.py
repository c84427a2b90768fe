"""One CPU: the stack of execution contexts, the run queue, and time accounting.

Contexts nest as on the real machine: hardirq (interrupts off) > softirq > task. Each
context is a generator that yields the nanoseconds of CPU work it needs next (or BLOCK /
RESCHED for a task); the CPU runs the top of its stack, and a hardirq arriving mid-segment
preempts it, pushing a frame and remembering how much of the segment was left. Between
segments the generators do their side effects (raise a softirq, wake a task), which is
where the kernel code they mirror does them.

Scheduling (kernel/sched/core.c, __schedule()): a task switch happens only on return to
task level with need_resched set and the current task preemptible (no softirq count held:
local_bh_disable() adds to preempt_count, so ksoftirqd inside handle_softirqs() cannot be
preempted by another task; it stops at the need_resched check instead). RT tasks (FIFO/RR)
run by priority; SCHED_OTHER by a CFS fair-share model (kernel/sched/fair.c up to v6.5:
vruntime weighted by nice, sleeper placement at min_vruntime - sched_latency/2, wakeup
preemption past wakeup_granularity, tick preemption after the ideal slice). v6.6+ EEVDF
picks differently at fine grain but shares CPU the same way, which is what this model is for.
"""

from __future__ import annotations

import heapq
from typing import Any, Protocol

from irqlab.sim.engine import Engine
from irqlab.sim.scenario import Scenario
from irqlab.sim.state import (  # (ACCOUNTS .. nice_weight: here too, where the contexts are run)
    ACCOUNTS,
    BLOCK,
    IDLE,
    IRQ,
    NICE_0_WEIGHT,
    RESCHED,
    SOFTIRQ,
    SYSTEM,
    USER,
    Frame,
    SoftirqState,
    Softnet,
    Task,
    nice_weight,
)

__all__ = ["ACCOUNTS", "BLOCK", "CPU", "IDLE", "IRQ", "RESCHED", "SOFTIRQ", "SYSTEM", "USER", "CpuHost", "Frame",
           "Task", "nice_weight"]

RR_TIMESLICE_NS = 100_000_000  # include/linux/sched/rt.h RR_TIMESLICE (100 ms)


class CpuHost(Protocol):
    """What a CPU asks of the machine it is part of (sim/machine.py provides it)."""

    sc: Scenario
    engine: Engine
    seq: int  # hrtimer sequence numbers, machine-wide so timer order is the order they were set
    cur_cpu: CPU | None  # the CPU whose step is running (a wake-up IPI from it nests another's)
    loc: Any  # the LOC line: hrtimer expiry is delivered as its interrupt
    sched_latency_ns: int
    min_gran_ns: int
    wakeup_gran_ns: int

    def hardirq_enter(self, cpu: CPU, line: Any) -> int: ...

    def hardirq_exit(self, cpu: CPU, line: Any) -> None: ...

    def irq_exit(self, cpu: CPU) -> None: ...

    def trace_switch(self, cpu: CPU, prev: Task | None, nxt: Task | None) -> None: ...


class CPU:
    """Execution state of one CPU."""

    def __init__(self, machine: CpuHost, cpu: int) -> None:
        self.m = machine
        self.id = cpu
        self.stack: list[Frame] = []
        self.curr: Task | None = None
        self.rt_rq: list[Task] = []
        self.cfs_rq: list[Task] = []
        self.min_vruntime = 0.0
        self.need_resched = False
        self.irr: list[Any] = []  # interrupts pending while interrupts are off (one per line)
        self.running: Any = None  # the Frame or Task whose segment is on the CPU
        self.seg_start = 0
        self.version = 0
        self.times = dict.fromkeys(ACCOUNTS, 0)
        self.timers: list[tuple[int, int, Any, Any]] = []  # hrtimers: (expiry, seq, fn, arg)
        self._advancing = False
        # The irq_exit() softirq frame, reused: invoke_softirq() runs only when !in_interrupt(),
        # so at most one is on the stack.
        self.softirq_frame = Frame(SOFTIRQ, None)
        # This CPU's share of the mechanisms' per-CPU state (set by Machine): softirq.py's
        # pending mask and counters, napi.py's softnet_data.
        self.sirq: SoftirqState = None  # type: ignore[assignment]
        self.softnet: Softnet = None  # type: ignore[assignment]
        # PREEMPT_RT: a task holding the BH lock (serving softirqs) stays preemptible; the
        # softirq count is per task there, not part of preempt_count (kernel/softirq.c).
        self.rt = machine.sc.preempt_rt
        self._outermost = False  # advancing from the event loop, not inside another CPU's step

    # --- context -------------------------------------------------------------------------

    def in_interrupt(self) -> bool:
        """in_interrupt(): in a hardirq or softirq, or with bottom halves disabled."""
        return bool(self.stack) or (self.curr is not None and self.curr.bh > 0)

    def irqs_off(self) -> bool:
        return bool(self.stack) and self.stack[-1].kind == IRQ

    def in_step(self) -> bool:
        """True while this CPU's generators are being run (advance() is on the Python stack)."""
        return self._advancing

    def is_quiet(self) -> bool:
        """Idle with nothing to do: no context, no task current or runnable, nothing pending, not mid-step."""
        return not (self.stack or self.curr is not None or self.need_resched or self.irr or self._advancing
                    or self.rt_rq or self.cfs_rq)

    # --- running segments ----------------------------------------------------------------

    def _stop(self) -> None:
        """Take the running segment off the CPU, charging the time it ran."""
        r = self.running
        now = self.m.engine.now
        if r is None:
            self.times[IDLE] += now - self.seg_start
        else:
            ran = now - self.seg_start
            r.remaining -= ran
            self._charge(r, ran)
        self.running = None
        self.seg_start = now
        self.version += 1

    def _charge(self, r: Any, ran: int) -> None:
        self.times[r.acct] += ran
        if isinstance(r, Task):
            r.run_ns += ran
            if not r.rt:
                r.vruntime += ran * NICE_0_WEIGHT / r.weight

    def _done(self, version: int) -> None:
        if version != self.version:
            return  # preempted since: a stale completion
        self._stop()
        self.advance()

    def sync(self) -> None:
        """Charge the running segment's time up to now (for a sample) and let it go on."""
        if self._advancing:
            return
        r = self.running
        self._stop()
        if r is not None:
            self.advance()

    def advance(self) -> None:
        """Run generators until one yields CPU work, then schedule its completion."""
        if self._advancing:
            return
        self._advancing = True
        m = self.m
        outer, m.cur_cpu = m.cur_cpu, self
        self._outermost = outer is None and m.engine.inline
        try:
            self._advance_loop(m)
        finally:
            self._advancing = False
            m.cur_cpu = outer

    def _advance_loop(self, m: CpuHost) -> None:
        engine = m.engine
        heap = engine._heap
        times, stack, irr = self.times, self.stack, self.irr  # lists mutated in place, never rebound
        outermost = self._outermost
        while True:
            if stack:
                r = stack[-1]
                if irr and r.kind != IRQ:
                    self._deliver_pending()  # interrupts re-enabled: the pending one fires
                    continue
            else:
                if self.need_resched and (self.curr is None or self.curr.bh == 0 or self.rt):
                    self.schedule()  # preempt_schedule on return to a preemptible task
                if irr:
                    self._deliver_pending()
                    continue
                r = self.curr
                if r is None:
                    return  # idle: charged as idle by the next _stop()
            ran = r.remaining
            if ran:
                end = engine.now + ran
                if outermost and end < engine.until and (not heap or heap[0][0] > end):
                    # Nothing can happen before this segment ends (engine.quiet_until(), inlined):
                    # finish it here instead of through the heap, exactly as _done() would. Not
                    # when nested in another CPU's step (a wake-up IPI): that CPU is mid-instant.
                    engine.now = end
                    r.remaining = 0
                    times[r.acct] += ran
                    if r.__class__ is Task:
                        r.run_ns += ran
                        if not r.rt:
                            r.vruntime += ran * NICE_0_WEIGHT / r.weight
                    self.seg_start = end  # (no version bump: no completion event was queued)
                    continue
                self.running = r
                self.seg_start = engine.now
                engine.at(end, self._done, self.version)
                return
            gen = r.gen
            if gen is None:  # a hardirq frame: its handler's work is done
                m.hardirq_exit(self, r.line)
                stack.pop()
                m.irq_exit(self)  # (back at task level, the loop's first check is preempt_schedule)
                continue
            cmd = next(gen, None)  # None: the body returned (no Python-level StopIteration)
            if cmd is None:
                if r.__class__ is Task:
                    self._exit_task(r)
                else:
                    stack.pop()  # an irq_exit() softirq run ended
                continue
            if cmd.__class__ is int:
                r.remaining = cmd
            elif cmd == BLOCK:
                r.running = False
                r.remaining = None
                self.schedule()
            elif cmd == RESCHED:
                if self.need_resched:
                    self.schedule()

    def work_inline(self, ns: int) -> bool:
        """Do ns of work for the running context at once, when nothing can happen meanwhile.

        The same condition and accounting as the segment fast path of _advance_loop(); a
        generator that calls this instead of yielding its cost skips a suspend/resume of its
        whole generator chain. False: the caller must yield the cost as usual.
        """
        engine = self.m.engine
        end = engine.now + ns
        if self.irr or not self._outermost or not engine.quiet_until(end):
            return False  # something may happen meanwhile, or an interrupt waits to be taken
        if self.stack:
            r = self.stack[-1]
        else:
            r = self.curr
            if self.need_resched and (r.bh == 0 or self.rt):
                return False  # the loop would switch tasks before this work
        engine.now = end
        self.times[r.acct] += ns
        if r.__class__ is Task:
            r.run_ns += ns
            if not r.rt:
                r.vruntime += ns * NICE_0_WEIGHT / r.weight
        self.seg_start = end
        return True

    def _exit_task(self, t: Task) -> None:
        """A task body that returned: the task exits."""
        t.running = False
        self.curr = None
        self.schedule()

    # --- interrupts ----------------------------------------------------------------------

    def deliver(self, line: Any) -> None:
        """A hardware interrupt for this CPU: run it now, or leave it pending if irqs are off."""
        stack = self.stack
        if (stack and stack[-1].kind == IRQ) or self._advancing:  # irqs_off(), or mid-step
            if line not in self.irr:  # the APIC's IRR holds one pending bit per vector
                self.irr.append(line)
            return
        if self.running is None:  # _stop() of an idle CPU
            now = self.m.engine.now
            self.times[IDLE] += now - self.seg_start
            self.seg_start = now
            self.version += 1
        else:
            self._stop()
        frame = line.frames[self.id]  # _push_irq(), inlined
        stack.append(frame)
        frame.remaining = self.m.hardirq_enter(self, line)
        self.advance()

    def _deliver_pending(self) -> None:
        if self.irr and not self.irqs_off():
            self._push_irq(self.irr.pop(0))

    def _push_irq(self, line: Any) -> None:
        """Enter a hardirq: a frame whose only work is the handler's cost (no generator).

        One frame object per line and CPU, reused: with interrupts off in the handler, a line
        cannot be on one CPU's stack twice.
        """
        frame = line.frames[self.id]
        self.stack.append(frame)
        frame.remaining = self.m.hardirq_enter(self, line)

    # --- hrtimers ------------------------------------------------------------------------

    def add_timer(self, expiry_ns: int, fn: Any, arg: Any = None) -> None:
        self.m.seq += 1
        heapq.heappush(self.timers, (expiry_ns, self.m.seq, fn, arg))
        self.m.engine.at(expiry_ns, self._timer_fire, None, 0)

    def _timer_fire(self, _: Any) -> None:
        if self.timers and self.timers[0][0] <= self.m.engine.now:
            self.deliver(self.m.loc)

    def run_timers(self) -> None:
        """hrtimer_interrupt(): run every expired hrtimer (from the LOC handler)."""
        now = self.m.engine.now
        while self.timers and self.timers[0][0] <= now:
            _, _, fn, arg = heapq.heappop(self.timers)
            fn(self, arg)

    # --- the scheduler -------------------------------------------------------------------

    def schedule(self) -> None:
        """__schedule(): put the current task back if runnable, pick the next, switch."""
        prev = self.curr
        self.need_resched = False
        if prev is not None and prev.running:
            self.enqueue(prev, head=prev.rt and prev.policy == "fifo")
        nxt = self._pick()
        self.curr = nxt
        now = self.m.engine.now
        if nxt is not None and nxt.queued_ns is not None:  # sched_info_arrive(): its wait on the run queue ends
            nxt.wait_ns += now - nxt.queued_ns
            nxt.queued_ns = None
        if nxt is prev:
            return
        if nxt is not None:
            nxt.slice_start_ns = now
            nxt.switches += 1
            nxt.wake_ns = None  # (a periodic task measures its own latency: Machine._periodic())
        self.m.trace_switch(self, prev, nxt)

    def enqueue(self, t: Task, head: bool = False) -> None:
        if t.queued_ns is None:  # sched_info_enqueue() (a requeue by set_prio() keeps the wait's start)
            t.queued_ns = self.m.engine.now
        if t.rt:
            pos = 0
            while pos < len(self.rt_rq) and (self.rt_rq[pos].prio > t.prio or (not head and self.rt_rq[pos].prio == t.prio)):
                pos += 1
            self.rt_rq.insert(pos, t)
        else:
            self.cfs_rq.append(t)

    def _pick(self) -> Task | None:
        if self.rt_rq:
            return self.rt_rq.pop(0)
        if self.cfs_rq:
            best = min(self.cfs_rq, key=lambda t: t.vruntime)
            self.cfs_rq.remove(best)
            self.min_vruntime = max(self.min_vruntime, best.vruntime)
            return best
        return None

    def wake(self, t: Task) -> None:
        """try_to_wake_up(): make t runnable on its CPU and decide whether it preempts."""
        if t.running:
            return
        t.running = True
        t.wake_ns = self.m.engine.now
        if not t.rt:
            # place_entity(): a sleeper gets at most half a latency period of credit.
            t.vruntime = max(t.vruntime, self.min_vruntime - self.m.sched_latency_ns / 2)
        self.enqueue(t)
        if self._preempts(t):
            self.need_resched = True

    def _preempts(self, t: Task) -> bool:
        c = self.curr
        if c is None:
            return True
        if t.rt:
            return not c.rt or t.prio > c.prio
        if c.rt:
            return False
        # check_preempt_wakeup(): preempt when curr is ahead by more than the granularity.
        return c.vruntime - t.vruntime > self.m.wakeup_gran_ns

    def set_prio(self, t: Task, policy: str, prio: int) -> None:
        """rt_mutex_setprio(): change t's policy and priority (priority inheritance), requeueing it."""
        queued = t.running and t is not self.curr
        if queued:
            (self.rt_rq if t.rt else self.cfs_rq).remove(t)
        t.policy, t.prio = policy, prio
        if queued:
            self.enqueue(t)
            if self._preempts(t):
                self.need_resched = True
        elif t is self.curr and self.rt_rq and (not t.rt or self.rt_rq[0].prio > t.prio):
            self.need_resched = True  # deboosted below a waiting RT task

    def tick(self) -> None:
        """scheduler_tick() -> task_tick(): slice expiry sets need_resched."""
        c = self.curr
        if c is None:
            if self.rt_rq or self.cfs_rq:
                self.need_resched = True
            return
        ran = self.m.engine.now - c.slice_start_ns
        if c.rt:
            if c.policy == "rr" and ran >= RR_TIMESLICE_NS and any(t.prio == c.prio for t in self.rt_rq):
                self.need_resched = True
            return
        if self.rt_rq:
            self.need_resched = True
            return
        n = len(self.cfs_rq) + 1
        ideal = max(self.m.sched_latency_ns // n, self.m.min_gran_ns)
        if self.cfs_rq and ran >= ideal:
            self.need_resched = True
