"""The kernel tables of model/vectors.py against what a real kernel prints."""

from __future__ import annotations

from pathlib import Path

from irqlab.model.vectors import ARCH_ROWS, NR_SOFTIRQS, SOFTIRQ_NAMES, arch_meaning
from irqlab.sources.interrupts import parse_interrupts
from irqlab.sources.softirqs import parse_softirqs

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "interrupts"


def test_arch_row_labels_are_what_linux_6_18_prints():
    intr = parse_interrupts((FIXTURES / "vm-6.18-2cpu").read_bytes())
    named = [line for line in intr.lines if not line.numbered]
    assert len(named) == 16  # every named row of that VM is in the table
    for line in named:
        assert ARCH_ROWS[line.irq].label == line.description, line.irq


def test_arm64_ipi_labels_are_what_arm64_prints():
    intr = parse_interrupts((FIXTURES / "arm64-ipi-no-space").read_bytes())
    labels = {line.irq: line.description for line in intr.lines}
    assert (ARCH_ROWS["IPI0"].label, ARCH_ROWS["IPI1"].label) == (labels["IPI0"], labels["IPI1"])


def test_a_row_the_table_lacks_keeps_the_kernels_own_words():
    assert arch_meaning("LOC", "Local timer interrupts") == "local APIC timer interrupts (the tick and hrtimers)"
    assert arch_meaning("BCT", "Broadcast timer interrupts") == "Broadcast timer interrupts"


def test_nr_softirqs_is_the_number_of_rows_linux_6_18_prints():
    text = (FIXTURES.parent / "softirqs" / "vm-6.18-2cpu").read_text()
    assert parse_softirqs(text).vectors == SOFTIRQ_NAMES and len(SOFTIRQ_NAMES) == NR_SOFTIRQS == 10
