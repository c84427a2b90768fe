"""The Snapshot: every interrupt-path counter of one machine, taken at one monotonic instant.

Values only. Parsers in sources/ build them from kernel text, the simulator builds them from
its model, and analysis/ differences two of them. Per-CPU counts are numpy arrays (int64)
because a 1152-CPU /proc/interrupts holds over a million numbers; everything else is plain
Python. Arrays are never mutated after construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from irqlab.model.unreadable import Unreadable

if TYPE_CHECKING:
    from irqlab.model.net import NetState, ThreadSched

# --- /proc/interrupts ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False, slots=True)
class IrqLine:
    """Metadata of one /proc/interrupts row; its counts live in Interrupts.counts."""

    irq: str  # the id as printed: "41", "LOC", "IPI0", "I/O", "Err"
    key: str  # unique within the file: irq, or "LOC#2" for PowerPC's second LOC row
    chip: str = ""  # "IO-APIC", "PCI-MSIX-0000:00:04.0", "GICv3"; "" when absent or "-"
    hwirq: str = ""  # "5", "524288"; "" when absent
    trigger: str = ""  # "edge", "level", "Edge"; "" when absent
    actions: tuple[str, ...] = ()  # irqaction names, "eth0-TxRx-0", "ahci[0000:00:17.0]"
    description: str = ""  # text after the counts of named rows ("Local timer interrupts")
    per_cpu: bool = True  # False for ERR/MIS (one total) and FIQ/PND-like rows with none
    extra: tuple[int, ...] = ()  # counts beyond the header's CPUs (ARM IPIs of offline CPUs)

    @property
    def numbered(self) -> bool:
        """True for a numbered IRQ line (has /proc/irq/N), False for an arch row (LOC, NMI)."""
        return self.irq.isdigit()

    @property
    def name(self) -> str:
        """What a person calls this row: the action names, else the description, else the id."""
        if self.actions:
            return ", ".join(self.actions)
        return self.description or self.irq


@dataclass(frozen=True, eq=False, slots=True)
class Interrupts:
    """/proc/interrupts: one row per line, one column per CPU named in the header."""

    cpus: tuple[int, ...]  # CPU ids from the header labels (online CPUs only)
    lines: tuple[IrqLine, ...]
    counts: np.ndarray  # int64 (len(lines), len(cpus)); 0 where a row has no per-CPU value
    totals: np.ndarray  # int64 (len(lines),): sum of counts and extra, or the single value

    def index(self) -> dict[str, int]:
        """Row position by key."""
        return {line.key: i for i, line in enumerate(self.lines)}


# --- /proc/softirqs -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False, slots=True)
class Softirqs:
    """/proc/softirqs: one row per vector (canonical names), one column per possible CPU."""

    cpus: tuple[int, ...]
    vectors: tuple[str, ...]  # canonical names (IRQ_POLL, never BLOCK_IOPOLL)
    counts: np.ndarray  # int64 (len(vectors), len(cpus))


# --- /proc/stat ---------------------------------------------------------------------------

# Columns of a "cpuN" line, in the kernel's order (fs/proc/stat.c, show_stat()). Older
# kernels print fewer: steal from 2.6.11, guest from 2.6.24, guest_nice from 2.6.33.
CPU_TIME_FIELDS: tuple[str, ...] = (
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "irq",
    "softirq",
    "steal",
    "guest",
    "guest_nice",
)


@dataclass(frozen=True, eq=False, slots=True)
class Stat:
    """/proc/stat: per-CPU times (USER_HZ ticks), the intr and softirq lines, and counters."""

    cpus: tuple[int, ...]  # ids of the cpuN lines (online CPUs)
    times: np.ndarray  # int64 (len(cpus), 10) ticks, -1 where the kernel printed no column
    total_times: np.ndarray  # int64 (10,) the aggregate "cpu" line, -1 where absent
    nfields: int  # how many time columns this kernel prints (4..10)
    intr_total: int | None = None
    # Per-IRQ and per-vector sums are `unsigned int` in show_stat() (fs/proc/stat.c): they wrap
    # at 2^32 like the per-CPU counts. Only intr_total and softirq_total are 64-bit.
    intr: np.ndarray | None = None  # int64 per IRQ number, from 0, summed over CPUs
    softirq_total: int | None = None
    softirq: tuple[int, ...] | None = None  # per vector number, summed over CPUs
    ctxt: int | None = None
    btime: int | None = None
    processes: int | None = None
    procs_running: int | None = None
    procs_blocked: int | None = None

    def column(self, name: str) -> int:
        """Index of a CPU time field by name."""
        return CPU_TIME_FIELDS.index(name)


# --- /proc/net/softnet_stat ---------------------------------------------------------------

# Columns of softnet_stat, in order (net/core/net-procfs.c, softnet_seq_show(), v6.18).
# The kernel that added each is noted; a row has as many as its kernel printed.
SOFTNET_FIELDS: tuple[str, ...] = (
    "processed",
    "dropped",
    "time_squeeze",
    "zero3",
    "zero4",
    "zero5",
    "zero6",
    "zero7",  # 3-7: were fastroute counters, always 0
    "cpu_collision",  # always 0 since 4.x
    "received_rps",  # Linux >= 2.6.35
    "flow_limit_count",  # Linux >= 3.11
    "backlog_len",  # Linux >= 5.10 (input_qlen + process_qlen)
    "cpu",  # Linux >= 5.10 (commit 7d58e6555870, with backlog_len): the row's CPU id
    "input_qlen",  # Linux >= 6.4 (commit 59da2d7b0e99)
    "process_qlen",  # Linux >= 6.4
)
# Rows of offline CPUs have been skipped since 2.6 (softnet_get_online()); only from 5.10 does
# a row say which CPU it is. Widths by kernel: 9 (<= 2.6.34), 10, 11 (3.11), 13 (5.10), 15 (6.4).


@dataclass(frozen=True, slots=True)
class SoftnetRow:
    """One row of softnet_stat: one CPU's NAPI and backlog counters."""

    cpu: int  # from the cpu column (Linux >= 5.10), else the row position (wrong if CPUs are offline)
    cpu_from_column: bool
    processed: int
    dropped: int
    time_squeeze: int
    received_rps: int | None = None
    flow_limit_count: int | None = None
    backlog_len: int | None = None
    input_qlen: int | None = None
    process_qlen: int | None = None
    ncolumns: int = 0


