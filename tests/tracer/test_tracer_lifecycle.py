"""The one tracer lifecycle (tracer/lifecycle.py): backend choice, configuration, windows, close.

Nothing here touches the kernel: an empty directory stands for a missing tracefs, and a
recording session (the captured flood trace) or a recording BPF tracer stands for the backends.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import pytest

from irqlab.analysis.trace_aggregate import aggregate_trace
from irqlab.bpf import backend as bpf_backend
from irqlab.bpf.syscall import BpfUnavailable
from irqlab.errors import TracefsUnavailable, UsageError
from irqlab.model.events import EventBatch
from irqlab.model.trace_result import HistogramLayout, TraceResult
from irqlab.outputs.trace_json import trace_json
from irqlab.tracer import lifecycle
from irqlab.tracer.lifecycle import HANDLER_EVENTS, LATENCY_EVENTS, open_tracer
from irqlab.tracing.decode import BH_WORK_FILTERS, DEFAULT_EVENTS, OPTIONAL_EVENTS
from irqlab.tracing.textparse import parse_lines

FLOOD = Path(__file__).resolve().parent.parent / "fixtures" / "trace" / "udpflood-budget8-30ms.txt.gz"


@functools.cache
def flood_batch() -> EventBatch:
    with gzip.open(FLOOD, "rt") as fh:
        return parse_lines(fh)


class RecordingSession:
    """TraceSession's surface, recording how it was configured and driven."""

    made: list[RecordingSession] = []

    def __init__(self, **kw) -> None:
        self.kw, self.calls = kw, []
        RecordingSession.made.append(self)

    def __enter__(self):
        self.calls.append("open")
        return self

    def __exit__(self, *exc) -> None:
        self.calls.append("close")

    def stream(self, seconds, count):
        self.calls.append(("stream", seconds, count))
        yield from [flood_batch()] * count

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")

    def read(self, timeout_s: float = 0.0) -> EventBatch:
        self.calls.append(("read", timeout_s))
        return flood_batch()


class RecordingBpf:
    """BpfTracer's surface: what the lifecycle asks of the BPF backend."""

    made: list[RecordingBpf] = []

    def __init__(self, tracefs, layout, ksoftirqd_pids) -> None:
        self.args, self.calls = (tracefs, layout, ksoftirqd_pids), []
        RecordingBpf.made.append(self)

    def __enter__(self):
        self.calls.append("open")
        return self

    def __exit__(self, *exc) -> None:
        self.calls.append("close")

    def windows(self, seconds, count, **filters):
        self.calls.append(("windows", seconds, count, filters))
        yield from ["bpf-window"] * count

    def snapshot(self, **filters):
        self.calls.append(("snapshot", filters))
        return "bpf-interval"


def doc(result: TraceResult) -> dict:
    """A result as its documented JSON (histograms compare by content there)."""
    return trace_json(result)


@pytest.fixture
def fakes(monkeypatch):
    RecordingSession.made, RecordingBpf.made = [], []
    monkeypatch.setattr(lifecycle, "TraceSession", RecordingSession)
    monkeypatch.setattr(lifecycle, "BpfTracer", RecordingBpf)
    return RecordingSession.made, RecordingBpf.made


def permitted(monkeypatch, reason: str | None) -> list[str]:
    """Make choose_backend see `reason` (None: BPF permitted); returns the calls made."""
    calls: list[str] = []

    def check() -> str | None:
        calls.append("check")
        return reason

    monkeypatch.setattr(bpf_backend, "check_permitted", check)
    return calls


def test_tracefs_windows_are_the_sessions_batches_aggregated_with_the_spec(fakes):
    sessions, _ = fakes
    layout = HistogramLayout(2_000, 500_000)
    with open_tracer("tracefs", cpus=(0, 1), buffer_kb=1024, layout=layout, ksoftirqd_pids=(14, 22),
                     vectors=(3,), irqs=("LOC",), tracefs=Path("/t")) as tracer:
        results = list(tracer.windows(0.5, 2))
    (session,) = sessions
    assert session.kw == {"events": DEFAULT_EVENTS, "optional": OPTIONAL_EVENTS, "buffer_kb": 1024,
                          "tracefs": Path("/t"), "cpus": (0, 1), "poll_s": 0.1, "filters": dict(BH_WORK_FILTERS)}
    assert session.calls == ["open", ("stream", 0.5, 2), "close"]
    expected = aggregate_trace(flood_batch(), cpus=(0, 1), vectors=(3,), irqs=("LOC",), ksoftirqd_pids=(14, 22), layout=layout)
    assert [doc(r) for r in results] == [doc(expected)] * 2
    assert [h.name for h in results[0].softirqs] == ["NET_RX"] and {h.name for h in results[0].hardirqs} <= {"LOC"}


