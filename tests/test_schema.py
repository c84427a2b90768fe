"""The TOML schema layer: each typed field at both ends of its range, units, "did you mean",
and the one error format `FILE: key.path: message`."""

from __future__ import annotations

import math
import os

import pytest

from irqlab.schema import (
    Array,
    At,
    Bool,
    CpuList,
    Duration,
    Float,
    Int,
    Map,
    Numbers,
    SchemaError,
    Str,
    Strings,
    Table,
    decode_toml,
    did_you_mean,
    load_toml,
    parse_duration,
    read,
)

AT = At(SchemaError, "f.toml", "t.k")


def refused(field, value) -> str:
    with pytest.raises(SchemaError) as err:
        field.check(value, AT)
    msg = str(err.value)
    assert msg.startswith("f.toml: t.k: ") and "\n" not in msg
    return msg.removeprefix("f.toml: t.k: ")


def test_int_takes_both_ends_of_its_range_and_refuses_one_beyond_each():
    f = Int(2, 1, 64)
    assert f.check(1, AT) == 1 and f.check(64, AT) == 64
    assert refused(f, 0) == "must be an integer from 1 to 64, not 0"
    assert refused(f, 65) == "must be an integer from 1 to 64, not 65"


@pytest.mark.parametrize("value", [True, 2.0, "2", None, [2]])
def test_int_refuses_what_is_not_an_integer(value):
    assert refused(Int(2, 1, 64), value).startswith("must be an integer from 1 to 64, not ")


def test_int_with_choices_names_them():
    assert Int(1000, choices=(100, 1000)).check(100, AT) == 100
    assert refused(Int(1000, choices=(100, 1000)), 250) == "must be one of 100, 1000, not 250"


def test_float_takes_an_int_and_both_ends_and_refuses_beyond_and_non_finite():
    f = Float(0.5, 0.01, 1.0)
    assert f.check(1, AT) == 1.0 and isinstance(f.check(1, AT), float) and f.check(0.01, AT) == 0.01
    assert refused(f, 0.0099) == "must be a number from 0.01 to 1, not 0.0099"
    assert refused(f, 1.0001).startswith("must be a number from 0.01 to 1")
    for bad in (math.nan, math.inf, True, "1"):
        refused(f, bad)


def test_an_open_lower_end_excludes_it():
    f = Float(None, 0, 10, lo_open=True)
    assert f.check(10, AT) == 10.0 and f.check(1e-9, AT) == 1e-9
    assert refused(f, 0) == "must be a number above 0 and up to 10, not 0"


def test_bool_takes_only_true_or_false():
    assert Bool(True).check(False, AT) is False
    assert refused(Bool(True), 1) == "must be true or false, not 1"


def test_str_checks_length_nul_blank_and_choices():
    assert Str("", max_len=3).check("abc", AT) == "abc"
    assert refused(Str("", max_len=3), "abcd") == "must be a string of at most 3 characters, not 'abcd'"
    refused(Str(""), "a\x00b")
    refused(Str("", nonempty=True), "  ")
    assert refused(Str("poisson", choices=("poisson", "ramp")), "rmap") == "'rmap' is not one of poisson, ramp"


def test_strings_numbers_and_cpulists():
    assert Strings((), choices=("a", "b")).check(["a", "b"], AT) == ("a", "b")
    assert refused(Strings((), choices=("a", "b")), ["c"]) == "'c' is not one of a, b"
    refused(Strings(()), ["a", ""])
    assert Numbers((), 0, 10).check([0, 10, 2.5], AT) == (0.0, 10.0, 2.5)
    assert refused(Numbers((), 0, 10), [11]) == "must be a list of numbers from 0 to 10, not [11]"
    assert CpuList(()).check("0-2,5", AT) == (0, 1, 2, 5) and CpuList(()).check(3, AT) == (3,)
    assert refused(CpuList(()), "3-1").startswith("not a CPU list like 0-3,8")
    assert refused(CpuList((), nonempty=True), "") == "empty CPU list"


@pytest.mark.parametrize("text, unit, amount", [
    ("10ms", "s", 0.01), ("2 s", "s", 2.0), ("1.5h", "s", 5400.0), ("500 us", "ms", 0.5), ("250µs", "us", 250.0),
    ("1e3ns", "us", 1.0), ("2min", "s", 120.0), ("-5 ms", "ms", -5.0),
])
def test_durations_in_text_carry_their_unit(text, unit, amount):
    assert parse_duration(text, unit) == pytest.approx(amount)


@pytest.mark.parametrize("text", ["10", "10 parsecs", "ms", "1.2.3s", "nan s", "10 m s"])
def test_text_that_is_not_a_number_and_a_unit_is_no_duration(text):
    assert parse_duration(text, "s") is None


def test_a_duration_is_integer_ns_from_a_number_in_the_key_unit_or_text_with_a_unit():
    f = Duration(1.0, "s", 0.05, 3600)
    assert f.absent(AT) == 1_000_000_000
    assert f.check(0.05, AT) == 50_000_000 and f.check("50ms", AT) == 50_000_000 and f.check("1 h", AT) == 3600 * 10**9
    assert refused(f, 0.0499) == "must be a duration from 0.05 to 3600 s, not 0.0499"
    assert refused(f, "3601 s").startswith("must be a duration from 0.05 to 3600 s")
    assert refused(f, "soon") == 'must be a duration from 0.05 to 3600 s (a number of s, or text like "10ms"), not \'soon\''


