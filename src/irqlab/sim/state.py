"""The records the mechanisms share: execution contexts, tasks, per-CPU softirq and NAPI state.

Plain state with no behaviour beyond its own fields, at the bottom of sim/'s imports: cpu.py
runs Frames and Tasks, softirq.py keeps a CPU's SoftirqState, napi.py, sender.py and
fastpath.py share Napi and Softnet; machine.py builds one of each per CPU and hands it over.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from irqlab.model.vectors import NR_SOFTIRQS

BLOCK = "block"  # a task sleeps until woken
RESCHED = "resched"  # cond_resched(): switch if need_resched

IRQ, SOFTIRQ, USER, SYSTEM, IDLE = "irq", "softirq", "user", "system", "idle"
ACCOUNTS = (IRQ, SOFTIRQ, USER, SYSTEM, IDLE)

# kernel/sched/core.c sched_prio_to_weight[]: nice 0 is 1024, each step about 1.25x.
NICE_0_WEIGHT = 1024


def nice_weight(nice: int) -> float:
    return NICE_0_WEIGHT / (1.25**nice)


class Frame:
    """An interrupt context on a CPU's stack: a hardirq handler or an irq_exit softirq run."""

    __slots__ = ("kind", "gen", "remaining", "acct", "line")

    def __init__(self, kind: str, gen: Any, line: Any = None) -> None:
        self.kind = kind  # IRQ or SOFTIRQ
        self.gen = gen
        self.remaining: int | None = None
        self.acct = kind
        self.line = line


class Task:
    """A schedulable thread: its generator body and its scheduling state."""

    __slots__ = ("name", "pid", "cpu", "policy", "prio", "weight", "vruntime", "running", "gen",
                 "remaining", "acct", "run_ns", "wake_ns", "bh", "kthread", "slice_start_ns",
                 "latency", "switches", "kind", "nice", "data", "pi_saved", "wait_ns", "queued_ns")

    def __init__(self, name: str, pid: int, cpu: int, policy: str = "other", prio: int = 0, nice: int = 0, kthread: bool = False) -> None:
        self.name, self.pid, self.cpu = name, pid, cpu
        self.policy, self.prio, self.nice = policy, prio, nice
        self.weight = nice_weight(nice)
        self.vruntime = 0.0
        self.running = False  # TASK_RUNNING (on a run queue or current)
        self.gen: Any = None
        self.remaining: int | None = None
        self.acct = SYSTEM if kthread else USER
        self.run_ns = 0  # /proc/PID/schedstat field 1
        self.wait_ns = 0  # field 2, run_delay: runnable on a run queue, not running (up to its last pick)
        self.queued_ns: int | None = None  # since when it has waited on a run queue (None: not queued)
        self.wake_ns: int | None = None  # when it became runnable (scheduling latency)
        self.bh = 0  # softirq count held (local_bh_disable / serving softirq)
        self.kthread = kthread
        self.slice_start_ns = 0
        self.latency: Any = None  # Histogram of timer expiry -> clock read (periodic tasks)
        self.switches = 0
        self.kind = "task"
        self.data: Any = None
        self.pi_saved: tuple[str, int] | None = None  # (policy, prio) before a priority-inheritance boost

    @property
    def rt(self) -> bool:
        return self.policy in ("fifo", "rr")


class SoftirqState:
    """Per-CPU softirq state: the pending mask, raise times, /proc/softirqs counts, statistics."""

    def __init__(self, ksoftirqd: Task) -> None:
        self.pending = 0
        self.raised_ns = [0] * NR_SOFTIRQS
        self.counts = [0] * NR_SOFTIRQS
        self.ksoftirqd = ksoftirqd
        self.ksoftirqd_vectors = [0] * NR_SOFTIRQS  # vector runs inside ksoftirqd
        self.restarts = 0  # handle_softirqs() "goto restart"
        self.handoffs = 0  # handle_softirqs() ended with work left: wakeup_softirqd()
        self.wakeups = 0  # every wakeup_softirqd()
        self.deferred_irq_exit = 0  # 4.9..6.4: irq_exit left the work to a running ksoftirqd
        self.irq_exit_runs = 0
        self.bh_enable_runs = 0
        self.ksoftirqd_runs = 0
        self.task_vectors = [0] * NR_SOFTIRQS  # vector runs in other tasks' local_bh_enable() (IRQ threads, ...)
        # PREEMPT_RT struct softirq_ctrl: the per-CPU BH local_lock (an rtmutex) and who waits for it
        self.bh_owner: Task | None = None
        self.bh_waiters: list[Task] = []
        self.timer_pending = 0  # pending_timer_softirq: TIMER/HRTIMER raised for ktimers/N (6.13+ forced threading)
        self.ktimerd: Task | None = None
        self.bh_tasks = 0  # PREEMPT_RT softirq_ctrl.cnt: tasks inside a BH-disabled section on this CPU
        self.bh_lock_waits = 0  # local_bh_disable() calls that had to block
        self.pi_boosts = 0  # owners that inherited a waiter's priority


class Napi:
    """struct napi_struct: SCHED state, weight, the poll function, defer_hard_irqs count."""

    __slots__ = ("name", "weight", "scheduled", "poll", "defer_count", "index", "owner")

    def __init__(self, name: str, weight: int, poll: Any, owner: Any, index: int) -> None:
        self.name, self.weight, self.poll, self.owner, self.index = name, weight, poll, owner, index
        self.scheduled = False  # NAPI_STATE_SCHED
        self.defer_count = 0


class Softnet:
    """struct softnet_data of one CPU: poll_list, backlog, and the softnet_stat counters."""

    def __init__(self, backlog: Napi) -> None:
        self.poll_list: list[Napi] = []
        self.processed = 0
        self.dropped = 0
        self.time_squeeze = 0
        self.backlog_q: deque[list[Any]] = deque()  # [line, packets] runs in input_pkt_queue
        self.backlog_len = 0
        self.backlog = backlog
        # v6.4+ (8b43fd3d1d7d): while set, ____napi_schedule() and napi_schedule_rps() do not raise
        # NET_RX; net_rx_action() looks at poll_list again before it returns
        self.in_net_rx_action = False
        self.rps_ipi_list: list[tuple[Any, Napi, int]] = []  # (target CPU, its backlog NAPI, IPI wake delay)
        self.received_rps = 0  # softnet_stat column 10: RPS IPIs taken (rps_trigger_softirq())
