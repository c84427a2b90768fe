"""Knob writes as values: the write a plan makes, the knob it changes, what a restore did.

One description of a knob write for every side: analysis/plan.py makes `PlannedWrite`s, and
the two implementations of the `Knobs` protocol carry them out, mitigate/knobs.py's
`HostKnobs` on this machine (through the journal) and sim/policy.py's `ModelKnobs` on the
simulated one. They live here, in model/, because the plan, the host writers and the
simulator may each import model/ and none of them may import another.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from irqlab.errors import IrqlabError


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    """One knob write: affinity of an IRQ, a device's napi attribute, or its coalescing.

    `target` is the label a person reads in a plan; the file (or ethtool field) written is
    the `Knob` a Knobs implementation names for it (`Knobs.knob(write)`).
    """

    kind: str  # "affinity", "napi", "coalesce"
    target: str  # "IRQ 41", "irqlab123v0/gro_flush_timeout", "eth0 rx_coalesce_usecs"
    value: str
    reason: str
    irq: int | None = None  # affinity
    dev: str | None = None  # napi, coalesce
    attr: str | None = None  # "napi_defer_hard_irqs", "gro_flush_timeout", "rx_coalesce_usecs"
    netns: str | None = None  # None: irqlab's own network namespace
    # napi: one NAPI instance (netdev netlink napi-set, Linux 6.13+; attr "defer-hard-irqs",
    # "gro-flush-timeout", "irq-suspend-timeout", "threaded"); None: the device's sysfs file.
    napi_id: int | None = None
    pid: int | None = None  # thread: a kernel thread's pid, and the comm it must still have
    comm: str | None = None


@dataclass(frozen=True, slots=True)
class Knob:
    """A knob as a machine names it: kind, the file (or `ethtool:DEV:FIELD`), namespace."""

    kind: str
    target: str  # "/proc/irq/41/smp_affinity_list", "/sys/class/net/eth0/gro_flush_timeout", "ethtool:eth0:rx_coalesce_usecs"
    netns: str | None = None

    @property
    def where(self) -> str:
        return self.target + (f" (netns {self.netns})" if self.netns else "")


@dataclass(frozen=True, slots=True)
class Restored:
    """What a restore did to one knob: the original it wrote back (or failed to)."""

    knob: Knob
    original: str
    changed_to: str  # the value irqlab had written
    outcome: str  # "restored", "gone" (the IRQ or device no longer exists), "failed"
    message: str = ""  # why it failed
    unrecorded: str = ""  # the original is back but the record of it could not be kept: why


class KnobUnsupported(IrqlabError):
    """A write this machine cannot take (no coalescing in the driver, not modelled): a skip, not a failure."""


class KnobRefused(IrqlabError):
    """A write refused or failed; the message names the knob (`where: why`)."""


@runtime_checkable
class Knobs(Protocol):
    """The writable side of a machine, as the watch core (daemon/watchcore.py) acts on it.

    `apply` saves the value it replaces before writing and writes a knob at most once until
    it is restored (a second write would take irqlab's own value for the original);
    `restore` writes the saved originals back, newest first. Failures are `KnobUnsupported`
    (skip it) or `KnobRefused`/other IrqlabError and OSError (an error naming the knob).
    """

    def knob(self, write: PlannedWrite) -> Knob:
        """The knob `write` changes, named as this machine names it."""
        ...

    def read(self, write: PlannedWrite) -> str:
        """The current value of the knob `write` names."""
        ...

    def apply(self, write: PlannedWrite) -> str | None:
        """Write it; the value it replaced, or None when nothing was written (already that
        value, or already changed by irqlab and not yet restored)."""
        ...

    def restore(self, knobs: Collection[Knob] | None = None) -> list[Restored]:
        """Write back the originals of these knobs (every saved one when None), newest first."""
        ...


def bounded_int(value: str, lo: int, hi: int, what: str) -> str:
    """The canonical text of a decimal integer in lo..hi to write to a knob, or IrqlabError
    naming `what` ("eth0/gro_flush_timeout = '1e9': must be an integer in 0..10000000000")."""
    if not (value.isascii() and value.isdigit()) or not lo <= int(value) <= hi:
        raise IrqlabError(f"{what} = {value!r}: must be an integer in {lo}..{hi}")
    return str(int(value))
