"""/proc/interrupts: one story per quirk of the file (sources/interrupts.py)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from irqlab.errors import ParseError
from irqlab.model.snapshot import Interrupts, IrqLine
from irqlab.sources import interrupts as mod
from irqlab.sources.fs import Roots
from irqlab.sources.interrupts import parse_interrupts, read_interrupts


def load(fixtures: Path, name: str) -> Interrupts:
    path = fixtures / "interrupts" / name
    return parse_interrupts(path.read_bytes(), str(path))


def row(irqs: Interrupts, key: str) -> tuple[IrqLine, list[int], int]:
    """The line, its per-CPU counts and its total, by key."""
    i = irqs.index()[key]
    return irqs.lines[i], irqs.counts[i].tolist(), int(irqs.totals[i])


def slow_only(data: bytes | str) -> Interrupts:
    """The same parse with the fast path switched off: every row goes token by token."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mod, "_fast_counts", lambda raw, rows, ncpu, counts: [False] * len(rows))
        return parse_interrupts(data)


def same(a: Interrupts, b: Interrupts) -> bool:
    return (
        a.cpus == b.cpus
        and [vars_of(x) for x in a.lines] == [vars_of(x) for x in b.lines]
        and np.array_equal(a.counts, b.counts)
        and np.array_equal(a.totals, b.totals)
    )


def vars_of(line: IrqLine) -> tuple:
    return tuple(getattr(line, f.name) for f in fields(IrqLine))


def parse_error(text: str | bytes, path: str = "/x/interrupts") -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_interrupts(text, path)
    assert info.value.path == path
    return info.value


# --- layouts ------------------------------------------------------------------------------


def test_x86_basic_numbered_rows_give_chip_hwirq_trigger_and_actions(fixtures: Path) -> None:
    irqs = load(fixtures, "x86-basic")
    assert irqs.cpus == (0, 1)
    assert irqs.counts.dtype == np.int64 and irqs.counts.shape == (len(irqs.lines), 2)
    line, counts, total = row(irqs, "26")
    assert (line.chip, line.hwirq, line.trigger, line.actions) == (
        "PCI-MSIX-0000:00:03.0", "2", "edge", ("virtio0-output.0",))
    assert counts == [3, 55123] and total == 55126 and line.numbered
    line, counts, total = row(irqs, "9")
    assert (line.chip, line.hwirq, line.trigger) == ("IO-APIC", "9", "fasteoi")
    line, counts, total = row(irqs, "CAL")
    assert line.description == "Function call interrupts" and not line.numbered
    assert counts == [21052, 23885] and total == 44937 and line.chip == "" and line.actions == ()


def test_this_vm_capture_matches_a_plain_token_reading(fixtures: Path) -> None:
    text = (fixtures / "interrupts" / "vm-6.18-2cpu").read_text()
    irqs = parse_interrupts(text)
    assert irqs.cpus == (0, 1)
    rows = [li for li in text.splitlines()[1:] if li.strip()]
    assert len(irqs.lines) == len(rows)
    for i, text_row in enumerate(rows):
        irq, rest = text_row.split(":", 1)
        numbers = [int(t) for t in rest.split()[:2] if t.isdigit()]
        assert irqs.lines[i].irq == irq.strip()
        if irqs.lines[i].per_cpu:
            assert irqs.counts[i].tolist() == numbers
        assert irqs.totals[i] == sum(numbers)
    assert row(irqs, "LOC")[0].description == "Local timer interrupts"
    assert not row(irqs, "ERR")[0].per_cpu


def test_arm64_ipi_with_a_ten_digit_count_touching_the_colon(fixtures: Path) -> None:
    irqs = load(fixtures, "arm64-ipi-no-space")
    line, counts, total = row(irqs, "IPI0")
    assert counts == [2768808080, 2844211768, 35712, 4294967295]
    assert total == sum(counts)
    assert line.description == "Rescheduling interrupts"
    line, counts, _ = row(irqs, "51")
    assert (line.chip, line.hwirq, line.trigger, line.actions) == ("ITS-MSI", "65536", "Edge", ("nvme0q0",))
    assert counts == [0, 37, 0, 0]


