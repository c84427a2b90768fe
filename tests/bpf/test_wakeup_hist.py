"""The wake-up timing programs as data (built from formats captured on Linux 6.18), and their maps read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from irqlab.analysis.wakeup import summarize_bpf
from irqlab.bpf import wakeup_hist as W
from irqlab.bpf.asm import JMP, LD, LDX, decode, encode
from irqlab.model.histogram import Histogram
from irqlab.model.trace_result import HistogramLayout
from irqlab.tracing.formats import load_format

EVENTS = Path(__file__).resolve().parent.parent / "fixtures" / "bpf" / "events"
FDS = W.WakeupMaps(pids=3, timers=4, pending=5, hist=6, counters=7, each=8)
WAKEUP_FN = 0xFFFFFFFF8142DE30


def fmt(q: str):
    return load_format(EVENTS, q)


def ctx_loads(insns, ctx_reg: int = 6) -> set[int]:
    """Offsets read from the tracepoint record (kept in r6 from the first instruction until r6 is reused)."""
    out = set()
    for i in insns[1:]:
        if i.code & 0x07 == LDX and i.src == ctx_reg:
            out.add(i.off)
        elif i.dst == ctx_reg and i.code & 0x07 != LDX:
            break
    return out


def imm64s(insns) -> list[int]:
    """Plain 64-bit immediates (not map fds)."""
    out = []
    for a, b in zip(insns, insns[1:]):
        if a.code == LD | 0x18 and a.src == 0:
            out.append(((b.imm & 0xFFFFFFFF) << 32) | (a.imm & 0xFFFFFFFF))
    return out


def test_the_deadline_is_the_softexpires_field_of_hrtimer_start_at_its_format_offset():
    start = fmt("timer:hrtimer_start")
    insns = W.hrtimer_start(FDS, start, WAKEUP_FN)
    assert decode(encode(insns)) == insns
    want = {start.field(n).offset for n in ("hrtimer", "softexpires", "function")}
    assert ctx_loads(insns) == want == {8, 32, 16}


def test_only_hrtimer_wakeup_timers_are_taken_and_no_filter_when_kallsyms_hides_it():
    start = fmt("timer:hrtimer_start")
    assert imm64s(W.hrtimer_start(FDS, start, WAKEUP_FN)) == [WAKEUP_FN]
    hidden = W.hrtimer_start(FDS, start, 0)
    assert imm64s(hidden) == [] and start.field("function").offset not in ctx_loads(hidden)
    exp = fmt("timer:hrtimer_expire_entry")
    assert imm64s(W.hrtimer_expire(FDS, exp, WAKEUP_FN)) == [WAKEUP_FN]
    assert ctx_loads(W.hrtimer_expire(FDS, exp, WAKEUP_FN)) == {exp.field(n).offset for n in ("function", "hrtimer")}


def test_the_switch_program_reads_next_pid_and_writes_the_ring_only_when_asked():
    sw = fmt("sched:sched_switch")
    lay = W.series_layout(HistogramLayout())
    plain, kept = W.sched_switch(FDS, lay, sw, 0), W.sched_switch(FDS, lay, sw, 500)
    assert ctx_loads(plain) == {sw.field("next_pid").offset} == {56}
    map_fds = lambda insns: {i.imm for i in insns if i.code == LD | 0x18 and i.src == 1}  # noqa: E731
    assert FDS.each not in map_fds(plain) and FDS.each in map_fds(kept)
    assert FDS.hist in map_fds(plain) and FDS.timers not in map_fds(plain)
    exp = W.hrtimer_expire(FDS, fmt("timer:hrtimer_expire_entry"))
    calls = [i.imm for i in exp if i.code == JMP | 0x80]
    assert 3 in calls, "the expiry deletes the timer's entry (map_delete_elem)"


def test_hrtimer_wakeup_address_from_kallsyms_and_zero_when_hidden(tmp_path):
    ks = tmp_path / "kallsyms"
    ks.write_text("ffffffff8142de00 t hrtimer_nanosleep_restart\nffffffff8142de30 T hrtimer_wakeup\n")
    assert W.hrtimer_wakeup_address(str(ks)) == WAKEUP_FN
    ks.write_text("0000000000000000 T hrtimer_wakeup\n")
    assert W.hrtimer_wakeup_address(str(ks)) == 0
    assert W.hrtimer_wakeup_address(str(tmp_path / "absent")) == 0


def hist_of(values) -> Histogram:
    h = Histogram()
    h.add_many(np.asarray(values, np.int64))
    return h


def test_bpf_summary_counts_every_sample_as_timed_without_switch_in_or_not_seen():
    parts = {"irq": {0: hist_of([5_000, 7_000])}, "thread": {0: hist_of([10_000, 11_000])},
             "kernel": {0: hist_of([15_000, 18_000])}}
    counters = {"no_switch_in": {0: 1}, "timed": {0: 2}}
    samples = np.array([20_000, 25_000, 1_300_000, 30_000], np.int64)
    (w, other) = summarize_bpf([(0, 11, samples), (1, 12, np.array([9_000], np.int64))], parts, counters)
    assert (w.samples, w.timed, w.no_switch_in, w.not_seen) == (4, 2, 1, 1)
    assert w.user.count == 4 and w.kernel_above_user is None and w.source == "bpf"
    assert w.irq.sum_ns + w.thread.sum_ns == w.kernel.sum_ns
    # a CPU whose probe was never switched in by a timer: empty parts, every sample not seen
    assert (other.timed, other.not_seen, other.irq.count) == (0, 1, 0)
