"""One entry point for every knob irqlab may change: read, validate, journal, write, restore.

A knob is (kind, target, netns):
  affinity  /proc/irq/N/smp_affinity_list                      (netns None)
  napi      /sys/class/net/DEV/napi_defer_hard_irqs | gro_flush_timeout | threaded  (DEV may be in netns)
            napi:DEV:ID:defer-hard-irqs | gro-flush-timeout | irq-suspend-timeout | threaded
                                                 (one NAPI instance, netdev netlink napi-set, 6.13+)
  coalesce  ethtool:DEV:rx_coalesce_usecs | rx_max_coalesced_frames
  queue     /sys/class/net/DEV/queues/rx-N/rps_cpus | tx-N/xps_cpus  (DEV may be in netns)
  thread    sched_setaffinity:PID:COMM   a kernel thread's allowed CPUs (mitigate/threads.py)
Every change is saved in the journal (fsync'ed) before it is written, and every value,
including an original read back from the journal, is validated before it is written:
KnobFiles.check() holds a replayed record to the rules of a fresh write (the target is exactly
a path irqlab writes, the values pass the same range and CPU-list checks), and a journal opened
with it refuses records that fail.

Three layers, each with one job: KnobFiles reads, validates and writes the files (and ethtool
fields); Mitigator journals every change made through KnobFiles; HostKnobs is the `Knobs`
protocol of model/knob.py on top of them, turning a plan's PlannedWrite into the knob it names.
"""

from __future__ import annotations

import errno
import re
import time
from collections.abc import Collection

from irqlab.errors import IrqlabError, MissingSource, SourceError
from irqlab.mitigate import affinity, coalesce, napi, queues, threads
from irqlab.mitigate.journal import KINDS, Journal, JournalError, KnobOwned, RestoreResult, SavedSetting, restore_pending  # noqa: F401 - KINDS re-exported
from irqlab.mitigate.netns import _NAME as _NETNS_NAME
from irqlab.mitigate.netns import NetnsError
from irqlab.model.knob import Knob, KnobRefused, KnobUnsupported, PlannedWrite, Restored
from irqlab.sources.fs import Roots
from irqlab.sources.host import read_cpus

_AFFINITY = re.compile(r".*/irq/([0-9]{1,7})/smp_affinity_list")
_NAPI = re.compile(r"/sys/class/net/([^/\s]{1,15})/([a-z_]+)")
_NAPI_ONE = re.compile(r"napi:([^/:\s]{1,15}):([0-9]{1,10}):([a-z-]+)")
_COALESCE = re.compile(r"ethtool:([^/:\s]{1,15}):([a-z_]+)")
_QUEUE = re.compile(r"/sys/class/net/([^/\s]{1,15})/(queues/(?:rx|tx)-[0-9]{1,5}/[a-z_]+)")


def queue_knob(dev: str, attr: str, netns: str | None) -> Knob:
    return Knob("queue", f"/sys/class/net/{dev}/{attr}", netns)


def napi_knob(dev: str, attr: str, netns: str | None, napi_id: int | None = None) -> Knob:
    """A device's NAPI attribute file, or (napi_id) one NAPI instance's attribute over netlink."""
    if napi_id is not None:
        return Knob("napi", f"napi:{dev}:{napi_id}:{attr}", netns)
    return Knob("napi", f"/sys/class/net/{dev}/{attr}", netns)


def coalesce_knob(dev: str, field: str, netns: str | None) -> Knob:
    return Knob("coalesce", f"ethtool:{dev}:{field}", netns)


def thread_knob(pid: int, comm: str) -> Knob:
    return Knob("thread", threads.thread_target(pid, comm))


def affinity_knob(roots: Roots, irq: int) -> Knob:
    return Knob("affinity", affinity.affinity_path(roots, irq))


def _parts(knob: Knob, roots: Roots) -> tuple[str, ...]:
    """The knob's (irq,) / (dev, attr) / (dev, field), or IrqlabError if irqlab never writes it."""
    pattern = {"affinity": _AFFINITY, "napi": _NAPI, "coalesce": _COALESCE, "queue": _QUEUE,
               "thread": threads.TARGET}.get(knob.kind)
    if knob.kind == "napi" and knob.target.startswith("napi:"):
        pattern = _NAPI_ONE  # (dev, id, attr)
    m = pattern.fullmatch(knob.target) if pattern else None
    # affinity: exactly this root's /proc/irq/N/smp_affinity_list, never a look-alike elsewhere
    if m is None or (knob.kind == "affinity" and knob.target != affinity.affinity_path(roots, int(m.group(1)))):
        raise IrqlabError(f"{knob.kind} {knob.target!r}: not a knob irqlab writes")
    if knob.netns is not None and (not _NETNS_NAME.match(knob.netns) or knob.netns in (".", "..")):
        raise IrqlabError(f"netns {knob.netns!r}: not a network namespace name")
    if knob.kind in ("affinity", "thread") and knob.netns is not None:
        raise IrqlabError(f"{knob.target}: {knob.kind} has no network namespace")
    return m.groups()