def test_ppc_second_loc_row_gets_a_key_of_its_own(fixtures: Path) -> None:
    irqs = load(fixtures, "ppc-two-loc")
    keys = [li.key for li in irqs.lines]
    assert keys.count("LOC") == 1 and "LOC#2" in keys
    assert len(set(keys)) == len(keys)
    first, counts1, _ = row(irqs, "LOC")
    second, counts2, _ = row(irqs, "LOC#2")
    assert first.irq == second.irq == "LOC"
    assert counts1 == [2236, 2104] and counts2 == [17, 5]
    assert second.description == "Local timer interrupts for others"
    assert row(irqs, "19")[0].actions == ("NPU Device",)


def test_row_wider_than_header_keeps_counts_of_absent_cpus_as_extra(fixtures: Path) -> None:
    irqs = load(fixtures, "wider-than-header")
    assert irqs.cpus == (0,)
    line, counts, total = row(irqs, "IPI1")
    assert counts == [75373]
    assert line.extra == (107711, 43906, 30716)
    assert total == 75373 + 107711 + 43906 + 30716
    assert line.description == "Rescheduling interrupts" and line.per_cpu
    assert row(irqs, "29")[0].extra == ()


def test_row_narrower_than_header_fills_the_rest_with_zero_and_keeps_numeric_names(fixtures: Path) -> None:
    irqs = load(fixtures, "narrower-than-header")
    assert irqs.cpus == (0, 1, 2, 3)
    line, counts, total = row(irqs, "45")
    assert counts == [5, 0, 0, 0] and total == 5  # "8250" is the device, not a count
    assert line.actions == ("8250",) and line.extra == ()
    line, counts, total = row(irqs, "46")
    assert counts == [17, 2, 0, 0] and line.actions == ("9000000.usb",)
    assert row(irqs, "29")[1] == [85682, 12345, 9876, 5432]


def test_offline_cpu_gap_takes_ids_from_labels_not_positions(fixtures: Path) -> None:
    irqs = load(fixtures, "offline-cpu-gap")
    assert irqs.cpus == (0, 2, 3)
    assert row(irqs, "16")[1] == [0, 10536, 0]  # column 1 is CPU2
    assert irqs.counts.shape[1] == 3


def test_no_final_newline_keeps_the_last_row(fixtures: Path) -> None:
    irqs = load(fixtures, "no-final-newline")
    assert irqs.lines[-1].key == "RES"
    assert row(irqs, "RES")[1] == [483259, 470584]


def test_blank_lines_and_a_line_of_blanks_are_skipped(fixtures: Path) -> None:
    irqs = load(fixtures, "blank-lines")
    assert [li.key for li in irqs.lines] == ["8", "LOC", "ERR", "MIS", "PIN"]
    assert row(irqs, "LOC")[1] == [1474, 1102]


def test_crlf_line_ends_parse_like_lf(fixtures: Path) -> None:
    irqs = load(fixtures, "crlf")
    assert [li.key for li in irqs.lines] == ["8", "LOC", "ERR"]
    line, counts, _ = row(irqs, "8")
    assert counts == [0, 1] and line.actions == ("rtc0",)
    assert row(irqs, "LOC")[0].description == "Local timer interrupts"


def test_s390x_class_rows_without_text_and_subclass_rows(fixtures: Path) -> None:
    irqs = load(fixtures, "s390x-io")
    line, counts, total = row(irqs, "I/O")
    assert counts == [6989, 33457] and total == 40446 and line.description == ""
    assert not line.numbered
    assert row(irqs, "CLK")[0].description == "[EXT] Clock Comparator"
    line, counts, _ = row(irqs, "3")
    assert (line.chip, line.hwirq, line.trigger) == ("PCI-MSI", "", "")
    assert line.actions == ("mlx5_async@pci:0002:00:00.0",) and counts == [6, 4]


def test_err_and_mis_hold_one_total_even_on_one_cpu(fixtures: Path) -> None:
    irqs = load(fixtures, "err-mis-single")
    assert irqs.cpus == (0,)
    line, counts, total = row(irqs, "ERR")
    assert not line.per_cpu and counts == [0] and total == 3
    line, counts, total = row(irqs, "MIS")
    assert not line.per_cpu and counts == [0] and total == 1
    assert row(irqs, "PIN")[0].per_cpu
    assert row(irqs, "14")[1] == [578269]


def test_fiq_row_without_counts_is_not_per_cpu(fixtures: Path) -> None:
    irqs = load(fixtures, "fiq-no-counts")
    line, counts, total = row(irqs, "FIQ")
    assert not line.per_cpu and counts == [0] and total == 0
    assert line.description == "usb_fiq"
    line, _, _ = row(irqs, "17")
    assert (line.chip, line.hwirq, line.trigger) == ("ARMCTRL-level", "1", "Edge")


