"""The scenario loader on the schema layer: suggestions for misspelt keys, units on time keys,
and the one error format with the file named."""

from __future__ import annotations

import pytest

from irqlab.sim.scenario import ScenarioError, load_scenario, override, parse_scenario


def test_an_unknown_machine_key_is_reported_with_a_suggestion():
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"machine": {"cpuss": 2}})
    assert str(err.value) == "machine.cpuss: unknown key (did you mean 'cpus'?)"


def test_time_keys_take_a_unit_or_a_number_in_the_unit_of_their_name():
    a = parse_scenario({"machine": {"duration_s": "50ms", "warmup_s": "10 ms"}, "task": [{"period_us": "2ms"}]})
    b = parse_scenario({"machine": {"duration_s": 0.05, "warmup_s": 0.01}, "task": [{"period_us": 2000}]})
    assert a.duration_ns == b.duration_ns == 50_000_000 and a.warmup_ns == b.warmup_ns == 10_000_000
    assert a.tasks[0].period_ns == b.tasks[0].period_ns == 2_000_000


def test_an_override_may_give_a_unit():
    raw = override({"machine": {"cpus": 2}}, "machine.duration_s=20ms")
    assert parse_scenario(raw).duration_ns == 20_000_000


def test_a_warmup_as_long_as_the_run_names_both_keys():
    with pytest.raises(ScenarioError, match=r"^machine\.warmup_s: must be shorter than machine\.duration_s"):
        parse_scenario({"machine": {"duration_s": 0.01, "warmup_s": "10ms"}})


def test_a_cpu_beyond_the_machine_is_refused_in_the_one_format_naming_the_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[machine]\ncpus = 2\n[[device]]\ncpu = 5\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(err.value) == f"{path}: device[0].cpu: must be an integer from 0 to 1, not 5"


def test_a_scenario_that_is_not_a_regular_file_is_one_error(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(tmp_path)
