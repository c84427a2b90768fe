"""Network namespaces: which exist (with a process of each), and reading /proc/net and /sys/class/net in one.

Every process's /proc/PID/ns/net is a magic link whose text is "net:[INODE]" (fs/nsfs.c,
ns_get_name()); the inode names the namespace. `ip netns add NAME` bind-mounts a namespace on
/run/netns/NAME (iproute2 ip/ipnetns.c), so stat() of that file gives the same inode; such a
namespace may hold no process at all.

A namespace's /proc/net files are those of the reader's namespace, and its /sys/class/net is
that of the namespace which *mounted* sysfs (fs/sysfs/mount.c, v6.18: the superblock is tagged
with the mounter's netns). So read_in_netns() forks a child that joins the namespace with
setns(2), and, for /sys paths, takes a private mount namespace (unshare(CLONE_NEWNS)) and mounts
a fresh sysfs on /sys, as `ip netns exec` does (iproute2 lib/namespace.c, netns_switch()). The
caller's process never changes namespace. The bytes come back over a pipe, framed.

mitigate/netns.py enters namespaces with this module's setns_net() and private_sysfs().
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import pickle
import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from irqlab.errors import MissingSource, ParseError, PermissionDenied, SourceError, UnsafeSource
from irqlab.model.net import NetNamespace, RefusedProcess
from irqlab.sources.fs import Roots, list_dir, read_bytes, read_text
from irqlab.sources.procs import CAPABILITY_NAMES, capability_names, capability_set

NETNS_RUN_DIR = Path("/run/netns")
COMMS_KEPT = 3  # comms shown per namespace: enough to recognise a container
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_SLAVE = 1 << 19
MNT_DETACH = 2
_NS_LINK = re.compile(r"net:\[([0-9]+)\]\Z")
T = TypeVar("T")
_FRAME = struct.Struct("!BI")  # kind, payload length



@dataclass(frozen=True, slots=True)
class Namespaces:
    namespaces: tuple[NetNamespace, ...]
    denied: int  # processes whose ns link this user may not read (another user's, without root)
    refused: tuple[RefusedProcess, ...] = ()  # the first REFUSED_KEPT of them, named


@dataclass(frozen=True, slots=True)
class NetnsReads:
    """What read_each_netns() read, by namespace inode, and the namespaces it could not enter."""

    files: Mapping[int, Mapping[str, bytes | SourceError]]
    not_entered: tuple[tuple[NetNamespace, SourceError], ...]


# --- enumeration -----------------------------------------------------------------------------


def parse_ns_link(text: str, path: str) -> int:
    """The inode of a /proc/PID/ns/net link text "net:[4026531840]"."""
    m = _NS_LINK.match(text.strip())
    if m is None:
        raise ParseError(path, 1, text, "not a 'net:[INODE]' namespace link")
    return int(m.group(1))


def _named(run_dir: Path) -> dict[int, list[str]]:
    """Namespace inode -> names, from the bind mounts `ip netns add` made."""
    out: dict[int, list[str]] = {}
    try:
        names = sorted(os.listdir(run_dir))
    except OSError:
        return out  # no /run/netns: nobody named one
    for name in names:
        try:
            out.setdefault(os.stat(run_dir / name).st_ino, []).append(name)
        except OSError:
            continue  # removed meanwhile
    return out


def read_netns(roots: Roots, run_dir: Path = NETNS_RUN_DIR) -> Namespaces:
    """Every network namespace a process is in, or that /run/netns names; by lowest PID, named ones last."""
    members: dict[int, list[int]] = {}
    denied = 0
    refused: list[int] = []
    proc = str(roots.procfs)
    for pid in sorted(int(n) for n in list_dir(roots.procfs) if n.isascii() and n.isdigit()):
        path = f"{proc}/{pid}/ns/net"
        try:
            target = os.readlink(path)  # the link's text only; nothing is followed
        except OSError as exc:
            # proc_ns_readlink() (fs/proc/namespaces.c) answers EACCES both when the ptrace
            # access check refuses and when the process is gone (reaped since the listing,
            # get_proc_task() finds no task): only a process still there counts as denied.
            if exc.errno in (errno.EACCES, errno.EPERM) and os.path.lexists(f"{proc}/{pid}"):
                denied += 1
                if len(refused) < REFUSED_KEPT:
                    refused.append(pid)
            continue  # else exited since the listing, or a capture without ns/
        members.setdefault(parse_ns_link(target, path), []).append(pid)
    named = _named(run_dir)
    spaces = []
    for inode in sorted(members.keys() | named.keys(), key=lambda i: (i not in members, members.get(i, [0])[0], i)):
        pids = members.get(inode, [])
        names = tuple(named.get(inode, ()))
        spaces.append(
            NetNamespace(
                inode=inode,
                pid=pids[0] if pids else None,
                nprocs=len(pids),
                comms=tuple(c for pid in pids[:COMMS_KEPT] if (c := _comm(proc, pid)) is not None),
                names=names,
                ns_path=str(run_dir / names[0]) if names else f"{proc}/{pids[0]}/ns/net",
            )
        )
    return Namespaces(tuple(spaces), denied, tuple(_refused(roots, pid) for pid in refused))


REFUSED_KEPT = 5  # refused processes named in a finding; the rest are counted
CAP_SYS_PTRACE = CAPABILITY_NAMES.index("CAP_SYS_PTRACE")


def _refused(roots: Roots, pid: int) -> RefusedProcess:
    """Who was refused, and whether the capability check can be why.

    The capability module passes proc_ns_readlink()'s ptrace access check when the target's
    permitted set is a subset of the reader's, or when the reader holds CAP_SYS_PTRACE
    (security/commoncap.c cap_ptrace_access_check()). Only without CAP_SYS_PTRACE do the
    capabilities the target holds and the reader lacks explain a refusal; with it, another
    security module refused (Landlock, a BPF LSM program, SELinux, AppArmor).
    """
    theirs, mine = capability_set(roots, pid, "CapPrm"), capability_set(roots, "self", "CapEff")
    missing: tuple[str, ...] | None = None
    if theirs is not None and mine is not None:
        missing = () if mine >> CAP_SYS_PTRACE & 1 else capability_names(theirs & ~mine)
    return RefusedProcess(pid, _comm(str(roots.procfs), pid) or "", missing)


def _comm(proc: str, pid: int) -> str | None:
    try:
        return read_text(f"{proc}/{pid}/comm").rstrip("\n")
    except SourceError:
        return None


# --- entering one (in a forked child) --------------------------------------------------------


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def setns_net(fd: int) -> None:
    """Join the network namespace of `fd` (a /run/netns/NAME or /proc/PID/ns/net file)."""
    if hasattr(os, "setns"):  # Python >= 3.12
        os.setns(fd, CLONE_NEWNET)
    else:
        _check(_libc().setns(fd, CLONE_NEWNET), "setns")


def private_sysfs() -> None:
    """A mount namespace of our own with a sysfs mounted from the current network namespace."""
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS), "unshare mount namespace")
    # Keep our mounts from propagating back to the host, then put this namespace's sysfs on /sys.
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None), "make / rslave")
    remount_sysfs(libc)


def remount_sysfs(libc: ctypes.CDLL | None = None) -> None:
    """In a private mount namespace: put a sysfs of the current network namespace on /sys."""
    libc = libc or _libc()
    libc.umount2(b"/sys", MNT_DETACH)
    _check(libc.mount(b"sysfs", b"/sys", b"sysfs", 0, None), "mount sysfs")


_OK, _LISTING, _MISSING, _PERMISSION, _UNSAFE, _ERROR = range(6)
_KIND_OF: tuple[tuple[type[SourceError], int], ...] = (
    (MissingSource, _MISSING), (PermissionDenied, _PERMISSION), (UnsafeSource, _UNSAFE), (SourceError, _ERROR))
_ERROR_OF = {kind: cls for cls, kind in _KIND_OF}


def _frame(kind: int, payload: bytes) -> bytes:
    return _FRAME.pack(kind, len(payload)) + payload


def _error_frame(exc: SourceError) -> bytes:
    kind = next(k for cls, k in _KIND_OF if isinstance(exc, cls))
    return _frame(kind, exc.message.encode())


def _enter_error(exc: OSError, ns_path: str) -> SourceError:
    message = f"cannot enter this network namespace: {exc.strerror or exc}"
    if exc.errno in (errno.EPERM, errno.EACCES):
        return PermissionDenied(ns_path, message + " (needs CAP_SYS_ADMIN)")
    if exc.errno in (errno.ENOENT, errno.ESRCH):
        return MissingSource(ns_path, "namespace gone (its last process exited)")
    return SourceError(ns_path, message)


def _read_one(path: str) -> bytes:
    if os.path.isdir(path):
        return _frame(_LISTING, "\n".join(sorted(list_dir(path))).encode())
    return _frame(_OK, read_bytes(path))


def _enter(ns_path: str, expect_inode: int | None, sysfs: bool) -> None:
    """In a forked child: join the namespace (and mount its own sysfs on a private /sys)."""
    fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if expect_inode is not None and os.fstat(fd).st_ino != expect_inode:
            # The PID exited and was reused by a process of another namespace.
            raise OSError(errno.ESRCH, "namespace gone")
        setns_net(fd)
    finally:
        os.close(fd)
    if sysfs:
        private_sysfs()


def _child(ns_path: str, paths: Sequence[str], expect_inode: int | None) -> bytes:
    """Enter the namespace and read paths; every outcome framed (the enter frame first)."""
    try:
        _enter(ns_path, expect_inode, any(p == "/sys" or p.startswith("/sys/") for p in paths))
    except OSError as exc:
        return _error_frame(_enter_error(exc, ns_path))
    out = [_frame(_OK, b"")]
    for path in paths:
        try:
            out.append(_read_one(path))
        except SourceError as exc:
            out.append(_error_frame(exc))
    return b"".join(out)


def _unframe(data: bytes) -> list[tuple[int, bytes]]:
    frames, at = [], 0
    while at + _FRAME.size <= len(data):
        kind, size = _FRAME.unpack_from(data, at)
        at += _FRAME.size
        frames.append((kind, data[at : at + size]))
        at += size
    return frames


def _run_child(ns_path: str, paths: Sequence[str], expect_inode: int | None) -> bytes:
    return _forked(lambda: _child(ns_path, paths, expect_inode))


def _forked(work: Callable[[], bytes]) -> bytes:
    """work() run in a forked child; its bytes come back over a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 0
        try:
            os.close(r)
            data = work()
            view = memoryview(data)
            while view:
                view = view[os.write(w, view) :]
        except BaseException:  # noqa: BLE001 - the parent reports a child that said nothing
            status = 1
        finally:
            os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()  # before waitpid: a large reply would fill the pipe
    os.waitpid(pid, 0)
    return data


