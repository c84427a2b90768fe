"""TraceSession: a private instance, per-CPU raw readers, decoded EventBatches per window.

    with TraceSession(events=DEFAULT_EVENTS, buffer_kb=4096) as s:
        s.start()
        batch = s.read(timeout_s=5)     # drains every CPU's buffer for 5 s
        s.stop()
        rest = s.read()                 # what was still buffered at stop

Batches tile time: each covers (previous end, this end] on the trace clock (CLOCK_MONOTONIC
with clock="mono", so it compares with time.monotonic_ns()); events stamped after a batch's
end wait in a carry-over for the next one. `lost` is per CPU, from per_cpu/cpuN/stats and the
missed-events flags of the pages; a batch with lost events is not `complete`.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from irqlab.errors import TracefsUnavailable
from irqlab.model.events import EventBatch, EventKind
from irqlab.tracing import stats as statsmod
from irqlab.tracing.decode import DEFAULT_EVENTS, Catalog, decode
from irqlab.tracing.formats import load_format, parse_header_event, parse_header_page
from irqlab.tracing.instance import MAX_BUFFER_KB, Instance, find_tracefs
from irqlab.tracing.ringbuf import PageLayout, walk_pages
from irqlab.tracing.symbols import Kallsyms
from irqlab.tracing.textparse import parse_lines

DEFAULT_BUFFER_KB = 4096
# The columns that hold kernel function addresses, named from /proc/kallsyms (model/events.py).
ADDRESS_COLUMNS: tuple[tuple[EventKind, str], ...] = (
    (EventKind.TASKLET_ENTRY, "arg0"), (EventKind.TASKLET_EXIT, "arg0"),
    (EventKind.BH_WORK_ENTRY, "arg0"), (EventKind.BH_WORK_EXIT, "arg0"),
    (EventKind.IPI_SEND, "arg1"), (EventKind.IPI_SEND, "arg2"),
    (EventKind.IPI_SEND_MASK, "arg1"), (EventKind.IPI_SEND_MASK, "arg2"),
    (EventKind.CSD_QUEUE, "arg1"), (EventKind.CSD_QUEUE, "arg2"),
    (EventKind.WORK_EXECUTE, "arg0"), (EventKind.TIMER_EXPIRE, "arg0"), (EventKind.HRTIMER_EXPIRE, "arg2"),
)


class TraceSession:
    """Trace `events` in a private tracefs instance and hand them out as EventBatches."""

    def __init__(self, events: Sequence[str] = DEFAULT_EVENTS, optional: Sequence[str] = (),
                 buffer_kb: int = DEFAULT_BUFFER_KB, tracefs: Path | None = None,
                 cpus: Sequence[int] | None = None, clock: str = "mono", reader: str = "raw",
                 procfs: Path = Path("/proc"), poll_s: float = 0.1,
                 filters: dict[str, str] | None = None) -> None:
        if reader not in ("raw", "text"):
            raise TracefsUnavailable(f"reader {reader!r}: choose raw or text")
        if not isinstance(buffer_kb, int) or not 1 <= buffer_kb <= MAX_BUFFER_KB:
            raise TracefsUnavailable(f"buffer size {buffer_kb!r} KB per CPU is outside 1..{MAX_BUFFER_KB}")
        self.events, self.optional = tuple(events), tuple(optional)
        self.buffer_kb, self.tracefs_root, self.clock, self.reader = buffer_kb, tracefs, clock, reader
        self.want_cpus = tuple(sorted(cpus)) if cpus is not None else None
        self.procfs, self.poll_s = procfs, poll_s
        self.filters = dict(filters or {})  # event -> kernel filter expression (events.rst)
        self.instance: Instance | None = None
        self.enabled: tuple[str, ...] = ()
        self.missing: tuple[str, ...] = ()  # optional events this kernel lacks
        self.cpus: tuple[int, ...] = ()
        self._fds: dict[int, int] = {}
        self._pages: list[tuple[int, bytes]] = []
        self._text: list[bytes] = []
        self._carry: EventBatch | None = None
        self._cursor_ns = 0
        self._t_stop: int | None = None
        self._running = False
        self._stats: dict[int, statsmod.CpuStats] = {}
        self._kallsyms: Kallsyms | None = None
        # A drain thread keeps the kernel buffers empty while the caller decodes or aggregates
        # (os.read releases the GIL); the lock serialises it with the caller's own drains.
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        # Names seen so far, so every batch of a session knows them (a ksoftirqd that did not
        # switch in during a window still has its comm) and NAPI device indices stay stable.
        self._irq_names: dict[int, str] = {}
        self._comms: dict[int, str] = {}
        self._symbols: dict[int, str] = {}
        self._devices: tuple[str, ...] = ()

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> TraceSession:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> None:
        self.instance = inst = Instance(find_tracefs(self.tracefs_root))
        inst.set_buffer_kb(self.buffer_kb)
        inst.set_clock(self.clock)
        online = sorted(int(n[3:]) for n in os.listdir(inst.file("per_cpu")) if n[3:].isdigit())
        self.cpus = tuple(c for c in online if self.want_cpus is None or c in self.want_cpus)
        if not self.cpus:
            raise TracefsUnavailable(f"none of CPUs {self.want_cpus} has a trace buffer")
        if self.want_cpus is not None:
            inst.set_cpus(self.cpus)
        present = [q for q in self.optional if inst.has_event(q)]
        # A filter of an optional event this kernel lacks goes with the event.
        stray = sorted(set(self.filters) - set(self.events) - set(self.optional))
        if stray:
            raise TracefsUnavailable(f"filter for {', '.join(stray)}, which is not traced")
        for q in self.events + tuple(present):
            if q in self.filters:
                inst.set_filter(q, self.filters[q])
            inst.enable(q)
        self.enabled = self.events + tuple(present)
        self.missing = tuple(q for q in self.optional if q not in present)
        events_dir = inst.file("events")
        self.layout = PageLayout.of(parse_header_page(inst.read("events", "header_page")),
                                    parse_header_event(inst.read("events", "header_event")))
        self.catalog = Catalog.of(load_format(events_dir, q) for q in self.enabled)
        self._open_readers()
        self._stats = self.read_stats()

    def _open_readers(self) -> None:
        assert self.instance is not None
        names = {c: self.instance.file("per_cpu", f"cpu{c}", "trace_pipe_raw") for c in self.cpus}
        if self.reader == "text":
            names = {-1: self.instance.file("trace_pipe")}
        for cpu, path in names.items():
            try:
                self._fds[cpu] = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as exc:
                raise TracefsUnavailable(f"{path}: {exc.strerror}") from None

    def close(self) -> None:
        """Close the readers and remove the instance (idempotent)."""
        self._stop_thread()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self.instance is not None:
            self.instance.remove()

    def start(self) -> None:
        """Turn tracing on; the first batch's window starts here."""
        assert self.instance is not None, "use TraceSession as a context manager"
        self._cursor_ns = time.monotonic_ns()
        self._t_stop = None
        self.instance.write("tracing_on", "1")
        self._running = True
        self._halt.clear()
        self._thread = threading.Thread(target=self._pump, name="irqlab-trace-drain", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while not self._halt.wait(self.poll_s):
            self.drain()

    def _stop_thread(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def stop(self) -> None:
        """Turn tracing off; the next read() returns what is still buffered, up to now."""
        assert self.instance is not None
        self.instance.write("tracing_on", "0")
        self._t_stop = time.monotonic_ns()
        self._running = False
        self._stop_thread()

    # -- reading ---------------------------------------------------------------------------
    def read_stats(self) -> dict[int, statsmod.CpuStats]:
        assert self.instance is not None
        return {c: statsmod.parse_stats(self.instance.read("per_cpu", f"cpu{c}", "stats"),
                                        str(self.instance.file("per_cpu", f"cpu{c}", "stats")))
                for c in self.cpus}

    def drain(self) -> int:
        """Read every page the kernel has ready, on every CPU, without blocking; pages read."""
        with self._lock:
            return self._drain_locked()

    def _drain_locked(self) -> int:
        size = self.layout.page_size
        n = 0
        for cpu, fd in self._fds.items():
            while True:
                try:
                    chunk = os.read(fd, size if cpu >= 0 else 1 << 16)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                n += 1
                if cpu < 0:
                    self._text.append(chunk)
                elif len(chunk) == size:
                    self._pages.append((cpu, chunk))
                else:  # a short read still holds a page header and whole records
                    self._pages.append((cpu, chunk + bytes(size - len(chunk))))
        return n

    def take_pages(self) -> list[tuple[int, bytes]]:
        """The raw pages drained so far (for captures and tests), emptying the queue."""
        with self._lock:
            pages, self._pages = self._pages, []
        return pages

    def read(self, timeout_s: float = 0.0) -> EventBatch:
        """Drain for timeout_s (returns early once stopped and empty), then decode one batch."""
        return self._read_until(time.monotonic_ns() + int(timeout_s * 1e9))

    def stream(self, interval_s: float, count: int | None = None) -> Iterator[EventBatch]:
        """One batch per interval on absolute deadlines, until count batches or stop()."""
        if not self._running:
            self.start()
        step = int(interval_s * 1e9)
        deadline, n = time.monotonic_ns(), 0
        while count is None or n < count:
            # Absolute deadlines, but a window that overran (a starved reader) does not make
            # the next one short: it starts a new schedule from now.
            deadline += step
            if deadline < time.monotonic_ns():
                deadline = time.monotonic_ns() + step
            yield self._read_until(deadline)
            n += 1
            if not self._running:
                return

    def _read_until(self, deadline_ns: int) -> EventBatch:
        while self._running and (left := deadline_ns - time.monotonic_ns()) > 0:
            time.sleep(min(left / 1e9, 0.25))  # the drain thread reads meanwhile
        cut = self._t_stop if self._t_stop is not None else time.monotonic_ns()
        self.drain()
        after = self.read_stats()
        lost = statsmod.lost_between(self._stats, after)
        self._stats = after
        batch = self._decode_pending(lost)
        self._irq_names.update(batch.irq_names)
        self._comms.update(batch.comms)
        self._symbols.update(batch.symbols)
        self._devices = batch.devices
        if self.clock != "mono":  # no common clock with monotonic_ns: the data is the window
            if len(batch):
                return dataclasses.replace(batch, start_ns=int(batch.ts_ns[0]), end_ns=int(batch.ts_ns[-1]))
            return batch
        if self._carry is not None:
            batch = EventBatch.concat([self._carry, batch])
            self._carry = None
        late = batch.ts_ns > cut
        if late.any():
            self._carry = dataclasses.replace(batch.select(late), lost={})
            batch = batch.select(~late)
        out = dataclasses.replace(batch, lost=lost, start_ns=self._cursor_ns, end_ns=cut, source="tracefs",
                                  irq_names=self._irq_names.copy(), comms=self._comms.copy(),
                                  symbols=self._symbols.copy(), devices=self._devices)
        self._cursor_ns = cut
        return out

    def _decode_pending(self, lost: dict[int, int]) -> EventBatch:
        if self.reader == "text":
            with self._lock:
                raw = b"".join(self._text)
                whole, _, tail = raw.rpartition(b"\n")  # a line cut between two reads waits
                self._text = [tail] if tail else []
            text = whole.decode("utf-8", "replace")
            batch = parse_lines(text.splitlines())  # its NAPI device indices are per batch
            for cpu, n in batch.lost.items():
                lost[cpu] = max(lost.get(cpu, 0), n)
            return batch
        pages = self.take_pages()
        buf = b"".join(p for _, p in pages)
        page_cpu = np.array([c for c, _ in pages], np.int32)
        recs = walk_pages(buf, self.layout)
        for cpu, n in _page_missed(recs.missed, page_cpu).items():
            lost[cpu] = max(lost.get(cpu, 0), n)
        batch = decode(buf, recs, page_cpu, self.catalog, source="tracefs", devices=self._devices)
        return self._symbolise(batch)

    def _symbolise(self, batch: EventBatch) -> EventBatch:
        addrs = [np.unique(getattr(batch, col)[batch.kind == kind]) for kind, col in ADDRESS_COLUMNS
                 if (batch.kind == kind).any()]
        if not addrs:
            return batch
        if self._kallsyms is None:
            self._kallsyms = Kallsyms.load(self.procfs)
        return dataclasses.replace(batch, symbols=self._kallsyms.lookup(int(a) for a in np.unique(np.concatenate(addrs)) if a))


def _page_missed(missed: np.ndarray, page_cpu: np.ndarray) -> dict[int, int]:
    """Events lost per CPU by the pages' own flags; a flag without a count counts as 1."""
    out: dict[int, int] = {}
    for i in np.nonzero(missed)[0]:
        cpu = int(page_cpu[i])
        out[cpu] = out.get(cpu, 0) + max(1, int(missed[i]))
    return out
