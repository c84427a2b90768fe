"""One watch core for the host and the model: the same WatchCore, given different Knobs.

The core acts only through the Knobs protocol of model/knob.py. A fake implementation that
records its calls shows what the core asks of any machine; the host's HostKnobs (through the
journal) and the model's ModelKnobs keep the same contract, checked here on both.
"""

from __future__ import annotations

import io
import json

import pytest
from test_watch import events, feed, series

from irqlab.analysis.plan import MachineView
from irqlab.analysis.storm import Baseline, DetectorConfig, Rule
from irqlab.daemon.alerts import AlertConfig
from irqlab.daemon.config import WatchConfig
from irqlab.daemon.simwatch import SimWatch
from irqlab.daemon.watch import EventSink, Watch
from irqlab.daemon.watchcore import WatchCore
from irqlab.errors import IrqlabError
from irqlab.mitigate.knobs import HostKnobs
from irqlab.model.knob import Knob, KnobRefused, Knobs, KnobUnsupported, PlannedWrite, Restored
from irqlab.sim.machine import Machine
from irqlab.sim.policy import ModelKnobs
from irqlab.sim.scenario import parse_scenario
from mitigate.test_journal import fake_root, read

CFG = WatchConfig(interval_s=1.0, hold_down_s=2.0, journal="/nonexistent/journal",
                  detect=DetectorConfig(cpu=Rule("*", None, None), baseline=Baseline(enabled=False)), alert=AlertConfig(syslog=False))


class FakeKnobs:
    """A machine whose knobs live in a dict; every protocol call is recorded."""

    def __init__(self, values: dict[str, str] | None = None, fail: Exception | None = None) -> None:
        self.values = dict(values or {"/irq/41": "0-3"})
        self.saved: list[tuple[Knob, str, str]] = []  # knob, original, new
        self.calls: list[tuple] = []
        self.fail = fail

    def knob(self, write: PlannedWrite) -> Knob:
        return Knob(write.kind, f"/irq/{write.irq}")

    def read(self, write: PlannedWrite) -> str:
        return self.values[self.knob(write).target]

    def apply(self, write: PlannedWrite) -> str | None:
        self.calls.append(("apply", write.kind, write.irq, write.value))
        if self.fail is not None:
            raise self.fail
        knob = self.knob(write)
        if any(k == knob for k, _, _ in self.saved):
            return None
        original = self.values[knob.target]
        self.saved.append((knob, original, write.value))
        self.values[knob.target] = write.value
        return original

    def restore(self, knobs=None) -> list[Restored]:
        self.calls.append(("restore", None if knobs is None else sorted(k.target for k in knobs)))
        out = []
        for s in reversed(list(self.saved)):
            if knobs is None or s[0] in knobs:
                self.saved.remove(s)
                self.values[s[0].target] = s[1]
                out.append(Restored(s[0], s[1], s[2], "restored"))
        return out


class Alerts:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def alert(self, event: dict) -> None:
        self.sent.append(event["event"])


def core(knobs, apply=True):
    out = io.StringIO()
    return WatchCore(CFG, EventSink(out, as_json=True), knobs, lambda snap: MachineView((0, 1, 2, 3), (), {}), Alerts(), apply), out


def view_with_irq41(snap):
    from irqlab.analysis.plan import IrqView

    return MachineView((0, 1, 2, 3), (), {41: IrqView(41, ("eth0-rx-0",), (0, 1, 2, 3))})


def test_the_core_acts_only_through_the_knobs_it_is_given():
    knobs = FakeKnobs()
    c, out = core(knobs)
    c.view = view_with_irq41
    feed(c, series([2e6] * 3 + [0] * 6))  # storm, its end, then the 2 s hold-down
    assert knobs.calls == [("apply", "affinity", 41, "3"), ("restore", ["/irq/41"])]
    assert knobs.values == {"/irq/41": "0-3"}
    ev = events(out)
    assert [e["event"] for e in ev] == ["storm_start", "action", "storm_end", "restore"]
    assert (ev[1]["target"], ev[1]["original"], ev[1]["applied"]) == ("/irq/41", "0-3", True)
    assert c.alerts.sent == ["storm_start", "storm_end"]


