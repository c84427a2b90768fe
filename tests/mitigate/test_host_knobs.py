"""HostKnobs: the Knobs protocol on a host, a plan's PlannedWrites carried out through the journal.

What `irqlab watch` does through it today, and what an `irqlab apply PLAN` would do: the
journal's record is on disk before the knob is written, a knob another journal owns is
refused, and restore() puts the originals back.
"""

from __future__ import annotations

import json

import pytest

from irqlab.mitigate import journal as journal_mod
from irqlab.mitigate.coalesce import CoalesceUnsupported
from irqlab.mitigate.knobs import HostKnobs, KnobFiles
from irqlab.model.knob import Knob, KnobRefused, KnobUnsupported, PlannedWrite
from mitigate.test_journal import fake_root, read
from mitigate.test_journal_guarantees import disk_full_after, os_with_write

MOVE = PlannedWrite("affinity", "IRQ 41", "3", "storm irq:41", irq=41)
DEFER = PlannedWrite("napi", "eth0/napi_defer_hard_irqs", "2", "storm softirq:NET_RX", dev="eth0", attr="napi_defer_hard_irqs")


def test_a_planned_write_is_journaled_on_disk_before_the_knob_changes(tmp_path, monkeypatch):
    roots = fake_root(tmp_path)
    seen = []
    real_write = KnobFiles.write

    def spy(self, knob, value):  # what the journal holds at the moment the knob is written
        seen.append([json.loads(line) for line in (tmp_path / "j").read_text().splitlines()])
        real_write(self, knob, value)

    monkeypatch.setattr(KnobFiles, "write", spy)
    with HostKnobs.open(roots, str(tmp_path / "j")) as knobs:
        assert knobs.apply(MOVE) == "0-3"
        assert read(roots.proc("irq", "41", "smp_affinity_list")) == "3"
        assert [(r["op"], r["target"], r["original"], r["new"], r["reason"]) for r in seen[0]] == [
            ("save", str(roots.proc("irq", "41", "smp_affinity_list")), "0-3", "3", "storm irq:41")]
        assert [r.outcome for r in knobs.restore()] == ["restored"]
    assert read(roots.proc("irq", "41", "smp_affinity_list")) == "0-3"


def test_restore_of_some_knobs_leaves_the_others_changed(tmp_path):
    roots = fake_root(tmp_path)
    with HostKnobs.open(roots, str(tmp_path / "j")) as knobs:
        knobs.apply(MOVE)
        knobs.apply(DEFER)
        assert [r.knob for r in knobs.restore({knobs.knob(DEFER)})] == [Knob("napi", "/sys/class/net/eth0/napi_defer_hard_irqs")]
        assert read(roots.sys("class", "net", "eth0", "napi_defer_hard_irqs")) == "0"
        assert read(roots.proc("irq", "41", "smp_affinity_list")) == "3"
        knobs.restore()


def test_without_a_journal_it_names_and_reads_knobs_and_writes_none(tmp_path):
    roots = fake_root(tmp_path)
    knobs = HostKnobs(roots)
    assert knobs.knob(MOVE) == Knob("affinity", str(roots.proc("irq", "41", "smp_affinity_list")))
    assert knobs.read(DEFER) == "0"
    with pytest.raises(KnobRefused, match="no journal is open"):
        knobs.apply(MOVE)
    assert read(roots.proc("irq", "41", "smp_affinity_list")) == "0-3" and knobs.restore() == []


def test_a_journal_that_cannot_record_the_write_refuses_it_naming_the_knob(tmp_path, monkeypatch):
    roots = fake_root(tmp_path)
    with HostKnobs.open(roots, str(tmp_path / "j")) as knobs:
        monkeypatch.setattr(journal_mod, "os", os_with_write(disk_full_after(0)))
        with pytest.raises(KnobRefused, match=r"smp_affinity_list: not written, the journal cannot record it: .*No space left"):
            knobs.apply(MOVE)
        monkeypatch.undo()
    assert read(roots.proc("irq", "41", "smp_affinity_list")) == "0-3"


def test_a_knob_another_journal_owns_is_refused_with_its_owner(tmp_path):
    roots = fake_root(tmp_path)
    with HostKnobs.open(roots, str(tmp_path / "a")) as first, HostKnobs.open(roots, str(tmp_path / "b")) as second:
        assert first.apply(MOVE) == "0-3"
        with pytest.raises(KnobRefused, match=f"owned by journal {tmp_path / 'a'}"):
            second.apply(PlannedWrite("affinity", "IRQ 41", "2", "x", irq=41))
        first.restore()


def test_a_driver_without_coalescing_is_a_skip_for_the_core():
    assert issubclass(CoalesceUnsupported, KnobUnsupported)
