"""The report's placement grid."""

from __future__ import annotations

import dataclasses
import re

import builders as b
from irqlab.analysis.delta import compute_rates
from irqlab.model.snapshot import IrqInfo
from irqlab.outputs.report import render_report
from irqlab.outputs.report_placement import placement_html


def _snaps(landed0: int, landed1: int):
    a = b.snapshot(0.0, interrupts=b.interrupts([0, 1], [("40", "eth0-TxRx-0", [0, 0])]))
    z = b.snapshot(1.0, interrupts=b.interrupts([0, 1], [("40", "eth0-TxRx-0", [landed0, landed1])]))
    info = {40: IrqInfo(40, affinity=(0, 1), effective_affinity=(1,), actions=("eth0-TxRx-0",), managed=False)}
    return [dataclasses.replace(a, wall_time=1.8e9), dataclasses.replace(z, wall_time=1.8e9 + 1, irqinfo=info)]


def test_grid_marks_allowed_effective_and_landed_cells():
    page = placement_html(compute_rates(*_snaps(0, 500)))
    row = re.search(r"<tr><td>40</td>.*?</tr>", page).group(0)
    cells = re.findall(r"<td class='([^']*)' title='([^']*)'>([^<]*)</td>", row)
    assert [c[0] for c in cells] == ["c allowed", "c allowed eff hit"]
    assert cells[1][2] == "500" and "500.0/s" in cells[1][1]
    assert "<td>0-1</td><td>1</td><td>yes</td>" in row
    assert "outside its effective affinity" not in page


def test_a_stray_is_red_and_explained():
    page = placement_html(compute_rates(*_snaps(30, 500)))
    assert "c allowed stray" in page
    assert "took interrupts on CPU 0, outside its effective affinity 1" in page


def test_the_report_has_the_placement_section():
    page = render_report(_snaps(0, 500))
    assert "<h2>IRQ placement (first to last sample)</h2>" in page and "table class=place" in page


def test_no_busy_irq_says_so():
    assert "No numbered IRQ" in placement_html(compute_rates(*_snaps(0, 0)))
