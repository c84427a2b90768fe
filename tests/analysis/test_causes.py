"""The causal model: each fault class gets one finding that names its source, vector, CPU and harm, with its fix."""

from __future__ import annotations

import dataclasses
import re

import pytest
from netbuilders import HOST, Machine, device, net, netns, thread, udp, view

from irqlab.analysis.causes import nic_queues
from irqlab.analysis.delta import compute_rates
from irqlab.analysis.doctor import diagnose
from irqlab.analysis.findings import Severity
from irqlab.analysis.netdelta import net_rates
from irqlab.analysis.thresholds import Thresholds
from irqlab.model.histogram import Histogram
from irqlab.model.net import RefusedProcess
from irqlab.model.snapshot import IrqInfo
from irqlab.model.trace_result import Handler, TraceResult

SRV = netns("srv", 4026532300, 812)
X = netns(None, 4026532400, 900, comm="iperf3")


def run(m: Machine, t: Thresholds | None = None, trace: TraceResult | None = None, extra=None):
    a, b = m.pair()
    return diagnose(compute_rates(a, b), t, extra=extra, trace=trace)


def codes(findings):
    return [f.code for f in findings]


def udp_flood(**over) -> Machine:
    """load.sh -m udp -l 16 -n 2: senders and receivers through veth; the socket overflows."""
    srv = view(SRV, {("Udp", "InDatagrams"): 470_000, ("Udp", "InErrors"): 530_000, ("Udp", "RcvbufErrors"): 530_000},
               devices=[device("veth1", rx_packets=1_000_000)], sockets=[udp(5201, 777, 530_000)])
    m = Machine(
        softirq={"NET_RX": [20_000, 755_000], "TIMER": [250, 250]},
        times=[[20, 0, 10, 70, 0, 0, 0, 0], [50, 0, 10, 7, 0, 0, 33, 0]],
        softnet={1: {"processed": 1_000_000}},
        net=net(view(HOST), srv, owners={777: (812, "iperf3")}),
        threads=[thread(812, "iperf3", 1, 55, 5), thread(813, "iperf3", 1, 5, 2)],
    )
    return dataclasses.replace(m, **over)


def rps_onto_cpu0(hog_wait: float = 0.0, drops: int = 0) -> Machine:
    """--rps 1 --pin cpu1: rps_cpus=1 on the receiving veth sends every packet to CPU0."""
    x = view(X, {("Udp", "InErrors"): drops, ("Udp", "RcvbufErrors"): drops}, devices=[device("veth1", rps=(0,), rx_packets=780_000)],
             sockets=[udp(5201, 888, drops)] if drops else [])
    threads = [thread(901, "iperf3", 1, 60, 3)]
    if hog_wait:
        threads.append(thread(950, "stress-ng-cpu", 0, 100 - hog_wait - 2, hog_wait))
    return Machine(
        softirq={"NET_RX": [720_000, 30_000]},
        irqs=[("CAL", "Function call interrupts", [150_000, 0])],
        # IRQ time accounted (the irq column moves): schedstat run times exclude interrupts.
        times=[[19, 0, 0, 0, 0, 1, 80, 0], [60, 0, 10, 30, 0, 0, 0, 0]],
        softnet={0: {"processed": 780_000, "received_rps": 700_000}},
        net=net(view(HOST), x, owners={888: (901, "iperf3")}),
        threads=threads,
    )


# --- the fault classes --------------------------------------------------------------------------


def test_udp_flood_names_the_socket_drops_among_the_top_two_with_port_process_and_namespace():
    findings = run(udp_flood())
    top2 = findings[:2]
    sock = next(f for f in top2 if f.code == "socket-drops")
    assert "UDP port 5201" in sock.title and "iperf3 (pid 812)" in sock.title and "netns srv" in sock.title
    assert any("RcvbufErrors 530.0k/s" in e for e in sock.evidence)
    assert sock.severity is Severity.CRITICAL
    rmem = {a.path: a for a in sock.actions}
    assert rmem["/proc/sys/net/core/rmem_max"].command == "sysctl -w net.core.rmem_max=4194304"
    assert rmem["/proc/sys/net/core/rmem_max"].undo == "sysctl -w net.core.rmem_max=212992"
    # The MIB counter and the socket's drops column count the same datagrams once.
    assert "overflowed its receive buffer 530.0k times/s" in rmem["/proc/sys/net/core/rmem_default"].why


