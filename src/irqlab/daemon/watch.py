"""`irqlab watch`: sampler -> detector -> planner -> mitigator, with rollback on every exit.

One loop, one thread (plus the alert worker). Each interval: take a snapshot, compute
rates, feed the detector; for each storm_start / escalation, alert once and plan; with
--apply, make the planned writes through the journal. storm_end alerts once and schedules the
restore after `hold_down` (the seed's re-enable timer). SIGTERM/SIGINT stop the loop and
restore everything at once (the wait between samples wakes on them: systemd's stop timeout
is 30 s, an interval may be an hour); SIGHUP reloads the config, keeping detector state and
the journal. At start, whatever a killed earlier run left in the journal is restored first.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from irqlab.analysis.delta import compute_rates
from irqlab.analysis.plan import DeviceView, IrqView, MachineView, Plan, PlannedWrite, plan
from irqlab.analysis.storm import Storm, StormDetector, StormEvent
from irqlab.daemon.alerts import Alerter
from irqlab.daemon.config import ConfigError, WatchConfig, load_config
from irqlab.errors import IrqlabError
from irqlab.model.snapshot import Snapshot
from irqlab.sources.fs import Roots
from irqlab.sources.sampler import SampleSpec, sample
from irqlab.units import NS_PER_S, format_rate, printable


def storm_json(s: Storm) -> dict:
    return {
        "key": s.key, "class": s.cls, "subject": s.subject, "name": s.name, "level": s.level.name.lower(),
        "reason": s.reason, "value": round(s.value, 1), "threshold": s.threshold, "peak": round(s.peak, 1),
        "unit": s.unit, "cpu": s.cpu, "per_cpu": {str(c): round(v, 1) for c, v in s.per_cpu},
    }


class EventSink:
    """The event stream: one JSON object per line (--json), or one readable line each."""

    def __init__(self, out: TextIO, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json

    def emit(self, event: str, **fields) -> dict:
        body = {"event": event, "time": round(time.time(), 3), **fields}
        if self.as_json:
            self.out.write(json.dumps(body, sort_keys=False) + "\n")
        else:
            # Names come from the machine (IRQ actions, devices): never send their control
            # characters to a terminal or a log (JSON escapes them by itself).
            self.out.write(printable(self.text(body)) + "\n")
        self.out.flush()
        return body

    @staticmethod
    def text(b: dict) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(b["time"]))
        ev = b["event"]
        if ev in ("storm_start", "escalation", "storm_end"):
            s = b["storm"]
            where = ", ".join(f"CPU{c} {format_rate(v)}" for c, v in s["per_cpu"].items())
            extra = f" peak {format_rate(s['peak'])}" + (f" lasted {b['duration_s']:.0f} s" if "duration_s" in b else "")
            return (f"{stamp} {ev.upper():<11} {s['level']:<4} {s['key']} ({s['name']}): {format_rate(s['value'])} {s['unit']} "
                    f"(limit {format_rate(s['threshold'])}, {s['reason']}){extra}" + (f" [{where}]" if where else ""))
        if ev == "action":
            verb = "WROTE" if b["applied"] else "WOULD WRITE"
            was = f" (was {b['original']})" if b.get("original") is not None else ""
            ns = f" in netns {b['netns']}" if b.get("netns") else ""
            return f"{stamp} ACTION      {verb} {b['kind']} {b['target']}{ns} = {b['value']}{was}: {b['reason']}"
        if ev == "restore" and b.get("outcome") == "nothing":
            return f"{stamp} RESTORE     nothing to restore: {b['why']}"
        if ev == "restore":
            ns = f" in netns {b['netns']}" if b.get("netns") else ""
            return f"{stamp} RESTORE     {b['kind']} {b['target']}{ns} = {b['value']} ({b['outcome']}, {b['why']})"
        if ev == "skip":
            return f"{stamp} SKIP        {b['message']}"
        return f"{stamp} {ev.upper():<11} {b.get('message', '')}"


@dataclass
class WatchState:
    """What survives a SIGHUP: detector tracks, knob owners, pending restores."""

    owners: dict = field(default_factory=dict)  # (kind, target, netns) -> set of storm keys
    restore_at: dict = field(default_factory=dict)  # storm key -> monotonic ns


class Watch:
    """The daemon. `apply=False` (the default) plans and prints, never writes."""

    def __init__(self, cfg: WatchConfig, sink: EventSink, roots: Roots | None = None, apply: bool = False, config_path: str | None = None) -> None:
        self.cfg = cfg
        self.sink = sink
        self.roots = roots or Roots()
        self.apply = apply
        self.config_path = config_path
        self.detector = StormDetector(cfg.detect)
        self.state = WatchState()
        self.alerter = Alerter(cfg.alert, on_error=lambda m: self.sink.emit("error", message=m))
        self.mitigator = None
        self.intervals = 0  # intervals sampled so far; storm events carry it
        if cfg.devices:
            import pyroute2.ethtool  # noqa: F401 - once here, not in every forked netns child (~1 s)
        self._stop = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)  # self-pipe: a signal ends the wait
        self._reload = False
        self._sampled = False
        self.restore_failed = False  # a value that could not be put back: exit 3, journal keeps it

    # --- lifecycle --------------------------------------------------------------------

    def install_signals(self) -> None:
        def stop(signum, _frame):
            self.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "_reload", True))

    def stop(self) -> None:
        """Stop the loop now (signal-safe): the flag, and a byte that ends the current wait."""
        self._stop = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass  # the pipe is full: a wake-up is already pending

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, returning True at once when the watch is told to stop."""
        if not self._stop and self._wake_r >= 0:
            select.select([self._wake_r], [], [], seconds)
        return self._stop

    def open_journal(self) -> None:
        """With --apply: lock the journal and restore what a killed run left behind."""
        from irqlab.mitigate.knobs import Knobs, Mitigator

        self.mitigator = Mitigator.open(Knobs(self.roots), self.cfg.journal)
        for msg in self.mitigator.journal.problems:
            self.restore_failed = True
            self.sink.emit("error", message=msg)
        self.restore_all("journal replay at start (previous run did not restore)")

    def restore_all(self, why: str, only=None) -> None:
        if self.mitigator is None:
            return
        for r in self.mitigator.restore(only):
            s = r.setting
            fields = dict(kind=s.kind, target=s.target, netns=s.netns, value=s.original, changed_to=s.new, outcome=r.outcome, why=why)
            if r.outcome == "failed":
                self.restore_failed = True
                self.sink.emit("error", message=f"restore {s.where} to {s.original!r} failed: {r.message}", **fields)
            else:
                self.sink.emit("restore", **fields)
            if r.unrecorded:
                self.restore_failed = True
                self.sink.emit("error", message=f"restored {s.where} to {s.original!r} but could not record it: {r.unrecorded}; "
                               "the next replay writes it again", **fields)

    def close(self) -> None:
        try:
            self.restore_all("shutdown")
        finally:
            self.alerter.close()
            if self.mitigator is not None:
                self.mitigator.journal.close()
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._wake_r = self._wake_w = -1

    def run(self, count: int | None = None) -> int:
        """Sample until stopped (or count intervals); always restore on the way out."""
        if self.apply and self.mitigator is None:
            self.open_journal()
        else:
            self._warn_pending_journal()
        spec = SampleSpec(irqinfo=True, tasks=False, strict=False)
        try:
            while not self._stop and (count is None or self.intervals < count):
                try:
                    self._sample(spec, None if count is None else count - self.intervals)
                except IrqlabError as exc:
                    if not self._sampled:
                        raise  # nothing read at all: a wrong root or no /proc, one line and exit 3
                    # A daemon logs a bad read and keeps going: start a fresh pair next interval.
                    self.sink.emit("error", message=f"sampling failed, retrying in {self.cfg.interval_s:g} s: {exc}")
                    self.wait(self.cfg.interval_s)
        finally:
            self.close()
        return 3 if self.restore_failed else 0

    def _sample(self, spec: SampleSpec, count: int | None) -> None:
        prev: Snapshot | None = None
        for snap in sample(self.roots, self.cfg.interval_s, count, spec, wait=self.wait):
            self._sampled = True
            if prev is not None:
                self.tick(prev, snap)
            prev = snap
            if self._reload:
                interval = self.cfg.interval_s
                self.reload()
                if self.cfg.interval_s != interval:
                    return  # the outer loop samples again on the new interval
            if self._stop:
                return

    def _warn_pending_journal(self) -> None:
        from irqlab.mitigate.journal import JournalError, peek

        if not os.path.lexists(self.cfg.journal):
            return  # a dry run never creates one
        try:
            n, bad = peek(self.cfg.journal)  # read only: a dry run changes nothing, not even the journal
        except JournalError as exc:
            self.sink.emit("error", message=str(exc))
            return
        if bad:
            self.sink.emit("error", message=f"{self.cfg.journal}: corrupt ({'; '.join(bad)}); "
                           "`irqlab watch --restore` keeps it aside and restores what it can")
        if n:
            self.sink.emit("error", message=f"{self.cfg.journal}: {n} setting(s) of an earlier run are not restored; "
                           "run `irqlab watch --restore` or start with --apply")

    def reload(self) -> None:
        self._reload = False
        if not self.config_path:
            return
        try:
            cfg = load_config(self.config_path)
        except ConfigError as exc:
            self.sink.emit("error", message=f"reload refused, keeping the running config: {exc}")
            return
        if cfg.journal != self.cfg.journal:
            self.sink.emit("error", message="reload: journal path changes take effect at the next start")
            cfg = WatchConfig(cfg.interval_s, cfg.hold_down_s, self.cfg.journal, cfg.detect, cfg.plan, cfg.devices, cfg.alert, cfg.source)
        self.cfg = cfg
        self.detector.config = cfg.detect
        self.alerter.cfg = cfg.alert
        self.sink.emit("reload", message=f"config {self.config_path} reloaded; {len(self.detector.active)} storm(s) still tracked")

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
        extra = {}
        if ev.event == "storm_end":
            extra["duration_s"] = round((ev.at_ns - s.started_ns) / NS_PER_S, 1)
            extra["restore_in_s"] = self.cfg.hold_down_s
            self.state.restore_at[s.key] = ev.at_ns + int(self.cfg.hold_down_s * NS_PER_S)
        else:
            self.state.restore_at.pop(s.key, None)  # back before its hold-down ran out
        body = self.sink.emit(ev.event, interval=self.intervals, storm=storm_json(s), **extra)
        if ev.event != "storm_end":
            rung = "act" if s.level.name == "ACT" else "warn"
            writes_any = set(self.cfg.plan.ladder.get(s.cls, {}).get(rung, ())) - {"alert"}
            # Looking at the machine forks into namespaces: only when something may be written.
            view = self.view(snap) if writes_any else MachineView(())
            self.carry_out(plan(s, view, self.cfg.plan), s)
        self.alerter.alert(body)  # one per start, escalation and end: the detector emits no others

    def carry_out(self, p: Plan, s: Storm) -> None:
        for msg in p.skipped:
            self.sink.emit("skip", storm=s.key, message=msg)
        for w in p.writes:
            self.write(w, s)

    def write(self, w: PlannedWrite, s: Storm) -> None:
        from irqlab.mitigate.knobs import Knob, affinity_knob, coalesce_knob, napi_knob

        if w.kind == "affinity":
            knob: Knob = affinity_knob(self.roots, w.irq)
        elif w.kind == "napi":
            knob = napi_knob(w.dev, w.attr, w.netns)
        else:
            knob = coalesce_knob(w.dev, w.attr, w.netns)
        fields = dict(storm=s.key, kind=w.kind, target=knob.target, netns=w.netns, value=w.value, reason=w.reason)
        self.state.owners.setdefault((knob.kind, knob.target, knob.netns), set()).add(s.key)
        if not self.apply:
            self.sink.emit("action", applied=False, original=None, **fields)
            return
        from irqlab.mitigate.coalesce import CoalesceUnsupported
        from irqlab.mitigate.journal import JournalError, KnobOwned

        try:
            saved = self.mitigator.apply(knob, w.value, w.reason)
        except CoalesceUnsupported as exc:
            self.sink.emit("skip", storm=s.key, message=str(exc))
            return
        except KnobOwned as exc:
            self.sink.emit("error", message=f"{w.kind} {exc}", **fields)
            return
        except JournalError as exc:
            self.sink.emit("error", message=f"{w.kind} {knob.where}: not written, the journal cannot record it: {exc}", **fields)
            return
        except (OSError, IrqlabError) as exc:
            self.sink.emit("error", message=f"{w.kind} {knob.where}: {exc}", **fields)
            return
        if saved is None:
            self.sink.emit("skip", storm=s.key, message=f"{knob.where}: already {w.value} (or changed by an earlier storm)")
            return
        self.sink.emit("action", applied=True, original=saved.original, **fields)

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
            self.restore_all(f"storm {', '.join(sorted(due))} ended + hold-down {self.cfg.hold_down_s:g} s",
                             only=lambda st: (st.kind, st.target, st.netns) in free)

    # --- the machine as the planner sees it -------------------------------------------

    def view(self, snap: Snapshot) -> MachineView:
        from irqlab.mitigate import affinity, discover

        root_disk = set(discover.root_disk_irqs(self.roots))
        irqs = {}
        for n, info in snap.irqinfo.items():
            why = "protected (root disk queue)" if n in root_disk else ""
            irqs[n] = IrqView(n, tuple(info.actions or ()), info.affinity, protected_reason=why)
        if snap.interrupts is not None:  # without /sys/kernel/irq, names come from /proc/interrupts
            for line in snap.interrupts.lines:
                if line.numbered and int(line.irq) in irqs and not irqs[int(line.irq)].names:
                    v = irqs[int(line.irq)]
                    irqs[v.irq] = IrqView(v.irq, line.actions, v.affinity, v.movable, v.protected_reason)
        devices = []
        for m in self.cfg.devices:
            found, errors = discover.describe_devices(m.match, m.netns)
            for msg in errors:
                self.sink.emit("error", message=msg)
            if not found:
                self.sink.emit("skip", message=f"no network device matches {m.match!r}" + (f" in a netns matching {m.netns!r}" if m.netns else ""))
            for ns, f in found:
                own_irqs = discover.netdev_irqs(self.roots, f["name"]) if ns is None else ()
                devices.append(DeviceView(f["name"], ns, own_irqs, f["napi"], f["coalesce"]))
        try:
            online = affinity.online_cpus(self.roots)
        except IrqlabError:
            online = tuple(snap.interrupts.cpus) if snap.interrupts else ()
        return MachineView(online, affinity.isolated_cpus(self.roots), irqs, tuple(devices))


