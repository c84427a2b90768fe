"""Plots of a recording's rates (matplotlib, Agg), each returned as a base64 PNG.

Input is a Series: the per-interval numbers pulled out of a list of Rates once, so that each
plot function is a few lines. Storm intervals are shaded on every time plot.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np

from irqlab.analysis.delta import Rates
from irqlab.model.histogram import Histogram

TOP_LINES = 8  # lines per time plot: more are unreadable
HEAT_ROWS = 20  # IRQ rows of the IRQ x CPU heat map


@dataclass(frozen=True, eq=False, slots=True)
class Series:
    """Per-interval values of a recording; x is seconds since the first sample."""

    x_s: np.ndarray  # (n,) end of each interval
    width_s: np.ndarray  # (n,) length of each interval
    cpus: tuple[int, ...]  # union of the CPUs seen
    cpu_irq_rate: np.ndarray  # (cpus, n) all hard IRQs per CPU, per second; NaN where absent
    irq_names: tuple[str, ...]  # "41 virtio3-rx", "LOC" (rows of irq_rate)
    irq_rate: np.ndarray  # (irqs, n) total per IRQ row
    irq_cpu_mean: np.ndarray  # (irqs, cpus) mean rate per IRQ and CPU over the recording
    vectors: tuple[str, ...]
    softirq_rate: np.ndarray  # (vectors, n)
    ksoftirqd_pct: np.ndarray  # (cpus, n)
    drops: np.ndarray  # (n,) softnet drops/s, all CPUs
    squeeze: np.ndarray  # (n,) softnet time_squeeze/s, all CPUs
    storm: np.ndarray  # (n,) bool: some IRQ above the storm threshold in this interval


def _label(line) -> str:
    return f"{line.irq} {line.name}" if line.numbered else line.irq


def build_series(rates: list[Rates], storm: np.ndarray) -> Series:
    """Pull the plotted numbers out of consecutive Rates."""
    n = len(rates)
    t0 = rates[0].before.taken_ns
    cpus = tuple(sorted({c for r in rates if r.interrupts for c in r.interrupts.cpus} | {c for r in rates if r.softirqs for c in r.softirqs.cpus}))
    col = {c: i for i, c in enumerate(cpus)}
    cpu_irq = np.full((len(cpus), n), np.nan)
    irq_idx: dict[str, int] = {}
    irq_rows: list[np.ndarray] = []
    irq_cpu_sum: list[np.ndarray] = []
    vectors: dict[str, np.ndarray] = {}
    ks = np.full((len(cpus), n), np.nan)
    drops, squeeze = np.full(n, np.nan), np.full(n, np.nan)
    for j, r in enumerate(rates):
        if r.interrupts is not None:
            ir = r.interrupts
            idx = np.array([col[c] for c in ir.cpus], dtype=np.intp)
            cpu_irq[idx, j] = ir.cpu_rate()
            for k, line in enumerate(ir.lines):
                name = _label(line)
                if name not in irq_idx:
                    irq_idx[name] = len(irq_rows)
                    irq_rows.append(np.full(n, np.nan))
                    irq_cpu_sum.append(np.zeros(len(cpus)))
                irq_rows[irq_idx[name]][j] = ir.total_rate[k]
                irq_cpu_sum[irq_idx[name]][idx] += np.nan_to_num(ir.rate[k])
        if r.softirqs is not None:
            for k, v in enumerate(r.softirqs.vectors):
                vectors.setdefault(v, np.full(n, np.nan))[j] = np.nansum(r.softirqs.rate[k])
        for cpu, pct in r.ksoftirqd_pct().items():
            if cpu in col:
                ks[col[cpu], j] = pct
        if r.softnet is not None:
            drops[j] = np.nansum(r.softnet.field("dropped"))
            squeeze[j] = np.nansum(r.softnet.field("time_squeeze"))
    return Series(
        x_s=np.array([(r.after.taken_ns - t0) / 1e9 for r in rates]),
        width_s=np.array([r.interval_s for r in rates]),
        cpus=cpus,
        cpu_irq_rate=cpu_irq,
        irq_names=tuple(irq_idx),
        irq_rate=np.array(irq_rows).reshape(len(irq_rows), n),
        irq_cpu_mean=np.array(irq_cpu_sum).reshape(len(irq_rows), len(cpus)) / max(n, 1),
        vectors=tuple(vectors),
        softirq_rate=np.array(list(vectors.values())).reshape(len(vectors), n),
        ksoftirqd_pct=ks,
        drops=drops,
        squeeze=squeeze,
        storm=storm,
    )


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _figure(title: str, height: float = 3.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, height))
    ax.set_title(title, fontsize=11)
    return fig, ax


def _shade(ax, s: Series) -> None:
    for j in np.flatnonzero(s.storm):
        ax.axvspan(s.x_s[j] - s.width_s[j], s.x_s[j], color="tab:red", alpha=0.15, lw=0)


def _lines(title: str, ylabel: str, s: Series, names, rows: np.ndarray) -> str:
    fig, ax = _figure(title)
    order = np.argsort(-np.nan_to_num(np.nanmax(rows, axis=1, initial=0) if rows.size else np.zeros(0)))[:TOP_LINES]
    for i in order:
        ax.plot(s.x_s, rows[i], marker="." if len(s.x_s) < 30 else None, label=str(names[i]))
    _shade(ax, s)
    ax.set_xlabel("seconds since the first sample")
    ax.set_ylabel(ylabel)
    if len(order):
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(alpha=0.3)
    return _png(fig)


def heat_cpu_time(s: Series) -> str:
    """CPU x time heat map of hard-IRQ rate."""
    fig, ax = _figure("hard interrupts per second, by CPU over time", 1.5 + min(len(s.cpus), 64) * 0.12)
    edges = np.concatenate([[s.x_s[0] - s.width_s[0]], s.x_s])
    mesh = ax.pcolormesh(edges, np.arange(len(s.cpus) + 1), np.nan_to_num(s.cpu_irq_rate), shading="flat", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="interrupts/s")
    ax.set_xlabel("seconds since the first sample")
    ax.set_ylabel("CPU")
    _tick_cpus(ax, s.cpus, axis="y")
    _shade(ax, s)
    return _png(fig)


def heat_irq_cpu(s: Series) -> str:
    """IRQ x CPU heat map of mean rates over the recording (busiest rows)."""
    mean = np.nansum(s.irq_cpu_mean, axis=1)
    rows = np.argsort(-mean)[:HEAT_ROWS]
    fig, ax = _figure("mean interrupts per second, busiest IRQs by CPU", 1.5 + len(rows) * 0.25)
    mesh = ax.pcolormesh(s.irq_cpu_mean[rows], cmap="magma")
    fig.colorbar(mesh, ax=ax, label="interrupts/s")
    ax.set_yticks(np.arange(len(rows)) + 0.5, [s.irq_names[i] for i in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("CPU")
    _tick_cpus(ax, s.cpus, axis="x")
    return _png(fig)


def _tick_cpus(ax, cpus: tuple[int, ...], axis: str) -> None:
    step = max(1, len(cpus) // 16)
    pos = np.arange(0, len(cpus), step)
    labels = [str(cpus[i]) for i in pos]
    (ax.set_yticks if axis == "y" else ax.set_xticks)(pos + 0.5, labels, fontsize=8)


def top_irqs(s: Series) -> str:
    return _lines(f"top {TOP_LINES} IRQs (all CPUs)", "interrupts/s", s, s.irq_names, s.irq_rate)


def softirq_vectors(s: Series) -> str:
    return _lines("softirq vectors (all CPUs)", "softirqs/s", s, s.vectors, s.softirq_rate)


def ksoftirqd(s: Series) -> str:
    return _lines("ksoftirqd CPU use", "% of one CPU", s, [f"ksoftirqd/{c}" for c in s.cpus], s.ksoftirqd_pct)


def softnet(s: Series) -> str:
    return _lines("softnet drops and time squeezes (all CPUs)", "per second", s, ["dropped", "time_squeeze"], np.vstack([s.drops, s.squeeze]))


def histogram(title: str, h: Histogram) -> str:
    """log2 buckets of a latency histogram, like bcc's -d view, in microseconds."""
    fig, ax = _figure(title, 2.8)
    rows = h.log2_rows()
    labels = [f"{lo / 1000:g}-{(hi + 1) / 1000:g}" for lo, hi, _ in rows]
    ax.bar(range(len(rows)), [c for _, _, c in rows], color="tab:blue")
    ax.set_xticks(range(len(rows)), labels, rotation=45, fontsize=8, ha="right")
    ax.set_xlabel("µs")
    ax.set_ylabel("count")
    st = h.stats()
    ax.text(0.99, 0.95, f"n={st.count}  p50≤{(st.p50_ns or 0) / 1000:g} µs  p99≤{(st.p99_ns or 0) / 1000:g} µs  max {(st.max_ns or 0) / 1000:g} µs",
            transform=ax.transAxes, ha="right", va="top", fontsize=8)
    return _png(fig)