def read_in_netns(ns: int | str | os.PathLike[str], paths: Sequence[str], *,
                  expect_inode: int | None = None, procfs: Path = Path("/proc")) -> dict[str, bytes | SourceError]:
    """Read paths (/proc/net/..., /sys/class/net/...) as seen from inside network namespace `ns`.

    ns: a PID (its /proc/PID/ns/net), or a namespace file such as /run/netns/NAME.
    Each value is the file's bytes, a directory's sorted names one per line, or the
    SourceError that reading it raised there. Raises PermissionDenied when this process may
    not enter the namespace (setns needs CAP_SYS_ADMIN), MissingSource when it is gone.
    """
    ns_path = f"{procfs}/{ns}/ns/net" if isinstance(ns, int) else os.fspath(ns)
    frames = _unframe(_run_child(ns_path, paths, expect_inode))
    if not frames:
        raise SourceError(ns_path, "the reader in this network namespace died before answering")
    kind, payload = frames[0]
    if kind != _OK:
        raise _ERROR_OF.get(kind, SourceError)(ns_path, payload.decode("utf-8", "replace"))
    out: dict[str, bytes | SourceError] = {}
    for path, (kind, payload) in zip(paths, frames[1:]):
        out[path] = payload if kind in (_OK, _LISTING) else _ERROR_OF.get(kind, SourceError)(path, payload.decode("utf-8", "replace"))
    for path in paths[len(frames) - 1 :]:
        out[path] = SourceError(path, "the reader in this network namespace died before reading it")
    return out