class KnobFiles:
    """Reads, validates and writes knobs on one machine (roots) with the CPU facts affinity needs."""

    def __init__(self, roots: Roots) -> None:
        self.roots = roots
        self.online = affinity.online_cpus(roots)
        self.isolated = affinity.isolated_cpus(roots)

    def _possible(self) -> tuple[int, ...]:
        """The possible CPUs (an original's bound for a thread); the online ones if unreadable."""
        try:
            return read_cpus(self.roots, "possible")
        except SourceError:
            return self.online

    def read(self, knob: Knob) -> str:
        p = _parts(knob, self.roots)
        if knob.kind == "affinity":
            return affinity.read_affinity(self.roots, int(p[0]))
        if knob.kind == "thread":
            return threads.read_thread_affinity(self.roots, int(p[0]), p[1])
        if knob.kind == "napi" and len(p) == 3:
            return napi.read_napi_config(knob.netns, *p)
        if knob.kind == "napi":
            return napi.read_napi(knob.netns, p[0], p[1], str(self.roots.sysfs))
        if knob.kind == "queue":
            return queues.read_queue(knob.netns, p[0], p[1], str(self.roots.sysfs))
        return coalesce.read_coalesce(knob.netns, p[0], p[1])

    def validate(self, knob: Knob, value: str) -> str:
        p = _parts(knob, self.roots)
        if knob.kind == "affinity":
            # An original may legitimately include isolated CPUs (it was the kernel's default).
            return affinity.validate_affinity(value, self.online, self.isolated, allow_isolated=True)
        if knob.kind == "thread":
            # An original may name CPUs that are possible but offline (a kthread's default mask).
            return threads.validate_thread_affinity(value, self._possible())
        if knob.kind == "napi" and len(p) == 3:
            return napi.validate_napi_config(p[0], p[1], p[2], value)
        if knob.kind == "napi":
            return napi.validate_napi(p[0], p[1], value)
        if knob.kind == "queue":
            # An original may name any CPU the mask can (the kernel printed it); a new value is checked in strict().
            return queues.validate_queue(p[0], p[1], value)
        return coalesce.validate_coalesce(p[1], value)

    def check(self, s: SavedSetting) -> None:
        """A journal record as strictly as a fresh write: target, original, and the value it set.

        An affinity original may include isolated CPUs (the kernel's default affinity does);
        the value irqlab set may not, exactly as when it was first written.
        """
        knob = Knob(s.kind, s.target, s.netns)
        self.validate(knob, s.original)
        if s.kind == "affinity":
            affinity.validate_affinity(s.new, self.online, self.isolated)
        else:
            self.strict(knob, s.new)

    def strict(self, knob: Knob, value: str) -> str:
        """A value irqlab sets (not an original): also online, not isolated, for CPU knobs."""
        if knob.kind == "affinity":
            return affinity.validate_affinity(value, self.online, self.isolated)
        if knob.kind == "thread":
            _parts(knob, self.roots)
            return threads.validate_thread_affinity(value, self.online, self.isolated)
        if knob.kind == "queue":
            p = _parts(knob, self.roots)
            return queues.validate_queue(p[0], p[1], value, self.online, self.isolated)
        return self.validate(knob, value)

    def write(self, knob: Knob, value: str) -> None:
        value = self.validate(knob, value)
        p = _parts(knob, self.roots)
        if knob.kind == "affinity":
            affinity.write_affinity(self.roots, int(p[0]), value)
        elif knob.kind == "thread":
            threads.write_thread_affinity(self.roots, int(p[0]), p[1], value)
        elif knob.kind == "napi" and len(p) == 3:
            napi.write_napi_config(knob.netns, p[0], p[1], p[2], value)
        elif knob.kind == "napi":
            napi.write_napi(knob.netns, p[0], p[1], value, str(self.roots.sysfs))
        elif knob.kind == "queue":
            queues.write_queue(knob.netns, p[0], p[1], value, str(self.roots.sysfs))
        else:
            coalesce.write_coalesce(knob.netns, p[0], p[1], value)


def _gone(exc: Exception) -> bool:
    """The IRQ, device, namespace or thread no longer exists: nothing is left to restore."""
    if isinstance(exc, (MissingSource, NetnsError, threads.ThreadGone)):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return True
    return "no longer exists" in str(exc)