def test_udp_flood_top_finding_is_net_rx_on_cpu1_from_the_senders_backlog_and_carries_the_drops():
    top = run(udp_flood())[0]
    assert top.code == "cause-backlog" and top.subject == "NET_RX on CPU1"
    assert "veth1" in top.title and "530.0k packets/s lost" in top.title
    chain = next(e for e in top.evidence if e.startswith("<- backlog of CPU1: veth1 (netns srv), 1.00M packets/s in all"))
    assert chain.endswith("<- sent by iperf3 (pid 813) ran 5 % on CPU1")  # pid 812 owns the receiving socket
    assert any("UDP port 5201 (iperf3 (pid 812))" in e for e in top.evidence)
    assert "estimated" in top.evidence[0]
    rps = top.actions[0]
    assert (rps.path, rps.old, rps.new) == ("/sys/class/net/veth1/queues/rx-0/rps_cpus", "0", "1")
    assert rps.command == "ip netns exec srv sh -c 'echo 1 > /sys/class/net/veth1/queues/rx-0/rps_cpus'"


def test_rps_onto_one_cpu_names_rps_the_queue_its_rps_cpus_and_the_cpu():
    top = run(rps_onto_cpu0(drops=2_000))[0]
    assert top.code == "cause-rps" and top.subject == "NET_RX on CPU0"
    assert "RPS on veth1 rx-0" in top.title and "CPU0" in top.title
    chain = [e for e in top.evidence if e.startswith("<- RPS")][0]
    assert "rps_cpus=1 on veth1 rx-0 (netns of iperf3 (pid 900))" in chain and "780.0k packets/s" in chain
    assert "received_rps 700.0k/s on CPU0" in chain and "CAL) 150.0k/s" in chain
    action = top.actions[0]
    assert (action.kind, action.old, action.new) == ("rps", "1", "2")  # spread to the other CPU
    assert action.why == "rps_cpus=1 steers every packet of veth1 rx-0 to CPU0"
    assert action.namespace is not None and action.namespace.enter == "nsenter -t 900 -n"
    assert action.undo.startswith("nsenter -t 900 -n unshare -m sh -c 'mount -t sysfs sysfs /sys && echo 1 > ")


def test_hog_plus_rps_flood_names_the_hogs_wait_and_ranks_first():
    findings = run(rps_onto_cpu0(hog_wait=79.0))
    top = findings[0]
    assert top.code == "cause-rps" and top.severity is Severity.CRITICAL
    assert "stress-ng-cpu waited 79 %" in top.title
    assert any("stress-ng-cpu (pid 950, OTHER) waited 79 % of the sample, ran 19 %" in e for e in top.evidence)
    assert top.metrics["harm"] > 150  # 81 % taken + 79 % waited


def test_rps_onto_one_cpu_with_nothing_harmed_is_busy_but_keeping_up_and_still_names_rps():
    findings = run(rps_onto_cpu0())
    busy = next(f for f in findings if f.code == "busy-keeping-up")
    assert busy.severity is Severity.INFO and busy.subject == "CPU0"
    assert "rps_cpus=1 on veth1" in busy.evidence[0]
    assert not [f for f in findings if f.code.startswith("cause-")]
    assert "irq-time" in [g.code for g in busy.folded] and "irq-time" not in codes(findings)


def test_tcp_gro_with_a_tiny_budget_names_the_budget_in_the_top_finding_with_its_sysctl():
    x = view(X, devices=[device("veth1", rx_packets=90_000)])
    m = Machine(
        softirq={"NET_RX": [2_000, 90_000]},
        times=[[20, 0, 10, 70, 0, 0, 0, 0], [30, 0, 10, 20, 0, 0, 40, 0]],
        softnet={1: {"processed": 90_000, "time_squeeze": 45_000}},
        sysctl={"net.core.netdev_budget": 2, "net.core.netdev_budget_usecs": 2000, "net.core.netdev_max_backlog": 1000},
        net=net(view(HOST), x),
        threads=[thread(901, "iperf3", 1, 30, 30)],
    )
    findings = run(m)
    top = findings[0]
    assert top.subject == "NET_RX on CPU1" and "budget exhausted 45.0k/s" in top.title
    assert any("time_squeeze" in e and "netdev_budget=2" in e for e in top.evidence)
    budget = next(a for a in top.actions if a.path.endswith("netdev_budget"))
    assert (budget.old, budget.new, budget.command) == ("2", "300", "sysctl -w net.core.netdev_budget=300")
    assert "time-squeeze" in [g.code for g in top.folded] and "time-squeeze" not in codes(findings)


def test_a_squeeze_on_a_cpu_with_little_interrupt_time_is_its_own_budget_finding():
    m = Machine(softirq={"NET_RX": [0, 9_000]}, softnet={1: {"time_squeeze": 50}}, sysctl={"net.core.netdev_budget": 300},
                threads=[thread(901, "iperf3", 1, 30, 0)])
    findings = run(m)
    budget = next(f for f in findings if f.code == "net-budget")
    assert budget.subject == "CPU1" and [a.new for a in budget.actions] == ["600"]
    assert [g.code for g in budget.folded] == ["time-squeeze"]


