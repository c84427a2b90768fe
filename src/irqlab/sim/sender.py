"""The transmit path of a local sender (veth, loopback): packets into a backlog from task context.

On veth and loopback a packet is received by the sending task itself (net/core/dev.c, v6.18):
__dev_queue_xmit() holds rcu_read_lock_bh(), the driver's xmit (veth_xmit() ->
veth_forward_skb() -> __netif_rx(), loopback_xmit() -> __netif_rx()) calls
enqueue_to_backlog(), which raises NET_RX with bottom halves disabled (so ksoftirqd is not
woken), and rcu_read_unlock_bh() -> __local_bh_enable_ip() (kernel/softirq.c) runs the pending
softirqs in the sender's own context. With RPS the packet goes to another CPU's backlog
instead: enqueue_to_backlog() sets that backlog's NAPI_STATE_SCHED when its queue was empty and
napi_schedule_rps() queues the target on the sender CPU's rps_ipi_list and raises NET_RX there
(v6.4+: unless net_rx_action() runs). The sender's own NET_RX run, at its local_bh_enable(),
finds nothing to poll and sends the IPI (net_rps_action_and_irq_enable()), so the sender's CPU
counts about as many NET_RX runs as the target. The target's rps_trigger_softirq() puts the
backlog on its poll list and raises NET_RX in hard interrupt context, so it runs on irq_exit().
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import Any, Protocol

from irqlab.sim import napi, rcu, softirq
from irqlab.sim.cpu import BLOCK, CPU, Task
from irqlab.sim.line import IRQ_HANDLED, Line
from irqlab.sim.ports import Kernel
from irqlab.sim.state import Napi
from irqlab.sim.workload import CostSampler

CAL_COST_NS = 1_500  # the CAL handler: irqlab trace measured 1.5 us on average (docs/trace.md)


class SenderHost(softirq.SoftirqHost, rcu.RcuHost, Protocol):
    """What a sender asks of the machine beyond `Kernel`: the CAL IPI, the backlogs, its pacing timer."""

    cal: CalLine
    tx_backlogs: dict[int, TxBacklog]  # by CPU, made on first use

    def timer_wake(self, cpu: CPU, arg: tuple[Task, int]) -> None: ...


class _NoDefer:
    """The backlog's device knobs that napi_complete_done() reads: no deferral, no timer."""

    defer_hard_irqs = 0
    gro_flush_timeout_ns = 0


class Port:
    """One sender's packets as the backlog sees them: NET_RX cost per packet, where they go."""

    def __init__(self, m: Kernel, spec: Any) -> None:
        self.rx = CostSampler(spec.rx, m.rng)
        self.fragments = spec.fragments
        self.deliver = spec.deliver
        self.partial = 0  # fragments of the datagram being reassembled


