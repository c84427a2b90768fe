"""The view-model of `irqlab top`: every decision of the live view, pure and testable.

Rates, findings and a ViewState in; a Frame of plain values out (rows, heat levels, labels).
Widgets only paint a Frame. Nothing here imports Textual, reads the OS or the clock.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import numpy as np

from irqlab.analysis.delta import Rates
from irqlab.analysis.findings import Finding, Severity
from irqlab.analysis.landing import landings
from irqlab.analysis.thresholds import Thresholds
from irqlab.cpulist import format_cpulist, parse_cpulist
from irqlab.errors import ParseError, UsageError
from irqlab.model.snapshot import IrqLine
from irqlab.outputs.columns import ColumnPlan, plan_columns
from irqlab.units import format_rate

SORT_KEYS: tuple[str, ...] = ("rate", "total", "name", "irq")
# Heat levels: 0 idle, then one level per decade of events/s, then the storm thresholds.
# Absolute (not relative to the busiest cell) so that a colour means the same rate in every
# row, panel and refresh.
DECADES: tuple[float, ...] = (10.0, 100.0, 1_000.0, 10_000.0)
HEAT_MAX = 7  # 1..4 below DECADES, 5 below storm_warn, 6 below storm_crit, 7 at or above
NUMERIC_CELLS = 12  # up to this many CPU cells, cells show numbers; beyond, one block each


@dataclass(frozen=True, slots=True)
class ViewState:
    """What the user chose with the keys; the app keeps one and replaces it."""

    sort: str = "rate"
    pattern: str = ""  # regex on the row name ("" = all rows)
    cpus: tuple[int, ...] | None = None  # None = every CPU
    grouped: bool = False
    expanded: frozenset[str] = frozenset()  # group keys shown with their members
    transposed: bool = False
    paused: bool = False
    hide_idle: bool = True
    placement: bool = False  # the placement view (key m): allowed / effective / landed CPUs per IRQ
    max_rows: int = 40
    max_cells: int = 64  # heat-strip cells before CPUs are aggregated into ranges
    max_cpu_rows: int = 16

    def replace(self, **changes) -> ViewState:
        return dataclasses.replace(self, **changes)


def set_sort(state: ViewState, key: str) -> ViewState:
    if key not in SORT_KEYS:
        raise UsageError(f"sort key {key!r}: one of {', '.join(SORT_KEYS)}")
    return state.replace(sort=key)


def set_pattern(state: ViewState, text: str) -> ViewState:
    """Filter rows by a name regex (case-insensitive); a bad regex is a UsageError."""
    try:
        re.compile(text, re.IGNORECASE)
    except re.error as exc:
        raise UsageError(f"filter {text!r}: not a regular expression ({exc})") from None
    return state.replace(pattern=text)


def set_cpus(state: ViewState, text: str) -> ViewState:
    """Choose CPUs from a list like 0-3,8; empty text means every CPU."""
    if not text.strip():
        return state.replace(cpus=None)
    try:
        cpus = parse_cpulist(text, "CPU list")
    except ParseError as exc:
        raise UsageError(f"CPU list {text!r}: {exc.message}") from None
    return state.replace(cpus=cpus)


def toggle_expanded(state: ViewState, key: str) -> ViewState:
    return state.replace(expanded=state.expanded ^ {key})


# --- heat --------------------------------------------------------------------------------


def heat_levels(rates: np.ndarray, t: Thresholds) -> np.ndarray:
    """Heat level 0..HEAT_MAX of each rate (events/s); NaN and <= 0 are idle (0)."""
    r = np.nan_to_num(np.asarray(rates, dtype=np.float64), nan=0.0)
    bounds = np.array(DECADES + (t.storm_warn_rate, t.storm_crit_rate))
    levels = np.searchsorted(bounds, r, side="right") + 1
    return np.where(r > 0, levels, 0).astype(np.int8)


def pct_levels(pct: np.ndarray, t: Thresholds) -> np.ndarray:
    """Heat level of a %CPU (ksoftirqd): the doctor's warn and crit limits are the top levels."""
    p = np.nan_to_num(np.asarray(pct, dtype=np.float64), nan=0.0)
    bounds = np.array((1.0, 2.5, 5.0, t.ksoftirqd_warn_pct / 2, t.ksoftirqd_warn_pct, t.ksoftirqd_crit_pct))
    return np.where(p > 0, np.searchsorted(bounds, p, side="right") + 1, 0).clip(0, HEAT_MAX).astype(np.int8)


