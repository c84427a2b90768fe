"""The recorder's limits: a refused file is left untouched, --retention-size bounds the disk,
a full disk drops samples (and says so once) instead of stopping the recording."""

from __future__ import annotations

import hashlib
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import builders as b
from irqlab.errors import IrqlabError
from irqlab.outputs.recorder import SCHEMA_VERSION, DroppingWriter, Recorder, Retention, disk_bytes

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"
REPO = Path(__file__).resolve().parents[2]
SIDE_FILES = ("-wal", "-shm", "-journal")
SCHEMA_V1 = Path(__file__).resolve().parents[1] / "fixtures" / "export" / "schema-v1.sql"


def _state(path: Path) -> tuple[str, list[str]]:
    """The file's hash and the names of every file beside it."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(os.listdir(path.parent))


def _newer_recording(path: Path) -> None:
    Recorder(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()


def _foreign(path: Path, wal: bool = False, user_version: int = 0) -> None:
    db = sqlite3.connect(path)
    if wal:
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES (42)")
    db.execute(f"PRAGMA user_version = {user_version}")
    db.commit()
    db.close()


REFUSED = {
    "newer irqlab recording": (_newer_recording, "newer"),
    "foreign SQLite database": (_foreign, "not an irqlab recording"),
    "foreign SQLite database in WAL mode": (lambda p: _foreign(p, wal=True), "not an irqlab recording"),
    "foreign SQLite database with its own user_version": (lambda p: _foreign(p, user_version=1), "not an irqlab recording"),
    "not an SQLite file": (lambda p: p.write_bytes(b"this is not sqlite\n" * 300), "not an irqlab recording"),
}


@pytest.mark.parametrize("kind", REFUSED)
def test_a_refused_file_is_left_byte_for_byte_as_it_was(tmp_path, kind):
    make, message = REFUSED[kind]
    path = tmp_path / "x.db"
    make(path)
    before = _state(path)
    assert not any((tmp_path / f"x.db{s}").exists() for s in SIDE_FILES)
    with pytest.raises(IrqlabError, match=message) as err:
        Recorder(path, Retention(max_bytes=1 << 20), "0.0")
    assert "\n" not in str(err.value)
    assert _state(path) == before  # same bytes, and no -wal, -shm or -journal left beside it


@pytest.mark.parametrize("kind", REFUSED)
def test_record_refuses_with_one_line_and_changes_nothing(tmp_path, kind, capsys):
    from irqlab.cli.main import main

    make, message = REFUSED[kind]
    path = tmp_path / "x.db"
    make(path)
    before = _state(path)
    root = CAPTURES / "vm-idle" / "a"
    assert main(["record", "-o", str(path), "--procfs", str(root / "proc"), "--sysfs", str(root / "sys")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert _state(path) == before


# --- --retention-size bounds the database, its WAL and its -shm -------------------------

RNG = np.random.default_rng(7)


def _busy_sample(i: int, cpus: int = 8, lines: int = 120):
    """A synthetic snapshot whose counts do not compress: about 4 kB stored, as a busy host's."""
    counts = RNG.integers(0, 1 << 31, size=(lines, cpus))
    snap = b.snapshot(i, interrupts=b.interrupts(list(range(cpus)), [(str(32 + n), f"dev{n}", list(map(int, row))) for n, row in enumerate(counts)]))
    return snap


