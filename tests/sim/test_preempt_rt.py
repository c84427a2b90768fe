"""PREEMPT_RT and forced threading, seeded story tests.

On PREEMPT_RT every device handler runs in irq/N-name (SCHED_FIFO 50) and the softirqs it
raises run at its local_bh_enable(), preemptibly (kernel/softirq.c, CONFIG_PREEMPT_RT); up to
6.17, and from 6.18 with CONFIG_PREEMPT_RT_NEEDS_BH_LOCK=y, under the CPU's BH lock. Without RT, `threadirqs` also moves the handler into a thread, but the
BH-disabled section there is not preemptible.
"""

from __future__ import annotations

import pytest

from irqlab.sim.scenario import ScenarioError, parse_scenario
from irqlab.sim.softirq import NET_RX, raise_softirq

NIC = {"name": "eth0", "irq": 41, "kind": "napi", "arrival": {"rate": 400_000}, "hardirq_ns": 1000,
       "work_ns": 1500, "deliver": "rx"}
READER = {"name": "rx", "kind": "receiver", "work_ns": 800}
CONTROL = {"name": "ctl", "kind": "periodic", "period_us": 500, "work_ns": 20_000, "policy": "fifo", "priority": 80}


def _raw(devices=(NIC,), tasks=(READER, CONTROL), **machine) -> dict:
    return {"machine": {"cpus": 1, "duration_s": 0.1, "seed": 4, "kernel": "6.18", **machine},
            "device": list(devices), "task": list(tasks)}


def _task(m, name):
    return next(t for t in m.tasks if t.name == name)


def test_on_rt_net_rx_runs_in_the_irq_thread_not_on_irq_exit(machine):
    m = machine(_raw(devices=(dict(NIC, arrival={"rate": 200_000}),), preempt_rt=True)).run()
    st = m.softirq_state[0]
    thread = _task(m, "irq/41-eth0")
    assert (thread.policy, thread.prio) == ("fifo", 50)
    assert st.irq_exit_runs == 0  # the hardirq only wakes the thread
    assert st.counts[NET_RX] > 1000
    assert st.task_vectors[NET_RX] + st.ksoftirqd_vectors[NET_RX] == st.counts[NET_RX]
    assert st.task_vectors[NET_RX] > 0.9 * st.counts[NET_RX]  # no overload: the thread does it all
    assert m.sockets["rx"].received > 0.9 * m.lines[0].arrived


def test_without_rt_net_rx_runs_on_irq_exit(machine):
    m = machine(_raw()).run()
    st = m.softirq_state[0]
    assert st.irq_exit_runs == st.counts[NET_RX] > 1000
    assert st.task_vectors[NET_RX] == 0


def test_rt_softirq_work_is_preemptible_by_a_higher_priority_task(machine):
    """The FIFO 80 control loop waits for NET_RX on irq_exit (non-RT) and for the forced
    thread's BH-disabled section (threadirqs without RT), but preempts it on RT."""
    p99 = {}
    for label, knobs in (("plain", {}), ("threadirqs", {"threadirqs": True}), ("rt", {"preempt_rt": True})):
        m = machine(_raw(**knobs)).run()
        p99[label] = _task(m, "ctl").latency.stats().p99_ns
    assert p99["plain"] > 10_000 and p99["threadirqs"] > 10_000
    assert p99["rt"] < 5_000
    assert p99["rt"] * 5 < min(p99["plain"], p99["threadirqs"])


FLOOD = dict(NIC, arrival={"rate": 1_500_000}, deliver="forward")
SPI = {"name": "spi0", "irq": 9, "kind": "plain", "arrival": {"rate": 500}, "hardirq_ns": 2000}


@pytest.mark.parametrize("machine_keys", [{"kernel": "6.17"}, {"kernel": "6.18", "rt_bh_lock": True}])
def test_a_blocked_bh_lock_waiter_boosts_the_holder_and_the_boost_is_undone(machine, machine_keys):
    """A NAPI flood hands NET_RX to ksoftirqd (SCHED_OTHER) with the BH lock held; a second
    device's forced thread (FIFO 50) then blocks on that lock and ksoftirqd inherits FIFO 50."""
    raw = _raw(devices=(FLOOD, SPI), tasks=(), preempt_rt=True, **machine_keys)
    m = machine(dict(raw, net={"netdev_budget": 8})).run()
    st = m.softirq_state[0]
    ksoftirqd = st.ksoftirqd
    assert st.ksoftirqd_vectors[NET_RX] > 0  # the flood does reach ksoftirqd
    assert st.bh_lock_waits > 0 and st.pi_boosts > 0
    # every boost is undone when the lock is released: at most the current holder is boosted
    boosted = [t for t in m.tasks if t.pi_saved is not None]
    assert boosted in ([], [st.bh_owner])
    if st.bh_owner is not ksoftirqd:
        assert (ksoftirqd.policy, ksoftirqd.prio) == ("other", 0)
    assert _task(m, "irq/9-spi0").policy == "fifo"


