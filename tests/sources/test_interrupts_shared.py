"""Every real /proc/interrupts capture in ../shared/fixtures, checked against a plain reading.

The reference below is deliberately naive and independent of the parser: split each row at its
first colon and add up the leading whitespace-separated decimal tokens. On every real capture
it must agree with the parser's counts + extra (fast path and slow path alike).
"""

from __future__ import annotations

import bz2
import re
from pathlib import Path

import pytest

from irqlab.model.snapshot import Interrupts
from irqlab.sources import interrupts as mod
from irqlab.sources.interrupts import parse_interrupts

pytestmark = pytest.mark.fixtures

_NAMES = re.compile(r"(^interrupts.*|.*\.interrupts|.*interrupts\.(t0|t1|before|after))$")


def interrupts_files(root: Path) -> list[Path]:
    """Files that hold a /proc/interrupts text (by name), plus the snclient *.txt samples."""
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        if _NAMES.match(path.name) or (path.parent.name == "snclient-pr284" and path.suffix == ".txt"):
            found.append(path)
    return found


def read(path: Path) -> bytes:
    return bz2.decompress(path.read_bytes()) if path.suffix == ".bz2" else path.read_bytes()


def reference(text: str) -> tuple[list[str], list[tuple[str, int]]]:
    """Header labels and (id, sum of leading numbers) per row, the simplest way."""
    lines = [li for li in text.splitlines() if li.strip()]
    rows = []
    for li in lines[1:]:
        irq, rest = li.split(":", 1)
        total = 0
        for tok in rest.split():
            if not tok.isdigit():
                break
            total += int(tok)
        rows.append((irq.strip(), total))
    return lines[0].split(), rows


def parse_file(path: Path) -> Interrupts:
    return parse_interrupts(read(path), str(path))


def test_there_are_captures_to_check(shared_fixtures: Path) -> None:
    assert len(interrupts_files(shared_fixtures)) >= 30


def test_every_capture_agrees_with_a_plain_token_reading(shared_fixtures: Path) -> None:
    for path in interrupts_files(shared_fixtures):
        data = read(path)
        irqs = parse_interrupts(data, str(path))
        labels, rows = reference(data.decode())
        where = str(path.relative_to(shared_fixtures))
        assert irqs.cpus == tuple(int(label[3:]) for label in labels), where
        assert len(irqs.lines) == len(rows), where
        sums = irqs.counts.sum(axis=1)
        for i, (line, (irq, expected)) in enumerate(zip(irqs.lines, rows)):
            assert line.irq == irq, (where, i)
            assert int(irqs.totals[i]) == expected, (where, irq)
            if line.per_cpu:
                assert int(sums[i]) + sum(line.extra) == expected, (where, irq)


def assert_fast_equals_slow(path: Path) -> None:
    data = read(path)
    fast = parse_interrupts(data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mod, "_fast_counts", lambda raw, rows, ncpu, counts: [False] * len(rows))
        slow = parse_interrupts(data)
    assert fast.cpus == slow.cpus, path
    assert (fast.counts == slow.counts).all() and (fast.totals == slow.totals).all(), path
    assert [repr(li) for li in fast.lines] == [repr(li) for li in slow.lines], path


def test_fast_path_equals_the_token_reader_on_every_capture(shared_fixtures: Path) -> None:
    for path in interrupts_files(shared_fixtures):
        if path.suffix != ".bz2":
            assert_fast_equals_slow(path)


@pytest.mark.slow
def test_fast_path_equals_the_token_reader_on_the_1152_cpu_capture(shared_fixtures: Path) -> None:
    path = shared_fixtures / "public/pcp-qa/interrupts-1152cpu-x86_64.bz2"
    if not path.exists():
        pytest.skip("no 1152-CPU capture")
    assert_fast_equals_slow(path)


def test_keys_are_unique_in_every_capture(shared_fixtures: Path) -> None:
    for path in interrupts_files(shared_fixtures):
        keys = [line.key for line in parse_file(path).lines]
        assert len(keys) == len(set(keys)), path


def find(shared: Path, relative: str) -> Interrupts:
    path = shared / relative
    if not path.exists():
        pytest.skip(f"{relative} not in this fixture set")
    return parse_file(path)


def test_node_exporter_aarch64_ipi0_first_count(shared_fixtures: Path) -> None:
    irqs = find(shared_fixtures, "public/node-exporter/interrupts_aarch64")
    i = irqs.index()["IPI0"]
    assert irqs.counts[i, 0] == 2768808080
    assert irqs.counts[i, 1] == 2844211768
    assert irqs.lines[i].description == "Rescheduling interrupts"


def test_datadog_counts_close_to_two_to_the_32(shared_fixtures: Path) -> None:
    irqs = find(shared_fixtures, "public/datadog-linux-proc-extras/interrupts")
    assert 4190886484 in irqs.counts
    assert 4131689481 in irqs.counts


def test_1152_cpu_capture(shared_fixtures: Path) -> None:
    irqs = find(shared_fixtures, "public/pcp-qa/interrupts-1152cpu-x86_64.bz2")
    assert irqs.cpus == tuple(range(1152))
    assert irqs.counts.shape == (1056, 1152)
    line = irqs.lines[irqs.index()["0"]]
    assert (line.chip, line.hwirq, line.trigger, line.actions) == ("IR-IO-APIC", "2", "edge", ("timer",))
    assert not irqs.lines[irqs.index()["ERR"]].per_cpu


def test_mt6589_ipis_of_offline_cpus_are_extra(shared_fixtures: Path) -> None:
    irqs = find(shared_fixtures, "public/mt6589-android-tablet/interrupts")
    assert irqs.cpus == (0,)
    ipi1 = irqs.lines[irqs.index()["IPI1"]]
    assert ipi1.extra == (107711, 43906, 30716)
    fiq = irqs.lines[irqs.index()["FIQ"]]
    assert not fiq.per_cpu and fiq.description == "fiq_glue"


def test_sysstat_offline_cpu6_is_missing_from_the_ids(shared_fixtures: Path) -> None:
    irqs = find(shared_fixtures, "public/sysstat-tests/root3/interrupts")
    assert irqs.cpus == (0, 1, 2, 3, 4, 5, 7)


def test_powerpc_captures_keep_both_loc_rows(shared_fixtures: Path) -> None:
    irqs = find(shared_fixtures, "public/mailing-lists/ppc64-xive-kvm-guest-1cpu.interrupts")
    keys = [line.key for line in irqs.lines]
    assert "LOC" in keys and "LOC#2" in keys


def test_asahi_chip_name_with_a_space(shared_fixtures: Path) -> None:
    irqs = find(shared_fixtures, "public/martins3-asahi/apple-m-series-8cpu.interrupts")
    line = irqs.lines[irqs.index()["100"]]
    assert (line.chip, line.hwirq, line.trigger, line.actions) == ("PCIe MSI", "0", "Edge", ("PCIe PME", "aerdrv"))


def test_snclient_file_without_final_newline_keeps_its_last_row(shared_fixtures: Path) -> None:
    irqs = find(shared_fixtures, "public/snclient-pr284/raspberry_pi_unknown_1.txt")
    assert irqs.lines[-1].irq == "Err"
    assert irqs.lines[irqs.index()["FIQ"]].description == "usb_fiq"
