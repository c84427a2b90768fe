"""The one Histogram: exact count/sum/min/max, bucket-edge percentiles, overflow, merging."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irqlab.model.histogram import Histogram


def test_percentiles_are_upper_bucket_edges_capped_by_max():
    h = Histogram(bucket_ns=1000, limit_ns=100_000)
    for v in [500, 1500, 1600, 2500, 99_000]:
        h.add(v)
    s = h.stats()
    assert (s.count, s.min_ns, s.max_ns, s.overflows) == (5, 500, 99_000, 0)
    assert s.p50_ns == 2000  # third value (1600) lives in [1000, 2000)
    assert s.p99_ns == 99_000  # bucket edge 100_000 capped by the exact max
    assert s.avg_ns == pytest.approx(sum([500, 1500, 1600, 2500, 99_000]) / 5)


def test_values_beyond_the_limit_go_to_the_overflow_row_and_the_log2_view():
    h = Histogram(bucket_ns=1000, limit_ns=10_000)
    h.add_many(np.array([100, 200, 50_000, 3_000_000]))
    assert h.overflow == 2 and int(h.linear.sum()) == 2
    # p99 falls in the overflow: answered from log2 buckets, capped by max
    assert h.percentile(99) == 3_000_000
    assert h.percentile(75) == 1 << 16  # 50_000 lies in [2^15, 2^16)


def test_add_many_equals_add_one_by_one():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 5_000_000, 5000)
    a, b = Histogram(), Histogram()
    a.add_many(values)
    for v in values:
        b.add(int(v))
    assert (a.linear == b.linear).all() and (a.log2 == b.log2).all()
    assert (a.count, a.sum_ns, a.min_ns, a.max_ns, a.overflow) == (b.count, b.sum_ns, b.min_ns, b.max_ns, b.overflow)


def test_log2_buckets_are_exact_at_powers_of_two():
    h = Histogram()
    h.add_many(np.array([0, 1, 2, 3, 4, 1023, 1024, (1 << 40) - 1, 1 << 40]))
    rows = {lo: n for lo, hi, n in h.log2_rows()}
    assert rows[0] == 1 and rows[1] == 1 and rows[2] == 2 and rows[4] == 1
    assert rows[512] == 1 and rows[1024] == 1
    assert rows[1 << 39] == 1 and rows[1 << 40] == 1


def test_merge_across_cpus_and_refuses_other_layouts():
    a, b = Histogram(), Histogram()
    a.add_many(np.array([10, 20]))
    b.add_many(np.array([5_000, 2_000_000]))
    a.merge(b)
    assert a.count == 4 and a.min_ns == 10 and a.max_ns == 2_000_000 and a.overflow == 1
    with pytest.raises(ValueError):
        a.merge(Histogram(bucket_ns=500, limit_ns=1_000_000))


def test_empty_histogram_has_no_statistics():
    s = Histogram().stats()
    assert s.count == 0 and s.p99_ns is None and s.min_ns is None and s.avg_ns is None


def test_dict_round_trip():
    h = Histogram(bucket_ns=1000, limit_ns=50_000)
    h.add_many(np.array([1, 999, 1000, 49_999, 50_000, 10**9]))
    g = Histogram.from_dict(h.to_dict())
    assert g.to_dict() == h.to_dict()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=300), st.floats(min_value=0, max_value=100))
def test_percentile_bounds_the_true_quantile_from_above(values, p):
    h = Histogram(bucket_ns=1000, limit_ns=100_000)
    h.add_many(np.array(values))
    got = h.percentile(p)
    ordered = sorted(values)
    rank = max(1, int(np.ceil(p / 100 * len(values))))
    true = ordered[rank - 1]
    assert true <= got <= max(values)