def storm_mark(rate: float, t: Thresholds) -> str:
    """The storm marker of a rate: STORM at the doctor's critical limit, storm at its warning limit."""
    if rate >= t.storm_crit_rate:
        return "STORM"
    if rate >= t.storm_warn_rate:
        return "storm"
    return ""


# --- CPU cells ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cells:
    """The CPU cells of a heat strip: one CPU each, or ranges of CPUs (hottest CPU shown)."""

    plan: ColumnPlan
    numeric: bool  # few cells: print numbers; many: one block character each

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(c.label.removeprefix("CPU") for c in self.plan.columns)

    @property
    def per_cell(self) -> int:
        return max((len(c.cpus) for c in self.plan.columns), default=1)

    def reduce(self, values: np.ndarray) -> np.ndarray:
        """(..., ncpus) -> (..., ncells): the largest value of each cell's CPUs."""
        cols = self.plan.columns
        if not cols:
            return np.zeros(values.shape[:-1] + (0,))
        # One gather and one reduceat instead of a max per cell (64 cells x 40 rows per frame).
        idx = np.fromiter((i for c in cols for i in c.index), dtype=np.intp)
        starts = np.cumsum([0] + [len(c.index) for c in cols[:-1]])
        return np.maximum.reduceat(np.nan_to_num(values[..., idx], nan=0.0), starts, axis=-1)

    def caption(self) -> str:
        cpus = [c for col in self.plan.columns for c in col.cpus]
        text = f"CPU {format_cpulist(cpus)}" if cpus else "CPU -"
        if self.per_cell > 1:
            text += f", up to {self.per_cell} CPUs/cell (hottest shown)"
        if self.plan.hidden_idle:
            text += f"; idle {format_cpulist(self.plan.hidden_idle)} hidden"
        return text


def plan_cells(cpus: tuple[int, ...], activity: np.ndarray, state: ViewState) -> Cells:
    plan = plan_columns(cpus, activity, state.cpus, state.max_cells, state.hide_idle)
    return Cells(plan, numeric=len(plan.columns) <= NUMERIC_CELLS)


# --- hard IRQ rows -----------------------------------------------------------------------

# NIC and storage queue names end in a queue number: eth0-TxRx-3, ens1f0-rx-2, nvme0q5,
# mlx5_comp7@pci:0000:3b:00.0, lpfc:4, i40e-eth0-TxRx-12, virtio2-input.0. Strip it to find
# the device; a row without one (ahci[0000:00:17.0], virtio3-rx) is its own device.
_QUEUE = re.compile(
    r"^(?P<dev>.+?)(?:[-_.:](?:txrx|rx|tx|combined|input|output|comp|fp|queue|q)?[-_.]?|(?<=\d)(?:queue|q)[-_.]?)\d+$",
    re.IGNORECASE,
)


def device_of(line: IrqLine) -> str:
    """The device a row belongs to: its queue-less action name; arch rows have none ("")."""
    if not line.numbered:
        return ""
    name = line.actions[0] if line.actions else line.name
    base, at, where = name.partition("@")
    m = _QUEUE.match(base)
    dev = m.group("dev") if m else base
    return dev + at + where


@dataclass(frozen=True, slots=True)
class IrqRow:
    """One row of the hard-IRQ panel: an IRQ line, or a device group of lines."""

    key: str  # line key, or "dev:NAME" for a group
    irq: str  # "41", "LOC", or "120-127" for a group
    name: str
    device: str
    chip: str
    rate_per_s: float
    count: int  # since boot
    cells: tuple[float, ...]  # per CPU cell, events/s (hottest CPU of a range)
    levels: tuple[int, ...]
    affinity: str
    effective: str
    storm: str  # "", "storm", "STORM"
    members: int = 1  # lines in a group
    expanded: bool = False
    depth: int = 0  # 1 for a group's member shown under it


@dataclass(frozen=True, slots=True)
class _Line:
    k: int  # row index in IrqRates
    line: IrqLine
    rate: float
    count: int
    device: str


