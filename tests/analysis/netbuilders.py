"""Builders of two-snapshot machines for the causal model's tests: everything as rates over 1 s.

Each builder returns (before, after): the before side holds zeros, the after side one second's
worth of counts, so every number written here is a rate per second.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from builders import interrupts, ksoftirqd, snapshot, softirqs, stat
from irqlab.model.net import NetDevice, NetNamespace, NetState, NetView, RxQueue, ThreadSched, TxQueue, UdpSocket
from irqlab.model.snapshot import HostInfo, IrqInfo, Snapshot, Softnet, SoftnetRow

NS = 1_000_000_000
HOST = NetNamespace(inode=4026531840, pid=1, nprocs=90, comms=("systemd",), names=(), ns_path="/proc/1/ns/net", host=True)
SYSCTL = {
    "net.core.netdev_budget": 300,
    "net.core.netdev_budget_usecs": 2000,
    "net.core.netdev_max_backlog": 1000,
    "net.core.rmem_default": 212992,
    "net.core.rmem_max": 212992,
}


def netns(name: str | None, inode: int, pid: int, comm: str = "iperf3") -> NetNamespace:
    return NetNamespace(inode, pid, 2, (comm,), (name,) if name else (), f"/run/netns/{name}" if name else f"/proc/{pid}/ns/net")


def device(name: str, driver: str = "veth", rps: tuple[int, ...] = (), threaded: int = 0, **stats: int) -> tuple[NetDevice, NetDevice]:
    def make(values: dict[str, int]) -> NetDevice:
        return NetDevice(name, values, (RxQueue(0, rps, 0),), (TxQueue(0, ()),), threaded, 0, 0, -1, driver)

    full = {"rx_packets": 0, "rx_dropped": 0, "rx_missed_errors": 0, "rx_fifo_errors": 0} | stats
    return make({k: 0 for k in full}), make(full)


def udp(port: int, inode: int, drops: int, family: int = 4) -> tuple[UdpSocket, UdpSocket]:
    def make(d: int) -> UdpSocket:
        return UdpSocket(family, "0.0.0.0", port, "0.0.0.0", 0, 7, 0, 0, 0, inode, d)

    return make(0), make(drops)


def view(ns: NetNamespace, counters: dict[tuple[str, str], int] | None = None, devices=(), sockets=()) -> tuple[NetView, NetView]:
    counters = counters or {}
    return (
        NetView(ns, {k: 0 for k in counters}, tuple(s[0] for s in sockets), tuple(d[0] for d in devices)),
        NetView(ns, dict(counters), tuple(s[1] for s in sockets), tuple(d[1] for d in devices)),
    )


def net(*views, owners: dict[int, tuple[int, str]] | None = None) -> tuple[NetState, NetState]:
    owners = owners or {}
    pids = {inode: (pid,) for inode, (pid, _) in owners.items()}
    comms = {pid: comm for pid, comm in owners.values()}
    return NetState(tuple(v[0] for v in views)), NetState(tuple(v[1] for v in views), socket_pids=pids, comms=comms)


def thread(tid: int, comm: str, cpu: int, run_pct: float, wait_pct: float, policy: str = "other", prio: int = 0,
           kthread: bool = False) -> tuple[ThreadSched, ThreadSched]:
    def make(run: int, wait: int) -> ThreadSched:
        return ThreadSched(tid, tid, comm, cpu, run, wait, policy, prio, kthread)

    return make(10**9, 10**9), make(10**9 + int(run_pct * NS / 100), 10**9 + int(wait_pct * NS / 100))


@dataclass
class Machine:
    """A 2-CPU machine over one second: what each counter did in that second."""

    cpus: tuple[int, ...] = (0, 1)
    softirq: dict[str, list[int]] = field(default_factory=dict)  # runs/s per CPU
    irqs: list[tuple[str, str, list[int]]] = field(default_factory=list)  # (row, name, rate per CPU)
    times: list[list[int]] = field(default_factory=list)  # per CPU: user, nice, system, idle, iowait, irq, softirq, steal (%)
    softnet: dict[int, dict[str, int]] = field(default_factory=dict)  # cpu -> processed/dropped/time_squeeze/received_rps/flow_limit_count
    irqinfo: dict[int, IrqInfo] = field(default_factory=dict)
    sysctl: dict[str, int] = field(default_factory=lambda: dict(SYSCTL))
    net: tuple[NetState, NetState] | None = None
    threads: list[tuple[ThreadSched, ThreadSched]] = field(default_factory=list)
    ksoftirqd_pct: list[float] = field(default_factory=list)

    def pair(self) -> tuple[Snapshot, Snapshot]:
        return self._snap(0), self._snap(1)

    def _snap(self, side: int) -> Snapshot:
        n = len(self.cpus)
        rows = [("LOC", "Local timer interrupts", [0] * n), ("RES", "Rescheduling interrupts", [0] * n),
                ("CAL", "Function call interrupts", [0] * n)]
        rows = [r for r in rows if r[0] not in {x[0] for x in self.irqs}] + list(self.irqs)
        times = self.times or [[10, 0, 0, 90, 0, 0, 0, 0]] * n
        sn = tuple(
            SoftnetRow(c, True, *(side * self.softnet.get(c, {}).get(k, 0) for k in ("processed", "dropped", "time_squeeze")),
                       received_rps=side * self.softnet.get(c, {}).get("received_rps", 0),
                       flow_limit_count=side * self.softnet.get(c, {}).get("flow_limit_count", 0))
            for c in self.cpus
        )
        ks = tuple(ksoftirqd(c, int(side * (self.ksoftirqd_pct or [0.0] * n)[i] * NS / 100)) for i, c in enumerate(self.cpus))
        s = snapshot(
            side,
            interrupts=interrupts(list(self.cpus), [(r, name, [side * v for v in vals]) for r, name, vals in rows]),
            softirqs=softirqs(list(self.cpus), {v: [side * x for x in vals] for v, vals in self.softirq.items()}),
            stat=stat(list(self.cpus), [[1000 + side * x for x in row] for row in times]),
            softnet=Softnet(sn),
            irqinfo=dict(self.irqinfo),
            sysctl=dict(self.sysctl),
            tasks=ks,
            net=self.net[side] if self.net else None,
            threads=tuple(t[side] for t in self.threads),
        )
        return Snapshot(s.taken_ns, s.wall_time, HostInfo("test", "6.18", online_cpus=self.cpus), s.interrupts, s.softirqs, s.stat,
                        s.softnet, s.irqinfo, s.tasks, s.pressure, s.sysctl, s.unreadable, s.origin, s.net, s.threads)
