"""NAPI and the backlog: napi_schedule, net_rx_action, napi_poll, netif_rx (net/core/dev.c, v6.18)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Protocol

from irqlab.model.events import EventKind
from irqlab.sim import fastpath
from irqlab.sim.cpu import CPU
from irqlab.sim.line import IRQ_HANDLED, DeviceLine
from irqlab.sim.ports import Kernel
from irqlab.sim.softirq import NET_RX, raise_softirq
from irqlab.sim.state import Napi, Softnet

__all__ = ["Napi", "NapiNic", "NetifRxNic", "Socket", "Softnet", "napi_schedule", "net_rx_action", "new_softnet"]


class NapiHost(Kernel, Protocol):
    """What NAPI drivers ask of the machine beyond `Kernel`: their index in the trace's device table."""

    napi_names: list[str]


def new_softnet(dev_weight: int, cpu: int) -> Softnet:
    """softnet_data of one CPU, its backlog NAPI polled by process_backlog()."""
    return Softnet(Napi(f"backlog{cpu}", dev_weight, process_backlog, None, -1))


def napi_schedule(m: Kernel, cpu: CPU, n: Napi) -> None:
    """napi_schedule(): test-and-set SCHED, then ____napi_schedule()."""
    if n.scheduled:
        return
    n.scheduled = True
    napi_schedule_locked(m, cpu, n)


def napi_schedule_locked(m: Kernel, cpu: CPU, n: Napi) -> None:
    """____napi_schedule(): add to this CPU's poll_list; raise NET_RX unless net_rx_action() runs.

    "If not called from net_rx_action() we have to raise NET_RX_SOFTIRQ" (v6.4+, 8b43fd3d1d7d):
    the flag is only ever set on those kernels (net_rx_action()), so older ones always raise.
    """
    sd = cpu.softnet
    sd.poll_list.append(n)
    if not sd.in_net_rx_action:
        raise_softirq(m, cpu, NET_RX)


def net_rps_action(m: Kernel, cpu: CPU) -> None:
    """net_rps_action_and_irq_enable() -> net_rps_send_ipi(): one IPI per queued remote backlog.

    A halted (idle) target vCPU sees its IPI ipi_wake_ns late (sim/sender.py, `ipi_wake_ns`).
    """
    sd = cpu.softnet
    if not sd.rps_ipi_list:
        return
    todo, sd.rps_ipi_list = sd.rps_ipi_list, []
    now = m.engine.now
    for target, n, wake_ns in todo:
        delay = wake_ns if target.curr is None and not target.stack else 0
        m.engine.at(now + delay, _send_ipi, (m, target, n))


def _send_ipi(arg: tuple) -> None:
    m, target, n = arg
    m.cal.todo[target.id].append(n)  # smp_call_function_single_async(): csd -> rps_trigger_softirq()
    target.deliver(m.cal)


def net_rx_action(m: Kernel, cpu: CPU) -> Generator:
    """net_rx_action(): poll until the list is empty, netdev_budget is spent or the time limit passes.

    v6.4+ (8b43fd3d1d7d) sets sd->in_net_rx_action meanwhile, so NAPIs scheduled during the run
    raise nothing and are polled by the same run ("goto start"); before, each of them raised
    NET_RX and was polled by the next run (a restart of handle_softirqs()).
    """
    sd = cpu.softnet
    engine = m.engine
    tick = m.tick_ns
    time_limit = engine.now // tick + m.rx_time_jiffies  # jiffies + usecs_to_jiffies(netdev_budget_usecs)
    budget = m.netdev_budget
    flag = m.in_net_rx_action_rule
    sd.in_net_rx_action = flag  # "start:"
    work_list, sd.poll_list = sd.poll_list, []
    repoll: list[Napi] | None = None
    while True:
        if not work_list:
            if repoll is None:
                if flag:
                    sd.in_net_rx_action = False
                    if sd.poll_list:  # "____napi_schedule() had refilled poll_list": goto start
                        sd.in_net_rx_action = True
                        work_list, sd.poll_list = sd.poll_list, []
                        continue
                if not sd.rps_ipi_list:
                    return  # nothing to splice back, no RPS IPI to send
            break
        n = work_list.pop(0)
        # __napi_poll(): call poll with the weight; a full quota keeps the NAPI on the list.
        # A poll returns its work, its cost, and what it hands up the stack once that cost is
        # paid: (source, payload) runs, each delivered by source.deliver_up(cpu, payload).
        work, cost, runs = n.poll(m, cpu, n)
        if cost and not cpu.work_inline(cost):
            yield cost
        for source, payload in runs:
            source.deliver_up(cpu, payload)
        while n.owner is None and work < n.weight and sd.backlog_q:
            # process_backlog() completes only when input_pkt_queue is empty under the lock:
            # packets a hardirq queued while it ran are taken in the same poll, up to the quota.
            more, cost, runs = process_backlog(m, cpu, n, n.weight - work)
            if cost and not cpu.work_inline(cost):
                yield cost
            for source, payload in runs:
                source.deliver_up(cpu, payload)
            work += more
        if m.tracing:
            m.trace(cpu, EventKind.NAPI_POLL, work, n.weight, max(n.index, 0))
        if work < n.weight:
            napi_complete_done(m, cpu, n, work)
        elif repoll is None:
            repoll = [n]
        else:
            repoll.append(n)
        budget -= work
        # "If softirq window is exhausted then punt." One squeeze per truncated pass.
        if budget <= 0 or engine.now // tick >= time_limit:
            sd.time_squeeze += 1
            break
    # list_splice_tail_init(&sd->poll_list, &list); list_splice_tail(&repoll, &list);
    # list_splice(&list, &sd->poll_list): unpolled first, then newly scheduled, then repoll.
    if work_list or repoll:
        sd.poll_list = work_list + sd.poll_list + (repoll or [])
    if sd.poll_list:
        raise_softirq(m, cpu, NET_RX)  # (in_net_rx_action stays set: the next run clears it)
    else:
        sd.in_net_rx_action = False
    net_rps_action(m, cpu)


