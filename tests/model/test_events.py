"""EventBatch: the columnar trace form shared by tracer, BPF backend and simulator."""

from __future__ import annotations

from irqlab.model.events import EventBatch, EventKind, TraceEvent


def test_rows_round_trip_and_concat_sorts_by_time_and_sums_lost():
    a = EventBatch.from_events([TraceEvent(30, 0, EventKind.SOFTIRQ_ENTRY, 7, 3)], lost={0: 2}, source="sim")
    b = EventBatch.from_events([TraceEvent(10, 1, EventKind.SOFTIRQ_RAISE, 8, 3)], lost={0: 1, 1: 0}, irq_names={41: "eth0"})
    c = EventBatch.concat([a, b])
    assert [e.ts_ns for e in c.rows()] == [10, 30]
    assert c.lost == {0: 3, 1: 0} and not c.complete
    assert c.irq_names == {41: "eth0"} and (c.start_ns, c.end_ns) == (10, 30)
    assert list(c.select(c.kind == EventKind.SOFTIRQ_ENTRY).rows()) == [TraceEvent(30, 0, EventKind.SOFTIRQ_ENTRY, 7, 3)]


def test_empty_batch_is_complete():
    assert len(EventBatch.empty()) == 0 and EventBatch.empty().complete
