"""SQLite recording: round trip, crash safety, migrations, retention, storms, histograms."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import builders as b
from irqlab.analysis.storm_levels import StormInterval, StormTracker
from irqlab.analysis.thresholds import Thresholds
from irqlab.errors import IrqlabError, MissingSource, SourceError
from irqlab.model.histogram import Histogram
from irqlab.outputs.recorder import SCHEMA_VERSION, Recorder, Retention, _doc_and_arrays, _layout, _pack, _z
from irqlab.sources.fs import Roots
from irqlab.sources.recording import read_histograms, read_recording, read_storms, recording_info
from irqlab.sources.sampler import take_snapshot

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"
REPO = Path(__file__).resolve().parents[2]


# A schema-v1 recording is built from the frozen v1 schema (tests/fixtures/export/schema-v1.sql)
# by make_v1_recording: v1 stored samples exactly as v2 does but had no nbytes column, storms or
# histograms, so the sample encoding is the recorder's own and only the tables are frozen.
SCHEMA_V1 = Path(__file__).resolve().parents[1] / "fixtures" / "export" / "schema-v1.sql"


def make_v1_recording(path: Path, snapshots) -> Path:
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_V1.read_text())
    for snap in snapshots:
        blob = json.dumps(_layout(snap), separators=(",", ":"), sort_keys=True).encode()
        digest = hashlib.sha1(blob).hexdigest()
        db.execute("INSERT OR IGNORE INTO layouts (digest, doc) VALUES (?, ?)", (digest, zlib.compress(blob)))
        (lid,) = db.execute("SELECT id FROM layouts WHERE digest = ?", (digest,)).fetchone()
        doc, arrays = _doc_and_arrays(snap)
        doc["arrays"], data = _pack(arrays)
        db.execute("INSERT INTO samples (taken_ns, wall_time, layout_id, doc, arrays) VALUES (?, ?, ?, ?, ?)", (snap.taken_ns, snap.wall_time, lid, _z(doc), data))
    db.commit()
    db.close()
    return path


def canon(value):
    """A comparable form of a model value (Snapshot has eq=False and numpy arrays)."""
    if dataclasses.is_dataclass(value):
        # Snapshot.statuses say how each source fared when it was read (durations on this
        # run's clock), not what the machine was: a recording keeps the machine, and reading
        # it back is a read of its own.
        return {f.name: canon(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "statuses"}
    if isinstance(value, np.ndarray):
        return ("array", value.shape, value.astype(np.int64).tolist())
    if isinstance(value, (list, tuple)):
        return [canon(v) for v in value]
    if isinstance(value, dict):
        return {k: canon(v) for k, v in value.items()}
    return value


def captures():
    return [take_snapshot(Roots.capture(CAPTURES / name / ab)) for name in ("vm-idle", "vm-udpflood") for ab in "ab"]


def test_every_part_of_a_snapshot_survives_the_round_trip(tmp_path):
    snaps = captures()
    with Recorder(tmp_path / "r.db") as rec:
        for s in snaps:
            rec.append(s)
    back = read_recording(tmp_path / "r.db")
    assert [canon(s) for s in back] == [canon(s) for s in snaps]


def test_counts_beyond_32_bits_and_single_value_rows_round_trip(tmp_path):
    snap = b.snapshot(1, interrupts=b.interrupts([0, 3], [("40", "eth0-TxRx-0", [2**40, 5]), ("ERR", "", 7)]))
    with Recorder(tmp_path / "r.db") as rec:
        rec.append(snap)
    (back,) = read_recording(tmp_path / "r.db")
    assert canon(back.interrupts) == canon(snap.interrupts)


def test_unchanged_layouts_are_stored_once(tmp_path):
    snaps = [take_snapshot(Roots.capture(CAPTURES / "vm-idle" / ab)) for ab in "ab"]
    with Recorder(tmp_path / "r.db") as rec:
        for s in snaps * 3:
            rec.append(s)
    db = sqlite3.connect(tmp_path / "r.db")
    assert db.execute("SELECT count(*) FROM layouts").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM samples").fetchone()[0] == 6


def test_a_v1_recording_is_migrated_and_keeps_its_samples(tmp_path):
    snaps = captures()[:2]
    path = make_v1_recording(tmp_path / "old.db", snaps)
    assert recording_info(path).schema_version == 1
    assert [canon(s) for s in read_recording(path)] == [canon(s) for s in snaps]  # v1 is readable as is
    with Recorder(path) as rec:
        assert rec.migrated_from == 1
        rec.append(snaps[1], storms=[StormInterval("41", "virtio3-rx", 1, 2e5, 0.0)])
    info = recording_info(path)
    assert (info.schema_version, info.samples) == (SCHEMA_VERSION, 3)
    db = sqlite3.connect(path)
    assert db.execute("SELECT min(nbytes) FROM samples").fetchone()[0] > 0  # backfilled by the migration
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(read_storms(path)) == 1


def test_an_empty_version_0_file_becomes_a_current_recording(tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    with Recorder(path) as rec:
        assert rec.migrated_from is None
    assert recording_info(path).schema_version == SCHEMA_VERSION


def test_a_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    with pytest.raises(IrqlabError, match="not an irqlab recording"):
        Recorder(path)
    with pytest.raises(SourceError, match="not an irqlab recording"):
        read_recording(path)


def test_a_recording_from_a_newer_irqlab_is_refused(tmp_path):
    path = tmp_path / "new.db"
    Recorder(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(IrqlabError, match="newer"):
        Recorder(path)
    with pytest.raises(SourceError, match="newer"):
        read_recording(path)


def test_a_missing_or_garbage_file_is_one_clear_error(tmp_path):
    with pytest.raises(MissingSource):
        read_recording(tmp_path / "nope.db")
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SourceError, match="not an irqlab recording"):
        read_recording(tmp_path / "junk.db")


def _at(wall: float, n: int):
    snap = b.snapshot(wall, interrupts=b.interrupts([0, 1], [("40", "eth0", [n, n])]))
    return dataclasses.replace(snap, wall_time=wall)


def test_retention_by_age_deletes_samples_older_than_the_newest_minus_age(tmp_path):
    with Recorder(tmp_path / "r.db", Retention(max_age_s=10)) as rec:
        for t in range(0, 30, 2):
            rec.append(_at(1000.0 + t, t))
    walls = [s.wall_time for s in read_recording(tmp_path / "r.db")]
    assert walls[0] >= 1028 - 10 and walls[-1] == 1028


def test_retention_by_size_keeps_the_newest_samples_under_the_limit(tmp_path):
    from irqlab.outputs.recorder import MIN_RETENTION_BYTES, disk_bytes

    big = take_snapshot(Roots.capture(CAPTURES / "vm-udpflood" / "b"))
    limit = MIN_RETENTION_BYTES
    with Recorder(tmp_path / "r.db", Retention(max_bytes=limit)) as rec:
        for i in range(60):
            rec.append(dataclasses.replace(big, wall_time=2000.0 + i))
            assert disk_bytes(tmp_path / "r.db") <= limit  # the file, its -wal and its -shm
        n = rec.count()
    assert 3 <= n < 60
    assert read_recording(tmp_path / "r.db")[-1].wall_time == 2059.0


def test_storm_tracker_records_an_irq_above_the_threshold_with_its_start(tmp_path):
    tracker = StormTracker(Thresholds(storm_warn_rate=1000, storm_crit_rate=10_000))
    events = [tracker.update(_at(100.0 + i, n)) for i, n in enumerate([0, 100, 5000, 20_000, 20_100])]
    assert [[(e.irq, e.level) for e in ev] for ev in events] == [[], [], [("40", 1)], [("40", 2)], []]
    assert events[3][0].started_wall == events[2][0].started_wall == 101.0


def test_histograms_are_stored_and_read_back(tmp_path):
    h = Histogram(1_000, 100_000)
    h.add_many(np.array([10, 2_000, 3_000, 500_000]))
    with Recorder(tmp_path / "r.db") as rec:
        rec.append(_at(5.0, 1), histograms=[("timer_latency", {"cpu": "0"}, h)])
    ((wall, name, labels, back),) = read_histograms(tmp_path / "r.db")
    assert (wall, name, labels) == (5.0, "timer_latency", {"cpu": "0"})
    assert back.to_dict() == h.to_dict()


@pytest.mark.live
def test_kill_9_during_record_loses_at_most_the_last_sample(tmp_path):
    path = tmp_path / "live.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "irqlab", "record", "-o", str(path), "0.05"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    committed = 0
    try:
        for line in proc.stdout:
            committed += "committed" in line
            if committed >= 8:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    committed += sum("committed" in line for line in proc.stdout)  # reported before the kill
    assert committed >= 8, proc.stderr.read()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n = db.execute("SELECT count(*) FROM samples").fetchone()[0]
    db.close()
    # Every sample it reported is there; only the one being written (not yet reported) may
    # be lost or, if the commit landed just before the kill, be there unreported.
    assert committed <= n <= committed + 1
    assert len(read_recording(path)) == n


def test_record_command_appends_one_sample_per_capture_and_report_reads_them(tmp_path, capsys):
    from irqlab.cli.main import main

    db = tmp_path / "cap.db"
    for ab in "ab":
        root = CAPTURES / "vm-udpflood" / ab
        assert main(["record", "-q", "-o", str(db), "--procfs", str(root / "proc"), "--sysfs", str(root / "sys")]) == 0
    snaps = read_recording(db)
    assert [s.taken_ns for s in snaps] == sorted(s.taken_ns for s in snaps) and len(snaps) == 2


@pytest.mark.parametrize("argv", [["--retention-age", "7x"], ["--retention-age", "0d"], ["--retention-size", "lots"], ["0"], ["1", "0"]])
def test_record_rejects_bad_retention_interval_and_count_with_exit_64(tmp_path, argv, capsys):
    from irqlab.cli.main import main

    assert main(["record", "-o", str(tmp_path / "x.db"), *argv]) == 64
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("text,seconds", [("7d", 604_800), ("12h", 43_200), ("90m", 5_400), ("30", 30), ("1w", 604_800)])
def test_retention_ages_are_read_with_units(text, seconds):
    from irqlab.cli.record import parse_age

    assert parse_age(text) == seconds


@pytest.mark.parametrize("text,size", [("500M", 500 << 20), ("2G", 2 << 30), ("200k", 200 << 10), ("1MiB", 1 << 20), ("262144", 262144)])
def test_retention_sizes_are_read_with_units(text, size):
    from irqlab.cli.record import parse_size

    assert parse_size(text) == size


def test_recording_into_an_unwritable_place_is_one_clear_error(tmp_path, capsys):
    from irqlab.cli.main import main

    root = CAPTURES / "vm-idle" / "a"
    assert main(["record", "-o", str(tmp_path / "no" / "such" / "dir.db"), "--procfs", str(root / "proc"), "--sysfs", str(root / "sys")]) == 3
    assert capsys.readouterr().err.count("\n") == 1
