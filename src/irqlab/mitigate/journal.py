"""The SavedSetting journal: every value irqlab writes is recorded on disk before it is written.

A JSON-lines file, appended and fsync'ed: a `save` record (original value, new value, time,
reason) goes to disk *before* the kernel knob is written, a `restored` record after the
original is back. Whatever is saved and not restored is pending: the next start of
`irqlab watch` (or `irqlab watch --restore`) writes those originals back, newest first, so a
crash or SIGKILL at any point leaves nothing changed for longer than until the next start.
A torn last line (killed mid-append) is ignored: its write had not started yet.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from irqlab.errors import IrqlabError


class JournalError(IrqlabError):
    """The journal cannot be opened, locked or written."""


@dataclass(frozen=True, slots=True)
class SavedSetting:
    """One kernel knob irqlab changed: where, from what, to what, when and why."""

    id: int
    kind: str  # "affinity", "napi", "coalesce"
    target: str  # "/proc/irq/41/smp_affinity_list", "eth0/gro_flush_timeout", "eth0/rx-usecs"
    netns: str | None  # None: irqlab's own network namespace
    original: str
    new: str
    wall_time: float
    reason: str

    @property
    def where(self) -> str:
        return f"{self.target}" + (f" (netns {self.netns})" if self.netns else "")


class Journal:
    """An append-only, locked journal file; one per running watch."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot open journal: {exc.strerror}") from None
        try:
            # One writer at a time: a second watch on the same journal would restore values
            # the first one still needs.
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            raise JournalError(f"{self.path}: journal is locked by another irqlab watch") from None
        self._next_id = 1 + max((s.id for s in self._read_saves()), default=0)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- records ----------------------------------------------------------------------

    def _append(self, record: dict) -> None:
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        try:
            os.write(self._fd, line)
            os.fsync(self._fd)
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot write journal: {exc.strerror}") from None

    def _records(self) -> list[dict]:
        try:
            text = self.path.read_bytes().decode("utf-8", "replace")
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot read journal: {exc.strerror}") from None
        out = []
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a torn line from a kill mid-append: that write never happened
            if isinstance(rec, dict) and rec.get("op") in ("save", "restored"):
                out.append(rec)
        return out

    def _read_saves(self) -> list[SavedSetting]:
        fields = SavedSetting.__dataclass_fields__
        out = []
        for rec in self._records():
            if rec["op"] == "save":
                try:
                    out.append(SavedSetting(**{k: rec[k] for k in fields}))
                except (KeyError, TypeError):
                    continue
        return out

    def pending(self) -> list[SavedSetting]:
        """Saved and not yet restored, oldest first."""
        done = {rec.get("id") for rec in self._records() if rec["op"] == "restored"}
        return [s for s in self._read_saves() if s.id not in done]

    def pending_for(self, kind: str, target: str, netns: str | None) -> SavedSetting | None:
        for s in self.pending():
            if (s.kind, s.target, s.netns) == (kind, target, netns):
                return s
        return None

    def save(self, kind: str, target: str, netns: str | None, original: str, new: str, wall_time: float, reason: str) -> SavedSetting:
        """Record a change on disk (fsync'ed) before it is made."""
        s = SavedSetting(self._next_id, kind, target, netns, original, new, wall_time, reason)
        self._next_id += 1
        self._append({"op": "save", **asdict(s)})
        return s

    def mark_restored(self, s: SavedSetting, wall_time: float, outcome: str = "restored") -> None:
        self._append({"op": "restored", "id": s.id, "wall_time": wall_time, "outcome": outcome})
        if not self.pending():
            self._compact()

    def _compact(self) -> None:
        """Nothing pending: start the file afresh so it does not grow forever."""
        try:
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot truncate journal: {exc.strerror}") from None


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """What happened to one pending setting at restore."""

    setting: SavedSetting
    outcome: str  # "restored", "gone" (the device or IRQ no longer exists), "failed"
    message: str = ""


def restore_pending(
    journal: Journal,
    write: Callable[[SavedSetting], str],
    wall_time: Callable[[], float],
    only: Callable[[SavedSetting], bool] | None = None,
) -> list[RestoreResult]:
    """Write back every pending original, newest first; `write` returns "restored" or "gone".

    A failed restore stays pending (it is retried at the next restore) and is reported.
    """
    out = []
    for s in reversed(journal.pending()):
        if only is not None and not only(s):
            continue
        try:
            outcome = write(s)
        except (OSError, IrqlabError) as exc:
            out.append(RestoreResult(s, "failed", str(exc)))
            continue
        journal.mark_restored(s, wall_time(), outcome)
        out.append(RestoreResult(s, outcome))
    return out
