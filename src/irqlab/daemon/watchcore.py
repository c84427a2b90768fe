"""The watch core: snapshots in, storm detector and plan, knob writes out through `Knobs`.

One core for the host and the model, by composition: the caller gives it snapshots (`tick`),
an event sink, an alerter, a function that describes the machine to the planner, and an
implementation of model/knob.py's `Knobs` protocol, the only way it changes anything.

- `irqlab watch` (daemon/watch.py): mitigate/'s HostKnobs (the fsync'ed journal, the
  host-wide owners registry), the sampler's snapshots, EventSink, syslog/webhook/exec alerts.
- `[watch]` in a scenario (daemon/simwatch.py): sim/policy.py's ModelKnobs, the model's
  snapshots, records stamped with simulated time, no alerts.

It reads no file and keeps no clock: its time is the snapshots' `taken_ns`. What it owns:
storm start/escalation/end handling (one alert each), the plan of each, which storms hold
each knob, and the hold-down after a storm's end before the originals go back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from irqlab.analysis.causes import irq_suspension_note
from irqlab.analysis.delta import compute_rates
from irqlab.analysis.plan import MachineView, Plan, plan
from irqlab.analysis.storm import Storm, StormDetector, StormEvent
from irqlab.daemon.config import WatchConfig
from irqlab.errors import IrqlabError
from irqlab.model.knob import Knob, KnobRefused, Knobs, KnobUnsupported, PlannedWrite
from irqlab.model.net import NetState
from irqlab.model.snapshot import Snapshot
from irqlab.units import NS_PER_S


class Sink(Protocol):
    """Where the event stream goes (daemon/watch.py's EventSink, daemon/simwatch.py's SimSink)."""

    def emit(self, event: str, **fields: Any) -> dict: ...


class Alerts(Protocol):
    """What is told of each storm start, escalation and end (syslog, webhook, exec hook, or nothing)."""

    def alert(self, event: dict) -> None: ...


def storm_json(s: Storm) -> dict:
    return {
        "key": s.key, "class": s.cls, "subject": s.subject, "name": s.name, "level": s.level.name.lower(),
        "reason": s.reason, "value": round(s.value, 1), "threshold": s.threshold, "peak": round(s.peak, 1),
        "unit": s.unit, "cpu": s.cpu, "per_cpu": {str(c): round(v, 1) for c, v in s.per_cpu},
    }


@dataclass
class WatchState:
    """What survives a SIGHUP: knob owners, pending restores (the detector keeps its own tracks)."""

    owners: dict[Knob, set[str]] = field(default_factory=dict)  # knob -> keys of the storms that need it
    restore_at: dict[str, int] = field(default_factory=dict)  # storm key -> ns (snapshot time)


class WatchCore:
    """The detector -> plan -> Knobs loop of one watch. `apply=False` plans and reports, never writes."""

    def __init__(self, cfg: WatchConfig, sink: Sink, knobs: Knobs | None, view: Callable[[Snapshot], MachineView],
                 alerts: Alerts, apply: bool = False, napis: Callable[[Snapshot], NetState | None] = lambda snap: snap.net) -> None:
        self.cfg = cfg
        self.sink = sink
        self.knobs = knobs  # None only until the first snapshot on the model (the machine hands them over)
        self.view = view
        self.alerts = alerts
        self.apply = apply
        # The NAPI instances (with their irq-suspend-timeout and defer-hard-irqs) an IRQ storm's
        # end is checked against: the snapshot's own network state, or what the caller reads.
        self.napis = napis
        self.detector = StormDetector(cfg.detect)
        self.state = WatchState()
        self.intervals = 0  # intervals seen so far; storm events carry it
        self.restore_failed = False  # a value that could not be put back (or recorded)

    def reconfigure(self, cfg: WatchConfig) -> None:
        """A reloaded config: new limits and plan, the running storms and held knobs kept."""
        self.cfg = cfg
        self.detector.config = cfg.detect

    # --- one interval -----------------------------------------------------------------

    def tick(self, prev: Snapshot, snap: Snapshot) -> None:
        self.intervals += 1
        try:
            rates = compute_rates(prev, snap)
        except IrqlabError as exc:
            self.sink.emit("error", message=str(exc))
            return
        for ev in self.detector.update(rates):
            self.on_event(ev, snap)
        self.due_restores(snap.taken_ns)

    def on_event(self, ev: StormEvent, snap: Snapshot) -> None:
        s = ev.storm
        extra: dict[str, Any] = {}
        if ev.event == "storm_end":
            extra["duration_s"] = round((ev.at_ns - s.started_ns) / NS_PER_S, 1)
            extra["restore_in_s"] = self.cfg.hold_down_s
            self.state.restore_at[s.key] = ev.at_ns + int(self.cfg.hold_down_s * NS_PER_S)
            if s.cls == "irq":
                note = irq_suspension_note(self.napis(snap), s.subject)
                if note:  # the IRQ may be off because an application polls: not surely the storm's end
                    extra["note"] = f"IRQ {s.subject}{note}, nor surely a storm's end"
        else:
            self.state.restore_at.pop(s.key, None)  # back before its hold-down ran out
        body = self.sink.emit(ev.event, interval=self.intervals, storm=storm_json(s), **extra)
        if ev.event != "storm_end":
            rung = "act" if s.level.name == "ACT" else "warn"
            writes_any = set(self.cfg.plan.ladder.get(s.cls, {}).get(rung, ())) - {"alert"}
            # Looking at the machine may fork into namespaces: only when something may be written.
            view = self.view(snap) if writes_any else MachineView(())
            self.carry_out(plan(s, view, self.cfg.plan), s)
        self.alerts.alert(body)  # one per start, escalation and end: the detector emits no others

    def carry_out(self, p: Plan, s: Storm) -> None:
        for msg in p.skipped:
            self.sink.emit("skip", storm=s.key, message=msg)
        for w in p.writes:
            self.write(w, s)

    def write(self, w: PlannedWrite, s: Storm) -> None:
        """One planned write through the Knobs: an `action`, a `skip` or an `error` event."""
        assert self.knobs is not None
        knob = self.knobs.knob(w)
        fields = dict(storm=s.key, kind=w.kind, target=knob.target, netns=w.netns, value=w.value, reason=w.reason)
        self.state.owners.setdefault(knob, set()).add(s.key)
        if not self.apply:
            self.sink.emit("action", applied=False, original=None, **fields)
            return
        try:
            original = self.knobs.apply(w)
        except KnobUnsupported as exc:
            self.sink.emit("skip", storm=s.key, message=str(exc))
            return
        except KnobRefused as exc:  # its message names the knob
            self.sink.emit("error", message=f"{w.kind} {exc}", **fields)
            return
        except (OSError, IrqlabError) as exc:
            self.sink.emit("error", message=f"{w.kind} {knob.where}: {exc}", **fields)
            return
        if original is None:
            self.sink.emit("skip", storm=s.key, message=f"{knob.where}: already {w.value} (or changed by an earlier storm)")
            return
        self.sink.emit("action", applied=True, original=original, **fields)

    def due_restores(self, now_ns: int) -> None:
        """Restore the knobs of storms whose hold-down ran out and no live storm still needs."""
        due = [k for k, t in self.state.restore_at.items() if now_ns >= t]
        if not due:
            return
        for key in due:
            del self.state.restore_at[key]
        active = set(self.detector.active) | set(self.state.restore_at)
        free = set()
        for knob, owners in list(self.state.owners.items()):
            owners.difference_update(due)
            if not owners & active:
                free.add(knob)
                del self.state.owners[knob]
        if free:
            self.restore_all(f"storm {', '.join(sorted(due))} ended + hold-down {self.cfg.hold_down_s:g} s", free)

    def restore_all(self, why: str, knobs: set[Knob] | None = None) -> None:
        """Every saved original back (or those of `knobs`), newest first, one event each."""
        if self.knobs is None:
            return
        for r in self.knobs.restore(knobs):
            k = r.knob
            fields = dict(kind=k.kind, target=k.target, netns=k.netns, value=r.original, changed_to=r.changed_to,
                          outcome=r.outcome, why=why)
            if r.outcome == "failed":
                self.restore_failed = True
                self.sink.emit("error", message=f"restore {k.where} to {r.original!r} failed: {r.message}", **fields)
            else:
                self.sink.emit("restore", **fields)
            if r.unrecorded:
                self.restore_failed = True
                self.sink.emit("error", message=f"restored {k.where} to {r.original!r} but could not record it: {r.unrecorded}; "
                               "the next replay writes it again", **fields)
