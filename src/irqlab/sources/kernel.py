"""What kind of kernel runs (KernelInfo): PREEMPT_RT, the preemption model, IRQ time accounting.

Best effort, like host.py: a header never stops a sample, so a file that cannot be had leaves
its field at "unknown". Files (each optional):

- /proc/sys/kernel/osrelease, /proc/sys/kernel/version (what `uname -r` and `uname -v` print;
  scripts/mkcompile_h puts "PREEMPT_RT", "PREEMPT_DYNAMIC" or "PREEMPT" into the version).
- /sys/kernel/realtime: "1" on a PREEMPT_RT kernel (kernel/ksysfs.c, realtime_show(), under
  CONFIG_PREEMPT_RT; PREEMPT_RT is in mainline from 6.12). Absent on any other kernel.
- /sys/kernel/debug/sched/preempt: "none voluntary (full) lazy", the active model in
  parentheses (kernel/sched/debug.c, sched_dynamic_show(), CONFIG_PREEMPT_DYNAMIC); debugfs,
  so root only and often unmounted.
- /proc/pressure/irq (CONFIG_IRQ_TIME_ACCOUNTING with PSI, Linux >= 6.1) and the irq column of
  /proc/stat (the Stat the sampler already read): with IRQ time accounting the column grows
  with every interrupt (irqtime_account_irq(), kernel/sched/cputime.c); without it the column
  stays 0 (the tick is charged to the task or to softirq, account_system_time()).
"""

from __future__ import annotations

import re

import numpy as np

from irqlab.errors import SourceError
from irqlab.model.snapshot import KernelInfo, Stat
from irqlab.sources.fs import Roots, read_text

_RELEASE = re.compile(r"^(\d+)\.(\d+)")
_ACTIVE = re.compile(r"\((\w+)\)")


def _text(path: object) -> str | None:
    try:
        return read_text(str(path)).strip()
    except SourceError:
        return None


def parse_release(release: str) -> tuple[int, int] | None:
    """(major, minor) of "6.18.44-fc-v1300"; None when it does not start with two numbers."""
    m = _RELEASE.match(release)
    return (int(m[1]), int(m[2])) if m else None


def parse_preempt(text: str) -> str | None:
    """The active model of /sys/kernel/debug/sched/preempt: "none voluntary (full) lazy" -> "full"."""
    m = _ACTIVE.search(text)
    return m[1] if m else None


def irq_time_accounting(stat: Stat | None, pressure_irq: bool) -> tuple[bool | None, str]:
    """Whether the kernel accounts IRQ time, and the evidence, from /proc/pressure/irq and /proc/stat."""
    if pressure_irq:
        return True, "/proc/pressure/irq exists (CONFIG_IRQ_TIME_ACCOUNTING)"
    if stat is None or stat.nfields < 6:
        return None, "/proc/stat not read"
    irq = int(np.sum(np.maximum(stat.times[:, stat.column("irq")], 0))) if stat.times.size else 0
    if irq == 0:
        return False, "/proc/stat irq column is 0 on every CPU since boot and /proc/pressure/irq is absent"
    return True, "/proc/stat irq column counts interrupt time"


def read_kernel(roots: Roots, stat: Stat | None = None) -> KernelInfo:
    """KernelInfo under roots; stat is the /proc/stat the sampler read (for the irq column)."""
    release = _text(roots.proc("sys", "kernel", "osrelease")) or ""
    version = _text(roots.proc("sys", "kernel", "version")) or ""
    realtime_file = _text(roots.sys("kernel", "realtime"))
    words = version.split()
    realtime, source = False, ""
    if realtime_file is not None and realtime_file.strip() == "1":
        realtime, source = True, "/sys/kernel/realtime"
    elif "PREEMPT_RT" in words:
        realtime, source = True, "uname -v"
    preempt_text = _text(roots.sys("kernel", "debug", "sched", "preempt"))
    preempt = parse_preempt(preempt_text) if preempt_text else None
    if preempt is None and realtime:
        preempt = "rt"
    pressure = roots.proc("pressure", "irq").is_file()
    acct, evidence = irq_time_accounting(stat, pressure)
    return KernelInfo(
        release=release,
        version=version,
        realtime=realtime,
        realtime_from=source,
        preempt=preempt,
        preempt_dynamic="PREEMPT_DYNAMIC" in words or preempt_text is not None,
        irq_time_accounting=acct,
        irq_time_evidence=evidence,
        release_tuple=parse_release(release),
    )
