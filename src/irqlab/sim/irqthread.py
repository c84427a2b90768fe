"""Threaded IRQs (kernel/irq/manage.c, v6.18): IRQ_WAKE_THREAD, IRQF_ONESHOT, SCHED_FIFO 50.

The primary handler returns IRQ_WAKE_THREAD; __irq_wake_thread() sets IRQTF_RUNTHREAD and
wakes irq/N-name. With IRQF_ONESHOT (always, under forced threading) the line stays masked
until irq_finalize_oneshot() after the thread function returns. setup_irq_thread() gives the
thread SCHED_FIFO at MAX_RT_PRIO/2 = 50 and the line's affinity. A forced-threaded handler
runs under local_bh_disable(), so softirqs it raised run at its local_bh_enable().
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from irqlab.sim.cpu import BLOCK, CPU, Task
from irqlab.sim.line import IRQ_WAKE_THREAD, DeviceLine
from irqlab.sim.softirq import SoftirqHost, local_bh_disable, local_bh_enable

IRQ_THREAD_PRIO = 50  # MAX_RT_PRIO / 2


class ThreadedDevice(DeviceLine):
    """A device with a threaded handler: hardirq wakes irq/N-name, which does the work."""

    m: SoftirqHost  # (its thread runs the softirqs its bottom half raised)

    def __init__(self, m: SoftirqHost, dev: Any) -> None:
        super().__init__(m, dev)
        self.oneshot = dev.oneshot or m.sc.threadirqs
        self.runthread = False  # IRQTF_RUNTHREAD
        self.thread: Task = m.new_task(f"irq/{dev.irq}-{dev.name}"[:15], dev.cpu, "fifo", IRQ_THREAD_PRIO, kthread=True)
        self.thread.kind = "irq"
        self.thread.data = dev.irq
        self.thread.gen = irq_thread(m, self, self.thread)
        self.thread_runs = 0
        self.masked_while_running = 0  # interrupts that arrived (and waited) while masked

    def end(self, cpu: CPU) -> int:
        if self.oneshot:
            self.masked = True  # mask_irq() in handle_edge/fasteoi for IRQF_ONESHOT
        self.runthread = True
        self.m.wake(self.thread, cpu)
        if not self.oneshot:
            self.arm()
        return IRQ_WAKE_THREAD


def irq_thread(m: SoftirqHost, line: ThreadedDevice, task: Task) -> Generator:
    """irq_thread(): wait for RUNTHREAD, run the thread function, finalize the oneshot mask."""
    while True:
        if not line.runthread:
            yield BLOCK
            continue
        line.runthread = False
        cpu = m.cpus[task.cpu]
        if m.sc.threadirqs:
            yield from local_bh_disable(m, cpu, task)  # irq_forced_thread_fn()
        line.sync()
        k, line.queued = max(line.queued, 1), 0
        yield line.work_cost.total(k)
        line.thread_runs += 1
        if m.sc.threadirqs:
            task.bh -= 1
            yield from local_bh_enable(m, cpu, task)
        if line.oneshot:
            line.sync()
            line.masked_while_running += 1 if line.queued else 0
            line.unmask()  # irq_finalize_oneshot(): unmask; IRQS_PENDING work fires now




def forced_threaded(cls: type) -> type:
    """The device class `cls` under forced threading (`threadirqs`, always on PREEMPT_RT).

    irq_setup_forced_threading() (kernel/irq/manage.c) turns the driver's handler into the
    thread function and installs irq_default_primary_handler(), which only returns
    IRQ_WAKE_THREAD, with IRQF_ONESHOT: the line stays masked until the thread has run the
    driver's handler (irq_finalize_oneshot()). The thread runs it through irq_forced_thread_fn():
    local_bh_disable(), the handler, then local_bh_enable(), which runs the softirqs the handler
    raised (NET_RX for napi_schedule(), TASKLET for tasklet_schedule()) in the thread, at SCHED_FIFO
    50. A NAPI driver's own mask stays until napi_complete_done(), so the line is unmasked by
    whichever of the two releases last. Not modelled: on non-RT kernels irq_forced_thread_fn()
    also disables interrupts around the handler.
    """

    class Forced(cls):  # type: ignore[misc, valid-type]
        forced = True

        def __init__(self, m: SoftirqHost, dev: Any, *args: Any) -> None:
            super().__init__(m, dev, *args)
            self.runthread = False
            self.oneshot_held = False
            self.thread_runs = 0
            self.thread: Task = m.new_task(f"irq/{dev.irq}-{dev.name}"[:15], dev.cpu, "fifo", IRQ_THREAD_PRIO, kthread=True)
            self.thread.kind = "irq"
            self.thread.data = dev.irq
            self.thread.gen = _forced_thread(m, self, self.thread, cls)

        def start(self, cpu: CPU) -> int:
            self._fired = False
            return self.m.sc.primary_handler_ns  # irq_default_primary_handler()

        def end(self, cpu: CPU) -> int:
            self.masked = True  # IRQF_ONESHOT
            self.oneshot_held = True
            self.runthread = True
            self.m.wake(self.thread, cpu)
            return IRQ_WAKE_THREAD

    Forced.__name__ = Forced.__qualname__ = f"Forced{cls.__name__}"
    return Forced


def _forced_thread(m: SoftirqHost, line: Any, task: Task, cls: type) -> Generator:
    """irq_thread() with irq_forced_thread_fn(): the driver's handler, in the thread."""
    cpu = m.cpus[task.cpu]
    while True:
        if not line.runthread:
            yield BLOCK
            continue
        line.runthread = False
        yield from local_bh_disable(m, cpu, task)
        yield cls.start(line, cpu)  # the driver's handler: its cost
        cls.end(line, cpu)  # and its side effects (napi_schedule(), tasklet_schedule(), ...)
        line.thread_runs += 1
        # irq_finalize_oneshot(): unmask, unless the driver keeps its device masked (NAPI polling)
        line.oneshot_held = False
        napi = getattr(line, "napi", None)
        if napi is None or not napi.scheduled:
            line.unmask()
        task.bh -= 1
        yield from local_bh_enable(m, cpu, task)
