"""ctypes bindings the probe needs and the os module lacks: clock_nanosleep, mlockall."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# include/uapi/linux/time.h (v6.18): CLOCK_MONOTONIC = 1, TIMER_ABSTIME = 0x01.
CLOCK_MONOTONIC = 1
TIMER_ABSTIME = 1
# include/uapi/asm-generic/mman-common.h: MCL_CURRENT = 1, MCL_FUTURE = 2.
MCL_CURRENT = 1
MCL_FUTURE = 2


class Timespec(ctypes.Structure):
    """struct timespec on LP64 Linux: two longs."""

    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


LIBC = _libc()
# The measuring child has one thread, so releasing and retaking the GIL around the sleep (what
# CDLL does) is pure cost on the wake-up path; PyDLL keeps it. A signal still interrupts the
# sleep with EINTR and its Python handler runs when the call returns.
_PYLIBC = ctypes.PyDLL(ctypes.util.find_library("c") or "libc.so.6")
# clock_nanosleep returns the error number itself (not -1 and errno): POSIX, clock_nanosleep(3).
clock_nanosleep = _PYLIBC.clock_nanosleep
clock_nanosleep.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.POINTER(Timespec), ctypes.POINTER(Timespec))
clock_nanosleep.restype = ctypes.c_int


def mlockall() -> str | None:
    """Lock current and future pages in RAM; None on success, else the reason."""
    if LIBC.mlockall(MCL_CURRENT | MCL_FUTURE) == 0:
        return None
    return os.strerror(ctypes.get_errno())


def munlockall() -> None:
    LIBC.munlockall()


# include/uapi/linux/prctl.h: PR_SET_PDEATHSIG = 1.
PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int) -> None:
    """Have the kernel send signum to this process when its parent dies (prctl(2))."""
    LIBC.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
