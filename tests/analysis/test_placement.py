"""The placement planner on hand-made inputs: a 2-socket machine, a 4-queue NIC on node 1, a
NIC with managed queues, isolated CPUs."""

from __future__ import annotations

import pytest

from irqlab.analysis.irqmap import WHY_MANAGED, build_map
from irqlab.analysis.placement import plan_placement
from irqlab.model.devices import NetDeviceLink, PciFunction
from irqlab.model.net import NetDevice, RxQueue, TxQueue
from irqlab.model.snapshot import IrqInfo

NODES = {0: tuple(range(0, 8)), 1: tuple(range(8, 16))}
ONLINE = tuple(range(16))
QUIET = (10, 11, 12, 13, 14, 15)  # isolcpus=10-15: node 1 keeps 8-9 for housekeeping


def _dev(name: str, queues: int, node: int | None, xps: bool = True) -> NetDevice:
    rx = tuple(RxQueue(i, (), 0) for i in range(queues))
    tx = tuple(TxQueue(i, () if xps else None) for i in range(queues))
    return NetDevice(name, {}, rx, tx, 0, None, None, node, "drv")


def _map(extra_infos=None, devices=None, ns=()):
    infos = {100 + i: IrqInfo(100 + i, affinity=ONLINE, effective_affinity=(12,), actions=(f"ice-ens1f0-TxRx-{i}",), managed=False)
             for i in range(4)}
    infos.update({200 + i: IrqInfo(200 + i, affinity=(i,), effective_affinity=(i,), actions=(f"mlx5_comp{i}@pci:0000:03:00.0",), managed=True)
                  for i in range(2)})
    infos[30] = IrqInfo(30, affinity=ONLINE, effective_affinity=(14,), actions=("ahci",), managed=False)
    infos[31] = IrqInfo(31, affinity=(0, 1), effective_affinity=(0,), actions=("i8042",), managed=False)
    infos.update(extra_infos or {})
    functions = [PciFunction("0000:81:00.0", tuple(range(100, 104)), True, "ice", 1),
                 PciFunction("0000:03:00.0", (200, 201), True, "mlx5_core", 0),
                 PciFunction("0000:00:1f.2", (30,), True, "ahci", 0)]
    links = [NetDeviceLink("ens1f0", "0000:81:00.0", None), NetDeviceLink("enp3s0", "0000:03:00.0", None)]
    views = [("host", devices or [_dev("ens1f0", 4, 1), _dev("enp3s0", 2, 0), _dev("lo", 1, None)]), *ns]
    return build_map(infos, [], functions, links, views, NODES, ONLINE)


def _by(p, kind):
    return {(w.irq if kind == "affinity" else (w.dev, w.queue)): w for w in p.writes if w.kind == kind}


def test_nic_queues_spread_one_per_numa_local_housekeeping_cpu():
    p = plan_placement(_map(), QUIET)
    aff = _by(p, "affinity")
    # node 1's housekeeping CPUs are 8 and 9: four queues wrap round over two CPUs
    assert [aff[100 + i].cpus for i in range(4)] == [(8,), (9,), (8,), (9,)]
    assert "NUMA node 1" in aff[100].why and aff[100].current == ONLINE
    assert p.housekeeping == tuple(range(10)) and p.quiet == QUIET


def test_rps_and_xps_name_the_cpu_of_their_queue_irq():
    p = plan_placement(_map(), QUIET)
    rps, xps = _by(p, "rps"), _by(p, "xps")
    for q in range(4):
        assert rps[("ens1f0", q)].cpus == xps[("ens1f0", q)].cpus == _by(p, "affinity")[100 + q].cpus
    assert rps[("ens1f0", 0)].value() == "100" and rps[("ens1f0", 0)].path.endswith("ens1f0/queues/rx-0/rps_cpus")


def test_managed_queues_are_left_alone_with_why_and_their_rps_follows_node_0():
    p = plan_placement(_map(), QUIET)
    alone = {a.what: a.why for a in p.left_alone}
    assert alone["IRQ 200 (mlx5_comp0@pci:0000:03:00.0)"] == WHY_MANAGED
    assert 200 not in _by(p, "affinity") and 201 not in _by(p, "affinity")
    assert _by(p, "rps")[("enp3s0", 1)].cpus == (1,)  # node 0's second housekeeping CPU


