"""per_cpu/cpuN/stats: the kernel's own count of lost events."""

from __future__ import annotations

import pytest

from irqlab.errors import ParseError
from irqlab.tracing.stats import CpuStats, lost_between, parse_stats


def test_overrun_after_a_flood_into_a_tiny_buffer_counts_as_lost(fixtures):
    st = parse_stats((fixtures / "tracing/overrun/stats/cpu0").read_text())
    assert st.overrun > 0 and st.entries > 0 and st.read == 0
    assert st.lost == st.overrun + st.commit_overrun + st.dropped


def test_lost_is_the_delta_per_cpu_and_a_new_cpu_counts_from_zero():
    before = {0: CpuStats(overrun=5), 1: CpuStats(dropped=2)}
    after = {0: CpuStats(overrun=9, commit_overrun=1), 1: CpuStats(dropped=2), 2: CpuStats(dropped=3)}
    assert lost_between(before, after) == {0: 5, 1: 0, 2: 3}


def test_a_stats_file_with_a_non_number_quotes_it():
    with pytest.raises(ParseError, match="overrun is not a count.*'lots'"):
        parse_stats("entries: 0\noverrun: lots\n", "cpu0/stats")


def test_a_file_without_overrun_is_not_a_stats_file():
    with pytest.raises(ParseError, match="not a per_cpu stats file"):
        parse_stats("hello: 1\n")