def test_threaded_napi_names_the_napi_thread_and_who_waited_behind_it():
    x = view(X, devices=[device("veth1", threaded=1, rx_packets=400_000)])
    m = Machine(
        softirq={"NET_RX": [100, 100]},
        net=net(view(HOST), x),
        threads=[thread(300, "napi/veth1-66", 1, 70, 5, kthread=True), thread(901, "iperf3", 1, 28, 60)],
    )
    top = run(m)[0]
    assert top.code == "cause-napi-thread" and top.subject == "NAPI thread napi/veth1-66 on CPU1"
    assert any("threaded NAPI: napi/veth1-66 (pid 300) polls veth1" in e for e in top.evidence)
    assert "iperf3 waited 60 %" in top.title
    move = top.actions[0]
    assert (move.kind, move.command) == ("task-affinity", "taskset -pc 0 300")


def test_an_rt_hog_starving_ksoftirqd_is_the_cause_with_move_and_threaded_napi_actions():
    x = view(X, devices=[device("veth1", rx_packets=100_000)])
    m = Machine(
        softirq={"NET_RX": [60_000, 1_000]},
        times=[[95, 0, 0, 0, 0, 0, 5, 0], [10, 0, 5, 85, 0, 0, 0, 0]],
        softnet={0: {"processed": 60_000, "dropped": 40_000}},
        net=net(view(HOST), x),
        threads=[thread(950, "hog", 0, 95, 0, policy="fifo", prio=10), thread(10, "ksoftirqd/0", 0, 3, 90, kthread=True)],
    )
    findings = run(m)
    top = findings[0]
    assert top.code == "cause-rt-starvation" and top.severity is Severity.CRITICAL
    assert top.title.startswith("hog (FIFO 10) starves ksoftirqd/0")
    assert any("backlog drops on CPU0: dropped 40.0k/s" in e for e in top.evidence)
    kinds = {a.kind: a for a in top.actions}
    assert kinds["task-affinity"].command == "taskset -pc 1 950" and kinds["task-affinity"].undo == "taskset -pc 0-1 950"
    assert kinds["threaded-napi"].path == "/sys/class/net/veth1/threaded" and kinds["threaded-napi"].new == "1"
    assert "softnet-drops" in [g.code for g in top.folded] and "softnet-drops" not in codes(findings)


# rt_hog_pct is 50: the stress-ng-cpu of load.sh --hog-fifo 50 ran 80 % of CPU0 in the rt-hog capture
# (interrupts and the fair server's reserve for SCHED_OTHER take the rest), so 80 % was a limit it missed.
@pytest.mark.parametrize(("run_pct", "wait_pct", "starved"), [(49.0, 90.0, False), (51.0, 90.0, True), (90.0, 19.0, False), (90.0, 21.0, True)])
def test_rt_starvation_thresholds(run_pct, wait_pct, starved):
    m = Machine(softirq={"NET_RX": [1_000, 0]}, softnet={0: {"dropped": 10}},
                threads=[thread(950, "hog", 0, run_pct, 0, policy="fifo", prio=10), thread(10, "ksoftirqd/0", 0, 1, wait_pct, kthread=True)])
    assert ("cause-rt-starvation" in codes(run(m))) is starved


# --- NIC queues: managed IRQs never get an affinity write --------------------------------------------


def nic_on_cpu0(managed: bool | None) -> Machine:
    host = view(HOST, devices=[device("eth0", driver="virtio_net", rx_packets=300_000)])
    return Machine(
        softirq={"NET_RX": [300_000, 0]},
        irqs=[("38", "virtio2-input.0", [300_000, 0])],
        times=[[30, 0, 0, 0, 0, 1, 69, 0], [5, 0, 5, 90, 0, 0, 0, 0]],  # IRQ time accounted
        irqinfo={38: IrqInfo(38, affinity=(0,), effective_affinity=(0,), managed=managed)},
        net=net(host),
        threads=[thread(700, "nginx", 0, 30, 60)],
    )


def test_an_unmanaged_nic_queue_gets_an_affinity_action_to_the_other_cpu():
    top = run(nic_on_cpu0(False))[0]
    assert top.code == "cause-nic-queue" and "IRQ 38 (eth0 rx-0)" in top.title
    action = top.actions[0]
    assert (action.command, action.undo) == ("echo 1 > /proc/irq/38/smp_affinity_list", "echo 0 > /proc/irq/38/smp_affinity_list")


def test_a_managed_irq_never_gets_an_affinity_action_but_rps_instead():
    top = run(nic_on_cpu0(True))[0]
    assert top.code == "cause-nic-queue"
    assert not [a for a in top.actions if a.kind == "irq-affinity"]
    assert [(a.kind, a.path, a.new) for a in top.actions] == [("rps", "/sys/class/net/eth0/queues/rx-0/rps_cpus", "2")]
    assert top.actions[0].command == "echo 2 > /sys/class/net/eth0/queues/rx-0/rps_cpus"
    assert any("managed by the kernel" in e and "EPERM" in e for e in top.evidence)