class TxBacklog:
    """softnet_data.input_pkt_queue + backlog NAPI of one CPU, filled from task context.

    process_backlog() (net/core/dev.c) keeps taking packets that arrive while it runs and
    completes the NAPI only when input_pkt_queue is empty ("again" loop). A poll here takes
    the packets present when it starts; when it ends, napi_complete_done() calls `unmask()`,
    which puts the NAPI straight back on the poll list if packets arrived meanwhile, without a
    raise (as ____napi_schedule() inside net_rx_action()), so net_rx_action() goes on polling
    within its budget, as the kernel's loop does.
    """

    def __init__(self, m: SenderHost, cpu: int) -> None:
        self.m, self.cpu = m, cpu
        self.queue: deque[Port] = deque()
        self.napi = Napi(f"backlog{cpu}", m.sc.dev_weight, self._poll, self, -1)
        self.dev = _NoDefer()
        self.oneshot_held = False  # napi_complete_done() asks before calling unmask()

    def enqueue(self, here: CPU, port: Port, ipi_wake_ns: int) -> None:
        """enqueue_to_backlog(): queue one packet; schedule the NAPI when the queue was empty."""
        m = self.m
        target = m.cpus[self.cpu]
        sd = target.softnet
        if len(self.queue) > m.sc.netdev_max_backlog:
            sd.dropped += 1
            return
        was_empty = not self.queue
        self.queue.append(port)
        if not was_empty or self.napi.scheduled:
            return
        self.napi.scheduled = True  # __test_and_set_bit(NAPI_STATE_SCHED, &sd->backlog.state)
        if target is here:
            napi.napi_schedule_locked(m, here, self.napi)  # napi_schedule_rps() -> __napi_schedule_irqoff()
            return
        # napi_schedule_rps(), another CPU's backlog: on this CPU's rps_ipi_list, and NET_RX raised
        # here ("If not called from net_rx_action() we have to raise NET_RX_SOFTIRQ", v6.4+; always
        # before): this CPU's net_rx_action() sends the IPI when it ends (napi.net_rps_action()).
        mysd = here.softnet
        mysd.rps_ipi_list.append((target, self.napi, ipi_wake_ns))
        if not mysd.in_net_rx_action:
            softirq.raise_softirq(m, here, softirq.NET_RX)

    def unmask(self) -> None:
        if self.queue and not self.napi.scheduled:
            self.napi.scheduled = True
            self.m.cpus[self.cpu].softnet.poll_list.append(self.napi)

    def _poll(self, m: Kernel, cpu: CPU, n: Napi) -> tuple[int, int, tuple]:
        """process_backlog(): up to the quota, each packet at its sender's NET_RX cost."""
        take = min(n.weight, len(self.queue))
        ports = [self.queue.popleft() for _ in range(take)]
        cost = sum(p.rx.draw() for p in ports)
        return take, cost, ((self, ports),)

    def deliver_up(self, cpu: CPU, ports: list[Port]) -> None:
        """Once net_rx_action() has paid the poll: fragments up the stack, reassembled."""
        m = self.m
        m.cpus[self.cpu].softnet.processed += len(ports)  # __netif_receive_skb_core(): sd->processed++
        for p in ports:
            p.partial += 1
            if p.partial == p.fragments:  # ip_defrag(): the last fragment completes the datagram
                p.partial = 0
                if p.fragments > 1:
                    rcu.call_rcu(m, self.cpu)  # inet_frag_destroy(): the queue is freed with call_rcu()
                if p.deliver == "forward":
                    m.forwarded += 1
                else:
                    m.sockets[p.deliver].enqueue(1)


class CalLine(Line):
    """The function-call IPI (CAL): rps_trigger_softirq() schedules the backlog and raises NET_RX."""

    def __init__(self, m: Kernel) -> None:
        super().__init__(m, "CAL", "", 0, "Function call interrupts")
        self.todo: list[list[Napi]] = [[] for _ in range(m.sc.cpus)]

    def start(self, cpu: CPU) -> int:
        return CAL_COST_NS

    def end(self, cpu: CPU) -> int:
        todo, self.todo[cpu.id] = self.todo[cpu.id], []
        for n in todo:
            napi.napi_schedule_locked(self.m, cpu, n)  # rps_trigger_softirq(): ____napi_schedule()
            cpu.softnet.received_rps += 1
        return IRQ_HANDLED


def tx_backlog(m: SenderHost, cpu: int) -> TxBacklog:
    """The transmit-side backlog of a CPU, made on first use."""
    if cpu not in m.tx_backlogs:
        m.tx_backlogs[cpu] = TxBacklog(m, cpu)
    return m.tx_backlogs[cpu]


def sender_body(m: SenderHost, t: Task, spec: Any, send: CostSampler) -> Generator:
    """iperf3 -u: send a datagram (its fragments one after another), paced to rate_pps.

    iperf_check_throttle() (iperf3 3.x) lets a sender run while its average rate since the
    start is below the target and otherwise waits for the next pacing tick, so a paced sender
    sends in bursts every pacing_us.
    """
    cpu = m.cpus[t.cpu]
    backlog = tx_backlog(m, spec.rps_cpu if spec.rps_cpu >= 0 else t.cpu)
    port = Port(m, spec)
    frag = CostSampler(spec.fragment, m.rng)
    start, sent = m.engine.now, 0
    pacing_ns = int(spec.pacing_us * 1000)
    t.data = {"sent": 0, "throttled": 0}
    while True:
        if spec.rate_pps and sent >= (m.engine.now - start) * spec.rate_pps / 1e9:
            t.data["throttled"] += 1
            wake = m.engine.now + pacing_ns
            cpu.add_timer(wake, m.timer_wake, (t, wake))
            yield BLOCK
            continue
        yield send.draw()  # the syscall: udp_sendmsg(), the copy, ip_append_data()
        for _ in range(spec.fragments):
            c = frag.draw()
            if c:
                yield c
            yield from softirq.local_bh_disable(m, cpu, t)  # rcu_read_lock_bh() in __dev_queue_xmit()
            backlog.enqueue(cpu, port, spec.ipi_wake_ns)
            t.bh -= 1
            yield from softirq.local_bh_enable(m, cpu, t)  # rcu_read_unlock_bh()
        sent += 1
        t.data["sent"] = sent
