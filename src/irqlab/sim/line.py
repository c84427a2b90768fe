"""An interrupt line and its device: arrivals, masking, the handler's cost and return value.

A line raises an interrupt at its device's next arrival while it is armed; once it has
fired it stays quiet until its handler has run (the pending bit of an edge interrupt
holds one interrupt, however many events arrive), then re-arms for the next arrival. A
masked or disabled line does not fire; on unmask, work that arrived meanwhile fires at once
(IRQS_PENDING replay in kernel/irq/chip.c). Arrivals while quiet are counted lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from irqlab.sim.cpu import CPU, IRQ, Frame
from irqlab.sim.ports import Kernel
from irqlab.sim.workload import NEVER, ArrivalStream, CostSampler

if TYPE_CHECKING:
    from irqlab.sim.scenario import Device

IRQ_NONE, IRQ_HANDLED, IRQ_WAKE_THREAD = 0, 1, 2  # include/linux/irqreturn.h


class Line:
    """A /proc/interrupts row: numbered device line or arch row (LOC, RES)."""

    def __init__(self, m: Kernel, irq: str, name: str, cpu: int, description: str = "") -> None:
        self.m = m
        self.irq = irq
        self.numbered = irq.isdigit()
        self.nr = int(irq) if self.numbered else 0
        self.name = name
        self.description = description
        self.cpu = cpu
        self.counts = [0] * m.sc.cpus
        self.masked = False  # mask_irq(): IRQF_ONESHOT, or the driver while NAPI polls
        self.disabled = False  # IRQS_SPURIOUS_DISABLED
        self.armed = False
        # kernel/irq/spurious.c note_interrupt() state of the irq_desc
        self.irq_count = 0
        self.irqs_unhandled = 0
        self.last_unhandled = 0  # jiffies
        self.nobody_cared = 0
        self.handled_seq = 0
        self.frames = [Frame(IRQ, None, self) for _ in range(m.sc.cpus)]  # CPU._push_irq()

    def start(self, cpu: CPU) -> int:
        """The handler begins: its cost in ns."""
        return 0

    def end(self, cpu: CPU) -> int:
        """The handler ends: its side effects; returns IRQ_NONE / IRQ_HANDLED / IRQ_WAKE_THREAD."""
        return IRQ_HANDLED


class DeviceLine(Line):
    """A numbered line whose device has an arrival process; one interrupt per quiet->busy edge."""

    chip = "PCI-MSIX-0000:00:04.0"

    def __init__(self, m: Kernel, dev: Device) -> None:
        super().__init__(m, str(dev.irq), dev.name, dev.cpu)
        self.dev = dev
        self.stream = ArrivalStream(dev.arrival, m.sc.duration_ns + m.sc.warmup_ns + 1, m.rng)
        self.hard_cost = CostSampler(dev.hardirq, m.rng)
        self.work_cost = CostSampler(dev.work, m.rng)
        self.queued = 0  # events arrived and not yet handled (the ring, for NICs)
        self.capacity = dev.ring
        self.missed = 0  # arrivals dropped because the ring was full
        self.backlog_dropped = 0  # a netif_rx() driver's packets dropped at a full backlog (napi.NetifRxNic)
        self.oneshot_held = False  # forced threading: IRQF_ONESHOT mask held until the thread ends
        self.arrived = 0
        # The kernel manages this IRQ's affinity (/proc/irq/N/smp_affinity refuses writes with
        # EPERM): no scenario key sets it yet; sim/readout.py reports it in IrqInfo.managed.
        self.managed = False
        # A NapiNic may set sim/fastpath.py's idle_cycles: called at an arrival instead of deliver()
        self.fast_cycles: Callable[[DeviceLine, CPU], bool] | None = None

    def sync(self, t_ns: int | None = None) -> None:
        """Count arrivals up to now (or t_ns) into the ring; what does not fit is missed."""
        if t_ns is None:
            t_ns = self.m.engine.now
        if t_ns < self.stream.next_t:
            return  # nothing has arrived since the last look
        n = self.stream.take_until(t_ns)
        if n:
            self.arrived += n
            room = self.capacity - self.queued
            take = n if n <= room else room
            self.queued += take
            self.missed += n - take

    def arm(self) -> None:
        """Fire at the next arrival (or now, if work is already waiting)."""
        if self.armed or self.masked or self.disabled:
            return
        self.armed = True
        engine = self.m.engine
        if self.queued:
            t = engine.now
        else:
            t = self.stream.next_t  # the next unconsumed arrival; -1 when not drawn yet
            if t < 0:
                t = self.stream.peek()
        if t < NEVER:
            engine.at(t, self._arrive, None, 0)

    def _arrive(self, _: object) -> None:
        self.armed = False
        if self.masked or self.disabled:
            return
        m = self.m
        now = m.engine.now
        if now >= self.stream.next_t:  # sync(), inlined: the arrivals up to now into the ring
            n = self.stream.take_until(now)
            self.arrived += n
            room = self.capacity - self.queued
            take = n if n <= room else room
            self.queued += take
            self.missed += n - take
        if not self.queued:
            self.arm()
            return
        cpu = m.cpus[self.cpu]
        if self.fast_cycles is not None and self.fast_cycles(self, cpu):
            return  # sim/fastpath.py ran the quiet cycles from here
        cpu.deliver(self)

    def deliver_up(self, cpu: CPU, k: int) -> None:
        """Hand k received packets up the stack: a socket's queue or the forwarding output."""
        m = self.m
        cpu.softnet.processed += k  # __netif_receive_skb_core(): sd->processed++ of the polling CPU
        if self.dev.deliver == "forward":
            m.forwarded += k
        else:
            m.sockets[self.dev.deliver].enqueue(k)

    def start(self, cpu: CPU) -> int:
        now = self.m.engine.now
        if now >= self.stream.next_t:
            self.sync(now)
        cost = self.hard_cost
        return cost.const if cost.const is not None else cost.draw()

    def unmask(self) -> None:
        self.masked = False
        now = self.m.engine.now
        if now >= self.stream.next_t:
            self.sync(now)
        self.arm()
