"""The network stack as the doctor sees it: per namespace, its devices, MIB counters and UDP sockets.

Values only, built by sources/netdev.py, sources/netstat.py, sources/sockets.py and
sources/netns.py (live, inside each namespace, or from a capture), and differenced by
analysis/. Also the scheduler's account of every thread (/proc/PID/task/TID/schedstat), which
says who waited while a CPU ran interrupts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from irqlab.model.unreadable import Unreadable

Counters = Mapping[tuple[str, str], int]  # ("Udp", "RcvbufErrors") -> value


# --- /sys/class/net/DEV -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RxQueue:
    index: int
    rps_cpus: tuple[int, ...] | None  # () = RPS off; None = no CONFIG_RPS
    rps_flow_cnt: int | None


@dataclass(frozen=True, slots=True)
class TxQueue:
    index: int
    xps_cpus: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class NetDevice:
    """One network device as its sysfs directory shows it."""

    name: str
    statistics: Mapping[str, int]  # every file of statistics/: rx_dropped, rx_missed_errors, ...
    rx_queues: tuple[RxQueue, ...]
    tx_queues: tuple[TxQueue, ...]
    threaded: int | None
    napi_defer_hard_irqs: int | None
    gro_flush_timeout_ns: int | None
    numa_node: int | None  # -1: the firmware gave none
    driver: str | None
    ifindex: int | None = None  # its index in its namespace
    # The index of the device it sends through: itself for most; for a veth end, its peer's
    # index (in the peer's namespace); for a VLAN, its lower device's.
    iflink: int | None = None

    def stat(self, name: str) -> int | None:
        """A statistics/ counter (rx_packets, rx_dropped, ...); None when the kernel has none."""
        return self.statistics.get(name)


# --- the netdev generic netlink family: one NAPI instance -----------------------------------


@dataclass(frozen=True, slots=True)
class NapiInstance:
    """One NAPI instance as `napi-get` of the netdev netlink family reports it.

    Documentation/netlink/specs/netdev.yaml (v6.18), attribute-set "napi": the instance
    (ifindex, id, irq, pid) since Linux 6.9; its own configuration since 6.13
    (defer-hard-irqs, gro-flush-timeout, irq-suspend-timeout: net/core/dev.c napi_config)
    and threaded since 6.17. An attribute the kernel did not send is None.
    """

    id: int  # the NAPI id (>= MIN_NAPI_ID 0x101 = 257: ids below are sender_cpu values)
    ifindex: int
    irq: int | None  # the IRQ the driver tied to it (netif_napi_set_irq()), when it did
    pid: int | None  # its napi/DEV-ID kthread while threaded
    defer_hard_irqs: int | None = None
    gro_flush_timeout_ns: int | None = None
    irq_suspend_timeout_ns: int | None = None  # epoll busy poll keeps the IRQ off this long
    threaded: int | None = None  # 0 off, 1 threaded, 2 threaded busy poll (6.18)

    @property
    def suspends_irqs(self) -> bool:
        """Its IRQ may be off because an application busy-polls it (IRQ suspension, 6.13+)."""
        return bool(self.irq_suspend_timeout_ns) or bool(self.defer_hard_irqs and self.gro_flush_timeout_ns)


# --- /proc/net/udp ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UdpSocket:
    """One row of /proc/net/udp or /proc/net/udp6."""

    family: int  # 4 or 6
    local_address: str  # "127.0.0.1", "::1"
    local_port: int
    remote_address: str
    remote_port: int
    state: int  # TCP_ESTABLISHED (1) once connect()ed, else TCP_CLOSE (7)
    tx_queue_bytes: int
    rx_queue_bytes: int
    uid: int
    inode: int
    drops: int | None  # None: a kernel that printed no drops column


# --- namespaces ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NetNamespace:
    """One network namespace."""

    inode: int
    pid: int | None  # the lowest PID in it; None: a named namespace no process is in
    nprocs: int
    comms: tuple[str, ...]  # of its first few processes
    names: tuple[str, ...]  # its names under /run/netns, if any
    ns_path: str  # a file to setns() into: /run/netns/NAME when named, else /proc/PID/ns/net
    host: bool = False  # the namespace the reading process itself is in

    @property
    def label(self) -> str:
        """What a person calls it: "host", its `ip netns` name, or its first processes."""
        if self.host:
            return "host"
        if self.names:
            return f"netns {self.names[0]}"
        if self.comms:
            return f"netns of {self.comms[0]} (pid {self.pid})"
        return f"netns {self.inode}"


@dataclass(frozen=True, slots=True)
class NetView:
    """One namespace's network state at one instant."""

    namespace: NetNamespace
    counters: Counters = field(default_factory=dict)  # /proc/net/snmp, snmp6, netstat
    udp: tuple[UdpSocket, ...] = ()
    devices: tuple[NetDevice, ...] = ()
    unreadable: tuple[Unreadable, ...] = ()
    napis: tuple[NapiInstance, ...] = ()  # the netdev netlink family's NAPI instances
    napi_note: str = ""  # why napis is empty although devices are not ("" when read)

    def napis_of(self, dev: NetDevice) -> tuple[NapiInstance, ...]:
        """The NAPI instances of one of its devices, by ifindex."""
        return tuple(n for n in self.napis if dev.ifindex is not None and n.ifindex == dev.ifindex)


@dataclass(frozen=True, slots=True)
class RefusedProcess:
    """A process whose /proc/PID/ns/net link the kernel refused to this reader (ptrace access check)."""

    pid: int
    comm: str  # "" when unreadable
    # Why the capability check refused: what it holds (CapPrm) that this reader lacks (CapEff),
    # when the reader lacks CAP_SYS_PTRACE. () when that check passes (the reader holds
    # CAP_SYS_PTRACE, or all the process holds): another security module refused. None when
    # either set could not be read.
    missing_caps: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class NetState:
    """Every network namespace this reader could see, the host's first."""

    views: tuple[NetView, ...]
    not_entered: tuple[tuple[NetNamespace, str], ...] = ()  # and why (one line each)
    denied: int = 0  # processes whose namespace link this user may not read
    socket_pids: Mapping[int, tuple[int, ...]] = field(default_factory=dict)  # socket inode -> pids
    comms: Mapping[int, str] = field(default_factory=dict)  # pid -> comm, for socket_pids
    reader_root: bool | None = None  # the live reader ran as root (None: a capture, not known)
    refused: tuple[RefusedProcess, ...] = ()  # the first few denied processes, named

    def view(self, inode: int) -> NetView | None:
        return next((v for v in self.views if v.namespace.inode == inode), None)


# --- the scheduler's account of every thread ------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThreadSched:
    """/proc/PID/task/TID/{stat,schedstat} of one thread: where it ran, how long, how long it waited."""

    tid: int
    pid: int  # its thread group (process)
    comm: str
    last_cpu: int
    run_ns: int  # on a CPU (schedstat field 1)
    wait_ns: int  # runnable but waiting for a CPU (schedstat field 2, the run delay)
    policy: str  # POLICY_NAMES value
    rt_priority: int
    kthread: bool
