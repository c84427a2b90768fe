"""CPU lists ("0-3,8") and hex masks ("00000000,ffffffff") as the kernel prints and reads them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from irqlab.cpulist import MAX_CPU_ID, format_cpulist, format_cpumask, parse_cpulist, parse_cpumask
from irqlab.errors import ParseError

cpu_sets = st.sets(st.integers(min_value=0, max_value=MAX_CPU_ID), max_size=64)
wide_cpu_sets = st.sets(st.integers(min_value=0, max_value=1151), max_size=200)


# --- lists ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("0-3,8", (0, 1, 2, 3, 8)),
        ("0\n", (0,)),  # the kernel's "%*pbl\n"
        ("", ()),  # effective_affinity_list of an IRQ no CPU serves yet
        ("\n", ()),
        ("1151", (1151,)),
        ("0-1,64-65", (0, 1, 64, 65)),
        ("8,0-3", (0, 1, 2, 3, 8)),  # order of items does not matter
        ("0-3,2-5", (0, 1, 2, 3, 4, 5)),  # overlapping ranges collapse
    ],
)
def test_cpulist_parses_kernel_lists(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpulist(text) == cpus


@pytest.mark.parametrize("text", ["0-3:2/4", "3-1", "x", "1-", "-1", "0,,1", f"0-{MAX_CPU_ID + 1}"])
def test_cpulist_refuses_what_the_kernel_never_prints(text: str) -> None:
    with pytest.raises(ParseError):
        parse_cpulist(text, "/proc/irq/41/smp_affinity_list")


def test_cpulist_error_names_file_line_and_token() -> None:
    with pytest.raises(ParseError) as info:
        parse_cpulist("0-1,zz", "/proc/irq/41/smp_affinity_list", line=1)
    assert info.value.path == "/proc/irq/41/smp_affinity_list"
    assert info.value.line == 1
    assert info.value.token == "zz"


@pytest.mark.parametrize(
    ("cpus", "text"),
    [
        ((), ""),
        ((0,), "0"),
        ((0, 1, 2, 3, 8), "0-3,8"),
        ((0, 2, 4), "0,2,4"),
        ((0, 1, 3, 4, 5), "0-1,3-5"),
        ((1151, 0, 1150), "0,1150-1151"),
    ],
)
def test_cpulist_formats_like_percent_pbl(cpus: tuple[int, ...], text: str) -> None:
    assert format_cpulist(cpus) == text


@given(cpu_sets)
def test_cpulist_round_trips(cpus: set[int]) -> None:
    assert parse_cpulist(format_cpulist(cpus)) == tuple(sorted(cpus))


# --- masks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("3\n", (0, 1)),  # 2 CPUs: the kernel prints just the digits nr_cpu_ids needs
        ("f0", (4, 5, 6, 7)),
        ("00000000,00000000,ffffffff", tuple(range(32))),
        ("00000001,00000000,00000000", (64,)),
        ("00000000,00000003,c0000000", (30, 31, 32, 33)),
        ("80000000,00000000,00000000", (95,)),
        ("ff,ffffffff", tuple(range(40))),  # 40 CPUs: the top group has 2 digits
        ("0", ()),
        ("", ()),
    ],
)
def test_cpumask_parses_comma_groups(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpumask(text) == cpus


@pytest.mark.parametrize("text", ["ffffffffff", "00000000,", ",ff", "0000000g", "ff ff"])
def test_cpumask_refuses_groups_that_are_not_32_bit_hex(text: str) -> None:
    with pytest.raises(ParseError):
        parse_cpumask(text, "/proc/irq/41/smp_affinity")


@pytest.mark.parametrize(
    ("cpus", "ncpus", "text"),
    [
        ((0, 1), 2, "3"),
        ((), 2, "0"),
        ((0,), 8, "01"),
        (range(32), 96, "00000000,00000000,ffffffff"),
        ((64,), 96, "00000001,00000000,00000000"),
        (range(40), 40, "ff,ffffffff"),
        ((0,), 33, "0,00000001"),
        ((1151,), 1152, "80000000," + ",".join(["00000000"] * 35)),
    ],
)
def test_cpumask_formats_like_percent_pb(cpus, ncpus: int, text: str) -> None:
    assert format_cpumask(cpus, ncpus) == text


@given(wide_cpu_sets, st.integers(min_value=1, max_value=1152))
def test_cpumask_round_trips_with_one_group_per_32_cpus(cpus: set[int], ncpus: int) -> None:
    text = format_cpumask(cpus, ncpus)
    width = max([ncpus] + [c + 1 for c in cpus])
    assert len(text.split(",")) == (width + 31) // 32
    assert parse_cpumask(text) == tuple(sorted(cpus))


@given(wide_cpu_sets)
def test_cpumask_and_cpulist_agree(cpus: set[int]) -> None:
    assert parse_cpumask(format_cpumask(cpus, 1152)) == parse_cpulist(format_cpulist(cpus))


@given(st.text(max_size=40))
def test_parsers_raise_only_parse_errors(text: str) -> None:
    for parse in (parse_cpulist, parse_cpumask):
        try:
            parse(text)
        except ParseError:
            pass
