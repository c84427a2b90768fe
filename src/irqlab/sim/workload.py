"""Arrival processes and cost distributions, drawn from one seeded numpy Generator.

Arrivals are lazy: a device's stream is a sorted list of instants drawn in chunks, and the
model asks "how many arrived by t" (a ring filled while the line was masked) or "when is
the next one" (only while the line can interrupt). A NIC polled by NAPI therefore costs no
heap event per packet, which is what makes million-packet-per-second scenarios cheap.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

import numpy as np

from irqlab.sim.scenario import Arrival, Cost

NEVER = 1 << 62
CHUNK = 4096


def rate_segments(a: Arrival, horizon_ns: int) -> Iterator[tuple[int, int, float]]:
    """(start_ns, end_ns, rate_per_s) pieces of a piecewise-constant rate, up to horizon_ns."""
    s = lambda x: int(x * 1e9)  # noqa: E731
    if a.process in ("poisson", "periodic"):
        yield 0, horizon_ns, a.rate
    elif a.process == "storm":
        end = s(a.end_s) if a.end_s > a.start_s else horizon_ns
        yield 0, s(a.start_s), a.rate
        yield s(a.start_s), end, a.rate_to
        yield end, horizon_ns, a.rate
    elif a.process == "ramp":
        start, end = s(a.start_s), (s(a.end_s) if a.end_s > a.start_s else horizon_ns)
        yield 0, start, a.rate
        steps = 100
        for k in range(steps):
            lo, hi = start + (end - start) * k // steps, start + (end - start) * (k + 1) // steps
            yield lo, hi, a.rate + (a.rate_to - a.rate) * (k + 0.5) / steps
        yield end, horizon_ns, a.rate_to
    elif a.process == "bursts":
        on, off, t = s(a.on_ms / 1e3), s(a.off_ms / 1e3), 0
        while t < horizon_ns:
            yield t, t + on, a.rate
            yield t + on, t + on + off, 0.0
            t += on + off
    elif a.process == "replay":
        edges = [s(x) for x in a.times_s] + [horizon_ns]
        yield 0, edges[0], 0.0
        for k, rate in enumerate(a.rates):
            yield edges[k], max(edges[k], edges[k + 1]), rate


class ArrivalStream:
    """Sorted arrival instants of one device, consumed from the front.

    `buf[pos:]` are the instants drawn and not yet consumed: sim/fastpath.py reads ahead in
    them and consumes what it used with advance_to(). Only this class changes them.
    """

    __slots__ = ("_rng", "_segments", "_seg", "_t", "_periodic", "buf", "pos", "_done", "next_t")

    def __init__(self, arrival: Arrival, horizon_ns: int, rng: np.random.Generator) -> None:
        self._rng = rng
        self._segments = rate_segments(arrival, horizon_ns)
        self._seg: tuple[int, int, float] | None = None
        self._t = 0
        self._periodic = arrival.process == "periodic"
        self.buf: list[int] = []
        self.pos = 0
        self._done = False
        # The next unconsumed instant, so callers can skip take_until() when nothing is due;
        # -1 when the buffer is exhausted and the next chunk not drawn yet.
        self.next_t = -1

    def _refill(self) -> None:
        """Draw the next chunk of instants (memoryless across segment edges, so exact)."""
        self.buf, self.pos = self.buf[self.pos :], 0
        while len(self.buf) < CHUNK and not self._done:
            if self._seg is None or self._t >= self._seg[1]:
                self._seg = next(self._segments, None)
                if self._seg is None:
                    self._done = True
                    break
                self._t = max(self._t, self._seg[0])
            _, end, rate = self._seg
            if rate <= 0:
                self._t = end
                continue
            gap = 1e9 / rate
            if self._periodic:
                times = self._t + gap * np.arange(1, CHUNK + 1)
            else:
                times = self._t + np.cumsum(self._rng.exponential(gap, CHUNK))
            times = times[times < end]
            if times.size < CHUNK:
                self._t = end
            else:
                self._t = float(times[-1])
            self.buf.extend(times.astype(np.int64).tolist())

    def peek(self) -> int:
        """The next unconsumed arrival instant (NEVER when the stream has ended)."""
        if self.pos >= len(self.buf):
            self._refill()
            if self.pos >= len(self.buf):
                self.next_t = NEVER
                return NEVER
        self.next_t = self.buf[self.pos]
        return self.next_t

    def advance_to(self, j: int) -> None:
        """Consume buf[pos:j] (counted by the caller); j must be inside the buffer."""
        self.pos = j
        self.next_t = self.buf[j]

    def take_until(self, t_ns: int) -> int:
        """Consume and count every arrival at or before t_ns."""
        buf, i = self.buf, self.pos
        if i + 1 < len(buf):
            if buf[i] > t_ns:
                self.next_t = buf[i]
                return 0  # the common case: nothing new since the last look
            if buf[i + 1] > t_ns:
                self.pos = i + 1  # the next common one: exactly one new arrival
                self.next_t = buf[i + 1]
                return 1
        n = 0
        while True:
            if i >= len(buf):
                self._refill()
                buf, i = self.buf, self.pos
                if i >= len(buf):
                    self.next_t = NEVER
                    return n
            j = bisect.bisect_right(buf, t_ns, i)
            n += j - i
            self.pos = i = j
            if j < len(buf):
                self.next_t = buf[j]
                return n


class CostSampler:
    """Integer ns costs drawn from a Cost, in chunks.

    `buf[pos:]` are the costs drawn and not yet used (sim/fastpath.py reads ahead in them and
    takes what it used with skip()); `const` is the cost when it does not vary.
    """

    __slots__ = ("cost", "_rng", "buf", "pos", "const")

    def __init__(self, cost: Cost, rng: np.random.Generator) -> None:
        self.cost = cost
        self._rng = rng
        self.buf: list[int] = []
        self.pos = 0
        self.const = cost.mean_ns if cost.dist == "const" else None

    def draw(self) -> int:
        if self.const is not None:
            return self.const
        if self.pos >= len(self.buf):
            self.buf, self.pos = self._chunk(), 0
        self.pos += 1
        return self.buf[self.pos - 1]

    def skip(self, n: int) -> None:
        """Take the next n buffered costs as drawn (the caller read them from buf[pos:])."""
        self.pos += n

    def total(self, n: int) -> int:
        """The cost of n independent draws (a NAPI poll of n packets)."""
        if self.const is not None:
            return self.const * n
        return sum(self.draw() for _ in range(n))

    def _chunk(self) -> list[int]:
        c, rng = self.cost, self._rng
        if c.dist == "exp":
            v = rng.exponential(c.mean_ns, CHUNK)
        elif c.dist == "uniform":
            v = rng.uniform(c.mean_ns - c.spread_ns, c.mean_ns + c.spread_ns, CHUNK)
        else:  # lognormal with the given mean and standard deviation
            sd = max(c.spread_ns, 1)
            sigma2 = np.log1p((sd / max(c.mean_ns, 1)) ** 2)
            v = rng.lognormal(np.log(max(c.mean_ns, 1)) - sigma2 / 2, np.sqrt(sigma2), CHUNK)
        return np.maximum(v, 0).astype(np.int64).tolist()
