"""Preflight beyond irqmap.preflight(): x86 vector space per CPU (ENOSPC) and isolcpus=managed_irq. Pure.

Vector space. Moving an IRQ to a CPU needs a free vector there (model/irqvectors.py): the
kernel keeps the IRQ's vector when its current CPU is online and in the new mask, else takes
one on the CPU of the mask with the most available (kernel/irq/matrix.c matrix_find_best_cpu()),
and fails with ENOSPC when none has one (arch/x86/kernel/apic/vector.c, assign_vector_locked()).
`VectorBudget` replays that for a plan's writes in order, so the plan's own moves count: a
hundred IRQs moved onto one housekeeping CPU can exhaust it. The matrix comes from debugfs
(sources/vectors.py) when it is mounted, else `estimate_matrix()` counts from the map (each
non-managed IRQ takes a vector on its effective CPU, each managed IRQ reserves one on every
CPU of its mask; ESTIMATED_CAPACITY per CPU) and says "estimated".

isolcpus=managed_irq. A managed IRQ's affinity cannot be written, but with managed_irq the
kernel programs it onto the housekeeping CPUs of its mask while one of them is online, and
onto the whole mask only when none is (kernel/irq/manage.c irq_do_set_affinity(), v6.18:
HK_TYPE_MANAGED_IRQ). `managed_landing()` predicts where it may fire.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from irqlab.analysis.irqmap import IrqMap, IrqRow
from irqlab.cpulist import format_cpulist
from irqlab.model.irqvectors import CpuVectors, VectorMatrix

# Device vectors per x86 CPU: 32..235 is 204 vectors, less the system vectors inside that range
# (IA32_SYSCALL_VECTOR 0x80 and the legacy cleanup vector 0x32, "System: ...,50,128,..." in the
# debugfs file): 202. Idle machines show 197-201 available per CPU.
ESTIMATED_CAPACITY = 202


def is_x86(m: IrqMap) -> bool:
    """The map has the x86 local timer row (LOC): vector space is per CPU."""
    return any(not r.numbered and r.irq == "LOC" for r in m.rows)


def estimate_matrix(m: IrqMap) -> VectorMatrix | None:
    """Each online CPU's free vectors counted from the map (None off x86): an estimate, and said so."""
    if not is_x86(m):
        return None
    online = tuple(m.online or ())
    used = dict.fromkeys(online, 0)
    reserved = dict.fromkeys(online, 0)
    for r in m.rows:
        if not r.numbered:
            continue
        if r.managed:
            for c in r.affinity or ():
                if c in reserved:
                    reserved[c] += 1
        elif r.effective_affinity and len(r.effective_affinity) == 1 and r.effective_affinity[0] in used:
            used[r.effective_affinity[0]] += 1
    cpus = {c: CpuVectors(c, max(0, ESTIMATED_CAPACITY - used[c] - reserved[c]), reserved[c], 0, used[c]) for c in online}
    return VectorMatrix(cpus, f"estimated from /proc/interrupts and effective affinities ({ESTIMATED_CAPACITY} per CPU, "
                        "debugfs irq/domains/VECTOR not read)", estimated=True)


class VectorBudget:
    """Free vectors per CPU as a plan's affinity writes are made in order."""

    def __init__(self, matrix: VectorMatrix) -> None:
        self.matrix = matrix
        self.free = {c: v.available for c, v in matrix.cpus.items()}

    def take(self, row: IrqRow, target: Iterable[int]) -> str | None:
        """Allocate row's vector for a write of target; the predicted refusal (ENOSPC), or None."""
        cpus = [c for c in sorted(set(target)) if c in self.free]
        if not cpus:
            return None  # offline or unknown CPUs: irqmap.preflight() judges those
        eff = row.effective_affinity or ()
        current = eff[0] if len(eff) == 1 else None
        if current in cpus:
            return None  # the kernel keeps the vector it has
        best = max(cpus, key=lambda c: (self.free[c], -c))
        if self.free[best] <= 0:
            how = "estimated: " if self.matrix.estimated else ""
            return (f"no free interrupt vector on CPU {format_cpulist(cpus)} ({how}{self.matrix.source}): the kernel "
                    "refuses the write (ENOSPC, arch/x86/kernel/apic/vector.c assign_vector_locked())")
        self.free[best] -= 1
        if current is not None and current in self.free:
            self.free[current] += 1
        return None


def managed_landing(affinity: Collection[int], managed_irq_cpus: Collection[int], online: Collection[int]) -> tuple[tuple[int, ...], str]:
    """Where a managed IRQ with this mask may fire under isolcpus=managed_irq,LIST; and why."""
    mask = tuple(sorted(set(affinity)))
    if not managed_irq_cpus:
        return mask, "no isolcpus=managed_irq: its whole mask"
    hk = tuple(c for c in mask if c not in managed_irq_cpus)
    if set(hk) & set(online):
        return hk, (f"isolcpus=managed_irq keeps it on CPU {format_cpulist(hk)} of its mask "
                    "while one of them is online (kernel/irq/manage.c irq_do_set_affinity())")
    return mask, (f"its mask {format_cpulist(mask)} has no online housekeeping CPU: isolcpus=managed_irq cannot keep it "
                  "off the isolated CPUs (only moving the device's queues, or fewer queues, can)")