# --- thresholds at both sides -------------------------------------------------------------------


@pytest.mark.parametrize(("wait", "code", "severity"), [(9.9, "busy-keeping-up", Severity.INFO), (10.1, "cause-nic-queue", Severity.WARNING),
                                                         (49.9, "cause-nic-queue", Severity.WARNING), (50.1, "cause-nic-queue", Severity.CRITICAL)])
def test_task_wait_thresholds(wait, code, severity):
    # 30 % of CPU0 in softirq, and nginx sleeps some of the rest: only its wait counts, not the interrupts' time.
    m = dataclasses.replace(nic_on_cpu0(False), threads=[thread(700, "nginx", 0, 10, wait)], irqs=[("38", "virtio2-input.0", [1_000, 0])], times=[[20, 0, 0, 50, 0, 0, 30, 0], [5, 0, 5, 90, 0, 0, 0, 0]])
    found = [(f.code, f.severity) for f in run(m) if f.code in ("busy-keeping-up", "cause-nic-queue")]
    assert found == [(code, severity)]


@pytest.mark.parametrize(("softirq_pct", "cause"), [(24, False), (26, True)])
def test_interrupt_time_threshold_for_a_cause(softirq_pct, cause):
    # 1,000 hard interrupts/s x 1 us: 0.1 % of hardirq time beside the softirq share /proc/stat gives.
    m = dataclasses.replace(nic_on_cpu0(False), irqs=[("38", "virtio2-input.0", [1_000, 0])], times=[[30, 0, 0, 100 - 30 - softirq_pct, 0, 0, softirq_pct, 0], [5, 0, 5, 90, 0, 0, 0, 0]])
    assert ("cause-nic-queue" in codes(run(m))) is cause


@pytest.mark.parametrize(("drops", "severity"), [(0, None), (1, Severity.WARNING), (999, Severity.WARNING), (1000, Severity.CRITICAL)])
def test_socket_drop_thresholds(drops, severity):
    x = view(X, {("Udp", "InErrors"): drops, ("Udp", "RcvbufErrors"): drops})
    findings = run(Machine(net=net(view(HOST), x), threads=[thread(1, "a", 0, 1, 0)]))
    sock = [f.severity for f in findings if f.code == "socket-drops"]
    assert sock == ([severity] if severity else [])


# rx_dropped also counts frames no protocol took (LLDP, unknown ethertypes): a few per second are not loss.
@pytest.mark.parametrize(("dropped", "severity"), [(0, None), (9, None), (10, Severity.WARNING), (1000, Severity.CRITICAL)])
def test_nic_drop_thresholds(dropped, severity):
    host = view(HOST, devices=[device("eth0", driver="e1000e", rx_packets=10, rx_missed_errors=dropped)])
    findings = run(Machine(net=net(host), threads=[thread(1, "a", 0, 1, 0)]))
    assert [f.severity for f in findings if f.code == "nic-drops"] == ([severity] if severity else [])


def test_tcp_drops_count_at_the_socket_layer_but_get_no_rmem_action():
    x = view(X, {("TcpExt", "TCPBacklogDrop"): 5_000})
    sock = next(f for f in run(Machine(net=net(view(HOST), x), threads=[thread(1, "a", 0, 1, 0)])) if f.code == "socket-drops")
    assert "TcpExt TCPBacklogDrop" in sock.evidence[0] and sock.actions == ()


# --- folding and the trace -------------------------------------------------------------------------


def test_symptoms_a_cause_explains_are_folded_not_listed_again():
    m = dataclasses.replace(rps_onto_cpu0(hog_wait=79.0), ksoftirqd_pct=[40.0, 0.0])
    findings = run(m)
    top = findings[0]
    folded = {g.code for g in top.folded}
    assert {"irq-time", "ksoftirqd-pressure", "storm", "softirq-concentration"} <= folded
    assert not folded & set(codes(findings))


def test_a_trace_measures_the_vector_time_instead_of_the_estimate():
    hist = Histogram(1_000, 1_000_000)
    for _ in range(1000):
        hist.add(810)  # 1000 runs of 810 ns in a 1 ms window: 81 % of CPU0
    trace = TraceResult(1_000_000, (0, 1), {}, {}, (), (Handler("softirq", 3, "NET_RX", {0: hist}, {0: hist}),), (), {}, {}, {})
    top = run(rps_onto_cpu0(hog_wait=79.0), trace=trace)[0]
    assert top.evidence[0] == "NET_RX 1.00M runs/s on CPU0: 81 % of the CPU (measured by the trace)"


def test_without_threads_nothing_is_called_busy_but_keeping_up():
    m = dataclasses.replace(rps_onto_cpu0(), threads=[])
    findings = run(m)
    assert "busy-keeping-up" not in codes(findings) and "irq-time" in codes(findings)


