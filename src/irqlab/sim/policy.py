"""Policies on the simulated machine: a controller samples it and writes its knobs.

A controller (`irqlab watch` on the model is daemon/simwatch.py) is called every
`interval_ns` of simulated time with a fresh Snapshot and the machine's `ModelKnobs`, and
changes the machine only through it. ModelKnobs is the `Knobs` protocol of model/knob.py, the
same one mitigate/knobs.py's HostKnobs implements on a host: `apply(PlannedWrite)` saves the
value it replaces (in a list, the model's journal) and returns it, `restore()` writes the
saved originals back, newest first. What a write does to the model:

- affinity (`/proc/irq/N/smp_affinity_list`): the line's interrupts go to the first CPU of
  the list from its next interrupt on. On x86 the effective affinity is one CPU that the
  vector allocator picks from the mask (kernel/irq/matrix.c, irq_matrix_alloc(): the CPU with
  the most free vectors); the model takes the first. An interrupt already pending on the old
  CPU is handled there, as an already-latched vector is. CPUs the machine does not have are
  refused (kernel/irq/proc.c write_irq_affinity(): cpulist_parse() fails past nr_cpu_ids), and
  so is an empty list (the kernel would pick a default affinity; not modelled). A threaded
  handler's irq/N thread would follow on its next run (irq_thread_check_affinity()); tasks
  do not migrate in this model, so affinity of a threaded line is refused as not modelled.
- napi (`/sys/class/net/DEV/napi_defer_hard_irqs`, `gro_flush_timeout`): the NAPI device's
  values that napi_complete_done() reads at its next completion (net/core/dev.c); writing
  them to a device without NAPI (a netif_rx driver) has no effect and is refused as such.
- coalesce (ethtool rx-usecs): interrupt moderation lives in the NIC and is not modelled;
  every such write is refused with `NotModelled`.

Every write (a restore too) is logged into `machine.policy_log` with its simulated time and
the value it replaced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from irqlab.cpulist import format_cpulist, parse_cpulist
from irqlab.errors import IrqlabError, ParseError
from irqlab.model.knob import Knob, KnobUnsupported, PlannedWrite, Restored
from irqlab.sim.irqthread import ThreadedDevice
from irqlab.sim.line import DeviceLine
from irqlab.sim.napi import NapiNic, NetifRxNic

if TYPE_CHECKING:
    from irqlab.model.snapshot import Snapshot
    from irqlab.sim.ports import Controlled as Machine  # (the ports it writes, not the class: sim/ imports one way)

KINDS = ("affinity", "napi", "coalesce")
# What watch's rungs may write to a host's NAPI that the model's NapiNic has no state for.
UNMODELLED_NAPI_ATTRS = {
    "threaded": "threaded NAPI (a napi/DEV-ID kthread polling instead of NET_RX) is not modelled by the simulator",
    "irq-suspend-timeout": "IRQ suspension (epoll busy polling) is not modelled by the simulator",
}
NAPI_ATTRS = {"napi_defer_hard_irqs": ("defer_hard_irqs", 2**31 - 1), "gro_flush_timeout": ("gro_flush_timeout_ns", 10**10)}


class NotModelled(KnobUnsupported):
    """A write the kernel would take but whose effect the simulator does not model."""


class InvalidWrite(IrqlabError):
    """A write the kernel would refuse (or that names nothing on this machine)."""


def knob_path(w: PlannedWrite) -> str:
    """The file (or ethtool field) a host would write, as `irqlab watch` names it."""
    if w.kind == "affinity":
        return f"/proc/irq/{w.irq}/smp_affinity_list"
    if w.kind == "napi":
        return f"/sys/class/net/{w.dev}/{w.attr}"
    return f"ethtool:{w.dev}:{w.attr}"


@dataclass(frozen=True, slots=True)
class Applied:
    """One write made on the model: when, what, and the value it replaced."""

    time_ns: int
    write: PlannedWrite  # for a restore, the write with the original as its value
    target: str  # the file a host would write (knob_path)
    original: str
    restore: bool  # a write putting an earlier original back


@dataclass(frozen=True, slots=True)
class Saved:
    """The model's journal entry: a write made and the value to put back."""

    knob: Knob
    write: PlannedWrite
    original: str


@dataclass(frozen=True, slots=True)
class NetDevice:
    """A simulated network device as a mitigator would find it in /sys/class/net."""

    name: str
    irq: int
    napi: dict[str, str]  # napi_defer_hard_irqs, gro_flush_timeout (empty without NAPI)


class Controller(Protocol):
    """What Machine(controller=...) calls every interval_ns of simulated time."""

    interval_ns: int

    def step(self, snapshot: Snapshot, knobs: ModelKnobs) -> None: ...


