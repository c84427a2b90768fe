"""Threaded NAPI on this kernel, end to end: load.sh -m tcp --threaded (TCP over a veth pair
with GRO, its receive side switched to threaded NAPI) seen by `irqlab snapshot --net`, the
doctor, top's view model, `irqlab map` and `irqlab trace`.

Root and live: run under the live lock (`flock /tmp/irqlab-live.lock ...`). load.sh makes and
deletes its two namespaces (irqlab<PID>s, irqlab<PID>c); the test checks they are gone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from tests.live_load import assert_ran, load

from irqlab.analysis.delta import compute_rates
from irqlab.analysis.doctor import diagnose
from irqlab.model.snapshot import POLICY_NAMES
from irqlab.sources.fs import Roots
from irqlab.sources.replay import replay
from irqlab.sources.sampler import SampleSpec, take_snapshot
from irqlab.tui import model

pytestmark = [pytest.mark.live, pytest.mark.root]

IRQLAB = [sys.executable, "-m", "irqlab"]


def irqlab(*args: str) -> str:
    proc = subprocess.run([*IRQLAB, *args], capture_output=True, text=True, timeout=90)
    assert proc.returncode in (0, 1, 2), f"irqlab {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def _netns() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


def test_a_threaded_napi_kthread_is_seen_with_its_cpu_policy_priority_and_thread_time(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    with load("-m", "tcp", "--threaded", duration=90, warmup_s=2) as proc:  # ends with the block
        tag = f"irqlab{proc.pid}"  # load.sh's $$: chrt execs it
        # veth hands an skb to its NAPI only when GRO can merge it (drivers/net/veth.c,
        # veth_skb_is_eligible_for_gro(), v6.18): with TSO on the sending end, the default,
        # TCP goes through netif_rx() to the backlog and the napi thread stays idle (31 us in
        # 3 s, measured). TSO off on the sender, inside load.sh's own namespace.
        subprocess.run(["ip", "netns", "exec", f"{tag}c", "ethtool", "-K", f"{tag}v1", "tso", "off"],
                       check=True, capture_output=True, timeout=20)
        time.sleep(0.5)
        live = take_snapshot(Roots(), SampleSpec(net=True, threads=True))
        irqlab("snapshot", "--net", "-o", str(a))
        time.sleep(2.0)
        irqlab("snapshot", "--net", "-o", str(b))
        traced = json.loads(irqlab("trace", "--backend", "tracefs", "-d", "1.5", "--json"))
        bpf = json.loads(irqlab("trace", "--backend", "bpf", "-d", "1", "--json"))
        mapped = json.loads(irqlab("map", "--json"))
        assert proc.poll() is None, "load.sh ended before the measurements did"
    assert tag not in _netns(), "load.sh left its namespaces behind"

    # The napi/DEV-ID kthread of the receiving veth, from the live read and the captures.
    (napi,) = [t for t in live.tasks if t.kind == "napi" and t.comm.startswith(f"napi/{tag}v0-")]
    view = next(v for v in live.net.views if any(d.name == f"{tag}v0" for d in v.devices))
    assert [n.pid for n in view.napis if n.pid == napi.pid] == [napi.pid], view.napi_note  # netlink names its thread
    before, after = list(replay([a, b], SampleSpec(net=True, threads=True)))
    (task,) = [t for t in after.tasks if t.pid == napi.pid]
    assert task.comm == napi.comm and task.last_cpu in (0, 1) and task.policy in POLICY_NAMES.values()
    assert task.rt_priority >= 0 and task.allowed_cpus

    # The load ran: the threaded device received packets through the window.
    dev = {d.name: d for v in after.net.views for d in v.devices}[f"{tag}v0"]
    dev0 = {d.name: d for v in before.net.views for d in v.devices}[f"{tag}v0"]
    moved = (dev.stat("rx_packets") or 0) - (dev0.stat("rx_packets") or 0)
    assert_ran(moved, 20_000, f"{tag}v0 rx_packets over the 2 s window")

    # Its run time over the window is thread time: > 0, in top's view and the doctor's finding.
    rates = compute_rates(before, after)
    pct = next(r.cpu_pct for r in rates.tasks if r.task.pid == napi.pid)
    assert pct > 0
    frame = model.build_frame(rates, diagnose(rates), model.ViewState())
    (row,) = [r for r in frame.napi_rows if r.pid == napi.pid]
    assert row.device == f"{tag}v0" and row.cpu == task.last_cpu and row.cpu_pct == pytest.approx(pct)
    assert next(c for c in frame.cpu_rows if c.cpu == task.last_cpu).napi_pct >= pct
    doc = json.loads(irqlab("doctor", "--procfs", str(a / "proc"), "--sysfs", str(a / "sys"), "--then", str(b), "--json"))
    (found,) = [f for f in doc["findings"] if f["code"] == "napi-threads"]
    line = next(e for e in found["evidence"] if e.startswith(f"{napi.comm} (pid {napi.pid})"))
    assert f"polls {tag}v0" in line and f"last on CPU{task.last_cpu}" in line and "% CPU as thread time" in line

    # The map: the device's NAPI instance names its thread with CPU, policy and priority.
    (mdev,) = [d for d in mapped["netdevs"] if d["name"] == f"{tag}v0"]
    (mnapi,) = [n for n in mdev["napis"] if n["pid"] == napi.pid]
    assert mnapi["threaded"] == 1 and mnapi["thread"]["comm"] == napi.comm
    assert mnapi["thread"]["cpu"] in (0, 1) and mnapi["thread"]["policy"] == task.policy

    # The trace: its switches (tracefs) and its schedstat (bpf), under its whole name.
    mine = [t for t in traced["napi_threads"] if t["pid"] == napi.pid]
    assert mine and all(t["comm"] == napi.comm and t["device"] == f"{tag}v0" for t in mine)
    assert sum(t["run_ns"] for t in mine) > 0 and sum(t["runs"] for t in mine) > 0
    net_rx = sum(s["total_ns"] for s in traced["softirqs"] if s["vector"] == "NET_RX")
    bpf_mine = [t for t in bpf["napi_threads"] if t["pid"] == napi.pid]
    assert bpf_mine and bpf_mine[0]["source"] == "schedstat" and bpf_mine[0]["run_ns"] > 0
    print(f"\nnapi {napi.comm} pid {napi.pid} {task.policy} rt {task.rt_priority} nice {task.nice} CPU{task.last_cpu}: "
          f"{pct:.1f} % (schedstat, 2 s); rx_packets {moved}; tracefs {[(t['cpu'], t['runs'], t['run_ns'], t['cpu_share']) for t in mine]}"
          f" vs NET_RX {net_rx} ns over {traced['window_s']} s; bpf/schedstat {[(t['cpu'], t['run_ns']) for t in bpf_mine]}")
