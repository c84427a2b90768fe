"""The view-model decides everything the live view shows; tested here without Textual."""

from __future__ import annotations

import numpy as np
import pytest
from conftest_top import SYNTH96

from builders import interrupts, snapshot, softirqs
from irqlab.analysis.delta import compute_rates
from irqlab.analysis.doctor import diagnose
from irqlab.analysis.thresholds import Thresholds
from irqlab.errors import UsageError
from irqlab.model.snapshot import IrqLine
from irqlab.sources.replay import replay
from irqlab.tui import model

T = Thresholds()


@pytest.fixture(scope="module")
def synth():
    a, b = list(replay(SYNTH96[:2]))
    return compute_rates(a, b)


def frame(rates, **state):
    return model.build_frame(rates, diagnose(rates), model.ViewState(**state))


@pytest.mark.parametrize(
    "name, device",
    [
        ("eth0-TxRx-0", "eth0"),
        ("eth0-TxRx-15", "eth0"),
        ("i40e-eth0-TxRx-12", "i40e-eth0"),
        ("ens1f0-rx-2", "ens1f0"),
        ("nvme0q12", "nvme0"),
        ("mlx5_comp3@pci:0000:3b:00.0", "mlx5@pci:0000:3b:00.0"),
        ("lpfc:4", "lpfc"),
        ("virtio1-req.0", "virtio1-req"),  # "req" is not a queue word: the q is not a queue
        ("eth0", "eth0"),  # a device number is not a queue number
        ("ahci[0000:00:17.0]", "ahci[0000:00:17.0]"),
    ],
)
def test_queue_numbers_are_stripped_to_find_the_device(name, device):
    assert model.device_of(IrqLine(irq="40", key="40", actions=(name,))) == device


def test_arch_rows_have_no_device():
    assert model.device_of(IrqLine(irq="LOC", key="LOC", description="Local timer interrupts")) == ""


