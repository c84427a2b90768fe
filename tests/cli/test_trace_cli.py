"""`irqlab trace` on the project's own capture (golden text and JSON), bad input, and live on this VM."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from irqlab.cli import trace as trace_cli
from irqlab.cli.main import EXIT_ERROR, EXIT_USAGE, main
from irqlab.tracing.textparse import parse_lines

FLOOD = Path(__file__).resolve().parent.parent / "fixtures" / "trace" / "udpflood-budget8-30ms.txt.gz"


@functools.cache
def flood_batch():
    with gzip.open(FLOOD, "rt") as fh:
        return parse_lines(fh)


class ReplaySession:
    """Stands in for tracing.session.TraceSession: hands out the given batches as its windows."""

    def __init__(self, batches: list, **kw) -> None:
        self.batches, self.kw = batches, kw

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def stream(self, seconds, count):
        yield from self.batches[: count or len(self.batches)]


@pytest.fixture
def replay(monkeypatch):
    """Feed the CLI the captured flood trace instead of a live tracefs session."""
    from irqlab.sources import tasks
    from irqlab.tracer import lifecycle

    batches: list = [flood_batch()]
    monkeypatch.setattr(lifecycle, "TraceSession", functools.partial(ReplaySession, batches))
    monkeypatch.setattr(lifecycle, "choose_backend", lambda requested: ("tracefs", None))
    monkeypatch.setattr(tasks, "ksoftirqd_pids", lambda roots: (14, 22))
    return batches


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["trace", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_report_golden(replay, capsys, golden):
    code, out, err = run(capsys, "-d", "1")
    assert (code, err) == (0, "")
    assert "NET_RX" in out and "P99.9_us" in out and "KSOFTIRQD_time%" in out
    golden("trace-udpflood.txt", out)


def test_per_cpu_rows_with_a_log2_histogram_of_one_vector_golden(replay, capsys, golden):
    code, out, _ = run(capsys, "-P", "--vector", "NET_RX", "--irq", "RES", "--hist", "log2")
    assert code == 0
    assert "NET_RX  CPU0" in out and "TIMER" not in out and "LOC" not in out
    golden("trace-udpflood-netrx-log2.txt", out)


def test_linear_histogram_is_rebucketed_to_a_screen(replay, capsys):
    _, out, _ = run(capsys, "--vector", "NET_RX", "--irq", "0", "--hist", "linear")
    rows = [line for line in out.splitlines() if " -> " in line and "|" in line]
    assert 0 < len(rows) <= 2 * 41  # duration and latency, each at most 40 rows plus overflow


def test_json_golden_has_the_documented_keys(replay, capsys, golden):
    code, out, _ = run(capsys, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["complete"] is True and doc["lost_events"] == {"0": 0, "1": 0}
    assert doc["window_s"] > 0
    rx = next(v for v in doc["softirqs"] if v["vector"] == "NET_RX")
    for key in ("count", "min_ns", "avg_ns", "p50_ns", "p99_ns", "max_ns", "histogram", "ksoftirqd_share", "latency", "per_cpu"):
        assert key in rx
    assert rx["count"] == rx["histogram"]["count"] == sum(c["count"] for c in rx["per_cpu"].values())
    assert {h["vector"] for h in doc["hardirqs"] if h["kind"] == "vector"} >= {"LOC", "RES", "CAL"}
    golden("trace-udpflood.json", out)


def test_lost_events_print_partial_and_complete_false(replay, capsys):
    replay[0] = dataclasses.replace(flood_batch(), lost={1: 2040})
    _, out, _ = run(capsys)
    assert out.splitlines()[1].startswith("PARTIAL: the kernel dropped events (CPU1 2040)")
    _, out, _ = run(capsys, "--json")
    doc = json.loads(out)
    assert doc["complete"] is False and doc["lost_events"] == {"0": 0, "1": 2040}


def test_interval_mode_prints_one_compact_json_per_window(replay, capsys):
    replay.append(flood_batch())
    code, out, _ = run(capsys, "0.5", "2", "--json")
    assert code == 0
    assert [json.loads(line)["command"] for line in out.splitlines()] == ["trace", "trace"]


@pytest.mark.parametrize("argv", [
    ["--vector", "NET_FOO"], ["--irq", "LOCX"], ["-d", "2", "1"], ["-d", "0"], ["0.5", "0"],
    ["--buffer-kb", "1"], ["--bucket-us", "3", "--limit-us", "10"], ["-C", "x"], ["-C", "9999"],
])
def test_bad_options_exit_64_with_one_line(argv, capsys):
    code, out, err = run(capsys, *argv)
    assert code == EXIT_USAGE and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("irqlab trace: ")


@pytest.mark.parametrize("root", ["/nonexistent/tracefs", "/tmp"])
def test_no_tracefs_is_one_clear_line_and_exit_3(root, capsys):
    code, out, err = run(capsys, "--tracefs", root, "-d", "0.1")
    assert code == EXIT_ERROR and out == ""
    assert len(err.strip().splitlines()) == 1 and "tracefs" in err


@pytest.fixture
def host_tracefs():
    """tracefs mounted for the test (a fresh machine of this kind boots without it), unmounted
    after if it was not mounted before: children see it mounted and leave the mount alone."""
    if os.geteuid() != 0:
        pytest.skip("needs root for tracefs")
    from irqlab.tracing.instance import tracefs_for_setup

    with tracefs_for_setup():
        yield


def instances() -> set[str]:
    try:
        return set(os.listdir("/sys/kernel/tracing/instances"))
    except OSError:
        return set()


@pytest.mark.live
@pytest.mark.root
def test_live_json_window_then_no_instance_is_left(host_tracefs):
    proc = subprocess.Popen([sys.executable, "-m", "irqlab", "trace", "--backend", "tracefs", "-d", "1", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    # The window runs from tracing_on to a cut taken once the reader's sleeps reached a deadline
    # one second after it: time.sleep is clock_nanosleep, which never returns before its
    # deadline (kernel/time/hrtimer.c do_nanosleep()), so the window is never short. Nothing in
    # the kernel bounds a late wake-up on this shared machine; < 2 s only says one window.
    assert 1.0 <= doc["window_s"] < 2 and set(doc["lost_events"]) == {str(c) for c in doc["cpus"]}
    # The window traced something: the reader's own sleeps end in timer interrupts
    # (hrtimer_interrupt() runs from the clock event interrupt: LOC on x86, a numbered IRQ elsewhere).
    assert sum(row["count"] for row in doc["hardirqs"]) > 0, doc["hardirqs"]
    assert doc["source"] == "tracefs"
    assert f"irqlab-{proc.pid}" not in instances()


def start_tracing() -> subprocess.Popen:
    """`irqlab trace -d 30` in a child; returns once its instance has its events enabled."""
    proc = subprocess.Popen([sys.executable, "-m", "irqlab", "trace", "--backend", "tracefs", "-d", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Not just the directory: the session installs its signal handlers after mkdir, and
    # enables the events after that.
    enabled = Path(f"/sys/kernel/tracing/instances/irqlab-{proc.pid}/events/irq/softirq_entry/enable")
    for _ in range(200):
        try:
            if enabled.read_text().strip() == "1":
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"irqlab trace exited early: {proc.stderr.read()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no tracefs instance appeared within 10 s")


@pytest.mark.live
@pytest.mark.root
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM)])
def test_ctrl_c_and_sigterm_remove_the_instance(sig, code, host_tracefs):
    proc = start_tracing()
    proc.send_signal(sig)
    proc.communicate(timeout=30)
    assert proc.returncode == code
    assert f"irqlab-{proc.pid}" not in instances()


@pytest.mark.live
@pytest.mark.root
def test_an_instance_left_by_sigkill_is_removed_by_the_next_run(host_tracefs):
    proc = start_tracing()
    proc.kill()
    proc.communicate(timeout=30)
    assert f"irqlab-{proc.pid}" in instances()  # SIGKILL gives no chance to clean up
    again = subprocess.run([sys.executable, "-m", "irqlab", "trace", "--backend", "tracefs", "-d", "0.2", "--json"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert f"irqlab-{proc.pid}" not in instances()


@pytest.mark.live
@pytest.mark.root
def test_as_an_unprivileged_user_it_is_one_line_and_exit_3():
    """Drop to `nobody` (needs root to do so) and run with a Python that user can execute."""
    import shutil
    import sysconfig

    python = "/usr/bin/python3"
    if os.geteuid() != 0 or shutil.which("runuser") is None or not os.access(python, os.X_OK):
        pytest.skip("needs root, runuser and /usr/bin/python3")
    same = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    if same.stdout.strip() != str(tuple(sys.version_info[:2])):
        pytest.skip("/usr/bin/python3 is not this Python's version, cannot borrow its packages")
    src = Path(trace_cli.__file__).resolve().parents[2]
    path = f"{src}:{sysconfig.get_paths()['purelib']}:{sysconfig.get_paths()['platlib']}"
    proc = subprocess.run(["runuser", "-u", "nobody", "--", "env", f"PYTHONPATH={path}", python, "-m", "irqlab", "trace", "--backend", "tracefs", "-d", "1"],
                          capture_output=True, text=True, timeout=60, cwd="/")
    if not proc.stderr.startswith("irqlab trace: "):
        pytest.skip(f"nobody cannot import irqlab here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == EXIT_ERROR and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("irqlab trace: ") and "root" in proc.stderr


def test_a_run_that_waited_for_a_cpu_far_longer_than_it_traced_says_how_to_run_it(capsys):
    from argparse import Namespace

    from irqlab.cli.common import note_starved

    # measured under the UDP flood at SCHED_OTHER
    args = Namespace(argv=("trace", "-d", "1", "--vector", "NET_RX"), realtime=None)
    note_starved("trace", "tracing", wall_s=43.8, cpu_s=1.2, window_s=1.0, args=args)
    err = capsys.readouterr().err
    assert err.startswith("irqlab trace: this run took 44 s for 1 s of tracing") and "1.2 s of CPU" in err
    assert err.rstrip().endswith("promptly: irqlab trace -d 1 --vector NET_RX --realtime 1")  # the user's own command
    note_starved("trace", "tracing", wall_s=43.8, cpu_s=1.2, window_s=1.0, args=Namespace(argv=("trace", "--realtime", "5"), realtime=5))
    err = capsys.readouterr().err
    assert "even at SCHED_FIFO 5" in err and "--realtime 1" not in err
    for wall, cpu in ((3.0, 0.7), (43.8, 30.0)):  # prompt, or busy decoding a big window itself
        note_starved("trace", "tracing", wall_s=wall, cpu_s=cpu, window_s=1.0, args=args)
        assert capsys.readouterr().err == ""


@pytest.mark.live
@pytest.mark.parametrize("command", ["doctor", "isolation"])
def test_a_sampling_command_that_waited_for_a_cpu_says_so_with_its_own_command_line(monkeypatch, capsys, command):
    """doctor and isolation time their whole run from before their imports: a run that waited
    for a CPU far longer than its sample says so, with the user's own command and --realtime 1."""
    import time

    from irqlab.cli import common
    from irqlab.cli.main import main

    seen = []
    monkeypatch.setattr(common, "note_starved", lambda *a, **k: seen.append(a))
    last = str(max(os.sched_getaffinity(0)))  # a CPU this machine has, to call quiet
    argv = [command, "-d", "0.2", "--json"] + (["--cpus", last] if command == "isolation" else [])
    t0 = time.monotonic()
    assert main(argv) in (0, 1, 2)
    (call,) = seen
    name, what, wall_s, cpu_s, window_s, args = call
    assert (name, what, window_s) == (command, "sampling", 0.2)
    assert 0.2 <= wall_s <= time.monotonic() - t0 and 0 < cpu_s <= wall_s + 1
    assert args.argv == tuple(argv)
    capsys.readouterr()


