"""The validation experiments of docs/VALIDATION.md: the criterion, the calibration split, the runs."""

from __future__ import annotations

import copy
import math
import statistics
import subprocess
import sys

import pytest

from irqlab.sim import validate, validate_netrx
from irqlab.sim.machine import Machine
from irqlab.sim.scenario import parse_scenario
from irqlab.sim.validate_netrx import judge, spearman

# --- the criterion on constructed series ----------------------------------------------------

# Shares (%) shaped like the calibration load's: near zero at low rates, a few percent at the top.
MEASURED = [0.05, 0.45, 2.38, 3.02, 2.60]
LABELS = ["500M", "1G", "2G", "3G", "0"]


def test_spearman_gives_tied_values_their_average_rank():
    # [1, 1, 2] ranks as [1.5, 1.5, 3]; Pearson of those with [1, 2, 3] is 1.5 / sqrt(3).
    assert spearman([1, 2, 3], [1, 1, 2]) == pytest.approx(1.5 / math.sqrt(3))
    assert validate_netrx.average_ranks([3.0, 1.0, 3.0, 2.0]) == [3.5, 1.0, 3.5, 2.0]


def test_a_flat_prediction_has_no_rank_agreement_with_a_rising_measurement():
    # Ranking ties by position made any flat series score 1.0 against an increasing one.
    assert math.isnan(spearman([0.1, 0.5, 1.0, 2.0, 3.0], [1.5] * 5))


def test_a_flat_prediction_fails_the_criterion():
    # A flat 1.5 % was within 2 pp of every point and scored Spearman 0.90: the old criterion passed it.
    for level in (1.5, statistics.median(MEASURED)):
        v = judge(MEASURED, [level] * len(MEASURED), LABELS)
        assert not v.passed, (level, v)


def test_a_reversed_prediction_fails_the_criterion():
    v = judge(MEASURED, list(reversed(sorted(MEASURED))), LABELS)
    assert not v.passed, v
    assert v.rho is not None and v.rho < 0


def test_a_right_shape_at_three_times_the_level_fails_the_criterion():
    v = judge(MEASURED, [3 * m for m in MEASURED], LABELS)
    assert not v.passed, v
    assert v.rho == pytest.approx(1.0)  # ordered right, and still wrong


def test_a_prediction_within_the_relative_tolerance_passes():
    close = [m * 1.3 + 0.05 for m in MEASURED]
    assert judge(MEASURED, close, LABELS).passed


def test_near_zero_measurements_are_judged_by_the_absolute_floor_and_not_by_ordering():
    v = judge([0.0, 0.02, 0.05], [0.1, 0.0, 0.15], ["a", "b", "c"])
    assert v.passed and v.rho is None
    assert not judge([0.0, 0.02, 0.05], [0.1, 0.0, 0.6], ["a", "b", "c"]).passed


# --- calibration only reads the calibration kind --------------------------------------------

def test_the_measured_fixture_has_provenance_and_every_kind():
    data = validate_netrx.load_data()
    for name in (validate_netrx.CALIBRATION, *validate_netrx.HELD_OUT):
        kind = data["kinds"][name]
        assert kind["kernel"] and kind["taken"] and kind["command"].startswith("load.sh")
        assert len(kind["points"]) >= 3
        for p in kind["points"]:
            assert p["repeats"] >= 2 and p["packets_per_s"] > 0


def test_held_out_measurements_cannot_reach_the_calibration_or_their_own_prediction():
    data = validate_netrx.load_data()
    costs = validate_netrx.calibrate(data)
    tampered = copy.deepcopy(data)
    for name in validate_netrx.HELD_OUT:
        for p in tampered["kinds"][name]["points"]:
            # what the model predicts, and the CPU0 costs it must take from the calibration
            p.update(ksoftirqd_runs_pct=99.0, ksoftirqd_time_pct=99.0, ns_per_packet=1.0, rcu_ns_per_s=1.0)
            p["tick"] = {v: {"runs_per_s": 1e6, "avg_ns": 1} for v in p["tick"]}
    assert validate_netrx.calibrate(tampered) == costs
    for name in validate_netrx.HELD_OUT:
        for a, b in zip(data["kinds"][name]["points"], tampered["kinds"][name]["points"]):
            assert (validate_netrx.scenario(data["kinds"][name], a, costs, 1, 0.1)
                    == validate_netrx.scenario(tampered["kinds"][name], b, costs, 1, 0.1))


def test_changing_the_calibration_runs_changes_the_costs():
    data = validate_netrx.load_data()
    changed = copy.deepcopy(data)
    for p in changed["kinds"][validate_netrx.CALIBRATION]["points"]:
        p["ns_per_packet"] *= 2
    assert validate_netrx.calibrate(changed).rx_ns == pytest.approx(2 * validate_netrx.calibrate(data).rx_ns, abs=1)


# --- the model's shares are read as the live trace reads them ------------------------------

def test_the_traced_ksoftirqd_runs_agree_with_the_models_own_count():
    data = validate_netrx.load_data()
    kind = data["kinds"]["udp8000-rps-budget2"]
    sc = parse_scenario(validate_netrx.scenario(kind, kind["points"][-1], validate_netrx.calibrate(data), 1, 0.1))
    m = Machine(sc).run()
    runs_pct, time_pct, n = validate_netrx.ksoftirqd_shares(m, 0, 0)
    st = m.softirq_state[0]
    nr = validate_netrx.NET_RX
    assert st.counts[nr] - n in (0, 1)  # a run still going at the end has no softirq_exit yet
    assert runs_pct == pytest.approx(100 * st.ksoftirqd_vectors[nr] / st.counts[nr], rel=1e-3)
    assert 0 < time_pct <= 100


# --- the experiments -------------------------------------------------------------------------

@pytest.mark.slow
def test_receive_livelock_and_the_napi_flat_curve_are_reproduced():
    livelock, flat = validate.livelock(quick=True)
    assert livelock.passed, livelock.detail
    assert flat.passed, flat.detail


@pytest.mark.slow
def test_dumazet_2016_pre_4_9_starves_the_receiver_and_4_9_does_not():
    r = validate.dumazet(quick=True)
    assert r.passed, r.detail


@pytest.mark.slow
def test_max_restart_trades_ksoftirqd_handoffs_against_task_starvation():
    r = validate.max_restart(quick=True)
    assert r.passed, r.detail


@pytest.mark.slow
def test_sim_validate_prints_a_verdict_per_experiment_and_the_time_and_exits_by_them():
    cp = subprocess.run([sys.executable, "-m", "irqlab", "sim", "--validate", "-q"], capture_output=True, text=True, timeout=300)
    lines = cp.stdout.splitlines()
    verdicts = [ln.split()[0] for ln in lines if ln.startswith(("PASS ", "FAIL "))]
    names = [ln.split()[1] for ln in lines if ln.startswith(("PASS ", "FAIL "))]
    assert names == ["receive-livelock", "napi-flat", "dumazet-2016", "max-restart",
                     "this-machine-calibration", "this-machine-udp64", "this-machine-budget2"], cp.stdout + cp.stderr
    assert "experiments passed in" in lines[-1]
    assert cp.returncode == (0 if all(v == "PASS" for v in verdicts) else 1)
