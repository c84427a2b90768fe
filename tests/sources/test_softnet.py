"""/proc/net/softnet_stat: one story per kernel layout and quirk (sources/softnet.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from irqlab.errors import ParseError
from irqlab.model.snapshot import SOFTNET_FIELDS
from irqlab.sources.fs import Roots
from irqlab.sources.softnet import parse_softnet, read_softnet


def load(fixtures: Path, name: str):
    path = fixtures / "softnet" / name
    return parse_softnet(path.read_bytes().decode(), str(path))


def hex_rows(text: str) -> list[list[int]]:
    """Every row's columns, read the simplest way."""
    return [[int(t, 16) for t in line.split()] for line in text.splitlines() if line.strip()]


def test_this_vm_capture_has_15_columns_and_cpu_ids_from_the_column(fixtures: Path) -> None:
    text = (fixtures / "softnet" / "vm-6.18-2cpu").read_text()
    s = parse_softnet(text)
    raw = hex_rows(text)
    assert [r.cpu for r in s.rows] == [row[12] for row in raw]
    assert all(r.cpu_from_column and r.ncolumns == 15 for r in s.rows)
    for row, cols in zip(s.rows, raw):
        for name in ("processed", "dropped", "time_squeeze", "received_rps", "flow_limit_count",
                     "backlog_len", "input_qlen", "process_qlen"):
            assert getattr(row, name) == cols[SOFTNET_FIELDS.index(name)]


# Which optional fields each kernel's layout has; None = that kernel did not print it.
LAYOUTS = [
    ("cols-9-linux-2.6.34", 9, ()),
    ("cols-10-linux-2.6.35", 10, ("received_rps",)),
    ("cols-11-linux-3.11", 11, ("received_rps", "flow_limit_count")),
    ("cols-13-linux-5.10", 13, ("received_rps", "flow_limit_count", "backlog_len")),
    ("cols-15-linux-6.4", 15, ("received_rps", "flow_limit_count", "backlog_len", "input_qlen", "process_qlen")),
]
OPTIONAL = ("received_rps", "flow_limit_count", "backlog_len", "input_qlen", "process_qlen")


@pytest.mark.parametrize(("name", "ncolumns", "present"), LAYOUTS, ids=[layout[0] for layout in LAYOUTS])
def test_each_kernel_layout_fills_only_the_columns_it_printed(fixtures: Path, name: str, ncolumns: int, present: tuple[str, ...]) -> None:
    text = (fixtures / "softnet" / name).read_text()
    s = parse_softnet(text)
    for row, cols in zip(s.rows, hex_rows(text), strict=True):
        assert row.ncolumns == ncolumns
        assert (row.processed, row.dropped, row.time_squeeze) == tuple(cols[:3])
        for field in OPTIONAL:
            expected = cols[SOFTNET_FIELDS.index(field)] if field in present else None
            assert getattr(row, field) == expected, field
        assert row.cpu_from_column == (ncolumns >= 13)


def test_5_10_backlog_len_is_input_plus_process_queue_from_6_4(fixtures: Path) -> None:
    row = load(fixtures, "cols-15-linux-6.4").rows[0]
    assert row.backlog_len == row.input_qlen + row.process_qlen == 0x30


def test_offline_cpu_row_is_skipped_and_the_cpu_column_says_which_is_which(fixtures: Path) -> None:
    s = load(fixtures, "cpu2-offline-4cpu-cols-13")
    assert [r.cpu for r in s.rows] == [0, 1, 3]
    assert s.by_cpu()[3].dropped == 5


def test_without_the_cpu_column_the_row_position_is_only_a_guess(fixtures: Path) -> None:
    # Same machine, pre-5.10 kernel: the third row is CPU3's, but nothing in the file says so.
    s = load(fixtures, "cpu2-offline-4cpu-cols-11")
    assert [r.cpu for r in s.rows] == [0, 1, 2]
    assert not any(r.cpu_from_column for r in s.rows)
    assert s.rows[2].dropped == 5


