"""The SavedSetting journal: every value irqlab writes is recorded on disk before it is written.

A JSON-lines file, appended and fsync'ed: a `save` record (original value, new value, time,
reason) goes to disk *before* the kernel knob is written, a `restored` record after the
original is back. Whatever is saved and not restored is pending: the next start of
`irqlab watch` (or `irqlab watch --restore`) writes those originals back, newest first, so a
crash or SIGKILL at any point leaves nothing changed for longer than until the next start.

What the journal guarantees (docs/watch.md, "Guarantees"):
- A record is complete and fsync'ed, or it is not there: a short or failed write is undone
  (the file is truncated back to its previous length) and reported, and the knob it was for
  is not written.
- A torn last line (no newline: killed mid-append) is ignored, its write never happened. Any
  other bad line (not JSON, wrong types, an unknown id, a value or target `check` refuses)
  makes the journal corrupt: it is renamed to PATH.corrupt-<time> and kept, never truncated;
  the records that are good are carried into a fresh PATH and restored, the bad ones are named.
- The file is root's alone: opened with O_NOFOLLOW, refused when owned by another user or
  writable by group/others, and (as root) when its directory is writable by others.
- Knobs are owned host-wide (KnobOwners): a knob another live journal holds is refused.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from irqlab.errors import IrqlabError

KINDS = ("affinity", "napi", "coalesce", "queue", "thread")
RUN_DIR_ENV = "IRQLAB_RUN_DIR"  # tests and second instances point the host-wide registry elsewhere
DEFAULT_RUN_DIR = "/run/irqlab"


class JournalError(IrqlabError):
    """The journal cannot be opened, locked or written."""


class KnobOwned(JournalError):
    """The knob belongs to another journal (another irqlab writer, live or not yet replayed)."""


@dataclass(frozen=True, slots=True)
class SavedSetting:
    """One kernel knob irqlab changed: where, from what, to what, when and why."""

    id: int
    kind: str  # "affinity", "napi", "coalesce"
    target: str  # "/proc/irq/41/smp_affinity_list", "/sys/class/net/eth0/gro_flush_timeout", "ethtool:eth0:rx_coalesce_usecs"
    netns: str | None  # None: irqlab's own network namespace
    original: str
    new: str
    wall_time: float
    reason: str

    @property
    def where(self) -> str:
        return f"{self.target}" + (f" (netns {self.netns})" if self.netns else "")

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.kind, self.target, self.netns)


# --- reading records ------------------------------------------------------------------

_NUMBER = (int, float)
_SAVE_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (int,), "kind": (str,), "target": (str,), "netns": (str, type(None)), "original": (str,),
    "new": (str,), "wall_time": _NUMBER, "reason": (str,),
}
_RESTORED_FIELDS: dict[str, tuple[type, ...]] = {"id": (int,), "wall_time": _NUMBER, "outcome": (str,)}


def _typed(rec: dict, fields: dict[str, tuple[type, ...]]) -> str:
    """'' when every field is there with its type (bool is not a number here), else why not."""
    for name, types in fields.items():
        if name not in rec:
            return f"no {name!r}"
        v = rec[name]
        if isinstance(v, bool) or not isinstance(v, types):
            return f"{name!r} is {type(v).__name__}, not {'/'.join(t.__name__ for t in types)}"
    return ""


@dataclass
class _Parsed:
    saves: dict[int, tuple[int, SavedSetting]]  # id -> (line number, setting), file order
    done: set[int]
    bad: list[str]  # "line N: why"
    max_id: int = 0
    torn: bool = False  # the last line has no newline: a kill mid-append
    good_len: int = 0  # bytes up to the end of the last complete line


def _parse(data: bytes) -> _Parsed:
    p = _Parsed({}, set(), [])
    lines = data.split(b"\n")
    if lines[-1]:
        p.torn = True  # no newline after it: that append never finished, its write never happened
    p.good_len = len(data) - len(lines[-1])
    for n, raw in enumerate(lines[:-1], 1):
        why = _check_line(p, n, raw)
        if why:
            p.bad.append(f"line {n}: {why}")
    return p


def _check_line(p: _Parsed, n: int, raw: bytes) -> str:
    try:
        rec = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "not a JSON record"
    if not isinstance(rec, dict) or rec.get("op") not in ("save", "restored"):
        return "not a save or restored record"
    if rec["op"] == "save":
        why = _typed(rec, _SAVE_FIELDS)
        if why:
            return why
        if rec["kind"] not in KINDS or rec["id"] < 1:
            return f"kind {rec['kind']!r} / id {rec['id']} not one irqlab writes"
        if rec["id"] in p.saves:
            return f"id {rec['id']} saved twice"
        p.saves[rec["id"]] = (n, SavedSetting(**{k: rec[k] for k in _SAVE_FIELDS}))
        p.max_id = max(p.max_id, rec["id"])
        return ""
    why = _typed(rec, _RESTORED_FIELDS)
    if why:
        return why
    if rec["id"] not in p.saves or rec["id"] in p.done:
        return f"restored record for id {rec['id']}, which is not pending"
    p.done.add(rec["id"])
    return ""


# --- the file -------------------------------------------------------------------------


def _check_file(fd: int, path: Path) -> None:
    """Refuse a journal another user could have written: its records are replayed as root."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise JournalError(f"{path}: not a regular file; refusing it as a journal")
    if st.st_uid != os.geteuid():
        raise JournalError(f"{path}: owned by uid {st.st_uid}, not {os.geteuid()}; refusing to replay or append to it")
    if st.st_mode & 0o022:
        raise JournalError(f"{path}: writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); refusing it (chmod 600)")


