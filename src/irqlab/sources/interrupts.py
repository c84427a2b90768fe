"""/proc/interrupts: per-CPU counts of every IRQ line and arch counter, as Interrupts.

The kernel prints the file in kernel/irq/proc.c, show_interrupts(), and appends the arch rows
in arch_show_interrupts() (arch/x86/kernel/irq.c, arch/arm64/kernel/smp.c,
arch/powerpc/kernel/irq.c, arch/s390/kernel/irq.c, ...). One fact holds in every version: each
per-CPU count sits in an 11-character field right after the row's first colon, either "%10u "
(older show_interrupts(), most arch rows, arm64 IPIs) or " %10u" (show_interrupts() since
"genirq/proc: Use seq_put_decimal_ull_width() for decimal values"; v6.18 prints both kinds in
one file). Counts are u32, so they fill the field at most. The fast path relies on that: it cuts
the 11*ncpu count bytes of every row, checks them with numpy and converts them all at once;
the rows it cannot vouch for go through a token-based reader, one at a time.
"""

from __future__ import annotations

import functools
import re
import threading

import numpy as np

from irqlab.errors import ParseError
from irqlab.model.snapshot import Interrupts, IrqLine
from irqlab.sources.fs import Roots, read_bytes

FIELD = 11  # one count: "%10u " or " %10u"
INT64_MAX = (1 << 63) - 1

# Rows that print one total, not one count per CPU: x86 "%*s: %10u\n" for ERR and MIS
# (arch/x86/kernel/irq.c, arch_show_interrupts()), arm and arm64 "%*s: %10lu\n" for Err
# (arch/arm64/kernel/smp.c, arch/arm/kernel/irq.c).
SINGLE_TOTAL_IDS = frozenset({"ERR", "MIS", "Err"})

# Flow handler names (desc->name, printed "-%-8s") that kernels before the hwirq column
# (v2.6.x-3.x) glue to the chip name: "IO-APIC-edge", "IR-PCI-MSI-edge", "DMAR_MSI-edge".
GLUED_FLOWS = ("fasteoi", "edge", "level", "simple", "percpu", "edge_eoi")

