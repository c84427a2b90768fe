"""The measuring loop of one CPU, run in its own process (no GIL shared with other CPUs).

The child pins itself, takes the real-time policy, locks its memory, preallocates and
touches its sample buffer, turns the garbage collector off, says "ready", and waits for the
parent's "go" with a common start time. Then, like cyclictest's timerthread() (rt-tests
src/cyclictest/cyclictest.c), it sleeps to absolute deadlines with
clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) and records wake-up time minus deadline.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import resource
import signal
import time
from array import array
from dataclasses import dataclass

from irqlab.probe import libc

POLICIES = {"fifo": os.SCHED_FIFO, "rr": os.SCHED_RR, "other": os.SCHED_OTHER}
NS_PER_S = 1_000_000_000
MAX_BREACHES = 100_000  # wake-ups over --explain-over kept for attribution, per CPU


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What one child measures."""

    cpu: int
    interval_ns: int
    loops: int  # deadlines to sleep to (duration / interval, or -l)
    policy: str  # "fifo", "rr", "other"
    priority: int
    explain_over_ns: int | None  # keep (deadline, wake-up) of wake-ups later than this
    progress_every: int  # send the running max every this many samples; 0 = never


_stop = False


def _on_signal(signum: int, frame: object) -> None:
    global _stop
    _stop = True  # clock_nanosleep returns EINTR; the loop ends and the samples go home


def _setup(cfg: WorkerConfig) -> dict:
    """Pin, schedule, lock; returns what was obtained (the parent reports shortfalls once)."""
    os.sched_setaffinity(0, {cfg.cpu})
    got = {"policy": cfg.policy, "priority": cfg.priority, "sched_error": None}
    try:
        prio = cfg.priority if cfg.policy != "other" else 0
        os.sched_setscheduler(0, POLICIES[cfg.policy], os.sched_param(prio))
    except PermissionError as exc:
        got.update(policy="other", priority=0, sched_error=exc.strerror)
    got["lock_error"] = libc.mlockall()
    return got


def _loop(cfg: WorkerConfig, start_ns: int, buf: array, breaches: list, conn) -> tuple[int, int]:
    """Measure until cfg.loops deadlines passed or a signal came; returns (samples, missed)."""
    ts = libc.Timespec()
    pts = ctypes.byref(ts)
    sleep = libc.clock_nanosleep
    now_ns = time.monotonic_ns
    clock, abstime, eintr = libc.CLOCK_MONOTONIC, libc.TIMER_ABSTIME, errno.EINTR
    interval, loops, every = cfg.interval_ns, cfg.loops, cfg.progress_every
    over = cfg.explain_over_ns if cfg.explain_over_ns is not None else 1 << 62
    k = i = missed = mx = 0
    while k < loops and not _stop:
        k += 1
        deadline = start_ns + k * interval
        ts.tv_sec, ts.tv_nsec = divmod(deadline, NS_PER_S)
        # The clock is read first: the fewest bytecodes (cold in the cache after the sleep)
        # between the syscall's return and the reading, as cyclictest does.
        rc = sleep(clock, abstime, pts, None)
        woke = now_ns()
        while rc == eintr and not _stop:
            rc = sleep(clock, abstime, pts, None)
            woke = now_ns()
        if rc:
            break  # EINTR with a stop request (any other error cannot happen with valid args)
        lat = woke - deadline
        buf[i] = lat
        i += 1
        if lat > mx:
            mx = lat
        if lat > over and len(breaches) < MAX_BREACHES:
            breaches.append((deadline, woke))
        if lat >= interval:  # overran whole periods: skip their deadlines, as cyclictest does
            # Only deadlines of the run count: a late last wake-up overruns none of them.
            skip = min(lat // interval, loops - k)
            k += skip
            missed += skip
        if every and i % every == 0:
            conn.send(("progress", cfg.cpu, mx))
    return i, missed


def run_worker(cfg: WorkerConfig, conn, parent_pid: int, inherited: tuple = ()) -> None:
    """Child process entry: set up, wait for go, measure, send samples and metadata back.

    inherited: the parent's ends of the pipes, which fork copied into this child; closed so
    that a parent that dies leaves this child reading EOF instead of waiting forever.
    """
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    libc.die_with_parent(signal.SIGTERM)
    for c in inherited:
        c.close()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        return
    try:
        got = _setup(cfg)
        buf = array("q", bytes(8 * cfg.loops))  # preallocated and touched before mlock'd use
        breaches: list[tuple[int, int]] = []
        conn.send(("ready", cfg.cpu, os.getpid()))
        msg = conn.recv()
        if msg[0] != "go":
            return
        gc.disable()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        n, missed = _loop(cfg, msg[1], buf, breaches, conn)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        gc.enable()
        cpu_s = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        conn.send(("result", cfg.cpu, dict(got, pid=os.getpid(), samples=n, missed=missed,
                                           breaches=breaches, cpu_time_ns=int(cpu_s * NS_PER_S),
                                           stopped=_stop, end_ns=time.monotonic_ns())))
        conn.send_bytes(memoryview(buf)[:n].cast("B"))
    except EOFError:
        pass  # the parent went away before "go"
    except OSError as exc:
        try:
            conn.send(("error", cfg.cpu, f"CPU {cfg.cpu}: {exc.strerror or exc}"))
        except OSError:
            pass  # the parent is gone: nobody to tell
    finally:
        conn.close()