def test_a_dry_run_core_never_calls_apply():
    knobs = FakeKnobs()
    c, out = core(knobs, apply=False)
    c.view = view_with_irq41
    feed(c, series([2e6] * 3 + [0] * 6))
    assert [call for call in knobs.calls if call[0] == "apply"] == []
    action = [e for e in events(out) if e["event"] == "action"]
    assert [(a["applied"], a["original"]) for a in action] == [(False, None)]


@pytest.mark.parametrize(("fail", "event", "message"), [
    (KnobUnsupported("/irq/41: not on this machine"), "skip", "/irq/41: not on this machine"),
    (KnobRefused("/irq/41: owned by journal /j"), "error", "affinity /irq/41: owned by journal /j"),
    (IrqlabError("bad value"), "error", "affinity /irq/41: bad value"),
    (OSError(5, "Input/output error"), "error", "affinity /irq/41: [Errno 5] Input/output error"),
])
def test_what_the_knobs_refuse_becomes_one_skip_or_error_naming_the_knob(fail, event, message):
    c, out = core(FakeKnobs(fail=fail))
    c.view = view_with_irq41
    feed(c, series([2e6] * 3))
    ev = [e for e in map(json.loads, out.getvalue().splitlines()) if "/irq/41" in e.get("message", "")]
    assert [(e["event"], e["message"]) for e in ev] == [(event, message)]


def test_a_failed_restore_is_an_error_and_marks_the_watch_failed():
    class Stuck(FakeKnobs):
        def restore(self, knobs=None):
            return [Restored(Knob("affinity", "/irq/41"), "0-3", "3", "failed", "EIO")]

    c, out = core(Stuck())
    c.restore_all("shutdown")
    err = events(out)[-1]
    assert err["event"] == "error" and err["message"] == "restore /irq/41 to '0-3' failed: EIO" and c.restore_failed


def test_host_and_model_watch_are_the_same_core_with_different_knobs_not_subclasses(tmp_path):
    host = Watch(CFG, EventSink(io.StringIO(), as_json=True), fake_root(tmp_path))
    model = SimWatch(CFG, 10_000_000)
    try:
        assert type(host.core) is WatchCore and type(model.core) is WatchCore
        assert isinstance(host.core.knobs, HostKnobs)
        assert not issubclass(SimWatch, Watch) and not issubclass(Watch, SimWatch)
        assert Watch.__mro__ == (Watch, object) and SimWatch.__mro__ == (SimWatch, object)
        assert not issubclass(HostKnobs, ModelKnobs) and not issubclass(ModelKnobs, HostKnobs)
    finally:
        host.close()


# --- the contract, on both implementations ----------------------------------------------


def host_knobs(tmp_path):
    roots = fake_root(tmp_path)
    knobs = HostKnobs.open(roots, str(tmp_path / "journal"))
    return knobs, lambda: read(roots.proc("irq", "41", "smp_affinity_list")), "0-3"


def model_knobs(tmp_path):
    m = Machine(parse_scenario({"machine": {"cpus": 4, "duration_s": 0.01}, "device": [{"name": "eth0", "irq": 41, "kind": "napi"}]}, "test"))
    knobs = ModelKnobs(m)
    return knobs, lambda: knobs.read(MOVE), "0"


MOVE = PlannedWrite("affinity", "IRQ 41", "3", "storm", irq=41)


@pytest.mark.parametrize("make", [host_knobs, model_knobs], ids=["host", "model"])
def test_both_knobs_keep_the_contract_save_once_restore_the_original(tmp_path, make):
    knobs, current, original = make(tmp_path)
    assert isinstance(knobs, Knobs)
    assert knobs.knob(MOVE).target.endswith("/irq/41/smp_affinity_list")
    assert knobs.read(MOVE) == original
    assert knobs.apply(MOVE) == original and current() == "3"
    assert knobs.apply(PlannedWrite("affinity", "IRQ 41", "2", "again", irq=41)) is None, "a second write would lose the original"
    assert current() == "3"
    assert knobs.restore({Knob("napi", "/elsewhere")}) == []
    (r,) = knobs.restore()
    assert (r.knob, r.original, r.changed_to, r.outcome) == (knobs.knob(MOVE), original, "3", "restored")
    assert current() == original and knobs.restore() == []
