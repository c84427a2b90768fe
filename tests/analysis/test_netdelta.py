"""Network and thread deltas: namespaces by inode, 32-bit socket drops, resets left out, threads by tid and comm."""

from __future__ import annotations

import dataclasses

from netbuilders import HOST, device, net, netns, thread, udp, view

from irqlab.analysis.netdelta import net_rates, thread_shares
from irqlab.model.net import NetState, NetView

NS = 1_000_000_000
X = netns("x", 4026532400, 900)


def test_namespaces_are_matched_by_inode_and_one_seen_only_later_is_left_out():
    a, b = net(view(HOST, {("Udp", "InErrors"): 10}), view(X, {("Udp", "InErrors"): 50}))
    a = NetState(a.views[:1])  # X appeared during the sample
    r = net_rates(a, b, 2 * NS)
    assert [n.namespace.label for n in r.namespaces] == ["host"]
    assert r.namespaces[0].counter("Udp", "InErrors") == 5.0


def test_a_counter_that_went_backwards_is_left_out_not_negative():
    a, b = net(view(X, {("Udp", "InErrors"): 0, ("TcpExt", "ListenDrops"): 0}))
    a = NetState((dataclasses.replace(a.views[0], counters={("Udp", "InErrors"): 100, ("TcpExt", "ListenDrops"): 0}),))
    ns = net_rates(a, b, NS).namespaces[0]
    assert ("Udp", "InErrors") not in ns.counters and ns.counter("TcpExt", "ListenDrops") == 0.0


def test_device_statistics_per_second():
    a, b = net(view(X, devices=[device("veth1", rx_packets=3_000, rx_dropped=30)]))
    d = net_rates(a, b, 3 * NS).namespaces[0].devices[0]
    assert (d.of("rx_packets"), d.of("rx_dropped"), d.of("no_such_stat")) == (1_000.0, 10.0, 0.0)


def test_socket_drops_wrap_at_32_bits_and_name_the_owner():
    before, after = udp(5201, 777, 0)
    before = dataclasses.replace(before, drops=(1 << 32) - 100)
    after = dataclasses.replace(after, drops=400)  # sk_drops (atomic_t, printed %u) wrapped
    a = NetState((NetView(X, udp=(before,)),))
    b = NetState((NetView(X, udp=(after,)),), socket_pids={777: (812,)}, comms={812: "iperf3"})
    s = net_rates(a, b, NS).namespaces[0].sockets[0]
    assert (s.drops, s.drops_per_s, s.owner) == (500, 500.0, "iperf3 (pid 812)")


def test_a_socket_without_drops_or_a_new_one_is_not_listed():
    quiet, new = udp(53, 1, 0), udp(5201, 2, 10)
    a = NetState((NetView(X, udp=(quiet[0],)),))
    b = NetState((NetView(X, udp=(quiet[1], new[1])),))
    assert net_rates(a, b, NS).namespaces[0].sockets == ()


def test_thread_shares_of_the_interval_and_a_reused_tid_is_not_differenced():
    ok = thread(950, "stress-ng-cpu", 0, 19, 79)
    reused = thread(951, "old", 1, 50, 0)
    after_reused = dataclasses.replace(reused[1], comm="new")
    shares = thread_shares((ok[0], reused[0]), (ok[1], after_reused), NS)
    assert len(shares) == 1
    s = shares[0]
    assert (round(s.run_pct), round(s.wait_pct), s.cpu) == (19, 79, 0)
    assert s.who == "stress-ng-cpu (pid 950, OTHER)"


def test_an_rt_thread_is_named_with_its_priority():
    s = thread_shares(*[(t,) for t in thread(7, "hog", 1, 90, 0, policy="fifo", prio=10)], NS)[0]
    assert s.who == "hog (pid 7, FIFO 10)"


def test_thread_shares_never_exceed_the_time_between_the_thread_reads():
    # Captured under a flood: the after capture's namespace walk took 2.5 s longer than the
    # before capture's, so the thread reads span 2.5x the counters' interval. A thread runs or
    # waits at most the whole span: its shares are of the span, not of the counters' interval.
    busy = thread(31926, "iperf3", 1, 123.4, 128.6)
    sleepy = thread(31734, "python", 0, 20.2, 30.0)
    shares = {s.thread.tid: s for s in thread_shares((busy[0], sleepy[0]), (busy[1], sleepy[1]), NS)}
    assert round(shares[31926].run_pct + shares[31926].wait_pct, 6) == 100.0
    assert round(shares[31734].run_pct, 1) == round(100 * 20.2 / 252.0, 1)
    assert all(s.run_pct + s.wait_pct <= 100.0 + 1e-9 for s in shares.values())
