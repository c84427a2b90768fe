"""Isolation: each declared-quiet CPU's offenders, ranked, with the cause and the write that removes each."""

from __future__ import annotations

import dataclasses

from netbuilders import HOST, Machine, device, net, netns, thread, view

from irqlab.analysis.delta import compute_rates
from irqlab.analysis.isolation import isolation_report
from irqlab.model.net import TxQueue
from irqlab.model.snapshot import IrqInfo

X = netns("x", 4026532400, 900, comm="udp-sink")


def report(m: Machine, quiet=None, nohz=frozenset(), trace=None):
    return isolation_report(compute_rates(*m.pair()), quiet or {1: ("--cpus",)}, frozenset(nohz), trace)


def rps_onto_cpu1(**over) -> Machine:
    """load.sh -m udp -n 1 --rps 2 --pin cpu0: the sender on CPU0, rps_cpus=2 steers every packet to CPU1."""
    x = view(X, devices=[device("veth1", rps=(1,), rx_packets=300_000)])
    m = Machine(
        softirq={"NET_RX": [40_000, 60_000], "TIMER": [50, 20], "RCU": [30, 12]},
        irqs=[("LOC", "Local timer interrupts", [250, 90]), ("CAL", "Function call interrupts", [0, 55_000]),
              ("RES", "Rescheduling interrupts", [10, 40])],
        softnet={0: {"processed": 10_000}, 1: {"processed": 290_000, "received_rps": 55_000}},
        net=net(view(HOST), x),
        threads=[thread(901, "udp-flood", 0, 90, 2)],
    )
    return dataclasses.replace(m, **over)


def test_rps_onto_an_isolated_cpu_is_its_first_offender_with_the_queue_its_mask_and_the_fix():
    cpu = report(rps_onto_cpu1()).cpus[0]
    assert cpu.cpu == 1 and cpu.verdict == "noisy"
    first = cpu.offenders[0]
    assert (first.kind, first.name) == ("softirq", "NET_RX") and first.rate_per_s == 60_000
    assert first.cause.startswith("NET_RX via RPS: rps_cpus=2 on veth1 rx-0 (netns x)")
    assert first.action is not None
    assert first.action.command == "ip netns exec x sh -c 'echo 1 > /sys/class/net/veth1/queues/rx-0/rps_cpus'"
    assert first.action.undo == "ip netns exec x sh -c 'echo 2 > /sys/class/net/veth1/queues/rx-0/rps_cpus'"


def test_function_call_ipis_that_rps_explains_are_evidence_of_it_not_an_offender_of_their_own():
    cpu = report(rps_onto_cpu1()).cpus[0]
    assert "function-call IPIs (CAL) 55.0k/s" in cpu.offenders[0].cause
    assert "CAL" not in [o.name for o in cpu.offenders + cpu.tolerated]
    assert [o.name for o in cpu.offenders] == ["NET_RX", "LOC", "RES", "TIMER", "RCU"]


def test_function_call_ipis_without_rps_stay_an_ipi_offender():
    m = Machine(irqs=[("CAL", "Function call interrupts", [0, 30])])
    cpu = report(m).cpus[0]
    assert [(o.kind, o.name, o.rate_per_s) for o in cpu.offenders] == [("ipi", "CAL", 30.0)]
    assert "ipi:ipi_send_cpu" in cpu.offenders[0].hint


def test_a_nohz_full_cpu_with_a_residual_tick_is_quiet_and_a_ticking_one_is_noisy():
    quiet = report(Machine(irqs=[("LOC", "Local timer interrupts", [250, 1])]), nohz={1}).cpus[0]
    assert quiet.verdict == "quiet" and [o.name for o in quiet.tolerated] == ["LOC"]
    ticking = report(Machine(irqs=[("LOC", "Local timer interrupts", [250, 250])]), nohz={1}).cpus[0]
    assert ticking.verdict == "noisy" and "did not stop on nohz_full CPU1" in ticking.offenders[0].cause
    plain = report(Machine(irqs=[("LOC", "Local timer interrupts", [250, 1])])).cpus[0]
    assert plain.verdict == "noisy" and "nohz_full=1" in plain.offenders[0].hint


def test_an_idle_cpu_with_no_interruptions_is_quiet():
    assert report(Machine()).cpus[0].verdict == "quiet"


def test_a_device_irq_allowed_on_the_cpu_is_moved_to_the_housekeeping_cpus_with_its_undo():
    m = Machine(irqs=[("41", "eth0-TxRx-0", [100, 500])], irqinfo={41: IrqInfo(41, affinity=(0, 1), effective_affinity=(1,), managed=False)})
    first = report(m).cpus[0].offenders[0]
    assert (first.kind, first.name, first.rate_per_s) == ("irq", "IRQ 41 eth0-TxRx-0", 500.0)
    assert "smp_affinity_list 0-1 includes CPU1 (effective 1)" in first.cause
    assert first.action is not None and first.action.command == "echo 0 > /proc/irq/41/smp_affinity_list"
    assert first.action.undo == "echo 0-1 > /proc/irq/41/smp_affinity_list"


def test_a_managed_irq_gets_no_write_but_the_boot_parameter_that_keeps_it_off():
    m = Machine(irqs=[("36", "virtio1-req.0", [0, 80])], irqinfo={36: IrqInfo(36, affinity=(1,), effective_affinity=(1,), managed=True)})
    first = report(m).cpus[0].offenders[0]
    assert first.action is None and "managed by the kernel" in first.cause
    assert "isolcpus=managed_irq,1" in first.hint


