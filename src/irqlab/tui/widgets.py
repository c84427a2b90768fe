"""Widgets of `irqlab top`: they paint a model.Frame and decide nothing themselves."""

from __future__ import annotations

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual.widgets import DataTable, Static

from irqlab.analysis.findings import Severity
from irqlab.tui.model import Cells, Frame, IrqRow, Matrix, PlacementRow, SoftirqPanel
from irqlab.units import format_pct, format_rate, printable

# One style and one block character per heat level (model.heat_levels: 0 idle .. 7 storm).
HEAT_STYLES: tuple[str, ...] = ("grey35", "blue", "cyan", "green", "yellow", "dark_orange", "red", "bold white on red")
HEAT_BLOCKS: str = "·▁▂▃▄▅▇█"
SEVERITY_STYLES = {Severity.OK: "green", Severity.INFO: "cyan", Severity.WARNING: "bold yellow", Severity.CRITICAL: "bold white on red"}
NUMERIC_WIDTH = 7


def strip(values: tuple[float, ...], levels: tuple[int, ...], numeric: bool, fmt=format_rate) -> Text:
    """A heat strip: coloured numbers for few cells, one coloured block per cell for many."""
    text = Text(no_wrap=True)
    if numeric:
        for v, lv in zip(values, levels):
            text.append(("-" if lv == 0 else fmt(v)).ljust(NUMERIC_WIDTH), style=HEAT_STYLES[lv])
        return text
    # Runs of one level are one span: a 64-cell strip is usually a few runs, and every span
    # costs Rich a segment on each repaint.
    run_start = 0
    for i in range(1, len(levels) + 1):
        if i == len(levels) or levels[i] != levels[run_start]:
            lv = levels[run_start]
            text.append(HEAT_BLOCKS[lv] * (i - run_start), style=HEAT_STYLES[lv])
            run_start = i
    return text


def strip_header(cells: Cells) -> str:
    if cells.numeric:
        return "".join(label.ljust(NUMERIC_WIDTH) for label in cells.labels).rstrip()
    return "per-CPU heat"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _name(text: str, width: int | None = None) -> str:
    """A name from the machine as a DataTable or Table cell: control characters escaped, and
    its brackets shown, not taken as Rich markup (str cells are markup: "[nvme]" would vanish)."""
    shown = printable(text)
    return escape(shown if width is None else _cut(shown, width))


class Panel(Static):
    """A Static that asks for a new layout only when its number of lines changes.

    A layout pass re-renders every widget on screen; most refreshes only change numbers.
    """

    _shape: object = None

    def paint(self, content, shape: object) -> None:
        self.update(content, layout=shape != self._shape)
        self._shape = shape


class HeaderBar(Panel):
    """Machine, kernel, CPUs, interval, and the doctor's top finding."""

    def show(self, frame: Frame, status: str) -> None:
        h = frame.header
        text = Text(f"irqlab top | {printable(h.text)}", style="bold")  # Text: never markup
        if status:
            text.append(f" | {printable(status)}", style="reverse")
        if h.finding:
            text.append("\n")
            text.append(printable(h.finding), style=SEVERITY_STYLES[h.severity])
        self.paint(text, bool(h.finding))


IRQ_COLUMNS = ("IRQ", "NAME", "DEVICE", "CHIP", "CPUS", "RATE/s", "STORM", "AFF", "EFF")
PLACEMENT_COLUMNS = ("IRQ", "NAME", "QUEUE", "RATE/s", "ALLOWED", "EFFECTIVE", "LANDED ON (CPU rate)", "STRAYS", "MOVABLE")


