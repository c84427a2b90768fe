"""Rates between two NetStates (per namespace) and shares between two thread lists. Pure.

Counter widths: the MIB counters of /proc/net/snmp, snmp6 and netstat are printed as unsigned
long (net/ipv4/proc.c, snmp_seq_show_mib(): 64-bit on 64-bit machines), the device
statistics are rtnl_link_stats64 (64-bit), so a counter that went backwards was reset (a
namespace or device re-created) and is left out. A UDP socket's drops column is sk_drops, an
atomic_t printed with %u (net/ipv4/udp.c, udp4_format_sock()): 32-bit, so it wraps.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from irqlab.model.net import NetDevice, NetNamespace, NetState, NetView, RefusedProcess, ThreadSched, UdpSocket
from irqlab.units import NS_PER_S

WRAP32 = 1 << 32
K = TypeVar("K", bound=Hashable)


def _rates(old: Mapping[K, int], new: Mapping[K, int], dt_s: float) -> dict[K, float]:
    """Per-second increments of counters present in both; one that went backwards is left out."""
    return {k: (v - old[k]) / dt_s for k, v in new.items() if k in old and v >= old[k]}


@dataclass(frozen=True, slots=True)
class DeviceRates:
    """One device's statistics/ counters per second over the interval."""

    device: NetDevice  # as in the later state
    rate: Mapping[str, float]  # rx_packets, rx_dropped, rx_missed_errors, ...

    def of(self, name: str) -> float:
        """A statistic's rate, 0 when the device lacks it."""
        return self.rate.get(name, 0.0)


@dataclass(frozen=True, slots=True)
class SocketDrops:
    """One UDP socket that dropped datagrams during the interval, and who owns it."""

    socket: UdpSocket  # as in the later state
    drops: int
    drops_per_s: float
    pids: tuple[int, ...]
    comms: tuple[str, ...]

    @property
    def owner(self) -> str:
        """"iperf3 (pid 812)", or "no process found" when /proc/PID/fd said nothing."""
        if not self.pids:
            return "no process found"
        name = self.comms[0] if self.comms else "?"
        more = f" and {len(self.pids) - 1} more" if len(self.pids) > 1 else ""
        return f"{name} (pid {self.pids[0]}{more})"


@dataclass(frozen=True, slots=True)
class NamespaceRates:
    """One network namespace's counters per second over the interval."""

    namespace: NetNamespace
    counters: Mapping[tuple[str, str], float]  # ("Udp", "RcvbufErrors") -> per second
    devices: tuple[DeviceRates, ...]
    sockets: tuple[SocketDrops, ...]  # only those that dropped, most first

    def counter(self, section: str, name: str) -> float:
        return self.counters.get((section, name), 0.0)


@dataclass(frozen=True, slots=True)
class NetRates:
    """Every namespace seen in both states, the host's first; and those that could not be seen."""

    interval_ns: int
    namespaces: tuple[NamespaceRates, ...]
    not_entered: tuple[tuple[NetNamespace, str], ...] = ()
    denied: int = 0
    reader_root: bool | None = None  # the later state's reader ran as root (None: not known)
    refused: tuple[RefusedProcess, ...] = ()  # the first few denied processes, named


def _device_rates(a: NetView, b: NetView, dt_s: float) -> tuple[DeviceRates, ...]:
    old = {d.name: d for d in a.devices}
    return tuple(DeviceRates(d, _rates(old[d.name].statistics, d.statistics, dt_s)) for d in b.devices if d.name in old)


def _socket_drops(a: NetView, b: NetView, state: NetState, dt_s: float) -> tuple[SocketDrops, ...]:
    old = {s.inode: s for s in a.udp if s.inode}
    out = []
    for s in b.udp:
        prev = old.get(s.inode)
        if prev is None or s.drops is None or prev.drops is None:
            continue
        drops = (s.drops - prev.drops) % WRAP32
        if drops == 0 or drops >= WRAP32 // 2:
            continue
        pids = tuple(sorted(state.socket_pids.get(s.inode, ())))
        comms = tuple(state.comms.get(p, "?") for p in pids)
        out.append(SocketDrops(s, drops, drops / dt_s, pids, comms))
    return tuple(sorted(out, key=lambda x: (-x.drops, x.socket.local_port)))