def test_socket_drops_are_harm_of_the_chain_that_reaches_their_namespace_only():
    m = rps_onto_cpu0(hog_wait=79.0)
    other = view(SRV, {("Udp", "InErrors"): 5_000, ("Udp", "RcvbufErrors"): 5_000})
    m = dataclasses.replace(m, net=net(view(HOST), view(X, devices=[device("veth1", rps=(0,), rx_packets=780_000)]), other))
    findings = run(m)
    top = findings[0]
    assert top.code == "cause-rps" and not any("netns srv" in e for e in top.evidence)
    assert any(f.code == "socket-drops" and "netns srv" in f.title for f in findings)


# --- as captured on this VM: veth without a driver name, RPS IPIs, idle NAPI threads, RT hogs ---------

C = netns("c", 4026532500, 950, comm="iperf3")


def veth_pair(rps: tuple[int, ...] = (), threaded: int = 0):
    """load.sh's pair as sysfs shows it: no driver link; v1 (netns c) sends, v0 (netns srv) receives."""
    srv = view(SRV, {("Udp", "InErrors"): 100_000, ("Udp", "RcvbufErrors"): 100_000},
               devices=[device("v0", driver=None, rps=rps, threaded=threaded, rx_packets=200_000)], sockets=[udp(5201, 777, 100_000)])
    c = view(C, devices=[device("v1", driver=None, tx_packets=200_000)])
    return net(view(HOST), srv, c, owners={777: (812, "iperf3")})


def test_a_veth_pair_without_a_driver_name_is_found_by_its_counters_and_its_sender_named():
    m = Machine(softirq={"NET_RX": [0, 200_000]}, times=[[90, 0, 0, 10, 0, 0, 0, 0], [40, 0, 20, 0, 0, 0, 40, 0]],
                softnet={1: {"processed": 200_000}}, net=veth_pair(),
                threads=[thread(951, "iperf3", 1, 50, 40), thread(812, "iperf3", 1, 10, 50)])
    top = run(m)[0]
    assert top.code == "cause-backlog" and "veth v1 -> v0" in top.title
    chain = next(e for e in top.evidence if e.startswith("<- backlog of CPU1"))
    assert "veth v1 (netns c) -> v0 (netns srv)" in chain and chain.endswith("sent by iperf3 (pid 951) ran 50 % on CPU1")


def test_the_cpu_that_sends_rps_ipis_joins_the_rps_cause_even_under_the_limit_alone():
    m = Machine(softirq={"NET_RX": [20_000, 20_000]}, irqs=[("CAL", "Function call interrupts", [20_000, 0])],
                times=[[60, 0, 10, 0, 0, 0, 30, 0], [70, 0, 15, 0, 0, 0, 15, 0]],
                softnet={0: {"processed": 200_000, "received_rps": 20_000}}, net=veth_pair(rps=(0,)),
                threads=[thread(951, "iperf3", 1, 15, 80), thread(812, "iperf3", 1, 8, 50)])
    top = run(m)[0]
    assert top.code == "cause-rps" and top.metrics["cpu"] == 0 and top.subject == "NET_RX on CPUs 0-1"
    assert any(e.startswith("<- RPS IPIs: rps_cpus=1 on v0 rx-0") and "NET_RX on CPU1 only sends the IPIs" in e for e in top.evidence)
    # CPU1's tasks wait: the whole queue is spread, not moved onto them.
    assert (top.actions[0].old, top.actions[0].new) == ("1", "3")


def test_threaded_napi_on_a_veth_whose_napi_thread_idled_says_why():
    m = Machine(softirq={"NET_RX": [0, 200_000]}, times=[[90, 0, 0, 10, 0, 0, 0, 0], [40, 0, 20, 0, 0, 0, 40, 0]],
                softnet={1: {"processed": 200_000}}, net=veth_pair(threaded=1),
                threads=[thread(951, "iperf3", 1, 50, 40), thread(300, "napi/v0-261", 0, 0, 0, kthread=True)])
    top = run(m)[0]
    assert any("threaded=1 on v0, but napi/v0-261 (pid 300) ran 0 %" in e and "GRO" in e for e in top.evidence)


def test_a_trace_under_proc_stat_does_not_hide_a_cause_proc_stat_sees():
    # rps-one-cpu: the trace measured 9 % NET_RX on CPU0 in its 1 s, /proc/stat counted 31 %.
    hist = Histogram(1_000, 1_000_000)
    for _ in range(90):
        hist.add(1_000)
    trace = TraceResult(1_000_000, (0, 1), {}, {}, (), (Handler("softirq", 3, "NET_RX", {0: hist}, {0: hist}),), (), {}, {}, {})
    top = run(rps_onto_cpu0(drops=2_000), trace=trace)[0]
    assert top.code == "cause-rps" and "9-81 % of CPU0" in top.title
    assert any("/proc/stat counted 81 %" in e for e in top.evidence)


