"""One lifecycle for a tracer, whichever backend: choose -> open -> windows -> close.

rtla's tool_ops (timerlat and osnoise alike: init, apply config, enable, main loop, analyse,
free) in the shape irqlab needs, for the tracefs backend (tracing/session.py: a private
instance, events decoded into EventBatches, aggregated here by analysis/trace_aggregate.py) and the BPF
backend (bpf/backend.py: programs that aggregate in the kernel). Both give the same
TraceResult per window, so `trace`, `doctor`, `latency --explain` and `export
--bpf-histograms` differ only in the arguments they pass:

    with open_tracer("auto", cpus=cpus, ksoftirqd_pids=pids, on_note=warn) as tracer:
        for result in tracer.windows(1.0, 5):        # aggregated windows, either backend
            ...

    with open_tracer("tracefs", events=LATENCY_EVENTS, cpus=cpus) as tracer:
        tracer.start(); ...; tracer.stop()
        batch = tracer.events()                      # raw events: tracefs only

It lives in a package of its own because it joins layers that may not import each other:
tracing/ and bpf/ read the kernel, analysis/ aggregates and may import neither.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from irqlab.analysis.trace_aggregate import aggregate_trace
from irqlab.bpf.backend import BpfLayoutUnsupported, BpfTracer, choose_backend
from irqlab.errors import UsageError
from irqlab.model.events import EventBatch
from irqlab.model.trace_result import HistogramLayout, TraceResult
from irqlab.tracing.decode import BH_WORK_FILTERS, DEFAULT_EVENTS, OPTIONAL_EVENTS
from irqlab.tracing.session import TraceSession


@dataclass(frozen=True, slots=True)
class EventSet:
    """Tracepoints a tracefs session enables: all of `required`, and `optional` where present."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    filters: tuple[tuple[str, str], ...] = ()  # (event, kernel filter); one of an absent optional event goes with it


# Handler durations, raise -> entry latency and ksoftirqd share: what both backends aggregate.
HANDLER_EVENTS = EventSet(DEFAULT_EVENTS, OPTIONAL_EVENTS, BH_WORK_FILTERS)
# What ran on a CPU while a timer wake-up was late (analysis/latency.py explain()): wake-ups
# instead of raises. Raw events only, so the tracefs backend only.
LATENCY_EVENTS = EventSet(
    ("irq:irq_handler_entry", "irq:irq_handler_exit", "irq:softirq_entry", "irq:softirq_exit",
     "sched:sched_switch", "sched:sched_waking"),
    OPTIONAL_EVENTS,
)
BACKENDS = ("auto", "bpf", "tracefs")


@dataclass(frozen=True, slots=True)
class TraceSpec:
    """What to trace and how to aggregate it (the configuration step, the same for both backends).

    buffer_kb, events and poll_s concern the tracefs ring buffer only; the BPF programs
    have no buffer and trace HANDLER_EVENTS.
    """

    tracefs: Path | None = None  # None: the mounted tracefs (mounted for the run if need be)
    cpus: tuple[int, ...] | None = None
    buffer_kb: int = 8192
    layout: HistogramLayout = HistogramLayout()
    ksoftirqd_pids: tuple[int, ...] = ()
    vectors: tuple[int, ...] | None = None
    irqs: tuple[int | str, ...] | None = None
    events: EventSet = HANDLER_EVENTS
    poll_s: float = 0.1  # how often the tracefs drain thread empties the buffers

    def filters(self) -> dict[str, Collection[int] | Collection[int | str] | None]:
        return {"cpus": self.cpus, "vectors": self.vectors, "irqs": self.irqs}


