"""The binary reader on ring-buffer pages captured on this kernel (tests/fixtures/tracing/*)."""

from __future__ import annotations

import struct
from collections import Counter

import numpy as np
import pytest

from irqlab.errors import ParseError
from irqlab.model.events import EventKind
from irqlab.tracing.decode import decode
from irqlab.tracing.rawtrace import read_capture
from irqlab.tracing.ringbuf import MISSED_EVENTS, MISSED_STORED, TS_MSB, walk_pages

CAPTURES = ("lightload", "overrun", "time-extend", "hardirq")


def reference_walk(page: bytes, lay) -> tuple[list[tuple[int, int, int]], int, int]:
    """One page, one record at a time, as libtraceevent's kbuffer-parse.c reads it."""
    u32 = lambda at: struct.unpack_from("<I", page, at)[0]  # noqa: E731
    ts = struct.unpack_from("<Q", page, lay.ts_offset)[0]
    commit = struct.unpack_from("<Q" if lay.commit_size == 8 else "<I", page, lay.commit_offset)[0]
    pos, out, extends = lay.data_offset, [], 0
    end = pos + (commit & (MISSED_STORED - 1))
    while pos < end:
        w = u32(pos)
        tl, delta = w & 31, w >> 5
        if tl == lay.padding:
            if delta == 0:
                break
            ts, pos = ts + delta, pos + 4 + u32(pos + 4)
        elif tl == lay.time_extend:
            ts, pos, extends = ts + ((u32(pos + 4) << 27) | delta), pos + 8, extends + 1
        elif tl == lay.time_stamp:
            ts, pos = ((u32(pos + 4) << 27) | delta) | (ts & int(TS_MSB)), pos + 8
        elif tl == 0:
            n = (u32(pos + 4) - 4 + 3) & ~3
            ts += delta
            out.append((pos + 8, n, ts))
            pos += 8 + n
        else:
            ts += delta
            out.append((pos + 4, tl * 4, ts))
            pos += 4 + tl * 4
    return out, commit, extends


@pytest.mark.parametrize("name", CAPTURES)
def test_lock_step_walk_matches_a_record_by_record_walk(fixtures, name):
    cap = read_capture(fixtures / "tracing" / name)
    recs = cap.records()
    size = cap.layout.page_size
    expected, extends = [], 0
    for i, (_, page) in enumerate(cap.pages):
        rows, _, ext = reference_walk(page, cap.layout)
        expected += [(i, i * size + off, n, ts) for off, n, ts in rows]
        extends += ext
    got = list(zip(recs.page.tolist(), recs.offset.tolist(), recs.length.tolist(), recs.ts.tolist()))
    assert got == expected and recs.time_extends == extends and len(expected) > 0


def render(cap) -> str:
    recs, batch = cap.records(), cap.decode()
    lines = [f"pages {len(cap.pages)} records {len(recs)} time_extends {recs.time_extends} "
             f"time_stamps {recs.time_stamps} paddings {recs.paddings} lost {batch.lost}"]
    for i, (cpu, _) in enumerate(cap.pages):
        lines.append(f"page {i} cpu {cpu} ts {recs.page_ts[i]} used {recs.page_used[i]} missed {recs.missed[i]}")
    lines.append("kinds " + " ".join(f"{k}={n}" for k, n in sorted(Counter(EventKind(k).name for k in batch.kind).items())))
    lines.append(f"irq_names {dict(sorted(batch.irq_names.items()))}")
    lines.append(f"comms {dict(sorted(batch.comms.items()))}")
    rows = list(batch.rows())
    for e in rows[:150]:
        lines.append(f"{e.ts_ns} cpu{e.cpu} {e.kind.name} pid={e.pid} {e.arg0} {e.arg1} {e.arg2}")
    if len(rows) > 150:
        lines.append(f"... {len(rows) - 150} more")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", CAPTURES)
def test_decoded_capture_matches_golden(fixtures, golden, name):
    golden(f"tracing-{name}.txt", render(read_capture(fixtures / "tracing" / name)))


def test_the_first_page_read_after_an_overrun_carries_the_missed_events_flag(fixtures):
    cap = read_capture(fixtures / "tracing/overrun")
    recs = cap.records()
    firsts = {cpu: i for i, (cpu, _) in reversed(list(enumerate(cap.pages)))}
    for cpu, i in firsts.items():
        # Full pages leave no room to store the count (RB_MISSED_STORED unset): "some, unknown".
        assert recs.missed[i] == -1, f"cpu{cpu}"
    assert (np.delete(recs.missed, list(firsts.values())) == 0).all()
    batch = cap.decode()
    assert not batch.complete and batch.lost == {0: cap.meta["lost"]["0"], 1: cap.meta["lost"]["1"]}


