"""The BPF backend on this kernel: verifier, exact counts under load, agreement with tracefs, cleanup."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tests.live_load import load, plan_window, reader_priority, trace_fill_rate

from servers import missing_tool

pytestmark = [pytest.mark.live, pytest.mark.root, pytest.mark.usefixtures("bpf_permitted")]

REPO = Path(__file__).resolve().parents[2]


def proc_softirqs() -> np.ndarray:
    """(ncpus, 10) counts from /proc/softirqs, CPU columns by their CPUn labels."""
    lines = Path("/proc/softirqs").read_text().splitlines()
    cpus = [int(h[3:]) for h in lines[0].split()]
    out = np.zeros((max(cpus) + 1, 10), dtype=np.int64)
    for v, line in enumerate(lines[1:11]):
        for c, n in zip(cpus, line.split()[1:]):
            out[c, v] = int(n)
    return out


def gone(ids: list[int], timeout_s: float = 5.0) -> list[int]:
    """The ids still loaded after waiting up to timeout_s (programs are freed after an RCU grace period)."""
    from irqlab.bpf.syscall import prog_loaded

    deadline = time.monotonic() + timeout_s
    left = ids
    while left and time.monotonic() < deadline:
        left = [i for i in left if prog_loaded(i)]
        if left:
            time.sleep(0.1)
    return left


def test_every_program_passes_the_verifier_and_is_freed_on_close():
    from irqlab.bpf.backend import BpfTracer

    with BpfTracer() as t:
        ids = t.prog_ids()
        assert len(ids) == len(t.names) >= 9  # softirq x3, irq x2, tasklet x2, sched_switch, vectors
        assert all(n.startswith("irqlab_") for n in t.names)
        r = t.snapshot()
        assert r.source == "bpf"
    assert gone(ids) == []


@pytest.mark.slow
def test_softirq_counts_equal_the_proc_softirqs_delta_under_the_udp_flood():
    from irqlab.bpf.backend import BpfTracer, softirq_entries

    with load("-m", "udp", "-l", "16", "-n", "2", duration=60), BpfTracer() as t:
        # The window is between two flips; /proc/softirqs is read just before each flip (which
        # reads the in-kernel counters first thing), and softirq entries are counted in-kernel
        # in the same handle_softirqs() step as /proc/softirqs
        # (kstat_incr_softirqs_this_cpu() just before trace_softirq_entry(), kernel/softirq.c v6.18).
        p0 = proc_softirqs()
        t.flip()
        time.sleep(4)
        p1 = proc_softirqs()
        gen, _, c0, c1 = t.flip()
        series = t.read_series(gen)
        misses = t.misses()
    proc = (p1 - p0)[: c1.misc.shape[0]]
    bpf = softirq_entries(c0, c1)
    net_rx = 3
    assert proc[:, net_rx].sum() > 10_000, "the flood did not reach NET_RX"
    for v in range(10):
        want, got = int(proc[:, v].sum()), int(bpf[:, v].sum())
        # Over-counting has no cause but the window edges (a /proc read and a flip a few us
        # apart): at most 0.5 % or 2 runs. Under-counting has one more, measured on this VM kind
        # and not explained by the kernel's counters: softirq runs on top of a few threads of
        # the VM's own agent (tokio-rt-worker, spawner, vsock-console) never reach the BPF
        # program, through perf or raw tracepoints alike, with recursion_misses 0, while the
        # tracefs event of the same run is there (tests/tracing/test_trace_live.py holds
        # tracefs to the exact count). Seen: 4-6 runs of ~300-450 RCU runs in 4 s, up to 12 of
        # ~385k NET_RX, 5 of 61 RCU runs: a few runs per window whatever the vector's rate,
        # as the agent's threads run a few times a second. docs/trace.md states it among the
        # BPF backend's differences; the allowance is twice the largest deficit seen.
        assert got - want <= max(0.005 * want, 2), (v, got, want, misses)
        assert want - got <= max(0.005 * want, 2) + 12, (v, got, want, misses)
    # the duration histograms count completed runs of the same window
    hist = int(series[t.lay.soft_gross + net_rx][:, 0].sum())
    assert abs(hist - proc[:, net_rx].sum()) <= 0.005 * proc[:, net_rx].sum()


@pytest.mark.slow
def test_tracefs_and_bpf_backends_agree_on_a_tcp_load():
    import threading

    from irqlab.analysis.trace_aggregate import aggregate_trace
    from irqlab.bpf.backend import BpfTracer, to_result
    from irqlab.tracing.decode import DEFAULT_EVENTS, OPTIONAL_EVENTS
    from irqlab.tracing.session import TraceSession

    with load("-m", "tcp", duration=60), BpfTracer() as t:
        # The tracefs side must lose nothing for a fair comparison: its buffer is sized from
        # what this machine's load fills it with (tests/live_load.py), not fixed.
        buffer_kb, seconds = plan_window(trace_fill_rate(DEFAULT_EVENTS, OPTIONAL_EVENTS), want_s=3)
        with reader_priority(), TraceSession(events=DEFAULT_EVENTS, optional=OPTIONAL_EVENTS, buffer_kb=buffer_kb) as s:
            # Both windows start here and end `seconds` later (the tracefs stream then still
            # decodes for a while, so a timer closes the BPF window, not the stream's return).
            t.flip()
            ended = []
            timer = threading.Timer(seconds, lambda: ended.append(t.flip()))
            timer.start()
            batch = next(iter(s.stream(seconds, 1)))
            timer.join()
        gen, window, before, now = ended[0]
        rb = to_result(t.read_series(gen), t.lay, t.layout, window, before, now)
    rt = aggregate_trace(batch)
    assert rt.complete, f"tracefs dropped events ({rt.lost}) with {buffer_kb} KiB per CPU for {seconds:.2f} s"
    b = {h.name: h for h in rb.softirqs}["NET_RX"]
    tr = {h.name: h for h in rt.softirqs}["NET_RX"]
    gb, gt = b.merged(), tr.merged()
    assert gt.count > 1000, "the TCP load did not reach NET_RX"
    assert abs(gb.count - gt.count) <= 0.03 * gt.count
    assert abs(gb.sum_ns / gb.count - gt.sum_ns / gt.count) <= 0.2 * gt.sum_ns / gt.count
    # ksoftirqd share of runs: the programs compare the pid with the ksoftirqd pids from /proc
    kb, kt = b.context_share("ksoftirqd")[0], tr.context_share("ksoftirqd")[0]
    assert abs(kb - kt) <= 0.02
    lb, lt = b.merged("latency"), tr.merged("latency")
    assert abs(lb.sum_ns / lb.count - lt.sum_ns / lt.count) <= 0.2 * lt.sum_ns / lt.count


CHILD = """
import sys, time
from pathlib import Path
from irqlab.bpf.backend import BpfTracer
t = BpfTracer().__enter__()
print(" ".join(map(str, t.prog_ids())), flush=True)
time.sleep(60)
"""


def test_sigkill_of_the_loading_process_leaves_no_irqlab_program_loaded():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        ids = [int(x) for x in proc.stdout.readline().split()]
        assert ids, "the child loaded nothing"
        from irqlab.bpf.syscall import prog_loaded

        assert all(prog_loaded(i) for i in ids)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert gone(ids) == []


UNMOUNTED = """
import subprocess
from pathlib import Path
def tracefs_mounts():
    return [l for l in Path("/proc/self/mounts").read_text().splitlines() if l.split()[2] == "tracefs"]
