"""The budget TOML loader: the shipped examples parse, bad files fail with one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irqlab.analysis.latency_budget import BudgetError, parse_budgets

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_seed_table_example_has_its_five_classes_and_limits():
    classes = parse_budgets((EXAMPLES / "budgets.toml").read_text(), "budgets.toml")
    assert [(c.name, c.max_ns) for c in classes] == [
        ("collision detection", 10_000), ("brake", 50_000), ("steering", 100_000),
        ("path planning", 1_000_000), ("UI update", 10_000_000)]
    assert all(c.consequence for c in classes)
    assert classes[0].interval_ns == 1_000_000 and classes[0].duration_s == 5  # from [defaults]
    assert classes[3].interval_ns == 10_000_000  # a class overrides a default


def test_the_rocket_example_parses():
    names = [c.name for c in parse_budgets((EXAMPLES / "budgets-rocket.toml").read_text())]
    assert names == ["engine_anomaly", "trajectory_correction", "stage_separation", "telemetry"]


def test_fractional_microseconds_and_cpu_lists_are_accepted():
    (c,) = parse_budgets('[[class]]\nname = "x"\ncpus = "0-1"\np999_us = 12.5\n')
    assert c.cpus == (0, 1) and c.p999_ns == 12_500 and c.limits() == (("p99.9", 12_500),)


BAD = [
    ("[[class]]\nname = 'a'\nmax_us = -5\n", "class[0].max_us: must be a duration above 0"),
    ("[[class]]\nname = 'a'\nmax_us = true\n", "max_us"),
    ("[[class]]\nname = 'a'\nmax_us = 'ten'\n", "max_us"),
    ("[[class]]\nname = 'a'\nmax_us = nan\n", "max_us"),
    ("[[class]]\nname = 'a'\n", "p99_us, p999_us, max_us"),
    ("[[class]]\nname = 'a'\nmax_us = 5\nmax_usec = 3\n", "max_usec"),
    ("[[class]]\nmax_us = 5\n", "name"),
    ("[[class]]\nname = 'a'\nmax_us = 5\ncpus = '3-1'\n", "cpus"),
    ("[[class]]\nname = 'a'\nmax_us = 5\ncpus = [1]\n", "cpus"),
    ("[[class]]\nname = 'a'\nmax_us = 5\npriority = 100\n", "priority"),
    ("[[class]]\nname = 'a'\nmax_us = 5\nduration_s = 0\n", "duration_s"),
    ("[[class]]\nname = 'a'\nmax_us = 5\n[[class]]\nname = 'a'\nmax_us = 6\n", "class[1].name: used twice"),
    ("[defaults]\nname = 'x'\n[[class]]\nname = 'a'\nmax_us = 5\n", "defaults.name: unknown key"),
    ("[budget]\nx = 1\n", "b.toml: budget: unknown key"),
    ("", "no [[class]]"),
    ("[[class]\n", "not valid TOML"),
]


@pytest.mark.parametrize("text, key", BAD, ids=[k for _, k in BAD])
def test_a_bad_budget_fails_with_one_line_naming_the_key(text, key):
    with pytest.raises(BudgetError) as err:
        parse_budgets(text, "b.toml")
    msg = str(err.value)
    assert key in msg and msg.startswith("b.toml: ") and "\n" not in msg.split(": not valid TOML")[0]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_budget_or_a_budget_error(text):
    try:
        parse_budgets(text)
    except BudgetError:
        pass


scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                   st.text(max_size=20), st.lists(st.integers(0, 5), max_size=3))
keys = st.sampled_from(["name", "cpus", "interval_us", "duration_s", "priority", "p99_us", "p999_us", "max_us",
                        "consequence", "bogus"])


def _toml_value(v) -> str:
    if v is None:
        return '""'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(v, "nan" if v != v else repr(v))
    if isinstance(v, str):
        return '"' + v.encode("unicode_escape").decode().replace('"', '\\"') + '"'
    return repr(v)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(keys, scalar, max_size=6), min_size=1, max_size=4))
def test_any_typed_values_give_a_valid_class_or_a_budget_error(classes):
    text = "".join("[[class]]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in c.items()) for c in classes)
    try:
        parsed = parse_budgets(text)
    except BudgetError:
        return
    for c in parsed:
        assert c.name and c.limits() and all(v > 0 for _, v in c.limits())


def test_an_unknown_class_key_is_reported_with_a_suggestion():
    with pytest.raises(BudgetError) as err:
        parse_budgets("[[class]]\nname = 'a'\nmax_us = 5\np99_usec = 3\n", "b.toml")
    assert str(err.value) == "b.toml: class[0].p99_usec: unknown key (did you mean 'p99_us'?)"


def test_limits_take_a_unit_and_defaults_fill_what_a_class_leaves_out():
    (c,) = parse_budgets({"defaults": {"interval_us": "1ms", "duration_s": "500ms"},
                          "class": [{"name": "x", "max_us": "50us", "p99_us": "0.02 ms"}]})
    assert (c.max_ns, c.p99_ns, c.interval_ns, c.duration_s) == (50_000, 20_000, 1_000_000, 0.5)


def test_a_bad_default_is_named_where_it_is_written():
    with pytest.raises(BudgetError, match=r"^b\.toml: defaults\.max_us: must be a duration"):
        parse_budgets("[defaults]\nmax_us = -1\n[[class]]\nname = 'a'\n", "b.toml")
