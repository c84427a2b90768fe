"""Roots of /proc and /sys, and the one place where OS read errors become irqlab errors."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from irqlab.errors import MissingSource, PermissionDenied, SourceError


@dataclass(frozen=True, slots=True)
class Roots:
    """Where /proc and /sys are: the live host, or a capture laid out like /."""

    procfs: Path = Path("/proc")
    sysfs: Path = Path("/sys")

    @classmethod
    def of(cls, procfs: str | os.PathLike[str] | None, sysfs: str | os.PathLike[str] | None) -> Roots:
        return cls(Path(procfs or "/proc"), Path(sysfs or "/sys"))

    @classmethod
    def capture(cls, directory: str | os.PathLike[str]) -> Roots:
        """Roots of a capture directory made by `irqlab snapshot -o DIR`."""
        base = Path(directory)
        return cls(base / "proc", base / "sys")

    @property
    def is_live(self) -> bool:
        return self.procfs == Path("/proc")

    def proc(self, *parts: str) -> Path:
        return self.procfs.joinpath(*parts)

    def sys(self, *parts: str) -> Path:
        return self.sysfs.joinpath(*parts)


def translate(exc: OSError, path: Path | str) -> SourceError:
    """Turn an OSError into the irqlab error a user can act on."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return MissingSource(str(path), "no such file")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermissionDenied(str(path), "permission denied (try as root)")
    if exc.errno == errno.EOPNOTSUPP:
        # e.g. /proc/pressure/irq when PSI is switched off at boot (psi=0): present, unusable.
        return MissingSource(str(path), "not supported by this kernel's configuration")
    return SourceError(str(path), exc.strerror or str(exc))


def read_bytes(path: Path | str) -> bytes:
    """Read a whole kernel file; procfs files report size 0, so read until EOF."""
    try:
        with open(path, "rb", buffering=0) as f:
            # FileIO.readall() reads until EOF into one growing buffer: on the 13 MB
            # /proc/interrupts of a 1152-CPU machine it is several times faster than joining
            # chunks (far fewer fresh pages to fault in).
            return f.readall()
    except OSError as exc:
        raise translate(exc, path) from None


def read_text(path: Path | str) -> str:
    """Read a kernel file as text (ASCII in practice; undecodable bytes are replaced)."""
    return read_bytes(path).decode("utf-8", "replace")


def read_optional(path: Path | str) -> str | None:
    """Text of a file that may legitimately be absent (older kernel); None if missing."""
    try:
        return read_text(path)
    except MissingSource:
        return None


def list_dir(path: Path | str) -> list[str]:
    """Names in a directory, with the same error translation."""
    try:
        return os.listdir(path)
    except OSError as exc:
        raise translate(exc, path) from None