def test_names_with_spaces_commas_and_parentheses(fixtures: Path) -> None:
    irqs = load(fixtures, "names-with-spaces-commas")
    line, counts, _ = row(irqs, "100")
    assert (line.chip, line.hwirq, line.trigger) == ("PCIe MSI", "0", "Edge")
    assert line.actions == ("PCIe PME", "aerdrv") and counts == [0, 3]
    assert row(irqs, "97")[0].actions == ("Link up",)
    assert row(irqs, "52")[0].actions == ("apple-dart fault handler", "apple-dart fault handler")
    assert row(irqs, "63")[0].actions == ("ib_mthca (comp)",)
    line = row(irqs, "64")[0]
    assert line.chip == "rockchip_gpio_irq" and line.actions == ("fe320000.mmc cd",)


def test_ten_digit_counts_fill_the_field(fixtures: Path) -> None:
    irqs = load(fixtures, "ten-digit-counts")
    assert row(irqs, "25")[1] == [4131689481, 4190886484, 4144949287, 0]
    assert row(irqs, "26")[1] == [9, 4294967295, 1000000000, 1]
    line, counts, total = row(irqs, "RES")
    assert counts == [3960102930, 2087715013, 1780231453, 4294967295]
    assert total == sum(counts)  # beyond 32 bits: totals are int64
    assert row(irqs, "25")[0].hwirq == "65537"


def test_old_single_token_chip_splits_chip_and_flow(fixtures: Path) -> None:
    irqs = load(fixtures, "old-single-token-chip")
    line = row(irqs, "0")[0]
    assert (line.chip, line.hwirq, line.trigger, line.actions) == ("IR-IO-APIC", "", "edge", ("timer",))
    line = row(irqs, "3")[0]
    assert (line.chip, line.trigger, line.actions) == ("IR-IO-APIC", "edge", ())
    assert row(irqs, "9")[0].trigger == "fasteoi"
    assert row(irqs, "56")[0].chip == "DMAR_MSI"
    assert row(irqs, "63")[0].actions == ("ib_mthca (comp)",)


def test_no_chip_column_puts_every_word_in_actions(fixtures: Path) -> None:
    irqs = load(fixtures, "no-chip-column")
    line, counts, _ = row(irqs, "27")
    assert line.chip == "" and line.actions == ("sep4020 Timer Tick",) and counts == [18210]
    assert row(irqs, "1")[0].actions == ("4020KEY",)


def test_dash_chip_means_no_chip(fixtures: Path) -> None:
    irqs = load(fixtures, "dash-chip")
    line, counts, _ = row(irqs, "14")
    assert line.chip == "" and line.actions == ("debug-signal",) and counts == [8181, 0]
    assert row(irqs, "126")[0].actions == ("mt_emi_mpu", "spc", "mt6577_devapc")


def test_xen_dyn_rows_have_no_hwirq(fixtures: Path) -> None:
    irqs = load(fixtures, "xen-dyn-no-hwirq")
    line = row(irqs, "0")[0]
    assert (line.chip, line.hwirq, line.trigger, line.actions) == ("xen-dyn", "", "Edge", ("xenbus",))
    assert row(irqs, "42")[0].chip == "xen-dyn-lateeoi"
    assert row(irqs, "11")[0].hwirq == "27"


def test_per_device_msi_chip_and_a_gpio_row_without_trigger(fixtures: Path) -> None:
    irqs = load(fixtures, "per-device-msi-no-trigger")
    line = row(irqs, "151")[0]
    assert (line.chip, line.hwirq, line.trigger, line.actions) == ("intel-gpio", "139", "", ("ELAN06DA:00",))
    line = row(irqs, "152")[0]
    assert (line.chip, line.hwirq, line.trigger) == ("IR-PCI-MSIX-0000:04:00.0", "0", "edge")
    assert row(irqs, "19")[0].actions == ()
    assert row(irqs, "LOC")[1] == [4764, 5120]


@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in (Path(__file__).parent.parent / "fixtures" / "interrupts").iterdir() if "." not in p.name),
)
def test_fast_path_equals_the_token_reader_on_every_fixture(fixtures: Path, name: str) -> None:
    data = (fixtures / "interrupts" / name).read_bytes()
    assert same(parse_interrupts(data), slow_only(data))


