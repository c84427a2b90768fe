"""Stories of the `sender` task kind: NET_RX raised and run from a transmitting task's context."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from irqlab.sim.machine import Machine
from irqlab.sim.scenario import ScenarioError, parse_scenario
from irqlab.sim.softirq import NET_RX
from irqlab.sources.sampler import take_snapshot
from live_load import load

ROOT = Path(__file__).resolve().parents[2]


def _scenario(sender: dict | None = None, machine: dict | None = None, net: dict | None = None, hog: bool = False) -> dict:
    s = {"name": "tx", "cpu": 0, "kind": "sender", "work_ns": 2_000, "rx_ns": 1_000, "deliver": "rx"} | (sender or {})
    tasks = [s, {"name": "rx", "cpu": 1, "kind": "receiver", "work_ns": 500, "rcvbuf": 1000}]
    if hog:
        tasks.append({"name": "hog", "cpu": s.get("rps_cpu", 0), "kind": "hog"})
    return {"machine": {"cpus": 2, "hz": 250, "duration_s": 0.05, "seed": 7} | (machine or {}),
            "net": net or {}, "task": tasks}


def _run(raw: dict) -> Machine:
    return Machine(parse_scenario(raw)).run()


def test_a_paced_sender_runs_its_own_net_rx_at_local_bh_enable_and_never_in_ksoftirqd():
    m = _run(_scenario({"rate_pps": 20_000}))
    st = m.softirq_state[0]
    assert st.counts[NET_RX] > 500
    assert st.bh_enable_runs >= st.counts[NET_RX] * 0.9  # run in the sender's local_bh_enable()
    assert st.ksoftirqd_vectors[NET_RX] == 0 and st.handoffs == 0
    assert m.sockets["rx"].received > 500  # delivered to the receiver on the other CPU


def test_one_packet_per_send_never_fills_the_quota_so_a_tiny_budget_changes_nothing():
    # net_rx_action() re-raises only when a poll used its whole quota; one packet per send
    # leaves the backlog empty after each poll, as on the real veth (see docs/VALIDATION.md).
    m = _run(_scenario({"rate_pps": 20_000}, net={"netdev_budget": 1}))
    st = m.softirq_state[0]
    assert st.restarts == 0 and st.ksoftirqd_vectors[NET_RX] == 0


def test_with_weight_one_every_packet_restarts_and_the_restart_limit_hands_over_to_ksoftirqd():
    # dev_weight = 1 makes each poll a full quota, so net_rx_action() re-raises NET_RX after every
    # packet; a sender bursting 6 fragments into a backlog keeps handle_softirqs() restarting.
    raw = _scenario({"fragments": 32, "fragment_ns": 0, "work_ns": 1_000}, machine={"max_softirq_restart": 2},
                    net={"netdev_budget": 1, "dev_weight": 1})
    m = _run(raw)
    st = m.softirq_state[0]
    assert st.restarts > 0 and st.handoffs > 0
    assert st.ksoftirqd_vectors[NET_RX] > 0


def test_rps_moves_the_packets_to_the_target_cpu_where_net_rx_runs_on_irq_exit():
    m = _run(_scenario({"rate_pps": 20_000, "rps_cpu": 1}))
    st1 = m.softirq_state[1]
    assert st1.counts[NET_RX] > 100 and st1.irq_exit_runs > 100  # raised by the CAL IPI's handler
    assert sum(m.cal.counts) > 100 and m.softnet[1].received_rps == sum(m.cal.counts)
    assert m.softnet[1].processed > 0 and m.softnet[0].processed == 0


@pytest.mark.parametrize("kernel", ["6.18", "5.10"])
def test_the_sender_cpu_runs_net_rx_once_per_rps_ipi_it_sends(kernel):
    # napi_schedule_rps() raises NET_RX on the sending CPU; that run polls nothing and sends the
    # IPI from net_rps_action_and_irq_enable(). On a VM under an RPS flood the sender's CPU counts
    # about as many NET_RX runs as the target (docs/VALIDATION.md).
    m = _run(_scenario({"rate_pps": 20_000, "rps_cpu": 1}, machine={"kernel": kernel}))
    st0, st1 = m.softirq_state
    ipis = sum(m.cal.counts)
    assert st0.counts[NET_RX] == ipis and st0.bh_enable_runs == ipis  # in the sender's local_bh_enable()
    assert st0.counts[NET_RX] == pytest.approx(st1.counts[NET_RX], rel=0.05)


def test_fragments_are_reassembled_into_datagrams_for_the_socket():
    m = _run(_scenario({"rate_pps": 10_000, "fragments": 6, "rps_cpu": 1}))
    assert m.softnet[1].processed == pytest.approx(6 * (m.sockets["rx"].received + m.sockets["rx"].qlen + m.sockets["rx"].drops), abs=6)


def test_tick_raised_softirqs_during_net_rx_hand_work_to_ksoftirqd():
    raw = _scenario({"rate_pps": 60_000, "fragments": 6, "fragment_ns": 300, "rx_ns": 1_500, "rps_cpu": 1},
                    machine={"duration_s": 0.2, "tick_raise": {"RCU": {"chance": 1.0, "work_ns": 20_000}}}, hog=True)
    m = _run(raw)
    st = m.softirq_state[1]
    assert st.handoffs > 0  # a tick inside a NET_RX pass: RCU pending and jiffies moved on
    assert st.ksoftirqd_vectors[NET_RX] > 0


@pytest.mark.parametrize(("task", "needle"), [
    ({"rate_pps": -1}, "task[0].rate_pps"),
    ({"fragmnets": 6}, "task[0].fragmnets: unknown key (did you mean 'fragments'?)"),
    ({"rps_cpu": 5}, "task[0].rps_cpu"),
    ({"deliver": "nobody"}, "task[0].deliver"),
])
def test_bad_sender_keys_name_the_key(task, needle):
    with pytest.raises(ScenarioError) as e:
        parse_scenario(_scenario(task))
    assert needle in str(e.value)


def test_sender_keys_on_another_kind_are_refused():
    raw = _scenario()
    raw["task"][1]["rate_pps"] = 10.0
    with pytest.raises(ScenarioError, match=r"task\[1\]\.rate_pps: only for kind = \"sender\""):
        parse_scenario(raw)


def test_bad_tick_raise_names_the_key():
    with pytest.raises(ScenarioError, match=r"machine\.tick_raise\.NET_RX"):
        parse_scenario(_scenario(machine={"tick_raise": {"NET_RX": 0.5}}))
    with pytest.raises(ScenarioError, match=r"machine\.tick_raise\.RCU\.chance"):
        parse_scenario(_scenario(machine={"tick_raise": {"RCU": {"chance": 2.0}}}))


@pytest.mark.live
@pytest.mark.root
@pytest.mark.slow
def test_live_veth_rps_load_shows_net_rx_contexts_in_the_trace():
    # ../shared/tools/load.sh, found from this checkout (live_load.LOAD_SH): one UDP pair of 8000-byte
    # datagrams, both ends on CPU1, RPS of the receiving veth to CPU0 (mask 1).
    with load("-m", "udp", "-n", "1", "-l", "8000", "--pin", "cpu1", "--rps", "1", duration=120, warmup_s=2):  # ends with the block
        a = take_snapshot()
        tr = subprocess.run([sys.executable, "-m", "irqlab", "trace", "-d", "2", "--json", "--vector", "NET_RX"],
                            capture_output=True, text=True, timeout=110)
        b = take_snapshot()
    assert tr.returncode == 0, tr.stderr
    # The load ran: RPS sent NET_RX to CPU0 (/proc/softirqs, read around the trace window).
    cpu0 = a.softirqs.cpus.index(0)
    net_rx = a.softirqs.vectors.index("NET_RX")
    steered = int(b.softirqs.counts[net_rx, cpu0]) - int(a.softirqs.counts[net_rx, cpu0])
    assert steered > 1_000, f"only {steered} NET_RX on CPU0 while the RPS load ran"
    nrx = next(s for s in json.loads(tr.stdout)["softirqs"] if s["vector"] == "NET_RX")
    assert nrx["per_cpu"]["0"]["contexts"]["irq_exit"]["runs"] > 0  # RPS: NET_RX on CPU0 from the IPI
    assert set(nrx["contexts"]) == {"ksoftirqd", "irq_exit", "other"}
