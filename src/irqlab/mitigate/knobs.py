"""One entry point for every knob irqlab may change: read, validate, journal, write, restore.

A knob is (kind, target, netns):
  affinity  /proc/irq/N/smp_affinity_list                      (netns None)
  napi      /sys/class/net/DEV/napi_defer_hard_irqs | gro_flush_timeout  (DEV may be in netns)
  coalesce  ethtool:DEV:rx_coalesce_usecs | rx_max_coalesced_frames
Every change is saved in the journal (fsync'ed) before it is written, and every value,
including an original read back from the journal, is validated before it is written:
Knobs.check() holds a replayed record to the rules of a fresh write (the target is exactly a
path irqlab writes, the values pass the same range and CPU-list checks), and a journal opened
with it refuses records that fail.
"""

from __future__ import annotations

import errno
import re
import time
from dataclasses import dataclass

from irqlab.errors import IrqlabError, MissingSource
from irqlab.mitigate import affinity, coalesce, napi
from irqlab.mitigate.journal import KINDS, Journal, JournalError, RestoreResult, SavedSetting, restore_pending  # noqa: F401 - KINDS re-exported
from irqlab.mitigate.netns import _NAME as _NETNS_NAME
from irqlab.mitigate.netns import NetnsError
from irqlab.sources.fs import Roots

_AFFINITY = re.compile(r".*/irq/([0-9]{1,7})/smp_affinity_list")
_NAPI = re.compile(r"/sys/class/net/([^/\s]{1,15})/([a-z_]+)")
_COALESCE = re.compile(r"ethtool:([^/:\s]{1,15}):([a-z_]+)")


@dataclass(frozen=True, slots=True)
class Knob:
    kind: str
    target: str
    netns: str | None = None

    @property
    def where(self) -> str:
        return self.target + (f" (netns {self.netns})" if self.netns else "")


def napi_knob(dev: str, attr: str, netns: str | None) -> Knob:
    return Knob("napi", f"/sys/class/net/{dev}/{attr}", netns)


def coalesce_knob(dev: str, field: str, netns: str | None) -> Knob:
    return Knob("coalesce", f"ethtool:{dev}:{field}", netns)


def affinity_knob(roots: Roots, irq: int) -> Knob:
    return Knob("affinity", affinity.affinity_path(roots, irq))


def _parts(knob: Knob, roots: Roots) -> tuple[str, ...]:
    """The knob's (irq,) / (dev, attr) / (dev, field), or IrqlabError if irqlab never writes it."""
    pattern = {"affinity": _AFFINITY, "napi": _NAPI, "coalesce": _COALESCE}.get(knob.kind)
    m = pattern.fullmatch(knob.target) if pattern else None
    # affinity: exactly this root's /proc/irq/N/smp_affinity_list, never a look-alike elsewhere
    if m is None or (knob.kind == "affinity" and knob.target != affinity.affinity_path(roots, int(m.group(1)))):
        raise IrqlabError(f"{knob.kind} {knob.target!r}: not a knob irqlab writes")
    if knob.netns is not None and (not _NETNS_NAME.match(knob.netns) or knob.netns in (".", "..")):
        raise IrqlabError(f"netns {knob.netns!r}: not a network namespace name")
    if knob.kind == "affinity" and knob.netns is not None:
        raise IrqlabError(f"{knob.target}: IRQ affinity has no network namespace")
    return m.groups()


class Knobs:
    """Reads and writes knobs on one machine (roots) with the CPU facts affinity needs."""

    def __init__(self, roots: Roots) -> None:
        self.roots = roots
        self.online = affinity.online_cpus(roots)
        self.isolated = affinity.isolated_cpus(roots)

    def read(self, knob: Knob) -> str:
        p = _parts(knob, self.roots)
        if knob.kind == "affinity":
            return affinity.read_affinity(self.roots, int(p[0]))
        if knob.kind == "napi":
            return napi.read_napi(knob.netns, p[0], p[1], str(self.roots.sysfs))
        return coalesce.read_coalesce(knob.netns, p[0], p[1])

    def validate(self, knob: Knob, value: str) -> str:
        p = _parts(knob, self.roots)
        if knob.kind == "affinity":
            # An original may legitimately include isolated CPUs (it was the kernel's default).
            return affinity.validate_affinity(value, self.online, self.isolated, allow_isolated=True)
        if knob.kind == "napi":
            return napi.validate_napi(p[0], p[1], value)
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
            self.validate(knob, s.new)

    def write(self, knob: Knob, value: str) -> None:
        value = self.validate(knob, value)
        p = _parts(knob, self.roots)
        if knob.kind == "affinity":
            affinity.write_affinity(self.roots, int(p[0]), value)
        elif knob.kind == "napi":
            napi.write_napi(knob.netns, p[0], p[1], value, str(self.roots.sysfs))
        else:
            coalesce.write_coalesce(knob.netns, p[0], p[1], value)


def _gone(exc: Exception) -> bool:
    """The IRQ, device or namespace no longer exists: nothing is left to restore."""
    if isinstance(exc, (MissingSource, NetnsError)):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return True
    return "no longer exists" in str(exc)


class Mitigator:
    """Journaled changes: apply() saves then writes; restore() writes the originals back."""

    def __init__(self, knobs: Knobs, journal: Journal, wall_time=time.time) -> None:
        self.knobs = knobs
        self.journal = journal
        self.wall_time = wall_time

    @classmethod
    def open(cls, knobs: Knobs, path: str, wall_time=time.time) -> Mitigator:
        """Lock the journal at `path`, refusing (and setting aside) records knobs.check refuses."""
        return cls(knobs, Journal(path, check=knobs.check), wall_time)

    def __enter__(self) -> Mitigator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.journal.close()

    def apply(self, knob: Knob, value: str, reason: str) -> SavedSetting | None:
        """Change a knob; None when it already has the value (nothing saved, nothing written)."""
        if knob.kind == "affinity":
            value = affinity.validate_affinity(value, self.knobs.online, self.knobs.isolated)
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