def _check_dir(d: Path) -> None:
    """As root, a directory others may write lets them swap the journal: refuse it (unless sticky)."""
    if os.geteuid() != 0:
        return
    st = os.stat(d)
    if st.st_uid != 0 or (st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX):
        raise JournalError(f"{d}: directory owned by uid {st.st_uid} or writable by others "
                           f"(mode {stat.S_IMODE(st.st_mode):04o}); refusing to keep a journal there")


def _open_checked(path: Path, flags: int, mode: int = 0o600) -> int:
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise JournalError(f"{path}: is a symbolic link; refusing it as a journal") from None
        raise JournalError(f"{path}: cannot open: {exc.strerror}") from None
    try:
        _check_file(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written; a write of 0 bytes is a full disk."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


class Journal:
    """An append-only, locked journal file; one writer at a time.

    `check(setting)` raises IrqlabError for a record that must not be replayed (a target
    irqlab never writes, a value a fresh write would refuse); such a record counts as
    corruption. `run_dir` holds the host-wide knob registry (default $IRQLAB_RUN_DIR or
    /run/irqlab).
    """

    def __init__(self, path: str | os.PathLike[str], check: Callable[[SavedSetting], None] | None = None,
                 run_dir: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path)
        self.owners = KnobOwners(self.path, run_dir)
        self.problems: list[str] = []  # corrupt or refused records, for the caller to report
        self.kept_aside: Path | None = None
        self._broken = ""  # a failed write that could not be undone: no further appends
        self._fd = -1
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"{self.path.parent}: cannot create the journal directory: {exc.strerror}") from None
        _check_dir(self.path.parent)
        self._fd = self._lock(_open_checked(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND))
        try:
            self._load(check)
        except BaseException:
            self.close()
            raise

    def _lock(self, fd: int) -> int:
        try:
            # One writer at a time: a second watch on the same journal would restore values
            # the first one still needs.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JournalError(f"{self.path}: journal is locked by another irqlab process") from None
        return fd

    def _load(self, check: Callable[[SavedSetting], None] | None) -> None:
        p = _parse(self._read())
        self._next_id = p.max_id + 1
        pending = [s for _, s in p.saves.values() if s.id not in p.done]
        if check is not None:
            kept = []
            for s in pending:
                try:
                    check(s)
                except IrqlabError as exc:
                    p.bad.append(f"line {p.saves[s.id][0]}: refused ({exc})")
                    continue
                kept.append(s)
            pending = kept
        self._saves = {s.id: s for s in pending}
        if p.bad:
            self._keep_aside(p.bad)
        elif p.torn:
            self._truncate(p.good_len)  # the torn tail goes: the next record starts on a fresh line

    def _read(self) -> bytes:
        try:
            size = os.fstat(self._fd).st_size
            return os.pread(self._fd, size, 0)
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot read journal: {exc.strerror}") from None

    def _keep_aside(self, bad: list[str]) -> None:
        """Keep a corrupt journal as PATH.corrupt-<time> and carry its good pending saves into a new PATH.

        The new file is complete (written and fsync'ed under its own lock) before it replaces
        PATH, so at every instant PATH holds either the old records or all the good ones.
        """
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        fresh = self.path.with_name(f".{self.path.name}.new-{stamp}")
        old = self._fd
        try:
            self._fd = self._lock(_open_checked(fresh, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND))
        except JournalError as exc:
            self._fd = old
            raise JournalError(f"{self.path}: corrupt ({'; '.join(bad)}); cannot start a clean journal: {exc}") from None
        try:
            for s in self._saves.values():
                self._append({"op": "save", **asdict(s)})
            os.link(self.path, aside)  # the evidence, intact, under a new name
            os.rename(fresh, self.path)
            _fsync_dir(self.path.parent)
        except (OSError, JournalError) as exc:
            os.close(self._fd)
            self._fd = old
            fresh.unlink(missing_ok=True)
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise JournalError(f"{self.path}: corrupt ({'; '.join(bad)}) and cannot be set aside: {why}") from None
        os.close(old)  # locked until here: nobody replayed the old file meanwhile
        self.kept_aside = aside
        self.problems = [f"{self.path}: corrupt journal kept as {aside}: {'; '.join(bad)}"]

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
        """Append one line, complete and fsync'ed, or leave the file as it was and raise."""
        if self._broken:
            raise JournalError(f"{self.path}: journal unusable after an earlier failed write ({self._broken})")
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        try:
            before = os.fstat(self._fd).st_size
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot write journal: {exc.strerror}") from None
        try:
            _write_all(self._fd, line)
            os.fsync(self._fd)
        except OSError as exc:
            why = exc.strerror or str(exc)
            try:
                self._truncate(before)
            except JournalError as undo:
                self._broken = f"{why}; {undo}"
            raise JournalError(f"{self.path}: cannot write journal: {why}") from None

    def _truncate(self, length: int) -> None:
        try:
            os.ftruncate(self._fd, length)
            os.fsync(self._fd)
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot truncate journal: {exc.strerror}") from None

    def pending(self) -> list[SavedSetting]:
        """Saved and not yet restored, oldest first."""
        return sorted(self._saves.values(), key=lambda s: s.id)

    def pending_for(self, kind: str, target: str, netns: str | None) -> SavedSetting | None:
        for s in self._saves.values():
            if s.key == (kind, target, netns):
                return s
        return None

    def save(self, kind: str, target: str, netns: str | None, original: str, new: str, wall_time: float, reason: str) -> SavedSetting:
        """Claim the knob host-wide and record the change on disk (fsync'ed) before it is made.

        Raises JournalError (KnobOwned when another journal holds the knob): do not write it.
        """
        s = SavedSetting(self._next_id, kind, target, netns, original, new, wall_time, reason)
        claimed = self.owners.claim(s.key)
        try:
            self._append({"op": "save", **asdict(s)})
        except JournalError:
            if claimed:
                self.owners.release([s.key])
            raise
        self._next_id += 1
        self._saves[s.id] = s
        return s

    def mark_restored(self, s: SavedSetting, wall_time: float, outcome: str = "restored") -> None:
        """Record that the original is back (or was never changed); raises JournalError if it cannot."""
        self._append({"op": "restored", "id": s.id, "wall_time": wall_time, "outcome": outcome})
        self._saves.pop(s.id, None)
        if self.pending_for(*s.key) is None:
            self.owners.release([s.key])
        if not self._saves:
            try:
                self._truncate(0)  # nothing pending: start afresh so the file does not grow forever
            except JournalError:
                pass  # every record says restored: a longer file is all this costs


