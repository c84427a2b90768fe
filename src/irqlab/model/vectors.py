"""Softirq vectors, mirroring the kernel's softirq_to_name[] (kernel/softirq.c, v6.18)."""

from __future__ import annotations

# enum { HI_SOFTIRQ=0, TIMER_SOFTIRQ, NET_TX_SOFTIRQ, ... NR_SOFTIRQS } in
# include/linux/interrupt.h; the names are what /proc/softirqs prints.
SOFTIRQ_NAMES: tuple[str, ...] = (
    "HI",
    "TIMER",
    "NET_TX",
    "NET_RX",
    "BLOCK",
    "IRQ_POLL",
    "TASKLET",
    "SCHED",
    "HRTIMER",
    "RCU",
)

# Renamed in v4.5 (commit 511cbce2ff8b, "irq_poll: make blk-iopoll available outside
# the block layer"); older /proc/softirqs files print the old name for vector 5.
ALIASES: dict[str, str] = {"BLOCK_IOPOLL": "IRQ_POLL"}

SOFTIRQ_NR: dict[str, int] = {name: nr for nr, name in enumerate(SOFTIRQ_NAMES)}

# Vectors whose work is networking; doctor rules and the storm detector group them.
NET_VECTORS: frozenset[str] = frozenset({"NET_TX", "NET_RX"})


def canonical(name: str) -> str:
    """The current kernel's name for a vector name read from any kernel."""
    name = name.strip().upper()
    return ALIASES.get(name, name)


def vector_nr(name: str) -> int | None:
    """The vector number of a name (old or new), or None for a name this table lacks."""
    return SOFTIRQ_NR.get(canonical(name))

# What the named (architecture) rows of /proc/interrupts count, for explanations. x86 from
# arch/x86/kernel/irq.c arch_show_interrupts() (v6.18); arm64 IPIs from arch/arm64/kernel/smp.c.
ARCH_ROWS: dict[str, str] = {
    "NMI": "non-maskable interrupts (perf, watchdog)",
    "LOC": "local APIC timer interrupts (the tick and hrtimers)",
    "SPU": "spurious interrupts",
    "PMI": "performance-monitoring interrupts",
    "IWI": "irq_work interrupts",
    "RTR": "APIC ICR read retries",
    "RES": "rescheduling IPIs (a CPU woke a task on another CPU)",
    "CAL": "function-call IPIs (RPS packet steering, smp_call_function)",
    "TLB": "TLB shootdown IPIs",
    "TRM": "thermal event interrupts",
    "THR": "threshold APIC interrupts",
    "DFR": "deferred error APIC interrupts",
    "MCE": "machine-check exceptions",
    "MCP": "machine-check polls",
    "HYP": "hypervisor callback interrupts",
    "ERR": "IRQs the interrupt controller reported as errors",
    "MIS": "mis-routed IO-APIC interrupts",
    "PIN": "posted-interrupt notifications",
    "NPI": "nested posted-interrupt events",
    "PIW": "posted-interrupt wakeups",
    "IPI0": "rescheduling IPIs (arm64)",
    "IPI1": "function-call IPIs (arm64)",
}
