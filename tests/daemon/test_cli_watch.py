"""`irqlab watch` on the command line: config errors, refusals, dry run on a capture pair."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UDPFLOOD = REPO / "tests" / "fixtures" / "captures" / "vm-udpflood"


def irqlab(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "irqlab", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_check_accepts_the_example_config():
    r = irqlab("watch", "--check", "-c", "examples/watch.toml")
    assert r.returncode == 0 and r.stdout.strip().endswith("examples/watch.toml: ok")


def test_a_bad_config_is_one_line_on_stderr_and_exit_3(tmp_path):
    p = tmp_path / "w.toml"
    p.write_text("[detect]\nstart_intervlas = 2\n")
    os.chmod(p, 0o644)
    r = irqlab("watch", "--check", "-c", str(p))
    assert r.returncode == 3
    assert r.stderr.count("\n") == 1 and "w.toml: detect.start_intervlas: unknown key (did you mean 'start_intervals'?)" in r.stderr


def test_apply_on_a_capture_is_a_usage_error():
    r = irqlab("watch", "--apply", "--procfs", str(UDPFLOOD / "a" / "proc"), "--sysfs", str(UDPFLOOD / "a" / "sys"), "1", "1")
    assert r.returncode == 64 and "not with --procfs" in r.stderr


@pytest.mark.live
def test_a_short_dry_run_on_this_machine_prints_a_json_event_stream(tmp_path):
    r = irqlab("watch", "--json", "--journal", str(tmp_path / "j"), "0.2", "2")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert events[0]["event"] == "start" and "dry run" in events[0]["message"]
    assert events[-1]["event"] == "stop"
    assert all(e["event"] in ("start", "stop", "storm_start", "storm_end", "escalation", "action", "skip", "restore", "error") for e in events)
    assert not (tmp_path / "j").exists()  # a dry run creates no journal


@pytest.mark.live
def test_sighup_reloads_and_sigint_stops_the_running_watch(tmp_path):
    import signal

    cfg = tmp_path / "w.toml"
    cfg.write_text(f"interval = 0.2\njournal = '{tmp_path / 'j'}'\n")
    os.chmod(cfg, 0o600)
    proc = subprocess.Popen([sys.executable, "-m", "irqlab", "watch", "--json", "-c", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert json.loads(proc.stdout.readline())["event"] == "start"
        proc.send_signal(signal.SIGHUP)
        while True:  # storm events from other load may come first
            e = json.loads(proc.stdout.readline())
            if e["event"] == "reload":
                break
        proc.send_signal(signal.SIGINT)
        rest = [json.loads(line) for line in proc.stdout]
        assert proc.wait(timeout=30) == 0
        assert rest[-1]["event"] == "stop"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _config_without_journal(tmp_path: Path, text: str = "interval = 0.5\n") -> Path:
    p = tmp_path / "m.toml"
    p.write_text(text)
    os.chmod(p, 0o600)
    return p


def test_a_config_without_a_journal_key_runs_a_dry_watch(tmp_path):
    # The default journal was once read off the slots class (a member descriptor): TypeError.
    cfg = _config_without_journal(tmp_path)
    r = irqlab("watch", "-c", str(cfg), "--procfs", str(UDPFLOOD / "a" / "proc"), "--sysfs", str(UDPFLOOD / "a" / "sys"), "0.5", "1")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr


def test_a_config_without_a_journal_key_has_the_default_journal(tmp_path):
    from irqlab.daemon.config import DEFAULT_JOURNAL, load_config

    assert load_config(_config_without_journal(tmp_path)).journal == DEFAULT_JOURNAL


@pytest.mark.live
@pytest.mark.root
def test_apply_and_restore_with_a_config_without_a_journal_key(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("--apply and --restore need root")
    # Alerts only: whatever this machine does in 0.1 s, nothing is written.
    ladder = "".join(f"[ladder.{c}]\nwarn = ['alert']\nact = ['alert']\n" for c in
                     ("irq", "vector", "cpu", "softirq", "irqtime", "softnet_drop", "softnet_squeeze", "spurious"))
    cfg = _config_without_journal(tmp_path, "interval = 0.5\n[alert]\nsyslog = false\n" + ladder)
    j = tmp_path / "j"
    r = irqlab("watch", "-c", str(cfg), "--apply", "--journal", str(j), "0.1", "1")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    r = irqlab("watch", "-c", str(cfg), "--restore", "--journal", str(j))
    assert r.returncode == 0 and "nothing pending" in r.stdout, r.stdout + r.stderr
