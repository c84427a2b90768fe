"""Append Snapshots (and storm events and histograms) to a SQLite recording.

The file is in WAL mode with one transaction per sample, so a process killed with SIGKILL
loses at most the sample it was writing and the database stays consistent (SQLite's WAL
recovery on the next open). The schema is versioned with PRAGMA user_version; opening an
older file runs the migrations in MIGRATIONS in order. A new file is built by the same
migrations from version 0, so old and new files cannot drift apart.

Storage: the per-CPU count matrices are stored as zlib-compressed little-endian arrays in one
BLOB per sample (uint32 when every value fits, int64 otherwise); the row and column labels that
rarely change (IRQ lines, CPU ids, vectors, host) are a "layout" stored once and referenced by
id; everything else is a small zlib-compressed JSON document. sources/recording.py reads it
back; tests/outputs/test_recorder.py pins the round trip.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

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
    """Keep samples newer than max_age_s and the file under max_bytes (None = unbounded)."""

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
    """An open recording; append() writes one sample in one transaction."""

    def __init__(self, path: str | Path, retention: Retention | None = None, irqlab_version: str = "") -> None:
        self.path = str(path)
        self.retention = retention or Retention()
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a committed sample survives a crash of this process (the
            # WAL is in the page cache); only a power loss can drop the last few.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            if self.db.execute("PRAGMA user_version").fetchone()[0] == 0:
                # Must precede the first table: freed pages can then be given back to the OS.
                self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            old = migrate(self.db, self.path)
            self.migrated_from = old if 0 < old < SCHEMA_VERSION else None  # None: new or current
            self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            if irqlab_version:
                with self.db:
                    self.db.execute("INSERT OR IGNORE INTO meta VALUES ('created_by', ?)", (f"irqlab {irqlab_version}",))
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
        """Write one sample (with its storm events and histograms) in one transaction; its id."""
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
                self._apply_retention(snap.wall_time)
        except sqlite3.Error as exc:
            self._layouts.clear()  # a rolled-back layout insert must not stay cached
            raise IrqlabError(f"{self.path}: cannot write sample ({exc})") from None
        return sid

    def _apply_retention(self, now_wall: float) -> None:
        """Delete the oldest samples beyond the age or size limit (inside the caller's transaction)."""
        r = self.retention
        before = self.db.total_changes
        if r.max_age_s is not None:
            self.db.execute("DELETE FROM samples WHERE wall_time < ?", (now_wall - r.max_age_s,))
        if r.max_bytes is not None:
            total = self.db.execute("SELECT coalesce(sum(nbytes), 0) FROM samples").fetchone()[0]
            if total > r.max_bytes:
                # Keep the newest samples whose sizes add up to 90 % of the limit, so that
                # deletion happens in batches rather than on every sample. Never the newest.
                keep_from = self.db.execute(
                    "SELECT id FROM (SELECT id, sum(nbytes) OVER (ORDER BY id DESC) AS cum FROM samples) "
                    "WHERE cum <= ? ORDER BY id LIMIT 1",
                    (int(r.max_bytes * 0.9),),
                ).fetchone()
                newest = self.db.execute("SELECT max(id) FROM samples").fetchone()[0]
                self.db.execute("DELETE FROM samples WHERE id < ?", (keep_from[0] if keep_from else newest,))
        if self.db.total_changes == before:
            return
        self.db.execute("DELETE FROM layouts WHERE id NOT IN (SELECT DISTINCT layout_id FROM samples)")
        alive = {row[0] for row in self.db.execute("SELECT id FROM layouts")}
        self._layouts = {k: v for k, v in self._layouts.items() if v in alive}
        self.db.execute("PRAGMA incremental_vacuum").fetchall()  # give freed pages back

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM samples").fetchone()[0]