class IrqTable(DataTable):
    """Hard IRQs: one row per line or device group; Enter opens or closes a group."""

    def show(self, frame: Frame) -> None:
        keep = self.cursor_row
        self.border_title = self._title(frame)
        if frame.placement is not None:
            self.border_title = (f"placement: {len(frame.placement)} IRQs | allowed = smp_affinity_list, effective = "
                                 "where the kernel sends it, landed = interrupts/s this interval (m: back)")
            rows = [(f"place:{r.irq}", self._placement_cells(r)) for r in frame.placement]
            if not self._same_rows(PLACEMENT_COLUMNS, [k for k, _ in rows]):
                self._columns(PLACEMENT_COLUMNS)
                for key, cells in rows:
                    self.add_row(*cells, key=key)
            else:
                self._update_cells(rows)
        elif frame.irq_transposed is not None:
            m = frame.irq_transposed
            self._columns(("CPU", *(f"IRQ {c}" for c in m.col_labels), "SUM/s"))
            self._show_matrix(m)
        else:
            heads = list(IRQ_COLUMNS)
            heads[4] = strip_header(frame.cells)
            rows = [(r.key if r.depth == 0 else f"{r.key}@member", self._cells(r, frame.cells.numeric)) for r in frame.irq_rows]
            if not self._same_rows(tuple(heads), [k for k, _ in rows]):
                self._columns(tuple(heads))
                for key, cells in rows:
                    self.add_row(*cells, key=key)
            else:
                self._update_cells(rows)
        if self.row_count:
            self.move_cursor(row=min(keep, self.row_count - 1), animate=False)

    def _same_rows(self, labels: tuple[str, ...], keys: list[str]) -> bool:
        return tuple(str(c.label) for c in self.columns.values()) == labels and [k.value for k in self.rows] == keys

    def _update_cells(self, rows) -> None:
        """Same rows in the same order: change only the cells whose text changed.

        Re-adding rows makes the table measure and lay out every cell again, which costs
        most of a refresh; a live view mostly changes a few numbers.
        """
        keys = list(self.columns)
        for key, cells in rows:
            old = self.get_row(key)
            for col, new, was in zip(keys, cells, old):
                if str(new) != str(was) or (isinstance(new, Text) and new.spans != getattr(was, "spans", None)):
                    # A wider value re-measures its column (a layout pass); others repaint only.
                    self.update_cell(key, col, new, update_width=len(str(new)) > len(str(was)))

    def _columns(self, labels: tuple[str, ...]) -> None:
        """Clear the rows; rebuild the columns only when they changed (cheaper, keeps scroll)."""
        if tuple(str(c.label) for c in self.columns.values()) == labels:
            self.clear()
            return
        self.clear(columns=True)
        for label in labels:
            self.add_column(label, key=label)

    def _title(self, frame: Frame) -> str:
        s = frame.state
        parts = [f"hard IRQs (interrupts/s), {len(frame.irq_rows)} of {frame.irq_matched} rows, sort {s.sort}"]
        if s.pattern:
            parts.append(f"filter /{s.pattern}/")
        if s.grouped:
            parts.append("grouped by device")
        parts.append(frame.cells.caption())
        return " | ".join(parts)

    @staticmethod
    def _placement_cells(r: PlacementRow) -> list:
        stray = Text(r.strays or "", style="bold red")
        return [_name(r.irq, 12), _name(r.name, 36), _name(r.queue, 12), Text(format_rate(r.rate_per_s), justify="right"),
                _name(r.allowed, 16), _name(r.effective, 16), _name(r.landed, 40), stray, _name(r.movable, 24)]

    @staticmethod
    def _cells(r: IrqRow, numeric: bool) -> list:
        name = r.name
        if r.members > 1:
            name = ("▾ " if r.expanded else "▸ ") + name
        elif r.depth:
            name = "  └ " + name
        storm = Text(r.storm, style="bold white on red" if r.storm == "STORM" else "bold red")
        return [_name(r.irq, 12), _name(name, 40), _name(r.device, 24), _name(r.chip, 22), strip(r.cells, r.levels, numeric),
                Text(format_rate(r.rate_per_s), justify="right"), storm, _name(r.affinity, 16), _name(r.effective, 16)]

    def _show_matrix(self, m: Matrix) -> None:
        for label, values, levels, total in zip(m.row_labels, m.values, m.levels, m.totals):
            cells = [strip((v,), (lv,), True) for v, lv in zip(values, levels)]
            self.add_row(_name(label), *cells, Text(format_rate(total), justify="right"), key=f"cpu:{label}")


def matrix_table(m: Matrix, numeric: bool, corner: str) -> Table:
    t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    t.add_column(corner, no_wrap=True)
    t.add_column("TOTAL/s", justify="right", no_wrap=True)
    if numeric:
        for c in m.col_labels:
            t.add_column(c, justify="left", no_wrap=True)
    else:
        t.add_column("per-CPU heat", no_wrap=False)
    for label, values, levels, total in zip(m.row_labels, m.values, m.levels, m.totals):
        if numeric:
            cells = [strip((v,), (lv,), True) for v, lv in zip(values, levels)]
        else:
            cells = [strip(values, levels, False)]
        t.add_row(_name(label), format_rate(total), *cells)
    return t


