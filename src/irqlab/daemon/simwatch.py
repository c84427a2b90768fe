"""`irqlab watch` on a simulated machine: the daemon's own loop, writing the model's knobs.

SimWatch is daemon.watch.Watch with three things swapped for the simulator's: the event
sink (records stamped with simulated time, kept in a list), the machine view (built from the
simulated snapshot and sim.policy.Knobs instead of /sys and network namespaces) and the
mitigator (a list journal over sim.policy.Knobs instead of the fsync'ed file journal). The
detector, the planner, the storm start/escalation/end handling, knob ownership across storms
and the hold-down before the originals are written back are Watch's own code, unchanged.

Nothing is sent: no syslog line, webhook or exec hook. A config's `[alert]` table is parsed
(so a bad one is refused as on a host) and ignored. The root-ownership rule of
daemon/config.py is not applied either: it guards a daemon writing kernel knobs as root, and
a simulation writes none.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path

from irqlab.analysis.plan import DeviceView, IrqView, MachineView, PlannedWrite
from irqlab.analysis.storm import Storm
from irqlab.daemon.config import AlertConfig, ConfigError, WatchConfig, parse_config
from irqlab.daemon.watch import EventSink, Watch
from irqlab.errors import IrqlabError
from irqlab.model.snapshot import Snapshot
from irqlab.sim.emit import BOOT_NS
from irqlab.sim.policy import Action, Knobs, NotModelled
from irqlab.sim.scenario import ScenarioError, WatchSpec
from irqlab.sources.fs import Roots

DEFAULT_INTERVAL_NS = 100_000_000  # simulated runs last seconds, not hours: 100 ms, not watch's 1 s
DEFAULT_HOLD_DOWN_NS = 1_000_000_000


class SimSink:
    """Watch's event stream, stamped with simulated seconds since the run began, kept in a list."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.now_ns = 0

    def emit(self, event: str, **fields) -> dict:
        body = {"event": event, "time_s": round(self.now_ns / 1e9, 6), **fields}
        body["text"] = self.text(body)
        self.records.append(body)
        return body

    @staticmethod
    def text(body: dict) -> str:
        """The line `irqlab watch` prints, without its wall-clock stamp; storms last tenths of seconds here."""
        plain = {k: v for k, v in body.items() if k != "duration_s"}
        text = EventSink.text({**plain, "time": 0.0}).split(" ", 1)[1]
        if "duration_s" in body:
            lasted = f" lasted {body['duration_s']:g} s"
            head, sep, where = text.rpartition(" [")
            text = f"{head}{lasted}{sep}{where}" if sep and text.endswith("]") else text + lasted
        return text


class _NoAlerts:
    """The simulator sends no alert: the records are the alerts."""

    cfg = AlertConfig(syslog=False)
    log = None

    def alert(self, event: dict) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Saved:
    """A journal entry: a knob written on the model and the value to put back."""

    action: Action
    original: str
    reason: str
    netns = None  # one network namespace on the simulated machine

    @property
    def kind(self) -> str:
        return self.action.kind

    @property
    def target(self) -> str:
        return self.action.target

    @property
    def new(self) -> str:
        return self.action.value


