"""The watch config: every key validated, one clear error naming it; fuzzed."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irqlab.analysis.storm import Rule
from irqlab.daemon.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "watch.toml"
FIXTURES = REPO / "tests" / "fixtures" / "watch"


def test_the_shipped_example_config_is_valid():
    cfg = parse_config(tomllib.loads(EXAMPLE.read_text()), str(EXAMPLE))
    assert cfg.detect.irq[-1] == Rule("*", 100_000.0, 1_000_000.0)


def test_defaults_follow_the_seed_thresholds():
    cfg = parse_config({})
    assert cfg.detect.irq == (Rule("*", 100_000.0, 1_000_000.0),)
    assert cfg.plan.napi_defer_hard_irqs == 2 and cfg.alert.webhook == ""


@pytest.mark.parametrize(
    "data, key",
    [
        ({"interval": 0}, "interval"),
        ({"interval": "1"}, "interval"),
        ({"intreval": 1}, "intreval: unknown key (did you mean 'interval'?)"),
        ({"detect": {"irq": [{"match": "*", "warn": 10, "act": 5}]}}, "detect.irq[0].act"),
        ({"detect": {"irq": {"match": "*"}}}, "detect.irq"),
        ({"detect": {"baseline": {"k": -1}}}, "detect.baseline.k"),
        ({"detect": {"start_intervals": 1.5}}, "detect.start_intervals"),
        ({"ladder": {"softirq": {"act": ["reboot"]}}}, "ladder.softirq.act: 'reboot' is not one of"),
        ({"ladder": {"disk": {}}}, "ladder.disk: unknown storm class"),
        ({"mitigate": {"sacrificial_cpus": "1-"}}, "mitigate.sacrificial_cpus"),
        ({"mitigate": {"napi_defer_hard_irqs": 2**31}}, "mitigate.napi_defer_hard_irqs"),
        ({"mitigate": {"device": [{"netns": "x"}]}}, "mitigate.device[0].match"),
        ({"alert": {"webhook": "ftp://x"}}, "alert.webhook"),
        ({"alert": {"exec": ["page-oncall"]}}, "alert.exec: the program must be an absolute path"),
        ({"alert": {"syslog": 1}}, "alert.syslog"),
    ],
)
def test_a_bad_value_is_one_error_naming_the_key(data, key):
    with pytest.raises(ConfigError) as err:
        parse_config(data, "w.toml")
    assert str(err.value).startswith("w.toml: ") and key in str(err.value)
    assert "\n" not in str(err.value)


def test_invalid_toml_is_one_error_naming_the_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("interval = = 1\n")
    os.chmod(p, 0o644)
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_config(p)


def test_a_missing_config_is_one_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot"):
        load_config(tmp_path / "none.toml")


@pytest.mark.root
def test_as_root_a_config_writable_by_others_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the ownership rule applies to root")
    p = tmp_path / "w.toml"
    p.write_text("interval = 1\n")
    os.chmod(p, 0o666)
    with pytest.raises(ConfigError, match="writable by a user other than root"):
        load_config(p)
    os.chmod(p, 0o644)
    os.chown(p, 65534, 0)
    with pytest.raises(ConfigError, match="owner uid 65534"):
        load_config(p)


@pytest.mark.root
def test_as_root_an_exec_hook_writable_by_others_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the ownership rule applies to root")
    hook = tmp_path / "hook"
    hook.write_text("#!/bin/sh\n")
    os.chmod(hook, 0o777)
    p = tmp_path / "w.toml"
    p.write_text(f'[alert]\nexec = ["{hook}"]\n')
    os.chmod(p, 0o644)
    with pytest.raises(ConfigError, match="exec hook is writable"):
        load_config(p)


def test_the_fixture_configs_parse_or_fail_as_their_name_says():
    for path in sorted(FIXTURES.glob("*.toml")):
        data = tomllib.loads(path.read_text())
        if path.name.startswith("bad-"):
            with pytest.raises(ConfigError):
                parse_config(data, path.name)
        else:
            parse_config(data, path.name)


# --- fuzzing ------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=True), st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)
KEYS = ["interval", "hold_down", "journal", "detect", "ladder", "mitigate", "alert", "irq", "softirq", "warn", "act", "match",
        "baseline", "k", "window", "device", "netns", "exec", "webhook", "softirq", "act", "warn", "start_intervals"]
near_valid = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=16,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(values, near_valid))
def test_any_parsed_toml_value_gives_a_config_or_one_config_error(data):
    try:
        parse_config(data, "fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml: ") and "\n" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_file_text_gives_a_config_or_one_config_error(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("fuzz") / "w.toml"
    p.write_text(text)
    os.chmod(p, 0o644)
    try:
        load_config(p)
    except ConfigError:
        pass


@pytest.mark.parametrize(
    "url, why",
    [
        ("http://hooks.example/alert me", "spaces or control characters"),
        ("http://hooks.example/alert\tme", "spaces or control characters"),
        ("http://hooks.example/\x1b[2J", "spaces or control characters"),
        ("http://hooks.example/caf\u00e9", "ASCII"),
        ("http:///alert", "no host"),
        ("https://hooks.example:99999/alert", "port"),
        ("ftp://hooks.example/alert", "http:// or https://"),
    ],
)
def test_a_webhook_url_that_could_never_be_sent_is_refused_at_load(url, why):
    with pytest.raises(ConfigError) as err:
        parse_config({"alert": {"webhook": url}}, "w.toml")
    assert "w.toml: alert.webhook: " in str(err.value) and why in str(err.value)
    assert "\x1b" not in str(err.value) and "\n" not in str(err.value)


def test_credentials_in_a_bad_webhook_url_are_never_quoted_back():
    for url in ("http://ops:hunter2@hooks.example/a b?token=T0KEN", "ftp://ops:hunter2@hooks.example/?token=T0KEN"):
        with pytest.raises(ConfigError) as err:
            parse_config({"alert": {"webhook": url}}, "w.toml")
        assert "hunter2" not in str(err.value) and "T0KEN" not in str(err.value), str(err.value)
        assert "***" in str(err.value)


def test_a_good_webhook_url_with_credentials_is_accepted():
    cfg = parse_config({"alert": {"webhook": "https://ops:hunter2@hooks.example:8443/alert?token=T0KEN"}}, "w.toml")
    assert cfg.alert.webhook.endswith("token=T0KEN")


def root_owned_dir(base: Path, name: str, mode: int = 0o755) -> Path:
    d = base / name
    d.mkdir()
    os.chmod(d, mode)
    return d


def config_with_exec(tmp_path: Path, argv: list[str]) -> Path:
    p = tmp_path / "w.toml"
    p.write_text("[alert]\nexec = [" + ", ".join(f'"{a}"' for a in argv) + "]\n")
    os.chmod(p, 0o644)
    return p


@pytest.mark.root
def test_as_root_every_file_argument_of_the_exec_hook_is_checked_not_only_argv0(tmp_path):
    """`exec = ["/bin/sh", "/tmp/x/hook.sh"]`: /bin/sh is root's, hook.sh was someone else's."""
    if os.geteuid() != 0:
        pytest.skip("the ownership rule applies to root")
    d = root_owned_dir(tmp_path, "hooks")
    hook = d / "hook.sh"
    hook.write_text("echo hi\n")
    os.chmod(hook, 0o644)
    assert load_config(config_with_exec(tmp_path, ["/bin/sh", str(hook)])).alert.exec[1] == str(hook)
    os.chown(hook, 65534, 65534)
    with pytest.raises(ConfigError, match="owner uid 65534"):
        load_config(config_with_exec(tmp_path, ["/bin/sh", str(hook)]))
    os.chown(hook, 0, 0)
    os.chmod(hook, 0o664)
    with pytest.raises(ConfigError, match="writable by a user other than root"):
        load_config(config_with_exec(tmp_path, ["/bin/sh", str(hook)]))


@pytest.mark.root
def test_as_root_a_hook_in_a_directory_another_user_can_write_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the ownership rule applies to root")
    for owner, mode in ((65534, 0o755), (0, 0o775), (0, 0o757)):
        d = root_owned_dir(tmp_path, f"hooks-{owner}-{mode:o}", mode)
        os.chown(d, owner, 0)
        hook = d / "hook.sh"
        hook.write_text("echo hi\n")
        os.chmod(hook, 0o755)
        for argv in (["/bin/sh", str(hook)], [str(hook)]):
            with pytest.raises(ConfigError, match=f"directory {d}"):
                load_config(config_with_exec(tmp_path, argv))


@pytest.mark.root
def test_as_root_an_interpreter_without_a_checked_script_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the ownership rule applies to root")
    for argv in (["/bin/sh", "-c", "curl x"], ["/usr/bin/env", "python3", "x.py"], ["/bin/bash"]):
        with pytest.raises(ConfigError, match="interpreter"):
            load_config(config_with_exec(tmp_path, argv))
    assert load_config(config_with_exec(tmp_path, ["/bin/true", "--x"])).alert.exec == ("/bin/true", "--x")


def test_an_unknown_key_is_reported_with_a_suggestion():
    with pytest.raises(ConfigError) as err:
        parse_config({"alert": {"webhok": "http://x/"}}, "w.toml")
    assert str(err.value) == "w.toml: alert.webhok: unknown key (did you mean 'webhook'?)"


def test_times_take_a_unit_or_seconds():
    cfg = parse_config({"interval": "250ms", "hold_down": "2 min", "alert": {"webhook_timeout": 0.5}})
    assert cfg.interval_s == 0.25 and cfg.hold_down_s == 120.0 and cfg.alert.webhook_timeout_s == 0.5
    with pytest.raises(ConfigError, match=r"w\.toml: interval: must be a duration from 0\.05 to 3600 s"):
        parse_config({"interval": "10ms"}, "w.toml")


def test_a_config_that_is_a_fifo_is_refused_not_waited_on(tmp_path):
    p = tmp_path / "w.toml"
    os.mkfifo(p, 0o644)
    with pytest.raises(ConfigError, match=r"w\.toml: cannot read config file: not a regular file"):
        load_config(p)
