"""watch and per-NAPI IRQ suspension: an IRQ storm whose rate collapses under busy polling is not surely over."""

from __future__ import annotations

import io

from test_watch import events, feed, series
from test_watchcore import CFG, Alerts

from irqlab.analysis.plan import MachineView
from irqlab.daemon.watch import EventSink
from irqlab.daemon.watchcore import WatchCore
from irqlab.model.net import NapiInstance, NetNamespace, NetState, NetView

HOST = NetNamespace(1, 1, 1, (), (), "", host=True)


def _core(napis):
    out = io.StringIO()
    core = WatchCore(CFG, EventSink(out, as_json=True), None, lambda snap: MachineView((0, 1, 2, 3), (), {}), Alerts(),
                     False, napis=lambda snap: napis)
    return core, out


def test_a_storm_end_on_an_irq_whose_napi_suspends_it_says_the_application_may_be_polling():
    suspending = NetState((NetView(HOST, napis=(NapiInstance(8193, 2, 41, None, 0, 0, 20_000_000, 0),)),))
    core, out = _core(suspending)
    feed(core, series([2e6] * 3 + [0] * 6))
    (end,) = [e for e in events(out) if e["event"] == "storm_end"]
    assert "its NAPI 8193 has irq-suspend-timeout 20000000 ns" in end["note"] and "storm's end" in end["note"]


def test_a_storm_end_on_an_irq_without_irq_suspension_carries_no_note():
    plain = NetState((NetView(HOST, napis=(NapiInstance(8193, 2, 41, None, 0, 0, 0, 0),)),))
    core, out = _core(plain)
    feed(core, series([2e6] * 3 + [0] * 6))
    (end,) = [e for e in events(out) if e["event"] == "storm_end"]
    assert "note" not in end
