"""The command line on the project's own captures: golden outputs, exit codes, bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from irqlab.cli.main import EXIT_ERROR, EXIT_USAGE, main

CAPTURES = Path(__file__).resolve().parent.parent / "fixtures" / "captures"
# Relative to CAPTURES, so that outputs (which name the capture) do not depend on the clone.
FLOOD_A, FLOOD_B = Path("vm-udpflood/a"), Path("vm-udpflood/b")


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.chdir(CAPTURES)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_diff_text_golden(capsys, golden):
    code, out, err = run(capsys, "diff", str(FLOOD_A), str(FLOOD_B))
    assert code == 0 and err == ""
    assert "NET_RX" in out
    golden("diff-udpflood.txt", out)


def test_diff_json_golden_has_the_documented_keys(capsys, golden):
    code, out, _ = run(capsys, "diff", str(FLOOD_A), str(FLOOD_B), "--json", "--json-schema", "1")
    assert code == 0
    doc = json.loads(out)
    loc = next(r for r in doc["irqs"] if r["irq"] == "LOC")
    assert set(loc["delta"]) == {"0", "1"} and set(loc["rate"]) == {"0", "1"}
    assert loc["name"] == "Local timer interrupts"
    net_rx = next(v for v in doc["softirqs"] if v["vector"] == "NET_RX")
    assert net_rx["total_rate"] > 1000
    assert doc["warnings"] == []
    golden("diff-udpflood.json", out)


def test_diff_interval_overrides_capture_times(capsys):
    _, out, _ = run(capsys, "diff", str(FLOOD_A), str(FLOOD_B), "--json")
    _, out2, _ = run(capsys, "diff", str(FLOOD_A), str(FLOOD_B), "--json", "--interval", "10")
    a, b = json.loads(out), json.loads(out2)
    assert b["interval_s"] == 10
    rx = lambda d: next(v for v in d["softirqs"] if v["vector"] == "NET_RX")  # noqa: E731
    assert rx(b)["total_delta"] == rx(a)["total_delta"]
    assert rx(b)["total_rate"] == pytest.approx(rx(a)["total_delta"] / 10, rel=1e-3)


def test_diff_cpu_filter(capsys):
    _, out, _ = run(capsys, "diff", str(FLOOD_A), str(FLOOD_B), "--json", "-C", "1")
    doc = json.loads(out)
    assert doc["cpus"] == [1]
    assert all(set(r["rate"]) <= {"1"} for r in doc["irqs"])


def test_cpus_that_the_captures_do_not_have(capsys):
    # vm-udpflood is a 2-CPU machine: -C 7 would print tables with no CPU column at all.
    code, out, err = run(capsys, "diff", str(FLOOD_A), str(FLOOD_B), "-C", "7")
    assert (code, out) == (EXIT_USAGE, "")
    assert err == "irqlab diff: -C 7: not among the captures' CPUs (0-1)\n"
    code, out, err = run(capsys, "diff", str(FLOOD_A), str(FLOOD_B), "-C", "1,7", "--json")
    assert code == 0 and json.loads(out)["cpus"] == [1]
    assert err == "irqlab diff: note: -C: 7 not among the captures' CPUs (0-1); left out\n"
    code, _, err = run(capsys, "top", "--replay", str(FLOOD_A), str(FLOOD_B), "--once", "-C", "4-5")
    assert code == EXIT_USAGE and err == "irqlab top: -C 4-5: not among the captures' CPUs (0-1)\n"
    code, _, err = run(capsys, "top", "--procfs", f"{FLOOD_A}/proc", "--sysfs", f"{FLOOD_A}/sys", "-C", "9")
    assert code == EXIT_USAGE and "not among the capture's CPUs (0-1)" in err


def test_the_live_view_refuses_cpus_this_machine_does_not_have_before_the_screen_switches(capsys, monkeypatch):
    from irqlab.cli import top as top_cli
    from irqlab.sources.fs import Roots
    from irqlab.sources.host import read_host

    monkeypatch.setattr(top_cli, "_live_view", lambda args: True)
    monkeypatch.setattr(top_cli, "_run_tui", lambda *a: pytest.fail("the screen was started"))
    online = read_host(Roots()).online_cpus
    assert online
    code, _, err = run(capsys, "top", "-C", str(max(online) + 1))
    assert code == EXIT_USAGE and "not among this machine's CPUs" in err and err.count("\n") == 1
    # the plain tables say it at once too, not after sampling an interval
    import irqlab.sources.sampler as sampler

    monkeypatch.setattr(top_cli, "_live_view", lambda args: False)
    monkeypatch.setattr(sampler, "sample", lambda *a, **kw: pytest.fail("sampled before refusing -C"))
    code, _, err = run(capsys, "top", "--once", "-C", str(max(online) + 1), "5")
    assert code == EXIT_USAGE and "not among this machine's CPUs" in err


def test_diff_top_must_be_positive(capsys):
    # A negative --top sliced the table from the end and showed more rows, not fewer.
    for value in ("0", "-3"):
        code, out, err = run(capsys, "diff", str(FLOOD_A), str(FLOOD_B), "--top", value)
        assert (code, out) == (EXIT_USAGE, "")
        assert err == f"irqlab diff: --top {value}: must be at least 1\n"


def test_doctor_on_two_captures_golden(capsys, golden):
    code, out, _ = run(capsys, "doctor", "--procfs", f"{FLOOD_A}/proc", "--sysfs", f"{FLOOD_A}/sys", "--then", str(FLOOD_B))
    assert code in (0, 1, 2)
    golden("doctor-udpflood.txt", out)


def test_doctor_exit_code_follows_the_worst_finding(capsys):
    args = ["doctor", "--procfs", f"{FLOOD_A}/proc", "--sysfs", f"{FLOOD_A}/sys", "--then", str(FLOOD_B), "--json"]
    code, out, _ = run(capsys, *args)
    doc = json.loads(out)
    assert doc["exit_code"] == code
    # The flood's NET_RX runs at about 1e5/s; a storm limit below that must turn critical.
    code, out, _ = run(capsys, *args, "--storm-warn", "100", "--storm-crit", "200")
    doc = json.loads(out)
    assert code == 2 and doc["status"] == "critical"
    assert doc["findings"][0]["code"] == "storm"


def test_snapshot_then_diff_round_trip(capsys, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(capsys, "snapshot", "-o", str(a))[0] == 0
    time.sleep(0.2)
    assert run(capsys, "snapshot", "-o", str(b))[0] == 0
    code, out, _ = run(capsys, "diff", str(a), str(b), "--json")
    assert code == 0
    doc = json.loads(out)
    assert 0.1 < doc["interval_s"] < 30
    assert doc["irqs"] and doc["softirqs"]


def test_snapshot_refuses_a_non_empty_directory(capsys, tmp_path):
    (tmp_path / "x").write_text("keep me")
    code, _, err = run(capsys, "snapshot", "-o", str(tmp_path))
    assert code == EXIT_ERROR
    assert "not empty" in err and err.count("\n") == 1
    assert (tmp_path / "x").read_text() == "keep me"


def test_diff_of_a_missing_directory_is_one_clear_line(capsys, tmp_path):
    code, _, err = run(capsys, "diff", str(tmp_path / "nope"), str(FLOOD_B))
    assert code == EXIT_ERROR
    assert "not a capture" in err and err.count("\n") == 1


def test_garbage_interrupts_file_names_file_line_and_token(capsys, tmp_path):
    a = tmp_path / "a"
    shutil.copytree(CAPTURES / FLOOD_A, a)
    text = (a / "proc" / "interrupts").read_text().splitlines()
    text[3] = text[3].replace(text[3].split()[1], "12x4", 1)
    (a / "proc" / "interrupts").write_text("\n".join(text) + "\n")
    code, _, err = run(capsys, "diff", str(a), str(FLOOD_B))
    assert code == EXIT_ERROR
    assert err.count("\n") == 1
    assert f"{a}/proc/interrupts" in err and "line 4" in err and "12x4" in err


def test_bad_cpu_list_and_interval_are_usage_errors(capsys):
    code, _, err = run(capsys, "diff", str(FLOOD_A), str(FLOOD_B), "-C", "3-1")
    assert code == EXIT_USAGE and "-C" in err
    code, _, err = run(capsys, "top", "0")
    assert code == EXIT_USAGE and "interval" in err
    with pytest.raises(SystemExit) as exc:
        main(["top", "--bogus"])
    assert exc.value.code == EXIT_USAGE


def test_an_unknown_option_is_named_with_the_commands_own_usage(capsys):
    # Not the list of commands: the usage of the command the option was given to.
    with pytest.raises(SystemExit) as exc:
        main(["diff", str(FLOOD_A), str(FLOOD_B), "--duration", "3"])
    err = capsys.readouterr().err
    assert exc.value.code == EXIT_USAGE
    assert err.startswith("usage: irqlab diff ") and "COMMAND" not in err
    assert err.endswith("irqlab diff: error: unrecognized arguments: --duration 3\n")
    with pytest.raises(SystemExit) as exc:
        main(["--bogus"])
    assert exc.value.code == EXIT_USAGE
    assert capsys.readouterr().err.endswith("irqlab: error: unrecognized arguments: --bogus\n")


def test_every_command_has_help_with_examples(capsys):
    from irqlab.cli.main import COMMANDS

    for name in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "examples:" in out, name


@pytest.mark.live
def test_top_once_prints_the_plain_tables(capsys):
    code, out, _ = run(capsys, "top", "--once", "0.3")
    assert code == 0
    for header in ("hard IRQs (interrupts/s", "softirqs (softirqs/s", "per CPU", "TOTAL"):
        assert header in out
    # The window saw interrupts: top's own sleep ends in a timer interrupt (hrtimer expiry runs
    # from the clock event interrupt, kernel/time/hrtimer.c hrtimer_interrupt()), so at least
    # one row had a non-zero rate.
    shown = re.search(r"hard IRQs \(interrupts/s\): (\d+) of \d+ rows", out)
    assert shown and int(shown.group(1)) >= 1, out


@pytest.mark.live
def test_top_json_lines(capsys):
    code, out, _ = run(capsys, "top", "0.2", "2", "--json")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    docs = [json.loads(line) for line in lines]
    elapsed_ns = [d["after"]["taken_ns"] - d["before"]["taken_ns"] for d in docs]
    assert [d["interval_s"] for d in docs] == [round(e / 1e9, 3) for e in elapsed_ns]
    # The sampler sleeps to absolute deadlines, k intervals after the first snapshot's stamp,
    # and clock_nanosleep(TIMER_ABSTIME) never returns before its deadline (kernel/time/
    # hrtimer.c do_nanosleep()): the first interval, and the intervals together, are never
    # short. A later interval alone may be (its start was late, its end on time).
    assert elapsed_ns[0] >= 200_000_000 and sum(elapsed_ns) >= 2 * 200_000_000, elapsed_ns
    # No kernel guarantee bounds a late wake-up (a SCHED_OTHER task waits behind whatever else
    # runs on this shared 2-CPU machine); this only says each line is one interval, not two.
    assert all(e < 350_000_000 for e in elapsed_ns), elapsed_ns
    # Each interval saw interrupts: the sampler's own sleep ends in a timer interrupt
    # (kernel/time/hrtimer.c hrtimer_interrupt() runs from the clock event interrupt).
    assert all(sum(row["total_delta"] for row in d["irqs"]) > 0 for d in docs)


@pytest.mark.live
def test_python_dash_m_and_console_script_agree():
    env = dict(os.environ, TZ="UTC")
    a = subprocess.run([sys.executable, "-m", "irqlab", "diff", str(FLOOD_A), str(FLOOD_B)], capture_output=True, text=True, env=env)
    b = subprocess.run([str(Path(sys.executable).with_name("irqlab")), "diff", str(FLOOD_A), str(FLOOD_B)], capture_output=True, text=True, env=env)
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout


@pytest.mark.root
def test_unprivileged_doctor_reports_each_unreadable_source_once():
    """As nobody, on a capture whose spurious files are root-only: one plain info line."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop to nobody")
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="irqlab-nobody-"))
    try:
        base.chmod(0o755)
        for name in ("a", "b"):
            shutil.copytree(CAPTURES / "vm-udpflood" / name, base / name)
        locked = sorted((base / "b" / "proc" / "irq").glob("*/spurious"))
        for path in locked:
            path.chmod(0o000)
        cmd = [
            "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
            sys.executable, "-m", "irqlab", "doctor", "--json",
            "--procfs", str(base / "a" / "proc"), "--sysfs", str(base / "a" / "sys"), "--then", str(base / "b"),
        ]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=base, timeout=60)
        assert proc.returncode in (0, 1, 2), proc.stderr
        found = [f for f in json.loads(proc.stdout)["findings"] if f["code"] == "unreadable"]
        assert len(found) == 1, found
        assert found[0]["metrics"]["reason"] == "permission"
        assert "spurious" in found[0]["evidence"][0]
    finally:
        shutil.rmtree(base)