class Tracer:
    """An open tracer of one backend; a context manager (closing detaches everything it set up)."""

    def __init__(self, backend: str, spec: TraceSpec, note: str | None = None) -> None:
        if backend not in ("bpf", "tracefs"):
            raise ValueError(f"backend {backend!r}: bpf or tracefs (choose_backend resolves auto)")
        self.backend, self.spec, self.note = backend, spec, note
        self._session: TraceSession | None = None
        self._bpf: BpfTracer | None = None
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> Tracer:
        """Configure and enable: a private tracefs instance with its events, or attached programs."""
        s = self.spec
        try:
            if self.backend == "bpf":
                self._bpf = BpfTracer(s.tracefs, s.layout, s.ksoftirqd_pids).__enter__()
            else:
                self._session = TraceSession(events=s.events.required, optional=s.events.optional,
                                             buffer_kb=s.buffer_kb, tracefs=s.tracefs, cpus=s.cpus,
                                             poll_s=s.poll_s, filters=dict(s.events.filters)).__enter__()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Remove the instance or detach the programs (idempotent)."""
        session, bpf, self._session, self._bpf = self._session, self._bpf, None, None
        if session is not None:
            session.__exit__(None, None, None)
        if bpf is not None:
            bpf.__exit__(None, None, None)

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- aggregated windows (both backends) --------------------------------------------------
    def windows(self, seconds: float, count: int | None) -> Iterator[TraceResult]:
        """One TraceResult per `seconds` on absolute deadlines: count of them, or forever."""
        if self._bpf is not None:
            yield from self._bpf.windows(seconds, count, **self.spec.filters())
            return
        session = self._tracefs()
        self._started = True  # stream() turns tracing on
        for batch in session.stream(seconds, count):
            yield self.aggregate(batch)

    def snapshot(self) -> TraceResult:
        """The interval since the previous call (or since tracing began), e.g. at each scrape."""
        if self._bpf is not None:
            return self._bpf.snapshot(**self.spec.filters())
        if not self._started:
            self.start()
        return self.aggregate(self._tracefs().read())

    def aggregate(self, batch: EventBatch) -> TraceResult:
        """A tracefs batch aggregated as the BPF programs aggregate in the kernel."""
        s = self.spec
        return aggregate_trace(batch, cpus=s.cpus, vectors=s.vectors, irqs=s.irqs,
                               ksoftirqd_pids=s.ksoftirqd_pids, layout=s.layout)

    # -- raw events (tracefs only) -----------------------------------------------------------
    def start(self) -> None:
        """Turn tracing on for events(); the first batch starts here."""
        self._tracefs().start()
        self._started = True

    def stop(self) -> None:
        """Turn tracing off; events() then returns what was still buffered."""
        self._tracefs().stop()
        self._started = False

    def events(self, timeout_s: float = 0.0) -> EventBatch:
        """The raw events since the last read (draining for timeout_s while tracing runs)."""
        return self._tracefs().read(timeout_s=timeout_s)

    def _tracefs(self) -> TraceSession:
        if self.backend == "bpf":
            raise UsageError("raw trace events come from the tracefs backend only (BPF aggregates in the kernel)")
        if self._session is None:
            raise RuntimeError("the tracer is not open (use open_tracer)")
        return self._session


def open_tracer(backend: str = "auto", *, tracefs: Path | None = None, cpus: tuple[int, ...] | None = None,
                buffer_kb: int = 8192, layout: HistogramLayout = HistogramLayout(), ksoftirqd_pids: tuple[int, ...] = (),
                vectors: tuple[int, ...] | None = None, irqs: tuple[int | str, ...] | None = None,
                events: EventSet = HANDLER_EVENTS, poll_s: float = 0.1,
                on_note: Callable[[str], None] | None = None) -> Tracer:
    """Choose the backend, then open a Tracer of it (use it in a `with`).

    backend: auto (BPF when this process may load programs, else tracefs, after handing
    on_note the one line that says why), bpf (BpfUnavailable, one line, when not permitted)
    or tracefs. An event set other than HANDLER_EVENTS is raw events for tracefs: auto then
    takes tracefs without a note, and bpf is a UsageError. When auto chose BPF and the programs
    refuse this kernel's tracepoint layout (bpf/backend.py check_layout()), it falls back to
    tracefs after handing on_note the one line that says why.
    """
    if backend not in BACKENDS:
        raise UsageError(f"backend {backend!r}: choose {', '.join(BACKENDS)}")
    if events != HANDLER_EVENTS:
        if backend == "bpf":
            raise UsageError("the BPF backend traces handler events only; raw events need the tracefs backend")
        backend = "tracefs"
    chosen, note = choose_backend(backend)
    if note and on_note is not None:
        on_note(note)  # before opening: said even when the tracefs that follows fails
    spec = TraceSpec(tracefs=tracefs, cpus=cpus, buffer_kb=buffer_kb, layout=layout,
                     ksoftirqd_pids=tuple(ksoftirqd_pids), vectors=vectors, irqs=irqs, events=events, poll_s=poll_s)
    try:
        return Tracer(chosen, spec, note).open()
    except BpfLayoutUnsupported as exc:
        if backend != "auto":
            raise
        note = f"{exc}; using tracefs"
    if on_note is not None:
        on_note(note)
    return Tracer("tracefs", spec, note).open()
