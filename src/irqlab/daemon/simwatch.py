"""`irqlab watch` on a simulated machine: the daemon's own core, writing the model's knobs.

SimWatch is daemon/watchcore.py's WatchCore, the core of `irqlab watch` on a host, given the
simulator's parts instead of the host's: the machine's sim.policy.ModelKnobs (its list
journal) for mitigate/'s HostKnobs (the fsync'ed file journal), an event sink that stamps
records with simulated time and keeps them in a list, and a machine view built from the
simulated snapshot and ModelKnobs instead of /sys and network namespaces. The detector, the
planner, the storm start/escalation/end handling, knob ownership across storms and the
hold-down before the originals are written back are the core's, the same code as on a host.

Nothing is sent: no syslog line, webhook or exec hook. A config's `[alert]` table is parsed
(so a bad one is refused as on a host) and ignored. The root-ownership rule of
daemon/config.py is not applied either: it guards a daemon writing kernel knobs as root, and
a simulation writes none.
"""

from __future__ import annotations

import dataclasses
import fnmatch

from irqlab.analysis.plan import DeviceView, IrqView, MachineView
from irqlab.daemon.config import ConfigError, WatchConfig, parse_config
from irqlab.daemon.watch import EventSink
from irqlab.daemon.watchcore import WatchCore
from irqlab.model.snapshot import Snapshot
from irqlab.schema import SchemaError, load_toml
from irqlab.sim.policy import ModelKnobs
from irqlab.sim.readout import BOOT_NS
from irqlab.sim.scenario import ScenarioError, WatchSpec

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

    def alert(self, event: dict) -> None:
        pass


class SimWatch:
    """The watch daemon as a sim.policy.Controller: call step() every interval_ns."""

    def __init__(self, cfg: WatchConfig, interval_ns: int, apply: bool = True, config_path: str | None = None) -> None:
        self.sink = SimSink()
        self.apply = apply
        self.config_path = config_path
        self.interval_ns = interval_ns
        self.knobs: ModelKnobs | None = None  # the machine hands them over at the first step
        self.core = WatchCore(cfg, self.sink, None, self.view, _NoAlerts(), apply)
        self.prev: Snapshot | None = None

    @property
    def cfg(self) -> WatchConfig:
        return self.core.cfg

    @property
    def records(self) -> list[dict]:
        return self.sink.records

    # --- the controller protocol (sim/policy.py) -----------------------------------------

    def step(self, snap: Snapshot, knobs: ModelKnobs) -> None:
        """One sample: WatchCore.tick() on the previous and this snapshot."""
        self.knobs = self.core.knobs = knobs
        self.sink.now_ns = snap.taken_ns - BOOT_NS
        if self.prev is not None:
            self.core.tick(self.prev, snap)
        self.prev = snap

    def report(self) -> dict:
        """The watch section of the run's summary (sim/summary.py)."""
        held = self.knobs.pending() if self.knobs is not None else []
        return {
            "config": self.config_path, "apply": self.apply, "interval_ns": self.interval_ns,
            "hold_down_ns": int(self.cfg.hold_down_s * 1e9), "intervals": self.core.intervals, "events": list(self.records),
            "held_at_end": [{"kind": s.knob.kind, "target": s.knob.target, "value": s.write.value, "original": s.original} for s in held],
        }

    # --- the machine as the planner sees it ----------------------------------------------

    def view(self, snap: Snapshot) -> MachineView:
        assert self.knobs is not None
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


def from_spec(spec: WatchSpec) -> SimWatch:
    """A SimWatch for a scenario's [watch] table; ScenarioError naming watch.config if it is bad."""
    data: dict = {}
    cfg = WatchConfig()
    if spec.config:
        try:
            data = load_toml(spec.config, what="config")
            cfg = parse_config(data, spec.config)
        except (SchemaError, ConfigError) as exc:
            raise ScenarioError(f"watch.config: {exc}") from None
    # [watch] keys win; then what the config file sets; then the simulator's defaults.
    interval_ns = spec.interval_ns or (int(cfg.interval_s * 1e9) if "interval" in data else DEFAULT_INTERVAL_NS)
    hold_ns = spec.hold_down_ns if spec.hold_down_ns is not None else (
        int(cfg.hold_down_s * 1e9) if "hold_down" in data else DEFAULT_HOLD_DOWN_NS)
    cfg = dataclasses.replace(cfg, interval_s=interval_ns / 1e9, hold_down_s=hold_ns / 1e9)
    return SimWatch(cfg, interval_ns, spec.apply, spec.config or None)