def _lines(rates: Rates, state: ViewState) -> list[_Line]:
    irq = rates.interrupts
    assert irq is not None
    after = rates.after.interrupts
    totals = dict(zip((ln.key for ln in after.lines), after.totals.tolist())) if after else {}
    rx = re.compile(state.pattern, re.IGNORECASE) if state.pattern else None
    out = []
    for k, line in enumerate(irq.lines):
        rate = float(np.nan_to_num(irq.total_rate[k]))
        if state.hide_idle and rate <= 0:
            continue
        if rx is not None and not (rx.search(line.name) or rx.search(line.irq)):
            continue
        out.append(_Line(k, line, rate, int(totals.get(line.key, 0)), device_of(line)))
    return out


def _irq_number_key(irq: str) -> tuple[int, int, str]:
    head = irq.split("-")[0].split(",")[0]
    return (0, int(head), "") if head.isdigit() else (1, 0, irq)


def _sort(items: list, key: str, get) -> list:
    """Sort (rate, count, name, irq) tuples got from each item by one of SORT_KEYS."""
    if key == "rate":
        return sorted(items, key=lambda x: (-get(x)[0], _irq_number_key(get(x)[3])))
    if key == "total":
        return sorted(items, key=lambda x: (-get(x)[1], _irq_number_key(get(x)[3])))
    if key == "name":
        return sorted(items, key=lambda x: (get(x)[2].lower(), _irq_number_key(get(x)[3])))
    return sorted(items, key=lambda x: _irq_number_key(get(x)[3]))


def _cpus_text(cpus) -> str:
    return format_cpulist(cpus) if cpus else "-"


def _line_row(rates: Rates, item: _Line, cells: Cells, t: Thresholds, depth: int = 0) -> IrqRow:
    irq = rates.interrupts
    info = rates.after.irqinfo.get(int(item.line.irq)) if item.line.numbered else None
    values = cells.reduce(irq.rate[item.k]) if item.line.per_cpu else np.zeros(len(cells.plan.columns))
    return IrqRow(
        key=item.line.key,
        irq=item.line.irq,
        name=item.line.name,
        device=item.device or "-",
        chip=item.line.chip or (info.chip_name if info and info.chip_name else "-"),
        rate_per_s=item.rate,
        count=item.count,
        cells=tuple(values.tolist()),
        levels=tuple(heat_levels(values, t).tolist()),
        affinity=_cpus_text(info.affinity if info else None),
        effective=_cpus_text(info.effective_affinity if info else None),
        storm=storm_mark(item.rate, t),
        depth=depth,
    )


def _group_row(rates: Rates, dev: str, members: list[_Line], cells: Cells, t: Thresholds, expanded: bool) -> IrqRow:
    irq = rates.interrupts
    info = [rates.after.irqinfo.get(int(m.line.irq)) for m in members]
    per_cpu = np.nansum(irq.rate[[m.k for m in members]], axis=0)
    values = cells.reduce(per_cpu)
    chips = {m.line.chip for m in members}
    rate = sum(m.rate for m in members)
    aff = {c for i in info if i and i.affinity for c in i.affinity}
    eff = {c for i in info if i and i.effective_affinity for c in i.effective_affinity}
    worst = max((storm_mark(m.rate, t) for m in members), key=("", "storm", "STORM").index)
    return IrqRow(
        key=f"dev:{dev}",
        irq=format_cpulist(int(m.line.irq) for m in members),
        name=f"{dev} ({len(members)} queues)",
        device=dev,
        chip=chips.pop() if len(chips) == 1 else "mixed",
        rate_per_s=rate,
        count=sum(m.count for m in members),
        cells=tuple(values.tolist()),
        levels=tuple(heat_levels(values, t).tolist()),
        affinity=_cpus_text(aff),
        effective=_cpus_text(eff),
        storm=worst,
        members=len(members),
        expanded=expanded,
    )


def _row_key(r: IrqRow) -> tuple[float, int, str, str]:
    return (r.rate_per_s, r.count, r.name, r.irq)


