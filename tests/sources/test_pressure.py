"""/proc/pressure/irq: the "full" line, and a missing file on kernels without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from irqlab.errors import ParseError
from irqlab.model.snapshot import Pressure
from irqlab.sources.fs import Roots
from irqlab.sources.pressure import parse_pressure, read_pressure


def load(fixtures: Path, name: str) -> Pressure:
    path = fixtures / "pressure" / name
    return parse_pressure(path.read_bytes().decode(), str(path))


def test_idle_machine_on_6_1_reads_all_zero(fixtures: Path) -> None:
    assert load(fixtures, "irq-idle-6.1") == Pressure(0.0, 0.0, 0.0, 0)


def test_busy_machine_reads_percentages_and_total_microseconds(fixtures: Path) -> None:
    p = load(fixtures, "irq-busy")
    assert (p.avg10, p.avg60, p.avg300) == (12.53, 8.07, 2.61)
    assert p.total_us == 80506377366


def test_a_some_line_is_skipped_and_full_is_kept(fixtures: Path) -> None:
    p = load(fixtures, "some-and-full")
    assert p == Pressure(0.10, 0.02, 0.01, 456789)


def test_full_before_some_is_read_the_same() -> None:
    text = "full avg10=0.10 avg60=0.02 avg300=0.01 total=9\nsome avg10=1.00 avg60=1.00 avg300=1.00 total=99\n"
    assert parse_pressure(text).total_us == 9


@pytest.mark.parametrize("variant", ["crlf", "no-final-newline"])
def test_line_ending_variants_read_the_same(fixtures: Path, variant: str) -> None:
    raw = (fixtures / "pressure" / variant).read_bytes()
    assert raw.endswith(b"\r\n") == (variant == "crlf") and raw.endswith(b"\n") != (variant == "no-final-newline")
    assert load(fixtures, variant) == Pressure(1.09, 1.08, 1.46, 80506377366)


def test_missing_file_reads_as_none(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    assert read_pressure(Roots.capture(tmp_path)) is None


def test_present_file_is_read_through_the_injected_root(tmp_path: Path, fixtures: Path) -> None:
    (tmp_path / "proc" / "pressure").mkdir(parents=True)
    (tmp_path / "proc" / "pressure" / "irq").write_bytes((fixtures / "pressure" / "irq-busy").read_bytes())
    p = read_pressure(Roots.capture(tmp_path))
    assert p is not None and p.total_us == 80506377366


@pytest.mark.live
def test_this_machine_has_no_irq_pressure_file_without_irq_time_accounting() -> None:
    # The capture machine (6.18, CONFIG_IRQ_TIME_ACCOUNTING off) has cpu/io/memory only.
    if not Path("/proc/pressure").is_dir() or Path("/proc/pressure/irq").exists():
        pytest.skip("this kernel has PSI irq accounting, or no PSI at all")
    assert read_pressure(Roots()) is None


@pytest.mark.parametrize(
    ("text", "line", "token"),
    [
        pytest.param("", 1, "", id="empty-file"),
        pytest.param("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", 1, "some avg10=0.00 avg60=0.00 avg300=0.00 total=0", id="some-only"),
        pytest.param("full avg10=0.00 avg60=0.00 avg300=0.00\n", 1, "avg10=0.00 avg60=0.00 avg300=0.00", id="no-total"),
        pytest.param("full avg10=0.00 avg60=x avg300=0.00 total=0\n", 1, "avg60=x", id="avg-not-a-number"),
        pytest.param("full avg10=nan avg60=0 avg300=0.00 total=0\n", 1, "avg10=nan", id="avg-nan"),
        pytest.param("full avg10=0.00 avg60=0.00 avg300=0.00 total=-5\n", 1, "total=-5", id="negative-total"),
        pytest.param("full avg10=0.00 avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", 1, "avg10=0.00", id="key-twice"),
        pytest.param("full avg10=0.00 avg60=0.00 avg300=0.00 total=0 extra=1\n", 1, "extra=1", id="unknown-key"),
        pytest.param("\nhalf avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", 2, "half", id="unknown-state"),
        pytest.param("full avg10=0 avg60=0 avg300=0 total=0\nfull avg10=0 avg60=0 avg300=0 total=0\n", 2, "full", id="full-twice"),
    ],
)
def test_malformed_text_raises_parse_error_naming_line_and_token(text: str, line: int, token: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_pressure(text, "captured/pressure/irq")
    assert (err.value.path, err.value.line, err.value.token) == ("captured/pressure/irq", line, token)
