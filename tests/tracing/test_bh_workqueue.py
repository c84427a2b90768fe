"""BH workqueue work (Linux >= 6.9): told from kworker work by the context the event fired in, timed like tasklets."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from irqlab.analysis.trace_aggregate import aggregate_trace
from irqlab.model.events import EventKind
from irqlab.outputs.trace_json import trace_json
from irqlab.outputs.trace_text import render_trace
from irqlab.tracing.decode import OPTIONAL_EVENTS, Catalog, decode
from irqlab.tracing.ringbuf import Records

EVENTS = Path(__file__).resolve().parent.parent / "fixtures" / "tracing" / "bh-workqueue" / "events"
START, END = "workqueue:workqueue_execute_start", "workqueue:workqueue_execute_end"
FUNC, KWORK = 0xFFFFFFFF81A00010, 0xFFFFFFFF81B00020
SOFTIRQ = 0x10  # TRACE_FLAG_SOFTIRQ in common_flags


def records(rows: list[tuple[int, str, int, int, int]]):
    """(ts ns, event, common_flags, pid, function) -> a buffer and its Records, one page on CPU 1."""
    cat = Catalog.load(EVENTS, (START, END))
    ids = {f.qualified: f.id for f in cat.by_id.values()}
    buf, offs = b"", []
    for _, event, flags, pid, func in rows:
        offs.append(len(buf))
        buf += struct.pack("<HBBiQQ", ids[event], flags, 0, pid, 0xFFFF888000001000 + func % 7, func)
    n = len(rows)
    recs = Records(page=np.zeros(n, np.int64), offset=np.array(offs, np.int64), length=np.full(n, 24, np.int64),
                   ts=np.array([r[0] for r in rows], np.int64), page_ts=np.zeros(1, np.int64), page_used=np.array([len(buf)], np.int64),
                   missed=np.zeros(1, np.int64), time_extends=0, time_stamps=0, paddings=0)
    return buf, recs, np.array([1], np.int64), cat


def test_work_run_in_softirq_context_is_bh_work_and_kworker_work_is_not():
    buf, recs, cpus, cat = records([
        (1_000, START, SOFTIRQ, 0, FUNC), (4_000, END, SOFTIRQ, 0, FUNC),       # in a softirq: BH work
        (5_000, START, 0, 77, KWORK), (9_000, END, 0, 77, KWORK),              # in kworker 77: not
    ])
    batch = decode(buf, recs, cpus, cat, source="tracefs")
    bh = batch.select(np.isin(batch.kind, (EventKind.BH_WORK_ENTRY, EventKind.BH_WORK_EXIT)))
    assert bh.kind.tolist() == [EventKind.BH_WORK_ENTRY, EventKind.BH_WORK_EXIT]
    assert {int(a) & 0xFFFFFFFFFFFFFFFF for a in bh.arg0} == {FUNC}
    assert not (np.isin(batch.kind, (EventKind.BH_WORK_ENTRY, EventKind.BH_WORK_EXIT)) & (batch.pid == 77)).any()


def test_bh_work_is_listed_with_the_tasklets_with_its_duration():
    buf, recs, cpus, cat = records([(1_000, START, SOFTIRQ, 0, FUNC), (4_000, END, SOFTIRQ, 0, FUNC),
                                    (5_000, START, SOFTIRQ | 0x08, 0, FUNC), (7_000, END, SOFTIRQ, 0, FUNC)])
    result = aggregate_trace(decode(buf, recs, cpus, cat, source="tracefs"))
    (h,) = result.tasklets
    assert h.kind == "bhwork"
    g = h.merged("gross", None)
    assert g is not None and (g.count, g.sum_ns) == (2, 5_000)
    assert trace_json(result)["tasklets"][0]["kind"] == "bhwork"
    assert "BH workqueue" in render_trace(result)


def test_the_trace_asks_for_the_workqueue_events_where_the_kernel_has_them():
    assert START in OPTIONAL_EVENTS and END in OPTIONAL_EVENTS


def test_the_handler_trace_filters_the_workqueue_events_to_softirq_context_in_the_kernel(monkeypatch):
    from irqlab.bpf import backend as bpf_backend
    from irqlab.tracer import lifecycle

    made: list[dict] = []

    class Session:
        def __init__(self, **kw) -> None:
            made.append(kw)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

    monkeypatch.setattr(lifecycle, "TraceSession", Session)
    monkeypatch.setattr(bpf_backend, "check_permitted", lambda: "not root")
    with lifecycle.open_tracer("auto"):
        pass
    assert made[0]["filters"] == {START: "common_flags & 16", END: "common_flags & 16"}


@pytest.fixture
def live_tracefs():
    if os.geteuid() != 0:
        pytest.skip("needs root for tracefs")
    from irqlab.tracing.instance import tracefs_for_setup

    with tracefs_for_setup():
        yield


@pytest.mark.root
@pytest.mark.live
def test_a_filter_of_an_optional_event_the_kernel_lacks_goes_with_it(live_tracefs):
    from irqlab.tracing.session import TraceSession

    absent = "workqueue:irqlab_no_such_event"
    with TraceSession(events=("irq:softirq_entry",), optional=(START, absent),
                      filters={START: "common_flags & 16", absent: "common_flags & 16"}) as s:
        assert absent in s.missing and START in s.enabled
        assert s.instance.read("events", "workqueue", "workqueue_execute_start", "filter").strip() == "common_flags & 16"
