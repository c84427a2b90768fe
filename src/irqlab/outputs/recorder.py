"""Append Snapshots (and storm events and histograms) to a SQLite recording.

The file is in WAL mode with one transaction per sample, so a process killed with SIGKILL
loses at most the sample it was writing and the database stays consistent (SQLite's WAL
recovery on the next open). The schema is versioned with PRAGMA user_version; opening an
older file runs the migrations in MIGRATIONS in order. A new file is built by the same
migrations from version 0, so old and new files cannot drift apart. A file is checked
read-only before anything is written (check_recording), so a refused one is left untouched.
Retention.max_bytes bounds the database with its -wal and -shm (Recorder._bound_disk), and a
full disk raises DiskFull, which DroppingWriter turns into dropped samples.

Storage: the per-CPU count matrices are stored as zlib-compressed little-endian arrays in one
BLOB per sample (uint32 when every value fits, int64 otherwise); the row and column labels that
rarely change (IRQ lines, CPU ids, vectors, host) are a "layout" stored once and referenced by
id; everything else is a small zlib-compressed JSON document. sources/recording.py reads it
back; tests/outputs/test_recorder.py pins the round trip.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote

import numpy as np

from irqlab.analysis.storm_levels import StormInterval
from irqlab.errors import IrqlabError
from irqlab.model.histogram import Histogram
from irqlab.model.snapshot import Snapshot

APPLICATION_ID = 0x69726C62  # "irlb": marks the file as an irqlab recording (PRAGMA application_id)


# MIGRATIONS[v] takes a database from version v to v + 1; each runs in one transaction.
MIGRATIONS: tuple[str, ...] = (
    # v1: samples and their layouts.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE layouts (id INTEGER PRIMARY KEY, digest TEXT NOT NULL UNIQUE, doc BLOB NOT NULL);
    CREATE TABLE samples (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        taken_ns INTEGER NOT NULL,
        wall_time REAL NOT NULL,
        layout_id INTEGER NOT NULL REFERENCES layouts(id),
        doc BLOB NOT NULL,
        arrays BLOB NOT NULL
    );
    """,
    # v2: storm events, histograms, and a per-sample size for size-based retention.
    """
    ALTER TABLE samples ADD COLUMN nbytes INTEGER NOT NULL DEFAULT 0;
    UPDATE samples SET nbytes = length(doc) + length(arrays);
    CREATE INDEX samples_wall ON samples(wall_time);
    CREATE TABLE storms (
        id INTEGER PRIMARY KEY,
        sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
        irq TEXT NOT NULL, name TEXT NOT NULL, level INTEGER NOT NULL,
        rate_per_s REAL NOT NULL, started_wall REAL NOT NULL
    );
    CREATE TABLE histograms (
        id INTEGER PRIMARY KEY,
        sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
        name TEXT NOT NULL, labels TEXT NOT NULL, doc TEXT NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class Retention:
    """Keep samples newer than max_age_s, and the database with its -wal and -shm files
    under max_bytes after every sample (None = unbounded)."""

    max_age_s: float | None = None
    max_bytes: int | None = None


# --- encoding -----------------------------------------------------------------------------


def _pack(arrays: dict[str, np.ndarray]) -> tuple[dict, bytes]:
    """Arrays -> (index {name: [dtype, shape, offset, length]}, one compressed BLOB)."""
    index, chunks, offset = {}, [], 0
    for name, a in arrays.items():
        a = np.asarray(a, dtype=np.int64)
        small = a.size == 0 or (a.min() >= 0 and a.max() < 1 << 32)
        data = zlib.compress(a.astype("<u4" if small else "<i8").tobytes(), 1)
        index[name] = ["<u4" if small else "<i8", list(a.shape), offset, len(data)]
        chunks.append(data)
        offset += len(data)
    return index, b"".join(chunks)


def _layout(s: Snapshot) -> dict:
    """The labels of a snapshot's matrices, which change only on hotplug or a new IRQ."""
    out: dict = {"host": asdict(s.host)}
    if s.kernel is not None:  # what kind of kernel: as fixed as the host
        out["kernel"] = asdict(s.kernel)
    if s.interrupts is not None:
        out["interrupts"] = {
            "cpus": list(s.interrupts.cpus),
            "lines": [[ln.irq, ln.key, ln.chip, ln.hwirq, ln.trigger, list(ln.actions), ln.description, ln.per_cpu] for ln in s.interrupts.lines],
        }
    if s.softirqs is not None:
        out["softirqs"] = {"cpus": list(s.softirqs.cpus), "vectors": list(s.softirqs.vectors)}
    if s.stat is not None:
        out["stat"] = {"cpus": list(s.stat.cpus), "nfields": s.stat.nfields}
    return out


