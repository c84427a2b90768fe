"""Softirq vectors, mirroring the kernel's softirq_to_name[] (kernel/softirq.c, v6.18); arch rows."""

from __future__ import annotations

from dataclasses import dataclass

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

# NR_SOFTIRQS, the last member of that enum in include/linux/interrupt.h (v6.18): how many
# vectors there are, so how many slots a per-vector table needs.
NR_SOFTIRQS: int = len(SOFTIRQ_NAMES)

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


@dataclass(frozen=True, slots=True)
class ArchRow:
    """One named (architecture) row of /proc/interrupts: the kernel's label and its meaning."""

    label: str  # what the kernel prints after the counts ("" for ERR and MIS: none)
    meaning: str  # what the row counts, for explanations


# The named rows of /proc/interrupts. x86 from arch/x86/kernel/irq.c arch_show_interrupts()
# (v6.18); arm64 IPIs from arch/arm64/kernel/smp.c ipi_types[] (v6.18).
ARCH_ROWS: dict[str, ArchRow] = {
    "NMI": ArchRow("Non-maskable interrupts", "non-maskable interrupts (perf, watchdog)"),
    "LOC": ArchRow("Local timer interrupts", "local APIC timer interrupts (the tick and hrtimers)"),
    "SPU": ArchRow("Spurious interrupts", "spurious interrupts"),
    "PMI": ArchRow("Performance monitoring interrupts", "performance-monitoring interrupts"),
    "IWI": ArchRow("IRQ work interrupts", "irq_work interrupts"),
    "RTR": ArchRow("APIC ICR read retries", "APIC ICR read retries"),
    "RES": ArchRow("Rescheduling interrupts", "rescheduling IPIs (a CPU woke a task on another CPU)"),
    "CAL": ArchRow("Function call interrupts", "function-call IPIs (RPS packet steering, smp_call_function)"),
    "TLB": ArchRow("TLB shootdowns", "TLB shootdown IPIs"),
    "TRM": ArchRow("Thermal event interrupts", "thermal event interrupts"),
    "THR": ArchRow("Threshold APIC interrupts", "threshold APIC interrupts"),
    "DFR": ArchRow("Deferred Error APIC interrupts", "deferred error APIC interrupts"),
    "MCE": ArchRow("Machine check exceptions", "machine-check exceptions"),
    "MCP": ArchRow("Machine check polls", "machine-check polls"),
    "HYP": ArchRow("Hypervisor callback interrupts", "hypervisor callback interrupts"),
    "ERR": ArchRow("", "IRQs the interrupt controller reported as errors"),
    "MIS": ArchRow("", "mis-routed IO-APIC interrupts"),
    "PIN": ArchRow("Posted-interrupt notification event", "posted-interrupt notifications"),
    "NPI": ArchRow("Nested posted-interrupt event", "nested posted-interrupt events"),
    "PIW": ArchRow("Posted-interrupt wakeup event", "posted-interrupt wakeups"),
    "IPI0": ArchRow("Rescheduling interrupts", "rescheduling IPIs (arm64)"),
    "IPI1": ArchRow("Function call interrupts", "function-call IPIs (arm64)"),
}


def arch_meaning(row: str, default: str) -> str:
    """What a named /proc/interrupts row counts, or `default` for a row this table lacks."""
    known = ARCH_ROWS.get(row)
    return known.meaning if known else default
