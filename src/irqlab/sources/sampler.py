"""The Sampler: the one owner of gathering (which sources, how often, each one's status) and of the clock."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from irqlab.errors import ParseError, SourceError, UnsafeSource, reason_of
from irqlab.model.snapshot import HostInfo, IrqInfo, Snapshot, SourceStatus, TaskInfo
from irqlab.model.snapshot_dir import CAPTURE_META
from irqlab.model.unreadable import Unreadable
from irqlab.sources.fs import Roots, read_text
from irqlab.units import NS_PER_S

if TYPE_CHECKING:  # the network model is imported only by a Sampler that reads it
    from irqlab.model.net import ThreadSched

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class SampleSpec:
    """Which sources to read, and how often; the counters are always read, the slower walks on demand."""

    irqinfo: bool = True  # /proc/irq/N/* for every IRQ: thousands of opens on big machines
    tasks: bool = True  # the /proc/PID scan for ksoftirqd and irq/ threads
    strict: bool = True  # a ParseError raises (commands) or is recorded (daemons)
    net: bool = False  # /proc/net and /sys/class/net: devices, MIB counters, UDP sockets; NAPI over netlink
    netns: bool = True  # with net: every other network namespace too (needs root to enter)
    threads: bool = False  # every thread's schedstat: who waited for a CPU
    # The counter files are re-read every sample; a source named here only when this many
    # seconds have passed since it was last read (`top` re-reads /proc/irq/N every 10 s).
    refresh: Mapping[str, float] = field(default_factory=dict)
    # Sources whose failure raises even when not strict: without /proc/interrupts there is
    # nothing to show. The exporter requires none (each failure is a series of its own).
    required: tuple[str, ...] = ("interrupts",)


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


def capture_stamp(roots: Roots, name: str) -> int | None:
    """When part `name` of a capture was read (its meta file's "stamps"), or None."""
    try:
        value = json.loads(read_text(roots.procfs.parent / CAPTURE_META)).get("stamps", {}).get(name)
        return int(value) if value is not None else None
    except (SourceError, ValueError, TypeError, AttributeError):
        return None


@dataclass(slots=True)
class _Kept:
    value: object
    read_ns: int
    unreadable: tuple[Unreadable, ...]


def _found_or_raise(got: tuple[_T, list[Unreadable]]) -> tuple[_T, list[Unreadable]]:
    """A walk that found nothing at all and hit a problem failed (its status says so)."""
    value, problems = got
    if not value and problems:
        first = problems[0]
        raise SourceError(first.path, first.message.removeprefix(first.path + ": "))
    return got


class Sampler:
    """The one owner of gathering: reads every source a SampleSpec names, on one clock.

    - The counters (/proc/interrupts, softirqs, stat, softnet_stat) are read back to back and
      stamped with the midpoint of the clock around them, so that rates between two
      snapshots use the instant the counters were actually read.
    - Each source gets a SourceStatus (success, duration, error), kept in Snapshot.statuses,
      as node_exporter's collector framework reports each collector.
    - Slow sources are re-read only when their refresh period has passed; meanwhile their last
      value (and the problems it had) is carried, marked `reused`.
    - `on_status(status, was_failing)` is told when a source starts failing (or fails
      differently) and when it recovers, once, not every sample.

    `clock` gives monotonic nanoseconds; tests inject one so that durations are fixed.
    """

    def __init__(self, roots: Roots | None = None, spec: SampleSpec | None = None, *,
                 clock: Callable[[], int] = time.monotonic_ns,
                 on_status: Callable[[SourceStatus, bool], None] | None = None) -> None:
        self.roots = roots or Roots()
        self.spec = spec or SampleSpec()
        self.clock = clock
        self.on_status = on_status
        self._kept: dict[str, _Kept] = {}
        self._failing: dict[str, str] = {}

    # --- one sample ------------------------------------------------------------------------

    def take(self) -> Snapshot:
        """Read every source of the spec into one Snapshot."""
        statuses: list[SourceStatus] = []
        unreadable: list[Unreadable] = []
        spec, roots = self.spec, self.roots

        def read(source: str, reader: Callable[[], _T]) -> _T | None:
            t0 = self.clock()
            try:
                value = reader()
            except (ParseError, UnsafeSource) as exc:  # a garbled or hostile file is bad input
                self._status(statuses, SourceStatus(source, (self.clock() - t0) / NS_PER_S, False, str(exc)))
                if spec.strict or source in spec.required:
                    raise
                unreadable.append(_unreadable(source, exc))
                return None
            except SourceError as exc:
                self._status(statuses, SourceStatus(source, (self.clock() - t0) / NS_PER_S, False, str(exc)))
                if source in spec.required:
                    raise
                unreadable.append(_unreadable(source, exc))
                return None
            self._status(statuses, SourceStatus(source, (self.clock() - t0) / NS_PER_S, True))
            return value

        def slow(source: str, reader: Callable[[], tuple[_T, list[Unreadable]]], default: _T) -> _T:
            """A source kept between samples until its refresh period passes."""
            now = self.clock()
            kept = self._kept.get(source)
            period = spec.refresh.get(source, 0.0)
            if kept is not None and period > 0 and now - kept.read_ns < period * NS_PER_S:
                statuses.append(SourceStatus(source, 0.0, True, reused=True))
                unreadable.extend(kept.unreadable)
                return kept.value  # type: ignore[return-value]
            got = read(source, lambda: _found_or_raise(reader()))
            if got is None:
                return default
            value, problems = got
            unreadable.extend(problems)
            self._kept[source] = _Kept(value, now, tuple(problems))
            return value

        # Imported here so `irqlab --help` does not pay for numpy.
        from irqlab.sources.host import read_host
        from irqlab.sources.interrupts import read_interrupts
        from irqlab.sources.pressure import read_pressure
        from irqlab.sources.softirqs import read_softirqs
        from irqlab.sources.softnet import read_softnet
        from irqlab.sources.stat import read_stat
        from irqlab.sources.sysctl import read_sysctls

        t0 = self.clock()
        interrupts = read("interrupts", lambda: read_interrupts(roots))
        softirqs = read("softirqs", lambda: read_softirqs(roots))
        stat = read("stat", lambda: read_stat(roots))
        softnet = read("softnet", lambda: read_softnet(roots))
        t1 = self.clock()
        taken_ns, wall = (t0 + t1) // 2, time.time()
        if not roots.is_live:
            stamp = capture_time(roots)
            taken_ns, wall = stamp if stamp else (0, 0.0)

        irqinfo: dict[int, IrqInfo] = {}
        if spec.irqinfo and interrupts is not None:
            from irqlab.sources.irqinfo import ALL_FIELDS, read_irqinfo

            # per_cpu_count repeats /proc/interrupts (1152 numbers per IRQ on big machines) and
            # is most of the walk's cost, so the snapshot leaves it out.
            numbered = [int(line.irq) for line in interrupts.lines if line.numbered]
            fields = [f for f in ALL_FIELDS if f != "per_cpu_count"]
            irqinfo = slow("irqinfo", lambda: read_irqinfo(roots, numbered, fields), {})
        tasks: tuple[TaskInfo, ...] = ()
        if spec.tasks:
            from irqlab.sources.tasks import read_tasks

            tasks = slow("tasks", lambda: read_tasks(roots), ())
        net = None
        if spec.net:
            from irqlab.sources.netstate import read_net_state

            net = slow("net", lambda: (read_net_state(roots, walk=spec.netns), []), None)
            if net is not None and net.views and net.views[0].napi_note:
                # No netdev netlink family (Linux < 6.9), or a capture: not a failure, the
                # per-NAPI part is absent and the status says why.
                statuses.append(SourceStatus("napi", 0.0, True, net.views[0].napi_note))
        threads: tuple[ThreadSched, ...] = ()
        threads_ns: int | None = None
        if spec.threads:
            from irqlab.sources.threads import read_threads

            t_a = self.clock()
            threads = slow("threads", lambda: (read_threads(roots), []), ())
            threads_ns = (t_a + self.clock()) // 2 if roots.is_live else capture_stamp(roots, "threads")
            kept = self._kept.get("threads")
            if roots.is_live and kept is not None and statuses[-1].reused:
                threads_ns = kept.read_ns
        pressure = slow("pressure", lambda: (read_pressure(roots), []), None)
        host = slow("host", lambda: (read_host(roots), []), None) or HostInfo()
        from irqlab.sources.kernel import read_kernel

        kernel = slow("kernel", lambda: (read_kernel(roots, stat), []), None)
        no_sysctl: dict[str, int] = {}
        sysctl = slow("sysctl", lambda: (read_sysctls(roots), []), no_sysctl)
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
            sysctl=sysctl,
            unreadable=tuple(unreadable),
            origin="live" if roots.is_live else str(roots.procfs.parent),
            net=net,
            threads=threads,
            threads_ns=threads_ns,
            statuses=tuple(statuses),
            kernel=kernel,
        )

    def _status(self, statuses: list[SourceStatus], status: SourceStatus) -> None:
        statuses.append(status)
        was = self._failing.get(status.source)
        if not status.success and was != status.error:
            self._failing[status.source] = status.error
            if self.on_status:
                self.on_status(status, was is not None)
        elif status.success and was is not None:
            del self._failing[status.source]
            if self.on_status:
                self.on_status(status, True)

    # --- a sequence ------------------------------------------------------------------------

    def run(self, interval_s: float, count: int | None, wait: Callable[[float], bool] | None = None) -> Iterator[Snapshot]:
        """Snapshots every interval_s on absolute deadlines (no drift); count=None runs forever.

        Yields count + 1 snapshots, so that count intervals (rates) come out of it, like mpstat.
        `wait(seconds)` replaces the sleep between snapshots; when it returns True (a daemon was
        told to stop) sampling ends at once instead of at the deadline.
        """
        step = int(interval_s * NS_PER_S)
        deadline: int | None = None
        n = 0
        while count is None or n <= count:
            snap = self.take()
            yield snap
            n += 1
            if count is not None and n > count:
                break
            # Deadlines are anchored on the instant the first counters were read, so that the
            # first interval is as long as the others, and they do not drift.
            if deadline is None:
                deadline = snap.taken_ns if self.roots.is_live else self.clock()
            deadline += step
            delay = deadline - self.clock()
            if delay > 0:
                if wait is None:
                    time.sleep(delay / NS_PER_S)
                elif wait(delay / NS_PER_S):
                    return
            else:
                deadline = self.clock()  # fell behind (slow read): re-anchor, don't burst


def take_snapshot(roots: Roots | None = None, spec: SampleSpec | None = None) -> Snapshot:
    """One Snapshot of every source under roots (a Sampler used once)."""
    return Sampler(roots, spec).take()


def sample(
    roots: Roots | None,
    interval_s: float,
    count: int | None,
    spec: SampleSpec | None = None,
    wait: Callable[[float], bool] | None = None,
) -> Iterator[Snapshot]:
    """Sampler(roots, spec).run(interval_s, count, wait)."""
    return Sampler(roots, spec).run(interval_s, count, wait)


def capture_root(directory: str | Path) -> Roots:
    """Roots of a capture directory laid out like / (DIR/proc, DIR/sys)."""
    return Roots.capture(directory)
