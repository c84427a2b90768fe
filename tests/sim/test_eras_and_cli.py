"""The deferral rule by kernel era, and the `irqlab sim` command's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from irqlab.cli.main import main
from irqlab.sim.cpu import SOFTIRQ, Frame
from irqlab.sim.softirq import HI, NET_RX, TASKLET, invoke_softirq, ksoftirqd_running

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


def _pending_with_ksoftirqd_runnable(machine, era: str, vec: int):
    m = machine({"machine": {"cpus": 1, "duration_s": 0.01, "kernel": era}})
    st = m.softirq_state[0]
    st.pending = 1 << vec
    assert st.ksoftirqd.running  # runnable since boot, not yet run
    return m, st


def test_the_4_9_rule_leaves_net_rx_to_a_runnable_ksoftirqd(machine):
    m, st = _pending_with_ksoftirqd_runnable(machine, "4.9", NET_RX)
    invoke_softirq(m, m.cpus[0])
    assert st.deferred_irq_exit == 1 and not m.cpus[0].stack


def test_from_4_15_hi_and_tasklet_are_exempt_from_the_deferral(machine):
    for vec in (HI, TASKLET):
        m, st = _pending_with_ksoftirqd_runnable(machine, "4.15", vec)
        assert not ksoftirqd_running(m, m.cpus[0], st.pending)
    m, st = _pending_with_ksoftirqd_runnable(machine, "4.14", TASKLET)
    assert ksoftirqd_running(m, m.cpus[0], st.pending)


def test_pre_4_9_and_6_5_run_softirqs_on_irq_exit_regardless(machine):
    for era in ("pre-4.9", "6.5", "6.18"):
        m, st = _pending_with_ksoftirqd_runnable(machine, era, NET_RX)
        invoke_softirq(m, m.cpus[0])
        assert st.irq_exit_runs == 1 and isinstance(m.cpus[0].stack[-1], Frame)
        assert m.cpus[0].stack[-1].kind == SOFTIRQ


def test_the_time_limit_is_counted_in_jiffies_so_hz_100_allows_one_tick(machine):
    from irqlab.sim.softirq import msecs_to_jiffies

    assert msecs_to_jiffies(2, 1000) == 2 and msecs_to_jiffies(2, 250) == 1 and msecs_to_jiffies(2, 100) == 1


def test_sim_json_has_the_summary_fields(capsys):
    assert main(["sim", str(EXAMPLES / "nic-napi.toml"), "--set", "machine.duration_s=0.03", "-q", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["era"] == "6.5" and doc["cpus"][0]["cpu"] == 0
    assert doc["raise_latency"]["NET_RX"]["count"] > 0
    assert doc["tasks"][0]["latency"]["p99_ns"] is not None


def test_a_sweep_tabulates_each_value_and_draws_a_plot(tmp_path, capsys):
    png = tmp_path / "sweep.png"
    code = main(["sim", str(EXAMPLES / "dumazet-udp.toml"), "--set", "machine.duration_s=0.03", "--set", "machine.warmup_s=0.01",
                 "--sweep", "machine.kernel=pre-4.9,4.9", "--metric", "received_per_s", "--plot", str(png), "-q"])
    assert code == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [r[0] for r in rows] == ["pre-4.9", "4.9"]
    assert float(rows[1][1]) > 10 * float(rows[0][1])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trace_events_come_out_as_an_event_batch(tmp_path):
    path = tmp_path / "t.npz"
    assert main(["sim", str(EXAMPLES / "nic-napi.toml"), "--set", "machine.duration_s=0.005", "-q", "--trace", str(path)]) == 0
    data = np.load(path)
    kinds = set(data["kind"].tolist())
    assert {1, 2, 3, 4, 5, 12} <= kinds  # irq entry/exit, softirq raise/entry/exit, napi_poll
    assert np.all(np.diff(data["ts_ns"]) >= 0)


def test_a_bad_override_names_the_key(capsys):
    assert main(["sim", str(EXAMPLES / "nic-napi.toml"), "--set", "net.netdev_budjet=600"]) == 3
    assert "net.netdev_budjet" in capsys.readouterr().err