class Mitigator:
    """Journaled changes: apply() saves then writes; restore() writes the originals back."""

    def __init__(self, knobs: KnobFiles, journal: Journal, wall_time=time.time) -> None:
        self.knobs = knobs
        self.journal = journal
        self.wall_time = wall_time

    @classmethod
    def open(cls, knobs: KnobFiles, path: str, wall_time=time.time) -> Mitigator:
        """Lock the journal at `path`, refusing (and setting aside) records knobs.check refuses."""
        return cls(knobs, Journal(path, check=knobs.check), wall_time)

    def __enter__(self) -> Mitigator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.journal.close()

    def apply(self, knob: Knob, value: str, reason: str) -> SavedSetting | None:
        """Change a knob; None when it already has the value (nothing saved, nothing written)."""
        value = self.knobs.strict(knob, value)
        value = self.knobs.validate(knob, value)
        if self.journal.pending_for(knob.kind, knob.target, knob.netns) is not None:
            return None  # already changed by us: the journal holds the true original
        original = self.knobs.read(knob)
        if original == value:
            return None
        # No knob is written unless its record is complete on disk: a JournalError (full disk,
        # a knob another journal owns) goes up from here and the knob is left alone.
        saved = self.journal.save(knob.kind, knob.target, knob.netns, original, value, self.wall_time(), reason)
        try:
            self.knobs.write(knob, value)
        except (OSError, IrqlabError):
            # Not written: nothing to restore. The journal says so (if it can: else the
            # record stays pending and a replay writes the unchanged original, harmless).
            try:
                self.journal.mark_restored(saved, self.wall_time(), "not-applied")
            except JournalError:
                pass
            raise
        return saved

    def _restore_one(self, s: SavedSetting) -> str:
        knob = Knob(s.kind, s.target, s.netns)
        try:
            self.knobs.write(knob, s.original)
        except (OSError, IrqlabError) as exc:
            if _gone(exc):
                return "gone"
            raise
        return "restored"

    def restore(self, only=None) -> list[RestoreResult]:
        """Every pending original back (or only those `only(setting)` selects), newest first."""
        return restore_pending(self.journal, self._restore_one, self.wall_time, only)


class HostKnobs:
    """The `Knobs` protocol (model/knob.py) on this machine: every write through the journal.

    The watch core (daemon/watchcore.py) acts on the host through this class, and the model
    through sim/policy.py's ModelKnobs. It is also the whole of what an `irqlab apply PLAN`
    command needs: `HostKnobs.open(roots, journal)` (which restores nothing by itself: call
    restore() first to undo what a killed run left), apply() for each PlannedWrite of the plan,
    restore() for `--undo`. The journal's guarantees hold for every caller: a record is complete
    and fsync'ed before its knob is written, one owner per knob host-wide, originals back on
    restore. Without a journal (`HostKnobs(roots)`, a dry run) it names and reads knobs and
    refuses to write them.
    """

    def __init__(self, roots: Roots, mitigator: Mitigator | None = None) -> None:
        self.roots = roots
        self.mitigator = mitigator
        self._files = mitigator.knobs if mitigator is not None else None

    @classmethod
    def open(cls, roots: Roots, journal: str, wall_time=time.time) -> HostKnobs:
        """Lock the journal at `journal` (JournalError if it cannot be); its records stay pending."""
        return cls(roots, Mitigator.open(KnobFiles(roots), journal, wall_time))

    @property
    def problems(self) -> list[str]:
        """The journal's corrupt records, set aside when it was opened (one line each)."""
        return list(self.mitigator.journal.problems) if self.mitigator is not None else []

    def close(self) -> None:
        if self.mitigator is not None:
            self.mitigator.journal.close()

    def __enter__(self) -> HostKnobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def knob(self, write: PlannedWrite) -> Knob:
        if write.kind == "affinity":
            return affinity_knob(self.roots, write.irq if write.irq is not None else -1)
        if write.kind == "napi":
            return napi_knob(write.dev or "", write.attr or "", write.netns, write.napi_id)
        if write.kind == "queue":
            return queue_knob(write.dev or "", write.attr or "", write.netns)
        if write.kind == "thread":
            return thread_knob(write.pid if write.pid is not None else -1, write.comm or "")
        return coalesce_knob(write.dev or "", write.attr or "", write.netns)

    def read(self, write: PlannedWrite) -> str:
        if self._files is None:
            self._files = KnobFiles(self.roots)
        return self._files.read(self.knob(write))

    def apply(self, write: PlannedWrite) -> str | None:
        """Save, then write; the value replaced, or None (already so, or already changed by us)."""
        knob = self.knob(write)
        if self.mitigator is None:
            raise KnobRefused(f"{knob.where}: not written, no journal is open")
        try:
            saved = self.mitigator.apply(knob, write.value, write.reason)
        except KnobUnsupported:
            raise
        except KnobOwned as exc:  # names the knob and its owner
            raise KnobRefused(str(exc)) from exc
        except JournalError as exc:
            raise KnobRefused(f"{knob.where}: not written, the journal cannot record it: {exc}") from exc
        return None if saved is None else saved.original

    def restore(self, knobs: Collection[Knob] | None = None) -> list[Restored]:
        """Every pending original of these knobs back (all when None), newest first."""
        if self.mitigator is None:
            return []
        keys = None if knobs is None else set(knobs)
        only = None if keys is None else (lambda s: Knob(s.kind, s.target, s.netns) in keys)
        return [Restored(Knob(r.setting.kind, r.setting.target, r.setting.netns), r.setting.original, r.setting.new,
                         r.outcome, r.message, r.unrecorded) for r in self.mitigator.restore(only)]
