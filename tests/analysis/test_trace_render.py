"""Text and JSON renderings of one small story: nested IRQ, ksoftirqd run, restart, truncated edge, lost events."""

from __future__ import annotations

import json

from irqlab.analysis.trace_aggregate import aggregate_trace
from irqlab.model.events import EventBatch, TraceEvent
from irqlab.model.events import EventKind as K
from irqlab.outputs.jsonout import dumps
from irqlab.outputs.trace_json import trace_json
from irqlab.outputs.trace_text import TextOptions, render_trace

US = 1_000


def story(lost=None) -> EventBatch:
    e = lambda t, k, a=0, cpu=0, pid=500, a1=0: TraceEvent(int(t * US), cpu, k, pid, a, a1)  # noqa: E731
    events = [
        e(0, K.SOFTIRQ_EXIT, 3),  # window starts inside a NET_RX run: truncated
        e(5, K.SOFTIRQ_RAISE, 3), e(6, K.SOFTIRQ_ENTRY, 3), e(10, K.IRQ_ENTRY, 41), e(15, K.IRQ_EXIT, 41, a1=1),
        e(16, K.SOFTIRQ_RAISE, 3), e(30, K.SOFTIRQ_EXIT, 3), e(31, K.SOFTIRQ_ENTRY, 3), e(40, K.SOFTIRQ_EXIT, 3),
        e(50, K.SCHED_SWITCH, 14), e(51, K.SOFTIRQ_RAISE, 3, pid=14), e(52, K.SOFTIRQ_ENTRY, 3, pid=14), e(152, K.SOFTIRQ_EXIT, 3, pid=14),
        e(0, K.VECTOR_ENTRY, 236, cpu=1), e(20, K.VECTOR_EXIT, 236, cpu=1), e(21, K.SOFTIRQ_ENTRY, 1, cpu=1), e(24, K.SOFTIRQ_EXIT, 1, cpu=1),
    ]
    return EventBatch.from_events(sorted(events, key=lambda x: x.ts_ns), comms={14: "ksoftirqd/0", 500: "iperf3"},
                                  irq_names={41: "virtio3-rx"}, lost=lost or {}, source="test")


def test_story_text_golden(golden):
    out = render_trace(aggregate_trace(story()), TextOptions(per_cpu=True, hist="linear"))
    assert "PARTIAL" not in out
    golden("trace-story.txt", out)


def test_story_with_lost_events_text_says_partial_golden(golden):
    out = render_trace(aggregate_trace(story(lost={1: 7})))
    assert out.splitlines()[1] == "PARTIAL: the kernel dropped events (CPU1 7); counts are low and runs spanning a gap may be mismeasured"
    golden("trace-story-partial.txt", out)


def test_story_json_golden(golden):
    doc = trace_json(aggregate_trace(story(lost={1: 7})))
    rx = next(v for v in doc["softirqs"] if v["vector"] == "NET_RX")
    assert (rx["count"], rx["max_ns"], rx["net"]["max_ns"]) == (3, 100 * US, 100 * US)
    assert rx["contexts"]["ksoftirqd"] == {"runs": 1, "total_ns": 100 * US}
    assert rx["ksoftirqd_share"] == {"runs": round(1 / 3, 4), "time": round(100 / 133, 4)}
    assert doc["softirq_passes"]["0"] == {"passes": 2, "restarts": 1}
    assert doc["truncated"]["softirq"] == {"0": 1, "1": 0}
    assert doc["complete"] is False and doc["lost_events"] == {"0": 0, "1": 7}
    timer = next(v for v in doc["softirqs"] if v["vector"] == "TIMER")
    assert timer["contexts"]["irq_exit"]["runs"] == 1
    golden("trace-story.json", dumps(doc))
    assert json.loads(dumps(doc)) == doc


def test_the_bpf_backend_says_its_tasklet_and_bh_work_rows_are_one_each_under_the_last_function():
    import dataclasses

    result = aggregate_trace(story())
    title = next(line for line in render_trace(result).splitlines() if line.startswith("tasklet duration"))
    assert title == "tasklet duration (us): none"
    bpf = render_trace(dataclasses.replace(result, source="bpf"))
    title = next(line for line in bpf.splitlines() if line.startswith("tasklet duration"))
    assert "one tasklet row and one BH work row, each under the last function seen" in title
    assert "--backend tracefs lists each function" in title and "does not trace" not in title
