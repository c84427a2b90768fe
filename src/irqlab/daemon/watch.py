"""`irqlab watch`: sampler -> detector -> planner -> mitigator, with rollback on every exit.

One loop, one thread (plus the alert worker). Each interval: take a snapshot, compute
rates, feed the detector; for each storm_start / escalation, alert once and plan; with
--apply, make the planned writes through the journal. storm_end alerts once and schedules the
restore after `hold_down` (the seed's re-enable timer). SIGTERM/SIGINT stop the loop and
restore everything at once (the wait between samples wakes on them: systemd's stop timeout
is 30 s, an interval may be an hour); SIGHUP reloads the config, keeping detector state and
the journal. At start, whatever a killed earlier run left in the journal is restored first.

The detector, the plan, storm ownership of knobs and the hold-down are daemon/watchcore.py's
WatchCore, the same core `[watch]` runs on the simulated machine (daemon/simwatch.py); this
module gives it the host: the sampler's snapshots, mitigate/'s HostKnobs (the journal), the
event stream on stdout, the alerts, signals and config reloads.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from typing import TextIO

from irqlab.analysis.plan import DeviceView, IrqView, MachineView
from irqlab.analysis.storm import StormDetector
from irqlab.daemon.alerts import Alerter
from irqlab.daemon.config import ConfigError, WatchConfig, load_config
from irqlab.daemon.watchcore import WatchCore
from irqlab.errors import IrqlabError, SourceError
from irqlab.mitigate.knobs import HostKnobs
from irqlab.model.net import NetNamespace, NetState, NetView
from irqlab.model.snapshot import Snapshot
from irqlab.sources.fs import Roots
from irqlab.sources.sampler import SampleSpec, sample
from irqlab.units import format_rate, printable


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


class Watch:
    """The daemon: WatchCore on this host. `apply=False` (the default) plans and prints, never writes."""

    def __init__(self, cfg: WatchConfig, sink: EventSink, roots: Roots | None = None, apply: bool = False, config_path: str | None = None) -> None:
        self.sink = sink
        self.roots = roots or Roots()
        self.apply = apply
        self.config_path = config_path
        self.alerter = Alerter(cfg.alert, on_error=lambda m: self.sink.emit("error", message=m))
        # Without --apply no journal is opened: the knobs only name what would be written.
        self.knobs = HostKnobs(self.roots)
        self.core = WatchCore(cfg, sink, self.knobs, self.view, self.alerter, apply, napis=self.host_napis)
        if cfg.devices:
            import pyroute2.ethtool  # noqa: F401 - once here, not in every forked netns child (~1 s)
        self._stop = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)  # self-pipe: a signal ends the wait
        self._reload = False
        self._sampled = False

    @property
    def cfg(self) -> WatchConfig:
        return self.core.cfg

    @property
    def detector(self) -> StormDetector:
        return self.core.detector

    @property
    def intervals(self) -> int:
        """Intervals sampled so far; storm events carry it."""
        return self.core.intervals

    @property
    def restore_failed(self) -> bool:
        """A value that could not be put back or recorded, or a corrupt journal: exit 3."""
        return self.core.restore_failed

    def tick(self, prev: Snapshot, snap: Snapshot) -> None:
        self.core.tick(prev, snap)

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
        self.knobs = HostKnobs.open(self.roots, self.cfg.journal)
        self.core.knobs = self.knobs
        for msg in self.knobs.problems:
            self.core.restore_failed = True
            self.sink.emit("error", message=msg)
        self.core.restore_all("journal replay at start (previous run did not restore)")

    def close(self) -> None:
        try:
            self.core.restore_all("shutdown")
        finally:
            self.alerter.close()
            self.knobs.close()
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._wake_r = self._wake_w = -1

    def run(self, count: int | None = None) -> int:
        """Sample until stopped (or count intervals); always restore on the way out."""
        if self.apply and self.knobs.mitigator is None:
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
        self.core.reconfigure(cfg)
        self.alerter.cfg = cfg.alert
        self.sink.emit("reload", message=f"config {self.config_path} reloaded; {len(self.detector.active)} storm(s) still tracked")

    # --- the machine as the planner sees it -------------------------------------------

    def host_napis(self, snap: Snapshot) -> NetState | None:
        """The snapshot's network state, or this namespace's NAPI instances read now (one netlink dump)."""
        if snap.net is not None or not self.roots.is_live:
            return snap.net
        from irqlab.sources.napi import read_napis

        try:
            napis = read_napis()
        except SourceError:
            return None
        return NetState((NetView(NetNamespace(0, None, 0, (), (), "", host=True), napis=napis),))

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
                napis = tuple((int(i), dict(c)) for i, c in f.get("napis", ()))
                devices.append(DeviceView(f["name"], ns, own_irqs, f["napi"], f["coalesce"], napis))
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
    if not os.path.lexists(journal):
        # Nothing was ever journaled there: say so, and create neither the file nor its directory.
        sink.emit("restore", kind=None, target=None, netns=None, value=None, outcome="nothing", why=f"{journal} does not exist")
        return 0
    failed = 0
    with HostKnobs.open(roots or Roots(), journal) as knobs:
        for msg in knobs.problems:
            failed += 1
            sink.emit("error", message=msg)
        results = knobs.restore()
        for r in results:
            k = r.knob
            fields = dict(kind=k.kind, target=k.target, netns=k.netns, value=r.original, changed_to=r.changed_to, outcome=r.outcome, why="irqlab watch --restore")
            if r.outcome == "failed":
                failed += 1
                sink.emit("error", message=f"restore {k.where} failed: {r.message}", **fields)
            else:
                sink.emit("restore", **fields)
            if r.unrecorded:
                failed += 1
                sink.emit("error", message=f"restored {k.where} but could not record it: {r.unrecorded}", **fields)
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