def test_rt_on_6_18_has_no_bh_lock_so_nothing_waits_and_nothing_is_boosted(machine):
    # 6.18 (CONFIG_PREEMPT_RT_NEEDS_BH_LOCK=n by default): local_bh_disable() is migrate_disable();
    # the FIFO 50 thread enters its BH section while ksoftirqd is preempted inside its own.
    m = machine(dict(_raw(devices=(FLOOD, SPI), tasks=(), preempt_rt=True), net={"netdev_budget": 8})).run()
    st = m.softirq_state[0]
    assert m.sc.rt_bh_lock is False
    assert st.ksoftirqd_vectors[NET_RX] > 0  # the same flood reaches ksoftirqd
    assert st.bh_lock_waits == 0 and st.pi_boosts == 0 and st.bh_owner is None
    assert (st.ksoftirqd.policy, st.ksoftirqd.prio) == ("other", 0)
    spi = _task(m, "irq/9-spi0")
    assert spi.switches >= 0.9 * m.lines[1].arrived  # one thread run per interrupt, never blocked


def test_rt_bh_lock_false_is_refused_before_6_18() -> None:
    with pytest.raises(ScenarioError, match="machine.rt_bh_lock"):
        parse_scenario(_raw(preempt_rt=True, kernel="6.17", rt_bh_lock=False))


def test_rt_irq_exit_wakes_ksoftirqd_only_when_no_task_holds_the_bh_lock(machine):
    m = machine(_raw(devices=(), tasks=(), preempt_rt=True, duration_s=0.01))
    cpu, st = m.cpus[0], m.softirq_state[0]
    frame = m.loc.frames[0]
    ksoftirqd = st.ksoftirqd
    ksoftirqd.running = False  # asleep
    cpu.rt_rq.clear()
    cpu.cfs_rq.clear()
    cpu.stack.append(frame)  # in a hardirq: raising does not wake anything by itself
    raise_softirq(m, cpu, NET_RX)
    st.bh_tasks = 1  # a task inside local_bh_disable() (preempted)
    cpu.stack.pop()
    m.irq_exit(cpu)
    assert not ksoftirqd.running  # the BH section's task will run it at its local_bh_enable()
    st.bh_tasks = 0
    m.irq_exit(cpu)
    assert ksoftirqd.running  # should_wake_ksoftirqd(): nobody holds softirq_ctrl


@pytest.mark.parametrize("kind", ["napi", "netif_rx", "plain", "tasklet", "hi_tasklet"])
def test_forced_threading_moves_every_handler_into_a_fifo_50_thread(machine, kind):
    dev = {"name": "dev", "irq": 30, "kind": kind, "arrival": {"rate": 50_000}, "hardirq_ns": 1000, "work_ns": 1000}
    m = machine(_raw(devices=(dev,), tasks=(), threadirqs=True)).run()
    line = m.lines[0]
    assert type(line).__name__.startswith("Forced")
    assert line.thread_runs > 0.9 * sum(line.counts)  # one thread run per interrupt
    assert (line.thread.policy, line.thread.prio) == ("fifo", 50)
    assert m.softirq_state[0].irq_exit_runs == 0


def test_forced_threaded_napi_keeps_the_line_masked_while_napi_polls(machine):
    """Under overload a NAPI driver never re-enables its interrupt, threaded or not."""
    flood = dict(NIC, arrival={"rate": 2_000_000}, deliver="forward")
    m = machine(_raw(devices=(flood,), tasks=(), preempt_rt=True)).run()
    line = m.lines[0]
    assert sum(line.counts) < 0.01 * line.arrived


def test_preempt_rt_refuses_threadirqs_false() -> None:
    with pytest.raises(ScenarioError, match=r"^machine\.threadirqs: "):
        parse_scenario(_raw(preempt_rt=True, threadirqs=False))
    sc = parse_scenario(_raw(preempt_rt=True))
    assert sc.threadirqs and sc.preempt_rt
