"""Read a recording made by `irqlab record` back as Snapshots (a recording is a source).

The file is opened read-only (`mode=ro`), so replaying never migrates or changes it; every
schema version up to the current one is readable (v1 has no storm or histogram tables). The
format is written by outputs/recorder.py; the round-trip test pins the two together.

    for snap in iter_recording("host.db"):      # oldest first, one Snapshot per sample
        ...
    snaps = read_recording("host.db")            # all of them, as a list
"""

from __future__ import annotations

import json
import os
import sqlite3
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from irqlab.errors import MissingSource, SourceError
from irqlab.model.histogram import Histogram
from irqlab.model.snapshot import (
    HostInfo,
    Interrupts,
    IrqInfo,
    IrqLine,
    KernelInfo,
    Pressure,
    Snapshot,
    Softirqs,
    Softnet,
    SoftnetRow,
    Spurious,
    Stat,
    TaskInfo,
)
from irqlab.model.unreadable import Unreadable

READABLE_VERSIONS = (1, 2)
Doc = dict[str, Any]  # a decoded JSON document of a recording (layout, sample, array index)


@dataclass(frozen=True, slots=True)
class RecordedStorm:
    """A storm event as recorded: the sample it ended at, and what was seen."""

    sample_id: int
    wall_time: float  # the sample's wall time
    irq: str
    name: str
    level: int
    rate_per_s: float
    started_wall: float


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """What a recording holds."""

    path: str
    schema_version: int
    samples: int
    first_wall: float | None
    last_wall: float | None


def _open(path: str | os.PathLike[str]) -> sqlite3.Connection:
    p = Path(path)
    if not p.is_file():
        raise MissingSource(str(p), "no such recording")
    try:
        # Not immutable=1: a recorder may be appending (WAL) while we read.
        db = sqlite3.connect(f"file:{p.resolve()}?mode=ro", uri=True)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise SourceError(str(p), f"not an irqlab recording ({exc})") from None
    if "samples" not in tables or version not in READABLE_VERSIONS:
        db.close()
        if version > max(READABLE_VERSIONS):
            raise SourceError(str(p), f"recording schema v{version} is newer than this irqlab reads (v{max(READABLE_VERSIONS)})")
        raise SourceError(str(p), "not an irqlab recording (no samples table)")
    return db


def _unpack(index: Doc, blob: bytes) -> dict[str, np.ndarray]:
    out = {}
    for name, (dtype, shape, offset, length) in index.items():
        raw = zlib.decompress(blob[offset : offset + length])
        out[name] = np.frombuffer(raw, dtype=dtype).astype(np.int64).reshape(shape)
    return out


def _interrupts(layout: Doc, arrays: dict[str, np.ndarray], doc: Doc) -> Interrupts:
    extra = {int(k): tuple(v) for k, v in doc.get("irq_extra", {}).items()}
    lines = tuple(
        IrqLine(irq, key, chip, hwirq, trigger, tuple(actions), description, per_cpu, extra.get(i, ()))
        for i, (irq, key, chip, hwirq, trigger, actions, description, per_cpu) in enumerate(layout["lines"])
    )
    return Interrupts(tuple(layout["cpus"]), lines, arrays["irq_counts"], arrays["irq_totals"])


def _stat(layout: Doc, arrays: dict[str, np.ndarray], doc: Doc) -> Stat:
    d = dict(doc["stat"])
    softirq = d.pop("softirq")
    return Stat(
        cpus=tuple(layout["cpus"]),
        times=arrays["stat_times"],
        total_times=arrays["stat_total_times"],
        nfields=layout["nfields"],
        intr=arrays.get("stat_intr"),
        softirq=tuple(softirq) if softirq is not None else None,
        **d,
    )


def _tuple_fields(d: Doc, names: tuple[str, ...]) -> Doc:
    return {k: (tuple(v) if k in names and v is not None else v) for k, v in d.items()}


def _irqinfo(items: list[Doc]) -> dict[int, IrqInfo]:
    out = {}
    for d in items:
        d = _tuple_fields(d, ("affinity", "effective_affinity", "actions", "per_cpu_count"))
        if d.get("spurious") is not None:
            d["spurious"] = Spurious(**d["spurious"])
        out[d["irq"]] = IrqInfo(**d)
    return out


def _kernel(d: Doc | None) -> KernelInfo | None:
    """The recorded KernelInfo (recordings made before irqlab read it have none)."""
    if not d:
        return None
    if d.get("release_tuple") is not None:
        d["release_tuple"] = tuple(d["release_tuple"])
    return KernelInfo(**d)


