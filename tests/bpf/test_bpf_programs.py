"""The programs as data: built from format files (fixtures captured on Linux 6.18), never from constants."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from irqlab.bpf import programs as P
from irqlab.bpf.asm import LDX, decode, encode
from irqlab.bpf.backend import Counters, layout_for, load_formats, to_result
from irqlab.model.trace_result import HistogramLayout

EVENTS = Path(__file__).resolve().parent.parent / "fixtures" / "bpf" / "events"
FDS = P.Maps(state=3, hist=4, ctl=5, kpids=6)


def field_loads(insns) -> list[tuple[int, int]]:
    """(offset, size code) of loads from r1 (the tracepoint record) before r1 is overwritten."""
    out = []
    for i in insns:
        if i.code & 0x07 == LDX and i.src == 1:
            out.append((i.off, i.code & 0x18))
        if i.dst == 1 and i.code & 0x07 != LDX:
            break
    return out


def test_every_program_builds_from_the_captured_formats_and_survives_a_round_trip():
    specs = P.build_all(FDS, layout_for(HistogramLayout()), load_formats(EVENTS))
    assert {s.event for s in specs} >= {"irq:softirq_entry", "irq:softirq_exit", "irq:softirq_raise",
                                        "irq_vectors:local_timer_entry", "sched:sched_switch"}
    for s in specs:
        assert decode(encode(s.insns)) == s.insns, s.name
        assert len(s.name) <= 15


def test_the_vec_field_offset_comes_from_the_format_file():
    formats = load_formats(EVENTS)
    fmt = formats["irq:softirq_entry"]
    assert field_loads(P.softirq_entry(FDS, layout_for(HistogramLayout()), fmt)) == [(8, 0x00)]
    moved = replace(fmt, fields=tuple(replace(f, offset=24) if f.name == "vec" else f for f in fmt.fields))
    assert field_loads(P.softirq_entry(FDS, layout_for(HistogramLayout()), moved)) == [(24, 0x00)]


def test_an_eight_byte_tasklet_func_is_loaded_as_a_double_word():
    fmt = load_formats(EVENTS)["irq:tasklet_entry"]
    assert field_loads(P.tasklet_entry(FDS, layout_for(HistogramLayout()), fmt)) == [(fmt.field("func").offset, 0x18)]


def test_a_layout_too_big_for_a_per_cpu_element_is_refused_with_its_limit():
    from irqlab.bpf.syscall import BpfUnavailable

    with pytest.raises(BpfUnavailable, match="linear buckets"):
        layout_for(HistogramLayout(1_000, 10_000_000))


def test_a_missing_softirq_event_is_one_clear_error(tmp_path):
    from irqlab.bpf.syscall import BpfUnavailable

    with pytest.raises(BpfUnavailable, match="softirq_entry"):
        load_formats(tmp_path)


def _series(lay: P.SeriesLayout, values_by_cpu: dict[int, list[int]], ncpus: int = 2) -> np.ndarray:
    """A series element as the kernel programs would have filled it for these values."""
    arr = np.zeros((ncpus, lay.words), dtype=np.uint64)
    for c, vals in values_by_cpu.items():
        for v in vals:
            arr[c, P.H_COUNT] += 1
            arr[c, P.H_SUM] += v
            arr[c, P.H_MAX] = max(int(arr[c, P.H_MAX]), v)
            arr[c, P.H_INVMIN] = max(int(arr[c, P.H_INVMIN]), (~v) & (2**64 - 1))
            arr[c, P.HDR + min(v.bit_length(), 63)] += 1
            i = v // lay.bucket_ns
            arr[c, lay.linear_word + i if i < lay.nbuckets else lay.overflow_word] += 1
    return arr


def test_maps_become_the_same_histograms_as_adding_the_values():
    layout = HistogramLayout()
    lay = layout_for(layout)
    vals = {0: [1500, 2500, 7_000_000], 1: [0, 999]}
    series = {lay.soft_gross + 3: _series(lay, vals), lay.soft_net + 3: _series(lay, vals), lay.soft_lat + 3: _series(lay, {1: [40]})}
    zero = Counters(np.zeros((2, len(P.MISC)), np.int64), 0)
    r = to_result(series, lay, layout, 1_000_000_000, zero, zero)
    (h,) = r.softirqs
    assert (h.key, h.name, h.kind) == (3, "NET_RX", "softirq")
    for c, vs in vals.items():
        want = layout.new()
        want.add_many(np.array(vs))
        got = h.gross[c]
        assert got.to_dict() == want.to_dict()
    assert h.latency[1].count == 1 and 0 not in h.latency


def test_counters_are_differences_between_the_two_reads():
    layout = HistogramLayout()
    lay = layout_for(layout)
    before = Counters(np.zeros((2, len(P.MISC)), np.int64), 5)
    now = Counters(before.misc.copy(), 7)
    now.misc[1, P.MISC.index("passes")] = 10
    now.misc[0, P.MISC.index("events")] = 3
    r = to_result({}, lay, layout, 1, before, now)
    assert r.passes == {1: 10} and r.events == {0: 3} and r.lost == {-1: 2} and not r.complete


def test_the_export_provider_keeps_cumulative_histograms_per_vector_and_irq():
    from irqlab.bpf.export_histograms import HistogramProvider
    from irqlab.model.trace_result import Handler, TraceResult

    layout = HistogramLayout()

    def hist(*vals):
        h = layout.new()
        h.add_many(np.array(vals))
        return h

    def result():
        soft = Handler("softirq", 3, "NET_RX", {0: hist(1000, 2000), 1: hist(5000)}, {}, {1: hist(300)})
        loc = Handler("vector", 236, "LOC", {0: hist(20_000)}, {})
        return TraceResult(1, (0, 1), {}, {}, (loc,), (soft,), (), {}, {}, {}, source="bpf")

    p = HistogramProvider(tracer=None, min_interval_s=float("inf"))  # never reads maps
    p.fold(result())
    p.fold(result())
    got = {(h.name, tuple(sorted(h.labels.items()))): h.histogram.count for h in p()}
    assert got == {
        ("softirq_duration", (("vector", "NET_RX"),)): 6,
        ("softirq_latency", (("vector", "NET_RX"),)): 2,
        ("handler_duration", (("irq", "LOC"), ("name", "LOC"))): 2,
    }
