"""Fast-forward of quiet NAPI interrupt cycles on an idle CPU: the same result, fewer steps.

Below saturation most of a NIC's life is one cycle repeated: an arrival on an idle CPU, the
hardirq (NapiNic: mask, napi_schedule(), raise NET_RX), irq_exit() -> handle_softirqs() ->
net_rx_action() -> one poll that drains the ring -> napi_complete_done() -> unmask -> idle
until the next arrival. When nothing else can happen before such a cycle ends (no queued event
is due, no other softirq pending, no task runnable), the general path (sim/cpu.py, softirq.py,
napi.py) goes through a dozen generator steps and function calls to reach a result this module
computes directly: the counters, CPU times, histogram values, ring and stream positions that
the general path would leave, in the same order, drawing the same random numbers.

It is a second implementation of one path, so it only runs where its assumptions hold and
gives up (returning False, having changed nothing) otherwise: tracing off, not forced-threaded,
a plain NapiNic forwarding its packets, no deferred hard IRQs, no spurious-IRQ model, the CPU
idle with nothing pending, a poll shorter than its weight and budget that does not reach
netdev_budget_usecs, costs and arrivals already drawn into their buffers. tests/sim/
test_fast_path.py runs every scenario kind with and without it (Engine.inline) and requires
identical results.
"""

from __future__ import annotations

import bisect
from typing import Any, Protocol

from irqlab.sim.cpu import CPU, IDLE, IRQ, SOFTIRQ
from irqlab.sim.softirq import NET_RX, SoftirqHost
from irqlab.sim.spurious import WINDOW
from irqlab.sim.state import Napi
from irqlab.sim.workload import ArrivalStream, CostSampler


class QuietNic(Protocol):
    """The state of a NAPI NIC's line (sim/napi.py NapiNic) that a quiet cycle reads and leaves."""

    m: SoftirqHost
    dev: Any  # scenario.Device: deliver, unhandled, defer_hard_irqs
    napi: Napi
    stream: ArrivalStream
    hard_cost: CostSampler
    work_cost: CostSampler
    counts: list[int]
    capacity: int
    queued: int
    arrived: int
    missed: int
    irq_count: int
    irqs_unhandled: int
    handled_seq: int
    masked: bool
    disabled: bool
    oneshot_held: bool
    armed: bool

    def sync(self, t_ns: int | None = None) -> None: ...

    def arm(self) -> None: ...


def eligible(line: QuietNic) -> bool:
    """The static conditions, fixed for a run: checked once per line."""
    m = line.m
    return not m.tracing and not m.threadirqs and line.dev.deliver == "forward" and not line.dev.unhandled


