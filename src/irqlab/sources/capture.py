"""Collect the raw bytes of every kernel file irqlab reads, for `irqlab snapshot -o DIR`.

A capture is the kernel's own text, byte for byte, under the same relative paths, so that
`--procfs DIR/proc --sysfs DIR/sys` reads it back through the very same parsers.
"""

from __future__ import annotations

import time
from pathlib import Path

from irqlab.errors import MissingSource, SourceError
from irqlab.model.capture import RawCapture
from irqlab.sources.fs import Roots, list_dir, read_bytes
from irqlab.sources.sysctl import KNOBS

# Counter files first: they are read back to back and stamped with one instant.
COUNTER_FILES: tuple[str, ...] = (
    "proc/interrupts",
    "proc/softirqs",
    "proc/stat",
    "proc/net/softnet_stat",
    "proc/uptime",
)
OTHER_FILES: tuple[str, ...] = (
    "proc/pressure/irq",
    "proc/sys/kernel/hostname",
    "proc/sys/kernel/osrelease",
    "proc/sys/kernel/arch",
    "proc/irq/default_smp_affinity",
    "sys/devices/system/cpu/possible",
    "sys/devices/system/cpu/online",
    "sys/devices/system/cpu/present",
) + tuple("proc/sys/" + knob.replace(".", "/") for knob in KNOBS)
PROC_IRQ_FILES = ("smp_affinity", "smp_affinity_list", "effective_affinity", "effective_affinity_list", "node", "spurious", "affinity_hint")
SYS_IRQ_FILES = ("actions", "chip_name", "hwirq", "name", "type", "wakeup", "per_cpu_count")
TASK_FILES = ("comm", "stat", "schedstat", "status")


def _path(roots: Roots, rel: str) -> Path:
    top, _, rest = rel.partition("/")
    return roots.proc(rest) if top == "proc" else roots.sys(rest)


def _irq_dirs(roots: Roots) -> list[str]:
    try:
        return sorted((n for n in list_dir(roots.proc("irq")) if n.isdigit()), key=int)
    except SourceError:
        return []


def collect(roots: Roots) -> RawCapture:
    """Read every file of a capture; missing ones are skipped, the rest recorded as skipped."""
    from irqlab.sources.tasks import read_tasks

    files: dict[str, bytes] = {}
    skipped: list[str] = []

    def grab(rel: str) -> None:
        try:
            files[rel] = read_bytes(_path(roots, rel))
        except MissingSource:
            pass
        except SourceError:
            skipped.append(rel)

    t0 = time.monotonic_ns()
    for rel in COUNTER_FILES:
        grab(rel)
    t1 = time.monotonic_ns()
    wall = time.time()
    for rel in OTHER_FILES:
        grab(rel)
    for irq in _irq_dirs(roots):
        for name in PROC_IRQ_FILES:
            grab(f"proc/irq/{irq}/{name}")
        for name in SYS_IRQ_FILES:
            grab(f"sys/kernel/irq/{irq}/{name}")
    tasks, _ = read_tasks(roots)
    for task in tasks:
        for name in TASK_FILES:
            grab(f"proc/{task.pid}/{name}")
    if "proc/interrupts" not in files:
        raise MissingSource(str(roots.proc("interrupts")), "no /proc/interrupts to capture")
    return RawCapture(files, (t0 + t1) // 2, wall, tuple(skipped))
