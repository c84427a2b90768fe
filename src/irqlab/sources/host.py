"""Who the machine is (HostInfo): names from /proc/sys/kernel, CPU sets from /sys.

Every field is best effort: a header must never stop a sample, so a missing, unreadable
or garbled file leaves its field empty or None instead of raising.
"""

from __future__ import annotations

import os
from pathlib import Path

from irqlab.cpulist import parse_cpulist
from irqlab.errors import SourceError
from irqlab.model.snapshot import HostInfo
from irqlab.sources.fs import Roots, read_text


def _text(path: Path) -> str | None:
    """The stripped one-line text of a file, or None when it cannot be had."""
    try:
        return read_text(path).strip()
    except SourceError:
        return None


def read_cpus(roots: Roots, name: str) -> tuple[int, ...]:
    """CPU ids of /sys/devices/system/cpu/NAME: possible, online, isolated (drivers/base/cpu.c, "%*pbl").

    Strict, for a writer that must know: MissingSource, PermissionDenied or ParseError when the
    list cannot be had ("isolated" is absent before 4.9; an empty one means none).
    """
    path = roots.sys("devices", "system", "cpu", name)
    return parse_cpulist(read_text(path), str(path))


def _cpus(roots: Roots, name: str) -> tuple[int, ...] | None:
    """read_cpus(), or None when the list cannot be had (a header never stops a sample)."""
    try:
        return read_cpus(roots, name)
    except SourceError:
        return None


def _machine(roots: Roots) -> str:
    """uname -m: /proc/sys/kernel/arch where the kernel has it, else os.uname() when live."""
    # kernel.arch is init_uts_ns.name.machine (kernel/utsname_sysctl.c, added in 2022, 6.0);
    # a capture of an older kernel has no record of the machine, so it stays "".
    arch = _text(roots.proc("sys", "kernel", "arch"))
    if arch:
        return arch
    return os.uname().machine if roots.is_live else ""


def read_host(roots: Roots) -> HostInfo:
    """HostInfo of the machine under roots; missing files give "" or None, never an error."""
    return HostInfo(
        hostname=_text(roots.proc("sys", "kernel", "hostname")) or "",
        kernel=_text(roots.proc("sys", "kernel", "osrelease")) or "",
        machine=_machine(roots),
        # USER_HZ, the tick of /proc/stat and /proc/PID/stat. It is 100 on every Linux
        # architecture but alpha (1024), so this machine's value serves captures too.
        clk_tck=os.sysconf("SC_CLK_TCK"),
        possible_cpus=_cpus(roots, "possible"),
        online_cpus=_cpus(roots, "online"),
    )
