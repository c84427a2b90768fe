"""The Textual app of `irqlab top`: keys, a timer, a worker that samples, widgets that paint.

The app never reads the OS: the cli hands it a sampler callable (live host, a capture root,
or a Replayer) that returns the next Snapshot, or None when a replay has run out. Every view
decision is in model.py; this module only wires keys to ViewState changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Static

from irqlab.analysis.delta import Rates, compute_rates
from irqlab.analysis.doctor import diagnose
from irqlab.analysis.findings import Finding
from irqlab.analysis.thresholds import Thresholds
from irqlab.errors import IrqlabError, UsageError
from irqlab.model.snapshot import Snapshot
from irqlab.tui import model
from irqlab.tui.widgets import HELP_TEXT, CpuSummary, HeaderBar, IrqTable, SoftirqMap

Sampler = Callable[[], Snapshot | None]


@dataclass(frozen=True, slots=True)
class Sample:
    """One refresh worth of analysis, computed in the worker thread."""

    rates: Rates
    findings: list[Finding]


class HelpScreen(ModalScreen[None]):
    """The key table; any key closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        yield Static(HELP_TEXT, id="help")

    def on_key(self) -> None:
        self.dismiss()


class TopApp(App[int]):
    """Live interrupt view: hard IRQs, softirq heat map, per-CPU summary."""

    CSS_PATH = "top.tcss"
    TITLE = "irqlab top"
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("r", "sort('rate')", "rate"),
        Binding("a", "sort('total')", "total"),
        Binding("n", "sort('name')", "name"),
        Binding("i", "sort('irq')", "IRQ"),
        Binding("slash", "prompt('filter')", "filter"),
        Binding("c", "prompt('cpus')", "CPUs"),
        Binding("g", "toggle('grouped')", "group"),
        Binding("t", "toggle('transposed')", "transpose"),
        Binding("m", "toggle('placement')", "placement"),
        Binding("z", "toggle('hide_idle')", "idle"),
        Binding("p", "toggle('paused')", "pause"),
        Binding("space", "step", "step", show=False),
        Binding("question_mark", "help", "help"),
    ]

    def __init__(
        self,
        sampler: Sampler,
        interval_s: float,
        count: int | None = None,
        *,
        source: str = "live",
        replay: bool = False,
        state: model.ViewState | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        super().__init__()
        self.sampler = sampler
        self.interval_s = interval_s
        self.count = count
        self.source = source
        self.replay = replay
        self.state = state or model.ViewState()
        self.thresholds = thresholds or Thresholds()
        self.prev: Snapshot | None = None
        self.sample: Sample | None = None
        self.frame: model.Frame | None = None
        self.frames = 0
        self.ended = False
        self.prompting: str | None = None
        self.status = "sampling..."
        # One read at a time: a slow read (13 MB on 1152 CPUs) must not overlap the next tick,
        # or two threads would difference against the same previous snapshot.
        self.busy = False

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        yield IrqTable(id="irqs", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="bottom"):
            yield SoftirqMap(id="softirqs")
            yield CpuSummary(id="cpus")
        yield Input(id="prompt")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#header", HeaderBar).update(f"irqlab top | {self.source} | sampling for {self.interval_s:g} s...")
        # A replay has both ends of its first interval on disk: show it at once.
        self.start(2 if self.replay else 1)
        self.set_interval(self.interval_s, self.tick)

    # --- sampling ---------------------------------------------------------------------

    def tick(self) -> None:
        if not self.state.paused:
            self.start(1)

    def start(self, n: int) -> None:
        """Start a read of n snapshots unless one is running or the source has ended."""
        if self.busy or self.ended:
            return
        self.busy = True
        self.take(n)

    @work(exclusive=True, thread=True, group="sampler")
    def take(self, n: int) -> None:
        """Read n snapshots (in a thread: a 1152-CPU /proc/interrupts is 13 MB) and analyse."""
        try:
            self._take(n)
        finally:
            self.busy = False

    def _take(self, n: int) -> None:
        for _ in range(n):
            try:
                snap = self.sampler()
                result = self._analyse(snap) if snap is not None else None
            except IrqlabError as exc:
                self.call_from_thread(self._failed, str(exc))
                return
            if snap is None:
                self.call_from_thread(self._end, "replay finished")
                return
            self.call_from_thread(self._got, snap, result)

    def _analyse(self, snap: Snapshot) -> Sample | None:
        prev, self.prev = self.prev, snap
        if prev is None:
            return None
        rates = compute_rates(prev, snap)
        return Sample(rates, diagnose(rates, self.thresholds))

    def _got(self, snap: Snapshot, result: Sample | None) -> None:
        if result is None:
            return
        self.sample = result
        self.frames += 1
        self.status = "paused" if self.state.paused else ""
        if self.replay:
            self.status = f"{self.status} capture {self.frames + 1} of {getattr(self.sampler, 'total', '?')}".strip()
        if self.count is not None and self.frames >= self.count:
            self._end(f"{self.count} reports done")
        self.redraw()

    def _end(self, why: str) -> None:
        self.ended = True
        self.status = f"{why}; q quits"
        self.redraw()

    def _failed(self, message: str) -> None:
        self.status = f"error: {message}"
        self.notify(message, title="sampling failed", severity="error", timeout=10)
        self.redraw()

    # --- drawing ----------------------------------------------------------------------

    def redraw(self) -> None:
        if self.sample is None:
            if self.status:
                self.query_one("#header", HeaderBar).update(f"irqlab top | {self.source} | {self.status}")
            return
        self.frame = model.build_frame(self.sample.rates, self.sample.findings, self.state, self.thresholds, self.source)
        with self.batch_update():
            self.query_one("#header", HeaderBar).show(self.frame, self.status)
            self.query_one("#irqs", IrqTable).show(self.frame)
            self.query_one("#softirqs", SoftirqMap).show(self.frame.softirqs, self.state.transposed)
            self.query_one("#cpus", CpuSummary).show(self.frame)

    def change(self, state: model.ViewState) -> None:
        self.state = state
        self.redraw()

    # --- keys -------------------------------------------------------------------------

    def action_sort(self, key: str) -> None:
        self.change(model.set_sort(self.state, key))

    def action_toggle(self, name: str) -> None:
        self.change(self.state.replace(**{name: not getattr(self.state, name)}))
        if name == "paused":
            self.status = "paused" if self.state.paused else ""
            self.redraw()

    def action_step(self) -> None:
        if self.state.paused:
            self.start(1)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_prompt(self, what: str) -> None:
        box = self.query_one("#prompt", Input)
        self.prompting = what
        if what == "filter":
            box.placeholder, box.value = "filter rows by name regex (empty: all), Enter", self.state.pattern
        else:
            box.placeholder = "CPUs like 0-3,8 (empty: all), Enter"
            box.value = "" if self.state.cpus is None else ",".join(map(str, self.state.cpus))
        box.add_class("open")
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        box = event.input
        try:
            if self.prompting == "filter":
                self.change(model.set_pattern(self.state, event.value))
            else:
                self.change(model.set_cpus(self.state, event.value))
        except UsageError as exc:
            self.notify(str(exc), severity="error")
            return
        box.remove_class("open")
        self.prompting = None
        self.query_one("#irqs", IrqTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value or ""
        if key.startswith("dev:"):
            self.change(model.toggle_expanded(self.state, key))
