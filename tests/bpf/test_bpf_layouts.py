"""Tracepoint layouts of other kernels: the BPF programs read the ones they understand and refuse the rest in one line.

Fixtures: tests/fixtures/bpf/kernels/ (README there).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from irqlab.bpf import programs as P
from irqlab.bpf.asm import LDX
from irqlab.bpf.backend import BpfLayoutUnsupported, check_layout, layout_for, load_formats
from irqlab.bpf.syscall import BpfUnavailable
from irqlab.model.trace_result import HistogramLayout

KERNELS = Path(__file__).resolve().parent.parent / "fixtures" / "bpf" / "kernels"
FDS = P.Maps(state=3, hist=4, ctl=5, kpids=6)


def first_load(insns) -> tuple[int, int]:
    """(offset, size code) of the first load from r1, the tracepoint record."""
    return next((i.off, i.code & 0x18) for i in insns if i.code & 0x07 == LDX and i.src == 1)


def test_a_4_19_kernel_without_tasklet_events_is_understood():
    formats = load_formats(KERNELS / "linux-4.19" / "events")
    specs = P.build_all(FDS, layout_for(HistogramLayout()), formats)
    events = {s.event for s in specs}
    assert "irq:softirq_entry" in events and not any("tasklet" in e for e in events)  # tasklet events: 5.13


def test_the_rt_patch_sets_extra_common_fields_move_vec_to_12_and_the_programs_follow():
    formats = load_formats(KERNELS / "rt-4.19" / "events")
    assert check_layout(formats) is None
    insns = P.softirq_entry(FDS, layout_for(HistogramLayout()), formats["irq:softirq_entry"])
    assert first_load(insns) == (12, 0x00)  # a 4-byte load at the offset the format gives


def test_a_two_byte_vec_is_refused_in_one_line():
    with pytest.raises(BpfLayoutUnsupported) as info:
        load_formats(KERNELS / "vec-u16" / "events")
    msg = str(info.value)
    assert "\n" not in msg and isinstance(info.value, BpfUnavailable)
    assert msg == "BPF backend: irq:softirq_entry field 'vec' is unsigned short (2 bytes); the programs read 4 bytes"


def test_a_kernel_without_sched_switch_is_refused():
    with pytest.raises(BpfLayoutUnsupported, match=r"^BPF backend: no sched:sched_switch event$"):
        load_formats(KERNELS / "no-sched-switch" / "events")


def test_a_missing_or_misaligned_field_is_refused(tmp_path):
    events = tmp_path / "events"
    shutil.copytree(KERNELS / "linux-4.19" / "events", events)
    fmt = events / "irq" / "irq_handler_entry" / "format"
    fmt.write_text(fmt.read_text().replace("int irq;", "int irq_nr;"))
    with pytest.raises(BpfLayoutUnsupported, match=r"irq:irq_handler_entry has no field 'irq' \(fields: irq_nr, name\)"):
        load_formats(events)
    fmt.write_text(fmt.read_text().replace("int irq_nr;\toffset:8;", "int irq;\toffset:10;"))
    with pytest.raises(BpfLayoutUnsupported, match="offset 10 is not 4-byte aligned"):
        load_formats(events)