def test_what_may_land_lists_irqs_managed_irqs_rps_and_xps_queues_naming_the_cpu():
    dev = dataclasses.replace(device("veth1", rps=(1,))[1], tx_queues=(TxQueue(0, (1,)), TxQueue(1, (0,))))
    m = Machine(irqs=[("41", "eth0-TxRx-0", [0, 0]), ("42", "eth0-TxRx-1", [0, 0]), ("36", "virtio1-req.0", [0, 0])],
                irqinfo={41: IrqInfo(41, affinity=(0, 1), effective_affinity=(0,)), 42: IrqInfo(42, affinity=(0,), effective_affinity=(0,)),
                         36: IrqInfo(36, affinity=(1,), effective_affinity=(1,), managed=True)},
                net=net(view(HOST), (view(X)[0], dataclasses.replace(view(X)[1], devices=(dev,)))))
    allowed = report(m).cpus[0].allowed
    assert [(a.kind, a.name) for a in allowed] == [
        ("managed-irq", "IRQ 36 virtio1-req.0"), ("irq", "IRQ 41 eth0-TxRx-0"), ("rps", "veth1 rx-0"), ("xps", "veth1 tx-0")]


def test_the_housekeeping_cpus_are_the_online_ones_not_declared_quiet():
    rep = report(Machine(cpus=(0, 1, 2, 3)), quiet={2: ("nohz_full",), 3: ("nohz_full",)}, nohz={2, 3})
    assert rep.housekeeping == (0, 1) and [c.cpu for c in rep.cpus] == [2, 3]


def test_a_running_irqbalance_not_banned_from_the_cpu_may_place_irqs_there_and_a_banned_one_is_not_listed():
    from irqlab.analysis.placement import Balancer

    rates = compute_rates(*Machine().pair())
    open_ = isolation_report(rates, {1: ("--cpus",)}, frozenset(), balancer=Balancer(812, (), "its default")).cpus[0].allowed
    assert [(a.kind, a.name) for a in open_] == [("irqbalance", "irqbalance (pid 812)")]
    assert open_[0].detail.startswith("may place IRQs here: CPU1 is not banned (it bans CPUs none: its default)")
    banned = isolation_report(rates, {1: ("--cpus",)}, frozenset(), balancer=Balancer(812, (1,), "x")).cpus[0].allowed
    assert banned == ()


def test_with_isolcpus_managed_irq_a_managed_irq_with_a_housekeeping_cpu_may_not_land_and_one_without_still_may():
    m = Machine(cpus=(0, 1, 2), irqs=[("36", "nvme0q1", [0, 0, 0]), ("37", "nvme0q2", [0, 0, 0])],
                irqinfo={36: IrqInfo(36, affinity=(0, 1), effective_affinity=(0,), managed=True),
                         37: IrqInfo(37, affinity=(1, 2), effective_affinity=(1,), managed=True)})
    quiet = {1: ("isolcpus=managed_irq,domain",), 2: ("isolcpus=managed_irq,domain",)}
    allowed = report(m, quiet=quiet).cpus[0].allowed
    assert [a.name for a in allowed] == ["IRQ 37 nvme0q2"] and "no online housekeeping CPU" in allowed[0].detail
    plain = report(m, quiet={1: ("--cpus",), 2: ("--cpus",)}).cpus[0].allowed
    assert [a.name for a in plain] == ["IRQ 36 nvme0q1", "IRQ 37 nvme0q2"]


def test_net_rx_that_only_sends_rps_ipis_away_points_at_the_tasks_running_on_the_cpu_not_at_a_queue():
    x = view(X, devices=[device("veth1", rps=(0,), rx_packets=300_000)])
    m = Machine(softirq={"NET_RX": [40_000, 3000]}, irqs=[("CAL", "Function call interrupts", [3000, 0])],
                softnet={0: {"processed": 290_000, "received_rps": 3000}, 1: {"processed": 10}},
                net=net(view(HOST), x), threads=[thread(901, "udp-flood", 1, 90, 2)])
    first = report(m).cpus[0].offenders[0]
    assert first.cause.startswith("NET_RX via RPS IPIs: rps_cpus=1 on veth1 rx-0") and first.action is None
    assert first.hint == ("CPU1 only raises the RPS IPIs for packets that tasks running on it send or receive: "
                          "move those tasks to the housekeeping CPUs (0) and keep only the workload here")


def test_napi_and_irq_threads_are_listed_by_their_allowed_cpus_not_by_where_they_last_ran():
    from irqlab.model.snapshot import TaskInfo

    def task(pid, comm, kind, allowed, last):
        return TaskInfo(pid, comm, kind, None, None, 0, 0, 0, "SCHED_OTHER", 0, 0, allowed, last)

    a, b = Machine().pair()
    extra = (task(700, "napi/veth1-278", "napi", (0, 1), 0), task(701, "irq/41-eth0", "irq", (0,), 0),
             task(702, "napi/veth2-279", "napi", (0,), 1))
    b = dataclasses.replace(b, tasks=b.tasks + extra)
    allowed = isolation_report(compute_rates(a, b), {1: ("--cpus",)}, frozenset()).cpus[0].allowed
    assert [(x.kind, x.name, x.detail) for x in allowed] == [
        ("napi-thread", "napi/veth1-278 (pid 700)", "allowed CPUs 0-1, last ran on CPU0")]
