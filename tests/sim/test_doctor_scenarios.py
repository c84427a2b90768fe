"""`irqlab doctor --sim` on the scenarios a VM cannot produce: the cause each one is built to show.

Each examples/scenarios/doctor-*.toml says in its header what it reproduces and what the
doctor should say; these tests hold the doctor's JSON to it (top finding: vector or IRQ, CPU,
mechanism; actions for this model's machine). The simulator's snapshots carry the model's own
threads (schedstat run and wait) and network state (NIC statistics, UDP MIB and sockets),
which the causal chain reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from irqlab.analysis.delta import compute_rates
from irqlab.analysis.doctor import diagnose
from irqlab.analysis.trace_aggregate import aggregate_trace
from irqlab.cli.main import main
from irqlab.cpulist import parse_cpulist
from irqlab.sim.machine import Machine
from irqlab.sim.readout import event_batch
from irqlab.sim.scenario import load_scenario, parse_scenario
from irqlab.sources.tasks import ksoftirqd_of

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


def doctor(name: str, capsys) -> tuple[int, list[dict]]:
    code = main(["doctor", "--sim", str(EXAMPLES / name), "--json"])
    return code, json.loads(capsys.readouterr().out)["findings"]


def affinity_writes(finding: dict) -> dict[str, tuple[str, str]]:
    """/proc/irq/N/smp_affinity_list path -> (old, new) of a finding's irq-affinity actions."""
    return {a["path"]: (a["old"], a["new"]) for a in finding.get("actions", ()) if a["kind"] == "irq-affinity"}


@pytest.fixture(scope="module")
def runs() -> dict[str, Machine]:
    return {}


def run(name: str, runs: dict[str, Machine]) -> Machine:
    if name not in runs:
        runs[name] = Machine(load_scenario(EXAMPLES / name)).run()
    return runs[name]


# --- the four scenarios, through the CLI ------------------------------------------------------


def test_nic_storm_is_blamed_on_irq_41_on_cpu0_and_moved_to_cpu1(capsys):
    code, findings = doctor("doctor-nic-storm.toml", capsys)
    top = findings[0]
    assert code == 2 and top["severity"] == "critical"
    assert top["code"] == "cause-nic-queue" and top["metrics"]["mechanism"] == "nic-queue"
    assert top["metrics"]["cpu"] == 0 and top["metrics"]["vector"] == "NET_RX"
    assert "IRQ 41 (eth0 rx-0)" in top["title"]
    assert any("ksoftirqd/0" in e and "waited" in e for e in top["evidence"])
    assert any("backlog drops on CPU0" in e for e in top["evidence"])
    assert affinity_writes(top) == {"/proc/irq/41/smp_affinity_list": ("0", "1")}
    assert ("storm", "IRQ 41 (eth0-rx-0)") in {(f["code"], f["subject"]) for f in top["folded"]}


def test_msix_queues_on_cpu0_are_blamed_on_their_irqs_with_an_affinity_move_off_cpu0(capsys):
    code, findings = doctor("doctor-msix-one-cpu.toml", capsys)
    top = findings[0]
    assert code == 2 and top["code"] == "cause-nic-queue"
    assert top["metrics"]["cpu"] == 0 and top["metrics"]["vector"] == "NET_RX" and top["metrics"]["lost_per_s"] > 0
    for irq in (41, 42, 43, 44):
        assert any(f"IRQ {irq} eth0-rx-{irq - 41}" in e for e in top["evidence"])
    assert any("rx_missed_errors" in e for e in top["evidence"])
    writes = affinity_writes(top)
    assert writes and set(writes) <= {f"/proc/irq/{n}/smp_affinity_list" for n in (41, 42, 43, 44)}
    assert all(old == "0" and len(parse_cpulist(new)) == 1 for old, new in writes.values())  # one CPU each
    assert {c for _, new in writes.values() for c in parse_cpulist(new)} == {1, 2, 3}


def test_msix_actions_spread_every_queue_irq_over_the_cpus(capsys):
    _, findings = doctor("doctor-msix-one-cpu.toml", capsys)
    writes = affinity_writes(findings[0])
    assert len(writes) == 4 and len({new for _, new in writes.values()}) >= 3


def test_unhandled_storm_is_the_critical_top_finding_for_irq_16(capsys):
    code, findings = doctor("doctor-unhandled-storm.toml", capsys)
    top = findings[0]
    assert code == 2 and top["severity"] == "critical"
    assert top["code"] == "unhandled-irq" and top["metrics"]["irq"] == 16
    assert top["metrics"]["share"] == 1.0 and top["metrics"]["grew"] > 50_000
    assert ("storm", "IRQ 16 (ehci_hcd:usb1)") in {(f["code"], f["subject"]) for f in top.get("folded", ())}


def test_unhandled_storm_names_its_cpu_and_explains_the_storm(capsys):
    _, findings = doctor("doctor-unhandled-storm.toml", capsys)
    top = findings[0]
    assert top["metrics"].get("cpu") == 1 and any(f["code"] == "storm" for f in top.get("folded", ()))


def rt_finding(findings: list[dict]) -> dict:
    return next(f for f in findings if f["code"] == "cause-rt-starvation")


