"""The CPUs a machine was booted to keep quiet: /proc/cmdline and /sys/devices/system/cpu/{isolated,nohz_full}.

Parameters read (Documentation/admin-guide/kernel-parameters.txt, v6.18):

- `isolcpus=[flag,...,]LIST`: flags `nohz`, `domain` (the default when none is given),
  `managed_irq` (kernel/sched/isolation.c, housekeeping_isolcpus_setup()).
- `nohz_full=LIST`: the tick stops while one task runs (implies rcu_nocbs= for those CPUs).
- `rcu_nocbs=LIST`: RCU callbacks run in rcuo kthreads, not in RCU_SOFTIRQ there. A bare
  `rcu_nocbs` (Linux >= 5.17) offloads none at boot and is ignored here.
- `irqaffinity=LIST`: the default smp_affinity of new IRQs: the CPUs outside it are kept free of
  device interrupts.

Everything after a bare `--` belongs to init, not the kernel (init/main.c, parse_args()), and is
not read.
"""

from __future__ import annotations

from dataclasses import dataclass

from irqlab.cpulist import parse_cpulist
from irqlab.errors import MissingSource
from irqlab.sources.fs import Roots, read_text

ISOLCPUS_FLAGS = ("nohz", "domain", "managed_irq")


@dataclass(frozen=True, slots=True)
class KernelIsolation:
    """What the kernel command line and sysfs declare; () where a parameter is absent."""

    isolcpus: tuple[int, ...] = ()
    isolcpus_flags: tuple[str, ...] = ()  # ("domain",) when isolcpus= gave none
    nohz_full: tuple[int, ...] = ()
    rcu_nocbs: tuple[int, ...] = ()
    irqaffinity: tuple[int, ...] = ()  # housekeeping CPUs for IRQs; () = not given
    sys_isolated: tuple[int, ...] = ()  # /sys/devices/system/cpu/isolated (isolcpus=domain)
    sys_nohz_full: tuple[int, ...] = ()  # /sys/devices/system/cpu/nohz_full (CONFIG_NO_HZ_FULL)

    @property
    def managed_irq_cpus(self) -> tuple[int, ...]:
        """isolcpus=managed_irq,LIST: the CPUs managed IRQs avoid while a housekeeping CPU of their mask is online."""
        return self.isolcpus if "managed_irq" in self.isolcpus_flags else ()

    def quiet_cpus(self, online: tuple[int, ...]) -> dict[int, tuple[str, ...]]:
        """CPU -> the declarations that mean it to be quiet ("isolcpus=managed_irq,domain", "nohz_full", ...)."""
        out: dict[int, list[str]] = {}

        def add(cpus: tuple[int, ...], why: str) -> None:
            for c in cpus:
                if why not in out.setdefault(c, []):
                    out[c].append(why)

        add(self.isolcpus, "isolcpus=" + ",".join(self.isolcpus_flags))
        add(self.sys_isolated, "isolated (sysfs)")
        add(self.nohz_full, "nohz_full")
        add(self.sys_nohz_full, "nohz_full (sysfs)")
        add(self.rcu_nocbs, "rcu_nocbs")
        if self.irqaffinity:
            add(tuple(c for c in online if c not in self.irqaffinity), "outside irqaffinity")
        return {c: tuple(v) for c, v in sorted(out.items())}


def parse_cmdline(text: str, path: str = "/proc/cmdline") -> KernelIsolation:
    """The isolation parameters of one command line; a bad CPU list is a ParseError quoting it."""
    values: dict[str, str] = {}
    for token in text.split():
        if token == "--":
            break
        key, eq, value = token.partition("=")
        if eq and key in ("isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity"):
            values[key] = value  # the kernel keeps the last one given
    flags: list[str] = []
    isol: tuple[int, ...] = ()
    if "isolcpus" in values:
        items = values["isolcpus"].split(",")
        while items and items[0] in ISOLCPUS_FLAGS:
            flags.append(items.pop(0))
        isol = parse_cpulist(",".join(items), path)
    return KernelIsolation(
        isolcpus=isol,
        isolcpus_flags=tuple(flags) or (("domain",) if isol else ()),
        nohz_full=parse_cpulist(values.get("nohz_full", ""), path),
        rcu_nocbs=parse_cpulist(values.get("rcu_nocbs", ""), path),
        irqaffinity=parse_cpulist(values.get("irqaffinity", ""), path),
    )


def sys_cpu_list(roots: Roots, name: str) -> tuple[int, ...]:
    path = roots.sys("devices", "system", "cpu", name)
    try:
        return parse_cpulist(read_text(path), str(path))
    except MissingSource:  # nohz_full: only with CONFIG_NO_HZ_FULL; isolated: Linux >= 4.9
        return ()


def read_kernel_isolation(roots: Roots) -> KernelIsolation:
    """/proc/cmdline and the two sysfs lists; a missing sysfs list is empty, a missing cmdline an error."""
    path = roots.proc("cmdline")
    got = parse_cmdline(read_text(path), str(path))
    return KernelIsolation(got.isolcpus, got.isolcpus_flags, got.nohz_full, got.rcu_nocbs, got.irqaffinity,
                           sys_cpu_list(roots, "isolated"), sys_cpu_list(roots, "nohz_full"))

