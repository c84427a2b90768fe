"""One Histogram for every duration irqlab measures: handlers, raise-to-run, timer latency.

Linear buckets of `bucket_ns` up to `limit_ns` with an explicit overflow row (as rtla and
cyclictest print it), and, recorded alongside, power-of-two buckets (as bcc's -d views) that
also cover what overflowed. Count, sum, min and max are exact. Percentiles are the upper edge
of the bucket that holds the rank (so "p99 <= X"), from the linear buckets when the rank is
inside them, else from the log2 buckets, capped by the exact max. Two histograms with the same
layout merge by adding (CPUs, intervals, backends). Values are integer nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LOG2_BUCKETS = 64  # bucket k holds values in [2^(k-1), 2^k) ns; bucket 0 holds 0


@dataclass(frozen=True, slots=True)
class Stats:
    """Summary of a histogram, all in nanoseconds (None when empty)."""

    count: int
    min_ns: int | None
    avg_ns: float | None
    p50_ns: int | None
    p90_ns: int | None
    p99_ns: int | None
    p999_ns: int | None
    max_ns: int | None
    overflows: int


class Histogram:
    """A mutable accumulator with a fixed layout; merge() adds another of the same layout."""

    __slots__ = ("bucket_ns", "nbuckets", "linear", "overflow", "log2", "count", "sum_ns", "min_ns", "max_ns")

    def __init__(self, bucket_ns: int = 1_000, limit_ns: int = 1_000_000) -> None:
        if bucket_ns <= 0 or limit_ns < bucket_ns or limit_ns % bucket_ns:
            raise ValueError("bucket_ns must be > 0 and divide limit_ns")
        self.bucket_ns = int(bucket_ns)
        self.nbuckets = int(limit_ns // bucket_ns)
        self.linear = np.zeros(self.nbuckets, dtype=np.int64)
        self.overflow = 0
        self.log2 = np.zeros(LOG2_BUCKETS, dtype=np.int64)
        self.count = 0
        self.sum_ns = 0
        self.min_ns: int | None = None
        self.max_ns: int | None = None

    @property
    def limit_ns(self) -> int:
        return self.bucket_ns * self.nbuckets

    def same_layout(self, other: Histogram) -> bool:
        return self.bucket_ns == other.bucket_ns and self.nbuckets == other.nbuckets

    def add(self, value_ns: int) -> None:
        """Record one value (negative values are clamped to 0: a clock that stepped back)."""
        v = max(int(value_ns), 0)
        i = v // self.bucket_ns
        if i < self.nbuckets:
            self.linear[i] += 1
        else:
            self.overflow += 1
        self.log2[min(v.bit_length(), LOG2_BUCKETS - 1)] += 1
        self.count += 1
        self.sum_ns += v
        self.min_ns = v if self.min_ns is None else min(self.min_ns, v)
        self.max_ns = v if self.max_ns is None else max(self.max_ns, v)

    def add_many(self, values_ns: np.ndarray) -> None:
        """Record many values at once (vectorised)."""
        v = np.maximum(np.asarray(values_ns, dtype=np.int64), 0)
        if v.size == 0:
            return
        idx = v // self.bucket_ns
        inside = idx < self.nbuckets
        self.linear += np.bincount(idx[inside], minlength=self.nbuckets)[: self.nbuckets]
        self.overflow += int(v.size - inside.sum())
        # bit_length of v: floor(log2(v)) + 1 for v > 0, 0 for v == 0.
        bits = np.zeros(v.shape, dtype=np.int64)
        pos = v > 0
        bits[pos] = np.floor(np.log2(v[pos].astype(np.float64))).astype(np.int64) + 1
        # float log2 can be off by one just below a power of two; correct it exactly.
        bits[pos] -= (np.left_shift(np.int64(1), bits[pos] - 1) > v[pos]).astype(np.int64)
        self.log2 += np.bincount(np.minimum(bits, LOG2_BUCKETS - 1), minlength=LOG2_BUCKETS)
        self.count += int(v.size)
        self.sum_ns += int(v.sum())
        lo, hi = int(v.min()), int(v.max())
        self.min_ns = lo if self.min_ns is None else min(self.min_ns, lo)
        self.max_ns = hi if self.max_ns is None else max(self.max_ns, hi)

    def add_buckets(self, linear: np.ndarray, overflow: int, log2: np.ndarray, count: int, sum_ns: int, min_ns: int | None, max_ns: int | None) -> None:
        """Add pre-bucketed counts (from an in-kernel map or a saved recording)."""
        self.linear += np.asarray(linear, dtype=np.int64)
        self.overflow += int(overflow)
        self.log2 += np.asarray(log2, dtype=np.int64)
        self.count += int(count)
        self.sum_ns += int(sum_ns)
        if min_ns is not None:
            self.min_ns = min_ns if self.min_ns is None else min(self.min_ns, min_ns)
        if max_ns is not None:
            self.max_ns = max_ns if self.max_ns is None else max(self.max_ns, max_ns)

    def merge(self, other: Histogram) -> Histogram:
        """Add another histogram of the same layout into this one; returns self."""
        if not self.same_layout(other):
            raise ValueError("cannot merge histograms with different bucket layouts")
        self.add_buckets(other.linear, other.overflow, other.log2, other.count, other.sum_ns, other.min_ns, other.max_ns)
        return self

    def copy(self) -> Histogram:
        out = Histogram(self.bucket_ns, self.limit_ns)
        return out.merge(self)

    def percentile(self, p: float) -> int | None:
        """Upper edge (ns) of the bucket holding the p-th percentile; None when empty."""
        if self.count == 0:
            return None
        if not 0 <= p <= 100:
            raise ValueError("percentile must be within 0..100")
        rank = max(1, int(np.ceil(p / 100.0 * self.count)))
        cum = np.cumsum(self.linear)
        if cum[-1] >= rank:
            i = int(np.searchsorted(cum, rank))
            edge = (i + 1) * self.bucket_ns
        else:
            cum2 = np.cumsum(self.log2)
            k = int(np.searchsorted(cum2, rank))
            edge = 1 << k if k > 0 else 1
        return min(edge, self.max_ns) if self.max_ns is not None else edge

    def stats(self) -> Stats:
        n = self.count
        return Stats(
            count=n,
            min_ns=self.min_ns,
            avg_ns=self.sum_ns / n if n else None,
            p50_ns=self.percentile(50),
            p90_ns=self.percentile(90),
            p99_ns=self.percentile(99),
            p999_ns=self.percentile(99.9),
            max_ns=self.max_ns,
            overflows=self.overflow,
        )

    def log2_rows(self) -> list[tuple[int, int, int]]:
        """(low_ns, high_ns, count) for the non-empty span of the log2 view, like bcc's -d."""
        nz = np.flatnonzero(self.log2)
        if nz.size == 0:
            return []
        out = []
        for k in range(int(nz[0]), int(nz[-1]) + 1):
            lo = 0 if k == 0 else 1 << (k - 1)
            hi = 0 if k == 0 else (1 << k) - 1
            out.append((lo, hi, int(self.log2[k])))
        return out

    def linear_rows(self) -> list[tuple[int, int]]:
        """(bucket lower edge ns, count) for non-empty linear buckets; overflow not included."""
        return [(int(i) * self.bucket_ns, int(self.linear[i])) for i in np.flatnonzero(self.linear)]

    def to_dict(self) -> dict[str, Any]:
        """JSON form: layout, sparse linear buckets, overflow, log2 buckets, exact sums."""
        return {
            "bucket_ns": self.bucket_ns,
            "limit_ns": self.limit_ns,
            "count": self.count,
            "sum_ns": self.sum_ns,
            "min_ns": self.min_ns,
            "max_ns": self.max_ns,
            "linear": {str(lo): n for lo, n in self.linear_rows()},
            "overflow": self.overflow,
            "log2": {str(k): int(c) for k, c in enumerate(self.log2) if c},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Histogram:  # parsed JSON: values of any type
        h = cls(int(d["bucket_ns"]), int(d["limit_ns"]))
        linear = np.zeros(h.nbuckets, dtype=np.int64)
        for lo, n in d.get("linear", {}).items():
            linear[int(lo) // h.bucket_ns] = int(n)
        log2 = np.zeros(LOG2_BUCKETS, dtype=np.int64)
        for k, n in d.get("log2", {}).items():
            log2[int(k)] = int(n)
        h.add_buckets(linear, int(d.get("overflow", 0)), log2, int(d["count"]), int(d["sum_ns"]), d.get("min_ns"), d.get("max_ns"))
        return h
