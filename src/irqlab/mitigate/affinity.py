"""IRQ affinity: /proc/irq/N/smp_affinity_list, read, validated, written; isolated CPUs.

kernel/irq/proc.c (v6.18) write_irq_affinity() refuses with EPERM when
irq_can_set_affinity_usr() is false: managed IRQs (IRQD_AFFINITY_MANAGED, e.g. the virtio
disk queue on this VM) and chips without irq_set_affinity. Older kernels returned EIO for the
same refusal (the check returned -EIO before it was changed to -EPERM), so both mean
"managed or unmovable". x86 vector allocation (arch/x86/kernel/apic/vector.c,
assign_vector_locked()) answers ENOSPC when the target CPUs have no free vector; EINVAL
means no online CPU in the mask.
"""

from __future__ import annotations

import errno
import os

from irqlab.cpulist import format_cpulist, parse_cpulist
from irqlab.errors import IrqlabError, MissingSource, ParseError
from irqlab.sources.fs import Roots
from irqlab.sources.host import read_cpus
from irqlab.sources.irqinfo import affinity_list_path, read_affinity_list


class MitigationError(IrqlabError):
    """A knob could not be written (or its value is refused before writing)."""


# errno -> what it means for an affinity write, for the one line a user reads.
AFFINITY_ERRORS: dict[int, str] = {
    errno.EPERM: "the kernel manages this IRQ's affinity (managed IRQ) or its chip cannot move it",
    errno.EIO: "the kernel refused the new affinity (EIO: a managed or unmovable IRQ on older kernels)",
    errno.ENOSPC: "no free interrupt vector on the target CPUs (vector space exhausted)",
    errno.EINVAL: "no online CPU in the requested list",
    errno.ENOENT: "the IRQ no longer exists",
}


def affinity_path(roots: Roots, irq: int) -> str:
    """The file an affinity is read from and written to (sources/irqinfo.py names it)."""
    return affinity_list_path(roots, irq)


def isolated_cpus(roots: Roots) -> tuple[int, ...]:
    """CPUs isolated at boot (isolcpus=); empty when none or the file is absent (< 4.9).

    A garbled list also reads as none, as before; an unreadable one raises (PermissionDenied).
    """
    try:
        return read_cpus(roots, "isolated")
    except (MissingSource, ParseError):
        return ()


def online_cpus(roots: Roots) -> tuple[int, ...]:
    """Online CPUs; MissingSource, PermissionDenied or ParseError when they cannot be had."""
    return read_cpus(roots, "online")


def validate_affinity(value: str, online: tuple[int, ...], isolated: tuple[int, ...], allow_isolated: bool = False,
                      what: str = "affinity") -> str:
    """The kernel's form of a CPU list, or MitigationError: non-empty, online, not isolated.

    `what` names the value in the message: an IRQ's "affinity", a thread's "thread affinity".
    """
    try:
        cpus = parse_cpulist(value, what)
    except ParseError as exc:
        raise MitigationError(f"{what} {value!r}: not a CPU list ({exc.message})") from None
    if not cpus:
        raise MitigationError(f"{what}: empty CPU list")
    offline = set(cpus) - set(online)
    if offline:
        raise MitigationError(f"{what} {value!r}: CPU {format_cpulist(offline)} not online")
    if not allow_isolated and set(cpus) & set(isolated):
        raise MitigationError(f"{what} {value!r}: CPU {format_cpulist(set(cpus) & set(isolated))} is isolated (isolcpus)")
    return format_cpulist(cpus)


def read_affinity(roots: Roots, irq: int) -> str:
    """The IRQ's affinity as the kernel printed it (the original a journal saves)."""
    return read_affinity_list(roots, irq)


def write_affinity(roots: Roots, irq: int, value: str) -> None:
    """Write a validated CPU list; errors become one MitigationError naming the cause."""
    path = affinity_path(roots, irq)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)  # O_TRUNC: as `echo >`; procfs/sysfs ignore it
        try:
            os.write(fd, value.encode() + b"\n")
        finally:
            os.close(fd)
    except OSError as exc:
        why = AFFINITY_ERRORS.get(exc.errno or 0, exc.strerror or str(exc))
        raise MitigationError(f"{path}: {why}") from None

