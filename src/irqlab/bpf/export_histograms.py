"""Cumulative Prometheus histograms from the BPF backend, for `irqlab export`.

outputs/prometheus.py takes providers: callables returning objects with name, help, labels,
histogram (its NamedHistogram). bpf/ may not import outputs/, so BpfHistogram has the same
fields and cli/export.py converts (or uses them as they are: the collector reads attributes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from irqlab.bpf.backend import BpfTracer
from irqlab.model.histogram import Histogram
from irqlab.model.trace_result import HistogramLayout, TraceResult

HELP = {
    "handler_duration": "Hard-IRQ and x86 system vector handler run time (irq:irq_handler_*, irq_vectors:*), in-kernel BPF.",
    "softirq_duration": "Softirq handler run time (irq:softirq_entry to exit), in-kernel BPF.",
    "softirq_latency": "Softirq raise-to-run latency (first raise of a clear pending bit to entry), in-kernel BPF.",
}


@dataclass(frozen=True, slots=True)
class BpfHistogram:
    """Field for field outputs.prometheus.NamedHistogram."""

    name: str
    help: str
    labels: dict[str, str]
    histogram: Histogram


class Intervals(Protocol):
    """What the provider reads: a BpfTracer, or tracer.lifecycle's Tracer of the BPF backend."""

    def snapshot(self) -> TraceResult: ...


class HistogramProvider:
    """Call it at each scrape: folds the interval since the last call into cumulative histograms.

    Keeps the tracer it was given (the caller owns its lifetime: `with open_tracer("bpf") as t`).
    Scrapes closer together than min_interval_s return the last totals without a map read.
    """

    def __init__(self, tracer: Intervals, min_interval_s: float = 1.0) -> None:
        self.tracer = tracer
        self.min_interval_s = min_interval_s
        self._last = 0.0
        self._totals: dict[tuple[str, tuple[tuple[str, str], ...]], Histogram] = {}

    def __call__(self) -> list[BpfHistogram]:
        now = time.monotonic()
        if now - self._last >= self.min_interval_s:
            self._last = now
            self.fold(self.tracer.snapshot())
        return [BpfHistogram(name, HELP[name], dict(labels), h) for (name, labels), h in sorted(self._totals.items(), key=lambda kv: kv[0])]

    def fold(self, r: TraceResult) -> None:
        """Add one interval's histograms (merged over CPUs) to the totals."""
        for h in r.hardirqs:
            label = str(h.key) if h.kind == "irq" else h.name
            self._add("handler_duration", (("irq", label), ("name", h.name)), h.merged("gross"))
        for h in r.softirqs:
            self._add("softirq_duration", (("vector", h.name),), h.merged("gross"))
            self._add("softirq_latency", (("vector", h.name),), h.merged("latency"))

    def _add(self, name: str, labels: tuple[tuple[str, str], ...], h: Histogram | None) -> None:
        if h is None or h.count == 0:
            return
        key = (name, labels)
        if key in self._totals:
            self._totals[key].merge(h)
        else:
            self._totals[key] = h.copy()


def histogram_provider(tracefs: Path | None = None, layout: HistogramLayout = HistogramLayout(),
                       ksoftirqd_pids: tuple[int, ...] = ()) -> tuple[BpfTracer, HistogramProvider]:
    """A started tracer and its provider; close the tracer (tracer.close()) when export stops."""
    tracer = BpfTracer(tracefs, layout, ksoftirqd_pids).__enter__()
    return tracer, HistogramProvider(tracer)
