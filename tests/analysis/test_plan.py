"""The action planner: ladders per storm class, protected IRQs, exact planned writes."""

from __future__ import annotations

from irqlab.analysis.plan import DeviceView, IrqView, MachineView, PlanConfig, plan, sacrificial
from irqlab.analysis.storm import Level, Storm


def storm(key: str, level=Level.ACT, cpu=None, value=2e6) -> Storm:
    cls, subject = key.split(":")
    return Storm(key, cls, subject, subject, "interrupts/s", level, "absolute", 1e6, value, value, 0, cpu)


VIEW = MachineView(
    online_cpus=(0, 1, 2, 3),
    isolated_cpus=(3,),
    irqs={
        26: IrqView(26, ("ttyS0",), (0, 1, 2, 3)),
        36: IrqView(36, ("virtio1-req.0",), (1,), protected_reason="protected (root disk queue)"),
        38: IrqView(38, ("virtio2-input.0",), (0, 1, 2, 3)),
        39: IrqView(39, ("virtio2-output.0",), (0, 1, 2, 3)),
        50: IrqView(50, ("nvme0q1",), (0,), movable=False),
        60: IrqView(60, ("eth9-rx",), (2,)),
    },
    devices=(
        DeviceView("eth0", None, (38, 39), {"napi_defer_hard_irqs": "0", "gro_flush_timeout": "0"}, True),
        DeviceView("irqlab7v0", "irqlab7s", (), {"napi_defer_hard_irqs": "0", "gro_flush_timeout": "0"}, False),
    ),
)


def writes(p):
    return [(w.kind, w.target, w.value, w.netns) for w in p.writes]


def test_warn_level_only_alerts():
    p = plan(storm("irq:38", Level.WARN), VIEW, PlanConfig())
    assert p.alert and p.writes == ()


def test_an_irq_storm_at_act_moves_it_to_the_last_non_isolated_cpu_and_polls_its_device():
    p = plan(storm("irq:38"), VIEW, PlanConfig())
    assert writes(p) == [
        ("affinity", "IRQ 38", "2", None),
        ("napi", "eth0/napi_defer_hard_irqs", "2", None),
        ("napi", "eth0/gro_flush_timeout", "200000", None),
        ("coalesce", "eth0 rx_coalesce_usecs", "50", None),
    ]


def test_the_console_is_never_moved():
    p = plan(storm("irq:26"), VIEW, PlanConfig())
    assert writes(p) == []
    assert any("ttyS0" in s and "protected" in s for s in p.skipped)


def test_the_root_disk_queue_is_never_moved():
    p = plan(storm("irq:36"), VIEW, PlanConfig())
    assert writes(p) == [] and any("root disk" in s for s in p.skipped)


def test_a_user_protected_irq_by_name_or_number_is_never_moved():
    for pattern in ("virtio2-*", "38"):
        p = plan(storm("irq:38"), VIEW, PlanConfig(protected=(pattern,)))
        assert [w for w in p.writes if w.kind == "affinity"] == []
        assert any("user list" in s for s in p.skipped)


def test_a_managed_irq_is_skipped_with_the_reason():
    p = plan(storm("irq:50"), VIEW, PlanConfig())
    assert writes(p) == [] and any("managed" in s for s in p.skipped)


def test_an_irq_already_on_the_sacrificial_cpus_is_not_rewritten():
    p = plan(storm("irq:60"), VIEW, PlanConfig(sacrificial_cpus=(2,)))
    assert [w for w in p.writes if w.kind == "affinity"] == []


def test_configured_sacrificial_cpus_drop_isolated_and_offline_ones():
    assert sacrificial(VIEW, PlanConfig(sacrificial_cpus=(1, 3, 9))) == (1,)


def test_a_net_rx_storm_polls_every_configured_device_and_skips_coalescing_where_unsupported():
    p = plan(storm("softirq:NET_RX"), VIEW, PlanConfig())
    assert writes(p) == [
        ("napi", "eth0/napi_defer_hard_irqs", "2", None),
        ("napi", "eth0/gro_flush_timeout", "200000", None),
        ("napi", "irqlab7v0/napi_defer_hard_irqs", "2", "irqlab7s"),
        ("napi", "irqlab7v0/gro_flush_timeout", "200000", "irqlab7s"),
        ("coalesce", "eth0 rx_coalesce_usecs", "50", None),
    ]
    assert any("irqlab7v0" in s and "coalescing" in s for s in p.skipped)


def test_a_non_network_softirq_storm_does_not_touch_network_devices():
    p = plan(storm("softirq:TIMER"), VIEW, PlanConfig())
    assert writes(p) == [] and any("not a network softirq" in s for s in p.skipped)


def test_a_hot_cpu_moves_movable_unprotected_irqs_to_the_other_usable_cpus():
    p = plan(storm("cpu:0", cpu=0), VIEW, PlanConfig())
    assert writes(p) == [("affinity", "IRQ 38", "1-2", None), ("affinity", "IRQ 39", "1-2", None)]


def test_architecture_vectors_only_alert():
    p = plan(storm("vector:CAL"), VIEW, PlanConfig())
    assert p.actions == ("alert",) and p.writes == ()


def test_the_ladder_is_configurable_per_class():
    ladder = {"softirq": {"warn": ("alert",), "act": ("alert", "affinity")}}
    p = plan(storm("softirq:NET_RX"), VIEW, PlanConfig(ladder=ladder))
    assert writes(p) == [("affinity", "IRQ 38", "2", None), ("affinity", "IRQ 39", "2", None)]


def test_knobs_already_at_the_target_value_are_not_planned():
    dev = DeviceView("eth0", None, (), {"napi_defer_hard_irqs": "2", "gro_flush_timeout": "200000"}, False)
    p = plan(storm("softnet_drop:0", cpu=0), MachineView((0, 1), devices=(dev,)), PlanConfig())
    assert writes(p) == [] and len([s for s in p.skipped if "already" in s]) == 2