def napi_complete_done(m: Kernel, cpu: CPU, n: Napi, work: int) -> None:
    """napi_complete_done(): clear SCHED; with defer_hard_irqs, poll again from a timer instead."""
    n.scheduled = False
    line = n.owner
    if line is None:
        return  # the backlog: no interrupt to re-enable
    timeout = 0
    if work:
        n.defer_count = line.dev.defer_hard_irqs
    if n.defer_count > 0:
        n.defer_count -= 1
        timeout = line.dev.gro_flush_timeout_ns
    if timeout:
        # hrtimer_start(&n->timer, timeout): napi_watchdog() schedules the poll again; the
        # driver's interrupt stays off.
        m.cpus[line.cpu].add_timer(m.engine.now + timeout, _napi_watchdog, n)
        return
    if not line.oneshot_held:
        line.unmask()  # the driver re-enables its interrupt (or irq_finalize_oneshot() will)


def _napi_watchdog(cpu: CPU, n: Napi) -> None:
    napi_schedule(n.owner.m, cpu, n)  # (the owner: the driver's line, on the machine it belongs to)


class NapiNic(DeviceLine):
    """A NAPI driver: the hardirq masks the device and schedules NAPI; poll drains the ring."""

    m: NapiHost

    def __init__(self, m: NapiHost, dev: Any) -> None:
        super().__init__(m, dev)
        self.napi = Napi(dev.name, dev.weight, self._poll, self, len(m.napi_names))
        m.napi_names.append(dev.name)
        if type(self) is NapiNic and fastpath.eligible(self):
            self.fast_cycles = fastpath.idle_cycles

    def end(self, cpu: CPU) -> int:
        self.masked = True
        napi_schedule(self.m, cpu, self.napi)
        return IRQ_HANDLED

    def _poll(self, m: Kernel, cpu: CPU, n: Napi) -> tuple[int, int, tuple]:
        """The driver's poll: clean descriptors one after another, up to the weight.

        Packets that land in the ring while the poll runs are seen by it, as a driver's loop
        over the descriptor ring sees them; so under overload a poll uses its full quota.
        """
        t, k, cost = m.engine.now, 0, 0
        stream, weight, per = self.stream, n.weight, self.work_cost
        while k < weight:
            if t >= stream.next_t:
                self.sync(t)
            take = weight - k
            if self.queued < take:
                take = self.queued
                if not take:
                    break
            self.queued -= take
            k += take
            c = per.const * take if per.const is not None else per.total(take)
            cost += c
            t += c
        return k, cost, ((self, k),) if k else ()


class NetifRxNic(DeviceLine):
    """A pre-NAPI driver: every interrupt copies its packets into the backlog with netif_rx()."""

    def start(self, cpu: CPU) -> int:
        self.sync()
        self._k, self.queued = self.queued, 0
        return self.hard_cost.total(max(self._k, 1))

    def end(self, cpu: CPU) -> int:
        m = self.m
        sd = cpu.softnet
        # enqueue_to_backlog(): accepted while qlen <= netdev_max_backlog, else sd->dropped++
        room = max(m.sc.netdev_max_backlog + 1 - sd.backlog_len, 0)
        take = min(self._k, room)
        sd.dropped += self._k - take
        self.backlog_dropped += self._k - take  # enqueue_to_backlog(): dev_core_stats_rx_dropped_inc()
        if take:
            sd.backlog_q.append([self, take])
            sd.backlog_len += take
            napi_schedule(m, cpu, sd.backlog)
        self.arm()
        return IRQ_HANDLED


def process_backlog(m: Kernel, cpu: CPU, n: Napi, quota: int | None = None) -> tuple[int, int, list]:
    """process_backlog(): up to the quota (dev_weight) packets from input_pkt_queue."""
    sd = cpu.softnet
    work, cost, runs = 0, 0, []
    quota = n.weight if quota is None else quota
    while work < quota and sd.backlog_q:
        run = sd.backlog_q[0]
        take = min(run[1], quota - work)
        cost += run[0].work_cost.total(take)
        run[1] -= take
        sd.backlog_len -= take
        work += take
        runs.append((run[0], take))
        if not run[1]:
            sd.backlog_q.popleft()
    return work, cost, runs


class Socket:
    """A receiving socket: a queue bounded by rcvbuf, read by one task."""

    def __init__(self, m: Kernel, limit: int) -> None:
        self.m = m
        self.limit = limit
        self.qlen = 0
        self.drops = 0  # UDP RcvbufErrors
        self.received = 0
        self.reader = None  # the Task

    def enqueue(self, k: int) -> None:
        take = min(k, self.limit - self.qlen)
        self.drops += k - take
        self.qlen += take
        if take and self.reader is not None and not self.reader.running:
            self.m.wake(self.reader, None)  # sk_data_ready() wakes the blocked reader
