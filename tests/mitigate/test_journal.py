"""The SavedSetting journal and the mitigator, on a fake /proc and /sys tree (no root needed)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from irqlab.errors import IrqlabError
from irqlab.mitigate.journal import Journal, JournalError
from irqlab.mitigate.knobs import Knob, KnobFiles, Mitigator, affinity_knob, napi_knob
from irqlab.sources.fs import Roots


def fake_root(tmp_path: Path, isolated: str = "") -> Roots:
    """A /proc and /sys with IRQs 41 and 42 (affinity 0-3), CPUs 0-3 online, eth0's NAPI knobs."""
    proc, sys_ = tmp_path / "proc", tmp_path / "sys"
    for irq in (41, 42):
        (proc / "irq" / str(irq)).mkdir(parents=True)
        (proc / "irq" / str(irq) / "smp_affinity_list").write_text("0-3\n")
    cpu = sys_ / "devices" / "system" / "cpu"
    cpu.mkdir(parents=True)
    (cpu / "online").write_text("0-3\n")
    (cpu / "isolated").write_text(isolated + "\n")
    net = sys_ / "class" / "net" / "eth0"
    net.mkdir(parents=True)
    (net / "napi_defer_hard_irqs").write_text("0\n")
    (net / "gro_flush_timeout").write_text("0\n")
    return Roots(proc, sys_)


def read(path: Path) -> str:
    return path.read_text().strip()


def test_apply_saves_the_original_before_writing_and_restore_writes_it_back(tmp_path):
    roots = fake_root(tmp_path)
    with Journal(tmp_path / "j") as j:
        m = Mitigator(KnobFiles(roots), j, wall_time=lambda: 1.0)
        saved = m.apply(affinity_knob(roots, 41), "3", "test storm")
        assert (saved.original, saved.new) == ("0-3", "3")
        assert read(roots.proc("irq", "41", "smp_affinity_list")) == "3"
        records = [json.loads(line) for line in (tmp_path / "j").read_text().splitlines()]
        assert records[0]["op"] == "save" and records[0]["original"] == "0-3" and records[0]["reason"] == "test storm"
        results = m.restore()
    assert [r.outcome for r in results] == ["restored"]
    assert read(roots.proc("irq", "41", "smp_affinity_list")) == "0-3"
    assert (tmp_path / "j").read_text() == ""  # nothing pending: compacted


def test_restore_goes_newest_first_and_a_knob_is_saved_once(tmp_path):
    roots = fake_root(tmp_path)
    with Journal(tmp_path / "j") as j:
        m = Mitigator(KnobFiles(roots), j)
        m.apply(napi_knob("eth0", "napi_defer_hard_irqs", None), "2", "a")
        m.apply(napi_knob("eth0", "gro_flush_timeout", None), "200000", "a")
        # A second storm wanting the same knob must not overwrite the saved original.
        assert m.apply(napi_knob("eth0", "napi_defer_hard_irqs", None), "5", "b") is None
        order = [r.setting.target.rsplit("/", 1)[1] for r in m.restore()]
    assert order == ["gro_flush_timeout", "napi_defer_hard_irqs"]
    assert read(roots.sys("class", "net", "eth0", "napi_defer_hard_irqs")) == "0"


@pytest.mark.parametrize(
    "value, message",
    [("", "empty"), ("7", "not online"), ("0-", "not a CPU list"), ("1", "isolated")],
)
def test_an_affinity_value_is_validated_before_anything_is_saved(tmp_path, value, message):
    roots = fake_root(tmp_path, isolated="1")
    with Journal(tmp_path / "j") as j:
        with pytest.raises(IrqlabError, match=message):
            Mitigator(KnobFiles(roots), j).apply(affinity_knob(roots, 41), value, "x")
        assert j.pending() == []