def test_an_rt_hog_that_starves_a_receiver_names_it_its_socket_and_ksoftirqd():
    m = Machine(softirq={"NET_RX": [5_000, 200_000]}, net=veth_pair(),
                threads=[thread(950, "stress-ng-cpu", 0, 80, 5, policy="fifo", prio=50), thread(812, "iperf3", 0, 2, 95),
                         thread(10, "ksoftirqd/0", 0, 0, 0, kthread=True)])
    top = run(m)[0]
    assert top.code == "cause-rt-starvation" and top.title.startswith("stress-ng-cpu (FIFO 50) holds 80 % of CPU0: iperf3 waited 95 %")
    assert any(e.startswith("-> ksoftirqd/0 waited 0 %") for e in top.evidence)
    assert any("iperf3 (pid 812) cannot read its socket" in e for e in top.evidence)
    assert top.actions[0].command == "taskset -pc 1 812"


# --- NIC queues: spread one per CPU, named from hard-IRQ time, each drop counted once -------------------


def msix_on_cpu0(managed: frozenset[int] = frozenset()) -> Machine:
    """Four queue IRQs of eth0 (ixgbe naming), every one with smp_affinity_list 0, on a 4-CPU machine."""
    host = view(HOST, devices=[device("eth0", driver="ixgbe", rx_packets=400_000)])
    return Machine(
        cpus=(0, 1, 2, 3),
        softirq={"NET_RX": [400_000, 0, 0, 0]},
        irqs=[(str(41 + q), f"eth0-TxRx-{q}", [1_000, 0, 0, 0]) for q in range(4)],
        times=[[0, 0, 0, 10, 0, 0, 90, 0]] + [[5, 0, 5, 90, 0, 0, 0, 0]] * 3,
        irqinfo={41 + q: IrqInfo(41 + q, affinity=(0,), effective_affinity=(0,), managed=41 + q in managed) for q in range(4)},
        net=net(host),
        threads=[thread(700, "nginx", 0, 5, 60)],
    )


def test_every_queue_irq_on_one_cpu_is_spread_one_per_cpu():
    top = run(msix_on_cpu0())[0]
    writes = {a.path: (a.old, a.new) for a in top.actions if a.kind == "irq-affinity"}
    assert writes == {"/proc/irq/41/smp_affinity_list": ("0", "1"), "/proc/irq/42/smp_affinity_list": ("0", "2"),
                      "/proc/irq/43/smp_affinity_list": ("0", "3"), "/proc/irq/44/smp_affinity_list": ("0", "1")}


def test_a_managed_queue_among_them_is_spread_by_rps_never_by_an_affinity_write():
    top = run(msix_on_cpu0(managed=frozenset({42})))[0]
    paths = {a.path for a in top.actions if a.kind == "irq-affinity"}
    assert paths == {f"/proc/irq/{n}/smp_affinity_list" for n in (41, 43, 44)}
    assert any(a.kind == "rps" and a.path.startswith("/sys/class/net/eth0/") for a in top.actions)


def test_a_hard_irq_storm_of_a_single_queue_nic_names_its_device_and_carries_the_socket_drops():
    # e1000e without MSI-X: one interrupt named after the netdev; hard-IRQ time leads, NET_RX barely runs.
    host = view(HOST, {("Udp", "InErrors"): 5_000, ("Udp", "RcvbufErrors"): 5_000}, devices=[device("eth0", driver="e1000e", rx_packets=300_000)])
    m = Machine(irqs=[("30", "eth0", [300_000, 0])], times=[[5, 0, 0, 15, 0, 80, 0, 0], [5, 0, 5, 90, 0, 0, 0, 0]],
                irqinfo={30: IrqInfo(30, affinity=(0,), effective_affinity=(0,), managed=False)}, net=net(host),
                threads=[thread(700, "nginx", 0, 5, 60)])
    top = run(m)[0]
    assert top.code == "cause-nic-queue" and "from IRQ 30 (eth0 rx-0)" in top.title
    assert "5000 packets/s lost" in top.title and any(e.startswith("-> socket drops 5000/s") for e in top.evidence)
    assert [a.path for a in top.actions if a.kind == "irq-affinity"] == ["/proc/irq/30/smp_affinity_list"]


def test_virtio_input_queues_are_the_virtio_net_devices_in_probe_order():
    host = view(HOST, devices=[device("eth0", driver="virtio_net"), device("eth1", driver="virtio_net")])
    m = Machine(irqs=[("36", "virtio1-req.0", [10, 0]), ("38", "virtio2-input.0", [10, 0]), ("40", "virtio3-input.0", [0, 10])], net=net(host))
    a, b = m.pair()
    rates = compute_rates(a, b)
    assert nic_queues(rates, net_rates(a.net, b.net, rates.interval_ns).namespaces[0]) == {"38": ("eth0", 0), "40": ("eth1", 0)}


