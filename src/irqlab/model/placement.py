"""A placement plan's writes as values: what `irqlab plan` computes and `irqlab apply` reads back.

In model/ because the planner (analysis/placement.py), the plan file's writer (outputs/) and
its loader (sources/plan_file.py) all need it and may not import one another.
"""

from __future__ import annotations

from dataclasses import dataclass

from irqlab.cpulist import format_cpulist, format_cpumask
from irqlab.model.knob import PlannedWrite

KINDS = ("affinity", "rps", "xps", "thread-affinity")


@dataclass(frozen=True, slots=True)
class PlaceWrite:
    """One knob a plan sets: an IRQ's affinity, a queue's rps_cpus / xps_cpus, a kthread's CPUs (CPU lists)."""

    kind: str  # "affinity", "rps", "xps", "thread-affinity"
    cpus: tuple[int, ...]
    why: str
    irq: int | None = None  # affinity
    dev: str | None = None  # rps, xps
    queue: int | None = None  # rx-N (rps), tx-N (xps)
    netns: str | None = None  # an `ip netns` name; None: irqlab's own namespace
    current: tuple[int, ...] | None = None  # what the map read (None: unknown)
    pid: int | None = None  # thread-affinity: the kernel thread, named by pid and comm (pids are reused)
    comm: str | None = None  # thread-affinity: "napi/eth0-8193"

    @property
    def target(self) -> str:
        """The knob as a person names it: "IRQ 41", "eth0 rx-0 rps_cpus (netns x)"."""
        if self.kind == "affinity":
            return f"IRQ {self.irq}"
        if self.kind == "thread-affinity":
            return f"thread {self.comm} (pid {self.pid})"
        q = f"{'rx' if self.kind == 'rps' else 'tx'}-{self.queue}"
        return f"{self.dev} {q} {self.kind}_cpus" + (f" (netns {self.netns})" if self.netns else "")

    @property
    def attr(self) -> str | None:
        """The file below /sys/class/net/DEV/ (rps, xps)."""
        if self.kind in ("affinity", "thread-affinity"):
            return None
        return f"queues/{'rx' if self.kind == 'rps' else 'tx'}-{self.queue}/{self.kind}_cpus"

    @property
    def path(self) -> str:
        """The file it writes, on a live host (a thread's CPUs: the sched_setaffinity(2) call)."""
        if self.kind == "affinity":
            return f"/proc/irq/{self.irq}/smp_affinity_list"
        if self.kind == "thread-affinity":
            return f"sched_setaffinity(pid {self.pid})"
        return f"/sys/class/net/{self.dev}/{self.attr}"

    def value(self) -> str:
        """The text written: a CPU list for an (IRQ or thread) affinity, a hex mask ("%*pb") for rps/xps_cpus."""
        return format_cpulist(self.cpus) if self.kind in ("affinity", "thread-affinity") else format_cpumask(self.cpus)

    def planned(self) -> PlannedWrite:
        """The write as the Knobs protocol (mitigate/knobs.py HostKnobs) carries it out."""
        if self.kind == "affinity":
            return PlannedWrite("affinity", self.target, self.value(), self.why, irq=self.irq)
        if self.kind == "thread-affinity":
            return PlannedWrite("thread", self.target, self.value(), self.why, pid=self.pid, comm=self.comm)
        return PlannedWrite("queue", self.target, self.value(), self.why, dev=self.dev, attr=self.attr, netns=self.netns)