@dataclass(frozen=True, slots=True)
class Softnet:
    """/proc/net/softnet_stat."""

    rows: tuple[SoftnetRow, ...]

    def by_cpu(self) -> dict[int, SoftnetRow]:
        return {row.cpu: row for row in self.rows}


# --- /proc/irq/N and /sys/kernel/irq/N -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spurious:
    """/proc/irq/N/spurious (kernel/irq/proc.c, irq_spurious_proc_show())."""

    count: int  # interrupts counted in the current 100,000 window
    unhandled: int  # of those, unhandled
    last_unhandled_ms: int  # jiffies_to_msecs(desc->last_unhandled)


@dataclass(frozen=True, slots=True)
class IrqInfo:
    """What /proc/irq/N and /sys/kernel/irq/N say about one numbered IRQ; None = unreadable."""

    irq: int
    affinity: tuple[int, ...] | None = None  # smp_affinity_list
    effective_affinity: tuple[int, ...] | None = None  # Linux >= 4.13
    node: int | None = None
    spurious: Spurious | None = None
    actions: tuple[str, ...] | None = None  # /sys/kernel/irq/N/*, Linux >= 4.9 (CONFIG_SPARSE_IRQ)
    chip_name: str | None = None
    hwirq: str | None = None
    name: str | None = None  # the flow handler name ("edge", "fasteoi")
    type: str | None = None  # "edge" or "level"
    wakeup: str | None = None
    per_cpu_count: tuple[int, ...] | None = None  # not read by the sampler (repeats /proc/interrupts)
    # The kernel owns its affinity (IRQD_AFFINITY_MANAGED, or a chip that cannot move it): a write
    # gets EPERM. Read from smp_affinity_list's mode on a live machine (read-only then,
    # kernel/irq/proc.c); None in a capture. False only means the file is writable: kernels
    # before that change made it writable for every IRQ and refuse the write itself.
    managed: bool | None = None


# --- tasks --------------------------------------------------------------------------------