def test_no_write_puts_anything_on_a_quiet_cpu_and_other_irqs_move_off_them():
    p = plan_placement(_map(), QUIET)
    assert all(not set(w.cpus) & set(QUIET) for w in p.writes)
    aff = _by(p, "affinity")
    # the disk controller sits on node 0: onto node 0's housekeeping CPUs
    assert aff[30].cpus == tuple(range(8)) and "quiet CPU 10-15: onto NUMA node 0's" in aff[30].why
    assert 31 not in aff  # never reached a quiet CPU: untouched


def test_loopback_is_not_planned_and_devices_limit_the_plan():
    assert all(w.dev != "lo" for w in plan_placement(_map(), QUIET).writes)
    p = plan_placement(_map(), QUIET, devices=("enp3s0",))
    assert {w.dev for w in p.writes} == {"enp3s0"} and 30 not in _by(p, "affinity")


def test_a_device_without_xps_gets_no_xps_write():
    m = _map(devices=[_dev("ens1f0", 4, 1, xps=False)])
    assert not _by(plan_placement(m, QUIET), "xps")


def test_devices_in_named_and_unnamed_namespaces():
    ns = [("netns lab", [_dev("veth1", 1, None)]), ("pid 4242 (app)", [_dev("veth2", 1, None)])]
    p = plan_placement(_map(ns=ns), QUIET)
    rps = _by(p, "rps")
    assert rps[("veth1", 0)].netns == "lab" and rps[("veth1", 0)].cpus == (0,)
    assert rps[("veth1", 0)].target == "veth1 rx-0 rps_cpus (netns lab)"
    assert ("veth2", 0) not in rps
    assert any("veth2" in a.what and "ip netns" in a.why for a in p.left_alone)


def test_given_housekeeping_cpus_are_used_and_none_is_refused():
    p = plan_placement(_map(), (), housekeeping=(2, 3))
    assert {c for w in p.writes for c in w.cpus} <= {2, 3}
    with pytest.raises(ValueError, match="no housekeeping CPU"):
        plan_placement(_map(), ONLINE)


def test_irqbalance_running_is_a_warning_that_names_the_fix():
    (w,) = plan_placement(_map(), QUIET, irqbalance_pid=812).warnings
    assert "pid 812" in w and "IRQBALANCE_BANNED_CPU" in w and "--banirq=100" in w and "10-15" in w
    assert plan_placement(_map(), QUIET).warnings == ()


def test_rps_of_a_queue_whose_irq_stays_follows_where_the_kernel_keeps_it():
    extra = {200 + i: IrqInfo(200 + i, affinity=(0, 1, 2, 3), effective_affinity=(3 - i,), actions=(f"mlx5_comp{i}@pci:0000:03:00.0",),
                              managed=True) for i in range(2)}
    rps = _by(plan_placement(_map(extra), QUIET), "rps")
    assert (rps[("enp3s0", 0)].cpus, rps[("enp3s0", 1)].cpus) == ((3,), (2,))


def test_each_irq_left_alone_is_listed_once():
    whats = [a.what for a in plan_placement(_map(), QUIET).left_alone]
    assert len(whats) == len(set(whats)) and "IRQ 201 (mlx5_comp1@pci:0000:03:00.0)" in whats


def test_irqbalance_banned_from_the_quiet_cpus_only_warns_about_the_irqs_it_will_still_move():
    from irqlab.analysis.placement import Balancer

    p = plan_placement(_map(), QUIET, balancer=Balancer(812, (10, 11, 12, 13, 14, 15), "IRQBALANCE_BANNED_CPULIST=10-15 (pid 812)"))
    (w,) = p.warnings
    assert "quiet CPUs" not in w and "will overwrite the affinities of IRQs 30,100,101,102,103: ban them" in w and "--banirq=100" in w


def test_irqbalance_banned_from_part_of_the_quiet_cpus_names_the_open_ones_and_the_list_to_set():
    from irqlab.analysis.placement import Balancer

    placed = [w.irq for w in plan_placement(_map(), QUIET).writes if w.irq is not None]
    b = Balancer(812, (14, 15), "IRQBALANCE_BANNED_CPUS=c000 (/etc/sysconfig/irqbalance)", banned_irqs=tuple(placed))
    (w,) = plan_placement(_map(), QUIET, balancer=b).warnings
    assert w == ("irqbalance (pid 812) is running and may put IRQs on quiet CPUs 10-13 (it bans CPUs 14-15: "
                 "IRQBALANCE_BANNED_CPUS=c000 (/etc/sysconfig/irqbalance)): set IRQBALANCE_BANNED_CPULIST=10-15 in its environment "
                 "file (/etc/default/irqbalance or /etc/sysconfig/irqbalance; IRQBALANCE_BANNED_CPUS on irqbalance < 1.8) and "
                 "restart it, or stop it")