def test_a_netif_rx_nic_counts_a_backlog_drop_once_and_reports_no_ring_overflow():
    # enqueue_to_backlog() counts each drop in softnet dropped and in the device's rx_dropped.
    host = view(HOST, devices=[device("eth0", driver="e1000", rx_packets=200_000, rx_dropped=80_000)])
    m = Machine(softirq={"NET_RX": [200_000, 0]}, irqs=[("41", "eth0-rx-0", [200_000, 0])],
                times=[[0, 0, 0, 0, 0, 40, 60, 0], [5, 0, 5, 90, 0, 0, 0, 0]], softnet={0: {"processed": 200_000, "dropped": 80_000}},
                irqinfo={41: IrqInfo(41, affinity=(0,), effective_affinity=(0,), managed=False)}, net=net(host),
                threads=[thread(14, "ksoftirqd/0", 0, 1, 90, kthread=True)])
    findings = run(m)
    assert "nic-drops" not in codes(findings)
    top = findings[0]
    assert top.code == "cause-nic-queue" and top.metrics["lost_per_s"] == 80_000
    assert not any(e.startswith("-> NIC drops") for e in top.evidence)


def full_hist(ns: int, n: int = 1000) -> Histogram:
    h = Histogram(1_000, 1_000_000)
    for _ in range(n):
        h.add(ns)
    return h


def test_interrupt_time_counts_the_hard_irqs_nested_in_a_softirq_once():
    # 1000 NET_RX runs of 900 ns gross, 300 ns without the hard IRQs nested in them; 600 ns of hard IRQs: 90 % of the 1 ms window, not 150 %.
    rx = Handler("softirq", 3, "NET_RX", {0: full_hist(900)}, {0: full_hist(300)})
    irq = Handler("irq", 38, "virtio2-input.0", {0: full_hist(600)}, {0: full_hist(600)})
    trace = TraceResult(1_000_000, (0, 1), {}, {}, (irq,), (rx,), (), {}, {}, {})
    top = run(nic_on_cpu0(False), trace=trace)[0]
    assert "interrupt time on CPU0: NET_RX 30.0 %, hardirq 60.0 %" in top.evidence
    assert top.title.startswith("NET_RX and its queues' interrupts take 90 % of CPU0")


def test_a_task_that_wanted_the_cpu_lost_the_interrupts_time_not_only_its_wait():
    # nginx ran or waited all of the 30 % that interrupts left CPU0: the other 70 % was taken from it.
    m = dataclasses.replace(nic_on_cpu0(False), irqs=[("38", "virtio2-input.0", [1_000, 0])], threads=[thread(700, "nginx", 0, 28, 2)])
    top = run(m)[0]
    assert top.code == "cause-nic-queue" and top.severity is Severity.CRITICAL and "nginx lost 72 %" in top.title
    assert any("nginx (pid 700, OTHER) lost 72 % of the sample: ran 28 %, waited 2 %, and interrupts took 70 %" in e for e in top.evidence)


def test_without_irq_time_accounting_a_task_loses_the_interrupts_share_of_its_run_time():
    # This VM: /proc/stat's irq column stays 0, and softirqs that ran on top of a task are its
    # schedstat run time. The hog-rps capture: stress-ng-cpu "ran 61 %, waited 38 %" while
    # CPU0 was 64 % in softirq: it really ran 22 % (the issue measured 19 %).
    m = dataclasses.replace(rps_onto_cpu0(hog_wait=38.0), times=[[36, 0, 0, 0, 0, 0, 64, 0], [60, 0, 10, 30, 0, 0, 0, 0]])
    m.threads[-1] = thread(950, "stress-ng-cpu", 0, 61, 38)
    top = run(m)[0]
    hog = next(e for e in top.evidence if "stress-ng-cpu (pid 950" in e)
    m_ = re.search(r"lost (\d+) % of the sample: ran (\d+) %, waited 38 %, and interrupts took (\d+) %", hog)
    assert m_, hog
    lost, ran, took = map(int, m_.groups())
    # Its 61 % "run" splits into what it ran and what interrupts took on top of it (the CPU's
    # interrupt share of its current time); the loss is that plus its wait.
    assert took > 30 and abs(ran + took - 61) <= 1 and abs(lost - (38 + took)) <= 1
    # The same numbers with the irq column moving (IRQ time accounted): run time is the task's own.
    accounted = dataclasses.replace(m, times=[[35, 0, 0, 0, 0, 1, 64, 0], [60, 0, 10, 30, 0, 0, 0, 0]])
    hog = next(e for e in run(accounted)[0].evidence if "stress-ng-cpu (pid 950" in e)
    assert "waited 38 % of the sample, ran 61 %" in hog


