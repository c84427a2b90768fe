"""The event loop: one heap ordered by (time, priority, sequence), integer nanoseconds.

As in SimPy (simpy/core.py), the sequence number breaks ties, so a run with the same seed
is the same run. Events are plain tuples and callbacks plain functions: no Event objects,
no processes, because the kernel model keeps its own state machines (generators per CPU
frame) and only needs "call f(arg) at t". Cancelling is done by the callee (a stale
version number), never by searching the heap.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

# Priorities at one instant: lower runs first. Hardware before kernel bookkeeping before
# the sampler, so a sample at t sees every event stamped t.
PRIO_HW = 0
PRIO_KERNEL = 1
PRIO_SAMPLE = 9


class Engine:
    """Run callbacks in time order until a horizon; `now` is the current time in ns."""

    __slots__ = ("now", "_heap", "_seq", "processed", "until", "inline")

    def __init__(self) -> None:
        self.now = 0
        self._heap: list[tuple[int, int, int, Callable[[Any], None], Any]] = []
        self._seq = 0
        self.processed = 0
        self.until = 0  # the horizon of the run in progress: nothing may happen at or after it
        # CPUs may finish work inline when quiet_until() holds (False: every segment through
        # the heap; the results are the same, tests/sim/test_fast_path.py compares them).
        self.inline = True

    def quiet_until(self, t_ns: int) -> bool:
        """True when no event is due at or before t_ns and t_ns is inside the current run.

        A caller that would otherwise schedule "call me at t_ns" may then move `now` to t_ns
        itself: no other event could have run in between, so the order of events (and the
        result of the run) is the same as through the heap.
        """
        heap = self._heap
        return t_ns < self.until and (not heap or heap[0][0] > t_ns)

    def horizon_ns(self) -> int:
        """The first instant at which something may happen: the next queued event, or the end of the run.

        quiet_until(t) is t < horizon_ns(); a caller that checks several instants in a row,
        queueing nothing in between, asks once.
        """
        heap = self._heap
        return heap[0][0] if heap and heap[0][0] < self.until else self.until

    def at(self, t_ns: int, fn: Callable[[Any], None], arg: Any = None, prio: int = PRIO_KERNEL) -> None:
        """Call fn(arg) at t_ns (never before now)."""
        self._seq += 1
        heapq.heappush(self._heap, (t_ns if t_ns > self.now else self.now, prio, self._seq, fn, arg))

    def run(self, until_ns: int) -> None:
        """Process every event stamped before until_ns; now ends at until_ns."""
        heap = self._heap
        pop = heapq.heappop
        self.until = until_ns
        n = 0
        while heap and heap[0][0] < until_ns:
            t, _, _, fn, arg = pop(heap)
            self.now = t
            fn(arg)
            n += 1
        self.processed += n
        self.now = until_ns

    def pending(self) -> int:
        return len(self._heap)
