"""RCU callbacks and RCU_SOFTIRQ (kernel/rcu/tree.c, v6.18): call_rcu(), grace periods, rcu_do_batch().

What matters to the softirq machinery is the batch limit. rcu_core() -> rcu_do_batch() invokes
the callbacks whose grace period has ended, but in softirq context it stops after
`bl = max(rdp->blimit, pending >> rcu_divisor)` callbacks (blimit 10, rcu_divisor 7) when the
CPU has something else to do (`need_resched() || !is_idle_task(current)`), and then, with ready
callbacks left, invoke_rcu_core() raises RCU_SOFTIRQ again. A steady stream of callbacks (IP
fragment queues freed by inet_frag_destroy() -> call_rcu(), one per reassembled datagram) thus
keeps RCU_SOFTIRQ re-raising itself: handle_softirqs() restarts until its limits hand the CPU's
softirqs to ksoftirqd, and NET_RX raised meanwhile runs there too. Above qhimark (10,000
queued) the limit is raised to DEFAULT_MAX_RCU_BLIMIT (10,000 per run: __call_rcu_core() sets
rdp->blimit), and put back once the queue is down to qlowmark (100) (rcu_do_batch(): "Reinstate
batch limit if we have worked down the excess"). The 3 ms rcu_resched_ns time check that comes
with the raised limit is not modelled.

The grace period is a fixed `machine.rcu_gp_ms` here (the real one depends on every CPU's
quiescent states): callbacks queued at t are ready at the first tick after t + gp, where
rcu_sched_clock_irq() -> rcu_pending() -> invoke_rcu_core() raises RCU_SOFTIRQ. The callback
cost is `machine.rcu_callback_ns` each.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import Protocol

from irqlab.sim.cpu import CPU
from irqlab.sim.ports import Kernel
from irqlab.sim.softirq import RCU, raise_softirq
from irqlab.sim.workload import CostSampler

RCU_DIVISOR = 7  # kernel/rcu/tree.c rcu_divisor
QHIMARK = 10_000  # kernel/rcu/tree.c qhimark: more queued than this raises the batch limit
QLOWMARK = 100  # qlowmark: at or below this the normal limit is back
DEFAULT_MAX_RCU_BLIMIT = 10_000  # the raised limit


class RcuHost(Kernel, Protocol):
    """What RCU asks of the machine beyond `Kernel`: each CPU's callbacks and the grace period."""

    rcu: list[RcuData]  # per CPU
    rcu_gp_ns: int


class RcuData:
    """struct rcu_data of one CPU, reduced to its callback counts."""

    __slots__ = ("waiting", "ready", "queued", "invoked", "batches", "cost", "high")

    def __init__(self, cost: CostSampler) -> None:
        self.waiting: deque[list[int]] = deque()  # [ready_ns, callbacks] waiting for their grace period
        self.ready = 0  # callbacks whose grace period has ended
        self.queued = 0  # all not yet invoked (rcu_segcblist_n_cbs())
        self.invoked = 0
        self.batches = 0  # rcu_do_batch() calls that invoked something
        self.cost = cost
        self.high = False  # rdp->blimit == DEFAULT_MAX_RCU_BLIMIT (queued went above qhimark)


def call_rcu(m: RcuHost, cpu_id: int, n: int = 1) -> None:
    """call_rcu() on cpu_id: n callbacks, ready after the grace period."""
    rd = m.rcu[cpu_id]
    ready_ns = m.engine.now + m.rcu_gp_ns
    if rd.waiting and rd.waiting[-1][0] == ready_ns:
        rd.waiting[-1][1] += n
    else:
        rd.waiting.append([ready_ns, n])
    rd.queued += n
    if rd.queued > QHIMARK:
        rd.high = True  # __call_rcu_core(): "rdp->blimit = DEFAULT_MAX_RCU_BLIMIT"


def rcu_sched_clock_irq(m: RcuHost, cpu: CPU) -> None:
    """From the tick: callbacks whose grace period ended become ready; raise RCU_SOFTIRQ if any."""
    rd = m.rcu[cpu.id]
    now = m.engine.now
    while rd.waiting and rd.waiting[0][0] <= now:
        rd.ready += rd.waiting.popleft()[1]
    if rd.ready:
        raise_softirq(m, cpu, RCU)  # rcu_pending() -> invoke_rcu_core()


def rcu_core(m: RcuHost, cpu: CPU) -> Generator:
    """The RCU_SOFTIRQ action: rcu_core() -> rcu_do_batch() with its batch limit."""
    rd = m.rcu[cpu.id]
    if not rd.ready:
        return
    bl = max(DEFAULT_MAX_RCU_BLIMIT if rd.high else m.sc.rcu_blimit, rd.ready >> RCU_DIVISOR)
    busy = cpu.need_resched or cpu.curr is not None  # need_resched() || !is_idle_task(current)
    n = min(rd.ready, bl) if busy else rd.ready
    rd.ready -= n
    rd.queued -= n
    rd.invoked += n
    rd.batches += 1
    if rd.high and rd.queued <= QLOWMARK:
        rd.high = False  # "Reinstate batch limit if we have worked down the excess"
    cost = rd.cost.total(n)
    if cost and not cpu.work_inline(cost):
        yield cost
    if rd.ready:
        raise_softirq(m, cpu, RCU)  # "if (rcu_segcblist_ready_cbs(&rdp->cblist)) invoke_rcu_core();"
