"""/proc/softirqs: one story per quirk of the file (sources/softirqs.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from irqlab.errors import ParseError
from irqlab.model.vectors import SOFTIRQ_NAMES
from irqlab.sources.fs import Roots
from irqlab.sources.softirqs import parse_softirqs, read_softirqs


def load(fixtures: Path, name: str):
    path = fixtures / "softirqs" / name
    return parse_softirqs(path.read_bytes().decode(), str(path))


def column(text: str, vector: str) -> list[int]:
    """Counts of one row, read the simplest way: the numbers after 'NAME:'."""
    line = next(li for li in text.splitlines() if li.strip().startswith(vector + ":"))
    return [int(t) for t in line.split(":", 1)[1].split()]


def test_this_vm_capture_has_the_ten_current_vectors_and_two_cpus(fixtures: Path) -> None:
    text = (fixtures / "softirqs" / "vm-6.18-2cpu").read_text()
    s = parse_softirqs(text)
    assert s.cpus == (0, 1)
    assert s.vectors == SOFTIRQ_NAMES
    assert s.counts.dtype == np.int64 and s.counts.shape == (10, 2)
    for nr, name in enumerate(SOFTIRQ_NAMES):
        assert s.counts[nr].tolist() == column(text, name)


def test_pre_4_5_kernel_block_iopoll_row_becomes_irq_poll(fixtures: Path) -> None:
    s = load(fixtures, "block-iopoll-4.4-2cpu")
    assert "BLOCK_IOPOLL" not in s.vectors
    assert s.vectors[5] == "IRQ_POLL"
    assert s.vectors == SOFTIRQ_NAMES


def test_header_lists_possible_cpus_including_offline_ones(fixtures: Path) -> None:
    # CPU2 is offline on this machine (stat/cpu2-offline-4cpu has no cpu2 line), yet
    # /proc/softirqs keeps its column: for_each_possible_cpu() in show_softirqs().
    s = load(fixtures, "cpu2-offline-4cpu")
    assert s.cpus == (0, 1, 2, 3)
    timer = s.vectors.index("TIMER")
    assert s.counts[timer].tolist() == [501234, 498765, 120, 0]


def test_cpu_ids_come_from_the_labels_not_the_positions() -> None:
    text = "                    CPU0       CPU2       CPU5\n          HI:  1 2 3\n"
    s = parse_softirqs(text)
    assert s.cpus == (0, 2, 5)
    assert s.counts[0].tolist() == [1, 2, 3]


def test_row_narrower_than_header_counts_zero_for_missing_cpus(fixtures: Path) -> None:
    s = load(fixtures, "row-narrower-than-header")
    assert s.counts[s.vectors.index("NET_TX")].tolist() == [12, 3, 0, 0]
    assert s.counts.shape == (10, 4)


def test_row_wider_than_header_drops_the_extra_counts_and_keeps_parsing(fixtures: Path) -> None:
    s = load(fixtures, "row-wider-than-header")
    assert s.cpus == (0, 1)
    assert s.counts[s.vectors.index("NET_RX")].tolist() == [88210, 1423]
    # rows after the wide one are still read
    assert s.counts[s.vectors.index("RCU")].tolist() == [300123, 298765]


def test_unknown_vector_is_kept_as_printed(fixtures: Path) -> None:
    s = load(fixtures, "unknown-vector")
    assert s.vectors[-1] == "NET_POLL_X"
    assert s.counts[-1].tolist() == [5, 7]
    assert len(s.vectors) == 11


def test_lowercase_vector_names_are_upper_cased() -> None:
    s = parse_softirqs("   CPU0\n  net_rx:   4\n")
    assert s.vectors == ("NET_RX",)


def test_row_without_colon_as_in_the_2_6_31_commit_message() -> None:
    s = parse_softirqs("                CPU0       CPU1\nHI                 0          0\nTIMER         462850     462805\n")
    assert s.vectors == ("HI", "TIMER")
    assert s.counts[1].tolist() == [462850, 462805]


def test_ten_digit_counter_at_the_32_bit_limit_is_read() -> None:
    s = parse_softirqs("   CPU0       CPU1\n  NET_RX: 4294967295          0\n")
    assert s.counts[0, 0] == 2**32 - 1


@pytest.mark.parametrize("variant", ["crlf", "blank-lines-no-final-newline"])
def test_line_ending_variants_parse_like_the_plain_file(fixtures: Path, variant: str) -> None:
    raw = (fixtures / "softirqs" / variant).read_bytes()
    assert (b"\r\n" in raw) == (variant == "crlf") and raw.endswith(b"\n") == (variant == "crlf")
    plain = load(fixtures, "modern-2cpu")
    s = load(fixtures, variant)
    assert s.cpus == plain.cpus and s.vectors == plain.vectors
    assert np.array_equal(s.counts, plain.counts)


def test_read_softirqs_uses_the_injected_proc_root(tmp_path: Path, fixtures: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "softirqs").write_bytes((fixtures / "softirqs" / "vm-6.18-2cpu").read_bytes())
    s = read_softirqs(Roots.capture(tmp_path))
    assert s.cpus == (0, 1) and s.counts.shape == (10, 2)


def test_read_softirqs_names_the_file_in_parse_errors(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "softirqs").write_text("    CPU0\n  HI: x\n")
    with pytest.raises(ParseError) as err:
        read_softirqs(Roots.capture(tmp_path))
    assert err.value.path == str(tmp_path / "proc" / "softirqs")


@pytest.mark.parametrize(
    ("text", "line", "token"),
    [
        pytest.param("", 1, "", id="empty-file"),
        pytest.param("   CPU0  cpu1\n", 1, "cpu1", id="bad-header-label"),
        pytest.param("   CPU0  CPU0\n", 1, "CPU0", id="duplicate-cpu-label"),
        pytest.param("   CPU0\n  HI: 1\n  TIMER: 12a\n", 3, "12a", id="non-numeric-count"),
        pytest.param("   CPU0\n  HI: -1\n", 2, "-1", id="negative-count"),
        pytest.param("   CPU0\n  HI: 4294967296\n", 2, "4294967296", id="count-over-32-bits"),
        pytest.param("   CPU0\n  HI: 1_000\n", 2, "1_000", id="python-int-underscore"),
        pytest.param("   CPU0\n  H I: 1\n", 2, "H I", id="space-in-name"),
        pytest.param("   CPU0\n  : 1\n", 2, "", id="empty-name"),
        pytest.param("   CPU0\nBLOCK_IOPOLL: 1\n  IRQ_POLL: 2\n", 3, "IRQ_POLL", id="old-and-new-name-twice"),
    ],
)
def test_malformed_text_raises_parse_error_naming_line_and_token(text: str, line: int, token: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_softirqs(text, "captured/softirqs")
    assert err.value.path == "captured/softirqs"
    assert err.value.line == line
    assert err.value.token == token