def test_irqbalance_banned_from_the_quiet_cpus_and_every_placed_irq_needs_no_warning():
    from irqlab.analysis.placement import Balancer

    placed = tuple(w.irq for w in plan_placement(_map(), QUIET).writes if w.irq is not None)
    assert plan_placement(_map(), QUIET, balancer=Balancer(812, QUIET, "x", placed)).warnings == ()


def _x86_map(extra_infos=None):
    """_map() with the local timer row: an x86 machine, whose IRQs need a vector on their CPU."""
    from irqlab.model.snapshot import IrqLine

    m = _map(extra_infos)
    return build_map({int(r.irq): IrqInfo(int(r.irq), affinity=r.affinity, effective_affinity=r.effective_affinity,
                                          actions=r.actions, managed=r.managed) for r in m.rows if r.numbered},
                     [IrqLine("LOC", "LOC", description="Local timer interrupts")],
                     [PciFunction("0000:81:00.0", tuple(range(100, 104)), True, "ice", 1),
                      PciFunction("0000:03:00.0", (200, 201), True, "mlx5_core", 0),
                      PciFunction("0000:00:1f.2", (30,), True, "ahci", 0)],
                     [NetDeviceLink("ens1f0", "0000:81:00.0", None), NetDeviceLink("enp3s0", "0000:03:00.0", None)],
                     [("host", [_dev("ens1f0", 4, 1), _dev("enp3s0", 2, 0), _dev("lo", 1, None)])], NODES, ONLINE)


def _matrix(free: dict[int, int]):
    from irqlab.model.irqvectors import CpuVectors, VectorMatrix

    return VectorMatrix({c: CpuVectors(c, free.get(c, 150)) for c in ONLINE}, "/sys/kernel/debug/irq/domains/VECTOR")


def test_a_write_onto_a_cpu_with_no_free_vector_is_left_alone_as_enospc():
    p = plan_placement(_x86_map(), QUIET, vectors=_matrix({8: 0}))
    aff = {w.irq: w.cpus for w in p.writes if w.kind == "affinity"}
    assert 100 not in aff and aff[101] == (9,) and 102 not in aff and aff[103] == (9,)
    why = {a.what.split()[1]: a.why for a in p.left_alone}
    assert why["100"].startswith("no free interrupt vector on CPU 8 (/sys/kernel/debug/irq/domains/VECTOR)")
    assert "ENOSPC" in why["100"] and p.vector_source == "/sys/kernel/debug/irq/domains/VECTOR"


def test_the_plans_own_moves_use_up_a_cpus_vectors():
    # CPU 8 has one vector, CPU 9 two: queue 0 -> 8, queue 1 -> 9, queue 2 -> 8 (full), queue 3 -> 9
    p = plan_placement(_x86_map(), QUIET, vectors=_matrix({8: 1, 9: 2}))
    aff = {w.irq: w.cpus for w in p.writes if w.kind == "affinity"}
    assert aff.get(100) == (8,) and aff.get(101) == (9,) and 102 not in aff and aff.get(103) == (9,)


def test_a_write_keeping_the_irqs_current_cpu_needs_no_new_vector():
    extra = {100: IrqInfo(100, affinity=ONLINE, effective_affinity=(8,), actions=("ice-ens1f0-TxRx-0",), managed=False)}
    p = plan_placement(_x86_map(extra), QUIET, vectors=_matrix({8: 0}))
    assert {w.irq: w.cpus for w in p.writes if w.kind == "affinity"}.get(100) == (8,)


def test_without_debugfs_the_vector_space_is_estimated_and_said_to_be():
    p = plan_placement(_x86_map(), QUIET)
    assert p.vector_source.startswith("estimated from /proc/interrupts")
    assert plan_placement(_map(), QUIET).vector_source == ""  # no LOC row: not x86, no per-CPU vector space


