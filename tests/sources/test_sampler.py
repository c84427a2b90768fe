"""The Sampler: per-source status and duration, refresh policy, failure reporting, and the doctor's
network state (every namespace, entered as root; listed as not entered when it cannot be)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from irqlab.errors import MissingSource, ParseError
from irqlab.sources.fs import Roots
from irqlab.sources.sampler import Sampler, SampleSpec

CAPTURE = Path(__file__).resolve().parent.parent / "fixtures" / "captures" / "vm-idle" / "a"


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "cap"
    shutil.copytree(CAPTURE, dst, symlinks=True)
    return dst


def test_every_source_has_a_status_and_a_duration_from_the_clock():
    now = iter(range(0, 10**12, 1_000_000))  # 1 ms per call
    snap = Sampler(Roots.capture(CAPTURE), clock=lambda: next(now)).take()
    by = {s.source: s for s in snap.statuses}
    assert {"interrupts", "softirqs", "stat", "softnet", "irqinfo", "tasks", "host", "sysctl"} <= by.keys()
    assert by["interrupts"].success and by["interrupts"].duration_s == pytest.approx(0.001)
    assert not any(s.reused for s in snap.statuses)


def test_a_garbled_optional_file_fails_its_source_only_when_not_strict(tmp_path):
    cap = _copy(tmp_path)
    (cap / "proc" / "softirqs").write_text("garbage\n")
    with pytest.raises(ParseError):
        Sampler(Roots.capture(cap)).take()
    snap = Sampler(Roots.capture(cap), SampleSpec(strict=False)).take()
    status = next(s for s in snap.statuses if s.source == "softirqs")
    assert not status.success and "softirqs" in status.error
    assert snap.softirqs is None and snap.interrupts is not None
    assert [u.source for u in snap.unreadable if u.reason == "parse"] == ["softirqs"]


def test_interrupts_are_required_except_where_the_caller_requires_nothing(tmp_path):
    cap = _copy(tmp_path)
    (cap / "proc" / "interrupts").unlink()
    with pytest.raises(MissingSource):
        Sampler(Roots.capture(cap), SampleSpec(strict=False)).take()
    snap = Sampler(Roots.capture(cap), SampleSpec(strict=False, required=())).take()
    assert snap.interrupts is None
    assert not next(s for s in snap.statuses if s.source == "interrupts").success


def test_a_failing_source_is_reported_once_and_its_recovery_once(tmp_path):
    cap = _copy(tmp_path)
    told: list[tuple[str, bool, bool]] = []
    sampler = Sampler(Roots.capture(cap), SampleSpec(strict=False), on_status=lambda s, was: told.append((s.source, s.success, was)))
    good = (cap / "proc" / "softirqs").read_text()
    (cap / "proc" / "softirqs").write_text("garbage\n")
    sampler.take()
    sampler.take()
    assert told == [("softirqs", False, False)]
    (cap / "proc" / "softirqs").write_text(good)
    sampler.take()
    sampler.take()
    assert told == [("softirqs", False, False), ("softirqs", True, True)]


def test_a_walk_that_found_nothing_and_hit_a_problem_failed(tmp_path):
    cap = _copy(tmp_path)
    pids = [p for p in (cap / "proc").iterdir() if p.name.isdigit()]
    assert pids, "the capture holds ksoftirqd's /proc/PID"
    for pid in pids:
        (pid / "stat").write_text("no comm here\n")
    snap = Sampler(Roots.capture(cap), SampleSpec(strict=False)).take()
    status = next(s for s in snap.statuses if s.source == "tasks")
    assert not status.success and snap.tasks == ()


def test_slow_sources_are_kept_until_their_period_passes_and_say_so():
    now = [0]
    sampler = Sampler(Roots.capture(CAPTURE), SampleSpec(refresh={"tasks": 5.0}), clock=lambda: now[0])
    a = sampler.take()
    now[0] = 4_999_000_000
    b = sampler.take()
    now[0] = 5_000_000_000
    c = sampler.take()
    assert b.tasks is a.tasks and c.tasks is not a.tasks and c.tasks == a.tasks
    reused = [next(s.reused for s in x.statuses if s.source == "tasks") for x in (a, b, c)]
    assert reused == [False, True, False]


def test_threads_report_run_and_wait_time_of_this_process():
    t0 = time.monotonic_ns()
    snap = Sampler(Roots(), SampleSpec(irqinfo=False, tasks=False, threads=True)).take()
    # Stamped on the same clock as the counters, when the threads themselves were read.
    assert snap.threads_ns is not None and t0 <= snap.taken_ns <= snap.threads_ns <= time.monotonic_ns()
    me = [t for t in snap.threads if t.tid == os.getpid()]
    assert len(me) == 1 and me[0].pid == os.getpid() and me[0].run_ns > 0
    assert any(t.kthread and t.comm.startswith("ksoftirqd/") for t in snap.threads)


# --- network namespaces ---------------------------------------------------------------------


@pytest.fixture
def namespaces():
    """Two namespaces the test creates: one named by `ip netns`, one a process is in (unshare -n)."""
    if os.geteuid() != 0:
        pytest.skip("creating network namespaces needs root")
    name = f"irqlabt{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    holder = None
    try:
        subprocess.run(["ip", "-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1"], check=True)
        holder = subprocess.Popen(["unshare", "-n", "sleep", "60"])
        # The child has entered its namespace once its link differs from ours.
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{holder.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline, "unshare did not enter a namespace"
            time.sleep(0.01)
        yield name, holder.pid
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_every_namespace_is_read_from_inside_it(namespaces):
    name, pid = namespaces
    snap = Sampler(Roots(), SampleSpec(irqinfo=False, tasks=False, net=True)).take()
    assert snap.net is not None and snap.net.views[0].namespace.host
    host = snap.net.views[0]
    assert "lo" in {d.name for d in host.devices} and ("Udp", "RcvbufErrors") in host.counters
    named = [v for v in snap.net.views if name in v.namespace.names]
    assert len(named) == 1 and {d.name for d in named[0].devices} == {"lo", "v0", "v1"}
    assert named[0].namespace.label == f"netns {name}"
    held = [v for v in snap.net.views if v.namespace.pid == pid]
    assert len(held) == 1 and {d.name for d in held[0].devices} == {"lo"}
    assert "sleep" in held[0].namespace.label
    # The host's devices are not mistaken for the namespace's (each has its own sysfs).
    assert "eth0" not in {d.name for v in snap.net.views[1:] for d in v.devices}
    assert snap.net.not_entered == ()
    # A veth end's iflink is its peer's ifindex: how the doctor pairs the two ends.
    v0, v1 = (next(d for d in named[0].devices if d.name == n) for n in ("v0", "v1"))
    assert v0.iflink == v1.ifindex and v1.iflink == v0.ifindex and v0.ifindex != v1.ifindex


def test_without_the_walk_only_the_host_is_read(namespaces):
    snap = Sampler(Roots(), SampleSpec(irqinfo=False, tasks=False, net=True, netns=False)).take()
    assert snap.net is not None and [v.namespace.host for v in snap.net.views] == [True]


def test_unprivileged_the_namespaces_it_could_not_enter_are_named(namespaces):
    """As nobody, setns() is refused: each namespace is listed as not entered, with why."""
    from tests.privilege import as_nobody

    name, _ = namespaces

    def read():
        snap = Sampler(Roots(), SampleSpec(irqinfo=False, tasks=False, net=True)).take()
        assert snap.net is not None
        return [(ns.names, reason) for ns, reason in snap.net.not_entered], len(snap.net.views)

    not_entered, nviews = as_nobody(read)
    assert nviews == 1
    assert any(name in names and "CAP_SYS_ADMIN" in reason for names, reason in not_entered)


def test_a_net_capture_reads_back_like_the_live_machine(namespaces, tmp_path):
    from irqlab.outputs.snapshot_dir import write_capture
    from irqlab.sources.snapshot_dir import collect

    name, pid = namespaces
    write_capture(collect(Roots(), net=True), tmp_path / "cap")
    spec = SampleSpec(irqinfo=False, tasks=False, net=True, threads=True)
    live = Sampler(Roots(), spec).take()
    cap = Sampler(Roots.capture(tmp_path / "cap"), spec).take()
    assert cap.net is not None and live.net is not None
    label = {v.namespace.inode: v.namespace.label for v in cap.net.views}
    assert label == {v.namespace.inode: v.namespace.label for v in live.net.views}
    assert f"netns {name}" in label.values() and any("sleep" in x for x in label.values())
    for got in cap.net.views:
        want = live.net.view(got.namespace.inode)
        assert want is not None
        assert [(d.name, d.driver, sorted(d.statistics), len(d.rx_queues)) for d in got.devices] == [
            (d.name, d.driver, sorted(d.statistics), len(d.rx_queues)) for d in want.devices]
        assert got.counters.keys() == want.counters.keys()
    assert {t.tid for t in cap.threads} >= {t.tid for t in live.threads if t.kthread and t.comm.startswith("ksoftirqd/")}
    # The capture says when its threads were read: after its counters.
    assert cap.threads_ns is not None and cap.threads_ns > cap.taken_ns