def test_str_and_bytes_give_the_same_result(fixtures: Path) -> None:
    path = fixtures / "interrupts" / "x86-basic"
    assert same(parse_interrupts(path.read_text()), parse_interrupts(path.read_bytes()))


def test_read_interrupts_reads_under_an_injected_proc_root(tmp_path: Path, fixtures: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "interrupts").write_bytes((fixtures / "interrupts" / "offline-cpu-gap").read_bytes())
    irqs = read_interrupts(Roots(procfs=proc, sysfs=tmp_path / "sys"))
    assert irqs.cpus == (0, 2, 3)
    with pytest.raises(ParseError) as info:
        (proc / "interrupts").write_text("garbage\n")
        read_interrupts(Roots(procfs=proc, sysfs=tmp_path / "sys"))
    assert info.value.path == str(proc / "interrupts")


def test_threads_parsing_at_once_do_not_share_scratch(fixtures: Path) -> None:
    """The fast path reuses a buffer per thread; threads must not see each other's bytes."""
    from concurrent.futures import ThreadPoolExecutor

    names = ["x86-basic", "ten-digit-counts", "offline-cpu-gap", "arm64-ipi-no-space"] * 8
    datas = [(fixtures / "interrupts" / name).read_bytes() for name in names]
    alone = [parse_interrupts(d) for d in datas]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(parse_interrupts, datas))
    assert all(same(a, b) for a, b in zip(alone, together))


def test_arrays_are_read_only(fixtures: Path) -> None:
    irqs = load(fixtures, "x86-basic")
    with pytest.raises(ValueError):
        irqs.counts[0, 0] = 1
    with pytest.raises(ValueError):
        irqs.totals[0] = 1


@pytest.mark.parametrize("share", [0.0, 2.0])
def test_dense_and_sparse_checks_agree(fixtures: Path, share: float) -> None:
    """Both ways the fast path checks a row (every byte, or only non-zero words) agree."""
    data = (fixtures / "interrupts" / "ten-digit-counts").read_bytes()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mod, "DENSE_SHARE", share)
        assert same(parse_interrupts(data), slow_only(data))


HEADER = "           CPU0       CPU1       \n"

# Rows the fast path must refuse (and leave to the token reader): one bad byte in one field.
ODD_FIELDS = [
    "LOC:     1 2345          7   Local timer interrupts",  # a blank inside a field
    "LOC:          7     1 2345   Local timer interrupts",
    "LOC:       12+4          7   Local timer interrupts",  # '+' in a field
    "LOC:        12:          7   Local timer interrupts",  # ':' in a field
    "LOC:          7         1a   Local timer interrupts",  # a letter in a field
    "LOC:   12345678          7\x00  Local timer interrupts",  # text glued to the last count
    " 35:         41          0:0  xen-dyn     Edge    -virq      hvc_console",
    "LOC:         7           9   Local timer interrupts",  # left-aligned: blank at field end
    "LOC:12345678901          9   Local timer interrupts",  # 11 digits spill into the next field
]


@pytest.mark.parametrize("share", [0.0, mod.DENSE_SHARE, 2.0])
@pytest.mark.parametrize("bad", ODD_FIELDS)
def test_fields_the_kernel_never_prints_are_left_to_the_token_reader(bad: str, share: float) -> None:
    text = HEADER + "  0:         32          0  IO-APIC   2-edge      timer\n" + bad + "\n"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mod, "DENSE_SHARE", share)
        try:
            fast = parse_interrupts(text)
        except ParseError as err:
            with pytest.raises(ParseError) as again:
                slow_only(text)
            assert (again.value.line, again.value.token) == (err.line, err.token)
            return
        assert same(fast, slow_only(text))
        assert fast.counts[0].tolist() == [32, 0]


@pytest.mark.parametrize("share", [0.0, 2.0])
def test_a_blank_field_between_counts_is_not_a_zero(share: float) -> None:
    text = "           CPU0       CPU1       CPU2       \n" + "LOC:          7                     9   Local timer\n"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mod, "DENSE_SHARE", share)
        fast = parse_interrupts(text)
    assert same(fast, slow_only(text))
    assert fast.counts[0].tolist() == [7, 0, 0]  # "9" is off the grid: text, not CPU2's count


