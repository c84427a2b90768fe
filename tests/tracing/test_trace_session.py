"""TraceSession errors and the instance lifecycle (root tests use the live tracefs)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from irqlab.errors import TracefsUnavailable
from irqlab.tracing.instance import DEFAULT_MOUNTS
from irqlab.tracing.session import TraceSession
from servers import missing_tool

SRC = Path(__file__).resolve().parents[2] / "src"
LIVE_TRACEFS = DEFAULT_MOUNTS[0]


def test_an_empty_directory_as_tracefs_is_one_clear_error(tmp_path):
    with pytest.raises(TracefsUnavailable, match=f"{tmp_path}: not a tracefs .*is tracefs mounted"):
        with TraceSession(tracefs=tmp_path):
            pass
    assert list(tmp_path.iterdir()) == []


def test_a_missing_tracefs_directory_is_one_clear_error(tmp_path):
    with pytest.raises(TracefsUnavailable, match="No such file.*is tracefs mounted"):
        with TraceSession(tracefs=tmp_path / "nope"):
            pass


@pytest.mark.parametrize("kw", [{"buffer_kb": 0}, {"buffer_kb": 1 << 30}, {"reader": "fast"}])
def test_bad_session_options_are_refused_before_touching_tracefs(tmp_path, kw):
    with pytest.raises(TracefsUnavailable):
        TraceSession(tracefs=tmp_path, **kw)


def _ours() -> set[str]:
    return {n for n in os.listdir(LIVE_TRACEFS / "instances") if n.startswith("irqlab-")}


@pytest.fixture
def live_tracefs():
    """The host's tracefs, mounted for the test when this machine boots without it (and then
    unmounted again), with a check that no irqlab instance is left behind."""
    if os.geteuid() != 0:
        pytest.skip("needs root for tracefs")
    from irqlab.tracing.instance import tracefs_for_setup

    with tracefs_for_setup():
        before = _ours()
        yield LIVE_TRACEFS
        assert _ours() <= before, "an irqlab instance was left behind"


@pytest.mark.root
@pytest.mark.live
def test_an_event_this_kernel_lacks_is_named_and_no_instance_remains(live_tracefs):
    with pytest.raises(TracefsUnavailable, match="event irq:no_such_event is not available on this kernel"):
        with TraceSession(events=("irq:softirq_entry", "irq:no_such_event")):
            pass


@pytest.mark.root
@pytest.mark.live
def test_missing_optional_events_are_listed_not_fatal(live_tracefs):
    with TraceSession(events=("irq:softirq_entry",), optional=("irq:tasklet_entry", "irq:no_such_event")) as s:
        assert s.enabled == ("irq:softirq_entry", "irq:tasklet_entry")  # tasklet_* exist on 6.18
        assert s.missing == ("irq:no_such_event",)
        assert (s.instance.path / "events/irq/softirq_entry/enable").read_text().strip() == "1"
        assert (s.instance.path / "tracing_on").read_text().strip() == "0"  # not before start()
        assert "[mono]" in (s.instance.path / "trace_clock").read_text()
    assert not s.instance.path.exists()


@pytest.mark.root
@pytest.mark.live
def test_a_clock_the_kernel_does_not_offer_is_refused(live_tracefs):
    with pytest.raises(TracefsUnavailable, match="trace clock 'sundial' not offered.*mono"):
        with TraceSession(clock="sundial"):
            pass


@pytest.mark.root
@pytest.mark.live
@pytest.mark.parametrize("filters, message", [
    ({"irq:softirq_entry": "vec === 3"}, "writing 'vec === 3': Invalid argument"),
    ({"irq:softirq_entry": "vec == 3; rm -rf /"}, "unexpected characters"),
    ({"irq:softirq_exit": "vec == 3"}, "filter for irq:softirq_exit, which is not traced"),
])
def test_a_filter_the_kernel_refuses_is_one_clear_error(live_tracefs, filters, message):
    with pytest.raises(TracefsUnavailable, match=message):
        with TraceSession(events=("irq:softirq_entry",), filters=filters):
            pass


@pytest.mark.root
@pytest.mark.live
def test_a_kernel_filter_keeps_only_the_matching_events(live_tracefs):
    with TraceSession(events=("irq:softirq_entry",), filters={"irq:softirq_entry": "vec == 1 || vec == 9"}) as s:
        s.start()
        batch = s.read(timeout_s=0.5)
        s.stop()
    assert len(batch) > 0 and set(batch.arg0.tolist()) <= {1, 9}  # TIMER and RCU run on any live box


@pytest.mark.root
def test_an_unprivileged_user_gets_permission_denied(live_tracefs):
    if shutil.which("setpriv") is None:
        missing_tool("setpriv")
    code = textwrap.dedent("""
        from irqlab.errors import TracefsUnavailable
        from irqlab.tracing.session import TraceSession
        try:
            with TraceSession():
                pass
        except TracefsUnavailable as exc:
            print(exc)
            raise SystemExit(3)
    """)
    cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-c", code]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(SRC)),
                          cwd="/", timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert "permission denied (tracing needs root)" in proc.stdout


TRACER = textwrap.dedent("""
    import sys, time
    from irqlab.tracing.session import TraceSession
    with TraceSession(events=("irq:softirq_entry",)) as s:
        s.start()
        print(s.instance.path, flush=True)
        while True:
            s.read(timeout_s=0.2)
