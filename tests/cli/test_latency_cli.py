"""`irqlab latency` end to end: usage errors, budget files, JSON schema, and live runs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from irqlab.cli.main import EXIT_CRITICAL, EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from servers import missing_tool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from live_counters import counting  # noqa: E402
from live_load import load  # noqa: E402

STAT_KEYS = {"samples", "min_us", "avg_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "overflows", "missed", "histogram"}
root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.mark.parametrize("argv, what", [
    (["-i", "10"], "-i 10"),
    (["-p", "0"], "-p 0"),
    (["-D", "ten"], "-D 'ten'"),
    (["-D", "0"], "-D '0'"),
    (["-l", "0"], "-l 0"),
    (["-a", "0-2,x"], "-C '0-2,x'"),
    (["-a", "4000"], "CPU 4000"),
    (["--explain-over", "-1"], "--explain-over"),
])
def test_bad_options_are_one_line_and_exit_64(argv, what, capsys):
    assert main(["latency", *argv]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and what in err[0]


def _budget(tmp_path: Path, text: str) -> str:
    path = tmp_path / "b.toml"
    path.write_text(text)
    path.chmod(0o644)
    return str(path)


def test_a_malformed_budget_file_is_one_line_naming_the_key_and_exit_3(tmp_path, capsys):
    path = _budget(tmp_path, "[[class]]\nname = 'brake'\nmax_us = -50\n")
    assert main(["latency", "--budget", path]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "b.toml: class[0].max_us: " in err


def test_a_missing_budget_file_is_one_line_and_exit_3(tmp_path, capsys):
    assert main(["latency", "--budget", str(tmp_path / "nope.toml")]) == EXIT_ERROR
    assert "nope.toml: cannot read" in capsys.readouterr().err


@root
def test_root_refuses_a_budget_file_others_may_write(tmp_path, capsys):
    path = _budget(tmp_path, "[[class]]\nname = 'a'\nmax_us = 5\n")
    os.chmod(path, 0o666)
    assert main(["latency", "--budget", path]) == EXIT_ERROR
    assert "budget file is writable by a user other than root" in capsys.readouterr().err


@pytest.mark.live
def test_budget_exit_code_is_2_on_any_fail_and_names_the_consequence(tmp_path, capsys):
    path = _budget(tmp_path, """