def test_a_duration_above_zero_that_rounds_to_no_time_is_refused():
    f = Duration(None, "us", 0, 10, lo_open=True)
    assert f.check(0.001, AT) == 1
    assert refused(f, 0.0001) == "0.0001 us is below one nanosecond"


def test_did_you_mean_suggests_the_nearest_key_else_lists_them():
    assert did_you_mean("intreval", ["interval", "journal"]) == " (did you mean 'interval'?)"
    assert did_you_mean("zzz", ["interval", "journal"]) == " (known: interval, journal)"


SCHEMA = {"cpus": Int(2, 1, 64), "sub": Table({"rate": Float(0.0, 0, 1)}),
          "items": Array({"name": Str(required=True)}), "names": Map(Int(0), keys=("RCU", "TIMER"), what="vector")}


def test_read_fills_defaults_and_records_which_keys_were_given():
    v = read({"cpus": 4}, SCHEMA, At(SchemaError))
    assert v["cpus"] == 4 and v["sub"]["rate"] == 0.0 and v["items"] == () and v["names"] == {}
    assert v.given == {"cpus"}


def test_an_unknown_key_is_named_with_a_suggestion_in_the_one_format():
    with pytest.raises(SchemaError) as err:
        read({"sub": {"rtae": 1}}, SCHEMA, At(SchemaError, "f.toml"))
    assert str(err.value) == "f.toml: sub.rtae: unknown key (did you mean 'rate'?)"
    assert err.value.key == "sub.rtae" and err.value.origin == "f.toml"


def test_key_paths_name_array_items_and_without_a_file_start_at_the_key():
    with pytest.raises(SchemaError) as err:
        read({"items": [{"name": "a"}, {}]}, SCHEMA, At(SchemaError))
    assert str(err.value) == "items[1].name: missing"
    with pytest.raises(SchemaError) as err:
        read({"items": {"name": "a"}}, SCHEMA, At(SchemaError))
    assert str(err.value) == "items: must be an array of tables ([[items]])"
    with pytest.raises(SchemaError) as err:
        read({"names": {"RUC": 1}}, SCHEMA, At(SchemaError))
    assert str(err.value) == "names.RUC: unknown vector (did you mean 'RCU'?)"


def test_a_key_that_is_not_bare_is_quoted_on_one_line():
    with pytest.raises(SchemaError) as err:
        read({"a b\n\x1b[2J": 1}, SCHEMA, At(SchemaError, "f.toml"))
    msg = str(err.value)
    assert msg.startswith('f.toml: "a b\\n\\u001b[2J": unknown key') and "\n" not in msg and "\x1b" not in msg


def test_in_file_names_the_file_once_and_keeps_the_class():
    class MyError(SchemaError):
        pass

    err = At(MyError, "", "machine.cpus").fail("must be ...")
    named = err.in_file("s.toml")
    assert type(named) is MyError and str(named) == "s.toml: machine.cpus: must be ..."
    assert named.in_file("other.toml") is named


def test_a_table_with_a_shorthand_takes_a_lone_value_for_that_key():
    cost = Table({"mean": Float(required=True, lo=0), "dist": Str("const")}, shorthand="mean", build=lambda v: (v["mean"], v["dist"]))
    assert cost.check(5, AT) == (5.0, "const") and cost.check({"mean": 2, "dist": "exp"}, AT) == (2.0, "exp")
    assert refused(cost, -1) == "must be a number of at least 0, not -1"


def test_toml_text_errors_name_the_file():
    assert decode_toml(b"a = 1\n", "f.toml") == {"a": 1}
    for data, why in ((b"a = = 1", "f.toml: not valid TOML"), (b"a = '\xff'", "f.toml: not UTF-8 text"),
                      ("a = " + "[" * 100_000, "f.toml: not valid TOML")):
        with pytest.raises(SchemaError) as err:
            decode_toml(data, "f.toml")
        assert str(err.value).startswith(why) and "\n" not in str(err.value)


def test_load_toml_reads_a_regular_file_and_refuses_the_rest(tmp_path):
    (tmp_path / "ok.toml").write_text("a = 1\n")
    assert load_toml(tmp_path / "ok.toml") == {"a": 1}
    with pytest.raises(SchemaError, match=r"nope\.toml: cannot read config: No such file"):
        load_toml(tmp_path / "nope.toml", what="config")
    with pytest.raises(SchemaError, match=r"cannot read config: Is a directory"):
        load_toml(tmp_path, what="config")
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)  # no writer: a blocking open or read would never return
    with pytest.raises(SchemaError, match=r"fifo\.toml: cannot read config: not a regular file"):
        load_toml(fifo, what="config")


def test_load_toml_hands_the_opened_file_to_its_check():
    seen = []

    def check(st: os.stat_result, what: str) -> str | None:
        seen.append(what)
        return "refused for the test"

    with pytest.raises(SchemaError) as err:
        load_toml(__file__, what="config file", check=check)
    assert seen == ["config file"] and str(err.value) == f"{__file__}: refused for the test"