def idle_cycles(line: QuietNic, cpu: CPU) -> bool:
    """Run NAPI cycles of `line` on idle `cpu` from now, while each is quiet; False: none run.

    Called by DeviceLine._arrive() at an arrival with the ring non-empty, instead of
    cpu.deliver(line). On True the line is left as the general path leaves it after its last
    cycle: unmasked and armed, with its next arrival event queued.
    """
    m = line.m
    engine = m.engine
    if m.cur_cpu is not None or not engine.inline or not cpu.is_quiet():
        return False
    st = cpu.sirq
    sd = cpu.softnet
    napi = line.napi
    if st.pending or sd.poll_list or napi.scheduled or line.masked or line.disabled or line.oneshot_held:
        return False
    if line.dev.defer_hard_irqs or napi.defer_count:
        return False  # napi_complete_done() would arm the gro_flush_timeout hrtimer (a policy may set it)
    if m.defer_to_ksoftirqd and st.ksoftirqd.running:
        return False
    # Nothing is queued while the cycles are decided and committed (line.arm() comes last), so
    # the engine's horizon holds for all of them: a cycle is quiet when it ends before it.
    horizon = engine.horizon_ns()
    stream, hard, work = line.stream, line.hard_cost, line.work_cost
    buf = stream.buf
    weight, capacity, tick = napi.weight, line.capacity, m.tick_ns
    budget = m.netdev_budget
    cycles = 0
    counting = not m.note_interrupt_skips_handled or line.irqs_unhandled  # note_interrupt(): 5.13+
    a = engine.now  # this cycle's arrival instant (the ring holds line.queued already)
    while True:
        # --- decide on local copies: the hardirq, then the poll, as the general path runs them
        if counting and line.irq_count >= WINDOW - 1:
            break  # note_interrupt() would complete its window: the general path
        if hard.const is not None:
            h = hard.const
        elif hard.pos < len(hard.buf):
            h = hard.buf[hard.pos]
        else:
            break  # the next draw would refill from the shared generator
        t1 = a + h
        if t1 >= horizon:
            break
        i, queued, arrived, missed = stream.pos, line.queued, line.arrived, line.missed
        wi = work.pos
        t, k, cost = t1, 0, 0
        ok = True
        while k < weight:
            if i < len(buf) and buf[i] <= t:  # sync(t): arrivals up to t into the ring
                j = bisect.bisect_right(buf, t, i)
                if j >= len(buf):
                    ok = False  # the stream would refill: leave it to the general path
                    break
                n, i = j - i, j
                arrived += n
                take = n if n <= capacity - queued else capacity - queued
                queued += take
                missed += n - take
            elif i >= len(buf):
                ok = False
                break
            take = weight - k
            if queued < take:
                take = queued
                if not take:
                    break
            queued -= take
            k += take
            if work.const is not None:
                c = work.const * take
            elif wi + take <= len(work.buf):
                c = sum(work.buf[wi:wi + take])
                wi += take
            else:
                ok = False
                break
            cost += c
            t += c
        end = t1 + cost
        if (not ok or k >= weight or k >= budget or end >= horizon
                or end // tick >= t1 // tick + m.rx_time_jiffies):
            break
        # --- commit: what _arrive/deliver/hardirq/irq_exit/handle_softirqs/net_rx_action/
        # napi_complete_done/unmask leave behind, in their order
        times = cpu.times
        times[IDLE] += a - cpu.seg_start
        cpu.version += 1
        line.counts[cpu.id] += 1  # kstat_irqs
        if hard.const is None:
            hard.skip(1)
        times[IRQ] += h
        line.handled_seq += 1
        if counting:
            line.irq_count += 1  # note_interrupt(), IRQ_HANDLED
        st.raised_ns[NET_RX] = t1
        st.irq_exit_runs += 1
        st.counts[NET_RX] += 1
        m.raise_latency[NET_RX].pending.append(0)  # raised at the hardirq's end, entered at once
        stream.advance_to(i)
        line.queued, line.arrived, line.missed = queued, arrived, missed
        if work.const is None:
            work.skip(wi - work.pos)
        times[SOFTIRQ] += cost
        sd.processed += k
        m.forwarded += k
        napi.defer_count = 0  # napi_complete_done(): work done, defer_hard_irqs is 0
        engine.now = end
        cpu.seg_start = end
        cycles += 1
        # unmask(): sync(end), then arm() for the next arrival (or now, with work waiting)
        nt = stream.next_t
        if end >= nt:
            j = bisect.bisect_right(buf, end, stream.pos)
            if j >= len(buf):
                line.sync(end)  # the general sync (it may refill: the general path would too)
            else:
                n = j - stream.pos
                stream.advance_to(j)
                line.arrived += n
                take = n if n <= capacity - line.queued else capacity - line.queued
                line.queued += take
                line.missed += n - take
        a = end if line.queued else stream.next_t
        if a < 0:
            a = stream.peek()
        if a >= horizon:
            line.armed = False
            line.arm()  # queue the next arrival as the general path does
            return True
        engine.now = a
        line.armed = False
        # _arrive() at a: its sync (arrivals up to a), and an empty ring re-arms
        if a >= stream.next_t:
            line.sync(a)
        if not line.queued:
            line.arm()
            return True
    if cycles:
        # the next cycle did not qualify: the arrival at `a` goes the general way
        cpu.deliver(line)
        return True
    return False
