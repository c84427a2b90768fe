"""CPU isolation: for each CPU meant to be quiet, what may land there, what did, why, and the fix. Pure.

Input: the rates between two snapshots (read with net and threads), the CPUs declared quiet (with
the declarations that say so) and which of them are nohz_full. The NET_RX causes come from the
doctor's causal model (analysis/causes.py, `sources_of()`): RPS steering, a NIC queue's
interrupt, a sender's backlog. As root, a trace of the sample (analysis/isolation_trace.py) names
who caused each offender: the function an IPI ran and its sender's call site, the timer and work
functions that ran there.

Verdict thresholds (docs/isolation.md):

- Every class of interruption (one device IRQ, one IPI kind, one softirq vector) is an offender
  from QUIET_RATE_PER_S = 1 per second on. An isolated CPU should take no device interrupt, no
  IPI and run no softirq at all while its task runs; one per second is the floor below which a
  2-3 s sample cannot tell a regular source from one stray event (a single event in 2 s is 0.5/s).
- The local timer (LOC) of a nohz_full CPU is tolerated up to NOHZ_TICK_RATE_PER_S = 2 per
  second: with one runnable task its tick stops, but timekeeping and deferred work can still fire
  it about once a second (kernel/time/tick-sched.c, tick_nohz_stop_tick(): the next event is at
  most one jiffy-based timer away; sched_tick_remote() keeps the 1 Hz bookkeeping on a
  housekeeping CPU from 4.17). A CPU without nohz_full ticks at CONFIG_HZ while it runs anything,
  and that counts as noise: the fix is nohz_full=.
- A CPU is `noisy` when any offender is at or above its threshold, else `quiet`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from irqlab.analysis.actions import Action, irq_affinity_action, rps_action, task_affinity_action
from irqlab.analysis.causes import Source, VectorTime, nic_queues, sources_of
from irqlab.analysis.delta import Rates
from irqlab.analysis.irqvectors import managed_landing
from irqlab.analysis.isolation_trace import TraceAttribution, Traced
from irqlab.analysis.netdelta import NetRates, ThreadShare, net_rates, thread_shares
from irqlab.analysis.placement import Balancer
from irqlab.cpulist import format_cpulist, format_cpumask
from irqlab.model.vectors import arch_meaning
from irqlab.units import format_rate

QUIET_RATE_PER_S = 1.0
NOHZ_TICK_RATE_PER_S = 2.0

IPI_ROWS = ("RES", "CAL", "TLB", "IWI")  # x86; arm64 prints IPI0..IPI7

# What a softirq vector on an isolated CPU usually means, and what removes it (no command:
# each needs a boot parameter or a change to the workload).
SOFTIRQ_CAUSES: dict[str, tuple[str, str]] = {
    "TIMER": ("timer-list timers expired here (raised from the tick)",
              "nohz_full= (boot) moves unpinned timers to housekeeping CPUs (kernel/time/timer.c, get_nohz_timer_target())"),
    "HRTIMER": ("soft hrtimers expired here", "find the timer's owner with the timer:hrtimer_expire_entry tracepoint"),
    "RCU": ("RCU callbacks and grace-period work ran here", "rcu_nocbs= (boot, implied by nohz_full=) runs the callbacks in rcuo threads"),
    "SCHED": ("scheduler load balancing, raised from the tick", "isolcpus=domain,LIST (boot) takes the CPU out of the scheduler domains"),
    "NET_TX": ("transmit completions or qdisc runs of tasks sending from this CPU", "send from housekeeping CPUs; set xps_cpus"),
    "BLOCK": ("block I/O completions", "move the disk queue's IRQ; managed queues need isolcpus=managed_irq,LIST (boot)"),
    "IRQ_POLL": ("irq_poll (block driver polling)", "move the driver's IRQ"),
    "TASKLET": ("tasklets scheduled by interrupts that ran here", "move the IRQ that schedules them"),
    "HI": ("high-priority tasklets scheduled by interrupts that ran here", "move the IRQ that schedules them"),
    "NET_RX": ("packets received on this CPU", "find the queue that steers them here"),
}

ROW_CAUSES: dict[str, tuple[str, str]] = {
    "RES": ("rescheduling IPIs: tasks woken here from other CPUs, or the scheduler kicking this CPU",
            "keep only the workload's pinned task here (taskset, cpusets); isolcpus=domain,LIST (boot)"),
    "CAL": ("function-call IPIs (smp_call_function: membarrier, irq_work elsewhere, kernel code running on every CPU)",
            "run irqlab isolation as root: it traces csd:csd_queue_cpu and ipi:ipi_send_cpu to name the function and its sender"),
    "TLB": ("TLB shootdowns: a process with threads on other CPUs changed its mappings (munmap, mprotect)",
            "keep the workload's threads off housekeeping CPUs, or its address space stable"),
    "IWI": ("irq_work raised here (perf, printk, RCU, the scheduler)", "nohz_full= (boot); find it with the irq_work tracepoints"),
    "NMI": ("non-maskable interrupts (perf counters, the NMI watchdog)", "sysctl -w kernel.nmi_watchdog=0 stops the watchdog"),
    "PMI": ("performance-monitoring interrupts (perf sampling)", "stop the perf session that samples this CPU"),
}


# Functions the trace names (a function-call IPI's function, a timer's or a work item's), what
# each means on a quiet CPU and what removes it. Keys are kallsyms names without "+0x..".
FUNCTION_CAUSES: dict[str, tuple[str, str]] = {
    "rps_trigger_softirq": ("RPS: another CPU steers received packets here (net/core/dev.c)",
                            "set the queue's rps_cpus to housekeeping CPUs (the NET_RX offender's fix)"),
    "do_sync_core": ("kernel text patching (static keys, ftrace, kprobes, BPF trampolines): every CPU serialises",
                     "do not toggle static keys, ftrace or BPF programs while the workload runs"),
    "flush_tlb_func": ("TLB shootdown of a process with threads on this CPU",
                       "keep the workload's threads off housekeeping CPUs, or its address space stable"),
    "tick_nohz_handler": ("the scheduler tick (an hrtimer, kernel/time/tick-sched.c)",
                          "boot with nohz_full=LIST and leave one runnable task on the CPU"),
    "tick_nohz_lowres_handler": ("the scheduler tick (low-resolution mode)", "boot with nohz_full=LIST"),
    "hrtimer_wakeup": ("a task here slept with nanosleep/clock_nanosleep and was woken (the workload itself, or a stray task)",
                       "keep only the workload's task on the CPU (taskset, cpusets)"),
    "process_timeout": ("a task here slept in schedule_timeout()", "keep only the workload's task on the CPU (taskset, cpusets)"),
    "watchdog_timer_fn": ("the soft-lockup watchdog's hrtimer (kernel/watchdog.c)",
                          "sysctl -w kernel.watchdog_cpumask=HOUSEKEEPING (or boot with nohz_full=, which excludes the CPU)"),
    "vmstat_update": ("per-CPU VM statistics folding (mm/vmstat.c)",
                      "nohz_full= (boot) lets an idle-looping CPU skip it; sysctl -w vm.stat_interval=N makes it rarer"),
    "delayed_work_timer_fn": ("the timer of a delayed work item queued on this CPU", "see the work item it queues (work below)"),
    "blk_mq_run_work_fn": ("a block device's queue run in kblockd on this CPU", "move the disk's queue IRQ; isolcpus=managed_irq for managed ones"),
    "sched_ttwu_pending": ("remote wake-ups queued to this CPU's wake list (kernel/sched/core.c ttwu_queue_wakelist())",
                           "keep the tasks that wake each other on one side: the workload's on the quiet CPU, the rest on housekeeping CPUs"),
    "lru_add_drain_per_cpu": ("lru_add_drain_all(): a drain of this CPU's page lists", "avoid mlock/munmap-heavy work on other CPUs while the workload runs"),
}
WORK_HINT = ("unbound work: echo {mask} > /sys/devices/virtual/workqueue/cpumask keeps it on housekeeping CPUs; "
             "per-CPU work follows the task, timer or interrupt that queues it here")


def function_cause(what: str) -> tuple[str, str]:
    """(meaning, hint) of a traced function ("rps_trigger_softirq+0x0" -> its row); ("", "") unknown."""
    return FUNCTION_CAUSES.get(what.partition("+")[0], ("", ""))


@dataclass(frozen=True, slots=True)
class Allowed:
    """One thing permitted to land on the CPU."""

    kind: str  # "irq", "managed-irq", "rps", "xps", "irq-thread", "napi-thread", "irqbalance"
    name: str
    detail: str


@dataclass(frozen=True, slots=True)
class Offender:
    """One class of interruption that landed on the CPU during the sample."""

    kind: str  # "irq", "timer", "ipi", "softirq", "arch", "work" (traced)
    name: str  # "IRQ 38 virtio2-input.0", "LOC", "CAL", "NET_RX"
    rate_per_s: float
    threshold_per_s: float
    cause: str
    action: Action | None = None  # the write that removes it, with its undo
    hint: str = ""  # what removes it when no single write does

    @property
    def over(self) -> bool:
        return self.rate_per_s >= self.threshold_per_s


@dataclass(frozen=True, slots=True)
class CpuIsolation:
    cpu: int
    declared: tuple[str, ...]  # "isolcpus=managed_irq,domain", "nohz_full", "--cpus"
    nohz_full: bool
    allowed: tuple[Allowed, ...]
    offenders: tuple[Offender, ...]  # at or above their threshold, most frequent first
    tolerated: tuple[Offender, ...]  # seen, but below their threshold

    @property
    def verdict(self) -> str:
        return "noisy" if self.offenders else "quiet"


@dataclass(frozen=True, slots=True)
class IsolationReport:
    interval_s: float
    housekeeping: tuple[int, ...]
    cpus: tuple[CpuIsolation, ...]
    trace: TraceAttribution | None = None  # None: not traced (trace_note says why)
    trace_note: str = ""


# --- what may land ----------------------------------------------------------------------------


def _irq_names(rates: Rates) -> dict[str, str]:
    irq = rates.after.interrupts
    return {line.irq: line.name for line in (irq.lines if irq else ()) if line.numbered}


def allowed_on(cpu: int, rates: Rates, balancer: Balancer | None = None, managed_irq: frozenset[int] = frozenset()) -> tuple[Allowed, ...]:
    """IRQs whose affinity includes cpu, RPS/XPS queues that name it, IRQ and NAPI threads that may run there;
    a running irqbalance not banned from it."""
    snap, names = rates.after, _irq_names(rates)
    out: list[Allowed] = []
    if balancer is not None and cpu not in balancer.banned_cpus:
        banned = format_cpulist(balancer.banned_cpus) or "none"
        out.append(Allowed("irqbalance", f"irqbalance (pid {balancer.pid})",
                           f"may place IRQs here: CPU{cpu} is not banned (it bans CPUs {banned}: {balancer.banned_by}); "
                           f"add it to IRQBALANCE_BANNED_CPULIST in /etc/default/irqbalance or /etc/sysconfig/irqbalance and restart it"))
    for n, info in sorted(snap.irqinfo.items()):
        aff, eff = info.affinity or (), info.effective_affinity or ()
        if cpu not in aff and cpu not in eff:
            continue
        name = names.get(str(n)) or ", ".join(info.actions or ()) or "-"
        detail = f"smp_affinity_list {format_cpulist(aff) or '-'}, effective {format_cpulist(eff) or '-'}"
        if info.managed and managed_irq:
            landing, how = managed_landing(aff, managed_irq, snap.host.online_cpus or aff)
            if cpu not in landing and cpu not in eff:
                continue  # isolcpus=managed_irq keeps it on a housekeeping CPU of its mask
            detail += f"; {how}"
        out.append(Allowed("managed-irq" if info.managed else "irq", f"IRQ {n} {name}", detail))
    for view in snap.net.views if snap.net else ():
        for d in view.devices:
            for q in d.rx_queues:
                if q.rps_cpus and cpu in q.rps_cpus:
                    out.append(Allowed("rps", f"{d.name} rx-{q.index}", f"rps_cpus={format_cpumask(q.rps_cpus)} ({view.namespace.label})"))
            for t in d.tx_queues:
                if t.xps_cpus and cpu in t.xps_cpus:
                    out.append(Allowed("xps", f"{d.name} tx-{t.index}", f"xps_cpus={format_cpumask(t.xps_cpus)} ({view.namespace.label})"))
    seen_napi = set()
    for task in snap.tasks:
        if task.kind in ("irq", "napi") and task.allowed_cpus and cpu in task.allowed_cpus:
            kind = "irq-thread" if task.kind == "irq" else "napi-thread"
            seen_napi.add(task.pid)
            last = f", last ran on CPU{task.last_cpu}" if task.last_cpu is not None else ""
            out.append(Allowed(kind, f"{task.comm} (pid {task.pid})", f"allowed CPUs {format_cpulist(task.allowed_cpus)}{last}"))
        elif task.kind == "napi":
            seen_napi.add(task.pid)  # its allowed CPUs were read and exclude this CPU
    for th in snap.threads:
        # Only when the task list did not read it (a capture without /proc/PID/status).
        if th.kthread and th.comm.startswith("napi/") and th.last_cpu == cpu and th.tid not in seen_napi:
            out.append(Allowed("napi-thread", f"{th.comm} (pid {th.tid})", f"last ran on CPU{cpu} (its allowed CPUs were not read)"))
    return tuple(out)


# --- what did land ----------------------------------------------------------------------------


def _cpus(cpus: tuple[int, ...]) -> str:
    return f"CPU{cpus[0]}" if len(cpus) == 1 else f"CPUs {format_cpulist(cpus)}"


def _moved(mask: tuple[int, ...], quiet: set[int], housekeeping: tuple[int, ...]) -> tuple[int, ...]:
    """mask without the quiet CPUs; the housekeeping CPUs when nothing of it is left."""
    kept = tuple(c for c in mask if c not in quiet)
    return kept or housekeeping


def _irq_offender(rates: Rates, row: str, name: str, r: float, cpu: int, quiet: set[int], hk: tuple[int, ...],
                  queues: Mapping[str, tuple[str, int]]) -> Offender:
    info = rates.after.irqinfo.get(int(row))
    label = f"IRQ {row} {name}"
    nic = f"; NIC queue {queues[row][0]} rx-{queues[row][1]}: its NET_RX runs here too" if row in queues else ""
    if info is None or info.affinity is None:
        return Offender("irq", label, r, QUIET_RATE_PER_S, f"device interrupt on CPU{cpu}; its affinity could not be read{nic}")
    cause = (f"smp_affinity_list {format_cpulist(info.affinity)} includes CPU{cpu}"
             + (f" (effective {format_cpulist(info.effective_affinity)})" if info.effective_affinity else "") + nic)
    if info.managed:
        return Offender("irq", label, r, QUIET_RATE_PER_S, cause + "; managed by the kernel (a write is refused)",
                        hint=f"boot with isolcpus=managed_irq,{format_cpulist(sorted(quiet))}: managed IRQs then avoid these CPUs "
                        "while a housekeeping CPU of their mask is online")
    new = _moved(info.affinity, quiet, hk)
    if not new:
        return Offender("irq", label, r, QUIET_RATE_PER_S, cause, hint="every online CPU is declared quiet: no CPU to move it to")
    act = irq_affinity_action(row, info.affinity, new, f"IRQ {row} may be delivered to CPU{cpu}", f"its interrupts land on {_cpus(new)}")
    return Offender("irq", label, r, QUIET_RATE_PER_S, cause, act)


def _row_offender(row: str, r: float, cpu: int, nohz: bool, quiet: set[int]) -> Offender:
    if row == "LOC":
        if nohz:
            return Offender("timer", "LOC", r, NOHZ_TICK_RATE_PER_S,
                            f"the tick did not stop on nohz_full CPU{cpu}: more than one runnable task, a POSIX CPU timer, "
                            "perf events, or timers armed there",
                            hint="leave one runnable task on the CPU; find the timers with the timer:* tracepoints")
        return Offender("timer", "LOC", r, QUIET_RATE_PER_S,
                        f"local timer interrupts: CPU{cpu} is not nohz_full, so it ticks at CONFIG_HZ whenever it runs a task",
                        hint=f"boot with nohz_full={format_cpulist(sorted(quiet))} (kernel command line; needs a reboot)")
    cause, hint = ROW_CAUSES.get(row, (arch_meaning(row, f"{row} interrupts"), ""))
    kind = "ipi" if row in IPI_ROWS or row.startswith("IPI") else "arch"
    return Offender(kind, row, r, QUIET_RATE_PER_S, cause, hint=hint)


def _net_rx_fix(src: Source, cpu: int, quiet: set[int], hk: tuple[int, ...], rates: Rates) -> tuple[Action | None, str]:
    if src.kind == "rps" and src.target and src.device is not None and src.queue is not None and src.mask is not None:
        new = _moved(src.mask, quiet, hk)
        if not new:
            return None, "every online CPU is declared quiet: no CPU to steer to"
        return rps_action(src.namespace, src.device, src.queue, src.mask, new,
                          f"rps_cpus={format_cpumask(src.mask)} steers packets of {src.device} rx-{src.queue} to CPU{cpu}",
                          f"its packets are processed on {_cpus(new)}"), ""
    if src.kind == "rps" and not src.target:
        return None, (f"CPU{cpu} only raises the RPS IPIs for packets that tasks running on it send or receive: "
                      f"move those tasks to the housekeeping CPUs ({format_cpulist(hk) or '-'}) and keep only the workload here")
    if src.kind == "nic-queue" and src.irq is not None:
        info = rates.after.irqinfo.get(int(src.irq)) if src.irq.isdigit() else None
        if info is not None and info.affinity is not None and not info.managed and _moved(info.affinity, quiet, hk):
            new = _moved(info.affinity, quiet, hk)
            return irq_affinity_action(src.irq, info.affinity, new, f"the queue's interrupt lands on CPU{cpu}",
                                       f"its NET_RX runs on {_cpus(new)}"), ""
        return None, "the queue's interrupt cannot be moved (managed or unreadable): steer its packets with rps_cpus"
    if src.kind == "backlog" and src.pid is not None and hk:
        online = rates.after.host.online_cpus or tuple(sorted(set(hk) | quiet))
        return task_affinity_action(src.pid, online, hk, f"pid {src.pid} sends from CPU{cpu}, so the receive work runs there",
                                    f"its sends and their NET_RX run on {_cpus(hk)}"), ""
    return None, SOFTIRQ_CAUSES["NET_RX"][1]


def _received_rps(rates: Rates, cpu: int) -> float:
    sn = rates.softnet
    if sn is None or cpu not in sn.cpus:
        return 0.0
    return float(np.nan_to_num(sn.field("received_rps")[sn.cpus.index(cpu)]))


def _net_rx_offender(r: float, cpu: int, rates: Rates, net: NetRates | None, threads: tuple[ThreadShare, ...],
                     quiet: set[int], hk: tuple[int, ...], cal: float) -> tuple[Offender, float]:
    """NET_RX with its main source; and the function-call IPIs that source explains (RPS IPIs)."""
    srcs = sources_of(VectorTime("NET_RX", cpu, r, 0.0, True), rates, net, threads)
    src = srcs[0]
    folded = 0.0
    cause = f"NET_RX via {src.text}"  # "RPS: rps_cpus=...", "NIC queue: IRQ 38 ...", "backlog of CPU1: ..."
    if src.kind == "rps" and src.target:
        folded = min(cal, _received_rps(rates, cpu))
        if folded > 0 and "(CAL)" not in src.text:
            cause += f"; arrives as {format_rate(folded)}/s function-call IPIs (CAL) from the CPU that received the packets"
    act, hint = _net_rx_fix(src, cpu, quiet, hk, rates)
    return Offender("softirq", "NET_RX", r, QUIET_RATE_PER_S, cause, act, hint), folded


def _landed(cpu: int, nohz: bool, rates: Rates, net: NetRates | None, threads: tuple[ThreadShare, ...],
            quiet: set[int], hk: tuple[int, ...]) -> list[Offender]:
    out: list[Offender] = []
    row_rate: dict[str, float] = {}
    irq = rates.interrupts
    queues = nic_queues(rates, net.namespaces[0] if net and net.namespaces else None)
    if irq is not None and cpu in irq.cpus:
        j = irq.cpus.index(cpu)
        for k, line in enumerate(irq.lines):
            r = float(np.nan_to_num(irq.rate[k, j]))
            if r > 0:
                row_rate[line.irq] = row_rate.get(line.irq, 0.0) + r
                if line.numbered:
                    out.append(_irq_offender(rates, line.irq, line.name, r, cpu, quiet, hk, queues))
    folded = 0.0
    soft = rates.softirqs
    if soft is not None and cpu in soft.cpus:
        j = soft.cpus.index(cpu)
        for v, vector in enumerate(soft.vectors):
            r = float(np.nan_to_num(soft.rate[v, j]))
            if r <= 0:
                continue
            if vector == "NET_RX":
                off, folded = _net_rx_offender(r, cpu, rates, net, threads, quiet, hk, row_rate.get("CAL", 0.0))
                out.append(off)
            else:
                cause, hint = SOFTIRQ_CAUSES.get(vector, (f"{vector} softirq", ""))
                out.append(Offender("softirq", vector, r, QUIET_RATE_PER_S, cause, hint=hint))
    for row, r in row_rate.items():
        if row.isdigit():
            continue
        r -= folded if row == "CAL" else 0.0
        if r > 0:
            out.append(_row_offender(row, r, cpu, nohz, quiet))
    return sorted(out, key=lambda o: -o.rate_per_s)


# --- who caused it: the trace --------------------------------------------------------------------

# Which traced sources explain which offender: (offender kind, name) -> traced kinds.
TRACED_FOR: dict[tuple[str, str], tuple[str, ...]] = {
    ("ipi", "CAL"): ("call",), ("ipi", "TLB"): ("call",), ("ipi", "RES"): ("resched",),
    ("timer", "LOC"): ("hrtimer",), ("softirq", "TIMER"): ("timer",), ("softirq", "HRTIMER"): ("hrtimer",),
    ("softirq", "NET_RX"): ("call",),
}


def _traced_list(ts: tuple[Traced, ...], limit: int = 3) -> str:
    more = f", {len(ts) - limit} more" if len(ts) > limit else ""
    return ", ".join(f"{t.text} {format_rate(t.rate_per_s)}/s" for t in ts[:limit]) + more


def _with_trace(o: Offender, ts: tuple[Traced, ...]) -> Offender:
    """The offender with the traced sources that explain it in its cause, and the first one's hint."""
    if o.kind == "softirq" and o.name == "NET_RX":
        ts = tuple(t for t in ts if t.what.startswith("rps_trigger_softirq"))
    elif o.name == "TLB":
        ts = tuple(t for t in ts if t.what.startswith("flush_tlb_func"))
    if not ts:
        return o
    meaning, hint = function_cause(ts[0].what)
    if not hint and ts[0].kind == "call":
        who = ",".join(f"CPU{c}" for c in ts[0].senders) or "another CPU"
        hint = (f"the function above runs here at {who}'s request ({ts[0].site or 'call site unknown'}): "
                "the caller targets this CPU (often on behalf of a task or mm that runs here): change or stop that caller")
    cause = f"{o.cause}; traced: {_traced_list(ts)}" + (f" ({meaning})" if meaning and o.name != "NET_RX" else "")
    keep = o.action is not None or o.name in ("NET_RX", "LOC") or not hint
    return Offender(o.kind, o.name, o.rate_per_s, o.threshold_per_s, cause, o.action, o.hint if keep else hint)


