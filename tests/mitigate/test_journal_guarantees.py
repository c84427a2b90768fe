"""What the journal guarantees when the disk is full, the file is hostile or corrupt, or two writers meet.

Each story runs on the fake /proc and /sys of test_journal.fake_root; the disk is "full" by
replacing the journal module's os.write (never `open`), or, as root, by a real 8 KiB tmpfs.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest

from irqlab.errors import IrqlabError
from irqlab.mitigate import journal as journal_mod
from irqlab.mitigate.journal import Journal, JournalError
from irqlab.mitigate.knobs import KnobFiles, Mitigator, affinity_knob, napi_knob
from mitigate.test_journal import CRASHER, fake_root, read

GRO = "/sys/class/net/eth0/gro_flush_timeout"


def os_with_write(write):
    """The os module as the journal sees it, with write() replaced."""
    return types.SimpleNamespace(**{**{n: getattr(os, n) for n in dir(os) if not n.startswith("__")}, "write": write})


def to_journal(fd):
    """Writes to a journal file only (the knob registry lives on another filesystem, /run)."""
    return os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[1] in ("j", "journal")


def short_writes(limit):
    """os.write that writes at most `limit` bytes per call to the journal (a nearly full filesystem)."""
    return lambda fd, data: os.write(fd, bytes(data[:limit]) if to_journal(fd) else data)


def disk_full_after(nbytes):
    """os.write that writes `nbytes` in all to the journal, then fails with ENOSPC."""
    left = [nbytes]

    def write(fd, data):
        if not to_journal(fd):
            return os.write(fd, data)
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = os.write(fd, bytes(data[: left[0]]))
        left[0] -= n
        return n

    return write


def save_record(id_, target, original, new, kind="napi", netns=None, reason="storm"):
    return json.dumps({"op": "save", "id": id_, "kind": kind, "target": target, "netns": netns,
                       "original": original, "new": new, "wall_time": 1.0, "reason": reason}) + "\n"


# --- 1. a record is complete on disk before its knob is written --------------------------


def test_short_journal_writes_are_completed_before_the_knob_is_written(tmp_path, monkeypatch):
    roots = fake_root(tmp_path)
    monkeypatch.setattr(journal_mod, "os", os_with_write(short_writes(7)))
    with Journal(tmp_path / "j") as j:
        Mitigator(KnobFiles(roots), j).apply(napi_knob("eth0", "gro_flush_timeout", None), "200000", "storm")
    monkeypatch.undo()
    with Journal(tmp_path / "j") as j:  # the whole record is there: the change can be undone
        assert [(s.target, s.original, s.new) for s in j.pending()] == [(GRO, "0", "200000")]


def test_on_a_full_disk_the_record_is_undone_and_the_knob_is_not_written(tmp_path, monkeypatch):
    roots = fake_root(tmp_path)
    (tmp_path / "j").write_text("")
    monkeypatch.setattr(journal_mod, "os", os_with_write(disk_full_after(40)))
    with Journal(tmp_path / "j") as j:
        with pytest.raises(JournalError, match="cannot write journal: No space left"):
            Mitigator(KnobFiles(roots), j).apply(napi_knob("eth0", "gro_flush_timeout", None), "200000", "storm")
        assert j.pending() == []
    assert read(roots.sys("class", "net", "eth0", "gro_flush_timeout")) == "0"  # refused, not written
    assert (tmp_path / "j").read_text() == ""  # the cut record was truncated away


@pytest.mark.root
def test_on_a_real_full_tmpfs_the_knob_is_not_written(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    roots = fake_root(tmp_path)
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k,mode=0755", "tmpfs", str(mnt)], check=True)
    try:
        # A journal that ends 60 bytes short of its page, and no free page left on the
        # filesystem: the next record fits only in part (a short write, not an error).
        journal = mnt / "j"
        done = json.dumps({"op": "restored", "id": 1, "wall_time": 1.0, "outcome": "restored"}) + "\n"
        head = save_record(1, GRO, "0", "5", reason="")
        pad = 4096 - 60 - len(head) - len(done)
        journal.write_text(save_record(1, GRO, "0", "5", reason="x" * pad) + done)
        os.chmod(journal, 0o600)
        assert journal.stat().st_size == 4036
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        with Journal(journal) as j:
            with pytest.raises(JournalError, match="No space left"):
                Mitigator(KnobFiles(roots), j).apply(napi_knob("eth0", "gro_flush_timeout", None), "200000", "storm")
        assert read(roots.sys("class", "net", "eth0", "gro_flush_timeout")) == "0"
        assert journal.stat().st_size == 4036  # back to its length before the cut record
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


# --- 2. every original goes back even when the journal cannot record it ----------------


def test_restore_puts_every_knob_back_when_the_journal_cannot_record_it(tmp_path, monkeypatch):
    roots = fake_root(tmp_path)
    (roots.proc("irq", "43")).mkdir()
    roots.proc("irq", "43", "smp_affinity_list").write_text("0-3\n")
    knobs = [affinity_knob(roots, 41), affinity_knob(roots, 42), affinity_knob(roots, 43),
             napi_knob("eth0", "napi_defer_hard_irqs", None), napi_knob("eth0", "gro_flush_timeout", None)]
    with Journal(tmp_path / "j") as j:
        m = Mitigator(KnobFiles(roots), j)
        for k, v in zip(knobs, ["2", "2", "2", "2", "200000"]):
            m.apply(k, v, "storm")
        monkeypatch.setattr(journal_mod, "os", os_with_write(disk_full_after(0)))
        results = m.restore()
    assert [r.outcome for r in results] == ["restored"] * 5
    assert all("No space left" in r.unrecorded for r in results)
    assert [read(Path(k.target if k.kind == "affinity" else roots.sys("class", "net", "eth0", k.target.rsplit("/", 1)[1])))
            for k in knobs] == ["0-3", "0-3", "0-3", "0", "0"]


# --- 3. one owner per knob, host-wide ---------------------------------------------------


def test_a_second_journal_cannot_take_a_knob_the_first_one_changed(tmp_path):
    roots = fake_root(tmp_path)
    knob = napi_knob("eth0", "gro_flush_timeout", None)
    with Journal(tmp_path / "a") as a, Journal(tmp_path / "b") as b:
        first, second = Mitigator(KnobFiles(roots), a), Mitigator(KnobFiles(roots), b)
        first.apply(knob, "200000", "storm")
        with pytest.raises(IrqlabError, match=r"owned by journal .*/a .*running"):
            second.apply(knob, "300000", "storm")
        assert read(roots.sys("class", "net", "eth0", "gro_flush_timeout")) == "200000"
        first.restore()
        second.restore()
        assert read(roots.sys("class", "net", "eth0", "gro_flush_timeout")) == "0"
        # Once the first one gave the knob back, anyone may take it.
        assert second.apply(knob, "300000", "storm").original == "0"
        second.restore()


def test_a_dead_writers_pending_knob_is_refused_until_its_journal_is_replayed(tmp_path):
    roots = fake_root(tmp_path)
    proc = subprocess.run([sys.executable, "-c", CRASHER, str(roots.procfs), str(roots.sysfs), str(tmp_path / "a")], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    knob = napi_knob("eth0", "gro_flush_timeout", None)
    with Journal(tmp_path / "b") as b:
        with pytest.raises(IrqlabError, match=r"stopped irqlab still holds its original; run `irqlab watch --restore --journal .*/a`"):
            Mitigator(KnobFiles(roots), b).apply(knob, "300000", "storm")
        with Journal(tmp_path / "a") as a:  # the replay puts the original back and frees the knob
            Mitigator(KnobFiles(roots), a).restore()
        assert Mitigator(KnobFiles(roots), b).apply(knob, "300000", "storm").original == "0"


def test_a_stale_owner_whose_journal_is_gone_does_not_block(tmp_path):
    roots = fake_root(tmp_path)
    knob = napi_knob("eth0", "gro_flush_timeout", None)
    with Journal(tmp_path / "a") as a:
        Mitigator(KnobFiles(roots), a).apply(knob, "200000", "storm")
    (tmp_path / "a").unlink()  # its holder is gone, and so is anything it could restore
    with Journal(tmp_path / "b") as b:
        assert Mitigator(KnobFiles(roots), b).apply(knob, "300000", "storm") is not None


# --- 5. a journal only root could have written ------------------------------------------


@pytest.mark.parametrize("how", ["other-owner", "group-writable", "world-writable"])
def test_a_journal_others_could_write_is_not_replayed(tmp_path, how):
    if how == "other-owner" and os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    roots = fake_root(tmp_path)
    path = tmp_path / "j"
    path.write_text(save_record(1, GRO, "1000000000", "0"))  # an injected "original"
    os.chmod(path, {"other-owner": 0o600, "group-writable": 0o620, "world-writable": 0o606}[how])
    if how == "other-owner":
        os.chown(path, 65534, 65534)
    with pytest.raises(JournalError, match="owned by uid 65534|writable by group or others"):
        with Journal(path) as j:
            Mitigator(KnobFiles(roots), j).restore()
    assert read(roots.sys("class", "net", "eth0", "gro_flush_timeout")) == "0"


def test_a_journal_path_that_is_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    os.chmod(victim, 0o600)
    (tmp_path / "j").symlink_to(victim)
    with pytest.raises(JournalError, match="symbolic link"):
        with Journal(tmp_path / "j") as j:
            j.save("napi", GRO, None, "0", "1", 1.0, "x")
            j.mark_restored(j.pending()[0], 1.0)
    assert victim.read_text() == "keep me\n"


@pytest.mark.root
def test_as_root_a_journal_in_a_directory_others_may_write_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the directory rule applies to root")
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o777)
    with pytest.raises(JournalError, match="writable by others"):
        Journal(d / "j")


@pytest.mark.parametrize("record", [
    save_record(1, "/etc/passwd", "root::0:0::/root:/bin/sh", "0"),
    save_record(1, "/proc/irq/41/smp_affinity_list", "0-3", "1", kind="affinity"),  # not this root's /proc
    save_record(1, GRO, "1e9", "0"),
    save_record(1, GRO, "0", "0", netns="../../etc"),
])
def test_a_replayed_record_is_held_to_the_rules_of_a_fresh_write(tmp_path, record):
    roots = fake_root(tmp_path)
    path = tmp_path / "j"
    path.write_text(record)
    os.chmod(path, 0o600)
    with Mitigator.open(KnobFiles(roots), str(path)).journal as j:
        assert j.pending() == [] and j.kept_aside is not None
        assert "refused" in j.problems[0]
    assert j.kept_aside.read_text() == record
    assert read(roots.sys("class", "net", "eth0", "gro_flush_timeout")) == "0"


# --- 6. a corrupt journal is kept, what can be restored is restored ----------------------


def corrupt_journal(tmp_path, middle):
    roots = fake_root(tmp_path)
    roots.proc("irq", "41", "smp_affinity_list").write_text("2\n")
    roots.sys("class", "net", "eth0", "gro_flush_timeout").write_text("200000\n")
    text = (save_record(1, str(roots.proc("irq", "41", "smp_affinity_list")), "0-3", "2", kind="affinity")
            + middle + save_record(3, GRO, "0", "200000"))
    (tmp_path / "j").write_text(text)
    os.chmod(tmp_path / "j", 0o600)
    return roots, text


@pytest.mark.parametrize("middle", [
    '{"op": "save", "id": 2, "kind": "napi", "tar\n',  # cut in the middle, then written after
    save_record(2, GRO, "0", "1").replace('"original": "0"', '"original": 0'),  # a number, not a string
    save_record(2, GRO, "0", "1").replace('"id": 2', '"id": "2"'),
    '{"op": "restored", "id": 9, "wall_time": 1.0, "outcome": "restored"}\n',  # restores nothing saved
    "[1, 2]\n",
])
def test_a_corrupt_record_in_the_middle_keeps_the_journal_aside_and_restores_the_rest(tmp_path, middle):
    roots, text = corrupt_journal(tmp_path, middle)
    with Journal(tmp_path / "j") as j:
        results = Mitigator(KnobFiles(roots), j).restore()
    aside = list(tmp_path.glob("j.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == text  # the evidence, never truncated
    assert [r.outcome for r in results] == ["restored", "restored"]
    assert read(roots.proc("irq", "41", "smp_affinity_list")) == "0-3"
    assert read(roots.sys("class", "net", "eth0", "gro_flush_timeout")) == "0"
    assert "line 2" in j.problems[0] and str(aside[0]) in j.problems[0]


def test_a_torn_last_line_is_not_corruption_and_the_next_record_starts_on_its_own_line(tmp_path):
    roots = fake_root(tmp_path)
    with Journal(tmp_path / "j") as j:
        Mitigator(KnobFiles(roots), j).apply(affinity_knob(roots, 41), "2", "x")
    with open(tmp_path / "j", "a") as f:
        f.write('{"op": "save", "id": 2, "kind": "affin')
    with Mitigator.open(KnobFiles(roots), str(tmp_path / "j")) as m:
        assert m.journal.problems == [] and [s.id for s in m.journal.pending()] == [1]
        m.apply(napi_knob("eth0", "gro_flush_timeout", None), "200000", "y")
    with Journal(tmp_path / "j") as j:
        assert [s.target for s in j.pending()] == [str(roots.proc("irq", "41", "smp_affinity_list")), GRO]
    assert list(tmp_path.glob("j.corrupt-*")) == []


def test_the_same_journal_reached_by_another_path_is_still_the_knobs_owner(tmp_path):
    roots = fake_root(tmp_path)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    knob = napi_knob("eth0", "gro_flush_timeout", None)
    with Journal(tmp_path / "real" / "j") as j:
        Mitigator(KnobFiles(roots), j).apply(knob, "200000", "storm")
    with Journal(tmp_path / "link" / "j") as j:  # the next start, spelled differently
        m = Mitigator(KnobFiles(roots), j)
        m.restore()
        assert m.apply(knob, "300000", "storm").original == "0"
        m.restore()
