"""Processes: by name (/proc/PID/comm, for the daemons irqlab must know about, irqbalance), and
the capabilities one holds (/proc/PID/status)."""

from __future__ import annotations

from irqlab.errors import SourceError
from irqlab.sources.fs import Roots, list_dir, read_text


def pids_named(roots: Roots, comm: str) -> tuple[int, ...]:
    """PIDs whose comm is exactly `comm` (a process that exits while read is skipped)."""
    out = []
    for name in list_dir(roots.procfs):
        if not (name.isascii() and name.isdigit()):
            continue
        try:
            if read_text(roots.proc(name, "comm")).strip() == comm:
                out.append(int(name))
        except SourceError:
            continue  # gone, or another user's process we may not read
    return tuple(sorted(out))


# Capability bits by number (include/uapi/linux/capability.h, v6.18; CAP_LAST_CAP is 40).
CAPABILITY_NAMES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)


def capability_set(roots: Roots, pid: int | str, field: str) -> int | None:
    """One capability set of a process as a bit mask ("CapPrm", "CapEff", ...), None if unreadable."""
    try:
        for line in read_text(roots.proc(str(pid), "status")).splitlines():
            key, _, value = line.partition(":")
            if key == field:
                return int(value.strip(), 16)
    except (SourceError, ValueError):
        pass
    return None


def capability_names(mask: int) -> tuple[str, ...]:
    """The names of the bits set in mask ("cap_41" for a bit newer than this table)."""
    return tuple(CAPABILITY_NAMES[b] if b < len(CAPABILITY_NAMES) else f"cap_{b}" for b in range(mask.bit_length()) if mask >> b & 1)
