"""Per-NAPI configuration in the analysis: the map's NAPI ids and threads, watch's NAPI rungs, IRQ suspension."""

from __future__ import annotations

from dataclasses import replace

from irqlab.analysis.causes import irq_suspension_note
from irqlab.analysis.irqmap import build_map
from irqlab.analysis.plan import DeviceView, MachineView, PlanConfig, plan
from irqlab.analysis.storm import Level, Storm
from irqlab.model.devices import NetDeviceLink, PciFunction
from irqlab.model.net import NapiInstance, NetDevice, NetNamespace, NetState, NetView, RxQueue, TxQueue
from irqlab.model.snapshot import IrqInfo, TaskInfo
from irqlab.outputs.map_json import map_document
from irqlab.outputs.map_text import render_map_text

# A 6.13+ NIC: two combined queues, each NAPI tied to its IRQ; queue 0 polls threaded.
NIC = NetDevice("ens1f0", {}, (RxQueue(0, (), 0), RxQueue(1, (), 0)), (TxQueue(0, ()), TxQueue(1, ())), 0, 0, 0, 0, "ice", ifindex=4)
NAPI0 = NapiInstance(8193, 4, 100, 900, defer_hard_irqs=2, gro_flush_timeout_ns=200000, irq_suspend_timeout_ns=0, threaded=1)
NAPI1 = NapiInstance(8194, 4, 101, None, defer_hard_irqs=0, gro_flush_timeout_ns=0, irq_suspend_timeout_ns=20_000_000, threaded=0)
THREAD = TaskInfo(900, "napi/ens1f0-8193", "napi", None, None, 0, 0, 1_000_000, "fifo", 50, 0, (0, 1), last_cpu=1)
HOST = NetNamespace(4026531840, 1, 100, ("systemd",), (), "/proc/1/ns/net", host=True)


def _map():
    infos = {n: IrqInfo(n, affinity=(0,), effective_affinity=(0,), actions=(f"ice-ens1f0-TxRx-{n - 100}",), managed=False)
             for n in (100, 101)}
    fn = PciFunction("0000:81:00.0", (100, 101), True, "ice", 0)
    return build_map(infos, [], [fn], [NetDeviceLink("ens1f0", "0000:81:00.0", None)], [("host", [NIC])],
                     {0: (0, 1)}, (0, 1), {("host", "ens1f0"): (NAPI0, NAPI1)}, [THREAD])


def test_the_map_names_each_queue_irqs_napi_and_its_thread_with_cpu_policy_and_priority():
    m = _map()
    rows = {r.irq: r for r in m.rows}
    assert (rows["100"].napi_id, rows["100"].napi_thread) == (8193, "napi/ens1f0-8193")
    assert (rows["101"].napi_id, rows["101"].napi_thread) == (8194, None)
    text = render_map_text(m)
    assert "napi 8193  irq 100  napi/ens1f0-8193 (pid 900, CPU 1, fifo 50) threaded  defer_hard_irqs 2" in text
    assert "napi 8194  irq 101  softirq  defer_hard_irqs 0  gro_flush_timeout 0 ns  irq_suspend_timeout 20000000 ns" in text
    doc = map_document(m)
    (nic,) = doc["netdevs"]
    assert nic["napis"][0]["thread"] == {"comm": "napi/ens1f0-8193", "cpu": 1, "policy": "fifo", "rt_priority": 50,
                                         "allowed_cpus": "0-1"}
    assert doc["irqs"][0]["napi_id"] == 8193


def test_a_map_without_napi_instances_keeps_its_columns():
    m = build_map({}, [], [], [], [("host", [NIC])], {}, (0, 1))
    assert "napi" not in render_map_text(m)


def _storm(key: str) -> Storm:
    cls, subject = key.split(":")
    return Storm(key, cls, subject, subject, "interrupts/s", Level.ACT, "absolute", 1e6, 2e6, 2e6, 0)


def _only(*actions: str) -> PlanConfig:
    return PlanConfig(ladder={"irq": {"warn": ("alert",), "act": ("alert", *actions)}})


def test_the_napi_rung_writes_each_napi_where_the_kernel_has_per_napi_settings():
    per_napi = ((8193, {"defer-hard-irqs": "2", "gro-flush-timeout": "0", "irq-suspend-timeout": "0", "threaded": "0"}),
                (8194, {"defer-hard-irqs": "0", "gro-flush-timeout": "0", "irq-suspend-timeout": "0", "threaded": "0"}))
    view = MachineView((0, 1), devices=(DeviceView("ens1f0", None, (100, 101), {"napi_defer_hard_irqs": "0"}, None, per_napi),))
    p = plan(_storm("irq:100"), view, _only("napi"))
    assert [(w.napi_id, w.attr, w.value) for w in p.writes] == [
        (8194, "defer-hard-irqs", "2"), (8193, "gro-flush-timeout", "200000"), (8194, "gro-flush-timeout", "200000")]
    assert "ens1f0 napi 8193 defer-hard-irqs: already 2" in p.skipped


def test_the_napi_rung_writes_the_device_files_where_the_kernel_has_no_per_napi_settings():
    view = MachineView((0, 1), devices=(DeviceView("ens1f0", None, (100,), {"napi_defer_hard_irqs": "0", "gro_flush_timeout": "0"}),))
    p = plan(_storm("irq:100"), view, _only("napi"))
    assert [(w.napi_id, w.attr) for w in p.writes] == [(None, "napi_defer_hard_irqs"), (None, "gro_flush_timeout")]


def test_the_threaded_rung_switches_a_device_to_threaded_napi():
    view = MachineView((0, 1), devices=(DeviceView("veth0", "ns1", (), {"threaded": "0"}),))
    p = plan(_storm("softirq:NET_RX"), view, PlanConfig(ladder={"softirq": {"warn": (), "act": ("threaded",)}}))
    assert [(w.kind, w.dev, w.attr, w.value, w.netns) for w in p.writes] == [("napi", "veth0", "threaded", "1", "ns1")]
    done = replace(view.devices[0], napi={"threaded": "1"})
    assert plan(_storm("softirq:NET_RX"), MachineView((0, 1), devices=(done,)),
                PlanConfig(ladder={"softirq": {"warn": (), "act": ("threaded",)}})).writes == ()


def test_a_quiet_queue_whose_napi_suspends_its_irq_is_not_called_dead():
    net = NetState((NetView(HOST, devices=(NIC,), napis=(NAPI0, NAPI1)),))
    note = irq_suspension_note(net, "101")
    assert "NAPI 8194 has irq-suspend-timeout 20000000 ns" in note and "not a dead queue" in note
    assert "defer-hard-irqs 2, gro-flush-timeout 200000 ns" in irq_suspension_note(net, "100")
    quiet = NetState((NetView(HOST, devices=(NIC,), napis=(replace(NAPI1, irq_suspend_timeout_ns=0),)),))
    assert irq_suspension_note(quiet, "101") == ""
    assert irq_suspension_note(None, "101") == ""