for m in tracefs_mounts():
    subprocess.run(["umount", m.split()[1]], check=True)
assert not tracefs_mounts()
from irqlab.bpf.backend import BpfTracer
with BpfTracer() as t:
    print(len(t.prog_ids()), len(tracefs_mounts()))
print(len(tracefs_mounts()))
"""


def test_on_a_machine_without_tracefs_mounted_bpf_mounts_it_for_set_up_only():
    """A fresh machine of this kind boots without tracefs mounted: the backend mounts it to read
    the event formats and unmounts it at once (nothing irqlab changed stays changed). Run in a
    private mount namespace, so the host's own mount is never touched."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) not installed: bash scripts/test.sh installs it")
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c", UNMOUNTED],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    during, after = out.stdout.split("\n")[:2]
    progs, mounts_during = map(int, during.split())
    assert progs >= 9 and mounts_during == 0 and int(after) == 0, out.stdout


NOBODY = """
from irqlab.bpf.backend import choose_backend
from irqlab.bpf.syscall import BpfUnavailable
print(choose_backend("auto"))
try:
    choose_backend("bpf")
except BpfUnavailable as exc:
    print("refused:", exc)
"""


def test_without_privilege_auto_falls_back_to_tracefs_with_one_line_and_bpf_is_refused():
    import shutil

    if shutil.which("setpriv") is None:
        missing_tool("setpriv")
    out = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all",
                          sys.executable, "-c", NOBODY], capture_output=True, text=True, cwd="/", timeout=60,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": os.environ.get("PATH", "")})
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    assert first.startswith("('tracefs', 'BPF backend not available (") and "Operation not permitted" in first
    assert second.startswith("refused: --backend bpf:") and "\n" not in second


def test_a_program_the_verifier_refuses_raises_with_the_verifier_log():
    from irqlab.bpf.asm import R0, R2, Asm, encode
    from irqlab.bpf.syscall import VerifierError, prog_load

    bad = Asm().mov(R0, R2).exit().assemble()  # r2 is never written: the verifier says so
    with pytest.raises(VerifierError) as info:
        prog_load(encode(bad), "irqlab_bad")
    assert "R2 !read_ok" in info.value.log
    assert "R2 !read_ok" in str(info.value)


def test_a_bpf_result_renders_as_text_and_json_like_a_tracefs_one():
    from irqlab.bpf.backend import BpfTracer
    from irqlab.outputs.trace_json import trace_json
    from irqlab.outputs.trace_text import TextOptions, render_trace

    with BpfTracer() as t:
        time.sleep(0.5)
        r = t.snapshot()
    text = render_trace(r, TextOptions(per_cpu=True, hist="log2"))
    assert text.startswith("irqlab trace: ") and "source bpf" in text.splitlines()[0]
    assert trace_json(r)["source"] == "bpf"


def test_the_export_provider_reads_live_cumulative_histograms_and_releases_on_close():
    from irqlab.bpf.export_histograms import histogram_provider

    tracer, provider = histogram_provider()
    try:
        ids = tracer.prog_ids()
        time.sleep(1.1)
        first = {(h.name, h.labels.get("irq") or h.labels.get("vector")): h.histogram.count for h in provider()}
        time.sleep(1.1)
        second = {(h.name, h.labels.get("irq") or h.labels.get("vector")): h.histogram.count for h in provider()}
    finally:
        tracer.close()
    assert any(first.values())  # a second of a live machine: at least a timer tick or a softirq
    assert all(second[k] >= n for k, n in first.items())  # cumulative, as Prometheus wants
    assert gone(ids) == []
