"""The latency probe run continuously in windows, folded into cumulative per-CPU histograms.

For `irqlab export --latency-probe`: a thread runs probe windows back to back (each a normal
`runner.measure` of its own processes) and adds every window's samples to one Histogram per
CPU, which the exporter reads at scrape time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from irqlab.model.histogram import Histogram
from irqlab.probe.runner import measure


class ContinuousProbe:
    """Background probe windows; histograms() returns copies of the cumulative totals."""

    def __init__(self, cpus: Sequence[int], interval_ns: int = 1_000_000, window_s: float = 5.0,
                 priority: int = 95, bucket_ns: int = 1_000, limit_ns: int = 10_000_000) -> None:
        self.cpus = tuple(cpus)
        self.interval_ns = interval_ns
        self.loops = max(1, int(window_s * 1e9 // interval_ns))
        self.priority = priority
        self._hists = {cpu: Histogram(bucket_ns, limit_ns) for cpu in self.cpus}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        self.windows = 0

    def start(self) -> ContinuousProbe:
        self._thread = threading.Thread(target=self._run, name="irqlab-latency-probe", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                run = measure(self.cpus, self.interval_ns, self.loops, priority=self.priority)
            except Exception as exc:  # a daemon thread: report through .error, keep the exporter up
                self.error = str(exc)
                self._stop.wait(10)
                continue
            with self._lock:
                for cpu_run in run.cpus:
                    self._hists[cpu_run.cpu].add_many(cpu_run.samples_ns)
                self.windows += 1

    def histograms(self) -> dict[int, Histogram]:
        with self._lock:
            return {cpu: h.copy() for cpu, h in self._hists.items()}

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask for no more windows; the running one finishes (its processes end with it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