def test_mixed_widths_in_one_file_are_read_row_by_row(fixtures: Path) -> None:
    s = load(fixtures, "mixed-widths")
    assert [r.ncolumns for r in s.rows] == [15, 13, 11, 9]
    assert [(r.cpu, r.cpu_from_column) for r in s.rows] == [(0, True), (1, True), (2, False), (3, False)]
    assert s.rows[0].input_qlen == 2 and s.rows[1].input_qlen is None
    assert s.rows[3].received_rps is None


def test_row_of_12_columns_has_backlog_but_no_cpu_id() -> None:
    row = parse_softnet(" ".join(["0000000a"] * 11 + ["00000007"]) + "\n").rows[0]
    assert row.backlog_len == 7 and row.input_qlen is None
    assert (row.cpu, row.cpu_from_column) == (0, False)


def test_columns_beyond_the_known_15_are_ignored() -> None:
    cols = ["00000001"] * 12 + ["00000004", "00000002", "00000003", "ffffffff", "00000009"]
    row = parse_softnet(" ".join(cols)).rows[0]
    assert (row.cpu, row.input_qlen, row.process_qlen, row.ncolumns) == (4, 2, 3, 17)


def test_upper_case_hex_is_accepted() -> None:
    row = parse_softnet("0000ABCD 00000000 F0000769 0 0 0 0 0 0\n").rows[0]
    assert (row.processed, row.time_squeeze) == (0xABCD, 0xF0000769)


@pytest.mark.parametrize("variant", ["crlf", "blank-lines-no-final-newline"])
def test_line_ending_variants_parse_like_the_plain_file(fixtures: Path, variant: str) -> None:
    raw = (fixtures / "softnet" / variant).read_bytes()
    assert (b"\r\n" in raw) == (variant == "crlf") and raw.endswith(b"\n") == (variant == "crlf")
    assert load(fixtures, variant) == load(fixtures, "modern-2cpu")


def test_read_softnet_uses_the_injected_proc_root(tmp_path: Path, fixtures: Path) -> None:
    (tmp_path / "proc" / "net").mkdir(parents=True)
    (tmp_path / "proc" / "net" / "softnet_stat").write_bytes((fixtures / "softnet" / "vm-6.18-2cpu").read_bytes())
    assert [r.cpu for r in read_softnet(Roots.capture(tmp_path)).rows] == [0, 1]


NINE = " ".join(["00000001"] * 9)


@pytest.mark.parametrize(
    ("text", "line", "token"),
    [
        pytest.param("00015c73 00020e76 F0000769 00000000\n", 1, "00015c73 00020e76 F0000769 00000000", id="four-columns"),
        pytest.param(NINE + "\n\n00000001 00000002\n", 3, "00000001 00000002", id="short-row-after-blank"),
        pytest.param(NINE + "\n" + NINE.replace("00000001", "0000000g", 1), 2, "0000000g", id="not-hex"),
        pytest.param(NINE.replace("00000001", "0x000001", 1), 1, "0x000001", id="0x-prefix"),
        pytest.param(NINE.replace("00000001", "100000000", 1), 1, "100000000", id="over-32-bits"),
        pytest.param(NINE.replace("00000001", "-0000001", 1), 1, "-0000001", id="negative"),
    ],
)
def test_malformed_rows_raise_parse_error_naming_line_and_token(text: str, line: int, token: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_softnet(text, "captured/softnet_stat")
    assert (err.value.path, err.value.line, err.value.token) == ("captured/softnet_stat", line, token)


def test_two_rows_claiming_one_cpu_raise_parse_error() -> None:
    row = " ".join(["00000001"] * 12 + ["00000003"])
    with pytest.raises(ParseError) as err:
        parse_softnet(row + "\n" + row + "\n")
    assert err.value.line == 2