def test_a_pause_longer_than_2_to_the_27_ns_needs_a_time_extend(fixtures):
    cap = read_capture(fixtures / "tracing/time-extend")
    recs = cap.records()
    assert recs.time_extends == 3 and len(recs) == 4
    gaps = np.diff(recs.ts)
    # The capture slept 0.3 s between wake-ups: every gap is over 2^27 ns (134 ms), the most
    # a 27-bit delta can carry, so only the extend records make the timestamps right.
    assert (gaps > 1 << 27).all() and (gaps < 400_000_000).all()
    batch = cap.decode()
    assert set(batch.kind.tolist()) == {EventKind.SCHED_WAKEUP}
    assert batch.comms  # the woken task's comm, from sched_waking's char array


def _synthetic_page(lay, records: bytes, ts: int, flags: int = 0, missed: int | None = None) -> bytes:
    page = bytearray(lay.page_size)
    struct.pack_into("<Q", page, lay.ts_offset, ts)
    struct.pack_into("<Q", page, lay.commit_offset, len(records) | flags)
    page[lay.data_offset:lay.data_offset + len(records)] = records
    if missed is not None:
        struct.pack_into("<Q", page, lay.data_offset + len(records), missed)
    return bytes(page)


def _softirq(ident: int, delta: int, vec: int) -> bytes:
    # type_len 3 = 12-byte payload: common_type, flags, preempt_count, common_pid, vec.
    return struct.pack("<IHBBiI", 3 | delta << 5, ident, 0, 0, 42, vec)


def test_stored_missed_count_absolute_stamp_and_discarded_event_on_a_synthetic_page(fixtures):
    """The paths this kernel did not produce in the captures (no hist triggers here)."""
    cap = read_capture(fixtures / "tracing/overrun")
    lay = cap.layout
    ident = next(i for i, f in cap.catalog.by_id.items() if f.name == "softirq_entry")
    recs = (_softirq(ident, 10, 3)
            # discarded event, 5 ns: array[0] is its length after the header (4 + 8 payload bytes)
            + struct.pack("<II", 29 | 5 << 5, 12) + bytes(8)
            + struct.pack("<II", 31 | 7 << 5, 1)  # absolute TIME_STAMP: (1 << 27) | 7
            + _softirq(ident, 2, 1)
            # type_len 0: array[0] = payload length + 4, payload after it
            + struct.pack("<II", 0 | 1 << 5, 16) + struct.pack("<HBBiI", ident, 0, 0, 43, 2))
    base = (1 << 60) | 1000
    page = _synthetic_page(lay, recs, base, MISSED_EVENTS | MISSED_STORED, missed=77)
    r = walk_pages(page, lay)
    assert r.missed.tolist() == [77] and r.paddings == 1 and r.time_stamps == 1
    stamp = ((1 << 27) | 7) | (base & int(TS_MSB))
    assert r.ts.tolist() == [base + 10, stamp + 2, stamp + 3]
    assert r.length.tolist() == [12, 12, 12]
    batch = decode(page, r, np.array([0], np.int32), cap.catalog)
    assert batch.arg0.tolist() == [3, 1, 2] and batch.pid.tolist() == [42, 42, 43]


def test_a_page_whose_commit_is_larger_than_the_page_is_refused(fixtures):
    lay = read_capture(fixtures / "tracing/overrun").layout
    page = _synthetic_page(lay, b"", 0, flags=lay.page_size)
    with pytest.raises(ParseError, match="page 0.*not a ring-buffer page"):
        walk_pages(page, lay)


def test_an_empty_read_is_an_empty_record_set(fixtures):
    lay = read_capture(fixtures / "tracing/overrun").layout
    assert len(walk_pages(b"", lay)) == 0
    assert len(walk_pages(bytes(lay.page_size), lay)) == 0


def test_irq_action_names_come_from_the_data_loc_string_of_irq_handler_entry(fixtures):
    batch = read_capture(fixtures / "tracing/hardirq").decode()
    entries = batch.select(batch.kind == EventKind.IRQ_ENTRY)
    exits = batch.select(batch.kind == EventKind.IRQ_EXIT)
    assert len(entries) == len(exits) > 0
    assert set(batch.irq_names) == set(entries.arg0.tolist())
    assert all(name.startswith("virtio") for name in batch.irq_names.values())
    assert set(exits.arg1.tolist()) <= {0, 1, 2}  # irqreturn_t
