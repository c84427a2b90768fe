"""Prometheus metrics: a custom Collector that builds metric families at scrape time.

The collector never reads the OS: it calls an injected `scrape()` (cli/export.py wires the
sources) that returns the latest Snapshot and how each source fared, and optional histogram
providers (tracing, BPF, the latency probe) that return cumulative Histograms. It registers
in a registry the caller passes in; there is no global state.

Counters stay monotonic although the kernel's per-CPU counts are 32-bit and wrap (kstat_irqs
and kstat.softirqs[] are `unsigned int`, include/linux/kernel_stat.h, v6.18): the collector
keeps the previous reading and adds deltas modulo 2^32 (Wrap32), as Prometheus' rate() needs.
The `other` row of the top-K cut adds only the deltas of the rows outside the cut, so it
never goes backwards when an IRQ moves in or out of the top K.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from irqlab.analysis.delta import HALF, wrap_delta
from irqlab.analysis.storm_levels import storm_levels
from irqlab.analysis.thresholds import Thresholds
from irqlab.cpulist import format_cpulist
from irqlab.model.histogram import Histogram
from irqlab.model.snapshot import Interrupts, IrqLine, Snapshot, SourceStatus
from irqlab.units import NS_PER_S, printable

# --- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    """What scrape() returns: the snapshot (parts None where a source failed) and statuses."""

    snapshot: Snapshot
    statuses: tuple[SourceStatus, ...]


@dataclass(frozen=True, slots=True)
class NamedHistogram:
    """A cumulative histogram from a provider: irqlab_<name>_seconds{labels}."""

    name: str  # "handler_duration", "softirq_latency", "timer_latency"
    help: str
    labels: dict[str, str]
    histogram: Histogram


HistogramProvider = Callable[[], Iterable[NamedHistogram]]

# Histogram names providers use (irqlab_<name>_seconds), so that rules and dashboards can rely
# on them before the tracing, BPF and probe engineers' providers exist.
HISTOGRAMS: dict[str, str] = {
    "handler_duration": "Hard-IRQ handler run time (irq:irq_handler_entry to exit).",
    "softirq_duration": "Softirq handler run time (irq:softirq_entry to exit).",
    "softirq_latency": "Softirq raise-to-run latency (irq:softirq_raise to softirq_entry).",
    "timer_latency": "Timer wake-up latency of the latency probe.",
}


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """Cardinality controls; per-CPU IRQ and softirq series are off by default."""

    per_cpu: bool = False
    top_k: int = 20
    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None
    rollup_devices: bool = False
    thresholds: Thresholds = field(default_factory=Thresholds)


# --- device roll-up -----------------------------------------------------------------------

# Queue-suffix patterns of multi-queue drivers; group 1 is the device. Order matters.
DEVICE_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^(.+?)[-_](?:TxRx|txrx|rx|tx|Rx|Tx|combined|fp|q|queue|input|output)[-_.]?\d+$"),  # eth0-TxRx-3, virtio2-input.0
    re.compile(r"^(nvme\d+)q\d+$"),  # nvme0q3
    re.compile(r"^(virtio\d+)-.+$"),  # virtio3-rx, virtio0-config: virtioN-<virtqueue name>
    re.compile(r"^(.+?)@pci:.*$"),  # mlx5_comp3@pci:0000:3b:00.0 -> mlx5_comp3 (then below)
    re.compile(r"^(mlx5)_comp\d+$"),
)


def device_of(line: IrqLine) -> str:
    """The device an IRQ belongs to: eth0 for eth0-TxRx-3; "" for architecture rows."""
    if not line.numbered:
        return ""
    name = line.actions[0] if line.actions else line.description or line.irq
    for _ in range(2):  # two passes: "mlx5_comp3@pci:..." -> "mlx5_comp3" -> "mlx5"
        for pattern in DEVICE_PATTERNS:
            m = pattern.match(name)
            if m:
                name = m.group(1)
                break
    return name


# --- monotonic counters over 32-bit wraps --------------------------------------------------


class Wrap32:
    """Monotonic 64-bit counters from rows of wrapping 32-bit counters, matched by row key."""

    def __init__(self) -> None:
        self.keys: tuple = ()
        self.cols: tuple = ()
        self.raw: np.ndarray | None = None
        self.acc: np.ndarray | None = None
        self.delta: np.ndarray | None = None  # last update's increments (0 for new rows)

    def update(self, keys: tuple, cols: tuple, raw: np.ndarray) -> np.ndarray:
        """Accumulated values for raw (rows x cols); rows new since last time start at raw."""
        raw = np.asarray(raw, dtype=np.int64)
        if self.raw is None or cols != self.cols:
            acc, delta = raw.copy(), np.zeros_like(raw)
        else:
            if keys == self.keys:
                have = np.ones(len(keys), dtype=bool)
                old_raw, old_acc = self.raw, self.acc
            else:
                pos = {k: i for i, k in enumerate(self.keys)}
                idx = np.array([pos.get(k, -1) for k in keys], dtype=np.intp)
                have = idx >= 0
                old_raw = np.where(have[:, None], self.raw[np.maximum(idx, 0)], raw) if len(keys) else raw
                old_acc = np.where(have[:, None], self.acc[np.maximum(idx, 0)], raw) if len(keys) else raw
            delta = wrap_delta(old_raw, raw)
            # Far backwards is a reset (re-allocated IRQ, CPU hot-added again): count from raw.
            delta = np.where(delta >= HALF, raw, delta)
            delta[~have] = 0
            acc = np.where(have[:, None], old_acc + delta, raw)
        self.keys, self.cols, self.raw, self.acc, self.delta = keys, cols, raw, acc, delta
        return acc


# --- metric specs: data the collector loops over ----------------------------------------

SOFTNET_METRICS: tuple[tuple[str, str, str], ...] = (
    ("processed", "irqlab_softnet_processed_total", "Packets processed by net_rx_action (softnet_stat column 1)."),
    ("dropped", "irqlab_softnet_dropped_total", "Packets dropped because the per-CPU backlog was full (softnet_stat column 2)."),
    ("time_squeeze", "irqlab_softnet_time_squeeze_total", "Times net_rx_action ran out of budget or time with work left (softnet_stat column 3)."),
)
CPU_MODES: tuple[str, ...] = ("irq", "softirq")  # /proc/stat columns (0 without IRQ time accounting)


class IrqlabCollector:
    """prometheus_client custom collector; register it in an injected CollectorRegistry."""

    def __init__(
        self,
        scrape: Callable[[], ScrapeResult],
        options: ExportOptions | None = None,
        histogram_providers: Sequence[HistogramProvider] = (),
    ) -> None:
        self._scrape = scrape
        self.options = options or ExportOptions()
        self._providers = tuple(histogram_providers)
        self._lock = threading.Lock()  # scrapes may come from several server threads
        self._irq = Wrap32()
        self._irq_single = Wrap32()
        self._soft = Wrap32()
        self._softnet = Wrap32()
        self._other: np.ndarray | None = None  # accumulated `other` row (per CPU)
        self._other_single = 0  # accumulated `other` of rows with one value (ERR, MIS)
        self._prev_taken_ns: int | None = None

    def describe(self) -> list:
        """No describe: the registry must not call collect() at registration time."""
        return []

    def collect(self):
        with self._lock:
            result = self._scrape()
            families = list(self._families(result))
        return families

    # --- assembly ------------------------------------------------------------------------

    def _families(self, result: ScrapeResult):
        from prometheus_client.core import GaugeMetricFamily

        snap = result.snapshot
        dt_s = None
        if self._prev_taken_ns is not None and snap.taken_ns > self._prev_taken_ns:
            dt_s = (snap.taken_ns - self._prev_taken_ns) / NS_PER_S
        self._prev_taken_ns = snap.taken_ns
        if snap.interrupts is not None:
            yield from self._interrupt_families(snap.interrupts, dt_s)
        if snap.softirqs is not None:
            yield from self._softirq_families(snap)
        yield from self._cpu_families(snap)
        yield from self._histogram_families()
        dur = GaugeMetricFamily("irqlab_scrape_duration_seconds", "Time spent reading each source in this scrape.", labels=["source"])
        ok = GaugeMetricFamily("irqlab_scrape_success", "1 if the source was read in this scrape, 0 if it failed.", labels=["source"])
        for st in result.statuses:
            dur.add_metric([st.source], st.duration_s)
            ok.add_metric([st.source], 1.0 if st.success else 0.0)
        yield dur
        yield ok

    def _selected(self, lines: tuple[IrqLine, ...]) -> np.ndarray:
        opt = self.options
        keep = np.ones(len(lines), dtype=bool)
        for i, line in enumerate(lines):
            text = (line.irq, line.name)
            if opt.include is not None and not any(opt.include.search(s) for s in text):
                keep[i] = False
            elif opt.exclude is not None and any(opt.exclude.search(s) for s in text):
                keep[i] = False
        return keep

    def _irq_acc(self, irq: Interrupts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Accumulated per-CPU counts (rows x cpus), per-row increments since the last scrape,
        and accumulated per-row totals (rows with one value, like ERR, from that value)."""
        # Keyed by (key, name): a re-allocated IRQ number is a new series, not a reset.
        keys = tuple((line.key, line.name) for line in irq.lines)
        acc = self._irq.update(keys, irq.cpus, irq.counts)
        per_cpu = np.array([line.per_cpu for line in irq.lines], dtype=bool)
        single = self._irq_single.update(keys, (0,), irq.totals[:, None])
        acc = np.where(per_cpu[:, None], acc, 0)
        delta = np.where(per_cpu, self._irq.delta.sum(axis=1), self._irq_single.delta[:, 0])
        return acc, delta, np.where(per_cpu, acc.sum(axis=1), single[:, 0])

    def _interrupt_families(self, irq: Interrupts, dt_s: float | None):
        from prometheus_client.core import CounterMetricFamily

        opt = self.options
        acc, delta, totals = self._irq_acc(irq)
        keep = self._selected(irq.lines)
        groups = self._groups(irq.lines, keep)  # [(labels, row indices)]
        g_total = np.array([totals[rows].sum() for _, rows in groups], dtype=np.int64)
        g_delta = np.array([delta[rows].sum() for _, rows in groups], dtype=np.int64)
        # Rank by the last interval's increments (by totals on the first scrape).
        order = np.lexsort((-g_total, -g_delta)) if dt_s else np.argsort(-g_total, kind="stable")
        top = order[: opt.top_k]
        rest = order[opt.top_k :]
        labels = ["irq", "name", "device"] + (["cpu"] if opt.per_cpu else [])
        fam = CounterMetricFamily("irqlab_interrupts_total", "Hard interrupts handled, from /proc/interrupts (top-K rows, the rest summed as irq=\"other\").", labels=labels)
        cpus = [str(c) for c in irq.cpus]
        for g in sorted(top, key=lambda g: groups[g][0]):
            lab, rows = groups[g]
            if opt.per_cpu:
                per = acc[rows].sum(axis=0)
                for c, v in zip(cpus, per):
                    fam.add_metric([*lab, c], float(v))
            else:
                fam.add_metric(list(lab), float(g_total[g]))
        self._update_other(irq, acc, totals, [r for g in rest for r in groups[g][1]])
        if opt.per_cpu:
            for c, v in zip(cpus, self._other):
                fam.add_metric(["other", "other", "", c], float(v))
        else:
            fam.add_metric(["other", "other", ""], float(self._other.sum() + self._other_single))
        yield fam
        if dt_s:
            yield from self._storm_families(groups, top, g_delta / dt_s)

    def _update_other(self, irq: Interrupts, acc: np.ndarray, totals: np.ndarray, rest: list[int]) -> None:
        """Add this scrape's increments of the rows outside the cut to the `other` row."""
        per_cpu = np.array([r for r in rest if irq.lines[r].per_cpu], dtype=np.intp)
        single = np.array([r for r in rest if not irq.lines[r].per_cpu], dtype=np.intp)
        if self._other is None or len(self._other) != len(irq.cpus):
            self._other = acc[per_cpu].sum(axis=0)
            self._other_single = int(totals[single].sum())
        else:
            self._other = self._other + self._irq.delta[per_cpu].sum(axis=0)
            self._other_single += int(self._irq_single.delta[single, 0].sum())

    def _storm_families(self, groups, top, rate):
        from prometheus_client.core import GaugeMetricFamily

        levels = storm_levels(rate, self.options.thresholds)
        state = GaugeMetricFamily(
            "irqlab_storm_level",
            "Interrupt storm state of an exported IRQ between the last two scrapes: 0 none, 1 storm (rate >= warn threshold), 2 critical.",
            labels=["irq", "name", "device"],
        )
        for g in sorted(top, key=lambda g: groups[g][0]):
            state.add_metric(list(groups[g][0]), float(levels[g]))
        active = GaugeMetricFamily("irqlab_storms_active", "Exported IRQ rows (after include/exclude and roll-up; not only the top K) in a storm between the last two scrapes.")
        active.add_metric([], float((levels > 0).sum()))
        thr = GaugeMetricFamily("irqlab_storm_threshold_per_second", "Interrupts per second of one IRQ that count as a storm.", labels=["level"])
        thr.add_metric(["warning"], self.options.thresholds.storm_warn_rate)
        thr.add_metric(["critical"], self.options.thresholds.storm_crit_rate)
        yield from (state, active, thr)

    def _groups(self, lines: tuple[IrqLine, ...], keep: np.ndarray) -> list[tuple[tuple[str, str, str], list[int]]]:
        """Label tuple and member rows of each exported row (one row, or a device roll-up)."""
        if not self.options.rollup_devices:
            return [(_labels(line.irq, line.name, device_of(line)), [i]) for i, line in enumerate(lines) if keep[i]]
        by_dev: dict[str, list[int]] = {}
        out: list[tuple[tuple[str, str, str], list[int]]] = []
        for i, line in enumerate(lines):
            if not keep[i]:
                continue
            dev = device_of(line)
            if dev:
                by_dev.setdefault(dev, []).append(i)
            else:
                out.append((_labels(line.irq, line.name, ""), [i]))
        for dev, rows in by_dev.items():
            ids = format_cpulist(int(lines[r].irq) for r in rows) if len(rows) > 1 else lines[rows[0]].irq
            out.append((_labels(ids, dev if len(rows) > 1 else lines[rows[0]].name, dev), rows))
        return out

    def _softirq_families(self, snap: Snapshot):
        from prometheus_client.core import CounterMetricFamily

        s = snap.softirqs
        acc = self._soft.update(s.vectors, s.cpus, s.counts)
        labels = ["vector"] + (["cpu"] if self.options.per_cpu else [])
        fam = CounterMetricFamily("irqlab_softirqs_total", "Softirqs run, per vector, from /proc/softirqs.", labels=labels)
        for i, vec in enumerate(map(printable, s.vectors)):
            if self.options.per_cpu:
                for c, v in zip(s.cpus, acc[i]):
                    fam.add_metric([vec, str(c)], float(v))
            else:
                fam.add_metric([vec], float(acc[i].sum()))
        yield fam

    def _cpu_families(self, snap: Snapshot):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        ks = [t for t in snap.tasks if t.kind == "ksoftirqd" and t.cpu is not None]
        if ks:
            fam = CounterMetricFamily("irqlab_ksoftirqd_cpu_seconds_total", "CPU time used by ksoftirqd/N (schedstat run time, else utime+stime ticks).", labels=["cpu"])
            for t in sorted(ks, key=lambda t: t.cpu):
                sec = t.run_ns / NS_PER_S if t.run_ns is not None else t.cpu_ticks / snap.host.clk_tck
                fam.add_metric([str(t.cpu)], sec)
            yield fam
        if snap.softnet is not None:
            rows = sorted(snap.softnet.rows, key=lambda r: r.cpu)
            raw = np.array([[getattr(r, f) for f, _, _ in SOFTNET_METRICS] for r in rows], dtype=np.int64).reshape(len(rows), len(SOFTNET_METRICS))
            acc = self._softnet.update(tuple(r.cpu for r in rows), tuple(f for f, _, _ in SOFTNET_METRICS), raw)
            for j, (_, name, help_text) in enumerate(SOFTNET_METRICS):
                fam = CounterMetricFamily(name, help_text, labels=["cpu"])
                for i, r in enumerate(rows):
                    fam.add_metric([str(r.cpu)], float(acc[i, j]))
                yield fam
            backlog = [(r.cpu, r.backlog_len) for r in rows if r.backlog_len is not None]
            if backlog:
                g = GaugeMetricFamily("irqlab_softnet_backlog_packets", "Packets queued in the per-CPU backlog (softnet_stat, Linux >= 5.10).", labels=["cpu"])
                for cpu, n in backlog:
                    g.add_metric([str(cpu)], float(n))
                yield g
        if snap.stat is not None:
            st = snap.stat
            fam = CounterMetricFamily("irqlab_cpu_seconds_total", "CPU time in hard-IRQ and softirq context from /proc/stat (0 without CONFIG_IRQ_TIME_ACCOUNTING).", labels=["cpu", "mode"])
            cols = [st.column(m) for m in CPU_MODES]
            for i, cpu in enumerate(st.cpus):
                for mode, col in zip(CPU_MODES, cols):
                    if st.times[i, col] >= 0:
                        fam.add_metric([str(cpu), mode], st.times[i, col] / snap.host.clk_tck)
            yield fam

    def _histogram_families(self):
        from prometheus_client.core import HistogramMetricFamily

        by_name: dict[str, tuple[str, list[NamedHistogram]]] = {}
        for provider in self._providers:
            for nh in provider():
                by_name.setdefault(nh.name, (nh.help, []))[1].append(nh)
        for name, (help_text, items) in sorted(by_name.items()):
            labels = sorted({k for nh in items for k in nh.labels})
            fam = HistogramMetricFamily(f"irqlab_{name}_seconds", help_text, labels=labels)
            for nh in items:
                values = [printable(nh.labels.get(k, "")) for k in labels]
                fam.add_metric(values, prometheus_buckets(nh.histogram), nh.histogram.sum_ns / NS_PER_S)
            yield fam


def _labels(*values: str) -> tuple[str, ...]:
    """Label values taken from the machine, safe to show.

    The text format allows any UTF-8 in a label value and escapes only backslash, quote and
    newline (prometheus_client does exactly that), so an ESC sequence in an IRQ's action name
    would reach whoever reads a scrape in a terminal. C0/C1 controls, DEL and other
    non-printing characters become `\\xNN` text (units.printable); printable names pass unchanged.
    """
    return tuple(printable(v) for v in values)


def prometheus_buckets(h: Histogram) -> list[tuple[str, float]]:
    """Cumulative (le seconds, count) from the log2 buckets: bucket k holds [2^(k-1), 2^k) ns."""
    nz = np.flatnonzero(h.log2)
    out: list[tuple[str, float]] = []
    if nz.size:
        cum = np.cumsum(h.log2)
        for k in range(int(nz[0]), int(nz[-1]) + 1):
            # Values in bucket k are < 2^k ns, so "le 2^k ns" holds them (k=0 holds only 0).
            out.append((_float_text((1 << k) / NS_PER_S if k else 0.0), float(cum[k])))
    out.append(("+Inf", float(h.count)))
    return out


def _float_text(x: float) -> str:
    return repr(float(x))