class SimWatch(Watch):
    """The watch daemon as a sim.policy.Controller: call step() every interval_ns."""

    def __init__(self, cfg: WatchConfig, interval_ns: int, apply: bool = True, config_path: str | None = None) -> None:
        # No [[mitigate.device]] and no alerts for Watch's constructor: it would import pyroute2
        # and start the alert worker, neither of which a simulation uses.
        super().__init__(dataclasses.replace(cfg, devices=(), alert=AlertConfig(syslog=False)), SimSink(), Roots(), apply)
        self.alerter.close()
        self.alerter = _NoAlerts()
        self.cfg = cfg
        self.config_path = config_path
        self.interval_ns = interval_ns
        self.journal: list[Saved] = []  # oldest first; restored newest first
        self.knobs: Knobs | None = None
        self.prev: Snapshot | None = None

    @property
    def records(self) -> list[dict]:
        return self.sink.records

    # --- the controller protocol (sim/policy.py) -----------------------------------------

    def step(self, snap: Snapshot, knobs: Knobs) -> None:
        """One sample: Watch.tick() on the previous and this snapshot."""
        self.knobs = knobs
        self.sink.now_ns = snap.taken_ns - BOOT_NS
        if self.prev is not None:
            self.tick(self.prev, snap)
        self.prev = snap

    def report(self) -> dict:
        """The watch section of the run's summary (sim/summary.py)."""
        return {
            "config": self.config_path, "apply": self.apply, "interval_ns": self.interval_ns,
            "hold_down_ns": int(self.cfg.hold_down_s * 1e9), "intervals": self.intervals, "events": list(self.records),
            "held_at_end": [{"kind": s.kind, "target": s.target, "value": s.new, "original": s.original} for s in self.journal],
        }

    # --- Watch's host-facing parts, on the model -----------------------------------------

    def view(self, snap: Snapshot) -> MachineView:
        irqs = {n: IrqView(n, tuple(info.actions or ()), info.affinity) for n, info in snap.irqinfo.items()}
        devices = []
        for m in self.cfg.devices:
            if m.netns:
                self.sink.emit("skip", message=f"{m.match!r} in a netns matching {m.netns!r}: the simulated machine has one network namespace")
                continue
            found = [d for d in self.knobs.devices() if fnmatch.fnmatchcase(d.name, m.match)]
            if not found:
                self.sink.emit("skip", message=f"no network device matches {m.match!r}")
            devices += [DeviceView(d.name, None, (d.irq,), dict(d.napi)) for d in found]
        return MachineView(self.knobs.cpus, (), irqs, tuple(devices))

    def write(self, w: PlannedWrite, s: Storm) -> None:
        """Watch.write(), with the model's knobs for the host's."""
        a = Action(w.kind, w.value, irq=w.irq, dev=w.dev, attr=w.attr)
        fields = dict(storm=s.key, kind=w.kind, target=a.target, netns=w.netns, value=w.value, reason=w.reason)
        self.state.owners.setdefault((a.kind, a.target, None), set()).add(s.key)
        if not self.apply:
            self.sink.emit("action", applied=False, original=None, **fields)
            return
        try:
            saved = self._apply(a, w.reason)
        except NotModelled as exc:
            self.sink.emit("skip", storm=s.key, message=str(exc))
            return
        except IrqlabError as exc:
            self.sink.emit("error", message=f"{w.kind} {a.target}: {exc}", **fields)
            return
        if saved is None:
            self.sink.emit("skip", storm=s.key, message=f"{a.target}: already {w.value} (or changed by an earlier storm)")
            return
        self.sink.emit("action", applied=True, original=saved.original, **fields)

    def _apply(self, a: Action, reason: str) -> Saved | None:
        """mitigate.knobs.Mitigator.apply(): nothing twice, nothing unchanged, save then write."""
        if any(s.kind == a.kind and s.target == a.target for s in self.journal):
            return None  # already changed by us: the journal holds the true original
        original = self.knobs.read(a)
        if original == a.value:
            return None
        self.knobs.apply(a)
        saved = Saved(a, original, reason)
        self.journal.append(saved)
        return saved

    def restore_all(self, why: str, only=None) -> None:
        """Watch.restore_all(): pending originals back, newest first (or those `only` picks)."""
        for s in reversed(list(self.journal)):
            if only is not None and not only(s):
                continue
            self.journal.remove(s)
            fields = dict(kind=s.kind, target=s.target, netns=None, value=s.original, changed_to=s.new, why=why)
            try:
                self.knobs.apply(dataclasses.replace(s.action, value=s.original), restore=True)
            except IrqlabError as exc:
                self.restore_failed = True
                self.sink.emit("error", message=f"restore {s.target} to {s.original!r} failed: {exc}", outcome="failed", **fields)
                continue
            self.sink.emit("restore", outcome="restored", **fields)


def from_spec(spec: WatchSpec) -> SimWatch:
    """A SimWatch for a scenario's [watch] table; ScenarioError naming watch.config if it is bad."""
    data: dict = {}
    cfg = WatchConfig()
    if spec.config:
        try:
            data = tomllib.loads(Path(spec.config).read_bytes().decode("utf-8"))
            cfg = parse_config(data, spec.config)
        except OSError as exc:
            raise ScenarioError(f"watch.config: {spec.config}: cannot read config: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ScenarioError(f"watch.config: {spec.config}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"watch.config: {spec.config}: not valid TOML: {exc}") from None
        except ConfigError as exc:
            raise ScenarioError(f"watch.config: {exc}") from None
    # [watch] keys win; then what the config file sets; then the simulator's defaults.
    interval_ns = spec.interval_ns or (int(cfg.interval_s * 1e9) if "interval" in data else DEFAULT_INTERVAL_NS)
    hold_ns = spec.hold_down_ns if spec.hold_down_ns is not None else (
        int(cfg.hold_down_s * 1e9) if "hold_down" in data else DEFAULT_HOLD_DOWN_NS)
    cfg = dataclasses.replace(cfg, interval_s=interval_ns / 1e9, hold_down_s=hold_ns / 1e9)
    return SimWatch(cfg, interval_ns, spec.apply, spec.config or None)
