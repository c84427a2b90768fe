"""Where each IRQ may land, where the kernel sends it, and where it did land: the placement picture.

Pure: built from one interval's Rates (the per-CPU deltas of /proc/interrupts) and the newer
snapshot's IrqInfo. `irqlab top`'s placement view (key m) and `irqlab report`'s placement grid
draw it; `irqlab map` is the static form with devices, queues and NUMA nodes.

An interrupt counted on a CPU outside the IRQ's effective affinity is a *stray*: the affinity
changed during the interval (the kernel moves an IRQ at its next interrupt, kernel/irq/migration.c
irq_move_masked_irq()), or the chip does not report an effective affinity per CPU (then the
effective list is the whole affinity and there are no strays).
"""

from __future__ import annotations

from dataclasses import dataclass

from irqlab.analysis.delta import Rates
from irqlab.analysis.irqmap import movable_of, parse_role


@dataclass(frozen=True, slots=True)
class Landing:
    """One numbered IRQ over one interval."""

    irq: int
    name: str
    queue: str | None  # "rx 0", "tx 3", "combined 1": from the action name
    rate_per_s: float
    affinity: tuple[int, ...] | None  # smp_affinity_list: where it may go
    effective: tuple[int, ...] | None  # effective_affinity_list: where the kernel sends it
    landed: dict[int, float]  # CPU -> interrupts/s in the interval (only CPUs that got some)
    movable: bool | None
    why: str | None  # why not movable

    @property
    def strays(self) -> tuple[int, ...]:
        """CPUs that took interrupts outside the effective (else the allowed) affinity."""
        where = self.effective or self.affinity
        if where is None:
            return ()
        return tuple(c for c in sorted(self.landed) if c not in where)


def landings(rates: Rates, *, top: int | None = None, active_only: bool = False) -> list[Landing]:
    """Every numbered IRQ of the interval, busiest first (then by number)."""
    irq = rates.interrupts
    if irq is None:
        return []
    infos = rates.after.irqinfo
    out = []
    for k, line in enumerate(irq.lines):
        if not line.numbered:
            continue
        n = int(line.irq)
        total = float(irq.total_rate[k]) if irq.total_rate[k] == irq.total_rate[k] else 0.0
        if active_only and total <= 0:
            continue
        info = infos.get(n)
        row = irq.rate[k]
        landed = {cpu: float(v) for cpu, v in zip(irq.cpus, row.tolist()) if v == v and v > 0}
        actions = (info.actions if info and info.actions else None) or line.actions
        role = next((r for r in (parse_role(a) for a in actions) if r), None)
        movable, why = movable_of(info, "MSI" in (line.chip or ""))
        out.append(Landing(
            irq=n, name=", ".join(actions) or line.name, queue=f"{role[0]} {role[1]}" if role else None,
            rate_per_s=total, affinity=info.affinity if info else None,
            effective=info.effective_affinity if info else None, landed=landed, movable=movable, why=why,
        ))
    out.sort(key=lambda r: (-r.rate_per_s, r.irq))
    return out[:top] if top is not None else out
