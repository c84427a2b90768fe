"""CPU lists ("0-3,8") and hex CPU masks ("00000000,ffffffff") as the kernel prints them."""

from __future__ import annotations

import re
from collections.abc import Iterable

from irqlab.errors import ParseError

# Upper bound on a CPU id we accept from text; NR_CPUS is at most 8192 on x86
# (arch/x86/Kconfig, MAXSMP), so anything above is a typo, not a machine.
MAX_CPU_ID = 8191
_ITEM = re.compile(r"([0-9]+)(?:-([0-9]+))?\Z")  # ASCII digits only: int() would take "+1", "1_0"
_HEX = re.compile(r"[0-9a-fA-F]{1,8}\Z")


def parse_cpulist(text: str, path: str = "<cpulist>", line: int = 1) -> tuple[int, ...]:
    """Parse "0-3,8,10-11" (as in smp_affinity_list) into sorted CPU ids."""
    text = text.strip()
    if not text:
        return ()
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        # The kernel's bitmap_parselist also accepts "0-7:2/4" (stride); keep it simple
        # and refuse it clearly rather than guess.
        m = _ITEM.match(part)
        if m is None:
            raise ParseError(path, line, part, "not a CPU list item")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if lo < 0 or hi < lo or hi > MAX_CPU_ID:
            raise ParseError(path, line, part, "CPU range out of order or too large")
        cpus.update(range(lo, hi + 1))
    return tuple(sorted(cpus))


def format_cpulist(cpus: Iterable[int]) -> str:
    """Format CPU ids as the kernel's %*pbl does: "0-3,8"."""
    ids = sorted(set(cpus))
    if not ids:
        return ""
    out: list[str] = []
    start = prev = ids[0]
    for cpu in ids[1:]:
        if cpu == prev + 1:
            prev = cpu
            continue
        out.append(f"{start}-{prev}" if prev != start else f"{start}")
        start = prev = cpu
    out.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ",".join(out)


def parse_cpumask(text: str, path: str = "<cpumask>", line: int = 1) -> tuple[int, ...]:
    """Parse a hex mask with 32-bit comma groups ("00000000,ffffffff") into CPU ids."""
    text = text.strip()
    if not text:
        return ()
    groups = text.split(",")
    value = 0
    for group in groups:
        if not _HEX.match(group):
            raise ParseError(path, line, group, "CPU mask group is not 1-8 hex digits")
        value = (value << 32) | int(group, 16)
    if value.bit_length() > MAX_CPU_ID + 1:
        raise ParseError(path, line, text[:20], "CPU mask wider than the largest NR_CPUS")
    cpus = []
    bit = 0
    while value:
        if value & 1:
            cpus.append(bit)
        value >>= 1
        bit += 1
    return tuple(cpus)


def format_cpumask(cpus: Iterable[int], ncpus: int | None = None) -> str:
    """Format CPU ids as the kernel's %*pb: comma-separated 32-bit hex groups."""
    ids = set(cpus)
    if any(c < 0 for c in ids):
        raise ValueError("CPU ids are never negative")
    top = max(ids) + 1 if ids else 1
    width = max(top, ncpus or 0)
    ngroups = (width + 31) // 32
    value = 0
    for cpu in ids:
        value |= 1 << cpu
    groups = [(value >> (32 * i)) & 0xFFFFFFFF for i in range(ngroups)]
    # The kernel trims the first group to the digits needed for nr_cpu_ids.
    first_digits = ((width - 32 * (ngroups - 1)) + 3) // 4
    parts = [f"{groups[-1]:0{first_digits}x}"] + [f"{g:08x}" for g in reversed(groups[:-1])]
    return ",".join(parts)