def read_each_netns(namespaces: Iterable[NetNamespace], paths: Sequence[str]) -> NetnsReads:
    """read_in_netns() for each namespace; those that cannot be entered are listed, not raised."""
    files: dict[int, Mapping[str, bytes | SourceError]] = {}
    not_entered: list[tuple[NetNamespace, SourceError]] = []
    for space in namespaces:
        try:
            files[space.inode] = read_in_netns(space.ns_path, paths, expect_inode=space.inode)
        except SourceError as exc:
            not_entered.append((space, exc))
    return NetnsReads(files, tuple(not_entered))


def _each_child(spaces: Sequence[NetNamespace], fn: Callable[[], object]) -> bytes:
    """One child visits every namespace in turn: setns, a fresh sysfs, fn(); a frame each."""
    out: list[bytes] = []
    libc = _libc()
    try:
        _check(libc.unshare(CLONE_NEWNS), "unshare mount namespace")
        _check(libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None), "make / rslave")
    except OSError as exc:
        return b"".join(_error_frame(_enter_error(exc, ns.ns_path)) for ns in spaces)
    for ns in spaces:
        try:
            _enter(ns.ns_path, ns.inode, sysfs=False)
            remount_sysfs(libc)
        except OSError as exc:
            out.append(_error_frame(_enter_error(exc, ns.ns_path)))
            continue
        try:
            out.append(_frame(_OK, pickle.dumps(fn())))
        except SourceError as exc:
            out.append(_error_frame(exc))
    return b"".join(out)


def call_in_each_netns(spaces: Sequence[NetNamespace], fn: Callable[[], T]) -> list[T | SourceError]:
    """fn() run inside each namespace, by one forked child (one fork, one private mount namespace,
    then per namespace a setns and a fresh sysfs on /sys): fn() reads through sources/ as if
    this process lived there, and its value comes back pickled (the child is this very program,
    so the bytes are as trusted as the value). For each namespace in order: fn()'s value, or
    the SourceError that entering (PermissionDenied without CAP_SYS_ADMIN, MissingSource when
    it is gone) or fn raised."""
    if not spaces:
        return []
    frames = _unframe(_forked(lambda: _each_child(spaces, fn)))
    out: list[T | SourceError] = []
    for ns, (kind, payload) in zip(spaces, frames):
        if kind == _OK:
            out.append(pickle.loads(payload))
        else:
            out.append(_ERROR_OF.get(kind, SourceError)(ns.ns_path, payload.decode("utf-8", "replace")))
    for ns in spaces[len(frames):]:
        out.append(SourceError(ns.ns_path, "the reader of network namespaces died before reaching this one"))
    return out
