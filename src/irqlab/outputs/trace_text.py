"""Text report of a TraceResult, in the spirit of bcc's `softirqs -d` / `hardirqs -d`, plus percentiles."""

from __future__ import annotations

from dataclasses import dataclass

from irqlab.cpulist import format_cpulist
from irqlab.model.histogram import Histogram
from irqlab.model.trace_result import Handler, TraceResult
from irqlab.units import printable

STAT_COLS = ["COUNT", "TOTAL_ms", "AVG_us", "P50_us", "P90_us", "P99_us", "P99.9_us", "MAX_us"]
LINEAR_ROWS = 40  # a linear histogram is re-bucketed to at most this many rows


@dataclass(frozen=True, slots=True)
class TextOptions:
    per_cpu: bool = False  # one row per (handler, CPU) instead of totals
    hist: str | None = None  # "linear" or "log2": print each handler's histogram


def _us(ns: float | None) -> str:
    if ns is None:
        return "-"
    return f"{ns / 1000:.1f}" if ns < 100_000 else f"{ns / 1000:.0f}"


def _stat_cells(h: Histogram | None) -> list[str]:
    if h is None or h.count == 0:
        return [str(0)] + ["-"] * 7
    s = h.stats()
    return [str(s.count), f"{h.sum_ns / 1e6:.2f}", _us(s.avg_ns), _us(s.p50_ns), _us(s.p90_ns), _us(s.p99_ns), _us(s.p999_ns), _us(s.max_ns)]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _table(header: list[str], rows: list[list[str]], name_last: bool = False) -> list[str]:
    """First column (and a last NAME column) left-aligned, numbers right-aligned."""
    # Handler names come from the traced machine: escaped before the widths are measured.
    header, rows = [printable(v) for v in header], [[printable(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    last = len(header) - 1

    def cell(i: int, v: str) -> str:
        return v.ljust(widths[i]) if i == 0 or (name_last and i == last) else v.rjust(widths[i])

    return ["  ".join(cell(i, v) for i, v in enumerate(r)).rstrip() for r in [header] + rows]


def _cpu_sets(h: Handler, r: TraceResult, per_cpu: bool) -> list[tuple[str, tuple[int, ...]]]:
    if not per_cpu:
        return [("all", r.cpus)]
    return [(f"CPU{c}", (c,)) for c in r.cpus if c in h.gross or c in h.latency]


def header_lines(r: TraceResult) -> list[str]:
    events = sum(r.events.values())
    head = f"irqlab trace: {r.window_ns / 1e9:.3f} s window, CPUs {format_cpulist(r.cpus) or '-'}, {events} events, source {r.source or '-'}"
    if r.complete:
        return [head]
    # cpu -1: the BPF backend's recursion misses, which the kernel counts per program, not per CPU
    lost = ", ".join(f"CPU{c} {n}" if c >= 0 else f"{n} BPF runs skipped (any CPU)" for c, n in sorted(r.lost.items()) if n)
    return [head, f"PARTIAL: the kernel dropped events ({lost}); counts are low and runs spanning a gap may be mismeasured"]


def softirq_lines(r: TraceResult, opts: TextOptions) -> list[str]:
    rows, lat_rows = [], []
    for h in r.softirqs:
        for label, cpus in _cpu_sets(h, r, opts.per_cpu):
            k_runs, k_time = h.context_share("ksoftirqd", cpus)
            i_runs, _ = h.context_share("irq_exit", cpus)
            rows.append([h.name, label, *_stat_cells(h.merged("gross", cpus)), _us(_avg(h.merged("net", cpus))), _pct(k_runs), _pct(k_time), _pct(i_runs)])
            lat_rows.append([h.name, label, *_stat_cells(h.merged("latency", cpus))])
    if not rows:
        return ["softirq handler duration: no softirq runs"]
    out = ["softirq handler duration (entry -> exit on one CPU; times in us, TOTAL in ms)"]
    out += _table(["VECTOR", "CPU", *STAT_COLS, "NET_AVG_us", "KSOFTIRQD_runs%", "KSOFTIRQD_time%", "IRQ_EXIT_runs%"], rows)
    out += ["", "softirq raise -> entry latency (first raise of a clear pending bit to the entry; us, TOTAL in ms)"]
    out += _table(["VECTOR", "CPU", *STAT_COLS], lat_rows)
    return out


def _avg(h: Histogram | None) -> float | None:
    return None if h is None or h.count == 0 else h.sum_ns / h.count


def handler_lines(title: str, key_col: str, handlers: tuple[Handler, ...], r: TraceResult, opts: TextOptions) -> list[str]:
    rows = []
    for h in handlers:
        key = str(h.key) if h.kind == "irq" else h.name
        name = h.name if h.kind == "irq" else {"vector": "system vector", "bhwork": "BH workqueue"}.get(h.kind, "")
        for label, cpus in _cpu_sets(h, r, opts.per_cpu):
            net = h.merged("net", cpus)
            rows.append([key, label, *_stat_cells(h.merged("gross", cpus)), _us(_avg(net)), _us(net.max_ns if net else None), name or "-"])
    if not rows:
        return [f"{title}: none"]
    return [title] + _table([key_col, "CPU", *STAT_COLS, "NET_AVG_us", "NET_MAX_us", "NAME"], rows, name_last=True)


def passes_lines(r: TraceResult) -> list[str]:
    rows, failed = [], []
    for c in r.cpus:
        p, n = r.passes.get(c, 0), r.restarts.get(c, 0)
        if n > p:  # more restarts than passes: the estimate joined passes it cannot tell apart
            failed.append(f"CPU{c}")
            rows.append([f"CPU{c}", str(p), "?", "?"])
        else:
            rows.append([f"CPU{c}", str(p), str(n), _pct(n / p if p else None)])
    out = ["handle_softirqs() passes (a restart: a lower or equal vector ran again in the same pass)"]
    out += _table(["CPU", "PASSES", "RESTARTS", "RESTART%"], rows)
    if failed:
        out.append(f"? on {', '.join(failed)}: passes on irq_exit() separated only by hard IRQs cannot be told from "
                   "restarts in the event order, and this window had more of them than passes (docs/trace.md)")
    return out


def napi_thread_lines(r: TraceResult) -> list[str]:
    """Threaded NAPI: each napi/DEV-ID kthread's run time per CPU, beside that CPU's NET_RX softirq time.

    Nothing when no such thread ran: most machines poll NAPI in NET_RX softirq only.
    """
    if not r.threads:
        return []
    net_rx = next((h for h in r.softirqs if h.name == "NET_RX"), None)
    window_ns = max(r.window_ns, 1)
    how = "from sched_switch" if all(t.source == "sched_switch" for t in r.threads) else "from /proc/PID/schedstat, CPU = where it last ran"
    rows = []
    for t in sorted(r.threads, key=lambda t: (-t.run_ns, t.cpu, t.pid)):
        rx = net_rx.gross.get(t.cpu) if net_rx else None
        rows.append([t.comm, str(t.pid), t.device or "?", f"CPU{t.cpu}", str(t.runs) if t.source == "sched_switch" else "-",
                     f"{t.run_ns / 1e6:.2f}", f"{100 * t.run_ns / window_ns:.1f}", t.priority or "-",
                     f"{rx.sum_ns / 1e6:.2f}" if rx else "-"])
    title = (f"NAPI threads (threaded NAPI polls in napi/DEV-ID kthreads: thread time, not NET_RX softirq time; {how}; "
             "NET_RX_ms = NET_RX softirq time on that CPU)")
    return [title] + _table(["THREAD", "PID", "DEVICE", "CPU", "RUNS", "RUN_ms", "%CPU", "PRIO", "NET_RX_ms"], rows)


def truncated_line(r: TraceResult) -> str:
    parts = [f"{what} {sum(per.values())}" for what, per in sorted(r.truncated.items()) if sum(per.values())]
    return "not measured (cut by the window edges or lost events): " + (", ".join(parts) if parts else "none")


def hist_lines(title: str, h: Histogram, mode: str) -> list[str]:
    """One histogram as bcc-style rows `low -> high : count |****|` (log2 in ns, linear in us)."""
    rows = _log2_rows(h) if mode == "log2" else _linear_rows(h)
    if not rows:
        return []
    peak = max(n for _, _, n in rows) or 1
    unit, div = ("ns", 1) if mode == "log2" else ("us", 1000)
    out = [f"{title} ({mode} buckets, {unit})", f"{unit:>24} : count"]
    for lo, hi, n in rows:
        label = f"{_num(lo, div)} -> {_num(hi, div)}" if hi is not None else f">= {_num(lo, div)} (overflow)"
        out.append(f"{label:>24} : {n:<8d} |{'*' * round(40 * n / peak):<40}|")
    return out


def _num(value: int, div: int) -> str:
    return str(value) if div == 1 else f"{value / div:g}"


def _log2_rows(h: Histogram) -> list[tuple[int, int | None, int]]:
    """The log2 view; the empty rows between a 0 ns row and the next value are left out."""
    rows = h.log2_rows()
    if rows and rows[0][1] == 0:
        rest = rows[1:]
        while rest and rest[0][2] == 0:
            rest = rest[1:]
        rows = rows[:1] + rest
    return [(lo, hi, n) for lo, hi, n in rows]


def _linear_rows(h: Histogram) -> list[tuple[int, int | None, int]]:
    nz = h.linear_rows()
    if not nz and not h.overflow:
        return []
    lo_i = nz[0][0] // h.bucket_ns if nz else 0
    hi_i = nz[-1][0] // h.bucket_ns + 1 if nz else 0
    step = max(1, -(-(hi_i - lo_i) // LINEAR_ROWS))
    rows = []
    for i in range(lo_i, hi_i, step):
        n = int(h.linear[i : i + step].sum())
        rows.append((i * h.bucket_ns, (i + step) * h.bucket_ns - 1, n))
    if h.overflow:
        rows.append((h.limit_ns, None, h.overflow))
    return rows


def render_trace(r: TraceResult, opts: TextOptions = TextOptions()) -> str:
    """The whole report."""
    out = header_lines(r) + [""] + softirq_lines(r, opts) + [""]
    out += handler_lines("hardirq handler duration (gross = exit - entry; NET = minus nested handlers; us)", "IRQ", tuple(h for h in r.hardirqs if h.kind == "irq"), r, opts) + [""]
    out += handler_lines("x86 system vector handler duration (irq_vectors:*; us)", "VECTOR", tuple(h for h in r.hardirqs if h.kind == "vector"), r, opts) + [""]
    # The BPF programs keep one tasklet series and one BH workqueue series (docs/trace.md): said
    # where those rows are, not only in the docs, since `auto` picks bpf when it may.
    tasklet_title = ("tasklet duration (us; bpf keeps one tasklet row and one BH work row, each under the last "
                     "function seen: --backend tracefs lists each function)" if r.source == "bpf" else "tasklet duration (us)")
    out += handler_lines(tasklet_title, "FUNCTION", r.tasklets, r, opts) + [""]
    napi = napi_thread_lines(r)
    out += napi + [""] if napi else []
    out += passes_lines(r) + ["", truncated_line(r)]
    if opts.hist:
        for h in r.softirqs + r.hardirqs + r.tasklets:
            for label, cpus in _cpu_sets(h, r, opts.per_cpu):
                g = h.merged("gross", cpus)
                if g is not None and g.count:
                    out += [""] + hist_lines(f"{h.kind} {h.name or h.key} duration, {label if label != 'all' else 'all CPUs'}", g, opts.hist)
                lat = h.merged("latency", cpus) if h.kind == "softirq" else None
                if lat is not None and lat.count:
                    out += [""] + hist_lines(f"softirq {h.name} raise -> entry, {label if label != 'all' else 'all CPUs'}", lat, opts.hist)
    return "".join(printable(line) + "\n" for line in out)