def test_an_estimated_exhaustion_says_estimated():
    from irqlab.analysis.irqvectors import ESTIMATED_CAPACITY

    crowd = {1000 + i: IrqInfo(1000 + i, affinity=(8,), effective_affinity=(8,), actions=(f"x{i}",), managed=False)
             for i in range(ESTIMATED_CAPACITY)}
    p = plan_placement(_x86_map(crowd), QUIET)
    why = {a.what.split()[1]: a.why for a in p.left_alone}
    assert why["100"].startswith("no free interrupt vector on CPU 8 (estimated: estimated from /proc/interrupts")


def test_with_isolcpus_managed_irq_a_managed_irq_with_a_housekeeping_cpu_is_kept_off_the_quiet_ones():
    extra = {300: IrqInfo(300, affinity=(9, 10), effective_affinity=(10,), actions=("nvme0q3",), managed=True),
             301: IrqInfo(301, affinity=(10, 11), effective_affinity=(10,), actions=("nvme0q4",), managed=True)}
    p = plan_placement(_map(extra), QUIET, managed_irq_cpus=QUIET)
    why = {a.what.split()[1]: a.why for a in p.left_alone}
    assert "isolcpus=managed_irq keeps it on CPU 9 of its mask while one of them is online" in why["300"]
    assert "may fire on quiet" not in why["300"]
    assert "its mask 10-11 has no online housekeeping CPU" in why["301"] and why["301"].endswith("it may fire on quiet CPU 10-11")
    plain = {a.what.split()[1]: a.why for a in plan_placement(_map(extra), QUIET).left_alone}
    assert "may fire on quiet CPU 10" in plain["300"]


# --- threaded NAPI kthreads (napi/DEV-ID) -----------------------------------------------------


def _napi_task(pid: int, comm: str, allowed, kind: str = "napi"):
    from irqlab.model.snapshot import TaskInfo

    return TaskInfo(pid=pid, comm=comm, kind=kind, cpu=None, irq=None, utime_ticks=0, stime_ticks=0, run_ns=None,
                    policy="SCHED_OTHER", rt_priority=0, nice=0, allowed_cpus=allowed)


def test_a_napi_thread_allowed_on_a_quiet_cpu_is_written_onto_the_housekeeping_cpus_only():
    tasks = [_napi_task(900, "napi/ens1f0-8193", ONLINE), _napi_task(901, "napi/enp3s0-8194", (0, 1))]
    p = plan_placement(_map(), QUIET, tasks=tasks)
    (w,) = [w for w in p.writes if w.kind == "thread-affinity"]  # 901 is allowed on housekeeping CPUs only
    assert (w.pid, w.comm, w.cpus, w.current) == (900, "napi/ens1f0-8193", p.housekeeping, ONLINE)
    assert not set(w.cpus) & set(QUIET) and "quiet CPU 10-15" in w.why
    assert w.target == "thread napi/ens1f0-8193 (pid 900)" and w.value() == "0-9"
    assert w.planned().kind == "thread" and (w.planned().pid, w.planned().comm) == (900, "napi/ens1f0-8193")


def test_irq_threads_and_ksoftirqd_are_not_placed_and_unread_cpus_are_said():
    tasks = [_napi_task(902, "irq/30-ahci", ONLINE, kind="irq"), _napi_task(903, "ksoftirqd/12", (12,), kind="ksoftirqd"),
             _napi_task(904, "napi/ens1f0-8195", None)]
    p = plan_placement(_map(), QUIET, tasks=tasks)
    assert not [w for w in p.writes if w.kind == "thread-affinity"]
    assert [a.why for a in p.left_alone if a.what == "thread napi/ens1f0-8195 (pid 904)"] == ["its allowed CPUs were not read"]


def test_dev_limits_the_napi_threads_to_that_device():
    tasks = [_napi_task(900, "napi/ens1f0-8193", ONLINE), _napi_task(905, "napi/veth-x-1-9000", ONLINE)]
    p = plan_placement(_map(), QUIET, devices=("enp3s0",), tasks=tasks)
    assert not [w for w in p.writes if w.kind == "thread-affinity"]
    p = plan_placement(_map(), QUIET, devices=("veth-x-1",), tasks=tasks)
    assert [w.pid for w in p.writes if w.kind == "thread-affinity"] == [905]  # "veth-x-1": the id follows the last "-"