class ModelKnobs:
    """The writable side of a simulated machine: the `Knobs` protocol, and its CPUs and devices."""

    def __init__(self, m: Machine) -> None:
        self.m = m
        self._masks: dict[int, tuple[int, ...]] = {}  # smp_affinity_list as written
        self.saved: list[Saved] = []  # oldest first; restored newest first

    @property
    def cpus(self) -> tuple[int, ...]:
        return tuple(range(self.m.sc.cpus))

    def devices(self) -> tuple[NetDevice, ...]:
        """The network devices (NAPI and netif_rx drivers) of the machine."""
        out = []
        for ln in self.m.lines:
            if isinstance(ln, NapiNic):
                out.append(NetDevice(ln.name, ln.nr, {a: str(getattr(ln.dev, f)) for a, (f, _) in NAPI_ATTRS.items()}))
            elif isinstance(ln, NetifRxNic):
                out.append(NetDevice(ln.name, ln.nr, {}))
        return tuple(out)

    # --- the Knobs protocol (model/knob.py) ----------------------------------------------

    def knob(self, write: PlannedWrite) -> Knob:
        return Knob(write.kind, knob_path(write))  # one network namespace on the simulated machine

    def read(self, write: PlannedWrite) -> str:
        """The knob's current value, as the host file would read."""
        if write.kind == "affinity":
            line = self._line(write.irq)
            return format_cpulist(self._masks.get(line.nr, (line.cpu,)))
        if write.kind == "napi":
            line, field, _ = self._napi(write)
            return str(getattr(line.dev, field))
        raise NotModelled(f"{knob_path(write)}: interrupt coalescing (ethtool -C rx-usecs) is not modelled by the simulator")

    def apply(self, write: PlannedWrite) -> str | None:
        """HostKnobs.apply() on the model: nothing twice, nothing unchanged, save then write."""
        knob = self.knob(write)
        if any(s.knob == knob for s in self.saved):
            return None  # already changed by us: the saved entry holds the true original
        original = self.read(write)
        if original == write.value:
            return None
        self.write(write)
        self.saved.append(Saved(knob, write, original))
        return original

    def restore(self, knobs: Collection[Knob] | None = None) -> list[Restored]:
        """The saved originals of these knobs (all when None) back, newest first."""
        out = []
        for s in reversed(list(self.saved)):
            if knobs is not None and s.knob not in knobs:
                continue
            self.saved.remove(s)
            try:
                self.write(dataclasses.replace(s.write, value=s.original), restore=True)
            except IrqlabError as exc:
                out.append(Restored(s.knob, s.original, s.write.value, "failed", str(exc)))
                continue
            out.append(Restored(s.knob, s.original, s.write.value, "restored"))
        return out

    def pending(self) -> list[Saved]:
        """What is changed and not yet restored, oldest first."""
        return list(self.saved)

    def write(self, w: PlannedWrite, restore: bool = False) -> str:
        """Write a knob, unjournaled; returns the value it replaced. Raises NotModelled or InvalidWrite."""
        original = self.read(w)
        if w.kind == "affinity":
            self._set_affinity(w)
        else:
            line, field, _ = self._napi(w)
            line.dev = dataclasses.replace(line.dev, **{field: self._napi_value(w)})
        # Into policy_log, not machine.log(): the summary prints those as the kernel's messages.
        self.m.policy_log.append(Applied(self.m.engine.now, w, knob_path(w), original, restore))
        return original

    # --- the writes -----------------------------------------------------------------------

    def _line(self, irq: int | None) -> DeviceLine:
        for ln in self.m.lines:
            if isinstance(ln, DeviceLine) and ln.nr == irq:
                return ln
        raise InvalidWrite(f"/proc/irq/{irq}/smp_affinity_list: no such IRQ on the simulated machine")

    def _set_affinity(self, a: PlannedWrite) -> None:
        line = self._line(a.irq)
        target = knob_path(a)
        try:
            cpus = parse_cpulist(a.value, target)
        except ParseError as exc:
            raise InvalidWrite(f"{target}: {a.value!r} is not a CPU list ({exc.message})") from None
        if not cpus:
            raise InvalidWrite(f"{target}: an empty CPU list (the kernel's default affinity) is not modelled")
        if cpus[-1] >= self.m.sc.cpus:
            raise InvalidWrite(f"{target}: CPU {cpus[-1]} does not exist (the machine has CPUs {format_cpulist(self.cpus)})")
        if isinstance(line, ThreadedDevice):
            raise NotModelled(f"{target}: IRQ {line.nr} is threaded and its irq/{line.nr} thread would have to "
                              "migrate; task migration is not modelled")
        self._masks[line.nr] = cpus
        line.cpu = cpus[0]  # DeviceLine._arrive() delivers to m.cpus[line.cpu] from now on

    def _napi(self, a: PlannedWrite) -> tuple[NapiNic, str, int]:
        spec = NAPI_ATTRS.get(a.attr or "")
        if spec is None and a.attr in UNMODELLED_NAPI_ATTRS:
            raise NotModelled(f"{knob_path(a)}: {UNMODELLED_NAPI_ATTRS[a.attr]}")
        if spec is None:
            raise InvalidWrite(f"{knob_path(a)}: not a NAPI attribute ({', '.join(NAPI_ATTRS)})")
        for ln in self.m.lines:
            if ln.name == a.dev and isinstance(ln, NapiNic):
                return ln, spec[0], spec[1]
            if ln.name == a.dev and isinstance(ln, NetifRxNic):
                raise NotModelled(f"{knob_path(a)}: {a.dev} has no NAPI instance (a netif_rx driver); the write has no effect")
        raise InvalidWrite(f"{knob_path(a)}: no NAPI network device {a.dev!r} on the simulated machine")

    @staticmethod
    def _napi_value(a: PlannedWrite) -> int:
        _, hi = NAPI_ATTRS[a.attr or ""]
        # net/core/net-sysfs.c napi_defer_hard_irqs_store() / gro_flush_timeout_store():
        # kstrtoul; the defer count is refused above S32_MAX. The timeout is an unsigned long
        # in the kernel; here it is capped at the scenario's own limit (10 s).
        if not a.value.isascii() or not a.value.isdigit() or int(a.value) > hi:
            raise InvalidWrite(f"{knob_path(a)}: {a.value!r} is not an integer from 0 to {hi}")
        return int(a.value)
