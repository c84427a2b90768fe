"""/proc/stat: one story per quirk of the file (sources/stat.py)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytest

from irqlab.errors import ParseError
from irqlab.model.snapshot import CPU_TIME_FIELDS
from irqlab.sources.fs import Roots
from irqlab.sources.softirqs import parse_softirqs
from irqlab.sources.stat import parse_stat, read_stat


def load(fixtures: Path, name: str):
    path = fixtures / "stat" / name
    return parse_stat(path.read_bytes().decode(), str(path))


def numbers(text: str, key: str) -> list[int]:
    """The numbers after `key` on its line, read the simplest way."""
    line = next(li for li in text.splitlines() if li.split()[:1] == [key])
    return [int(t) for t in line.split()[1:]]


def test_this_vm_capture_matches_a_plain_reading(fixtures: Path) -> None:
    text = (fixtures / "stat" / "vm-6.18-2cpu").read_text()
    s = parse_stat(text)
    assert s.cpus == (0, 1) and s.nfields == 10
    assert s.total_times.tolist() == numbers(text, "cpu")
    assert s.times[1].tolist() == numbers(text, "cpu1")
    intr = numbers(text, "intr")
    assert s.intr_total == intr[0] and s.intr is not None and s.intr.tolist() == intr[1:]
    softirq = numbers(text, "softirq")
    assert s.softirq_total == softirq[0] and s.softirq == tuple(softirq[1:])
    assert (s.ctxt, s.btime, s.processes) == (numbers(text, "ctxt")[0], numbers(text, "btime")[0], numbers(text, "processes")[0])
    assert s.procs_running == numbers(text, "procs_running")[0]
    assert s.procs_blocked == numbers(text, "procs_blocked")[0]


def test_linux_2_4_four_fields_and_page_swap_disk_io_lines_are_skipped(fixtures: Path) -> None:
    s = load(fixtures, "cpu-4-fields-linux-2.4")
    assert s.nfields == 4
    assert s.times[0].tolist() == [1132, 34, 1441, 11311718] + [-1] * 6
    assert s.intr_total == 22636885
    # 2.4 has neither the procs_* lines nor a softirq line
    assert s.procs_running is None and s.procs_blocked is None
    assert s.softirq is None and s.softirq_total is None
    assert s.processes == 2915


@pytest.mark.parametrize(
    ("name", "nfields", "first_missing"),
    [
        ("cpu-7-fields-linux-2.6.9", 7, "steal"),
        ("cpu-8-fields-linux-2.6.18", 8, "guest"),
        ("cpu-9-fields-linux-2.6.27", 9, "guest_nice"),
        ("vm-6.18-2cpu", 10, None),
    ],
)
def test_missing_time_columns_of_older_kernels_are_minus_one(fixtures: Path, name: str, nfields: int, first_missing: str | None) -> None:
    s = load(fixtures, name)
    assert s.nfields == nfields
    assert (s.times[:, :nfields] >= 0).all() and (s.total_times[:nfields] >= 0).all()
    assert (s.times[:, nfields:] == -1).all() and (s.total_times[nfields:] == -1).all()
    if first_missing is not None:
        assert s.column(first_missing) == nfields


@pytest.mark.parametrize("name", ["cpu-7-fields-linux-2.6.9", "cpu-8-fields-linux-2.6.18", "cpu-9-fields-linux-2.6.27"])
def test_kernels_before_2_6_31_print_no_softirq_line(fixtures: Path, name: str) -> None:
    s = load(fixtures, name)
    assert s.softirq is None and s.softirq_total is None
    assert s.intr_total == 901000 + 9 + 12033 + 3021


def test_offline_cpu_has_no_line_so_ids_skip(fixtures: Path) -> None:
    s = load(fixtures, "cpu2-offline-4cpu")
    assert s.cpus == (0, 1, 3)
    assert s.times[2, s.column("user")] == 100


def test_stat_lists_online_cpus_softirqs_lists_possible_ones(fixtures: Path) -> None:
    stat = load(fixtures, "cpu2-offline-4cpu")
    softirqs = parse_softirqs((fixtures / "softirqs" / "cpu2-offline-4cpu").read_text())
    assert set(stat.cpus) < set(softirqs.cpus)
    # the softirq line sums every possible CPU's counts, offline ones too
    assert stat.softirq == tuple(int(v) for v in softirqs.counts.sum(axis=1))


def test_unknown_lines_are_ignored() -> None:
    s = parse_stat("cpu  1 2 3 4\nper_cpu_ctxt 5 6\nfoo\nctxt 7\n")
    assert s.ctxt == 7 and s.cpus == ()


def _huge_intr_stat(n_irqs: int, seed: int) -> tuple[str, list[int]]:
    rng = random.Random(seed)
    counts = [rng.choice((0, 0, 0, rng.randrange(2**32))) for _ in range(n_irqs)]
    text = "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
    text += f"intr {sum(counts)} " + " ".join(map(str, counts)) + " \nctxt 1\n"
    return text, counts


def test_huge_intr_line_of_66000_irqs_is_read_exactly_and_fast() -> None:
    text, counts = _huge_intr_stat(66_000, seed=7)
    start = time.perf_counter()
    s = parse_stat(text)
    elapsed = time.perf_counter() - start
    assert s.intr is not None and s.intr.dtype == np.int64
    assert len(s.intr) == 66_000
    assert s.intr.tolist() == counts
    assert s.intr_total == sum(counts)
    # ~2 ms here; a per-token Python loop takes ~10 ms. Generous bound for slow CI.
    assert elapsed < 0.25


@pytest.mark.parametrize("variant", ["crlf", "blank-lines-no-final-newline"])
def test_line_ending_variants_parse_like_the_plain_file(fixtures: Path, variant: str) -> None:
    raw = (fixtures / "stat" / variant).read_bytes()
    assert (b"\r\n" in raw) == (variant == "crlf") and raw.endswith(b"\n") == (variant == "crlf")
    plain, s = load(fixtures, "modern-2cpu"), load(fixtures, variant)
    assert s.cpus == plain.cpus and np.array_equal(s.times, plain.times)
    assert s.intr is not None and plain.intr is not None and np.array_equal(s.intr, plain.intr)
    assert (s.softirq, s.ctxt, s.procs_blocked) == (plain.softirq, plain.ctxt, plain.procs_blocked)


def test_read_stat_uses_the_injected_proc_root(tmp_path: Path, fixtures: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "stat").write_bytes((fixtures / "stat" / "vm-6.18-2cpu").read_bytes())
    assert read_stat(Roots.capture(tmp_path)).cpus == (0, 1)


def test_times_have_one_column_per_cpu_time_field(fixtures: Path) -> None:
    s = load(fixtures, "cpu2-offline-4cpu")
    assert s.times.shape == (3, len(CPU_TIME_FIELDS)) and s.times.dtype == np.int64


@pytest.mark.parametrize(
    ("text", "line", "token"),
    [
        pytest.param("", 1, "", id="empty-file"),
        pytest.param("ctxt 5\n", 1, "ctxt 5", id="no-cpu-line"),
        pytest.param("cpu  1 2 3\n", 1, "cpu", id="three-time-fields"),
        pytest.param("cpu  1 2 3 4 5 6 7 8 9 10 11\n", 1, "cpu", id="eleven-time-fields"),
        pytest.param("cpu  1 2 3 4\ncpu0 1 2 x 4\n", 2, "x", id="non-numeric-time"),
        pytest.param("cpu  1 2 3 4\ncpu0 1 2 3 4\ncpu0 1 2 3 4\n", 3, "cpu0", id="cpu-line-twice"),
        pytest.param("cpu  1 2 3 4\ncpu  1 2 3 4\n", 2, "cpu", id="aggregate-twice"),
        pytest.param("cpu  1 2 3 4\nintr 5 1 -2\n", 2, "-2", id="negative-irq-count"),
        pytest.param("cpu  1 2 3 4\nintr\n", 2, "intr", id="intr-without-total"),
        pytest.param("cpu  1 2 3 4\nintr 1 " + "9" * 19 + "\n", 2, "9" * 19, id="intr-count-overflows-int64"),
        pytest.param("cpu  1 2 3 4\nsoftirq 3 1 2\nsoftirq 3 1 2\n", 3, "softirq", id="softirq-twice"),
        pytest.param("cpu  1 2 3 4\nctxt\n", 2, "ctxt", id="ctxt-without-value"),
        pytest.param("cpu  1 2 3 4\nbtime 1 2\n", 2, "btime 1 2", id="btime-two-values"),
        pytest.param("cpu  1 2 3 4\nprocesses 1e3\n", 2, "1e3", id="processes-not-decimal"),
    ],
)
def test_malformed_text_raises_parse_error_naming_line_and_token(text: str, line: int, token: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_stat(text, "captured/stat")
    assert (err.value.path, err.value.line, err.value.token) == ("captured/stat", line, token)
