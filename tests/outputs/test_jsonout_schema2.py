"""Rates JSON, schema 2: the sparse form of diff/top --json holds exactly what schema 1 holds."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from irqlab.analysis.delta import compute_rates
from irqlab.outputs.jsonout import num, nums, rates_json, render_rates
from irqlab.sources.fs import Roots
from irqlab.sources.sampler import take_snapshot

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FLOOD = FIXTURES / "captures" / "vm-udpflood"
SYNTH96 = [FIXTURES / "top" / "synthetic-96cpu" / f"t{i}" for i in range(2)]


def rates_of(a: Path, b: Path):
    return compute_rates(take_snapshot(Roots.capture(a)), take_snapshot(Roots.capture(b)))


def expand(cpus: list[int], sparse: dict[str, object]) -> dict[str, object]:
    """Schema 2 cells back to schema 1: a CPU left out had a zero delta."""
    return {str(c): sparse.get(str(c), 0) for c in cpus}


def assert_same_cells(full: dict, sparse: dict) -> None:
    assert sparse["schema"] == 2 and full["schema"] == 1
    assert sparse["cpus"] == full["cpus"]
    for kind in ("irqs", "softirqs"):
        assert len(sparse[kind]) == len(full[kind])
        for s_row, f_row in zip(sparse[kind], full[kind]):
            for key in ("delta", "rate"):
                if kind == "irqs" and not f_row["per_cpu"]:
                    assert s_row[key] == f_row[key] == {}
                    continue
                assert expand(full["cpus"], s_row[key]) == f_row[key], (kind, f_row.get("irq", f_row.get("vector")), key)
            rest = lambda r: {k: v for k, v in r.items() if k not in ("delta", "rate")}  # noqa: E731
            assert rest(s_row) == rest(f_row)
    for key in ("interval_s", "before", "after", "per_cpu", "threads", "warnings"):
        assert sparse[key] == full[key]


@pytest.mark.parametrize("pair", [(FLOOD / "a", FLOOD / "b"), tuple(SYNTH96)], ids=["vm-udpflood", "synthetic-96cpu"])
@pytest.mark.parametrize("only", [None, (1, 2, 5)])
def test_schema_2_round_trips_to_the_nonzero_deltas_of_schema_1(pair, only) -> None:
    rates = rates_of(*pair)
    full = rates_json(rates, only, schema=1)
    sparse = json.loads(render_rates(rates, only, schema=2))
    assert_same_cells(full, sparse)


def test_schema_2_leaves_every_zero_delta_out_and_keeps_the_others() -> None:
    rates = rates_of(*SYNTH96)
    doc = rates_json(rates, schema=2)
    per_cpu = [line.per_cpu for line in rates.interrupts.lines]
    assert not all(per_cpu)  # ERR and MIS: one total, no cells
    kept = sum(len(r["delta"]) for r in doc["irqs"]) + sum(len(v["delta"]) for v in doc["softirqs"])
    nonzero = np.count_nonzero(rates.interrupts.delta[per_cpu]) + np.count_nonzero(rates.softirqs.delta)
    assert kept == int(nonzero) > 0
    for row in doc["irqs"] + doc["softirqs"]:
        assert all(v != 0 for v in row["delta"].values())
        assert set(row["rate"]) == set(row["delta"])


def test_a_cell_that_was_not_differenced_stays_in_schema_2_as_null(tmp_path: Path) -> None:
    # A counter that went backwards is a reset: NaN in the rates, null in JSON, never "0".
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(FLOOD / "a", a)
    shutil.copytree(FLOOD / "b", b)
    text = (b / "proc" / "interrupts").read_text().splitlines(keepends=True)
    k = next(i for i, line in enumerate(text) if line.lstrip().startswith("26:"))
    text[k] = text[k].replace("         11", "          0", 1)  # ttyS0 on CPU1: 11 -> 0
    (b / "proc" / "interrupts").write_text("".join(text))
    rates = rates_of(a, b)
    row = next(r for r in rates_json(rates, schema=2)["irqs"] if r["irq"] == "26")
    assert row["delta"] == {"1": None} and row["rate"] == {"1": None}
    assert_same_cells(rates_json(rates, schema=1), json.loads(render_rates(rates, schema=2)))


def test_schema_2_prints_one_row_per_line_and_top_prints_one_line() -> None:
    rates = rates_of(FLOOD / "a", FLOOD / "b")
    lines = render_rates(rates).splitlines()
    assert sum(1 for line in lines if line.startswith('    {"irq": ')) == len(rates.interrupts.lines)
    one = render_rates(rates, pretty=False)
    assert one.count("\n") == 1 and json.loads(one) == json.loads(render_rates(rates))


def test_an_unknown_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="schema 3"):
        rates_json(rates_of(FLOOD / "a", FLOOD / "b"), schema=3)


SPECIAL = [0.0, -0.0, 1.0, 2.5, 1e-4, 0.0005, 0.0015, 2.0**53, 2.0**53 - 1, -(2.0**53), 1e300, math.nan, math.inf, -math.inf]


@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(SPECIAL)), max_size=50))
def test_nums_gives_what_num_gives_for_each_value(values: list[float]) -> None:
    arr = np.array(values, dtype=np.float64)
    got, want = nums(arr), [num(v) for v in arr]
    assert [type(x) for x in got] == [type(x) for x in want]
    assert json.dumps(got) == json.dumps(want)
