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
from typing import TYPE_CHECKING

from irqlab.sim.cpu import IDLE, IRQ, SOFTIRQ
from irqlab.sim.softirq import NET_RX
from irqlab.sim.spurious import WINDOW

if TYPE_CHECKING:
    from irqlab.sim.cpu import CPU
    from irqlab.sim.napi import NapiNic


def eligible(line: NapiNic) -> bool:
    """The static conditions, fixed for a run: checked once per line."""
    m = line.m
    return not m.tracing and not m.threadirqs and line.dev.deliver == "forward" and not line.dev.unhandled


def idle_cycles(line: NapiNic, cpu: CPU) -> bool:
    """Run NAPI cycles of `line` on idle `cpu` from now, while each is quiet; False: none run.

    Called by DeviceLine._arrive() at an arrival with the ring non-empty, instead of
    cpu.deliver(line). On True the line is left as the general path leaves it after its last
    cycle: unmasked and armed, with its next arrival event queued.
    """
    m = line.m
    engine = m.engine
    if (cpu.stack or cpu.curr is not None or cpu.need_resched or cpu.irr or cpu._advancing
            or m.cur_cpu is not None or not engine.inline or cpu.rt_rq or cpu.cfs_rq):
        return False
    st = cpu.sirq
    sd = m.softnet[cpu.id]
    napi = line.napi
    if st.pending or sd.poll_list or napi.scheduled or line.masked or line.disabled or line.oneshot_held:
        return False
    if line.dev.defer_hard_irqs or napi.defer_count:
        return False  # napi_complete_done() would arm the gro_flush_timeout hrtimer (a policy may set it)
    if m.defer_to_ksoftirqd and st.ksoftirqd.running:
        return False
    heap, until = engine._heap, engine.until
    stream, hard, work = line.stream, line.hard_cost, line.work_cost
    buf = stream._buf
    weight, capacity, tick = napi.weight, line.capacity, m.tick_ns
    budget = m.netdev_budget
    cycles = 0
    a = engine.now  # this cycle's arrival instant (the ring holds line.queued already)
    while True:
        # --- decide on local copies: the hardirq, then the poll, as the general path runs them
        if line.irq_count >= WINDOW - 1:
            break  # note_interrupt() would complete its window: the general path
        if hard.const is not None:
            h = hard.const
        elif hard._i < len(hard._buf):
            h = hard._buf[hard._i]
        else:
            break  # the next draw would refill from the shared generator
        t1 = a + h
        if not (t1 < until and (not heap or heap[0][0] > t1)):
            break
        i, queued, arrived, missed = stream._i, line.queued, line.arrived, line.missed
        wi = work._i
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
            elif wi + take <= len(work._buf):
                c = sum(work._buf[wi:wi + take])
                wi += take
            else:
                ok = False
                break
            cost += c
            t += c
        end = t1 + cost
        if (not ok or k >= weight or k >= budget or not (end < until and (not heap or heap[0][0] > end))
                or end // tick >= t1 // tick + m.rx_time_jiffies):
            break
        # --- commit: what _arrive/deliver/hardirq/irq_exit/handle_softirqs/net_rx_action/
        # napi_complete_done/unmask leave behind, in their order
        times = cpu.times
        times[IDLE] += a - cpu.seg_start
        cpu.version += 1
        line.counts[cpu.id] += 1  # kstat_irqs
        if hard.const is None:
            hard._i += 1
        times[IRQ] += h
        line._fired = False
        line.handled_seq += 1
        line.irq_count += 1  # note_interrupt(), IRQ_HANDLED
        st.raised_ns[NET_RX] = t1
        st.irq_exit_runs += 1
        st.counts[NET_RX] += 1
        m.raise_latency[NET_RX].pending.append(0)  # raised at the hardirq's end, entered at once
        stream._i = i
        stream.next_t = buf[i]
        line.queued, line.arrived, line.missed = queued, arrived, missed
        if work.const is None:
            work._i = wi
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
            j = bisect.bisect_right(buf, end, stream._i)
            if j >= len(buf):
                line.sync(end)  # the general sync (it may refill: the general path would too)
            else:
                n = j - stream._i
                stream._i, stream.next_t = j, buf[j]
                line.arrived += n
                take = n if n <= capacity - line.queued else capacity - line.queued
                line.queued += take
                line.missed += n - take
        a = end if line.queued else stream.next_t
        if a < 0:
            a = stream.peek()
        if not (a < until and (not heap or heap[0][0] > a)):
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
        line._fired = True
    if cycles:
        # the next cycle did not qualify: the arrival at `a` goes the general way
        cpu.deliver(line)
        return True
    return False
