"""The placement picture: allowed, effective and landed CPUs of each IRQ over one interval."""

from __future__ import annotations

import dataclasses

import builders as b
from irqlab.analysis.delta import compute_rates
from irqlab.analysis.landing import landings
from irqlab.model.snapshot import IrqInfo


def _pair(eff: tuple[int, ...], landed0: int, landed1: int, managed: bool | None = False):
    a = b.snapshot(0.0, interrupts=b.interrupts([0, 1], [("40", "eth0-TxRx-0", [0, 0]), ("41", "eth0-TxRx-1", [0, 0]),
                                                           ("LOC", "Local timer interrupts", [0, 0])]))
    z = b.snapshot(2.0, interrupts=b.interrupts([0, 1], [("40", "eth0-TxRx-0", [landed0, landed1]), ("41", "eth0-TxRx-1", [0, 0]),
                                                           ("LOC", "Local timer interrupts", [100, 100])]))
    infos = {40: IrqInfo(40, affinity=(0, 1), effective_affinity=eff, actions=("eth0-TxRx-0",), managed=managed),
             41: IrqInfo(41, affinity=(1,), effective_affinity=(1,), actions=("eth0-TxRx-1",), managed=True)}
    return compute_rates(a, dataclasses.replace(z, irqinfo=infos))


def test_landed_rates_queue_and_order():
    rows = landings(_pair((1,), 0, 400))
    assert [r.irq for r in rows] == [40, 41]  # numbered only, busiest first; LOC is not an IRQ number
    r = rows[0]
    assert r.landed == {1: 200.0} and r.rate_per_s == 200.0
    assert r.queue == "combined 0" and r.movable is True and r.strays == ()


def test_interrupts_outside_the_effective_affinity_are_strays():
    r = landings(_pair((1,), 300, 100))[0]
    assert r.strays == (0,)
    assert landings(_pair((0, 1), 300, 100))[0].strays == ()


def test_active_only_and_top_and_unmovable_reason():
    rates = _pair((1,), 0, 400)
    assert [r.irq for r in landings(rates, active_only=True)] == [40]
    assert len(landings(rates, top=1)) == 1
    quiet = landings(rates)[1]
    assert quiet.movable is False and "read-only" in quiet.why  # managed, not MSI: named as read-only