def irq_rows(rates: Rates, state: ViewState, cells: Cells, t: Thresholds) -> tuple[list[IrqRow], int]:
    """Rows of the hard-IRQ panel in display order, and how many matched before max_rows."""
    items = _lines(rates, state)
    groups: dict[str, list[_Line]] = {}
    if state.grouped:
        for it in items:
            if it.device:
                groups.setdefault(it.device, []).append(it)
        groups = {d: m for d, m in groups.items() if len(m) > 1}
    grouped_keys = {m.line.key for ms in groups.values() for m in ms}
    # Sort cheap keys first and build (heat strips and all) only the rows that will be shown:
    # a 1152-CPU machine has over 1000 rows.
    cands = [((it.rate, it.count, it.line.name, it.line.irq), it) for it in items if it.line.key not in grouped_keys]
    cands += [
        ((sum(m.rate for m in ms), sum(m.count for m in ms), f"{d} ({len(ms)} queues)", format_cpulist(int(m.line.irq) for m in ms)), d)
        for d, ms in groups.items()
    ]
    cands = _sort(cands, state.sort, lambda c: c[0])
    rows = [
        _group_row(rates, what, groups[what], cells, t, f"dev:{what}" in state.expanded) if isinstance(what, str)
        else _line_row(rates, what, cells, t)
        for _, what in cands[: state.max_rows]
    ]
    out: list[IrqRow] = []
    for row in rows:
        out.append(row)
        if row.members > 1 and row.expanded:
            members = [_line_row(rates, m, cells, t, depth=1) for m in groups[row.device]]
            out.extend(_sort(members, state.sort, _row_key))
    return out, len(cands)


# --- transposed hard IRQs and softirqs: matrices ------------------------------------------


@dataclass(frozen=True, slots=True)
class Matrix:
    """A labelled grid of rates with heat levels (softirqs, or the transposed IRQ panel)."""

    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]
    levels: tuple[tuple[int, ...], ...]
    totals: tuple[float, ...]  # per row


def _matrix(rows, cols, values: np.ndarray, levels: np.ndarray, totals) -> Matrix:
    return Matrix(
        tuple(rows), tuple(cols),
        tuple(tuple(r) for r in values.tolist()),
        tuple(tuple(r) for r in levels.tolist()),
        tuple(float(x) for x in totals),
    )


def transposed_irqs(rates: Rates, rows: list[IrqRow], cells: Cells, t: Thresholds, max_cols: int = 10) -> Matrix:
    """CPU cells as rows, the first max_cols IRQ rows as columns."""
    top = [r for r in rows if r.depth == 0][:max_cols]
    values = np.array([r.cells for r in top], dtype=np.float64).reshape(len(top), len(cells.labels)).T
    return _matrix(cells.labels, [r.irq for r in top], values, heat_levels(values, t), values.sum(axis=1))


@dataclass(frozen=True, slots=True)
class SoftirqPanel:
    """Vector x CPU-cell rates, plus the ksoftirqd %CPU of each cell (hottest CPU)."""

    cells: Cells
    matrix: Matrix
    ksoftirqd_pct: tuple[float, ...]
    ksoftirqd_levels: tuple[int, ...]


def softirq_panel(rates: Rates, state: ViewState, t: Thresholds) -> SoftirqPanel | None:
    s = rates.softirqs
    if s is None:
        return None
    ks = rates.ksoftirqd_pct()
    ks_arr = np.array([ks.get(c, 0.0) for c in s.cpus])
    activity = np.nansum(np.nan_to_num(s.rate), axis=0) + ks_arr
    cells = plan_cells(s.cpus, activity, state)
    totals = np.nansum(s.rate, axis=1)
    keep = [i for i in range(len(s.vectors)) if not (state.hide_idle and totals[i] <= 0)]
    values = cells.reduce(s.rate[keep]) if keep else np.zeros((0, len(cells.labels)))
    ks_cells = cells.reduce(ks_arr)
    matrix = _matrix([s.vectors[i] for i in keep], cells.labels, values, heat_levels(values, t), totals[keep])
    if state.transposed:
        matrix = _matrix(cells.labels, matrix.row_labels, values.T, heat_levels(values.T, t), values.T.sum(axis=1))
    return SoftirqPanel(cells, matrix, tuple(ks_cells.tolist()), tuple(pct_levels(ks_cells, t).tolist()))


