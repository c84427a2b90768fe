"""The spurious-interrupt detector, note_interrupt() of kernel/irq/spurious.c (v6.18).

Every interrupt counts (since 5.13 only while the line has unhandled ones: "genirq: Reduce
irqdebug cacheline bouncing" returns early when irqs_unhandled is 0); an unhandled one (IRQ_NONE) counts as unhandled, the count restarting
at 1 when the previous unhandled one is more than HZ/10 old. At 100,000 interrupts the window
closes: more than 99,900 unhandled prints "irq N: nobody cared", disables the line
(IRQS_SPURIOUS_DISABLED) and starts poll_spurious_irqs() every POLL_SPURIOUS_IRQ_INTERVAL
(HZ/10, 100 ms).
"""

from __future__ import annotations

from typing import Protocol

from irqlab.sim.cpu import CPU
from irqlab.sim.line import IRQ_HANDLED, IRQ_WAKE_THREAD, DeviceLine, Line
from irqlab.sim.ports import Kernel

WINDOW = 100_000
LIMIT = 99_900
POLL_INTERVAL_MS = 100


class SpuriousHost(Kernel, Protocol):
    """What the detector asks of the machine beyond `Kernel`: every line, and a count of its polls."""

    lines: list[Line]
    spurious_polls: int


def note_interrupt(m: SpuriousHost, line: Line, ret: int) -> None:
    """Count one interrupt of line; disable the line when the window says nobody cared."""
    if ret != IRQ_HANDLED and ret != IRQ_WAKE_THREAD:
        jiffies = m.engine.now // m.tick_ns
        if jiffies > line.last_unhandled + m.sc.hz // 10:
            line.irqs_unhandled = 1
        else:
            line.irqs_unhandled += 1
        line.last_unhandled = jiffies
    if m.note_interrupt_skips_handled and not line.irqs_unhandled:
        return  # "if (likely(!desc->irqs_unhandled)) return;" (5.13+)
    line.irq_count += 1
    if line.irq_count < WINDOW:
        return
    line.irq_count = 0
    if line.irqs_unhandled > LIMIT:
        line.nobody_cared += 1
        line.disabled = True
        m.log(f"irq {line.irq}: nobody cared (try booting with the \"irqpoll\" option)")
        m.log(f"Disabling IRQ #{line.irq}")
        m.cpus[0].add_timer(m.engine.now + POLL_INTERVAL_MS * 1_000_000, poll_spurious_irqs, m)
    line.irqs_unhandled = 0


def poll_spurious_irqs(cpu: CPU, m: SpuriousHost) -> None:
    """poll_spurious_irqs(): try each disabled line's handlers, then re-arm the timer (which carries m)."""
    disabled = [ln for ln in m.lines if ln.disabled]
    for ln in disabled:
        m.spurious_polls += 1
        if isinstance(ln, DeviceLine):
            ln.sync()
            ln.queued = 0
    if disabled:
        cpu.add_timer(m.engine.now + POLL_INTERVAL_MS * 1_000_000, poll_spurious_irqs, m)


def unhandled_now(line: Line, n: int, share: float) -> bool:
    """Deterministic IRQ_NONE pattern: interrupt n is unhandled when floor(n*share) steps."""
    if share >= 1.0:
        return True
    return int(n * share) > int((n - 1) * share)
