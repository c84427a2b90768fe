"""Rows of zeros: recognised by one comparison, never copied, and read exactly as the token reader reads them.

On a big machine most rows are all zeros (944 of the 1056 rows of the 1152-CPU capture: an
IRQ sits on one CPU, or has not fired since boot); the fast path copies a row into its
scratch buffer only when some count in it is not 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from irqlab.sources import interrupts as mod
from irqlab.sources.interrupts import parse_interrupts

NCPU = 4
HEADER = "".join(f"CPU{c}".rjust(11) for c in range(NCPU)).replace(" CPU0", "      CPU0", 1) + "\n"


def fields(values, trailing_blank: bool) -> str:
    """Counts as show_interrupts() prints them: " %10u" (v6.x) or "%10u " (older, arch rows)."""
    return "".join(f"{v:10d} " if trailing_blank else f" {v:10d}" for v in values)


def text(trailing_blank: bool) -> str:
    rows = [
        (" 24:", [0] * NCPU, "  IO-APIC   5-edge      ACPI:Ged"),
        (" 25:", [0, 7, 0, 0], "  IO-APIC   6-edge      ttyS0"),
        (" 26:", [0] * NCPU, "  PCI-MSI 1-edge      nvme0q1"),
        ("NMI:", [0] * NCPU, "  Non-maskable interrupts"),
        ("LOC:", [9, 8, 7, 4294967295], "  Local timer interrupts"),
    ]
    return HEADER + "".join(label + fields(v, trailing_blank) + tail + "\n" for label, v, tail in rows)


def slow_only(data: str):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mod, "_fast_counts", lambda raw, rows, ncpu, counts: [False] * len(rows))
        return parse_interrupts(data)


@pytest.mark.parametrize("trailing_blank", [False, True], ids=["' %10u'", "'%10u '"])
def test_rows_of_zeros_read_as_the_token_reader_reads_them(trailing_blank: bool) -> None:
    data = text(trailing_blank)
    fast, slow = parse_interrupts(data), slow_only(data)
    assert fast.cpus == slow.cpus == (0, 1, 2, 3)
    assert [(x.irq, x.chip, x.hwirq, x.actions, x.description) for x in fast.lines] == [
        (x.irq, x.chip, x.hwirq, x.actions, x.description) for x in slow.lines
    ]
    assert np.array_equal(fast.counts, slow.counts) and np.array_equal(fast.totals, slow.totals)
    assert fast.totals.tolist() == [0, 7, 0, 0, 9 + 8 + 7 + 4294967295]


@pytest.mark.parametrize("trailing_blank", [False, True], ids=["' %10u'", "'%10u '"])
def test_only_rows_with_a_count_are_copied_into_the_scratch_buffer(trailing_blank: bool) -> None:
    asked: list[int] = []
    real = mod._scratch

    def spy(size: int):
        asked.append(size)
        return real(size)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mod, "_scratch", spy)
        parse_interrupts(text(trailing_blank))
    padded = 11 * NCPU + (-11 * NCPU % 8)
    assert asked == [2 * padded]  # rows 25 and LOC; the three rows of zeros are not copied


def test_a_row_of_zeros_with_text_glued_to_its_last_count_is_not_taken_for_zeros() -> None:
    # "0:0" (xen-dyn) glued to the last count: the token reader decides, as before.
    data = HEADER + " 35:" + fields([0] * NCPU, False) + ":0  xen-dyn     Edge    -virq      hvc_console\n"
    fast, slow = parse_interrupts(data), slow_only(data)
    assert np.array_equal(fast.counts, slow.counts) and fast.lines[0].chip == slow.lines[0].chip