def test_retention_size_bounds_the_files_on_disk_after_every_sample(tmp_path):
    path = tmp_path / "r.db"
    limit = 256 << 10
    totals = []
    with Recorder(path, Retention(max_bytes=limit)) as rec:
        for i in range(250):
            rec.append(_busy_sample(i))
            totals.append(disk_bytes(path))
            assert totals[-1] <= limit, f"sample {i}: {totals[-1]} bytes on disk over the {limit}-byte limit"
        kept = rec.count()
        newest = rec.db.execute("SELECT max(taken_ns) FROM samples").fetchone()[0]
    assert 10 <= kept < 250  # the limit was reached and the oldest samples deleted
    assert newest == 249 * b.NS
    assert max(totals) > limit * 0.8  # the space was used, not thrown away early
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_reader_that_pins_the_wal_does_not_make_the_recorder_empty_the_file(tmp_path):
    """While a reader (top --replay) holds a read transaction, the WAL cannot be truncated;
    the recorder must not take the WAL's size out on the samples, and it must not hang."""
    path = tmp_path / "r.db"
    limit = 256 << 10
    with Recorder(path, Retention(max_bytes=limit)) as rec:
        for i in range(40):
            rec.append(_busy_sample(i))
        settled = rec.count()
        reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM samples").fetchone()
        for i in range(40, 50):
            rec.append(_busy_sample(i))
        reader.rollback()
        reader.close()
        rec.append(_busy_sample(50))
        assert disk_bytes(path) <= limit  # bounded again once the reader lets go
        assert rec.count() >= settled * 0.8  # only the database's own excess was deleted


def test_a_new_recording_can_give_pages_back():
    """auto_vacuum must be set before the first page is written, and journal_mode=WAL writes it."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        with Recorder(Path(d) / "r.db") as rec:
            assert rec.db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL


def test_an_old_file_without_auto_vacuum_is_brought_under_the_limit(tmp_path):
    """Files made before auto_vacuum was set ahead of the WAL switch have auto_vacuum=NONE:
    freed pages stay in the file for ever, so a size limit converts the file (one VACUUM)."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")  # as the recorder did: this writes page 1 ...
    db.executescript(SCHEMA_V1.read_text())  # ... so the schema's auto_vacuum comes too late
    db.close()
    with Recorder(path) as rec:
        assert rec.migrated_from == 1
        assert rec.db.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
        for i in range(150):
            rec.append(_busy_sample(i))
    assert disk_bytes(path) > 512 << 10
    limit = 256 << 10
    with Recorder(path, Retention(max_bytes=limit)) as rec:
        for i in range(150, 160):
            rec.append(_busy_sample(i))
            assert disk_bytes(path) <= limit
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("size", ["10k", "100000"])
def test_a_retention_size_too_small_to_hold_a_recording_is_refused(tmp_path, size, capsys):
    from irqlab.cli.main import main

    root = CAPTURES / "vm-idle" / "a"
    argv = ["record", "-o", str(tmp_path / "x.db"), "--retention-size", size, "--procfs", str(root / "proc"), "--sysfs", str(root / "sys")]
    assert main(argv) == 64
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at least" in err
    assert not (tmp_path / "x.db").exists()


# --- a full disk: drop samples, say so once, resume -------------------------------------


class FullDisk(sqlite3.Connection):
    """A connection whose sample inserts fail as SQLite fails on ENOSPC, while `full` is set."""

    full = False

    def execute(self, sql, *args):
        if FullDisk.full and sql.lstrip().upper().startswith("INSERT INTO SAMPLES"):
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, *args)


def test_a_full_disk_drops_samples_says_so_once_and_resumes(tmp_path):
    said: list[str] = []
    path = tmp_path / "r.db"
    FullDisk.full = False
    try:
        with Recorder(path, connection_class=FullDisk) as rec:
            w = DroppingWriter(rec, said.append)
            assert [w.append(_busy_sample(i)) for i in range(3)] == [1, 2, 3]
            FullDisk.full = True
            assert [w.append(_busy_sample(i)) for i in range(3, 8)] == [None] * 5
            assert said == [f"{path}: disk full: dropping samples"]
            FullDisk.full = False
            assert w.append(_busy_sample(8)) is not None
            assert w.append(_busy_sample(9)) is not None
            assert said[1:] == [f"{path}: space back: recording resumed, 5 samples dropped"]
            FullDisk.full = True
            assert w.append(_busy_sample(10)) is None
            assert said[2:] == [f"{path}: disk full: dropping samples"]
            FullDisk.full = False
            w.append(_busy_sample(11))
            assert said[3:] == [f"{path}: space back: recording resumed, 1 samples dropped"]
            assert (w.dropped_total, rec.count()) == (6, 6)
    finally:
        FullDisk.full = False
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_other_write_errors_still_stop_the_recording(tmp_path):
    class Broken(sqlite3.Connection):
        def execute(self, sql, *args):
            if sql.lstrip().upper().startswith("INSERT INTO SAMPLES"):
                raise sqlite3.OperationalError("disk I/O error")
            return super().execute(sql, *args)

    with Recorder(tmp_path / "r.db", connection_class=Broken) as rec:
        with pytest.raises(IrqlabError, match="disk I/O error"):
            DroppingWriter(rec, print).append(_busy_sample(0))