def test_bpf_windows_come_from_the_programs_with_the_same_filters(fakes, monkeypatch):
    _, tracers = fakes
    permitted(monkeypatch, None)
    with open_tracer("auto", cpus=(1,), vectors=(3,), ksoftirqd_pids=(14, 22), layout=HistogramLayout(1_000, 2_000_000)) as tracer:
        assert tracer.backend == "bpf" and tracer.note is None
        assert list(tracer.windows(1.0, 3)) == ["bpf-window"] * 3
        assert tracer.snapshot() == "bpf-interval"
    (bpf,) = tracers
    filters = {"cpus": (1,), "vectors": (3,), "irqs": None}
    assert bpf.args == (None, HistogramLayout(1_000, 2_000_000), (14, 22))
    assert bpf.calls == ["open", ("windows", 1.0, 3, filters), ("snapshot", filters), "close"]


def test_auto_hands_its_fallback_line_on_before_opening_tracefs(monkeypatch, tmp_path):
    permitted(monkeypatch, "not root")
    notes: list[str] = []
    with pytest.raises(TracefsUnavailable, match=f"{tmp_path}: not a tracefs"):
        open_tracer("auto", tracefs=tmp_path, on_note=notes.append)
    assert notes == ["BPF backend not available (not root); using tracefs"]  # the line trace prints today
    assert list(tmp_path.iterdir()) == []  # nothing made in the directory that is not a tracefs


def test_auto_without_a_note_callback_falls_back_silently(fakes, monkeypatch):
    permitted(monkeypatch, "not root")
    with open_tracer("auto") as tracer:
        assert (tracer.backend, tracer.note) == ("tracefs", "BPF backend not available (not root); using tracefs")


def test_bpf_asked_for_and_not_permitted_is_one_line(fakes, monkeypatch):
    permitted(monkeypatch, "Operation not permitted")
    with pytest.raises(BpfUnavailable, match=r"^--backend bpf: Operation not permitted$"):
        open_tracer("bpf")
    assert fakes == ([], [])  # nothing opened


def test_raw_events_are_tracefs_only(fakes, monkeypatch):
    checks = permitted(monkeypatch, None)
    with pytest.raises(UsageError, match="raw events need the tracefs backend"):
        open_tracer("bpf", events=LATENCY_EVENTS)
    with open_tracer("auto", events=LATENCY_EVENTS) as tracer:  # auto: tracefs, no BPF check, no note
        assert (tracer.backend, tracer.note) == ("tracefs", None)
    assert checks == []
    with open_tracer("auto") as tracer, pytest.raises(UsageError, match="tracefs backend only"):
        tracer.events()


def test_latency_explain_drives_start_stop_and_reads_raw_events(fakes):
    sessions, _ = fakes
    with open_tracer("tracefs", events=LATENCY_EVENTS, cpus=(1,), buffer_kb=256, poll_s=0.5) as tracer:
        tracer.start()
        tracer.stop()
        batch = tracer.events()
    (session,) = sessions
    assert batch is flood_batch()
    assert session.kw["events"] == LATENCY_EVENTS.required and "sched:sched_waking" in LATENCY_EVENTS.required
    assert session.kw["optional"] == OPTIONAL_EVENTS and session.kw["poll_s"] == 0.5
    assert session.calls == ["open", "start", "stop", ("read", 0.0), "close"]


def test_a_tracefs_snapshot_starts_tracing_once_then_reads_each_interval(fakes):
    sessions, _ = fakes
    with open_tracer("tracefs", ksoftirqd_pids=(14, 22)) as tracer:
        first, second = tracer.snapshot(), tracer.snapshot()
    assert sessions[0].calls == ["open", "start", ("read", 0.0), ("read", 0.0), "close"]
    assert doc(first) == doc(second) == doc(aggregate_trace(flood_batch(), ksoftirqd_pids=(14, 22)))


def test_a_failed_open_closes_what_was_opened(monkeypatch):
    closed: list[str] = []

    class Refused(RecordingSession):
        def __enter__(self):
            raise TracefsUnavailable("event irq:softirq_entry is not available on this kernel")

    monkeypatch.setattr(lifecycle, "TraceSession", Refused)
    monkeypatch.setattr(lifecycle.Tracer, "close", lambda self: closed.append(self.backend))
    with pytest.raises(TracefsUnavailable):
        open_tracer("tracefs")
    assert closed == ["tracefs"]


def test_closing_twice_closes_once(fakes):
    sessions, _ = fakes
    tracer = open_tracer("tracefs")
    tracer.close()
    tracer.close()
    assert sessions[0].calls == ["open", "close"]


def test_an_unknown_backend_is_a_usage_error():
    with pytest.raises(UsageError, match="backend 'perf': choose auto, bpf, tracefs"):
        open_tracer("perf")


def test_handler_events_are_what_trace_and_doctor_enabled_before():
    assert (HANDLER_EVENTS.required, HANDLER_EVENTS.optional) == (DEFAULT_EVENTS, OPTIONAL_EVENTS)
