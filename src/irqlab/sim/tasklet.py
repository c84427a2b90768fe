"""Tasklets: TASKLET_STATE_SCHED/RUN, the disable count, tasklet_action (kernel/softirq.c).

tasklet_action_common() as the seed prints it: take the whole per-CPU list, then for each
tasklet: trylock (RUN), and if not disabled (count == 0) clear SCHED and run it; otherwise
put it back on the list and raise the softirq again, which is how a disabled tasklet keeps
handle_softirqs() restarting until the restart or time limit hands it to ksoftirqd.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol

from irqlab.model.events import EventKind
from irqlab.sim.cpu import CPU
from irqlab.sim.line import IRQ_HANDLED, DeviceLine
from irqlab.sim.ports import Kernel
from irqlab.sim.softirq import HI, TASKLET, raise_softirq


class TaskletHost(Kernel, Protocol):
    """What tasklets ask of the machine beyond `Kernel`: the per-CPU lists and the trace's symbols."""

    tasklets: dict[bool, list[list[Tasklet]]]  # [hi][cpu]: tasklet_vec / tasklet_hi_vec
    tasklet_symbols: dict[int, str]


class Tasklet:
    """struct tasklet_struct: state bits, disable count, and the cost of its function."""

    __slots__ = ("name", "sched", "run", "count", "cost", "runs", "requeues", "address")

    def __init__(self, name: str, cost: Any, address: int) -> None:
        self.name = name
        self.sched = False  # TASKLET_STATE_SCHED
        self.run = False  # TASKLET_STATE_RUN
        self.count = 0  # tasklet_disable() increments, tasklet_enable() decrements
        self.cost = cost
        self.runs = 0
        self.requeues = 0
        self.address = address


def tasklet_schedule(m: TaskletHost, cpu: CPU, t: Tasklet, hi: bool = False) -> bool:
    """__tasklet_schedule_common(): queue once (SCHED bit) and raise; False if already queued."""
    if t.sched:
        return False
    t.sched = True
    m.tasklets[hi][cpu.id].append(t)
    raise_softirq(m, cpu, HI if hi else TASKLET)
    return True


def tasklet_action(hi: bool) -> Callable[[TaskletHost, CPU], Generator]:
    """The action of TASKLET_SOFTIRQ (hi=False) or HI_SOFTIRQ (hi=True)."""

    def action(m: TaskletHost, cpu: CPU) -> Generator:
        queue = m.tasklets[hi][cpu.id]
        batch = queue[:]
        queue.clear()
        for t in batch:
            if not t.run:  # tasklet_trylock()
                if t.count == 0:
                    assert t.sched, "BUG(): tasklet on the list without TASKLET_STATE_SCHED"
                    t.sched = False
                    t.run = True
                    m.trace(cpu, EventKind.TASKLET_ENTRY, t.address)
                    yield t.cost.draw()
                    m.trace(cpu, EventKind.TASKLET_EXIT, t.address)
                    t.run = False  # tasklet_unlock()
                    t.runs += 1
                    continue
            t.requeues += 1
            queue.append(t)
            raise_softirq(m, cpu, HI if hi else TASKLET)
        return
        yield  # a generator even when the list is empty

    return action


class TaskletDevice(DeviceLine):
    """A device whose hardirq handler defers its work to a tasklet."""

    m: TaskletHost

    def __init__(self, m: TaskletHost, dev: Any, hi: bool = False) -> None:
        super().__init__(m, dev)
        self.hi = hi
        self.tasklet = Tasklet(f"{dev.name}_tasklet", self.work_cost, 0xFFFFFFFF81000000 + dev.irq * 0x100)
        m.tasklet_symbols[self.tasklet.address] = self.tasklet.name

    def end(self, cpu: CPU) -> int:
        self.queued = 0
        tasklet_schedule(self.m, cpu, self.tasklet, self.hi)
        self.arm()
        return IRQ_HANDLED