# --- per-CPU summary ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CpuRow:
    cpu: int
    irq_pct: float | None
    softirq_pct: float | None
    ksoftirqd_pct: float | None
    processed: float | None  # softnet, per second
    dropped: float | None
    squeezed: float | None
    napi_pct: float | None = None  # napi/DEV-ID kthreads that last ran here (None: no threaded NAPI)

    @property
    def busy(self) -> float:
        return sum(x or 0.0 for x in (self.irq_pct, self.softirq_pct, self.ksoftirqd_pct, self.napi_pct)) + (self.processed or 0.0) / 1e4


def _num(x) -> float | None:
    return None if x is None or np.isnan(x) else float(x)


def napi_pct_by_cpu(rates: Rates) -> dict[int, float] | None:
    """%CPU of the napi/DEV-ID kthreads by the CPU each last ran on (Rates.napi_pct)."""
    return rates.napi_pct()


def cpu_rows(rates: Rates, state: ViewState) -> tuple[list[CpuRow], int]:
    """Per-CPU rows (busiest max_cpu_rows, shown in CPU order) and how many were left out."""
    ct = rates.cpu
    cpus = ct.cpus if ct else (rates.interrupts.cpus if rates.interrupts else ())
    ks = rates.ksoftirqd_pct()
    napi = napi_pct_by_cpu(rates)
    sn = rates.softnet
    sn_at = {c: i for i, c in enumerate(sn.cpus)} if sn else {}
    if ct is None and sn is None and not ks:
        return [], 0  # nothing per CPU in this source (e.g. a capture of /proc/interrupts only)
    rows = []
    for i, c in enumerate(cpus):
        if state.cpus is not None and c not in state.cpus:
            continue
        j = sn_at.get(c)
        rows.append(CpuRow(
            c,
            _num(ct.field("irq")[i]) if ct else None,
            _num(ct.field("softirq")[i]) if ct else None,
            ks.get(c),
            _num(sn.field("processed")[j]) if j is not None else None,
            _num(sn.field("dropped")[j]) if j is not None else None,
            _num(sn.field("time_squeeze")[j]) if j is not None else None,
            None if napi is None else napi.get(c, 0.0),
        ))
    if state.hide_idle and len(rows) > 1:
        rows = [r for r in rows if r.busy > 0 or (r.dropped or 0) > 0] or rows[:1]
    total = len(rows)
    if total > state.max_cpu_rows:
        rows = sorted(sorted(rows, key=lambda r: -r.busy)[: state.max_cpu_rows], key=lambda r: r.cpu)
    return rows, total - len(rows)


# --- the frame ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    text: str
    finding: str  # the doctor's top finding, one line
    severity: Severity


def header(rates: Rates, findings: list[Finding], source: str) -> Header:
    h = rates.after.host
    ncpu = len(rates.interrupts.cpus) if rates.interrupts else 0
    machine = h.hostname or "?"
    if h.machine:
        machine += f" {h.machine}"
    kernel = h.kernel or "kernel ?"
    text = f"{machine} | {kernel} | {ncpu} CPUs | interval {rates.interval_s:.2f} s | {source}"
    top = findings[0] if findings else None
    if top is None:
        return Header(text, "", Severity.OK)
    return Header(text, f"{top.severity.label}: {top.title}", top.severity)


@dataclass(frozen=True, slots=True)
class PlacementRow:
    """One row of the placement view: where an IRQ may go, where the kernel sends it, where it went."""

    irq: str
    name: str
    queue: str
    rate_per_s: float
    allowed: str
    effective: str
    landed: str  # "1 200/s, 0 3/s" busiest first
    strays: str  # CPUs that took interrupts outside the effective affinity ("" none)
    movable: str  # "yes", "no: managed ...", "?"


def placement_rows(rates: Rates, state: ViewState) -> tuple[PlacementRow, ...]:
    """The placement view: numbered IRQs, busiest first, filtered like the IRQ panel."""
    pattern = re.compile(state.pattern, re.IGNORECASE) if state.pattern else None
    out = []
    for r in landings(rates, active_only=state.hide_idle):
        if pattern is not None and not pattern.search(r.name):
            continue
        cpus = [(c, v) for c, v in r.landed.items() if state.cpus is None or c in state.cpus]
        if state.cpus is not None and not cpus and r.rate_per_s > 0:
            continue
        cpus.sort(key=lambda cv: (-cv[1], cv[0]))
        landed = ", ".join(f"{c} {format_rate(v)}/s" for c, v in cpus[:4]) + (f", +{len(cpus) - 4}" if len(cpus) > 4 else "")
        movable = "?" if r.movable is None else "yes" if r.movable else "no: " + (r.why or "").split(":")[0]
        out.append(PlacementRow(str(r.irq), r.name, r.queue or "-", r.rate_per_s, _cpus_text(r.affinity),
                                _cpus_text(r.effective), landed or "-", format_cpulist(r.strays), movable))
        if len(out) >= state.max_rows:
            break
    return tuple(out)