def slow_rows(data: bytes) -> list[str]:
    """Ids of the rows that parse_interrupts leaves to the token reader."""
    seen: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        real = mod._slow_counts

        def spy(raw, row, ncpu, path):
            seen.append(row[4])
            return real(raw, row, ncpu, path)

        mp.setattr(mod, "_slow_counts", spy)
        parse_interrupts(data)
    return seen


def test_arm64_ipi_rows_take_the_fast_path(fixtures: Path) -> None:
    """'%10u ' rows are shifted into the ' %10u' layout, not left to the slow reader."""
    assert slow_rows((fixtures / "interrupts" / "arm64-ipi-no-space").read_bytes()) == ["Err"]


def test_crlf_rows_take_the_fast_path(fixtures: Path) -> None:
    assert slow_rows((fixtures / "interrupts" / "crlf").read_bytes()) == ["ERR"]


def test_whitespace_squeezed_copy_reads_leading_numbers_as_counts() -> None:
    """Text pasted through something that squeezes blanks: not the kernel, still readable."""
    irqs = parse_interrupts(HEADER + "0: 12 3 IO-APIC 2-edge timer\nLOC: 1474 1102 Local timer interrupts\n")
    assert irqs.counts.tolist() == [[12, 3], [1474, 1102]]
    assert (irqs.lines[0].chip, irqs.lines[0].hwirq, irqs.lines[0].actions) == ("IO-APIC", "2", ("timer",))


def test_a_number_after_a_two_blank_gap_belongs_to_the_action_name() -> None:
    """'PCI-MSI  ism 0': a chip name holds at most one blank; after two, actions begin."""
    irqs = parse_interrupts(HEADER + "  5:          2          0   PCI-MSI  ism 0\n")
    line = irqs.lines[0]
    assert (line.chip, line.hwirq, line.actions) == ("PCI-MSI", "", ("ism 0",))


# --- garbage gives ParseError with path, line and token ----------------------------------

def test_empty_file_is_a_parse_error() -> None:
    err = parse_error(b"")
    assert err.line == 1 and err.token == ""
    assert parse_error("\n   \n\n").line == 1


def test_missing_header_names_the_first_row() -> None:
    err = parse_error("  0:         32          0  IO-APIC   2-edge      timer\n")
    assert (err.line, err.token) == (1, "0:")


def test_header_label_that_is_not_a_cpu() -> None:
    err = parse_error("\n           CPU0       CPUx       \n")
    assert (err.line, err.token) == (2, "CPUx")


def test_header_listing_a_cpu_twice() -> None:
    err = parse_error("           CPU0       CPU0       \n")
    assert (err.line, err.token) == (1, "CPU0")


def test_row_without_a_colon() -> None:
    err = parse_error(HEADER + "  0:         32          0  IO-APIC\nNMI          0          0   Non-maskable\n")
    assert (err.line, err.token) == (3, "NMI")


def test_row_with_blanks_inside_its_id() -> None:
    err = parse_error(HEADER + "  a b:         32          0  x\n")
    assert (err.line, err.token) == (2, "a b")


def test_non_numeric_count_where_a_count_must_be() -> None:
    err = parse_error(HEADER + "  0:         32        1x0  IO-APIC   2-edge      timer\n")
    assert (err.line, err.token) == (2, "1x0")
    err = parse_error(HEADER + "\nLOC:         -5          0   Local timer interrupts\n")
    assert (err.line, err.token) == (3, "-5")


def test_numbered_row_without_counts() -> None:
    err = parse_error(HEADER + " 17:   IO-APIC  17-fasteoi   ehci\n")
    assert (err.line, err.token) == (2, "IO-APIC")


def test_counts_adding_up_beyond_64_bits() -> None:
    err = parse_error(HEADER + "LOC: 9000000000000000000 9000000000000000000   Local timer interrupts\n")
    assert (err.line, err.token) == (2, "18000000000000000000")


def test_err_row_without_its_value() -> None:
    err = parse_error(HEADER + "ERR:   none\n")
    assert (err.line, err.token) == (2, "none")


def test_count_beyond_64_bits() -> None:
    err = parse_error(HEADER + "LOC: 99999999999999999999          5   Local timer interrupts\n")
    assert (err.line, err.token) == (2, "99999999999999999999")


def test_error_line_numbers_count_blank_lines_and_crlf() -> None:
    err = parse_error(("\n" + HEADER + "\n  0:         32         1x  IO-APIC\n").replace("\n", "\r\n"))
    assert err.line == 4