def _doc_and_arrays(s: Snapshot) -> tuple[dict, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    doc: dict = {"origin": s.origin, "sysctl": s.sysctl, "unreadable": [asdict(u) for u in s.unreadable]}
    if s.interrupts is not None:
        arrays["irq_counts"] = s.interrupts.counts
        arrays["irq_totals"] = s.interrupts.totals
        doc["irq_extra"] = {i: list(ln.extra) for i, ln in enumerate(s.interrupts.lines) if ln.extra}
    if s.softirqs is not None:
        arrays["softirq_counts"] = s.softirqs.counts
    if s.stat is not None:
        st = s.stat
        arrays["stat_times"] = st.times
        arrays["stat_total_times"] = st.total_times
        if st.intr is not None:
            arrays["stat_intr"] = st.intr
        doc["stat"] = {k: getattr(st, k) for k in ("intr_total", "softirq_total", "ctxt", "btime", "processes", "procs_running", "procs_blocked")}
        doc["stat"]["softirq"] = list(st.softirq) if st.softirq is not None else None
    if s.softnet is not None:
        doc["softnet"] = [asdict(r) for r in s.softnet.rows]
    doc["irqinfo"] = [asdict(i) for i in s.irqinfo.values()]
    doc["tasks"] = [asdict(t) for t in s.tasks]
    doc["pressure"] = asdict(s.pressure) if s.pressure is not None else None
    return doc, arrays


def _z(obj) -> bytes:
    return zlib.compress(json.dumps(obj, separators=(",", ":")).encode(), 6)


# --- the recorder -------------------------------------------------------------------------

OURS = frozenset({"meta", "layouts", "samples"})  # the v1 tables: a v1 file has no application_id
SIDE_FILES = ("-wal", "-shm")
# An empty recording is 11 pages (44 kB) and its WAL index (-shm) one 32 kB region; a limit
# must leave room for samples beside them.
MIN_RETENTION_BYTES = 128 << 10
# sqlite3_errstr(SQLITE_FULL): what SQLite says when a write meets ENOSPC (os_unix.c turns
# ENOSPC into SQLITE_FULL); an exception built in Python carries no sqlite_errorcode.
DISK_FULL = "database or disk is full"


class DiskFull(IrqlabError):
    """The file system is full: the sample was not written (the recording is intact)."""


def _is_disk_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or DISK_FULL in str(exc)


def disk_bytes(path: str | Path) -> int:
    """Bytes the recording takes on disk: the database, its -wal and its -shm."""
    total = 0
    for suffix in ("", *SIDE_FILES):
        try:
            total += os.stat(f"{path}{suffix}").st_size
        except FileNotFoundError:
            pass
    return total


def check_recording(path: str | Path) -> int:
    """The schema version of the file at path, read without changing it; 0 for a new file.

    Raises IrqlabError (one line) for a file that must not be written: not SQLite, an SQLite
    database of another program, or a recording from a newer irqlab.
    """
    p = Path(path)
    if not p.exists():
        return 0
    # mode=ro alone would create (and leave) -wal and -shm beside a WAL-mode file. Without a
    # -wal the main file holds every committed page, so immutable=1 reads it exactly and
    # touches nothing; with a -wal (a recorder is running, or one crashed) it must be read.
    params = "mode=ro" if Path(f"{p}-wal").exists() else "mode=ro&immutable=1"
    try:
        db = sqlite3.connect(f"file:{quote(str(p.resolve()))}?{params}", uri=True)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            raise IrqlabError(f"{p}: not an irqlab recording ({exc})") from None
        raise IrqlabError(f"{p}: cannot open as a recording ({exc})") from None
    if version == 0 and not tables:
        return 0  # an empty database (or a 0-byte file): a new recording
    if app_id != APPLICATION_ID and not (app_id == 0 and OURS <= tables):
        raise IrqlabError(f"{p}: an SQLite database that is not an irqlab recording")
    if version > SCHEMA_VERSION:
        raise IrqlabError(f"{p}: recording schema v{version} is newer than this irqlab (v{SCHEMA_VERSION}); upgrade irqlab")
    return version


def migrate(db: sqlite3.Connection, path: str) -> int:
    """Bring a database to SCHEMA_VERSION; returns the version it had."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise IrqlabError(f"{path}: recording schema v{version} is newer than this irqlab (v{SCHEMA_VERSION}); upgrade irqlab")
    if version == 0 and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        raise IrqlabError(f"{path}: an SQLite database that is not an irqlab recording")
    for v in range(version, SCHEMA_VERSION):
        try:
            db.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[v]}; PRAGMA user_version = {v + 1}; COMMIT;")
        except sqlite3.Error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    return version


class Recorder:
    """An open recording; append() writes one sample in one transaction.

    connection_class is a seam for tests: an sqlite3.Connection subclass (one that fails on
    demand, as a full disk does).
    """

    def __init__(
        self,
        path: str | Path,
        retention: Retention | None = None,
        irqlab_version: str = "",
        *,
        connection_class: type[sqlite3.Connection] = sqlite3.Connection,
    ) -> None:
        self.path = str(path)
        self.retention = retention or Retention()
        # Refuse before any change: the checks above read the file read-only, so a refused
        # file keeps its bytes (no WAL switch, no tables) and gains no -wal or -shm.
        version = check_recording(self.path)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10, factory=connection_class)
            if version == 0:
                # Must precede the first table: freed pages can then be given back to the OS.
                self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a committed sample survives a crash of this process (the
            # WAL is in the page cache); only a power loss can drop the last few.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            old = migrate(self.db, self.path)
            self.migrated_from = old if 0 < old < SCHEMA_VERSION else None  # None: new or current
            self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            if irqlab_version:
                with self.db:
                    self.db.execute("INSERT OR IGNORE INTO meta VALUES ('created_by', ?)", (f"irqlab {irqlab_version}",))
            if self.retention.max_bytes is not None and self.db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
                self._convert_to_incremental()
        except sqlite3.DatabaseError as exc:
            raise IrqlabError(f"{self.path}: cannot open as a recording ({exc})") from None
        self._layouts: dict[str, int] = {}

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _layout_id(self, layout: dict) -> int:
        blob = json.dumps(layout, separators=(",", ":"), sort_keys=True).encode()
        digest = hashlib.sha1(blob).hexdigest()
        if digest not in self._layouts:
            row = self.db.execute("SELECT id FROM layouts WHERE digest = ?", (digest,)).fetchone()
            if row is None:
                row = (self.db.execute("INSERT INTO layouts (digest, doc) VALUES (?, ?)", (digest, zlib.compress(blob, 6))).lastrowid,)
            self._layouts[digest] = row[0]
        return self._layouts[digest]

    def append(self, snap: Snapshot, storms: Iterable[StormInterval] = (), histograms: Iterable[tuple[str, dict[str, str], Histogram]] = ()) -> int:
        """Write one sample (with its storm events and histograms) in one transaction; its id.

        Raises DiskFull when the file system is full (nothing of the sample is kept), and
        IrqlabError for any other failure.
        """
        doc, arrays = _doc_and_arrays(snap)
        index, blob = _pack(arrays)
        doc["arrays"] = index
        zdoc = _z(doc)
        try:
            with self.db:  # BEGIN ... COMMIT, or ROLLBACK on error
                self.db.execute("BEGIN IMMEDIATE")
                layout_id = self._layout_id(_layout(snap))
                sid = self.db.execute(
                    "INSERT INTO samples (taken_ns, wall_time, layout_id, doc, arrays, nbytes) VALUES (?, ?, ?, ?, ?, ?)",
                    (snap.taken_ns, snap.wall_time, layout_id, zdoc, blob, len(zdoc) + len(blob)),
                ).lastrowid
                self.db.executemany(
                    "INSERT INTO storms (sample_id, irq, name, level, rate_per_s, started_wall) VALUES (?, ?, ?, ?, ?, ?)",
                    [(sid, e.irq, e.name, e.level, e.rate_per_s, e.started_wall) for e in storms],
                )
                self.db.executemany(
                    "INSERT INTO histograms (sample_id, name, labels, doc) VALUES (?, ?, ?, ?)",
                    [(sid, name, json.dumps(labels, sort_keys=True), json.dumps(h.to_dict())) for name, labels, h in histograms],
                )
                aged = self._delete_aged(snap.wall_time)
        except sqlite3.Error as exc:
            self._failed(exc, "cannot write sample")
        try:
            if aged:
                self._give_back_free_pages()
            if self.retention.max_bytes is not None:
                self._bound_disk(self.retention.max_bytes)
        except sqlite3.Error as exc:
            try:
                self._failed(exc, "cannot apply retention")
            except DiskFull:
                pass  # the sample is committed; the next one retries the checkpoint
        return sid

    def _failed(self, exc: sqlite3.Error, what: str) -> NoReturn:
        # SQLite may leave the transaction open after SQLITE_FULL at COMMIT; the next BEGIN
        # would fail (https://www.sqlite.org/lang_transaction.html, "Response To Errors").
        if self.db.in_transaction:
            self.db.rollback()
        self._layouts.clear()  # a rolled-back layout insert must not stay cached
        if _is_disk_full(exc):
            raise DiskFull(f"{self.path}: disk full ({what})") from None
        raise IrqlabError(f"{self.path}: {what} ({exc})") from None

    def _delete_aged(self, now_wall: float) -> bool:
        """Delete samples older than the age limit (inside the caller's transaction)."""
        if self.retention.max_age_s is None:
            return False
        before = self.db.total_changes
        self.db.execute("DELETE FROM samples WHERE wall_time < ?", (now_wall - self.retention.max_age_s,))
        if self.db.total_changes == before:
            return False
        self._drop_unused_layouts()
        return True

    def _drop_unused_layouts(self) -> None:
        self.db.execute("DELETE FROM layouts WHERE id NOT IN (SELECT DISTINCT layout_id FROM samples)")
        alive = {row[0] for row in self.db.execute("SELECT id FROM layouts")}
        self._layouts = {k: v for k, v in self._layouts.items() if v in alive}

    # --- the size bound: the database, its WAL and its -shm together ---------------------
    #
    # A committed sample sits in the WAL until a checkpoint copies it into the database, and
    # SQLite never shrinks the WAL by itself (journal_size_limit is -1): with the default
    # autocheckpoint of 1000 pages a WAL reaches 4 MB whatever the limit. So when the files
    # together pass the limit we checkpoint with TRUNCATE (the WAL goes back to 0 bytes); if
    # the database alone is still too big we delete the oldest samples until its live pages
    # fit in 90 % of the limit (so deletion runs in batches), give the freed pages back with
    # incremental_vacuum, and checkpoint again so that the file itself shrinks.

    def _bound_disk(self, limit: int) -> None:
        if disk_bytes(self.path) <= limit:
            return
        self._checkpoint()
        if disk_bytes(self.path) <= limit:
            return
        self._delete_oldest(int(limit * 0.9))
        self._give_back_free_pages(step_pages=max(16, limit // 16 // self._page_size()))

    def _page_size(self) -> int:
        return self.db.execute("PRAGMA page_size").fetchone()[0]

    def _live_bytes(self) -> int:
        pages = self.db.execute("PRAGMA page_count").fetchone()[0] - self.db.execute("PRAGMA freelist_count").fetchone()[0]
        return pages * self._page_size()

    def _delete_oldest(self, target: int) -> None:
        """Delete the oldest samples (never the newest) until live pages + -shm fit target."""
        try:
            shm = os.stat(f"{self.path}-shm").st_size
        except FileNotFoundError:
            shm = 0
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            while (excess := self._live_bytes() + shm - target) > 0:
                n, payload, newest = self.db.execute("SELECT count(*), coalesce(sum(nbytes), 0), max(id) FROM samples").fetchone()
                if n <= 1:
                    break
                # Disk bytes per stored byte, from the file itself (pages are not full, and
                # layouts and indexes come with the samples): how much payload to delete.
                need = excess * payload / max(self._live_bytes(), 1)
                row = self.db.execute(
                    "SELECT id FROM (SELECT id, sum(nbytes) OVER (ORDER BY id) AS cum FROM samples) WHERE cum >= ? ORDER BY id LIMIT 1",
                    (need,),
                ).fetchone()
                last = min(row[0] if row else newest - 1, newest - 1)
                self.db.execute("DELETE FROM samples WHERE id <= ?", (last,))
                self._drop_unused_layouts()

    def _give_back_free_pages(self, step_pages: int = 0) -> None:
        """Return free pages to the file system; checkpoint after each step of step_pages
        (0: all at once), so that the moved pages never stand in the WAL all together."""
        while True:
            self.db.execute(f"PRAGMA incremental_vacuum({step_pages})" if step_pages else "PRAGMA incremental_vacuum").fetchall()
            if not self._checkpoint():  # a reader pins the WAL: do the rest at once, wait no more
                self.db.execute("PRAGMA incremental_vacuum").fetchall()
                return
            if not step_pages or not self.db.execute("PRAGMA freelist_count").fetchone()[0]:
                return

    def _checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it to 0 bytes; False if a reader kept it."""
        # A reader in a read transaction (irqlab report, top --replay) pins the WAL: wait for
        # it briefly rather than the 10 s busy timeout; the next sample tries again.
        self.db.execute("PRAGMA busy_timeout = 200")
        try:
            busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            self.db.execute("PRAGMA busy_timeout = 10000")
        return busy == 0

    def _convert_to_incremental(self) -> None:
        """auto_vacuum=NONE (a v1 file, or one copied by another tool) keeps freed pages for
        ever; the mode changes only with a VACUUM, which rewrites the file once."""
        self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self.db.execute("VACUUM")
        self._checkpoint()

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM samples").fetchone()[0]


class DroppingWriter:
    """Appends samples to a Recorder; while the file system is full, drops them instead.

    say() gets one line when dropping starts and one when space is back (with the number
    dropped), never one per sample, so a full disk does not also flood the journal.
    """

    def __init__(self, rec: Recorder, say: Callable[[str], None]) -> None:
        self.rec = rec
        self.say = say
        self.full = False
        self.dropped = 0  # since the disk became full
        self.dropped_total = 0

    def append(self, snap: Snapshot, storms: Iterable[StormInterval] = (), histograms: Iterable[tuple[str, dict[str, str], Histogram]] = ()) -> int | None:
        """The sample's id, or None when it was dropped."""
        try:
            sid = self.rec.append(snap, storms, histograms)
        except DiskFull:
            if not self.full:
                self.full = True
                self.say(f"{self.rec.path}: disk full: dropping samples")
            self.dropped += 1
            self.dropped_total += 1
            return None
        if self.full:
            self.say(f"{self.rec.path}: space back: recording resumed, {self.dropped} samples dropped")
            self.full, self.dropped = False, 0
        return sid

    def close(self) -> None:
        """Say how many samples were dropped if we stop while the disk is still full."""
        if self.full:
            self.say(f"{self.rec.path}: stopped with the disk full, {self.dropped} samples dropped")