def _lines(stream, q: queue.Queue) -> None:
    for line in stream:
        q.put(line.rstrip("\n"))
    q.put(None)


def _wait_for(q: queue.Queue, pattern: str, seen: list[str], timeout: float = 30.0) -> re.Match:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            line = q.get(timeout=max(0.0, end - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if m := re.search(pattern, line):
            return m
    raise AssertionError(f"no line matching {pattern!r}; output:\n" + "\n".join(seen[-20:]))


@pytest.mark.root
@pytest.mark.live
@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs")
def test_record_on_a_full_tmpfs_keeps_going_and_resumes(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
    proc = None
    try:
        db = mnt / "host.db"
        proc = subprocess.Popen(
            [sys.executable, "-m", "irqlab", "record", "-o", str(db), "0.05"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        )
        q: queue.Queue = queue.Queue()
        threading.Thread(target=_lines, args=(proc.stdout, q), daemon=True).start()
        seen: list[str] = []
        for _ in range(3):
            _wait_for(q, r"committed", seen)
        with open(mnt / "filler", "wb", buffering=0) as f:  # take every free block
            try:
                while True:
                    f.write(b"\1" * 4096)
            except OSError:
                pass
        _wait_for(q, r"disk full: dropping samples", seen)
        time.sleep(0.5)  # samples keep coming and are dropped
        assert proc.poll() is None, "\n".join(seen)
        (mnt / "filler").unlink()
        m = _wait_for(q, r"space back: recording resumed, (\d+) samples dropped", seen)
        assert int(m.group(1)) >= 3
        _wait_for(q, r"committed", seen)
        assert sum("disk full" in line for line in seen) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        check = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        check.close()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run(["umount", str(mnt)], check=True)


def test_a_recording_in_a_missing_directory_is_one_clear_line(tmp_path, capsys):
    from irqlab.cli.main import main

    root = CAPTURES / "vm-idle" / "a"
    assert main(["record", "-o", str(tmp_path / "no" / "x.db"), "--procfs", str(root / "proc"), "--sysfs", str(root / "sys")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path / "no" / "x.db") in err


def _as_nobody(fn) -> tuple[int, str]:
    """fn() -> exit code, run in a forked child that has dropped root (root ignores permissions);
    returns the code and what the child wrote to stderr."""
    # Import now what the command imports when it runs: nobody cannot read /root's stdlib.
    import irqlab.cli.record  # noqa: F401
    import irqlab.outputs.recorder  # noqa: F401
    import irqlab.sources.sampler  # noqa: F401

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 99
        try:
            os.close(r)
            sys.stderr = os.fdopen(w, "w", buffering=1)
            os.setgid(65534)
            os.setuid(65534)
            code = fn()
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        err = f.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err


def test_a_recording_in_a_directory_without_write_permission_is_one_clear_line(tmp_path, capsys):
    import shutil
    import tempfile

    from irqlab.cli.main import main

    # pytest's tmp_path is under a 0700 directory; nobody must be able to reach this one.
    top = Path(tempfile.mkdtemp(prefix="irqlab-perm-"))
    try:
        top.chmod(0o755)
        d = top / "locked"
        d.mkdir(mode=0o555)
        d.chmod(0o555)
        root = CAPTURES / "vm-idle" / "a"
        argv = ["record", "-o", str(d / "x.db"), "--procfs", str(root / "proc"), "--sysfs", str(root / "sys")]
        if os.geteuid() == 0:
            code, err = _as_nobody(lambda: main(argv))
        else:
            code, err = main(argv), capsys.readouterr().err
        assert code == 3, err
        assert err.count("\n") == 1 and "x.db" in err, err
        assert not (d / "x.db").exists()
    finally:
        shutil.rmtree(top)
