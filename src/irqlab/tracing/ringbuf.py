"""Walk binary ring-buffer pages (per_cpu/cpuN/trace_pipe_raw) into records, all pages at once.

A page (kernel/trace/ring_buffer.c, struct buffer_data_page, v6.18) is a u64 timestamp, a
`commit` word (bytes used, plus the missed-events flags in bits 31 and 30) and the data: a run of
records, each a 32-bit header {type_len:5, time_delta:27} (events/header_event) and a payload.
Records are variable-length, so a page must be walked in order; numpy walks every page of a read
in lock step instead (one vector step advances each page by one record), which keeps the Python
overhead per step, not per record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from irqlab.errors import ParseError
from irqlab.tracing.formats import EventHeader, PageHeader

# kernel/trace/ring_buffer.c (v6.18): "#define RB_MISSED_EVENTS (1 << 31)" — events were lost
# before this page; "#define RB_MISSED_STORED (1 << 30)" — their count is stored as a long just
# after the last record (ring_buffer_read_page). These two bits are not described by header_page.
MISSED_EVENTS = 1 << 31
MISSED_STORED = 1 << 30
COMMIT_MASK = MISSED_STORED - 1
# An absolute TIME_STAMP record holds 59 bits; the top 5 come from the page timestamp
# (ring_buffer.c rb_fix_abs_ts, v6.1+; libtraceevent kbuffer-parse.c TS_MSB).
TS_MSB = np.uint64(0xF8 << 56)


@dataclass(frozen=True, slots=True)
class PageLayout:
    """Everything the walker needs, taken from header_page and header_event."""

    page_size: int
    ts_offset: int
    commit_offset: int
    commit_size: int
    data_offset: int
    type_len_bits: int
    padding: int
    time_extend: int
    time_stamp: int
    data_max: int

    @classmethod
    def of(cls, page: PageHeader, event: EventHeader) -> PageLayout:
        if page.timestamp.size != 8 or page.commit.size not in (4, 8):
            raise ParseError("header_page", 1, str(page.commit.size), "unexpected timestamp/commit width")
        return cls(page.page_size, page.timestamp.offset, page.commit.offset, page.commit.size,
                   page.data.offset, event.type_len_bits, event.padding, event.time_extend,
                   event.time_stamp, event.data_max)


@dataclass(frozen=True, eq=False, slots=True)
class Records:
    """The data records of a run of pages: payload position, length and time, plus page facts."""

    page: np.ndarray  # int64: page index of each record
    offset: np.ndarray  # int64: byte offset of the payload in the whole buffer
    length: np.ndarray  # int64: payload bytes (rounded up to 4 by the kernel)
    ts: np.ndarray  # int64: trace-clock time of each record, ns
    page_ts: np.ndarray  # int64 per page: the page's base timestamp
    page_used: np.ndarray  # int64 per page: bytes of data committed
    missed: np.ndarray  # int64 per page: events lost before this page, -1 = flagged, not counted
    time_extends: int  # TIME_EXTEND records seen (deltas too wide for 27 bits)
    time_stamps: int  # absolute TIME_STAMP records seen
    paddings: int  # discarded events and end-of-page padding

    def __len__(self) -> int:
        return int(self.ts.shape[0])


def _page_words(raw: np.ndarray, offset: int, size: int) -> np.ndarray:
    """A little-endian unsigned field at one offset of every page, as uint64."""
    cols = np.ascontiguousarray(raw[:, offset:offset + size])
    return cols.view("<u8" if size == 8 else "<u4").ravel().astype(np.uint64)


def _headers(raw: np.ndarray, lay: PageLayout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per page: base timestamp, bytes used, missed-event count (-1 when not stored)."""
    page_ts = _page_words(raw, lay.ts_offset, 8)
    commit = _page_words(raw, lay.commit_offset, lay.commit_size)
    used = (commit & np.uint64(COMMIT_MASK)).astype(np.int64)
    bad = np.nonzero(used > lay.page_size - lay.data_offset)[0]
    if bad.size:
        i = int(bad[0])
        raise ParseError(f"<page {i}>", 1, hex(int(commit[i])), "commit larger than the page: not a ring-buffer page")
    flagged = (commit & np.uint64(MISSED_EVENTS)) != 0
    stored = (commit & np.uint64(MISSED_STORED)) != 0
    missed = np.where(flagged, -1, 0).astype(np.int64)
    rows = np.nonzero(flagged & stored)[0]
    for i in rows:  # rare: only pages that follow a loss
        at = lay.data_offset + int(used[i])
        if at + lay.commit_size <= lay.page_size:
            missed[i] = int(_page_words(raw[i:i + 1], at, lay.commit_size)[0])
    return page_ts, used, missed