def _work_offenders(work: tuple[Traced, ...], hk: tuple[int, ...]) -> list[Offender]:
    out = []
    for t in work:
        meaning, hint = function_cause(t.what)
        cause = f"workqueue function {t.what} ran here in a kworker" + (f": {meaning}" if meaning else "")
        out.append(Offender("work", t.what, t.rate_per_s, QUIET_RATE_PER_S, cause,
                            hint=hint or WORK_HINT.format(mask=format_cpumask(hk) if hk else "MASK")))
    return out


def _attributed(landed: list[Offender], cpu: int, trace: TraceAttribution, hk: tuple[int, ...]) -> list[Offender]:
    out = [_with_trace(o, trace.of(cpu, *TRACED_FOR[(o.kind, o.name)])) if (o.kind, o.name) in TRACED_FOR else o
           for o in landed]
    out += _work_offenders(trace.of(cpu, "work"), hk)
    return sorted(out, key=lambda o: -o.rate_per_s)


def isolation_report(rates: Rates, quiet: Mapping[int, tuple[str, ...]], nohz_full: frozenset[int],
                     trace: TraceAttribution | None = None, trace_note: str = "",
                     balancer: Balancer | None = None) -> IsolationReport:
    """Each declared-quiet CPU: what may land there, what did during the sample, and a verdict.

    The network state and the threads, when the snapshots carry them, feed the NET_RX causes as
    they feed the doctor's (analysis/doctor.py, root_causes()).
    """
    b, a = rates.before, rates.after
    net = net_rates(b.net, a.net, rates.interval_ns) if a.net is not None and b.net is not None else None
    threads = thread_shares(b.threads, a.threads, rates.interval_ns) if a.threads and b.threads else ()
    online = rates.after.host.online_cpus or (rates.interrupts.cpus if rates.interrupts else ())
    qset = set(quiet)
    # isolcpus=managed_irq,LIST as the declarations name it ("isolcpus=managed_irq,domain")
    managed_irq = frozenset(c for c, why in quiet.items() if any(d.startswith("isolcpus=") and "managed_irq" in d for d in why))
    hk = tuple(c for c in online if c not in qset)
    cpus = []
    for cpu, why in sorted(quiet.items()):
        landed = _landed(cpu, cpu in nohz_full, rates, net, threads, qset, hk)
        if trace is not None:
            landed = _attributed(landed, cpu, trace, hk)
        cpus.append(CpuIsolation(cpu, why, cpu in nohz_full, allowed_on(cpu, rates, balancer, managed_irq),
                                 tuple(o for o in landed if o.over), tuple(o for o in landed if not o.over)))
    return IsolationReport(rates.interval_s, hk, tuple(cpus), trace, trace_note)