def peek(path: str | os.PathLike[str]) -> tuple[int, list[str]]:
    """(pending saves, bad lines) of a journal, read only: nothing is locked, cut or set aside."""
    p = Path(path)
    fd = _open_checked(p, os.O_RDONLY)
    try:
        parsed = _parse(os.pread(fd, os.fstat(fd).st_size, 0))
    finally:
        os.close(fd)
    return sum(1 for _, s in parsed.saves.values() if s.id not in parsed.done), parsed.bad


# --- host-wide ownership of knobs -----------------------------------------------------


def _key_json(key: tuple[str, str, str | None]) -> list:
    return list(key)


class KnobOwners:
    """Which journal owns which knob, host-wide: RUN_DIR/owners.json under RUN_DIR/owners.lock.

    Any writer (watch, apply) claims a knob through Journal.save before it writes it, and
    releases it once the original is back. A knob held by another journal is refused while
    that journal's holder lives (its flock is held), and also after it died for as long as
    that journal still has the knob pending: only replaying that journal (its next start, or
    `irqlab watch --restore --journal PATH`) puts the true original back. An entry whose
    journal no longer has the knob pending is stale and dropped by the next claimant.
    """

    def __init__(self, journal: Path, run_dir: str | os.PathLike[str] | None = None) -> None:
        # One spelling per file (symlinked or relative directories resolved): an entry must be
        # recognised as ours, or our own lock would make it look like another live owner.
        self.journal = os.path.join(os.path.realpath(journal.parent), journal.name)
        self.run_dir = Path(run_dir or os.environ.get(RUN_DIR_ENV) or DEFAULT_RUN_DIR)

    def _locked(self) -> int:
        try:
            self.run_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"{self.run_dir}: cannot create the knob registry directory: {exc.strerror}") from None
        _check_dir(self.run_dir)
        fd = _open_checked(self.run_dir / "owners.lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for a few file operations only
        return fd

    def _load(self) -> list[dict]:
        path = self.run_dir / "owners.json"
        try:
            fd = _open_checked(path, os.O_RDONLY)
        except JournalError:
            if not path.exists() and not path.is_symlink():
                return []
            raise
        try:
            data = json.loads(os.pread(fd, os.fstat(fd).st_size, 0) or b"[]")
        except ValueError:
            raise JournalError(f"{path}: the knob registry is not JSON; remove it once no irqlab runs") from None
        finally:
            os.close(fd)
        if not isinstance(data, list) or not all(isinstance(e, dict) and isinstance(e.get("knob"), list) for e in data):
            raise JournalError(f"{path}: the knob registry is not a list of owners; remove it once no irqlab runs")
        return data

    def _store(self, entries: list[dict]) -> None:
        path = self.run_dir / "owners.json"
        tmp = self.run_dir / f".owners.json.{os.getpid()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                _write_all(fd, json.dumps(entries, indent=1).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
        except OSError as exc:
            raise JournalError(f"{path}: cannot update the knob registry: {exc.strerror}") from None

    def claim(self, key: tuple[str, str, str | None]) -> bool:
        """Own the knob (True if newly claimed, False if already ours) or raise KnobOwned."""
        lock = self._locked()
        try:
            entries = self._load()
            keep = []
            for e in entries:
                if e["knob"] != _key_json(key):
                    keep.append(e)
                    continue
                if e.get("journal") == self.journal:
                    return False
                self._refuse_if_held(key, e)  # stale and no longer pending there: dropped
            keep.append({"knob": _key_json(key), "journal": self.journal, "pid": os.getpid()})
            self._store(keep)
            return True
        finally:
            os.close(lock)

    def _refuse_if_held(self, key: tuple[str, str, str | None], e: dict) -> None:
        other = str(e.get("journal"))
        where = key[1] + (f" (netns {key[2]})" if key[2] else "")
        state = _journal_state(Path(other), key)
        if state == "live":
            raise KnobOwned(f"{where}: owned by journal {other} (pid {e.get('pid')}, running); not written")
        if state == "pending":
            raise KnobOwned(f"{where}: journal {other} of a stopped irqlab still holds its original; "
                            f"run `irqlab watch --restore --journal {other}` first; not written")

    def release(self, keys: Iterable[tuple[str, str, str | None]]) -> None:
        """Give the knobs up; a registry that cannot be updated leaves a stale entry (harmless)."""
        drop = [_key_json(k) for k in keys]
        try:
            lock = self._locked()
        except (JournalError, OSError):
            return
        try:
            entries = self._load()
            keep = [e for e in entries if not (e["knob"] in drop and e.get("journal") == self.journal)]
            if keep != entries:
                self._store(keep)
        except JournalError:
            pass
        finally:
            os.close(lock)


def _journal_state(path: Path, key: tuple[str, str, str | None]) -> str:
    """'live' (its holder runs), 'pending' (dead holder, knob still pending there) or 'free'."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return "free"  # gone: nothing there to restore
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return "live"
        p = _parse(os.pread(fd, os.fstat(fd).st_size, 0))
        pending = {s.key for _, s in p.saves.values() if s.id not in p.done}
        return "pending" if key in pending else "free"
    finally:
        os.close(fd)


# --- restore --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """What happened to one pending setting at restore."""

    setting: SavedSetting
    outcome: str  # "restored", "gone" (the device or IRQ no longer exists), "failed"
    message: str = ""
    unrecorded: str = ""  # the original is back but the journal could not say so: why


def restore_pending(
    journal: Journal,
    write: Callable[[SavedSetting], str],
    wall_time: Callable[[], float],
    only: Callable[[SavedSetting], bool] | None = None,
) -> list[RestoreResult]:
    """Write back every pending original, newest first; `write` returns "restored" or "gone".

    A failed restore stays pending (it is retried at the next restore) and is reported. A
    journal that cannot record a restore does not stop the others: every original is written
    back, and the result says what could not be recorded (the next replay writes it again).
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
        try:
            journal.mark_restored(s, wall_time(), outcome)
        except JournalError as exc:
            out.append(RestoreResult(s, outcome, unrecorded=str(exc)))
            continue
        out.append(RestoreResult(s, outcome))
    return out