def test_a_task_that_slept_is_not_charged_the_interrupts_time():
    m = dataclasses.replace(nic_on_cpu0(False), irqs=[("38", "virtio2-input.0", [1_000, 0])], threads=[thread(700, "nginx", 0, 10, 2)])
    assert "busy-keeping-up" in codes(run(m))


# --- moving an RT hog: never onto another CPU's receive path -------------------------------------------


def rt_hog(cpus: tuple[int, ...], net_rx: list[int], softirq_pct: list[int]) -> Machine:
    x = view(X, devices=[device("veth1", rx_packets=100_000)])
    return Machine(
        cpus=cpus, softirq={"NET_RX": net_rx},
        times=[[95, 0, 0, 0, 0, 0, 5, 0]] + [[10, 0, 5, 85 - p, 0, 0, p, 0] for p in softirq_pct],
        softnet={0: {"processed": 1_000, "dropped": 40_000}}, net=net(view(HOST), x),
        threads=[thread(950, "hog", 0, 95, 0, policy="fifo", prio=10), thread(10, "ksoftirqd/0", 0, 3, 90, kthread=True)],
    )


def test_an_rt_hog_is_moved_to_the_least_loaded_cpu_that_runs_no_receive_work():
    top = run(rt_hog((0, 1, 2), [1_000, 60_000, 0], [30, 0]))[0]
    moves = [(a.path, a.new) for a in top.actions if a.kind == "task-affinity"]
    assert moves == [("pid 950", "2")]


def test_an_rt_hog_gets_no_move_when_every_other_cpu_runs_receive_work():
    top = run(rt_hog((0, 1), [1_000, 60_000], [30]))[0]
    assert top.code == "cause-rt-starvation" and not [a for a in top.actions if a.kind == "task-affinity"]
    assert any(e.startswith("every other CPU (CPU1) runs receive work") for e in top.evidence)


# --- unprivileged: namespaces that could not be seen ---------------------------------------------------


def test_namespaces_that_could_not_be_entered_are_named_once_with_why():
    a, b = net(view(HOST))
    unseen = ((X, "setns: Operation not permitted"), (SRV, "setns: Operation not permitted"))
    a, b = (dataclasses.replace(s, not_entered=unseen, denied=3) for s in (a, b))
    findings = run(Machine(net=(a, b), threads=[thread(1, "a", 0, 1, 0)]))
    (f,) = [f for f in findings if f.code == "netns-unseen"]
    assert f.severity is Severity.INFO
    assert f.title == ("2 network namespaces could not be entered and those of 3 processes could not be read: "
                       "their drops and devices are not in these findings")
    assert f.evidence[:2] == ("netns of iperf3 (pid 900): setns: Operation not permitted", "netns srv: setns: Operation not permitted")
    assert f.evidence[2].startswith("3 processes whose /proc/PID/ns/net this user may not read")


def _refused_to_root(*refused: RefusedProcess):
    a, b = (dataclasses.replace(s, denied=len(refused) + 1, reader_root=True, refused=refused) for s in net(view(HOST)))
    (f,) = [f for f in run(Machine(net=(a, b), threads=[thread(1, "a", 0, 1, 0)])) if f.code == "netns-unseen"]
    return f


def test_links_refused_to_root_are_not_told_to_run_as_root():
    f = _refused_to_root(RefusedProcess(1, "process_api", ("CAP_SYS_PTRACE", "CAP_SYS_RESOURCE")), RefusedProcess(77, "", ()),
                         RefusedProcess(78, "x", None))
    assert f.evidence == ("4 processes whose /proc/PID/ns/net the kernel refused even to root (its ptrace access check): "
                          "their namespaces are not even counted",
                          "pid 1 (process_api) holds CAP_SYS_PTRACE, CAP_SYS_RESOURCE, which this reader lacks, and this reader "
                          "lacks CAP_SYS_PTRACE",
                          "pid 77: not for capabilities (the capability check passes this reader): another security module "
                          "refused (Landlock, a BPF LSM program, SELinux or AppArmor)",
                          "pid 78 (x): its capabilities could not be read")
    assert f.title.startswith("the network namespaces of 4 processes could not be read")
    assert "run as root" not in f.recommendation and f.recommendation.startswith("give irqlab CAP_SYS_PTRACE")


def test_links_refused_to_a_root_with_cap_sys_ptrace_are_put_on_the_security_module_not_capabilities():
    # This VM: the reader holds CAP_SYS_PTRACE, so pid 1's extra CAP_SYS_RESOURCE is not why.
    f = _refused_to_root(RefusedProcess(1, "process_api", ()))
    assert "CAP_SYS_RESOURCE" not in " ".join(f.evidence)
    assert f.recommendation.startswith("no capability lifts this: a security module confines irqlab itself")


def test_nothing_unseen_says_nothing():
    assert "netns-unseen" not in codes(run(Machine(net=net(view(HOST)), threads=[thread(1, "a", 0, 1, 0)])))
