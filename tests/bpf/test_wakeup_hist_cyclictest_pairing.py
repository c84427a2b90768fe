"""The benchmark's pairing of cyclictest's samples with the wake-up ring's records (bench/bench_latency.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

MS = 1_000_000


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[2] / "bench" / "bench_latency.py"
    spec = importlib.util.spec_from_file_location("bench_latency_under_test", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_cyclictest_deadlines_skip_the_periods_a_late_wake_up_overran_but_not_one_it_just_reached(bench):
    # timerthread(): next += interval, then `while (now > next) next += interval` (strictly later).
    values = np.array([10_000, 2_500_000, 20_000, 1_000_000, 5_000], dtype=np.int64)
    assert bench.cyclictest_deadlines(values, MS).tolist() == [0, 1 * MS, 4 * MS, 5 * MS, 6 * MS]


def test_anchor_takes_the_shift_where_no_kernel_figure_is_above_its_user_figure(bench):
    # Deadlines one period apart match under any shift; only the right one keeps kernel <= user.
    rng = np.random.default_rng(7)
    values = rng.integers(10_000, 40_000, 400).astype(np.int64)
    first = 5_000_000_000
    deadlines = first + bench.cyclictest_deadlines(values, MS)
    timed = slice(3, None)  # the first wake-ups came before the threads were registered
    switch_in = deadlines[timed] + values[timed] - 1_000  # 1 us back to user space
    each = np.stack([deadlines[timed], deadlines[timed] + 5_000, switch_in], axis=1)
    printed = values[:-5]  # cyclictest -v loses its last samples at exit; the kernel timed them
    rel = bench.cyclictest_deadlines(printed, MS)
    assert bench.anchor(rel, printed, each) == first
    pairs = bench.kernel_pairs(rel + first, printed, each)
    assert (pairs["user"] - pairs["kernel"] == 1_000).all() and pairs["user"].size == printed.size - 3