""")


def _tracer() -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", TRACER], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(SRC)))
    path = Path(proc.stdout.readline().strip())
    assert path.is_dir(), "the tracer did not start"
    return proc, path


@pytest.mark.root
@pytest.mark.live
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signalled_tracer_removes_its_instance(live_tracefs, sig):
    proc, path = _tracer()
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert not path.exists()


@pytest.mark.root
@pytest.mark.live
def test_the_next_start_removes_the_instance_of_a_tracer_killed_with_sigkill(live_tracefs):
    proc, path = _tracer()
    proc.kill()
    proc.wait(timeout=30)
    assert path.exists(), "SIGKILL cannot be caught: the instance stays until the next start"
    with TraceSession(events=("irq:softirq_entry",)) as s:
        assert not path.exists()
        assert s.instance.path.exists()
    assert not s.instance.path.exists()


@pytest.mark.root
@pytest.mark.live
def test_every_event_read_is_decoded(live_tracefs):
    """The decoder yields exactly the kernel's `read events` count: nothing skipped or invented."""
    with TraceSession(optional=("irq:tasklet_entry", "irq:tasklet_exit",
                                "irq_vectors:local_timer_entry", "irq_vectors:local_timer_exit")) as s:
        before = s.read_stats()
        s.start()
        batch = s.read(timeout_s=0.5)
        s.stop()
        rest = s.read()
        after = s.read_stats()
    read = sum(after[c].read - before[c].read for c in after)
    assert len(batch) + len(rest) == read > 0
    assert batch.source == "tracefs" and batch.start_ns < batch.end_ns <= rest.end_ns
    for b in (batch, rest):
        for cpu in set(b.cpu.tolist()):
            ts = b.ts_ns[b.cpu == cpu]
            assert (ts[1:] >= ts[:-1]).all()


@pytest.mark.root
@pytest.mark.live
def test_stream_windows_tile_the_trace_clock(live_tracefs):
    with TraceSession() as s:
        batches = list(s.stream(0.2, count=3))
        s.stop()
        batches.append(s.read())
    for prev, nxt in zip(batches, batches[1:]):
        assert prev.end_ns == nxt.start_ns
    for b in batches:
        assert ((b.ts_ns > b.start_ns) & (b.ts_ns <= b.end_ns)).all()
    t = time.monotonic_ns()
    assert batches[0].start_ns < batches[-1].end_ns < t  # clock "mono" is time.monotonic_ns()