_TOKEN = re.compile(r"\S+", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_HAS_DIGIT = re.compile(r"[0-9]", re.ASCII)
_ID = re.compile(r"[\x21-\x7e]+", re.ASCII)  # printable ASCII, no whitespace
_HEADER_LABEL = re.compile(r"CPU([0-9]{1,7})", re.ASCII)
_COUNT_NEXT = re.compile(rb"[ \t]*[0-9]")  # a count after the header's columns (ARM IPIs)
_COUNT_NEXT_OR_GLUED = re.compile(rb"[ \t]*[0-9]|[^ \t]")  # ... or "0:0": not a count at all
_HWIRQ = re.compile(r"([0-9]+)(?:-(\S+))?", re.ASCII)  # "27", "2-edge", "102242354-edge"
_GLUED = re.compile(r"(.+?)-(" + "|".join(GLUED_FLOWS) + r")", re.ASCII)
_TRIGGER_WORDS = frozenset({"Level", "Edge"})  # CONFIG_GENERIC_IRQ_SHOW_LEVEL " %-8s"


def read_interrupts(roots: Roots) -> Interrupts:
    """Read and parse /proc/interrupts under the given roots."""
    path = roots.proc("interrupts")
    return parse_interrupts(read_bytes(path), str(path))


def parse_interrupts(data: bytes | str, path: str = "/proc/interrupts") -> Interrupts:
    """Parse the text of /proc/interrupts; raise ParseError on anything the kernel never prints."""
    # A capture saved with CRLF line ends needs nothing special: "\r" is a blank to every
    # tokenizer below, and a count is never the last thing on a row but in ERR/MIS.
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
    lines = _line_spans(raw)
    if not lines:
        raise ParseError(path, 1, "", "empty file: no CPU header")
    cpus = _parse_header(raw, lines[0], path)
    rows = _split_rows(raw, lines[1:], path)
    counts = np.zeros((len(rows), len(cpus)), np.int64)
    fast = _fast_counts(raw, rows, len(cpus), counts)
    return _assemble(raw, rows, cpus, counts, fast, path)


# A line: (1-based number, start, end) in the raw bytes, end excluding the newline.
Span = tuple[int, int, int]
# A row: (line number, start, first colon, end, irq id); all positions in the raw bytes.
Row = tuple[int, int, int, int, str]

_NONBLANK = re.compile(rb"[^ \t\n\r\x0b\x0c]")


def _line_spans(raw: bytes) -> list[Span]:
    """Spans of the non-blank lines; no copies (the 1152-CPU file is 13 MB)."""
    spans: list[Span] = []
    start, number, size = 0, 1, len(raw)
    while start <= size:
        end = raw.find(b"\n", start)
        if end < 0:
            end = size  # no final newline
        if _NONBLANK.search(raw, start, end):
            spans.append((number, start, end))
        start, number = end + 1, number + 1
    return spans


def _parse_header(raw: bytes, span: Span, path: str) -> tuple[int, ...]:
    """CPU ids from the header labels; only online CPUs are listed, so ids may skip."""
    # kernel/irq/proc.c: seq_printf(p, "CPU%-8d", j) for_each_online_cpu(j).
    lineno, start, end = span
    ids: list[int] = []
    for tok in _TOKEN.findall(raw[start:end].decode("utf-8", "replace")):
        m = _HEADER_LABEL.fullmatch(tok)
        if m is None:
            raise ParseError(path, lineno, tok, "expected the CPU header (CPU0 CPU1 ...)")
        ids.append(int(m.group(1)))
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ParseError(path, lineno, f"CPU{dup}", "CPU listed twice in the header")
    return tuple(ids)


def _split_rows(raw: bytes, spans: list[Span], path: str) -> list[Row]:
    """The rows after the header, each cut at its first colon."""
    # Split on the FIRST colon: arm64 prints "IPI0:%10u" with no space, so a 10-digit count
    # touches the colon (arch/arm64/kernel/smp.c, "%*s%u:%s"; node_exporter PR #2631 does the
    # same). Later colons belong to device names ("ELAN06DA:00", "0000:00:1f.2").
    rows: list[Row] = []
    for lineno, start, end in spans:
        colon = raw.find(b":", start, end)
        head = raw[start:colon].strip() if colon >= 0 else b""
        irq = head.decode("ascii", "replace")
        if colon < 0 or not _ID.fullmatch(irq):
            text = raw[start:end].decode("utf-8", "replace")
            shown = irq if colon >= 0 and head else _TOKEN.findall(text)[0]
            raise ParseError(path, lineno, shown, "row without 'IRQ:'" if colon < 0 else "bad IRQ id")
        rows.append((lineno, start, colon, end, irq))
    return rows


# --- fast path: every count field of every well-formed row at once -------------------------

DENSE_SHARE = 0.25  # rows where more 8-byte words than this differ from zeros: check every byte
CHUNK_BYTES = 1 << 18  # dense rows are checked in chunks this big, so temporaries stay in cache
ZERO_FIELD = b"         0"  # "%10u" of 0: most counts on a big machine (IRQs sit on few CPUs)


SLOW, CONVERTED, ZEROS = 0, 1, 2  # what _fast_counts did with a row (SLOW: nothing)


def _fast_counts(raw: bytes, rows: list[Row], ncpu: int, counts: np.ndarray) -> list[int]:
    """Fill counts for the rows whose count region is well formed; say which rows those are.

    counts comes zeroed: a row of zeros is recognised by one comparison and not written (ZEROS:
    its memory is np.zeros pages that nothing touches, and the totals do not read it either).
    """
    width = FIELD * ncpu
    padded = width + (-width % 8)  # each region padded with blanks to whole 8-byte words
    zeros, zeros_shifted = _zero_regions(ncpu)
    fast = [SLOW] * len(rows)
    src, pad = memoryview(raw), b" " * (padded - width)
    picked: list[int] = []
    regions: list[tuple[int, bool]] = []
    for k, (_, _, colon, end, irq) in enumerate(rows):
        stop = colon + 1 + width
        if stop > end or irq in SINGLE_TOTAL_IDS:
            continue  # short (fewer counts, FIQ) or one total (ERR): slow path
        shifted = raw[stop - 1] == 0x20  # "%10u " fields: shift by one to " %10u"
        if (_COUNT_NEXT if shifted else _COUNT_NEXT_OR_GLUED).match(raw, stop, end):
            continue  # wider than the header (ARM IPIs), or text glued to a count: slow path
        if raw.startswith(zeros_shifted if shifted else zeros, colon + 1):
            # Every count 0 (944 of the 1056 rows of the 1152-CPU capture): one memcmp, and
            # neither a copy nor a check in numpy.
            fast[k] = ZEROS
            continue
        picked.append(k)
        regions.append((colon, shifted))
    if not picked:
        return fast
    out = _scratch(len(picked) * padded)
    pos = 0
    for (colon, shifted) in regions:
        stop = colon + 1 + width
        if shifted:
            out[pos] = 0x20
            out[pos + 1 : pos + width] = src[colon + 1 : stop - 1]
        else:
            out[pos : pos + width] = src[colon + 1 : stop]
        out[pos + width : pos + padded] = pad
        pos += padded
    ok = _fast_block(out[:pos], np.asarray(picked), ncpu, counts)
    for i in np.flatnonzero(ok).tolist():
        fast[picked[i]] = CONVERTED
    return fast


@functools.lru_cache(maxsize=64)
def _zero_regions(ncpu: int) -> tuple[bytes, bytes]:
    """The count region of a row of zeros, as " %10u" fields and as "%10u " fields."""
    return (b" " + ZERO_FIELD) * ncpu, (ZERO_FIELD + b" ") * ncpu


_SCRATCH = threading.local()


def _scratch(size: int) -> memoryview:
    """A per-thread buffer of at least size bytes, reused from parse to parse (it only grows)."""
    # A fresh 13 MB buffer per parse costs ~3,300 page faults, most of the copy's time in a VM.
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or len(buf) < size:
        buf = _SCRATCH.buf = bytearray(size)
    return memoryview(buf)


def _fast_block(buf: memoryview, picked: np.ndarray, ncpu: int, counts: np.ndarray) -> np.ndarray:
    """Check and convert padded count regions into their rows of counts; return which are good."""
    a = np.frombuffer(buf, np.uint8).reshape(len(picked), -1)
    per_row = a.shape[1] // 8
    # Compare 8 bytes at a time with a row of zero counts: only what differs needs a look.
    where = np.flatnonzero(a.view("<u8") != _zero_row(ncpu))
    rows, words = np.divmod(where, per_row)
    dense = np.bincount(rows, minlength=len(picked)) > DENSE_SHARE * per_row
    ok = np.ones(len(picked), bool)
    if dense.any():
        ok[dense] = _dense_rows(buf, a, np.flatnonzero(dense), ncpu, picked, counts)
    sparse = ~dense[rows]
    ok &= _sparse_rows(buf, a.shape, rows[sparse], words[sparse], ncpu, picked, counts)
    return ok


def _dense_rows(
    buf: memoryview, a: np.ndarray, which: np.ndarray, ncpu: int, picked: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Check every byte of the chosen rows (in cache-sized chunks); fill counts of good ones."""
    ok = np.empty(len(which), bool)
    step = max(1, CHUNK_BYTES // a.shape[1])
    for i in range(0, len(which), step):
        chunk = which[i : i + step]
        ok[i : i + step] = good = _valid_rows(a[chunk, : FIELD * ncpu])
        rows = chunk[good]
        counts[picked[rows]] = _values(buf, a.shape, ncpu, (rows,))
    return ok


def _sparse_rows(
    buf: memoryview, shape: tuple[int, ...], rows: np.ndarray, words: np.ndarray, ncpu: int,
    picked: np.ndarray, counts: np.ndarray,
) -> np.ndarray:
    """Check the fields touched by differing words; fill counts of the rows found good."""
    ok = np.ones(shape[0], bool)
    row_of, col_of = _touched(rows, words, ncpu, shape[0])
    fields = _field_view(buf, shape, ncpu, (FIELD,), 0)[row_of, col_of]
    ok[row_of[~_valid_fields(fields)]] = False
    keep = ok[row_of]
    row_of, col_of = row_of[keep], col_of[keep]
    counts[picked[row_of], col_of] = _values(buf, shape, ncpu, (row_of, col_of))
    return ok


@functools.lru_cache(maxsize=64)
def _zero_row(ncpu: int) -> np.ndarray:
    """A padded count region with every count 0, as 8-byte words."""
    row = (b" " + ZERO_FIELD) * ncpu
    return np.frombuffer(row + b" " * (-len(row) % 8), "<u8")


def _touched(rows: np.ndarray, words: np.ndarray, ncpu: int, nrows: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, field) pairs sharing bytes with the given 8-byte words (a word spans <= 2 fields)."""
    hit = np.zeros(nrows * ncpu, bool)
    hit[rows * ncpu + words * 8 // FIELD] = True
    hit[rows * ncpu + np.minimum((words * 8 + 7) // FIELD, ncpu - 1)] = True  # padding never differs
    keys = np.flatnonzero(hit)
    return np.divmod(keys, ncpu)


def _field_view(
    buf: memoryview, shape: tuple[int, ...], ncpu: int, tail: tuple[int, ...], offset: int, dtype: str = "u1"
) -> np.ndarray:
    """Strided view of the fields of a block: [row, field] (+ tail dims), from byte offset."""
    strides = (shape[1], FIELD) + ((1,) if tail else ())
    return np.ndarray((shape[0], ncpu) + tail, dtype, buffer=buf, offset=offset, strides=strides)


def _valid_fields(f: np.ndarray) -> np.ndarray:
    """Fields (k, 11) that are blanks then 1-10 digits, right-aligned (" %10u")."""
    digit = (f >= 0x30) & (f <= 0x39)
    blank = f == 0x20
    ok: np.ndarray = (digit | blank).all(axis=1) & blank[:, 0] & digit[:, -1]
    ok &= ~(digit[:, :-1] & blank[:, 1:]).any(axis=1)
    return ok


def _valid_rows(a: np.ndarray) -> np.ndarray:
    """Rows (nrows, 11*ncpu) whose every field is blanks then 1-10 digits, right-aligned."""
    ok: np.ndarray = (a.min(axis=1) >= 0x20) & (a.max(axis=1) <= 0x39)  # ' ' .. '9'
    ok &= ~((a - np.uint8(0x21)) < 0x0F).any(axis=1)  # none of '!' .. '/'
    ok &= (a[:, 0::FIELD] == 0x20).all(axis=1)  # a blank before every count
    ok &= (a[:, FIELD - 1 :: FIELD] >= 0x30).all(axis=1)  # every field ends in a digit
    # With only blanks and digits left, "digit then blank" is a[p] > a[p+1] + 9; it may only
    # happen between two fields, never inside one ("  12 34" is two numbers, not a count).
    gap = a[:, :-1] > a[:, 1:] + np.uint8(9)
    gap[:, FIELD - 1 :: FIELD] = False
    ok &= ~gap.any(axis=1)
    return ok


def _values(buf: memoryview, shape: tuple[int, ...], ncpu: int, index: tuple[np.ndarray, ...]) -> np.ndarray:
    """Values of the indexed fields of a block (valid fields only), as int64."""
    values: np.ndarray = _field_view(buf, shape, ncpu, (), FIELD - 1)[index].astype(np.int64)
    values -= 0x30  # the last digit; one-digit fields are done
    multi = _field_view(buf, shape, ncpu, (), FIELD - 2)[index] != 0x20
    if multi.any():
        high = _field_view(buf, shape, ncpu, (), 1, "<u8")[index][multi]
        low = _field_view(buf, shape, ncpu, (), FIELD - 2, "<u2")[index][multi]
        values[multi] = _swar10(high, low)
    return values


_U64 = np.uint64


def _swar10(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Value of 10 digit places: bytes 1-8 of each field as u64, bytes 9-10 as u16 (SWAR)."""
    # Little-endian: the most significant digit is the lowest byte. Blanks and '0' both have
    # low nibble 0, so masking the high nibbles gives digit values; then pairs, quads, octets.
    x = high & _U64(0x0F0F0F0F0F0F0F0F)
    x *= _U64(1 + (10 << 8))
    x >>= _U64(8)
    x &= _U64(0x00FF00FF00FF00FF)
    x *= _U64(1 + (100 << 16))
    x >>= _U64(16)
    x &= _U64(0x0000FFFF0000FFFF)
    x *= _U64(1 + (10000 << 32))
    x >>= _U64(32)
    tens = (low & np.uint16(0x0F0F)).astype(np.uint64)
    x *= _U64(100)
    x += (tens & _U64(0xFF)) * _U64(10) + (tens >> _U64(8))
    return x.view(np.int64)


# --- slow path: one row at a time, by tokens and their columns ---------------------------


def _slow_counts(raw: bytes, row: Row, ncpu: int, path: str) -> tuple[list[int], int, bool, str]:
    """Counts of one row, its total, whether they are per CPU, and the text after them."""
    lineno, _, colon, end, irq = row
    rest = raw[colon + 1 : end].decode("utf-8", "replace")
    if irq in SINGLE_TOTAL_IDS:
        first = _TOKEN.search(rest)
        if first is None or not _DIGITS.fullmatch(first.group()):
            raise ParseError(path, lineno, first.group() if first else irq, f"{irq} row without its total")
        return [], _count(first.group(), lineno, path), False, rest[first.end() :]
    counts, stop = _scan_counts(rest, ncpu, lineno, path)
    if not counts:
        if irq.isdigit():  # show_interrupts() prints a count for every online CPU
            first = _TOKEN.search(rest)
            raise ParseError(path, lineno, first.group() if first else irq, "IRQ row without counts")
        return [], 0, False, rest  # ARM "FIQ:              fiq_glue" (arch/arm/kernel/fiq.c)
    total = sum(counts)
    if total > INT64_MAX:
        raise ParseError(path, lineno, str(total), "counts add up beyond 64 bits")
    return counts, total, True, rest[stop:]


def _scan_counts(rest: str, ncpu: int, lineno: int, path: str) -> tuple[list[int], int]:
    """The counts at the start of a row's text after its colon, and where they end.

    A count belongs to the fixed-width grid: the first ends 10 or 11 columns after the colon
    ("%10u " or " %10u"), each next one 11 further (more if a value outgrew its 10 columns,
    as PowerPC "%10lu " can). A number off the grid is text: a hwirq or a device name after
    a row that printed fewer counts than the header has CPUs.
    """
    counts: list[int] = []
    prev = -1
    loose = False
    for m in _TOKEN.finditer(rest):
        tok, end = m.group(), m.end()
        width = max(10, len(tok))
        is_number = tok.isdigit() and tok.isascii()
        if prev < 0 and is_number and end not in (width, width + 1):
            loose = True  # blanks squeezed (a copy, not the kernel): leading numbers are counts
        on_grid = loose or (end in (width, width + 1) if prev < 0 else end == prev + 1 + width)
        if not on_grid:
            break
        if is_number:
            counts.append(int(tok) if len(tok) < 19 else _count(tok, lineno, path))
            prev = end
            continue
        if not loose and len(counts) < ncpu and _HAS_DIGIT.search(tok):
            raise ParseError(path, lineno, tok, "count is not a decimal number")
        break
    return counts, max(prev, 0)


def _count(tok: str, lineno: int, path: str) -> int:
    """A count token as int; int64 is the model's limit."""
    if len(tok) > 19 or int(tok) > INT64_MAX:
        raise ParseError(path, lineno, tok, "count does not fit in 64 bits")
    return int(tok)


# --- metadata: chip, hwirq, trigger and action names of a numbered row -------------------


def _numbered_meta(tail: str) -> tuple[str, str, str, tuple[str, ...]]:
    """Chip, hwirq, trigger and actions from the text after a numbered row's counts."""
    # v3.12+: "%8s" chip, " %*lu" hwirq (blank without a domain), " %-8s" Level/Edge with
    # CONFIG_GENERIC_IRQ_SHOW_LEVEL, "-%-8s" flow name, then "  %s" actions joined by ", "
    # (kernel/irq/proc.c, show_interrupts()). Older kernels glue the flow to the chip
    # ("IO-APIC-edge"), very old ARM prints no chip at all, and chips may contain a space.
    toks = tail.split()
    if not toks:
        return "", "", "", ()
    hwirq = trigger = ""
    gap = _gap_after_first(tail, toks[0]) if len(toks) > 1 else 0
    k = _anchor(toks, gap)
    if k is not None:
        chip = " ".join(toks[:k])  # one blank inside, if any ("PCIe MSI")
        hwirq, trigger, i = _consume(toks, k)
    elif glued := _GLUED.fullmatch(toks[0]):
        chip, trigger, i = glued.group(1), glued.group(2), 1
    elif gap >= 2:
        chip, i = toks[0], 1  # "PCI-MSI  mlx5_async" (s390), "-  debug-signal" (mt6589)
    else:
        # No chip column ("  4020KEY", "  sep4020 Timer Tick": 2.6 ARM). A lone chip name with
        # nothing after it reads the same way and is taken as an action: the text cannot tell.
        chip, i = "", 0
    actions = _actions(tail.split(None, i)[i]) if i < len(toks) else ()
    return ("" if chip == "-" else chip), hwirq, trigger, actions


def _gap_after_first(tail: str, first: str) -> int:
    """How many blanks follow the first word of tail."""
    after = tail.lstrip()[len(first) :]
    return len(after) - len(after.lstrip())


def _is_anchor(tok: str) -> bool:
    """A hwirq ("27", "2-edge"), a Level/Edge word, or a lone flow name ("-event")."""
    if tok in _TRIGGER_WORDS or _HWIRQ.fullmatch(tok):
        return True
    return len(tok) > 1 and tok[0] == "-" and tok[1].isalpha()


def _anchor(toks: list[str], gap: int) -> int | None:
    """Index of the first token after the chip name (which has at most one inner blank)."""
    # Never 0: a row starting with a number has no chip, and the number is a device name
    # ("  %s" right after the counts on 2.6 ARM kernels), not a hwirq.
    for k in range(1, min(3, len(toks))):
        if _is_anchor(toks[k]):
            if k == 2 and gap != 1:
                return None  # "chip  name 12": two words apart are not one chip name
            return k
    return None


def _consume(toks: list[str], i: int) -> tuple[str, str, int]:
    """hwirq and trigger from the anchor on; returns the index of the first action token."""
    hwirq = trigger = ""
    if i < len(toks) and (m := _HWIRQ.fullmatch(toks[i])):
        hwirq, trigger, i = m.group(1), m.group(2) or "", i + 1
    if i < len(toks) and toks[i] in _TRIGGER_WORDS:
        trigger, i = toks[i], i + 1
    if i < len(toks) and _is_anchor(toks[i]) and toks[i][0] == "-":
        trigger, i = trigger or toks[i][1:], i + 1
    return hwirq, trigger, i


def _actions(text: str) -> tuple[str, ...]:
    """irqaction names: printed "  %s" then ", %s" each (names may hold blanks and commas)."""
    return tuple(filter(None, map(str.strip, text.split(", "))))


# --- assembly --------------------------------------------------------------------------


def _assemble(
    raw: bytes, rows: list[Row], cpus: tuple[int, ...], counts: np.ndarray, fast: list[int], path: str
) -> Interrupts:
    """Interrupts from the fast rows' counts plus the slow path for every other row."""
    ncpu, width = len(cpus), FIELD * len(cpus)
    converted = [k for k, how in enumerate(fast) if how == CONVERTED]
    totals = np.zeros(len(rows), np.int64)  # ZEROS rows: 0; SLOW rows: set below
    totals[converted] = counts[converted].sum(axis=1)
    keys: set[str] = set()
    lines: list[IrqLine] = []
    for k, row in enumerate(rows):
        _, _, colon, end, irq = row
        key = _unique_key(irq, keys)
        if fast[k]:
            lines.append(_fast_line(irq, key, raw[colon + 1 + width : end]))
            continue
        values, total, per_cpu, tail = _slow_counts(raw, row, ncpu, path)
        counts[k] = 0
        counts[k, : min(ncpu, len(values))] = values[:ncpu]
        totals[k] = total
        lines.append(_line(irq, key, tail, per_cpu, tuple(values[ncpu:])))
    counts.flags.writeable = False
    totals.flags.writeable = False
    return Interrupts(cpus=cpus, lines=tuple(lines), counts=counts, totals=totals)


def _unique_key(irq: str, taken: set[str]) -> str:
    """irq, or irq#N for its N-th appearance: PowerPC prints two LOC rows (arch/powerpc/kernel/irq.c)."""
    key, n = irq, 1
    while key in taken:
        n += 1
        key = f"{irq}#{n}"
    taken.add(key)
    return key


@functools.lru_cache(maxsize=1 << 14)
def _fast_line(irq: str, key: str, tail: bytes) -> IrqLine:
    """IrqLine of a fast row, memoized: the same rows come back in every sample of a host."""
    return _line(irq, key, tail.decode("utf-8", "replace"), True, ())


def _line(irq: str, key: str, tail: str, per_cpu: bool, extra: tuple[int, ...]) -> IrqLine:
    """IrqLine of a numbered row (chip, hwirq, trigger, actions) or an arch row (description)."""
    if irq.isdigit():
        chip, hwirq, trigger, actions = _numbered_meta(tail)
        return IrqLine(irq, key, chip, hwirq, trigger, actions, "", per_cpu, extra)
    return IrqLine(irq, key, description=tail.strip(), per_cpu=per_cpu, extra=extra)
