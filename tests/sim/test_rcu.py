"""RCU callbacks and RCU_SOFTIRQ's batch limit (sim/rcu.py), seeded story tests."""

from __future__ import annotations

import pytest

from irqlab.sim import rcu
from irqlab.sim.scenario import ScenarioError, parse_scenario
from irqlab.sim.softirq import NET_RX, RCU


def _raw(tasks=(), **machine) -> dict:
    return {"machine": {"cpus": 1, "duration_s": 0.05, "seed": 3, "kernel": "6.18", "hz": 250, **machine},
            "task": list(tasks)}


HOG = {"name": "hog", "kind": "hog"}


def test_on_a_busy_cpu_rcu_invokes_ten_callbacks_per_run_and_re_raises_into_ksoftirqd(machine):
    m = machine(_raw(tasks=(HOG,), rcu_gp_ms=4, rcu_callback_ns=1000))
    rcu.call_rcu(m, 0, 1000)
    m.run()
    rd, st = m.rcu[0], m.softirq_state[0]
    assert rd.invoked == 1000 and rd.ready == 0 and rd.queued == 0
    assert rd.batches == 100  # bl = max(blimit 10, 1000 >> 7 = 7) = 10 per run: 100 runs
    assert st.counts[RCU] == 100
    # each run re-raises: handle_softirqs() restarts 9 times, then hands the rest to ksoftirqd
    assert st.handoffs >= 1 and st.ksoftirqd_vectors[RCU] > 0


def test_on_an_idle_cpu_rcu_invokes_every_ready_callback_at_once(machine):
    m = machine(_raw(rcu_gp_ms=4, rcu_callback_ns=1000))
    rcu.call_rcu(m, 0, 1000)
    m.run()
    rd, st = m.rcu[0], m.softirq_state[0]
    assert rd.invoked == 1000 and rd.batches == 1 and st.counts[RCU] == 1
    assert st.handoffs == 0


def test_callbacks_wait_for_the_grace_period_and_the_next_tick(machine):
    m = machine(_raw(tasks=(HOG,), rcu_gp_ms=10, rcu_callback_ns=100, duration_s=0.0119))
    rcu.call_rcu(m, 0, 5)
    m.run()  # HZ 250: ticks at 4, 8, 12 ms; ready at 10 ms, seen by the tick at 12 ms, after the run
    assert m.rcu[0].invoked == 0 and m.rcu[0].queued == 5


def test_above_qhimark_the_batch_limit_is_raised_to_10000_not_lifted(machine):
    # __call_rcu_core() sets rdp->blimit = DEFAULT_MAX_RCU_BLIMIT (10,000): 10,001 ready
    # callbacks take two RCU_SOFTIRQ runs, then the limit is back (qlowmark)
    m = machine(_raw(tasks=(HOG,), rcu_gp_ms=4, rcu_callback_ns=10))
    rcu.call_rcu(m, 0, rcu.QHIMARK + 1)
    m.run()
    assert m.rcu[0].invoked == rcu.QHIMARK + 1 and m.rcu[0].batches == 2 and not m.rcu[0].high


def test_a_fragmenting_sender_queues_one_callback_per_reassembled_datagram(machine):
    raw = {"machine": {"cpus": 2, "duration_s": 0.05, "seed": 3, "kernel": "6.18", "hz": 250, "rcu_gp_ms": 4},
           "task": [{"name": "tx", "cpu": 1, "kind": "sender", "work_ns": 5000, "rate_pps": 20_000, "fragments": 6,
                     "fragment_ns": 500, "rx_ns": 1500, "rps_cpu": 0},
                    {"name": "hog", "cpu": 0, "kind": "hog"}]}
    m = machine(raw).run()
    rd = m.rcu[0]
    datagrams = m.forwarded
    assert datagrams > 500
    assert rd.invoked + rd.queued == datagrams  # every one on CPU0, the RPS target that reassembles
    assert m.rcu[1].queued == m.rcu[1].invoked == 0
    assert m.softirq_state[0].counts[NET_RX] > 0 and rd.batches > 0


@pytest.mark.parametrize("key,value", [("rcu_blimit", 0), ("rcu_gp_ms", -1.0), ("rcu_callback_ns", "x")])
def test_bad_rcu_keys_name_the_key(key, value) -> None:
    with pytest.raises(ScenarioError, match=rf"^machine\.{key}"):
        parse_scenario(_raw(**{key: value}))
