"""The simulator's outputs read back through irqlab's own parsers, doctor and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irqlab.analysis.delta import compute_rates
from irqlab.analysis.doctor import diagnose
from irqlab.cli.main import main
from irqlab.outputs.proctext import capture
from irqlab.outputs.snapshot_dir import write_capture
from irqlab.sim.machine import Machine
from irqlab.sim.scenario import ScenarioError, load_scenario, parse_scenario
from irqlab.sources.fs import Roots
from irqlab.sources.sampler import take_snapshot

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
SMALL = {"machine": {"cpus": 2, "duration_s": 0.02, "seed": 3},
         "device": [{"name": "eth0", "irq": 41, "kind": "napi", "arrival": {"rate": 200000}},
                    {"name": "i2c", "irq": 7, "kind": "threaded", "cpu": 1, "arrival": {"rate": 1000}}]}


def test_a_simulated_capture_reads_back_through_the_real_parsers(tmp_path):
    m = Machine(parse_scenario(SMALL, "rt")).run()
    snap = m.snapshots[-1]
    write_capture(capture(snap), tmp_path / "t1")
    back = take_snapshot(Roots.capture(tmp_path / "t1"))
    assert back.taken_ns == snap.taken_ns
    assert [ln.key for ln in back.interrupts.lines] == [ln.key for ln in snap.interrupts.lines]
    assert [ln.actions for ln in back.interrupts.lines if ln.numbered] == [("i2c",), ("eth0",)]
    assert np.array_equal(back.interrupts.counts, snap.interrupts.counts)
    assert np.array_equal(back.softirqs.counts, snap.softirqs.counts)
    assert np.array_equal(back.stat.times, snap.stat.times)
    assert back.stat.softirq == snap.stat.softirq and back.stat.intr_total == snap.stat.intr_total
    assert back.softnet.rows == snap.softnet.rows
    assert [(t.comm, t.run_ns, t.policy, t.rt_priority) for t in back.tasks] == \
           [(t.comm, t.run_ns, t.policy, t.rt_priority) for t in snap.tasks]
    assert back.sysctl == snap.sysctl


def test_irqlab_diff_reads_two_simulated_captures(tmp_path, capsys):
    out = tmp_path / "cap"
    assert main(["sim", str(EXAMPLES / "nic-napi.toml"), "--set", "machine.duration_s=0.05", "-q", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["diff", str(out / "t0"), str(out / "t1"), "--json"]) == 0
    assert '"NET_RX"' in capsys.readouterr().out


def test_the_doctor_finds_ksoftirqd_pressure_in_a_simulated_overload():
    sc = load_scenario(EXAMPLES / "dumazet-udp.toml", ("machine.duration_s=0.1", "machine.warmup_s=0.02"))
    m = Machine(sc).run()
    findings = diagnose(compute_rates(m.snapshots[0], m.snapshots[-1]))
    # (the symptom is folded into the cause that explains it, now that the model's threads and net are in the snapshots)
    codes = [x.code for f in findings for x in (f, *f.folded)]
    assert "ksoftirqd-pressure" in codes, codes


@pytest.mark.parametrize("raw, key", [
    ({"machine": {"cpu": 2}}, "machine.cpu"),
    ({"machine": {"hz": 1234}}, "machine.hz"),
    ({"device": [{"arival": {}}]}, "device[0].arival"),
    ({"device": [{"arrival": {"rate": -1}}]}, "device[0].arrival.rate"),
    ({"device": [{"cpu": 5}]}, "device[0].cpu"),
    ({"device": [{"work_ns": {"mean": 1, "dist": "zipf"}}]}, "device[0].work_ns.dist"),
    ({"task": [{"policy": "fifo", "priority": 0}]}, "task[0].priority"),
    ({"machine": {"kernel": "banana"}}, "machine.kernel"),
    ({"device": [{"deliver": "nobody"}]}, "device[0].deliver"),
])
def test_a_bad_scenario_names_the_key(raw, key):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(raw)
    assert key in str(err.value)


_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)
_keys = st.sampled_from(["machine", "net", "device", "task", "cpus", "rate", "arrival", "kind", "x"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, st.one_of(_values, st.dictionaries(st.sampled_from(
    ["cpus", "hz", "kernel", "duration_s", "seed", "name", "rate", "arrival", "work_ns", "kind", "irq"]), _values, max_size=4),
    st.lists(st.dictionaries(st.sampled_from(["name", "irq", "cpu", "kind", "arrival", "work_ns", "policy", "priority"]),
                             _values, max_size=4), max_size=2)), max_size=4))
def test_the_scenario_loader_only_ever_raises_scenario_error(raw):
    try:
        parse_scenario(raw)
    except ScenarioError as exc:
        assert str(exc)


def test_a_missing_scenario_file_is_one_line_and_exit_3(tmp_path, capsys):
    assert main(["sim", str(tmp_path / "nope.toml")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.toml" in err


def test_a_toml_syntax_error_is_one_line_naming_the_file(fixtures, capsys):
    assert main(["sim", str(fixtures / "sim" / "bad-syntax.toml")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad-syntax.toml: not valid TOML" in err


def test_a_misspelt_key_suggests_the_right_one(fixtures, capsys):
    assert main(["sim", str(fixtures / "sim" / "typo-key.toml")]) == 3
    err = capsys.readouterr().err
    assert "device[0].arival: unknown key (did you mean 'arrival'?)" in err


def test_irqlab_top_replays_a_simulated_run(tmp_path, capsys):
    """The issue's `irqlab top --replay` on a simulated run: three captures, two reports."""
    out = tmp_path / "cap"
    assert main(["sim", str(EXAMPLES / "nic-napi.toml"), "--set", "machine.duration_s=0.05", "--set",
                 "machine.samples=3", "-q", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["top", "--replay", str(out / "t0"), str(out / "t1"), str(out / "t2"), "--json"]) == 0
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(reports) == 2
    for rep in reports:
        text = json.dumps(rep)
        assert "eth0" in text and "NET_RX" in text