def decode_sample(layout: Doc, doc: Doc, blob: bytes, taken_ns: int, wall_time: float) -> Snapshot:
    """One stored sample -> Snapshot."""
    arrays = _unpack(doc["arrays"], blob)
    host = layout.get("host", {})
    for k in ("possible_cpus", "online_cpus"):
        if host.get(k) is not None:
            host[k] = tuple(host[k])
    return Snapshot(
        taken_ns=taken_ns,
        wall_time=wall_time,
        host=HostInfo(**host),
        interrupts=_interrupts(layout["interrupts"], arrays, doc) if "interrupts" in layout else None,
        softirqs=Softirqs(tuple(layout["softirqs"]["cpus"]), tuple(layout["softirqs"]["vectors"]), arrays["softirq_counts"]) if "softirqs" in layout else None,
        stat=_stat(layout["stat"], arrays, doc) if "stat" in layout else None,
        softnet=Softnet(tuple(SoftnetRow(**r) for r in doc["softnet"])) if doc.get("softnet") is not None else None,
        irqinfo=_irqinfo(doc.get("irqinfo", [])),
        tasks=tuple(TaskInfo(**_tuple_fields(t, ("allowed_cpus",))) for t in doc.get("tasks", [])),
        pressure=Pressure(**doc["pressure"]) if doc.get("pressure") else None,
        sysctl=dict(doc.get("sysctl", {})),
        unreadable=tuple(Unreadable(**u) for u in doc.get("unreadable", [])),
        origin=doc.get("origin", "recording"),
        kernel=_kernel(layout.get("kernel")),
    )


def iter_recording(path: str | os.PathLike[str], since_wall: float | None = None, until_wall: float | None = None) -> Iterator[Snapshot]:
    """Snapshots of a recording, oldest first, optionally within a wall-time window."""
    db = _open(path)
    try:
        layouts: dict[int, Doc] = {}
        query = "SELECT layout_id, doc, arrays, taken_ns, wall_time FROM samples WHERE wall_time >= ? AND wall_time <= ? ORDER BY id"
        lo = -np.inf if since_wall is None else since_wall
        hi = np.inf if until_wall is None else until_wall
        for layout_id, zdoc, blob, taken_ns, wall in db.execute(query, (lo, hi)):
            if layout_id not in layouts:
                (zl,) = db.execute("SELECT doc FROM layouts WHERE id = ?", (layout_id,)).fetchone()
                layouts[layout_id] = json.loads(zlib.decompress(zl))
            try:
                doc = json.loads(zlib.decompress(zdoc))
                # A fresh copy of the layout: decode_sample turns lists into tuples in place.
                yield decode_sample(json.loads(json.dumps(layouts[layout_id])), doc, blob, taken_ns, wall)
            except (zlib.error, ValueError, KeyError, TypeError) as exc:
                raise SourceError(str(path), f"sample at wall time {wall}: damaged ({exc})") from None
    except sqlite3.DatabaseError as exc:
        raise SourceError(str(path), f"cannot read recording ({exc})") from None
    finally:
        db.close()


def read_recording(path: str | os.PathLike[str]) -> list[Snapshot]:
    """Every Snapshot of a recording, oldest first."""
    return list(iter_recording(path))


def recording_info(path: str | os.PathLike[str]) -> RecordingInfo:
    db = _open(path)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        n, first, last = db.execute("SELECT count(*), min(wall_time), max(wall_time) FROM samples").fetchone()
        return RecordingInfo(str(path), version, n, first, last)
    finally:
        db.close()


def _has(db: sqlite3.Connection, table: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone() is not None


def read_storms(path: str | os.PathLike[str]) -> list[RecordedStorm]:
    """Storm events in sample order (none for a v1 recording)."""
    db = _open(path)
    try:
        if not _has(db, "storms"):
            return []
        rows = db.execute(
            "SELECT s.sample_id, p.wall_time, s.irq, s.name, s.level, s.rate_per_s, s.started_wall "
            "FROM storms s JOIN samples p ON p.id = s.sample_id ORDER BY s.sample_id, s.irq"
        )
        return [RecordedStorm(*r) for r in rows]
    finally:
        db.close()


def read_histograms(path: str | os.PathLike[str]) -> list[tuple[float, str, dict[str, str], Histogram]]:
    """(sample wall time, name, labels, Histogram) in sample order (none for v1)."""
    db = _open(path)
    try:
        if not _has(db, "histograms"):
            return []
        rows = db.execute("SELECT p.wall_time, h.name, h.labels, h.doc FROM histograms h JOIN samples p ON p.id = h.sample_id ORDER BY h.sample_id, h.id")
        return [(w, name, json.loads(labels), Histogram.from_dict(json.loads(doc))) for w, name, labels, doc in rows]
    finally:
        db.close()
