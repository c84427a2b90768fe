"""/proc/irq/N/* and /sys/kernel/irq/N/*: affinity, node, spurious counts and chip data per IRQ.

The per-IRQ files are tiny but many: a 1152-CPU machine has thousands of IRQs, and each file
costs a procfs or sysfs open (about 10 us each on a VM). So the walk lists each directory once,
opens every file exactly once by path with os.open (no Python file objects), never probes a
file the kernel has shown it does not create, and can be limited to the fields a caller needs.

Kernel sources: kernel/irq/proc.c (register_irq_proc(), irq_spurious_proc_show()) and
kernel/irq/irqdesc.c (the /sys/kernel/irq attributes, CONFIG_SPARSE_IRQ && CONFIG_SYSFS).
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Callable, Collection, Iterable
from typing import Any

from irqlab.cpulist import parse_cpulist, parse_cpumask
from irqlab.errors import MissingSource, ParseError, SourceError, reason_of
from irqlab.model.snapshot import IrqInfo, Spurious
from irqlab.model.unreadable import Unreadable
from irqlab.sources.fs import Roots, list_dir, read_optional, read_small, read_text, translate

# --- pure parsers ---------------------------------------------------------------------------

# irq_spurious_proc_show() (kernel/irq/proc.c, unchanged from 2.6 to v6.18):
#   seq_printf(m, "count %u\n" "unhandled %u\n" "last_unhandled %u ms\n", ...)
_SPURIOUS_KEYS = ("count", "unhandled", "last_unhandled")


def _uint(token: str, path: str, line: int, what: str) -> int:
    """A decimal %u the kernel printed; ASCII digits only (int() would take "+1", "1_0", "٣")."""
    if not (token.isascii() and token.isdigit()):
        raise ParseError(path, line, token, f"{what} is not an unsigned decimal number")
    return int(token)


def parse_spurious(text: str, path: str = "spurious") -> Spurious:
    """Parse /proc/irq/N/spurious ("count N", "unhandled N", "last_unhandled N ms")."""
    values: dict[str, int] = {}
    lineno = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens or tokens[0] not in _SPURIOUS_KEYS:
            continue  # a line a later kernel might add: not ours to judge
        key = tokens[0]
        unit = ["ms"] if key == "last_unhandled" else []
        if len(tokens) != 2 + len(unit) or tokens[2:] != unit:
            raise ParseError(path, lineno, line.strip(), f"expected '{key} N{' ms' if unit else ''}'")
        if key in values:
            raise ParseError(path, lineno, key, "field appears twice")
        values[key] = _uint(tokens[1], path, lineno, key)
    for key in _SPURIOUS_KEYS:
        if key not in values:
            raise ParseError(path, max(lineno, 1), key, "field missing from spurious")
    return Spurious(values["count"], values["unhandled"], values["last_unhandled"])


def parse_node(text: str, path: str = "node") -> int:
    """Parse /proc/irq/N/node: "%d\\n", -1 (NUMA_NO_NODE) when the IRQ has no node."""
    token = text.strip()
    digits = token.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise ParseError(path, 1, token, "node is not a decimal integer")
    return int(token)


# Thousands of IRQs share a handful of affinities ("0-1151" for every unmanaged one), and
# expanding "0-1151" into 1152 ids costs more than reading the file: parse each text once
# per process. Only successes are cached; the tuples are immutable, so sharing is safe.
@functools.lru_cache(maxsize=4096)
def _cpulist_once(text: str) -> tuple[int, ...]:
    return parse_cpulist(text)


@functools.lru_cache(maxsize=4096)
def _cpumask_once(text: str) -> tuple[int, ...]:
    return parse_cpumask(text)


def parse_cpulist_file(text: str, path: str = "smp_affinity_list") -> tuple[int, ...]:
    """Parse a one-line CPU list file (smp_affinity_list, effective_affinity_list)."""
    try:
        return _cpulist_once(text)
    except ParseError:
        return parse_cpulist(text, path)  # raises again, naming the file


def parse_cpumask_file(text: str, path: str = "smp_affinity") -> tuple[int, ...]:
    """Parse a one-line hex mask file (smp_affinity, effective_affinity, default_smp_affinity)."""
    try:
        return _cpumask_once(text)
    except ParseError:
        return parse_cpumask(text, path)


def parse_value(text: str, path: str = "value") -> str:
    """A one-value sysfs attribute (chip_name, hwirq, name, type, wakeup); "" when empty.

    chip_name_show(), hwirq_show() and name_show() print nothing at all when the IRQ has no
    chip name, no domain or no flow name (kernel/irq/irqdesc.c), hence "" rather than None.
    """
    del path  # every text is a valid value
    return text.rstrip("\n")


def parse_actions(text: str, path: str = "actions") -> tuple[str, ...]:
    """Parse /sys/kernel/irq/N/actions: action names joined by "," (empty: no handler)."""
    del path
    text = text.rstrip("\n")
    return tuple(text.split(",")) if text else ()


def parse_per_cpu_count(text: str, path: str = "per_cpu_count") -> tuple[int, ...]:
    """Parse /sys/kernel/irq/N/per_cpu_count: "%u" per POSSIBLE CPU joined by ","."""
    # per_cpu_count_show() (kernel/irq/irqdesc.c) always ends with "\n", but sysfs caps an
    # attribute at one page (sysfs_emit_at): 1152 CPUs of 10-digit counts need 12 KiB, so
    # on big machines the text stops at 4095 bytes, mid-number. Refuse it rather than
    # return counts for the wrong number of CPUs.
    if not text.endswith("\n") and len(text) >= 4095:
        raise ParseError(path, 1, text[-20:], "truncated at the sysfs page size")
    text = text.strip()
    if not text:
        return ()
    tokens = text.split(",")
    # One check for the whole line: 1152 counts per IRQ, thousands of IRQs.
    if text.isascii() and text.replace(",", "").isdigit() and "" not in tokens:
        return tuple(map(int, tokens))
    return tuple(_uint(token, path, 1, "per-CPU count") for token in tokens)  # names the bad one


# --- the walk -------------------------------------------------------------------------------

Parser = Callable[[str, str], Any]
FieldTable = tuple[tuple[str, tuple[tuple[str, Parser], ...]], ...]

# IrqInfo field -> the files that can give it, preferred first; the field is None when none
# exists. Each table ends with a file every IRQ has (spurious, created outside CONFIG_SMP;
# per_cpu_count), so that a file missing before it is known to be absent on this kernel,
# not freed with its IRQ, without an extra stat (see _Walk.read_dir).
PROC_FIELDS: FieldTable = (
    # smp_affinity_list: commit 4b060420a596 (2.6.39); before it only the hex mask.
    ("affinity", (("smp_affinity_list", parse_cpulist_file), ("smp_affinity", parse_cpumask_file))),
    # effective_affinity{,_list}: Linux >= 4.13 (kernel/irq/proc.c, irq_effective_aff_proc_show;
    # absent from 4.10 builds), and only where CONFIG_GENERIC_IRQ_EFFECTIVE_AFF_MASK is selected.
    (
        "effective_affinity",
        (("effective_affinity_list", parse_cpulist_file), ("effective_affinity", parse_cpumask_file)),
    ),
    ("node", (("node", parse_node),)),  # CONFIG_SMP
    ("spurious", (("spurious", parse_spurious),)),
)
# /sys/kernel/irq/N (Documentation/ABI/testing/sysfs-kernel-irq: Linux >= 4.9, needs
# CONFIG_SPARSE_IRQ); "wakeup" came later and is not in that ABI file.
SYS_FIELDS: FieldTable = (
    ("wakeup", (("wakeup", parse_value),)),
    ("actions", (("actions", parse_actions),)),
    ("chip_name", (("chip_name", parse_value),)),
    ("hwirq", (("hwirq", parse_value),)),
    ("name", (("name", parse_value),)),
    ("type", (("type", parse_value),)),
    ("per_cpu_count", (("per_cpu_count", parse_per_cpu_count),)),
)
ALL_FIELDS: tuple[str, ...] = tuple(f for f, _ in PROC_FIELDS + SYS_FIELDS)

def _read_file(path: str) -> str:
    """Whole text of a small kernel file; raises OSError (the caller sorts ENOENT out)."""
    # fs.read_small: one open, one fstat, one read, with the rules every read obeys (below
    # its root, regular files only, size cap); refusals raise SourceError.
    return read_small(path).decode("utf-8", "replace")


class _Problems:
    """Errors collected during a walk: one Unreadable per (file kind, reason), with a count."""

    def __init__(self) -> None:
        self._first: dict[tuple[str, str], SourceError] = {}
        self._count: dict[tuple[str, str], int] = {}

    def add(self, kind: str, exc: SourceError) -> None:
        key = (kind, reason_of(exc))
        self._first.setdefault(key, exc)
        self._count[key] = self._count.get(key, 0) + 1

    def unreadable(self) -> list[Unreadable]:
        out = []
        for (kind, reason), exc in self._first.items():
            n = self._count[(kind, reason)]
            more = f" (and {n - 1} more IRQs)" if n > 1 else ""
            out.append(Unreadable("irqinfo", exc.path, reason, f"{kind}: {exc.message}{more}"))
        return out


class _Walk:
    """One pass over IRQ directories of one kind; remembers files this kernel does not have."""

    def __init__(self, table: FieldTable, problems: _Problems) -> None:
        self.table = table
        self.problems = problems
        # Files found missing in a directory that still existed afterwards. The kernel
        # creates the same files for every IRQ (register_irq_proc(), irq_attrs[]), so no
        # other IRQ has them either: a 3.x kernel is not asked twice per IRQ for
        # effective_affinity_list, and a failed open costs as much as a read.
        self.absent: set[str] = set()

    def read_dir(self, directory: str, out: dict[str, Any]) -> bool:
        """Fill out[field] from one IRQ directory; False if the IRQ was freed meanwhile."""
        missing: list[str] = []  # since the last file that was there
        for field, candidates in self.table:
            for name, parser in candidates:
                if name in self.absent:
                    continue
                path = f"{directory}/{name}"
                try:
                    text = _read_file(path)
                except OSError as exc:
                    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                        missing.append(name)
                        continue
                    text = None
                    self.problems.add(name, translate(exc, path))
                except SourceError as exc:  # refused: a link out of a capture, a FIFO, ...
                    text = None
                    self.problems.add(name, exc)
                # The directory outlived the files missing before this one.
                self.absent.update(missing)
                missing.clear()
                if text is not None:
                    self._parse(field, name, parser, text, path, out)
                break  # found (or unreadable, and so would a fallback of the same mode be)
        if not missing:
            return True  # read what there was (or every file is known to be absent)
        # Files missing after the last one found: absent on this kernel, or freed with the
        # IRQ mid-walk (IRQs come and go). One stat tells; with full tables it is rare.
        if os.path.isdir(directory):
            self.absent.update(missing)
            return True
        return False  # what was read belongs to an IRQ that is gone

    def _parse(self, field: str, name: str, parser: Parser, text: str, path: str, out: dict[str, Any]) -> None:
        try:
            out[field] = parser(text, path)
        except ParseError as err:
            self.problems.add(name, err)


def _numbered(names: Iterable[str]) -> set[int]:
    return {int(n) for n in names if n.isascii() and n.isdigit()}


def _select(table: FieldTable, fields: Collection[str] | None) -> FieldTable:
    return table if fields is None else tuple(row for row in table if row[0] in fields)


def _affinity_read_only(path: str) -> bool | None:
    """True when smp_affinity_list is read-only: register_irq_proc() (kernel/irq/proc.c) gives it
    no write bit when irq_can_set_affinity_usr() is false (a managed IRQ, or a chip that
    cannot move it), so a write would get EPERM. None when the file is gone."""
    try:
        return not os.stat(path).st_mode & stat.S_IWUSR
    except OSError:
        return None


def read_irqinfo(
    roots: Roots,
    irqs: Iterable[int] | None = None,
    fields: Collection[str] | None = None,
) -> tuple[dict[int, IrqInfo], list[Unreadable]]:
    """Read /proc/irq/N and /sys/kernel/irq/N for each IRQ (all of /proc/irq when irqs is None).

    fields limits the walk to some IrqInfo fields (see ALL_FIELDS); the others stay None.
    An IRQ that vanishes mid-walk is left out; a missing file (older kernel) leaves its field
    None silently; an unreadable or garbled file leaves it None and is reported once per kind.
    """
    unknown = set(fields or ()) - set(ALL_FIELDS)
    if unknown:
        raise ValueError(f"not IrqInfo fields: {sorted(unknown)}")
    problems = _Problems()
    proc_base, sys_base = str(roots.proc("irq")), str(roots.sys("kernel", "irq"))
    try:
        in_proc = _numbered(list_dir(proc_base))
    except SourceError as exc:
        return {}, [Unreadable("irqinfo", exc.path, reason_of(exc), str(exc))]
    try:
        in_sys = _numbered(list_dir(sys_base))
    except MissingSource:
        in_sys = set()  # kernel < 4.9, or !CONFIG_SPARSE_IRQ: the fields stay None
    except SourceError as exc:
        in_sys = set()
        problems.add("/sys/kernel/irq", exc)
    wanted = sorted(in_proc if irqs is None else in_proc.intersection(irqs))
    proc = _Walk(_select(PROC_FIELDS, fields), problems)
    sysfs = _Walk(_select(SYS_FIELDS, fields), problems)
    result: dict[int, IrqInfo] = {}
    live = roots.is_live
    for irq in wanted:
        values: dict[str, Any] = {}
        if proc.table and not proc.read_dir(f"{proc_base}/{irq}", values):
            continue  # freed between the listing and the reads
        if sysfs.table and irq in in_sys and not sysfs.read_dir(f"{sys_base}/{irq}", values):
            continue
        if live and "affinity" in values:
            values["managed"] = _affinity_read_only(f"{proc_base}/{irq}/smp_affinity_list")
        result[irq] = IrqInfo(irq=irq, **values)
    return result, problems.unreadable()


def read_default_affinity(roots: Roots) -> tuple[int, ...] | None:
    """CPUs of /proc/irq/default_smp_affinity (the mask new IRQs start with); None if absent.

    Raises PermissionDenied (2.6-era kernels created it mode 0600) or ParseError.
    """
    path = roots.proc("irq", "default_smp_affinity")
    text = read_optional(path)
    return None if text is None else parse_cpumask(text, str(path))


def affinity_list_path(roots: Roots, irq: int) -> str:
    """/proc/irq/N/smp_affinity_list under roots: the file read here and written by mitigate/affinity.py."""
    return str(roots.proc("irq", str(irq), "smp_affinity_list"))


def read_affinity_list(roots: Roots, irq: int) -> str:
    """The kernel's own text of /proc/irq/N/smp_affinity_list, stripped (the value to put back).

    Unparsed on purpose: a writer saves exactly what the kernel printed. MissingSource when the
    IRQ is gone (or the kernel predates the file, 2.6.39).
    """
    return read_text(affinity_list_path(roots, irq)).strip()


def allocated_irqs(roots: Roots) -> set[int]:
    """IRQ numbers with a descriptor now: /sys/kernel/irq/N, else /proc/irq/N.

    /sys/kernel/irq has every allocated descriptor (irq_sysfs_add(), kernel/irq/irqdesc.c);
    without it (kernel < 4.9, !CONFIG_SPARSE_IRQ) /proc/irq lists them (register_irq_proc()).
    Any other failure to list is raised (SourceError).
    """
    try:
        return _numbered(list_dir(roots.sys("kernel", "irq")))
    except MissingSource:
        return _numbered(list_dir(roots.proc("irq")))


def read_actions(roots: Roots, irq: int) -> tuple[str, ...] | None:
    """One IRQ's handler names (/sys/kernel/irq/N/actions); None when the file is absent.

    Absent: the IRQ was freed, or the kernel has no /sys/kernel/irq (< 4.9, !CONFIG_SPARSE_IRQ).
    Any other failure is raised (SourceError).
    """
    path = roots.sys("kernel", "irq", str(irq), "actions")
    text = read_optional(path)
    return None if text is None else parse_actions(text, str(path))