def net_rates(a: NetState, b: NetState, interval_ns: int) -> NetRates:
    """Rates of every namespace present in both states (matched by inode)."""
    dt_s = interval_ns / NS_PER_S
    out = []
    for view in b.views:
        prev = a.view(view.namespace.inode)
        if prev is None:
            continue
        out.append(
            NamespaceRates(
                namespace=view.namespace,
                counters=_rates(prev.counters, view.counters, dt_s),
                devices=_device_rates(prev, view, dt_s),
                sockets=_socket_drops(prev, view, b, dt_s),
            )
        )
    return NetRates(interval_ns, tuple(out), b.not_entered, b.denied, b.reader_root, b.refused)


# --- threads --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThreadShare:
    """One thread's share of the interval: on a CPU, and runnable but waiting for one."""

    thread: ThreadSched  # as in the later list
    run_pct: float  # percent of the interval
    wait_pct: float
    # The time interrupts took from it while it wanted the CPU: neither its run time nor its
    # wait (set by analysis/causes.py harm_on() for a task runnable throughout; 0 otherwise).
    irq_pct: float = 0.0

    @property
    def lost_pct(self) -> float:
        """The share of the interval it wanted the CPU and did not get: waiting, or under interrupts."""
        return self.wait_pct + self.irq_pct

    @property
    def cpu(self) -> int:
        """The CPU it last ran on (/proc/PID/task/TID/stat, field 39)."""
        return self.thread.last_cpu

    @property
    def who(self) -> str:
        t = self.thread
        policy = t.policy.upper() + (f" {t.rt_priority}" if t.policy in ("fifo", "rr") else "")
        return f"{t.comm} (pid {t.pid}{'' if t.tid == t.pid else f', tid {t.tid}'}, {policy})"


def thread_span_ns(a: tuple[ThreadSched, ...], b: tuple[ThreadSched, ...], interval_ns: int) -> int:
    """The time between the two thread reads, at least: the counters' interval, or longer when a thread says so.

    A capture reads every thread's schedstat after its counters and after entering every network
    namespace, and that walk can take seconds longer in one capture than in the other under load,
    so the thread reads may span more than the counters' interval. A thread is either on a CPU,
    runnable and waiting, or asleep: its run time plus its run delay (schedstat fields 1 and 2,
    kernel/sched/stats.c) cannot exceed the time between two reads, so the largest sum is a lower
    bound of that time, and the exact time when some thread was runnable throughout (a busy CPU).
    """
    old = {(t.tid, t.comm): t for t in a}
    span = interval_ns
    for t in b:
        prev = old.get((t.tid, t.comm))
        if prev is not None and t.run_ns >= prev.run_ns and t.wait_ns >= prev.wait_ns:
            span = max(span, (t.run_ns - prev.run_ns) + (t.wait_ns - prev.wait_ns))
    return span


def thread_shares(a: tuple[ThreadSched, ...], b: tuple[ThreadSched, ...], interval_ns: int) -> tuple[ThreadShare, ...]:
    """Run and wait shares of every thread present in both lists (matched by tid and comm), of the time between the reads.

    That time is thread_span_ns(): never less than interval_ns, so no share exceeds 100 %.
    """
    span = thread_span_ns(a, b, interval_ns)
    old = {(t.tid, t.comm): t for t in a}
    out = []
    for t in b:
        prev = old.get((t.tid, t.comm))
        if prev is None or t.run_ns < prev.run_ns or t.wait_ns < prev.wait_ns:
            continue
        out.append(ThreadShare(t, 100.0 * (t.run_ns - prev.run_ns) / span, 100.0 * (t.wait_ns - prev.wait_ns) / span))
    return tuple(out)
