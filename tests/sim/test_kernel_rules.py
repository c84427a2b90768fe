"""Rules that depend on the kernel version, each pinned to the kernel change that made it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from irqlab.cli.main import main
from irqlab.sim import rcu
from irqlab.sim.cpu import SOFTIRQ, Frame
from irqlab.sim.machine import Machine, rx_time_jiffies
from irqlab.sim.napi import napi_schedule
from irqlab.sim.scenario import ScenarioError, load_scenario, parse_scenario
from irqlab.sim.softirq import NET_RX, TASKLET, TIMER, handle_softirqs, raise_softirq
from irqlab.sim.summary import summarize

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


def _two_nics(kernel: str, duration_s: float = 0.1) -> dict:
    nic = {"kind": "napi", "cpu": 0, "arrival": {"rate": 200_000}, "hardirq_ns": 1500,
           "work_ns": {"mean": 1200, "dist": "exp"}}
    return {"machine": {"cpus": 2, "duration_s": duration_s, "kernel": kernel},
            "device": [dict(nic, name="eth0", irq=41), dict(nic, name="eth1", irq=42)]}


# --- net_rx_action(): sd->in_net_rx_action (v6.4, 8b43fd3d1d7d) ------------------------------


def test_two_napi_nics_on_one_cpu_share_one_net_rx_run_from_6_4():
    # eth1's interrupt lands while eth0 is polled: from 6.4 ____napi_schedule() raises nothing
    # and net_rx_action() polls eth1 in the same run ("goto start"); before, the raise made
    # handle_softirqs() restart for a run of its own.
    new = summarize(Machine(parse_scenario(_two_nics("6.18"))).run())
    old = summarize(Machine(parse_scenario(_two_nics("6.3"))).run())
    h_new, h_old = new.raise_latency["NET_RX"].stats(), old.raise_latency["NET_RX"].stats()
    assert new.cpus[0].restarts == 0 and new.cpus[0].handoffs == 0
    assert old.cpus[0].restarts > 1000
    assert h_new.count < 0.8 * h_old.count
    assert h_new.p99_ns <= 2_000  # every run is entered at the hardirq's exit
    assert new.cpus[0].packets_per_net_rx > old.cpus[0].packets_per_net_rx


@pytest.mark.parametrize(("kernel", "raised"), [("6.4", False), ("6.3", True)])
def test_napi_schedule_inside_net_rx_action_raises_only_before_6_4(machine, kernel, raised):
    m = machine({"machine": {"cpus": 1, "duration_s": 0.01, "kernel": kernel},
                 "device": [{"name": "eth0", "irq": 41, "kind": "napi"}]})
    cpu = m.cpus[0]
    cpu.stack.append(m.loc.frames[0])  # in a hardirq
    cpu.softnet.in_net_rx_action = m.in_net_rx_action_rule  # what net_rx_action() sets on this kernel
    napi_schedule(m, cpu, m.lines[0].napi)
    assert bool(cpu.sirq.pending & (1 << NET_RX)) is raised
    assert cpu.softnet.poll_list == [m.lines[0].napi]


# --- net_rx_action()'s time limit, handle_softirqs()'s limits ------------------------------------


@pytest.mark.parametrize(("kernel", "hz", "jiffies"), [
    ("4.9", 250, 2),     # "time_limit = jiffies + 2"
    ("4.15", 250, 1),    # 4.12 (7acf8a1e8a28): netdev_budget_usecs = 2000 us, one 4 ms jiffy
    ("5.6", 100, 1),
    ("5.7", 250, 2),     # a4837980fd9f: 2 * USEC_PER_SEC / HZ
    ("6.18", 1000, 2),
])
def test_net_rx_action_time_limit_by_version(kernel, hz, jiffies):
    sc = parse_scenario({"machine": {"kernel": kernel, "hz": hz}})
    assert rx_time_jiffies(sc) == jiffies


def test_netdev_budget_usecs_is_refused_before_4_12():
    with pytest.raises(ScenarioError, match="net.netdev_budget_usecs"):
        parse_scenario({"machine": {"kernel": "4.9"}, "net": {"netdev_budget_usecs": 4000}})


def _re_raising_pass(machine, kernel: str, need_resched: bool, until_ns: int):
    """An irq_exit() handle_softirqs() whose TASKLET work (0.1 ms) raises TASKLET again each time.

    Run up to until_ns: after a hand-off ksoftirqd runs and restarts on its own.
    """
    m = machine({"machine": {"cpus": 1, "duration_s": 0.01, "kernel": kernel}})
    cpu, st = m.cpus[0], m.softirq_state[0]

    def busy(m, cpu):
        yield 100_000
        raise_softirq(m, cpu, TASKLET)

    m.actions[TASKLET] = busy
    st.pending = 1 << TASKLET
    cpu.need_resched = need_resched
    cpu.stack.append(Frame(SOFTIRQ, handle_softirqs(m, cpu, None)))
    cpu.advance()
    m.engine.run(until_ns)
    return m, st


def test_before_3_8_only_the_restart_limit_ends_a_softirq_pass(machine):
    # need_resched() is set: from 3.8 (c10d73671ad3) the pass hands over after its first round;
    # before, only MAX_SOFTIRQ_RESTART counted: ten rounds.
    _, st = _re_raising_pass(machine, "6.18", True, 150_000)
    assert (st.restarts, st.handoffs) == (0, 1)
    m, st = _re_raising_pass(machine, "3.2", True, 150_000)
    assert (st.restarts, st.handoffs) == (1, 0)
    m.engine.run(1_050_000)
    assert (st.restarts, st.handoffs) == (9, 1)


def test_3_8_and_3_9_had_no_restart_limit(machine):
    # 3.8 dropped MAX_SOFTIRQ_RESTART; 3.10 (34376a50fb1f) brought it back. In 3.9 the pass goes
    # on until two jiffies (2 ms at HZ=1000) have begun: 20 rounds of 0.1 ms.
    _, st = _re_raising_pass(machine, "3.9", False, 2_050_000)
    assert (st.restarts, st.handoffs) == (19, 1)
    _, st = _re_raising_pass(machine, "3.10", False, 1_050_000)
    assert (st.restarts, st.handoffs) == (9, 1)


# --- ktimers/N (forced threading, 6.13+) --------------------------------------------------------


def _timer_softirqs(kernel: str) -> Machine:
    raw = {"machine": {"cpus": 1, "duration_s": 0.05, "kernel": kernel, "threadirqs": True,
                       "tick_raise": {"TIMER": {"chance": 1.0, "work_ns": 3000}}}}
    return Machine(parse_scenario(raw)).run()


def test_forced_threading_runs_timer_softirqs_in_ktimers_at_fifo_1_from_6_13():
    m = _timer_softirqs("6.18")
    st = m.softirq_state[0]
    kt = next(t for t in m.tasks if t.name == "ktimers/0")
    assert (kt.policy, kt.prio) == ("fifo", 1) and st.ktimerd is kt
    assert st.counts[TIMER] >= 45 and st.task_vectors[TIMER] == st.counts[TIMER]
    assert st.ksoftirqd_vectors[TIMER] == 0 and kt.run_ns >= 45 * 3000
    old = _timer_softirqs("6.12")
    assert not any(t.name.startswith("ktimers/") for t in old.tasks)
    assert old.softirq_state[0].ksoftirqd_vectors[TIMER] == old.softirq_state[0].counts[TIMER] >= 45


# --- note_interrupt() (5.13+) -----------------------------------------------------------------


@pytest.mark.parametrize(("kernel", "counted"), [("5.10", True), ("6.18", False)])
def test_a_healthy_line_counts_towards_the_spurious_window_only_before_5_13(kernel, counted):
    raw = {"machine": {"cpus": 1, "duration_s": 0.02, "kernel": kernel},
           "device": [{"name": "ok", "irq": 19, "kind": "plain", "arrival": {"process": "periodic", "rate": 100_000},
                       "hardirq_ns": 100}]}
    m = Machine(parse_scenario(raw)).run()
    line = m.lines[0]
    assert sum(line.counts) > 1000
    assert line.irq_count == (sum(line.counts) if counted else 0)  # /proc/irq/19/spurious "count"


# --- rcu_do_batch() above qhimark -------------------------------------------------------------


def test_above_qhimark_rcu_do_batch_invokes_at_most_10000_callbacks_per_run(machine):
    m = machine({"machine": {"cpus": 1, "duration_s": 0.01, "rcu_callback_ns": 0}, "task": [{"name": "h", "kind": "hog"}]})
    cpu = m.cpus[0]
    rd = m.rcu[0]
    rcu.call_rcu(m, 0, 50_000)
    m.engine.now = m.rcu_gp_ns + 1
    rcu.rcu_sched_clock_irq(m, cpu)
    cpu.curr = m.user_tasks[0]  # busy: the batch limit applies
    list(rcu.rcu_core(m, cpu))
    assert rd.invoked == rcu.DEFAULT_MAX_RCU_BLIMIT  # not all 50,000
    while rd.ready:
        list(rcu.rcu_core(m, cpu))
    assert rd.invoked == 50_000 and not rd.high  # back under qlowmark: blimit restored
    rcu.call_rcu(m, 0, 500)
    m.engine.now += m.rcu_gp_ns + 1
    rcu.rcu_sched_clock_irq(m, cpu)
    list(rcu.rcu_core(m, cpu))
    assert rd.invoked == 50_000 + m.sc.rcu_blimit


# --- reporting: the measured window only --------------------------------------------------------


def test_counters_cover_the_window_only_whatever_the_warm_up():
    # dumazet-udp, a 0.2 s window: hand-offs were 2790 / 3500 / 4919 for warm-ups 0 / 0.05 /
    # 0.15 s when they included the warm-up; the last two windows are both in steady state.
    runs = [summarize(Machine(load_scenario(EXAMPLES / "dumazet-udp.toml",
                                            ("machine.duration_s=0.2", f"machine.warmup_s={w}"))).run())
            for w in (0.05, 0.15)]
    a, b = (s.cpus[0] for s in runs)
    assert a.handoffs == pytest.approx(b.handoffs, rel=0.05)
    assert a.deferred_irq_exit == pytest.approx(b.deferred_irq_exit, rel=0.3)
    assert a.net_rx_runs == pytest.approx(b.net_rx_runs, rel=0.05) and a.handoffs <= a.net_rx_runs
    assert runs[0].tasks[0].socket_drops == pytest.approx(runs[1].tasks[0].socket_drops, abs=200)
    assert runs[0].ring_drops == pytest.approx(runs[1].ring_drops, rel=0.05)


def test_a_deterministic_run_counts_the_same_after_any_whole_number_of_ticks_of_warm_up():
    # Periodic arrivals faster than NET_RX can take them, constant costs: NET_RX overflows into
    # ksoftirqd the same way every tick (before the fix: 656 / 843 / 1030 restarts).
    def run(warmup_s: float):
        raw = {"machine": {"cpus": 1, "duration_s": 0.06, "warmup_s": warmup_s, "kernel": "6.18"},
               "device": [{"name": "eth0", "irq": 41, "kind": "napi", "ring": 256,
                           "arrival": {"process": "periodic", "rate": 1e6}, "hardirq_ns": 1000, "work_ns": 1500}]}
        return summarize(Machine(parse_scenario(raw)).run())

    runs = [run(w) for w in (0.01, 0.03, 0.05)]
    counts = {(c.restarts, c.handoffs, c.net_rx_runs, c.time_squeeze) for c in (s.cpus[0] for s in runs)}
    assert len(counts) == 1 and next(iter(counts))[0] > 0
    drops = [s.ring_drops for s in runs]
    assert max(drops) - min(drops) <= 1  # (the ring is counted when it is synced: one arrival either side)
    assert {s.delivered_per_s for s in runs} == {runs[0].delivered_per_s}


# --- packet_bytes -----------------------------------------------------------------------------


def test_packet_bytes_sets_a_senders_fragments_and_per_packet_costs():
    base = {"machine": {"cpus": 1}, "net": {"mtu": 1500, "copy_ns_per_byte": 0.5},
            "task": [{"name": "tx", "kind": "sender", "rx_ns": 1000, "fragment_ns": 200}]}
    sc = parse_scenario(base)
    assert sc.tasks[0].fragments == 1 and sc.tasks[0].rx.mean_ns == 1000  # not given: as before
    base["task"][0]["packet_bytes"] = 8972  # 8980 bytes with the UDP header, 1480 per fragment
    t = parse_scenario(base).tasks[0]
    assert t.fragments == 7
    assert t.rx.mean_ns == 1000 + round(8980 / 7 * 0.5) and t.fragment.mean_ns == 200 + round(8980 / 7 * 0.5)
    base["task"][0]["fragments"] = 2
    with pytest.raises(ScenarioError, match="task\\[0\\].fragments"):
        parse_scenario(base)


def test_packet_bytes_of_a_device_adds_the_copy_to_its_net_rx_cost_and_fits_the_mtu():
    dev = {"name": "eth0", "irq": 41, "kind": "napi", "work_ns": 500}
    assert parse_scenario({"device": [dev]}).devices[0].work.mean_ns == 500
    assert parse_scenario({"device": [dict(dev, packet_bytes=1500)]}).devices[0].work.mean_ns == 500 + 375
    with pytest.raises(ScenarioError, match="device\\[0\\].packet_bytes"):
        parse_scenario({"device": [dict(dev, packet_bytes=9000)]})


def test_bigger_packets_mean_more_fragments_and_more_rcu_callbacks():
    def run(size: int):
        raw = {"machine": {"cpus": 2, "duration_s": 0.05},
               "task": [{"name": "tx", "cpu": 0, "kind": "sender", "rate_pps": 5000, "packet_bytes": size,
                         "deliver": "rx"}, {"name": "rx", "cpu": 1, "kind": "receiver", "work_ns": 500}]}
        m = Machine(parse_scenario(raw)).run()
        return m.softnet[0].processed, m.rcu[0].invoked + m.rcu[0].queued

    small, big = run(1000), run(30_000)
    assert small[1] == 0 and big[1] > 100  # one call_rcu() per reassembled datagram
    assert big[0] > 15 * small[0]  # 21 fragments per datagram instead of 1


# --- --set removes a device or a task; the CLI shows the window's counters --------------------


def test_set_device_name_remove_drops_the_device(capsys):
    sc = load_scenario(EXAMPLES / "nic-napi.toml", ("device.eth0=remove", "task.app=remove"))
    assert sc.devices == () and sc.tasks == ()
    with pytest.raises(ScenarioError, match="no device named 'eth9'"):
        load_scenario(EXAMPLES / "nic-napi.toml", ("device.eth9=remove",))
    assert main(["sim", str(EXAMPLES / "nic-napi.toml"), "--set", "machine.duration_s=0.01",
                 "--set", "task.app=remove", "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"] == []


def test_sim_prints_net_rx_runs_and_packets_per_run_in_text_and_json(capsys):
    args = ["sim", str(EXAMPLES / "nic-napi.toml"), "--set", "machine.duration_s=0.02", "-q"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "pkts/run" in text and "NET_RX" in text.splitlines()[2]
    assert main([*args, "--json"]) == 0
    cpu0 = json.loads(capsys.readouterr().out)["cpus"][0]
    assert cpu0["net_rx_runs"] > 0 and cpu0["packets_per_net_rx"] >= 1.0 and "received_rps" in cpu0


def test_a_kernel_sweep_tabulates_restarts_and_packets_per_net_rx_run(tmp_path, capsys):
    scenario = tmp_path / "two-nics.toml"
    scenario.write_text('[machine]\ncpus = 1\nduration_s = 0.02\n'
                        + "".join(f'[[device]]\nname = "eth{i}"\nirq = {41 + i}\narrival = {{ rate = 200000 }}\n'
                                  'hardirq_ns = 1500\nwork_ns = { mean = 1200, dist = "exp" }\n' for i in (0, 1)))
    for metric in ("restarts", "packets_per_net_rx"):
        assert main(["sim", str(scenario), "--sweep", "machine.kernel=6.3,6.18", "--metric", metric, "--json", "-q"]) == 0
        old, new = (r[metric] for r in json.loads(capsys.readouterr().out)["runs"])
        assert (new == 0 and old > 0) if metric == "restarts" else new > old