@pytest.mark.parametrize("attr, value", [("napi_defer_hard_irqs", "-1"), ("napi_defer_hard_irqs", "2147483648"), ("gro_flush_timeout", "1e6"), ("mtu", "1")])
def test_napi_values_outside_what_the_kernel_accepts_are_refused(tmp_path, attr, value):
    roots = fake_root(tmp_path)
    with Journal(tmp_path / "j") as j, pytest.raises(IrqlabError):
        Mitigator(KnobFiles(roots), j).apply(napi_knob("eth0", attr, None), value, "x")


def test_a_tampered_original_in_the_journal_is_validated_and_not_written(tmp_path):
    roots = fake_root(tmp_path)
    with Journal(tmp_path / "j") as j:
        j.save("napi", "/sys/class/net/eth0/gro_flush_timeout", None, "; rm -rf /", "2", 0.0, "x")
        results = Mitigator(KnobFiles(roots), j).restore()
        assert [r.outcome for r in results] == ["failed"] and len(j.pending()) == 1
    assert read(roots.sys("class", "net", "eth0", "gro_flush_timeout")) == "0"


def test_an_irq_that_vanished_is_restored_as_gone(tmp_path):
    roots = fake_root(tmp_path)
    with Journal(tmp_path / "j") as j:
        m = Mitigator(KnobFiles(roots), j)
        m.apply(affinity_knob(roots, 42), "2", "x")
        for f in roots.proc("irq", "42").iterdir():
            f.unlink()
        roots.proc("irq", "42").rmdir()
        assert [r.outcome for r in m.restore()] == ["gone"]
        assert j.pending() == []


def test_a_second_watch_on_the_same_journal_is_refused(tmp_path):
    with Journal(tmp_path / "j"):
        with pytest.raises(JournalError, match="locked"):
            Journal(tmp_path / "j")


def test_a_torn_last_line_from_a_kill_mid_append_is_ignored(tmp_path):
    roots = fake_root(tmp_path)
    with Journal(tmp_path / "j") as j:
        Mitigator(KnobFiles(roots), j).apply(affinity_knob(roots, 41), "2", "x")
    with open(tmp_path / "j", "a") as f:
        f.write('{"op": "save", "id": 2, "kind": "affin')
    with Journal(tmp_path / "j") as j:
        assert [s.id for s in j.pending()] == [1]


CRASHER = textwrap.dedent(
    """
    import os, signal, sys
    from irqlab.mitigate.journal import Journal
    from irqlab.mitigate.knobs import KnobFiles, Mitigator, affinity_knob, napi_knob
    from irqlab.sources.fs import Roots
    roots = Roots.of(sys.argv[1], sys.argv[2])
    m = Mitigator(KnobFiles(roots), Journal(sys.argv[3]))
    m.apply(affinity_knob(roots, 41), "1", "storm")
    m.apply(napi_knob("eth0", "gro_flush_timeout", None), "200000", "storm")
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_after_a_sigkill_mid_mitigation_the_next_start_restores_every_original(tmp_path):
    roots = fake_root(tmp_path)
    proc = subprocess.run([sys.executable, "-c", CRASHER, str(roots.procfs), str(roots.sysfs), str(tmp_path / "j")], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert read(roots.proc("irq", "41", "smp_affinity_list")) == "1"  # left changed by the killed run
    with Journal(tmp_path / "j") as j:  # the kernel dropped the dead process's flock
        results = Mitigator(KnobFiles(roots), j).restore()
    assert sorted(r.outcome for r in results) == ["restored", "restored"]
    assert read(roots.proc("irq", "41", "smp_affinity_list")) == "0-3"
    assert read(roots.sys("class", "net", "eth0", "gro_flush_timeout")) == "0"


def test_a_write_that_fails_is_marked_not_applied_and_needs_no_restore(tmp_path, monkeypatch):
    roots = fake_root(tmp_path)

    def refuse(self, knob, value):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(KnobFiles, "write", refuse)
    with Journal(tmp_path / "j") as j:
        with pytest.raises(OSError):
            Mitigator(KnobFiles(roots), j).apply(Knob("napi", "/sys/class/net/eth0/gro_flush_timeout"), "5", "x")
        assert j.pending() == []