[defaults]
duration_s = 0.3
[[class]]
name = "generous"
max_us = 10000000
[[class]]
name = "impossible"
max_us = 0.001
consequence = "nobody gets this"
""")
    assert main(["latency", "--budget", path, "-a", "0"]) == EXIT_CRITICAL
    out = capsys.readouterr().out
    assert "generous" in out and "PASS" in out
    assert "impossible" in out and "FAIL" in out and "nobody gets this" in out
    assert "1 of 2 classes PASS, 1 FAIL" in out


@pytest.mark.live
def test_budget_that_passes_exits_0_with_json_verdicts(tmp_path, capsys):
    path = _budget(tmp_path, "[[class]]\nname = 'ok'\nduration_s = 0.3\nmax_us = 10000000\n")
    assert main(["latency", "--budget", path, "-a", "0", "--json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    (cls,) = doc["classes"]
    assert doc["result"] == "PASS" and cls["result"] == "PASS"
    assert cls["checks"][0]["metric"] == "max" and cls["checks"][0]["limit_us"] == 10_000_000
    assert set(cls["latency"]["overall"]) == STAT_KEYS
    assert cls["latency"]["overall"]["samples"] > 0  # the probe ran


@pytest.mark.live
def test_json_has_per_cpu_and_overall_statistics_with_histograms(capsys):
    cpus = sorted(os.sched_getaffinity(0))
    assert main(["latency", "-l", "200", "-i", "1000", "--json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    lat = doc["latency"]
    assert set(lat["cpus"]) == {str(c) for c in cpus}
    for stats in [*lat["cpus"].values(), lat["overall"]]:
        assert set(stats) == STAT_KEYS
        assert stats["histogram"]["count"] == stats["samples"]
    for stats in lat["cpus"].values():  # the probe ran: each of the 200 deadlines is a sample or a miss
        assert stats["samples"] > 0 and stats["samples"] + stats["missed"] == 200
    assert lat["overall"]["samples"] == sum(s["samples"] for s in lat["cpus"].values())
    assert [p["cpu"] for p in doc["probe"]] == cpus


@pytest.mark.live
def test_irq_threads_are_listed_against_the_probe_priority(capsys):
    assert main(["latency", "--irq-threads", "-p", "40", "--json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    for t in doc["irq_threads"]:
        assert t["comm"].startswith("irq/")
        assert t["relation"] == ("above" if t["policy"] in ("fifo", "rr") and t["priority"] > 40 else
                                 "equal" if t["priority"] == 40 else "below")


@pytest.mark.live
def test_text_output_has_units_in_headers_and_an_overall_row(capsys):
    assert main(["latency", "-l", "100", "--hist", "log2"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "MIN_us" in out and "P99.9_us" in out and "LATENCY_us" in out
    if len(os.sched_getaffinity(0)) > 1:
        assert "\nall " in out


@root
@pytest.mark.live
@pytest.mark.slow
def test_explain_under_network_load_names_an_interrupt_or_softirq_source(capsys):
    with load("-m", "udp", "-l", "16", "-n", "2", duration=60), counting("NET_RX") as net_rx:
        rc = main(["latency", "-D", "4", "--explain", "--explain-over", "40", "--explain-top", "3", "--json"])
    assert rc == EXIT_OK
    assert net_rx.rate_per_s > 1000, f"NET_RX {net_rx.rate_per_s:.0f}/s: the flood did not run"
    ex = json.loads(capsys.readouterr().out)["explain"]
    assert ex["count"] > 0 and ex["trace_complete"]
    worst = ex["breaches"][0]
    # Every nanosecond of the worst window is charged to exactly one context (the sweep of
    # analysis/latency.py cuts [deadline, wake-up] at each traced event), and the JSON gives
    # each part to the nanosecond (3 decimals of us): only float addition differs.
    assert sum(p["time_us"] for p in worst["parts"]) == pytest.approx(worst["latency_us"], abs=1e-6)
    assert any(p["kind"] in ("irq", "vector", "softirq", "tasklet") for p in worst["parts"])
    # and the load shows up by name somewhere among the breaches: network softirqs or IPIs
    names = " ".join(row["context"] for row in ex["summary"])
    assert any(n in names for n in ("NET_RX", "NET_TX", "RES vector", "CAL vector")), names


@root
@pytest.mark.live
def test_without_root_it_runs_sched_other_and_says_so_once(tmp_path):
    import shutil
    import subprocess

    setpriv = shutil.which("setpriv")
    if setpriv is None:
        missing_tool("setpriv (util-linux)")
    src = Path(__file__).resolve().parents[2] / "src"
    proc = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "irqlab",
                           "latency", "-l", "50", "-a", "0", "--json"], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(src), "PATH": os.environ.get("PATH", "")}, cwd=tmp_path)
    if "Permission denied" in proc.stderr and "python" in proc.stderr.lower():
        pytest.skip("this interpreter is not readable by nobody")
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stderr.count("scheduler noise") == 1
    doc = json.loads(proc.stdout)
    assert doc["probe"][0]["policy"] == "other" and doc["latency"]["overall"]["samples"] > 0


def test_progress_line_shows_the_running_max_per_cpu(monkeypatch):
    import io

    from irqlab.cli.latency import Progress

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    p = Progress(5)
    p.last = -1e9  # not throttled
    p({0: 12_345, 1: 99_000})
    p.clear()
    text = err.getvalue()
    assert "CPU0 max 12.3 us" in text and "CPU1 max 99.0 us" in text and text.endswith("\r\x1b[K")
