"""auto falls back to tracefs, with one line, when the BPF programs refuse this kernel's tracepoint layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from irqlab.bpf import backend as bpf_backend
from irqlab.bpf.backend import BpfLayoutUnsupported, load_formats
from irqlab.tracer import lifecycle
from irqlab.tracer.lifecycle import open_tracer

KERNELS = Path(__file__).resolve().parent.parent / "fixtures" / "bpf" / "kernels"


class Session:
    made: list[Session] = []

    def __init__(self, **kw) -> None:
        Session.made.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def bpf_on(kernel: str):
    """A BpfTracer whose open reads the format files of a fixture kernel, as the real one reads tracefs."""

    class Bpf:
        def __init__(self, *args) -> None:
            pass

        def __enter__(self):
            load_formats(KERNELS / kernel / "events")
            return self

        def __exit__(self, *exc) -> None:
            pass

    return Bpf


@pytest.fixture
def permitted(monkeypatch):
    Session.made = []
    monkeypatch.setattr(bpf_backend, "check_permitted", lambda: None)
    monkeypatch.setattr(lifecycle, "TraceSession", Session)


def test_auto_on_a_layout_the_programs_refuse_falls_back_to_tracefs_with_the_reason(permitted, monkeypatch):
    monkeypatch.setattr(lifecycle, "BpfTracer", bpf_on("vec-u16"))
    notes: list[str] = []
    with open_tracer("auto", on_note=notes.append) as tracer:
        assert tracer.backend == "tracefs" and len(Session.made) == 1
    assert notes == ["BPF backend: irq:softirq_entry field 'vec' is unsigned short (2 bytes); "
                     "the programs read 4 bytes; using tracefs"]
    assert tracer.note == notes[0]


def test_auto_on_a_layout_the_programs_read_stays_bpf(permitted, monkeypatch):
    monkeypatch.setattr(lifecycle, "BpfTracer", bpf_on("rt-4.19"))
    notes: list[str] = []
    with open_tracer("auto", on_note=notes.append) as tracer:
        assert tracer.backend == "bpf"
    assert notes == [] and Session.made == []


def test_bpf_asked_for_on_a_refused_layout_is_the_one_line_error(permitted, monkeypatch):
    monkeypatch.setattr(lifecycle, "BpfTracer", bpf_on("no-sched-switch"))
    with pytest.raises(BpfLayoutUnsupported, match=r"^BPF backend: no sched:sched_switch event$"):
        open_tracer("bpf")
    assert Session.made == []