class SoftirqMap(Panel):
    """Softirq vector x CPU heat map, with the ksoftirqd %CPU of each CPU beside it."""

    def show(self, panel: SoftirqPanel | None, transposed: bool) -> None:
        if panel is None:
            self.paint("softirqs: /proc/softirqs not available", None)
            return
        self.border_title = f"softirqs/s | {panel.cells.caption()}"
        m = panel.matrix
        numeric = panel.cells.numeric
        table = matrix_table(m, numeric if not transposed else True, "CPU" if transposed else "VECTOR")
        ks = strip(panel.ksoftirqd_pct, panel.ksoftirqd_levels, numeric, fmt=format_pct)
        shape = (len(m.row_labels), len(m.col_labels), transposed, numeric)
        if transposed:
            self.paint(table, shape)
            return
        ks_row = ["ksoftirqd %", "", *([strip((v,), (lv,), True, format_pct) for v, lv in zip(panel.ksoftirqd_pct, panel.ksoftirqd_levels)] if numeric else [ks])]
        table.add_row(*ks_row, style="italic")
        self.paint(table, shape)


class CpuSummary(Panel):
    """Per CPU: %irq, %softirq, ksoftirqd %CPU, %napi, softnet processed/dropped/squeezed per second;
    under it the busy napi/DEV-ID kthreads (threaded NAPI) with their device, CPU, policy and priority."""

    def show(self, frame: Frame) -> None:
        rows, left_out = frame.cpu_rows, frame.cpus_left_out
        self.border_title = "per CPU (%: /proc/stat; softnet_stat: packets/s)"
        if not rows:
            self.paint("no /proc/stat, softnet_stat or ksoftirqd threads in this source", None)
            return
        t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        # %napi only where threaded NAPI exists: its work is thread time, missing from %soft.
        heads = ("CPU", "%irq", "%soft", "%ksoftirqd") + (("%napi",) if frame.napi_threads else ()) + ("pkts/s", "drop/s", "squeeze/s")
        for name in heads:
            t.add_column(name, justify="right", no_wrap=True)
        for r in rows:
            drop = Text(format_rate(r.dropped), style="bold red" if r.dropped else "")
            napi = (format_pct(r.napi_pct),) if frame.napi_threads else ()
            t.add_row(str(r.cpu), format_pct(r.irq_pct), format_pct(r.softirq_pct), format_pct(r.ksoftirqd_pct), *napi,
                      format_rate(r.processed), drop, format_rate(r.squeezed))
        if left_out:
            t.add_row(f"+{left_out}", "quieter CPUs not shown", style="grey50")
        if not frame.napi_threads:
            self.paint(t, (len(rows), bool(left_out)))
            return
        self.paint(Group(t, Text(""), self._napi(frame)), (len(rows), bool(left_out), len(frame.napi_rows), frame.napi_matched))

    @staticmethod
    def _napi(frame: Frame) -> Table | Text:
        """The napi/DEV-ID kthreads, busiest first: threaded NAPI's receive work runs as these threads."""
        if not frame.napi_rows:
            return Text("napi threads: none busy (threaded NAPI polls in napi/DEV-ID kthreads)", style="grey50")
        t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold",
                  title=f"napi threads (threaded NAPI), {len(frame.napi_rows)} of {frame.napi_matched}", title_justify="left")
        for name, right in (("THREAD", False), ("DEVICE", False), ("%CPU", True), ("CPU", True), ("POLICY", False), ("PRIO", True)):
            t.add_column(name, justify="right" if right else "left", no_wrap=True)
        for r in frame.napi_rows:
            t.add_row(_name(r.comm, 24), _name(r.device, 16), format_pct(r.cpu_pct), "-" if r.cpu is None else str(r.cpu),
                      r.policy, r.priority)
        return t


HELP_TEXT = """\
irqlab top: keys

  r  sort by rate            a  sort by total since boot
  n  sort by name            i  sort by IRQ number
  /  filter rows by name regex (empty = all)
  c  choose CPUs, e.g. 0-3,8 (empty = all)
  g  group rows by device (NIC queues -> one row; Enter opens/closes it)
  t  transpose (CPUs as rows)
  m  placement: allowed / effective / landed CPUs of each IRQ, strays, movable
  z  hide/show idle rows and CPUs
  p  pause/resume sampling     space  one step while paused
  ?  this help                 q  quit

Heat: · idle  ▁ <10/s  ▂ <100  ▃ <1k  ▄ <10k  ▅ below storm  ▇ storm (doctor warn)  █ STORM (doctor crit)
"""
