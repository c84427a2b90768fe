"""Action planner: a Storm and a view of the machine in, the exact writes to make out.

Pure. The ladder is configured per storm class: at `warn` a storm usually only alerts, at
`act` it may also move IRQs (affinity), switch network devices to polling (napi) and
coalesce their interrupts (coalesce). A protected IRQ (the timer, the console, the root
disk's queue, a user list) is never touched; everything refused is listed with the reason,
so the dry run shows exactly what would and would not be written. The writes are
model/knob.py's PlannedWrite, which the host (mitigate/) and the simulator (sim/policy.py)
carry out through one protocol, `Knobs`.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from irqlab.analysis.storm import CLASSES, Level, Storm
from irqlab.cpulist import format_cpulist
from irqlab.model.knob import PlannedWrite  # the one description of a knob write (host and model)
from irqlab.model.vectors import NET_VECTORS

# "threaded" (NAPI polls in napi/DEV-ID kthreads instead of NET_RX softirq) is in no default
# rung: it changes which CPU and priority receive work runs at; a config asks for it.
ACTIONS: tuple[str, ...] = ("alert", "affinity", "napi", "coalesce", "threaded")

DEFAULT_LADDER: dict[str, dict[str, tuple[str, ...]]] = {
    "irq": {"warn": ("alert",), "act": ("alert", "affinity", "napi", "coalesce")},
    "vector": {"warn": ("alert",), "act": ("alert",)},  # LOC/CAL/RES cannot be moved
    "cpu": {"warn": ("alert",), "act": ("alert", "affinity")},
    "softirq": {"warn": ("alert",), "act": ("alert", "napi", "coalesce")},
    "irqtime": {"warn": ("alert",), "act": ("alert", "affinity")},
    "softnet_drop": {"warn": ("alert",), "act": ("alert", "napi")},
    "softnet_squeeze": {"warn": ("alert",), "act": ("alert", "napi")},
    "spurious": {"warn": ("alert",), "act": ("alert", "affinity")},
}
assert set(DEFAULT_LADDER) == set(CLASSES)

# Never moved, whatever the config: the tick, the console, firmware events. Names are
# fnmatch patterns against the IRQ's action names (or its number).
DEFAULT_PROTECTED: tuple[str, ...] = ("timer", "ttyS*", "hvc*", "serial*", "i8042", "rtc*", "ACPI:*", "acpi")


@dataclass(frozen=True, slots=True)
class IrqView:
    """What the planner needs to know about one numbered IRQ."""

    irq: int
    names: tuple[str, ...]  # action names
    affinity: tuple[int, ...] | None
    movable: bool = True  # False: managed IRQ or read-only smp_affinity_list
    protected_reason: str = ""  # set by the daemon: "root disk queue", ...


@dataclass(frozen=True, slots=True)
class DeviceView:
    """A network device the polling and coalescing actions may touch."""

    name: str
    netns: str | None
    irqs: tuple[int, ...] = ()  # its queue IRQs (none for veth)
    napi: dict[str, str] = field(default_factory=dict)  # current napi_defer_hard_irqs, gro_flush_timeout, threaded
    coalesce_supported: bool | None = None  # None: not probed
    # Its NAPI instances and their own settings ("defer-hard-irqs", "gro-flush-timeout",
    # "irq-suspend-timeout", "threaded"), when the kernel has per-NAPI configuration (6.13+):
    # then the napi rung writes each instance, else the device's sysfs files.
    napis: tuple[tuple[int, dict[str, str]], ...] = ()


@dataclass(frozen=True, slots=True)
class MachineView:
    online_cpus: tuple[int, ...]
    isolated_cpus: tuple[int, ...] = ()
    irqs: dict[int, IrqView] = field(default_factory=dict)
    devices: tuple[DeviceView, ...] = ()


@dataclass(frozen=True, slots=True)
class PlanConfig:
    ladder: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=lambda: DEFAULT_LADDER)
    protected: tuple[str, ...] = ()  # user patterns (IRQ numbers or action names)
    sacrificial_cpus: tuple[int, ...] = ()  # () = the last online, non-isolated CPU
    napi_defer_hard_irqs: int = 2
    gro_flush_timeout_ns: int = 200_000
    rx_coalesce_usecs: int = 50


@dataclass(frozen=True, slots=True)
class Plan:
    storm_key: str
    level: Level
    actions: tuple[str, ...]
    alert: bool
    writes: tuple[PlannedWrite, ...]
    skipped: tuple[str, ...]  # "IRQ 26 (ttyS0): protected (console)"


def protected_reason(view: IrqView, user: tuple[str, ...]) -> str:
    """Why an IRQ must not be touched, or ''."""
    if view.protected_reason:
        return view.protected_reason
    names = view.names or (str(view.irq),)
    for pattern in DEFAULT_PROTECTED:
        if any(fnmatch.fnmatchcase(n, pattern) for n in names):
            return f"protected ({pattern}: timer, console or firmware)"
    for pattern in user:
        if pattern == str(view.irq) or any(fnmatch.fnmatchcase(n, pattern) for n in names):
            return f"protected by the user list ({pattern})"
    return ""


def sacrificial(view: MachineView, cfg: PlanConfig) -> tuple[int, ...]:
    """The CPUs storming IRQs are moved to: configured, or the last usable CPU."""
    usable = [c for c in view.online_cpus if c not in view.isolated_cpus]
    if cfg.sacrificial_cpus:
        return tuple(c for c in cfg.sacrificial_cpus if c in usable)
    return (usable[-1],) if usable else ()


def _label(v: IrqView) -> str:
    return f"IRQ {v.irq} ({', '.join(v.names) or '-'})"


def _move(v: IrqView, cpus: tuple[int, ...], reason: str, cfg: PlanConfig, skipped: list[str]) -> PlannedWrite | None:
    why = protected_reason(v, cfg.protected)
    if why:
        skipped.append(f"{_label(v)}: {why}")
        return None
    if not v.movable:
        skipped.append(f"{_label(v)}: managed IRQ, the kernel owns its affinity")
        return None
    if not cpus:
        skipped.append(f"{_label(v)}: no usable CPU to move it to")
        return None
    if v.affinity is not None and set(v.affinity) == set(cpus):
        skipped.append(f"{_label(v)}: already on CPU {format_cpulist(cpus)}")
        return None
    return PlannedWrite("affinity", f"IRQ {v.irq}", format_cpulist(cpus), reason, irq=v.irq)


def _storm_irqs(storm: Storm, view: MachineView) -> list[IrqView]:
    """The numbered IRQs an affinity action moves for this storm."""
    if storm.cls in ("irq", "spurious"):
        v = view.irqs.get(int(storm.subject)) if storm.subject.isdigit() else None
        return [v] if v else []
    if storm.cls in ("cpu", "irqtime") and storm.cpu is not None:
        return [v for v in view.irqs.values() if v.affinity is None or storm.cpu in v.affinity]
    # softirq / softnet storms: the queue IRQs of the devices in the view.
    return [view.irqs[i] for d in view.devices for i in d.irqs if i in view.irqs]


def _affinity(storm: Storm, view: MachineView, cfg: PlanConfig, skipped: list[str]) -> list[PlannedWrite]:
    if storm.cls in ("cpu", "irqtime") and storm.cpu is not None:
        # Move everything movable off the hot CPU, onto every other usable CPU.
        away = tuple(c for c in view.online_cpus if c != storm.cpu and c not in view.isolated_cpus)
        reason = f"{storm.key} {storm.value:.0f} {storm.unit}: move IRQs off CPU{storm.cpu}"
        targets = [(v, away) for v in _storm_irqs(storm, view)]
    else:
        cpus = sacrificial(view, cfg)
        reason = f"{storm.key} {storm.value:.0f} {storm.unit}: move to sacrificial CPU {format_cpulist(cpus) or '-'}"
        targets = [(v, cpus) for v in _storm_irqs(storm, view)]
    if not targets:
        skipped.append(f"affinity: {storm.key} has no numbered IRQ to move")
    out = [_move(v, cpus, reason, cfg, skipped) for v, cpus in targets]
    return [w for w in out if w is not None]


def _devices(storm: Storm, view: MachineView, skipped: list[str]) -> list[DeviceView]:
    if storm.cls == "irq":
        irq = int(storm.subject) if storm.subject.isdigit() else -1
        devs = [d for d in view.devices if irq in d.irqs]
    elif storm.cls == "softirq" and storm.subject not in NET_VECTORS:
        skipped.append(f"napi/coalesce: {storm.subject} is not a network softirq")
        return []
    else:
        devs = list(view.devices)
    if not devs:
        skipped.append(f"napi/coalesce: no configured network device concerns {storm.key}")
    return devs


def _device_or_each_napi(d: DeviceView, settings: tuple[tuple[str, str, int], ...], reason: str,
                         skipped: list[str]) -> list[PlannedWrite]:
    """Each NAPI instance's own setting where the kernel has them (6.13+), else the device's file.

    settings: (sysfs attribute, per-NAPI attribute, value).
    """
    out = []
    per_napi = [(i, c) for i, c in d.napis if all(a in c for _, a, _ in settings)]
    for sysfs_attr, napi_attr, value in settings:
        if per_napi:
            for napi_id, current in per_napi:
                if current.get(napi_attr) == str(value):
                    skipped.append(f"{d.name} napi {napi_id} {napi_attr}: already {value}")
                    continue
                out.append(PlannedWrite("napi", f"{d.name} napi {napi_id} {napi_attr}", str(value), reason,
                                        dev=d.name, attr=napi_attr, netns=d.netns, napi_id=napi_id))
        elif d.napi.get(sysfs_attr) == str(value):
            skipped.append(f"{d.name}/{sysfs_attr}: already {value}")
        else:
            out.append(PlannedWrite("napi", f"{d.name}/{sysfs_attr}", str(value), reason, dev=d.name, attr=sysfs_attr, netns=d.netns))
    return out


def _napi(storm: Storm, view: MachineView, cfg: PlanConfig, skipped: list[str]) -> list[PlannedWrite]:
    reason = f"{storm.key} {storm.value:.0f} {storm.unit}: switch to NAPI polling"
    settings = (("napi_defer_hard_irqs", "defer-hard-irqs", cfg.napi_defer_hard_irqs),
                ("gro_flush_timeout", "gro-flush-timeout", cfg.gro_flush_timeout_ns))
    return [w for d in _devices(storm, view, skipped) for w in _device_or_each_napi(d, settings, reason, skipped)]


def _threaded(storm: Storm, view: MachineView, cfg: PlanConfig, skipped: list[str]) -> list[PlannedWrite]:
    """NAPI polls move out of NET_RX softirq (and ksoftirqd) into napi/DEV-ID kthreads."""
    reason = f"{storm.key} {storm.value:.0f} {storm.unit}: poll NAPI in kernel threads (threaded NAPI)"
    return [w for d in _devices(storm, view, []) for w in _device_or_each_napi(d, (("threaded", "threaded", 1),), reason, skipped)]


def _coalesce(storm: Storm, view: MachineView, cfg: PlanConfig, skipped: list[str]) -> list[PlannedWrite]:
    reason = f"{storm.key} {storm.value:.0f} {storm.unit}: coalesce interrupts"
    out = []
    for d in _devices(storm, view, []):
        if d.coalesce_supported is False:
            skipped.append(f"{d.name}: the driver has no interrupt coalescing control (ethtool -C); skipped")
            continue
        attr = "rx_coalesce_usecs"
        out.append(PlannedWrite("coalesce", f"{d.name} {attr}", str(cfg.rx_coalesce_usecs), reason, dev=d.name, attr=attr, netns=d.netns))
    return out


BUILDERS = {"affinity": _affinity, "napi": _napi, "coalesce": _coalesce, "threaded": _threaded}


def plan(storm: Storm, view: MachineView, cfg: PlanConfig) -> Plan:
    """The ladder rung of this storm's class and level, turned into concrete writes."""
    rung = "act" if storm.level is Level.ACT else "warn"
    actions = tuple(cfg.ladder.get(storm.cls, DEFAULT_LADDER[storm.cls]).get(rung, ()))
    writes: list[PlannedWrite] = []
    skipped: list[str] = []
    seen: set[tuple[str, int | None, str | None, str | None, str | None, int | None]] = set()
    for action in actions:
        builder = BUILDERS.get(action)
        for w in builder(storm, view, cfg, skipped) if builder else ():
            key = (w.kind, w.irq, w.dev, w.attr, w.netns, w.napi_id)
            if key not in seen:
                seen.add(key)
                writes.append(w)
    return Plan(storm.key, storm.level, actions, "alert" in actions, tuple(writes), tuple(skipped))
