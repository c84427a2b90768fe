"""Take a Snapshot from a root (live or captured); the only place irqlab reads the clock."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from irqlab.errors import ParseError, SourceError, UnsafeSource, reason_of
from irqlab.model.capture import CAPTURE_META
from irqlab.model.snapshot import HostInfo, IrqInfo, Snapshot, TaskInfo, Unreadable
from irqlab.sources.fs import Roots, read_text
from irqlab.units import NS_PER_S

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class SampleSpec:
    """Which sources to read; the counters are always read, the slower walks on demand."""

    irqinfo: bool = True  # /proc/irq/N/* for every IRQ: thousands of opens on big machines
    tasks: bool = True  # the /proc/PID scan for ksoftirqd and irq/ threads
    strict: bool = True  # a ParseError raises (commands) or is recorded (daemons)


def _unreadable(source: str, exc: SourceError) -> Unreadable:
    return Unreadable(source, exc.path, reason_of(exc), str(exc))


def capture_time(roots: Roots) -> tuple[int, float] | None:
    """(monotonic ns, wall time) a capture was taken, from its metadata or its proc/uptime."""
    meta = roots.procfs.parent / CAPTURE_META
    try:
        data = json.loads(read_text(meta))  # fs: no FIFO, device or huge file
        return int(data["monotonic_ns"]), float(data.get("wall_time", 0.0))
    except (SourceError, ValueError, KeyError, TypeError):
        pass
    try:
        # /proc/uptime: "12345.67 23456.78"; 10 ms resolution, but on the same clock base
        # as CLOCK_BOOTTIME, so two captures of one boot difference correctly.
        uptime = float(read_text(roots.proc("uptime")).split()[0])
        return int(uptime * NS_PER_S), 0.0
    except (SourceError, ValueError, IndexError):
        return None


def take_snapshot(roots: Roots | None = None, spec: SampleSpec | None = None) -> Snapshot:
    """Read every source under roots into one Snapshot."""
    # Imported here so `irqlab --help` does not pay for numpy.
    from irqlab.sources.host import read_host
    from irqlab.sources.interrupts import read_interrupts
    from irqlab.sources.pressure import read_pressure
    from irqlab.sources.softirqs import read_softirqs
    from irqlab.sources.softnet import read_softnet
    from irqlab.sources.stat import read_stat
    from irqlab.sources.sysctl import read_sysctls

    roots = roots or Roots()
    spec = spec or SampleSpec()
    unreadable: list[Unreadable] = []

    def optional(source: str, reader: Callable[[Roots], _T]) -> _T | None:
        try:
            return reader(roots)
        except (ParseError, UnsafeSource) as exc:  # a garbled or hostile file is bad input
            if spec.strict:
                raise
            unreadable.append(_unreadable(source, exc))
        except SourceError as exc:
            unreadable.append(_unreadable(source, exc))
        return None

    # The counter files are read back to back and stamped with the midpoint, so that rates
    # between two snapshots use the instant the counters were actually read.
    t0 = time.monotonic_ns()
    interrupts = read_interrupts(roots)
    softirqs = optional("softirqs", read_softirqs)
    stat = optional("stat", read_stat)
    softnet = optional("softnet", read_softnet)
    t1 = time.monotonic_ns()
    taken_ns, wall = (t0 + t1) // 2, time.time()
    if not roots.is_live:
        stamp = capture_time(roots)
        taken_ns, wall = stamp if stamp else (0, 0.0)

    irqinfo: dict[int, IrqInfo] = {}
    if spec.irqinfo:
        from irqlab.sources.irqinfo import ALL_FIELDS, read_irqinfo

        # per_cpu_count repeats /proc/interrupts (1152 numbers per IRQ on big machines) and is
        # most of the walk's cost, so the snapshot leaves it out.
        numbered = [int(line.irq) for line in interrupts.lines if line.numbered]
        irqinfo, errs = read_irqinfo(roots, numbered, [f for f in ALL_FIELDS if f != "per_cpu_count"])
        unreadable.extend(errs)
    tasks: tuple[TaskInfo, ...] = ()
    if spec.tasks:
        from irqlab.sources.tasks import read_tasks

        tasks, errs = read_tasks(roots)
        unreadable.extend(errs)
    pressure = optional("pressure", read_pressure)
    host = optional("host", read_host) or HostInfo()
    return Snapshot(
        taken_ns=taken_ns,
        wall_time=wall,
        host=host,
        interrupts=interrupts,
        softirqs=softirqs,
        stat=stat,
        softnet=softnet,
        irqinfo=irqinfo,
        tasks=tasks,
        pressure=pressure,
        sysctl=read_sysctls(roots),
        unreadable=tuple(unreadable),
        origin="live" if roots.is_live else str(roots.procfs.parent),
    )


def sample(
    roots: Roots | None,
    interval_s: float,
    count: int | None,
    spec: SampleSpec | None = None,
    wait: Callable[[float], bool] | None = None,
) -> Iterator[Snapshot]:
    """Snapshots every interval_s on absolute deadlines (no drift); count=None runs forever.

    Yields count + 1 snapshots, so that count intervals (rates) come out of it, like mpstat.
    `wait(seconds)` replaces the sleep between snapshots; when it returns True (a daemon was
    told to stop) sampling ends at once instead of at the deadline.
    """
    step = int(interval_s * NS_PER_S)
    deadline: int | None = None
    n = 0
    while count is None or n <= count:
        snap = take_snapshot(roots, spec)
        yield snap
        n += 1
        if count is not None and n > count:
            break
        # Deadlines are anchored on the instant the first counters were read, so that the
        # first interval is as long as the others, and they do not drift.
        if deadline is None:
            deadline = snap.taken_ns if roots is None or roots.is_live else time.monotonic_ns()
        deadline += step
        delay = deadline - time.monotonic_ns()
        if delay > 0:
            if wait is None:
                time.sleep(delay / NS_PER_S)
            elif wait(delay / NS_PER_S):
                return
        else:
            deadline = time.monotonic_ns()  # fell behind (slow read): re-anchor, don't burst


def capture_root(directory: str | Path) -> Roots:
    """Roots of a capture directory laid out like / (DIR/proc, DIR/sys)."""
    return Roots.capture(directory)