def test_rt_task_starving_ksoftirqd_is_named_with_a_move_off_its_cpu(capsys):
    code, findings = doctor("doctor-rt-starves-ksoftirqd.toml", capsys)
    rt = rt_finding(findings)
    assert code == 2 and rt["metrics"]["cpu"] == 0 and rt["metrics"]["mechanism"] == "rt-starvation"
    assert rt["title"].startswith("rt-spin (FIFO 50) starves ksoftirqd/0")
    assert rt["metrics"]["max_wait_pct"] > 95
    moves = [(a["path"], a["new"], a["command"]) for a in rt["actions"] if a["kind"] == "task-affinity"]
    assert moves == [("pid 1000", "1", "taskset -pc 1 1000")]
    assert not affinity_writes(rt)
    assert any(f["code"] == "nic-drops" and f["subject"] == "eth0 (host)" for f in findings)


def test_rt_starvation_is_the_top_finding(capsys):
    _, findings = doctor("doctor-rt-starves-ksoftirqd.toml", capsys)
    assert findings[0]["code"] == "cause-rt-starvation"


# --- what the snapshots carry -------------------------------------------------------------------


def test_threads_carry_the_models_run_and_wait_time(runs):
    m = run("doctor-rt-starves-ksoftirqd.toml", runs)
    first, last = m.snapshots[0], m.snapshots[-1]
    threads = {t.comm: t for t in last.threads}
    assert set(threads) == {t.name for t in m.tasks}
    ks, hog = threads["ksoftirqd/0"], threads["rt-spin"]
    assert (hog.policy, hog.rt_priority, hog.kthread, hog.last_cpu) == ("fifo", 50, False, 0)
    assert (ks.policy, ks.kthread, ks.last_cpu) == ("other", True, 0)
    interval = last.taken_ns - first.taken_ns
    before = {t.comm: t for t in first.threads}
    # ksoftirqd/0 was runnable all along under the FIFO task: its wait grew by the whole interval.
    assert ks.wait_ns - before["ksoftirqd/0"].wait_ns > 0.95 * interval
    assert ks.run_ns == before["ksoftirqd/0"].run_ns
    assert hog.run_ns == next(t.run_ns for t in m.tasks if t.name == "rt-spin")


def test_a_task_that_shares_its_cpu_waits_as_long_as_the_other_runs(machine):
    m = machine({"machine": {"cpus": 1, "duration_s": 0.1}, "task": [{"name": "a", "kind": "hog"}, {"name": "b", "kind": "hog"}]}).run()
    a, b = (next(t for t in m.snapshots[-1].threads if t.comm == n) for n in "ab")
    for me, other in ((a, b), (b, a)):
        assert abs(me.wait_ns - other.run_ns) <= 2_000_000  # runnable whenever the other ran (to a tick)


def test_net_view_counts_each_nic_queue_from_its_ring(runs):
    m = run("doctor-msix-one-cpu.toml", runs)
    view = m.snapshots[-1].net.views[0]
    assert view.namespace.host and view.counters == {} and view.udp == ()
    (eth0,) = view.devices
    assert eth0.name == "eth0" and [q.index for q in eth0.rx_queues] == [0, 1, 2, 3]
    assert all(q.rps_cpus == () for q in eth0.rx_queues)
    lines = [ln for ln in m.lines if ln.name.startswith("eth0-rx-")]
    assert eth0.stat("rx_missed_errors") == sum(ln.missed for ln in lines) > 0
    assert eth0.stat("rx_packets") == sum(ln.arrived - ln.missed - ln.queued for ln in lines)
    assert eth0.stat("rx_fifo_errors") is None  # not modelled: left out
    assert all(m.snapshots[-1].irqinfo[n].managed is False for n in (41, 42, 43, 44))


def test_netif_rx_backlog_drops_are_the_devices_rx_dropped(runs):
    m = run("doctor-nic-storm.toml", runs)
    (eth0,) = m.snapshots[-1].net.views[0].devices
    assert eth0.stat("rx_dropped") == m.softnet[0].dropped > 0


def test_sockets_give_the_udp_mib_and_a_row_each():
    sc = parse_scenario({"machine": {"cpus": 2, "duration_s": 0.05},
                         "device": [{"name": "eth0-rx-0", "irq": 41, "arrival": {"rate": 200000}, "deliver": "server"}],
                         "task": [{"name": "server", "cpu": 1, "kind": "receiver", "work_ns": 20000, "rcvbuf": 64}]}, "t")
    m = Machine(sc).run()
    net = m.snapshots[-1].net
    sock = m.sockets["server"]
    c = net.views[0].counters
    assert c[("Udp", "RcvbufErrors")] == c[("Udp", "InErrors")] == sock.drops > 0
    assert c[("Udp", "InDatagrams")] == sock.received > 0
    (row,) = net.views[0].udp
    assert row.drops == sock.drops and net.socket_pids[row.inode] == (sock.reader.pid,) and net.comms[sock.reader.pid] == "server"


def test_a_managed_line_gets_no_affinity_write(runs):
    """A kernel-managed IRQ refuses smp_affinity writes (EPERM): the doctor must spread its packets otherwise."""
    m = Machine(load_scenario(EXAMPLES / "doctor-msix-one-cpu.toml"))
    m.tracing = True
    for ln in m.lines:
        ln.managed = True
    m.run()
    rates = compute_rates(m.snapshots[0], m.snapshots[-1])
    trace = aggregate_trace(event_batch(m), ksoftirqd_pids=ksoftirqd_of(m.snapshots[-1].tasks))
    top = diagnose(rates, trace=trace)[0]
    assert top.code == "cause-nic-queue" and top.metrics["cpu"] == 0
    assert not [a for a in top.actions if a.kind == "irq-affinity"]
    assert any(a.kind == "rps" and "eth0" in a.path for a in top.actions)
