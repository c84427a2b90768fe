"""Roots of /proc and /sys, and the one place where files are opened and OS errors translated.

A capture directory, or a --procfs/--sysfs root, may come from another machine, and anyone
may have written it. So every read here holds to three rules:

- below a root that is not the live /proc or /sys, a path never leads out of that root: a
  symbolic link (or a linked directory) whose target is outside is refused before anything
  is read from it. The live roots keep following links (/sys/class/net/eth0 ->
  ../../devices/...);
- only regular files are read, opened non-blocking, so a FIFO or a device is refused at once
  instead of hanging or streaming zeros (the live /proc files are regular, of size 0);
- a file larger than MAX_FILE_BYTES is refused before it is read.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from irqlab.errors import MissingSource, PermissionDenied, SourceError, UnsafeSource

MAX_FILE_BYTES = 64 << 20  # 64 MiB: /proc/interrupts of a 1152-CPU machine is 13 MB
_LIVE_ROOTS = ("/proc", "/sys")
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
_SMALL_READ = 1 << 16  # an 8192-CPU list like "0,2,4,..." is ~20 KiB; most files are < 64 B

# Roots that are not the live /proc and /sys, as the paths below them are spelt (str(root)),
# with their real path once known. Roots adds its roots on creation: the readers below take
# plain paths (built from a Roots, often as strings for speed), and find their root here.
_confined: dict[str, str | None] = {}
_prefixes: tuple[str, ...] = ()  # "root/" of each: one startswith() keeps live reads cheap


def confine(root: str | os.PathLike[str]) -> None:
    """Treat root as foreign: no path below it may lead out of it (the live roots are exempt)."""
    global _prefixes
    key = os.fspath(root)
    if key not in _LIVE_ROOTS and key not in _confined:
        _confined[key] = None
        _prefixes += (key.rstrip("/") + "/",)


@dataclass(frozen=True, slots=True)
class Roots:
    """Where /proc and /sys are: the live host, or a capture laid out like /."""

    procfs: Path = Path("/proc")
    sysfs: Path = Path("/sys")

    def __post_init__(self) -> None:
        confine(self.procfs)
        confine(self.sysfs)

    @classmethod
    def of(cls, procfs: str | os.PathLike[str] | None, sysfs: str | os.PathLike[str] | None) -> Roots:
        return cls(Path(procfs or "/proc"), Path(sysfs or "/sys"))

    @classmethod
    def capture(cls, directory: str | os.PathLike[str]) -> Roots:
        """Roots of a capture directory made by `irqlab snapshot -o DIR` (DIR itself confined too)."""
        base = Path(directory)
        confine(base)  # irqlab-capture.json lies beside proc/ and sys/
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


def _root_of(path: str) -> str | None:
    """The confined root that path lies below (the nearest), or None."""
    if path in _confined:
        return path
    if not path.startswith(_prefixes):
        return None
    end = len(path)
    while end > 0:
        if path[:end] in _confined:
            return path[:end]
        end = path.rfind("/", 0, end)
    return "/" if end == 0 and "/" in _confined else None


def _real_root(key: str) -> str:
    real = _confined.get(key)
    if real is None:
        real = os.path.realpath(key)
        if os.path.isdir(real):  # known for good only once it exists
            _confined[key] = real
    return real


def _inside(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip("/") + "/")


def _refuse_link(path: str) -> UnsafeSource:
    return UnsafeSource(path, "a symbolic link leading out of the capture: not followed")


def _open_beneath(path: str, root: str) -> int:
    """Open a file below a confined root, refusing every way out of it."""
    real_root = _real_root(root)
    try:
        fd = os.open(path, _OPEN_FLAGS | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        # The last component is a symbolic link: follow it only where it stays inside.
        target = os.path.realpath(path)
        if not _inside(target, real_root):
            raise _refuse_link(path) from None
        fd = os.open(target, _OPEN_FLAGS | os.O_NOFOLLOW)
    # A linked directory on the way was followed by open(): where did it lead? The
    # descriptor's own path tells, for the very file opened (no race); nothing is read yet.
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # no /proc on this machine
        real = os.path.realpath(path)
    if not _inside(real, real_root):
        os.close(fd)
        raise _refuse_link(path)
    return fd


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _check_regular(st: os.stat_result, path: str) -> None:
    if stat.S_ISREG(st.st_mode):
        if st.st_size > MAX_FILE_BYTES:
            raise UnsafeSource(path, f"file larger than {MAX_FILE_BYTES >> 20} MiB: not read")
        return
    if stat.S_ISDIR(st.st_mode):
        raise SourceError(path, os.strerror(errno.EISDIR))  # as open() said before
    kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a file")
    raise UnsafeSource(path, f"not a regular file ({kind}): not read")


def _open_regular(path: str) -> tuple[int, os.stat_result, bool]:
    """(fd, its stat, whether the path is below a confined root) of a regular file.

    Raises OSError (untranslated) for open failures, UnsafeSource or SourceError for refusals.
    """
    root = _root_of(path) if _confined else None
    fd = os.open(path, _OPEN_FLAGS) if root is None else _open_beneath(path, root)
    try:
        st = os.fstat(fd)
        _check_regular(st, path)
    except BaseException:
        os.close(fd)
        raise
    return fd, st, root is not None


def _read_open(fd: int, st: os.stat_result, path: str, confined: bool) -> bytes:
    """All bytes of an open regular file; closes fd."""
    with io.FileIO(fd, "rb", closefd=True) as f:
        if st.st_size == 0:
            # procfs files report size 0: read until EOF. FileIO.readall() reads into one
            # growing buffer: on the 13 MB /proc/interrupts of a 1152-CPU machine it is
            # several times faster than joining chunks (far fewer fresh pages to fault in).
            data = f.readall() or b""  # None: O_NONBLOCK and nothing to read yet
        else:
            data = f.read(st.st_size + 1)  # one read; a byte more tells a file that grew
            if len(data) > st.st_size:
                data += f.read(MAX_FILE_BYTES + 1 - len(data)) or b""
    # A live kernel file is what the kernel prints, whatever its length; below a foreign
    # root, a pseudo-file of size 0 (a mounted procfs, a FUSE file) is held to the limit too.
    if len(data) > MAX_FILE_BYTES and (confined or st.st_size):
        raise UnsafeSource(path, f"file larger than {MAX_FILE_BYTES >> 20} MiB: not read")
    return data


def read_bytes(path: Path | str) -> bytes:
    """Read a whole kernel file (a regular file, below its root, of at most 64 MiB)."""
    spelt = os.fspath(path)
    try:
        fd, st, confined = _open_regular(spelt)
        return _read_open(fd, st, spelt, confined)
    except OSError as exc:
        raise translate(exc, path) from None


def read_small(path: str) -> bytes:
    """Whole bytes of a small one-record kernel file (/proc/irq/N/*), in as few calls as can be.

    Raises OSError untranslated (a caller walking /proc/irq tells a freed IRQ from a missing
    file by errno), or SourceError/UnsafeSource for a file that is refused.
    """
    root = _root_of(path) if _confined else None
    if root is None:
        # The live /proc/irq and /sys/kernel/irq hold regular files only: thousands of them
        # on a big machine, so no fstat here (O_NONBLOCK and the cap below still hold).
        fd = os.open(path, _OPEN_FLAGS)
    else:
        fd = _open_beneath(path, root)
    try:
        if root is not None:
            _check_regular(os.fstat(fd), path)
        data = os.read(fd, _SMALL_READ)
        # seq_file and sysfs hand over a whole record in one read; a full buffer is the
        # only case that needs another.
        while len(data) % _SMALL_READ == 0 and data:
            more = os.read(fd, _SMALL_READ)
            if not more:
                break
            data += more
            if len(data) > MAX_FILE_BYTES:
                raise UnsafeSource(path, f"file larger than {MAX_FILE_BYTES >> 20} MiB: not read")
    finally:
        os.close(fd)
    return data


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
    """Names in a directory (below its root, like a file), with the same error translation."""
    spelt = os.fspath(path)
    root = _root_of(spelt) if _confined else None
    # A listing reads names only, and few are made: the real path is checked before it.
    if root is not None and not _inside(os.path.realpath(spelt), _real_root(root)):
        raise _refuse_link(spelt)
    try:
        return os.listdir(spelt)
    except OSError as exc:
        raise translate(exc, path) from None
