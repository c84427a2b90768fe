"""x86 interrupt vector space per CPU: what the kernel's vector matrix holds (kernel/irq/matrix.c).

Each x86 CPU has 256 vectors; 32-235 (FIRST_EXTERNAL_VECTOR .. FIRST_SYSTEM_VECTOR, v6.18
arch/x86/include/asm/irq_vectors.h) are for device IRQs, less the system vectors inside that
range. Moving an IRQ to a CPU needs a free vector there: irq_matrix_alloc() takes one on the
CPU of the new mask with the most available, and when none has one the write fails with
ENOSPC (arch/x86/kernel/apic/vector.c, assign_vector_locked(); "set affinity failed(-28)").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CpuVectors:
    """One row of the matrix: `| CPU | avl | man | mac | act |` of debugfs irq/domains/VECTOR."""

    cpu: int
    available: int  # free for a new allocation (managed reservations already taken out)
    managed: int = 0  # reserved for managed IRQs
    managed_allocated: int = 0
    allocated: int = 0  # allocated non-managed vectors


@dataclass(frozen=True, slots=True)
class VectorMatrix:
    cpus: Mapping[int, CpuVectors]
    source: str  # "/sys/kernel/debug/irq/domains/VECTOR", or how it was estimated
    estimated: bool = False