def test_heat_levels_step_by_decade_then_by_the_doctors_storm_limits():
    rates = np.array([np.nan, 0, 5, 50, 500, 5_000, 50_000, 150_000, 2_000_000])
    assert model.heat_levels(rates, T).tolist() == [0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert model.storm_mark(99_999, T) == "" and model.storm_mark(100_000, T) == "storm"
    assert model.storm_mark(1_000_000, T) == "STORM"


def test_default_sort_is_by_rate_and_the_storming_queue_is_marked(synth):
    f = frame(synth)
    assert f.irq_rows[0].name == "eth0-TxRx-0" and f.irq_rows[0].storm == "storm"
    rates = [r.rate_per_s for r in f.irq_rows]
    assert rates == sorted(rates, reverse=True)
    assert f.header.finding.startswith("warning: interrupt storm")


@pytest.mark.parametrize("key", model.SORT_KEYS)
def test_every_sort_key_orders_the_rows(synth, key):
    rows = frame(synth, sort=key).irq_rows
    if key == "rate":
        assert [r.rate_per_s for r in rows] == sorted((r.rate_per_s for r in rows), reverse=True)
    elif key == "total":
        assert [r.count for r in rows] == sorted((r.count for r in rows), reverse=True)
    elif key == "name":
        assert [r.name.lower() for r in rows] == sorted(r.name.lower() for r in rows)
    else:
        numbered = [int(r.irq) for r in rows if r.irq.isdigit()]
        assert numbered == sorted(numbered) and rows[0].irq.isdigit() and not rows[-1].irq.isdigit()


def test_unknown_sort_key_is_refused():
    with pytest.raises(UsageError):
        model.set_sort(model.ViewState(), "colour")


def test_filter_keeps_rows_whose_name_matches_the_regex(synth):
    state = model.set_pattern(model.ViewState(), "nvme0q[0-3]$")
    rows = model.build_frame(synth, [], state).irq_rows
    assert [r.name for r in rows] and all(r.name.startswith("nvme0q") for r in rows)
    assert sorted(r.name for r in rows) == ["nvme0q0", "nvme0q1", "nvme0q2", "nvme0q3"]


def test_bad_regex_is_a_usage_error_and_leaves_the_state_alone():
    with pytest.raises(UsageError, match="not a regular expression"):
        model.set_pattern(model.ViewState(), "eth0-(")


def test_cpu_choice_limits_cells_and_cpu_rows(synth):
    state = model.set_cpus(model.ViewState(), "0-3,8")
    f = model.build_frame(synth, [], state)
    assert [c for col in f.cells.plan.columns for c in col.cpus] == [0, 1, 2, 3, 8]
    assert {r.cpu for r in f.cpu_rows} <= {0, 1, 2, 3, 8}
    assert model.set_cpus(state, " ").cpus is None
    with pytest.raises(UsageError):
        model.set_cpus(state, "3-1")


def test_grouping_collapses_nic_queues_into_one_row_that_expands(synth):
    state = model.ViewState(grouped=True)
    rows = model.build_frame(synth, [], state).irq_rows
    eth = next(r for r in rows if r.device == "eth0")
    assert eth.members == 16 and eth.irq == "24-39" and eth.name == "eth0 (16 queues)"
    assert eth.rate_per_s == pytest.approx(sum(150_000 if q == 0 else 20_000 - 1_000 * q for q in range(16)))
    assert eth.storm == "storm"  # the worst member's marker
    assert not any(r.name.startswith("eth0-TxRx") for r in rows)
    opened = model.build_frame(synth, [], model.toggle_expanded(state, eth.key)).irq_rows
    members = [r for r in opened if r.depth == 1 and r.name.startswith("eth0-TxRx")]
    assert len(members) == 16
    assert opened.index(members[0]) == opened.index(next(r for r in opened if r.key == eth.key)) + 1


def test_transpose_puts_cpus_in_rows(synth):
    f = frame(synth, transposed=True)
    m = f.irq_transposed
    assert m.row_labels == f.cells.labels and m.col_labels[0] == "24"
    assert f.softirqs.matrix.row_labels == f.softirqs.cells.labels


def test_hide_idle_drops_idle_rows_and_cpus_and_showing_them_brings_them_back(synth):
    hidden = frame(synth)
    shown = frame(synth, hide_idle=False)
    assert all(r.rate_per_s > 0 for r in hidden.irq_rows)
    assert any(r.rate_per_s == 0 for r in shown.irq_rows)
    assert hidden.cells.plan.hidden_idle and not shown.cells.plan.hidden_idle
    assert "HI" not in hidden.softirqs.matrix.row_labels and "HI" in shown.softirqs.matrix.row_labels


def test_many_cpus_aggregate_into_ranges_showing_the_hottest_cpu():
    cpus = list(range(1152))
    zero = [0] * 1152
    hot = [0] * 1152
    hot[700] = 5_000
    a = snapshot(0, interrupts=interrupts(cpus, [("120", "eth0-TxRx-0", zero)]), softirqs=softirqs(cpus, {"NET_RX": zero}))
    b = snapshot(1, interrupts=interrupts(cpus, [("120", "eth0-TxRx-0", hot)]), softirqs=softirqs(cpus, {"NET_RX": hot}))
    f = frame(compute_rates(a, b), hide_idle=False)
    assert len(f.cells.labels) <= 64 and f.cells.per_cell == 18 and not f.cells.numeric
    row = f.irq_rows[0]
    assert max(row.cells) == 5_000  # the hottest CPU, not a sum over its range
    assert sum(1 for lv in row.levels if lv) == 1


def test_cpu_summary_lists_the_busiest_cpus_and_counts_the_rest(synth):
    f = frame(synth, max_cpu_rows=4)
    assert [r.cpu for r in f.cpu_rows][0] == 0 and len(f.cpu_rows) == 4
    assert f.cpus_left_out > 0
    top = f.cpu_rows[0]
    assert top.ksoftirqd_pct == pytest.approx(35.0) and top.dropped == pytest.approx(120.0)
