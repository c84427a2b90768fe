"""A kernel thread's allowed CPUs (a napi/DEV-ID kthread): read, validated, set with sched_setaffinity(2).

The knob is named `sched_setaffinity:PID:COMM`. A pid is reused once its thread exits, so
every read and write first checks that PID is still a kernel thread (PF_KTHREAD in
/proc/PID/stat) whose comm is COMM; otherwise ThreadGone, and a restore counts the knob as
gone (the thread whose CPUs were saved no longer exists). The write holds a pidfd from before
the check to after the call: if the thread is still alive then, the pid named it throughout.

The kernel recreates a napi thread (a new pid, its default CPUs) when threaded NAPI is turned
off and on or the device goes down and up (net/core/dev.c: napi_stop_kthread() on disable since
commit 689883de94dd, napi_kthread_create() on enable; seen on 6.18), so a placement does not
survive either: the old pid is then gone, and an undo says so.
"""

from __future__ import annotations

import errno
import os
import re
import select

from irqlab.cpulist import format_cpulist, parse_cpulist
from irqlab.errors import MissingSource, SourceError
from irqlab.mitigate.affinity import MitigationError, validate_affinity
from irqlab.sources.fs import Roots, read_text
from irqlab.sources.tasks import PF_KTHREAD, parse_pid_stat, parse_status_allowed

# pid_max is at most 2^22 (include/linux/threads.h PID_MAX_LIMIT); a kthread comm is at most 63
# characters as /proc shows it (fs/proc/array.c proc_task_name(), 5.17+).
TARGET = re.compile(r"sched_setaffinity:([1-9][0-9]{0,6}):([^\n]{1,63})")


class ThreadGone(MitigationError):
    """The pid no longer names the kernel thread the knob was made for (exited, reused, not a kthread)."""


def thread_target(pid: int, comm: str) -> str:
    return f"sched_setaffinity:{pid}:{comm}"


def identify(roots: Roots, pid: int, comm: str) -> None:
    """Nothing if pid is a kernel thread named comm; ThreadGone otherwise."""
    try:
        now = read_text(roots.proc(str(pid), "comm")).rstrip("\n")
        stat = parse_pid_stat(read_text(roots.proc(str(pid), "stat")), str(roots.proc(str(pid), "stat")))
    except MissingSource:
        raise ThreadGone(f"pid {pid} ({comm}) no longer exists") from None
    if now != comm:
        raise ThreadGone(f"pid {pid} is now {now!r}, not {comm!r}: the thread no longer exists (its pid was reused)")
    if not int(stat["flags"]) & PF_KTHREAD:
        raise ThreadGone(f"pid {pid} ({comm}) is not a kernel thread (a process may give itself any name): refused")


def read_thread_affinity(roots: Roots, pid: int, comm: str) -> str:
    """The thread's allowed CPUs as a CPU list (/proc/PID/status Cpus_allowed_list)."""
    identify(roots, pid, comm)
    path = roots.proc(str(pid), "status")
    try:
        cpus = parse_status_allowed(read_text(path), str(path))
    except MissingSource:
        raise ThreadGone(f"pid {pid} ({comm}) no longer exists") from None
    if cpus is None:
        raise SourceError(str(path), "no Cpus_allowed_list")
    return format_cpulist(cpus)


def validate_thread_affinity(value: str, allowed: tuple[int, ...], isolated: tuple[int, ...] = ()) -> str:
    """The kernel's form of a CPU list, or MitigationError: non-empty, within `allowed`, none of `isolated`."""
    return validate_affinity(value, allowed, isolated, what="thread affinity")


def _exited(pidfd: int) -> bool:
    """A pidfd polls readable once its process has exited (pidfd_open(2))."""
    return bool(select.select([pidfd], [], [], 0)[0])


def write_thread_affinity(roots: Roots, pid: int, comm: str, value: str) -> None:
    """sched_setaffinity(pid, value) once pid is checked to be the kthread comm; live host only."""
    if not roots.is_live:
        raise MitigationError(f"pid {pid} ({comm}): a thread's CPUs are set with sched_setaffinity(2), on the live host only")
    cpus = parse_cpulist(value, "thread affinity")
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise ThreadGone(f"pid {pid} ({comm}) no longer exists") from None
    try:
        identify(roots, pid, comm)
        try:
            os.sched_setaffinity(pid, cpus)
        except ProcessLookupError:
            raise ThreadGone(f"pid {pid} ({comm}) no longer exists") from None
        except OSError as exc:
            # kernel/sched/syscalls.c: EINVAL for a kthread bound to its CPUs (PF_NO_SETAFFINITY,
            # e.g. ksoftirqd/N) or a list with no active CPU.
            why = ("the kernel refused it: no active CPU in the list, or the thread is bound to its CPUs"
                   if exc.errno == errno.EINVAL else exc.strerror or str(exc))
            raise MitigationError(f"pid {pid} ({comm}): {why}") from None
        if _exited(pidfd):
            raise ThreadGone(f"pid {pid} ({comm}) exited while its CPUs were set")
    finally:
        os.close(pidfd)