def restore_only(journal: str, sink: EventSink, roots: Roots | None = None) -> int:
    """`irqlab watch --restore`: undo every pending setting of the journal, then exit.

    Needs nothing but the journal (no config): 3 when anything could not be restored or
    recorded, or the journal was corrupt (it is kept aside, and named).
    """
    import os

    from irqlab.mitigate.knobs import Knobs, Mitigator

    if not os.path.lexists(journal):
        # Nothing was ever journaled there: say so, and create neither the file nor its directory.
        sink.emit("restore", kind=None, target=None, netns=None, value=None, outcome="nothing", why=f"{journal} does not exist")
        return 0
    m = Mitigator.open(Knobs(roots or Roots()), journal)
    failed = 0
    with m.journal:
        for msg in m.journal.problems:
            failed += 1
            sink.emit("error", message=msg)
        results = m.restore()
        for r in results:
            s = r.setting
            fields = dict(kind=s.kind, target=s.target, netns=s.netns, value=s.original, changed_to=s.new, outcome=r.outcome, why="irqlab watch --restore")
            if r.outcome == "failed":
                failed += 1
                sink.emit("error", message=f"restore {s.where} failed: {r.message}", **fields)
            else:
                sink.emit("restore", **fields)
            if r.unrecorded:
                failed += 1
                sink.emit("error", message=f"restored {s.where} but could not record it: {r.unrecorded}", **fields)
        if not results and not failed:
            sink.emit("restore", kind=None, target=None, netns=None, value=None, outcome="nothing", why=f"{journal} has nothing pending")
    return 3 if failed else 0


def main_loop(cfg: WatchConfig, sink: EventSink, apply: bool, config_path: str | None, count: int | None, roots: Roots | None = None) -> int:
    w = Watch(cfg, sink, roots, apply, config_path)
    w.install_signals()
    sink.emit("start", message=f"watching every {cfg.interval_s:g} s; config {cfg.source}; "
              + ("APPLY: changes are written and journaled in " + cfg.journal if apply else "dry run: nothing is written (use --apply)")
              + f"; alerts to {w.alerter.log.target if w.alerter.log else 'no log'}")
    code = w.run(count)
    if not apply:
        sink.emit("stop", message="stopped")
    elif w.restore_failed:
        sink.emit("stop", message="stopped; NOT every change was restored or recorded (see the errors above)")
    else:
        sink.emit("stop", message="stopped; every change restored")
    sys.stdout.flush()
    return code