def test_top_on_one_capture_prints_averages_since_boot(capsys):
    code, out, _ = run(capsys, "top", "--procfs", f"{FLOOD_A}/proc", "--sysfs", f"{FLOOD_A}/sys", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["before"]["origin"] == "boot"
    loc = next(r for r in doc["irqs"] if r["irq"] == "LOC")
    assert loc["total_rate"] == pytest.approx(loc["total_delta"] / doc["interval_s"], rel=1e-3)
    code, out, _ = run(capsys, "top", "--procfs", f"{FLOOD_A}/proc", "--sysfs", f"{FLOOD_A}/sys")
    assert "averages since boot" in out.splitlines()[1]


SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


def test_doctor_explains_a_simulated_machine_with_the_same_rules(capsys):
    code, out, _ = run(capsys, "doctor", "--sim", str(SCENARIOS / "dumazet-udp.toml"), "--json")
    doc = json.loads(out)
    codes = {x["code"] for f in doc["findings"] for x in (f, *f.get("folded", ()))}
    assert {"ksoftirqd-pressure", "trace-summary"} <= codes  # snapshot rules and trace rules both ran
    # critical: the simulated NIC's ring overflows (eth0 rx_missed_errors, from the model's net state)
    assert "nic-drops" in codes and code == doc["exit_code"] == 2


def test_doctor_on_a_bad_scenario_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[machine]\ncpus = -3\n")
    code, _, err = run(capsys, "doctor", "--sim", str(bad))
    assert code == EXIT_ERROR and err.count("\n") == 1 and "bad.toml" in err
