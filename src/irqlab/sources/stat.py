"""/proc/stat: CPU times, the intr and softirq lines, and the scheduler counters.

Layout (fs/proc/stat.c, show_stat(), v6.18): an aggregate `cpu` line summed over possible
CPUs, one `cpuN` line per ONLINE CPU (offline ones are missing, so ids can skip), then
`intr TOTAL n0 n1 ...` with one number per IRQ up to nr_irqs (tens of thousands with
CONFIG_SPARSE_IRQ on big machines), ctxt, btime, processes, procs_running, procs_blocked and
`softirq TOTAL v0..v9`. 2.4 kernels also print page/swap/disk_io lines, which we skip.
"""

from __future__ import annotations

import re

import numpy as np

from irqlab.errors import ParseError
from irqlab.model.snapshot import CPU_TIME_FIELDS, Stat
from irqlab.sources.fs import Roots, read_text

# 2.4 printed user nice system idle; 2.6 added iowait irq softirq, then steal (2.6.11),
# guest (2.6.24) and guest_nice (2.6.33).
MIN_CPU_FIELDS = 4

# Lines holding one number; each fills the Stat field of the same name.
SCALARS: tuple[str, ...] = ("ctxt", "btime", "processes", "procs_running", "procs_blocked")

_CPU_NAME = re.compile(r"cpu([0-9]{0,5})")
_DIGITS_AND_BLANKS = re.compile(r"[0-9 \t]*")
_BLANKS = re.compile(r"[ \t]+")
# Up to 18 digits always fit int64; the kernel's numbers are u64 sums of u32 counters and
# tick counts, far below 10^18.
MAX_DIGITS = 18
LIMIT = 10**MAX_DIGITS


def _is_number(token: str) -> bool:
    # isascii() first: str.isdigit() also accepts "²" and other non-ASCII digits.
    return token.isascii() and token.isdigit() and len(token) <= MAX_DIGITS


def _bad_token(body: str) -> str:
    """The first token of body that is not a decimal number below LIMIT."""
    for token in _BLANKS.split(body.strip(" \t")):
        if not _is_number(token):
            return token
    return body.strip()


def _decimal_array(body: str, path: str, lineno: int) -> np.ndarray:
    """Blank-separated decimal numbers as int64, fast enough for a 66,000-number intr line."""
    # np.fromstring stops silently at junk and saturates on overflow, so check the text
    # first and the values after; still ~4x faster than np.array(body.split()).
    if _DIGITS_AND_BLANKS.fullmatch(body) is None:
        raise ParseError(path, lineno, _bad_token(body), "not a decimal number")
    if not body.strip():
        return np.zeros(0, dtype=np.int64)
    values = np.fromstring(body, dtype=np.int64, sep=" ")
    if values.max() >= LIMIT:
        raise ParseError(path, lineno, _bad_token(body), "number too large for a counter")
    return values


def _numbers(tokens: list[str], path: str, lineno: int) -> list[int]:
    """A few decimal numbers (a cpu line, ctxt ...), checked like decimal_array's."""
    joined = "".join(tokens)
    # One check over the joined text: 1152 cpu lines should not cost 12,000 calls.
    if not tokens or (joined.isascii() and joined.isdigit() and len(max(tokens, key=len)) <= MAX_DIGITS):
        return [int(token) for token in tokens]
    raise ParseError(path, lineno, next(t for t in tokens if not _is_number(t)), "not a decimal number")


def _cpu_times(name: str, body: str, path: str, lineno: int) -> list[int]:
    """The time columns of one cpu line, padded with -1 to all of CPU_TIME_FIELDS."""
    values = _numbers(body.split(), path, lineno)
    if not MIN_CPU_FIELDS <= len(values) <= len(CPU_TIME_FIELDS):
        raise ParseError(path, lineno, name, f"{len(values)} time fields, expected 4 to 10")
    return values + [-1] * (len(CPU_TIME_FIELDS) - len(values))


def _total_and_rest(key: str, body: str, path: str, lineno: int) -> tuple[int, np.ndarray]:
    """`intr` and `softirq` lines: a total, then one number per IRQ or vector."""
    # The totals are u64, but each per-IRQ number is kstat_irqs_usr(), an unsigned int sum
    # over CPUs (kernel/irq/irqdesc.c), and each per-vector number is an unsigned int too
    # (per_softirq_sums[] in show_stat()): both wrap at 2^32, the totals do not.
    values = _decimal_array(body, path, lineno)
    if len(values) == 0:
        raise ParseError(path, lineno, key, f"'{key}' line has no total")
    return int(values[0]), values[1:]


def _scalar(key: str, body: str, path: str, lineno: int) -> int:
    """ctxt, btime, processes, procs_running, procs_blocked: one number each."""
    tokens = body.split()
    if len(tokens) != 1:
        raise ParseError(path, lineno, f"{key} {body}".strip(), f"'{key}' takes one number")
    return _numbers(tokens, path, lineno)[0]


def parse_stat(text: str, path: str = "/proc/stat") -> Stat:
    """Parse the text of /proc/stat."""
    cpu_lines: dict[int, list[int]] = {}  # -1 is the aggregate "cpu" line
    arrays: dict[str, tuple[int, np.ndarray]] = {}  # intr, softirq
    scalars: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        key, body = parts[0], parts[1] if len(parts) > 1 else ""
        cpu = _CPU_NAME.fullmatch(key)
        ident = (int(cpu.group(1)) if cpu.group(1) else -1) if cpu else None
        if key in arrays or key in scalars or ident in cpu_lines:
            raise ParseError(path, lineno, key, "line appears twice")
        if ident is not None:
            cpu_lines[ident] = _cpu_times(key, body, path, lineno)
        elif key in ("intr", "softirq"):
            arrays[key] = _total_and_rest(key, body, path, lineno)
        elif key in SCALARS:
            scalars[key] = _scalar(key, body, path, lineno)
        # Anything else (page, swap, disk_io on 2.4; arch additions) is not ours to read.
    if -1 not in cpu_lines:
        first = text.strip().splitlines()[:1]
        raise ParseError(path, 1, first[0] if first else "", "no aggregate 'cpu' line")
    return _build(cpu_lines, arrays, scalars)


def _build(cpu_lines: dict[int, list[int]], arrays: dict[str, tuple[int, np.ndarray]], scalars: dict[str, int]) -> Stat:
    total = cpu_lines.pop(-1)
    cpus = tuple(cpu_lines)
    times = np.array([cpu_lines[c] for c in cpus], dtype=np.int64).reshape(len(cpus), len(CPU_TIME_FIELDS))
    intr = arrays.get("intr")
    softirq = arrays.get("softirq")
    return Stat(
        cpus=cpus,
        times=times,
        total_times=np.array(total, dtype=np.int64),
        nfields=max(len(t) - t.count(-1) for t in (total, *cpu_lines.values())),
        intr_total=None if intr is None else intr[0],
        intr=None if intr is None else intr[1],
        softirq_total=None if softirq is None else softirq[0],
        softirq=None if softirq is None else tuple(int(v) for v in softirq[1]),
        ctxt=scalars.get("ctxt"),
        btime=scalars.get("btime"),
        processes=scalars.get("processes"),
        procs_running=scalars.get("procs_running"),
        procs_blocked=scalars.get("procs_blocked"),
    )


def read_stat(roots: Roots) -> Stat:
    """Read and parse /proc/stat under roots."""
    path = roots.proc("stat")
    return parse_stat(read_text(path), str(path))
