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


def test_the_bh_work_programs_go_on_only_inside_a_tasklet_or_hi_softirq_and_only_then_count():
    from irqlab.bpf.asm import JMP, STX

    formats = load_formats(EVENTS)
    lay = layout_for(HistogramLayout())
    specs = {s.event: s for s in P.build_all(FDS, lay, formats)}
    func = formats[P.BH_WORK_EVENTS[0]].field("function")
    assert field_loads(specs[P.BH_WORK_EVENTS[0]].insns) == [(func.offset, 0x18)]  # the pointer, as a double word
    assert field_loads(specs[P.BH_WORK_EVENTS[1]].insns) == []
    stamps = {8 * (P.S_SOFT_TS + v) for v in (0, 6)}  # HI and TASKLET entry stamps (model/vectors.py)
    events = 8 * (P.S_MISC + P.MISC.index("events"))
    for q in P.BH_WORK_EVENTS:
        insns = specs[q].insns
        loads = [k for k, i in enumerate(insns) if i.code & 0x07 == LDX and i.src == 9 and i.off in stamps]
        assert {insns[k].off for k in loads} == stamps, q
        test = next(k for k in range(max(loads), len(insns)) if insns[k].code & 0x07 == JMP)
        assert insns[test].code & 0xF0 == 0x10 and insns[test].imm == 0  # jeq 0: neither stamp, no run
        assert insns[test + insns[test].off + 1:][:1] == insns[-2:-1]  # to the exit, r0 = 0
        counted = [k for k, i in enumerate(insns) if i.code & 0x07 == STX and i.dst == 9 and i.off == events]
        assert counted and min(counted) > test  # kworker work is not an event of the report


def test_bh_work_programs_need_both_workqueue_events():
    formats = load_formats(EVENTS)
    lay = layout_for(HistogramLayout())
    assert {s.name for s in P.build_all(FDS, lay, formats)} >= {"irqlab_bh_in", "irqlab_bh_out"}
    for q in P.BH_WORK_EVENTS:  # a kernel with only one of them (or neither, before 3.x) gets neither program
        partial = {k: v for k, v in formats.items() if k != q}
        assert not any(s.name.startswith("irqlab_bh") for s in P.build_all(FDS, lay, partial))


def test_the_bh_work_series_becomes_a_bhwork_row_named_by_its_last_function():
    layout = HistogramLayout()
    lay = layout_for(layout)
    addr = 0xFFFFFFFF81A2B3C0
    key = addr - (1 << 64)  # kept as the int64 the tracefs batch stores (tracing/symbols.py Kallsyms.lookup())
    gross, net = _series(lay, {0: [2000, 3000], 1: [1500]}), _series(lay, {0: [1900, 3000], 1: [1500]})
    gross[1, P.H_KEY] = addr  # the CPU that saw it last; the other keeps 0
    tasklet = _series(lay, {1: [800]})
    tasklet[1, P.H_KEY] = addr + 0x40
    zero = Counters(np.zeros((2, len(P.MISC)), np.int64), 0)
    now = Counters(zero.misc.copy(), 0)
    now.misc[0, P.MISC.index("trunc_bhwork")] = 2
    series = {lay.bhwork: gross, lay.bhwork + 1: net, lay.tasklet: tasklet}
    r = to_result(series, lay, layout, 1_000_000_000, zero, now, symbols={key: "tcp_tsq_workfn"})
    rows = {h.kind: h for h in r.tasklets}
    assert set(rows) == {"tasklet", "bhwork"}
    bh = rows["bhwork"]
    assert (bh.key, bh.name) == (key, "tcp_tsq_workfn")
    assert {c: h.count for c, h in bh.gross.items()} == {0: 2, 1: 1} and bh.net[0].sum_ns == 4900
    assert rows["tasklet"].key == key + 0x40 and rows["tasklet"].name not in ("", "tcp_tsq_workfn")  # not in the symbols
    assert r.truncated["bhwork"] == {0: 2}
    # No BH work seen and none cut: no "bhwork" in truncated, as with the tracefs backend.
    assert "bhwork" not in to_result({lay.tasklet: tasklet}, lay, layout, 1, zero, zero).truncated