# Scheduling policies by number (include/uapi/linux/sched.h).
POLICY_NAMES: dict[int, str] = {
    0: "other",
    1: "fifo",
    2: "rr",
    3: "batch",
    5: "idle",
    6: "deadline",
    7: "ext",  # SCHED_EXT, Linux >= 6.12
}


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """A kernel thread of the interrupt path: ksoftirqd/N or irq/N-name."""

    pid: int
    comm: str  # "ksoftirqd/1", "irq/41-virtio3-rx" (cut at 15 characters before ~5.17, 63 after)
    kind: str  # "ksoftirqd" or "irq"
    cpu: int | None  # ksoftirqd's CPU; None for IRQ threads
    irq: int | None  # the IRQ of an irq/N-name thread
    utime_ticks: int
    stime_ticks: int
    run_ns: int | None  # /proc/PID/schedstat run time (None without CONFIG_SCHEDSTATS)
    policy: str  # POLICY_NAMES value
    rt_priority: int
    nice: int
    allowed_cpus: tuple[int, ...] | None  # Cpus_allowed_list
    last_cpu: int | None = None  # processor field of /proc/PID/stat

    @property
    def cpu_ticks(self) -> int:
        return self.utime_ticks + self.stime_ticks


# --- /proc/pressure/irq --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pressure:
    """/proc/pressure/irq (Linux >= 6.1 with CONFIG_IRQ_TIME_ACCOUNTING): "full" only."""

    avg10: float
    avg60: float
    avg300: float
    total_us: int


# --- the snapshot ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostInfo:
    """Who the machine is, for headers and reports."""

    hostname: str = ""
    kernel: str = ""  # /proc/sys/kernel/osrelease
    machine: str = ""  # uname machine when known
    clk_tck: int = 100  # USER_HZ, the unit of /proc/stat and /proc/PID/stat
    possible_cpus: tuple[int, ...] | None = None
    online_cpus: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class KernelInfo:
    """What kind of kernel this is, where it changes how the interrupt path runs (sources/kernel.py)."""

    release: str = ""  # /proc/sys/kernel/osrelease, "6.18.44-fc-v1300"
    version: str = ""  # /proc/sys/kernel/version, what `uname -v` prints: "#1 SMP PREEMPT_DYNAMIC ..."
    # PREEMPT_RT (mainline from 6.12): every handler a thread, softirqs in task context.
    realtime: bool = False
    realtime_from: str = ""  # "/sys/kernel/realtime" or "uname -v"
    preempt: str | None = None  # the active preemption model ("full", "lazy", ...) when known
    preempt_dynamic: bool = False  # PREEMPT_DYNAMIC: the model is chosen at boot (preempt=) or at run time
    # CONFIG_IRQ_TIME_ACCOUNTING: True, False, or None when nothing tells.
    irq_time_accounting: bool | None = None
    irq_time_evidence: str = ""  # why irq_time_accounting is what it is
    release_tuple: tuple[int, int] | None = None  # (6, 18)

    @property
    def bh_workqueues(self) -> bool:
        """Linux >= 6.9 (commit 4cb1ef64609f "workqueue: Implement BH workqueues"): tasklets move to BH workqueues."""
        return self.release_tuple is not None and self.release_tuple >= (6, 9)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """How one source fared in one sample (node_exporter's per-collector success and duration)."""

    source: str  # "interrupts", "softirqs", "stat", "softnet", "irqinfo", "tasks", "net", ...
    duration_s: float
    success: bool
    error: str = ""
    reused: bool = False  # not re-read this sample: its refresh period had not passed


@dataclass(frozen=True, eq=False, slots=True)
class Snapshot:
    """Every counter irqlab reads, taken at taken_ns (time.monotonic_ns() or a capture's)."""

    taken_ns: int
    wall_time: float  # seconds since the epoch, for display only
    host: HostInfo
    interrupts: Interrupts | None = None
    softirqs: Softirqs | None = None
    stat: Stat | None = None
    softnet: Softnet | None = None
    irqinfo: dict[int, IrqInfo] = field(default_factory=dict)
    tasks: tuple[TaskInfo, ...] = ()
    pressure: Pressure | None = None
    sysctl: dict[str, int] = field(default_factory=dict)  # "net.core.netdev_budget": 300
    unreadable: tuple[Unreadable, ...] = ()
    origin: str = "live"  # "live", a capture directory, or "sim"
    # Read only when a command asks (SampleSpec.net / .threads): the doctor's causal chain.
    net: NetState | None = None  # every network namespace's devices, MIB counters, UDP sockets
    threads: tuple[ThreadSched, ...] = ()  # every thread's run and wait time, where it last ran
    # When the threads were read, on taken_ns's clock: they are read after the counters (up to
    # a few hundred ms later with many namespaces), so their shares use their own interval.
    threads_ns: int | None = None
    statuses: tuple[SourceStatus, ...] = ()  # each source's success and read time (sources/sampler.py)
    kernel: KernelInfo | None = None  # PREEMPT_RT, preemption model, IRQ time accounting (sources/kernel.py)