@pytest.mark.parametrize("command", ["trace", "doctor", "isolation", "top", "latency"])
def test_realtime_out_of_range_is_one_usage_line(capsys, command):
    from irqlab.cli.main import EXIT_USAGE, main

    assert main([command, "--realtime", "0"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.strip() == f"irqlab {command}: --realtime 0: must be between 1 and 99"


def test_realtime_switches_this_process_to_sched_fifo_and_says_when_it_may_not(monkeypatch):
    import argparse
    import os

    from irqlab.cli import common
    from irqlab.errors import IrqlabError

    seen = []
    monkeypatch.setattr(os, "sched_setscheduler", lambda pid, policy, param: seen.append((pid, policy, param.sched_priority)))
    common.enter_realtime(argparse.Namespace(realtime=7), "trace")
    common.enter_realtime(argparse.Namespace(realtime=None), "trace")  # not asked: nothing
    assert seen == [(0, os.SCHED_FIFO, 7)]

    def refuse(*a):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    with pytest.raises(IrqlabError, match=r"--realtime 7: not permitted .*`chrt -f 7 irqlab trace"):
        common.enter_realtime(argparse.Namespace(realtime=7), "trace")


def test_realtime_really_runs_the_command_at_sched_fifo_as_root():
    """A real process: its policy and priority read back from /proc while it runs."""
    import os
    import subprocess
    import sys

    if os.geteuid() != 0:
        pytest.skip("SCHED_FIFO needs root here")
    code = ("import os, sys; from irqlab.cli import common; import argparse; "
            "common.enter_realtime(argparse.Namespace(realtime=3), 'trace'); "
            "print(os.sched_getscheduler(0) == os.SCHED_FIFO, os.sched_getparam(0).sched_priority)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.split() == ["True", "3"]


@pytest.mark.parametrize("command", ["trace", "doctor", "isolation", "top", "latency"])
def test_realtime_not_permitted_is_one_error_line_and_exit_3(capsys, monkeypatch, command):
    import os

    from irqlab.cli.main import EXIT_ERROR, main

    def refuse(*a):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert main([command, "--realtime", "2"]) == EXIT_ERROR == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"irqlab {command}: --realtime 2: not permitted")