def walk_pages(buf: bytes | bytearray | memoryview | np.ndarray, lay: PageLayout) -> Records:
    """Decode every record header of whole pages in buf (a multiple of the page size)."""
    data = np.frombuffer(buf, np.uint8) if not isinstance(buf, np.ndarray) else buf.view(np.uint8)
    npages = data.shape[0] // lay.page_size
    raw = data[: npages * lay.page_size].reshape(npages, lay.page_size)
    page_ts, used, missed = _headers(raw, lay)
    flat = raw.reshape(-1).view("<u4")
    walk = _Walk(lay, flat, npages, used, page_ts)
    while walk.idx.size:
        walk.step()

    def cat(xs: list[np.ndarray], dt: type) -> np.ndarray:
        return np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)

    off = cat(walk.out_off, np.int64)
    order = np.argsort(off, kind="stable")  # page order, then position in the page
    return Records(cat(walk.out_page, np.int64)[order], off[order], cat(walk.out_len, np.int64)[order],
                   cat(walk.out_ts, np.uint64).astype(np.int64)[order], page_ts.astype(np.int64), used,
                   missed, walk.counts["ext"], walk.counts["stamp"], walk.counts["pad"])


class _Walk:
    """Lock-step cursor over many pages: one record of every unfinished page per step."""

    def __init__(self, lay: PageLayout, flat: np.ndarray, npages: int, used: np.ndarray, page_ts: np.ndarray):
        self.lay, self.flat = lay, flat
        self.nwords = lay.page_size // 4
        self.tl_mask = np.uint32((1 << lay.type_len_bits) - 1)
        self.shift = np.uint32(lay.type_len_bits)
        idx = np.nonzero(used > 0)[0]
        self.idx = idx  # page index of each unfinished page
        self.base = idx * lay.page_size  # byte offset of the page in the buffer
        self.pos = np.full(idx.size, lay.data_offset, np.int64)  # byte offset in the page
        self.end = lay.data_offset + used[idx]
        self.clock = page_ts[idx].copy()
        self.out_page: list[np.ndarray] = []
        self.out_off: list[np.ndarray] = []
        self.out_len: list[np.ndarray] = []
        self.out_ts: list[np.ndarray] = []
        self.counts = {"ext": 0, "stamp": 0, "pad": 0}

    def step(self) -> None:
        lay, p = self.lay, self.pos
        at = (self.base + p) >> 2
        w = self.flat[at]
        tl = (w & self.tl_mask).astype(np.int64)
        delta = (w >> self.shift).astype(np.uint64)
        if ((tl == 0) | (tl > lay.data_max)).any():
            self._special(at, tl, delta)
        else:  # the common case: only small data records in this step
            self.clock += delta
            plen = tl * 4
            self._emit(slice(None), p + 4, plen)
            self.pos = p + 4 + plen
        self._retire()

    def _emit(self, sel, poff: np.ndarray, plen: np.ndarray) -> None:
        self.out_page.append(self.idx[sel])
        self.out_off.append(self.base[sel] + poff)
        self.out_len.append(plen)
        self.out_ts.append(self.clock[sel].copy())

    def _special(self, at: np.ndarray, tl: np.ndarray, delta: np.ndarray) -> None:
        """A step where some page holds a long record, padding, or a time record."""
        lay, p = self.lay, self.pos
        a0 = self.flat[np.minimum(at + 1, self.flat.shape[0] - 1)].astype(np.uint64)
        is_data = tl <= lay.data_max
        is_ext, is_stamp, is_pad = tl == lay.time_extend, tl == lay.time_stamp, tl == lay.padding
        # type_len 0: array[0] is the length including itself; the payload starts after it.
        long_len = ((a0.astype(np.int64) - 4 + 3) & ~3).clip(min=0)
        plen = np.where(tl == 0, long_len, tl * 4)
        poff = np.where(tl == 0, p + 8, p + 4)
        wide = (a0 << np.uint64(32 - lay.type_len_bits)) | delta  # array[0] << TS_SHIFT | delta
        self.clock = np.where(is_stamp, wide | (self.clock & TS_MSB), self.clock + np.where(is_ext, wide, delta))
        if is_data.any():
            self._emit(is_data, poff[is_data], plen[is_data])
        self.counts["ext"] += int(is_ext.sum())
        self.counts["stamp"] += int(is_stamp.sum())
        self.counts["pad"] += int(is_pad.sum())
        nxt = np.where(is_data, poff + plen, p + 8)
        nxt = np.where(is_pad, p + 4 + a0.astype(np.int64), nxt)
        # Padding with a zero delta ends the page's data (ring_buffer.c rb_null_event).
        self.pos = np.where(is_pad & (delta == 0), self.end, nxt)

    def _retire(self) -> None:
        live = self.pos < self.end
        if not live.all():
            self.idx, self.base, self.pos = self.idx[live], self.base[live], self.pos[live]
            self.end, self.clock = self.end[live], self.clock[live]