@dataclass(frozen=True, slots=True)
class NapiRow:
    """One napi/DEV-ID kthread: threaded NAPI polling DEVICE, its CPU share, CPU, policy and priority."""

    pid: int
    comm: str
    device: str  # from the comm "napi/%s-%d"; "?" when the comm was cut short
    napi_id: int | None
    cpu_pct: float
    cpu: int | None  # the CPU it last ran on
    allowed: str  # Cpus_allowed_list
    policy: str  # "other", "fifo", ...
    priority: str  # "50" for fifo/rr, "nice 0" otherwise


def _napi_name(comm: str) -> tuple[str, int | None]:
    dev, _, nid = comm.removeprefix("napi/").rpartition("-")
    return (dev, int(nid)) if dev and nid.isdigit() else ("?", None)


def napi_rows(rates: Rates, state: ViewState, limit: int = 8) -> tuple[tuple[NapiRow, ...], int]:
    """The napi/DEV-ID kthreads, busiest first (idle ones hidden with idle rows), and how many matched.

    The CPU choice keeps threads that last ran on a chosen CPU.
    """
    out = []
    for r in sorted((r for r in rates.tasks if r.task.kind == "napi"), key=lambda r: (-r.cpu_pct, r.task.pid)):
        t = r.task
        if state.hide_idle and r.cpu_pct <= 0:
            continue
        if state.cpus is not None and t.last_cpu not in state.cpus:
            continue
        dev, nid = _napi_name(t.comm)
        prio = str(t.rt_priority) if t.policy in ("fifo", "rr") else f"nice {t.nice}"
        out.append(NapiRow(t.pid, t.comm, dev, nid, r.cpu_pct, t.last_cpu, _cpus_text(t.allowed_cpus), t.policy, prio))
    return tuple(out[:limit]), len(out)


@dataclass(frozen=True, slots=True)
class Frame:
    """Everything the screen shows for one refresh."""

    header: Header
    cells: Cells
    irq_rows: tuple[IrqRow, ...]
    irq_matched: int  # rows that matched before max_rows
    irq_transposed: Matrix | None
    softirqs: SoftirqPanel | None
    cpu_rows: tuple[CpuRow, ...]
    cpus_left_out: int
    state: ViewState
    placement: tuple[PlacementRow, ...] | None = None  # the placement view, when on
    napi_rows: tuple[NapiRow, ...] = ()  # busy napi/DEV-ID kthreads (threaded NAPI)
    napi_matched: int = 0  # napi threads that matched before the limit
    napi_threads: bool = False  # any napi/DEV-ID kthread in this source (the %napi column)


def build_frame(rates: Rates, findings: list[Finding], state: ViewState, t: Thresholds | None = None, source: str = "live") -> Frame:
    """The whole view for one refresh."""
    t = t or Thresholds()
    irq = rates.interrupts
    if irq is not None:
        cells = plan_cells(irq.cpus, np.nansum(np.nan_to_num(irq.rate), axis=0), state)
        rows, matched = irq_rows(rates, state, cells, t)
    else:
        cells, rows, matched = plan_cells((), np.zeros(0), state), [], 0
    crows, left = cpu_rows(rates, state)
    napi, napi_matched = napi_rows(rates, state)
    return Frame(
        header=header(rates, findings, source),
        cells=cells,
        irq_rows=tuple(rows),
        irq_matched=matched,
        irq_transposed=transposed_irqs(rates, rows, cells, t) if state.transposed and irq is not None else None,
        softirqs=softirq_panel(rates, state, t),
        cpu_rows=tuple(crows),
        cpus_left_out=left,
        state=state,
        placement=placement_rows(rates, state) if state.placement else None,
        napi_rows=napi,
        napi_matched=napi_matched,
        napi_threads=any(r.task.kind == "napi" for r in rates.tasks),
    )
