"""Findings from the causal model: one per root cause, its chain as evidence, its fix as actions. Pure.

Each `Cause` carries the finding and the scope of symptoms it explains (CPUs, /proc/interrupts
rows, symptom codes), so analysis/doctor.py can fold today's symptom findings into it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from irqlab.analysis.actions import (
    Action,
    irq_affinity_action,
    rps_action,
    sysctl_action,
    task_affinity_action,
    threaded_napi_action,
)
from irqlab.analysis.causes import CausalModel, CpuCause, Drop, Harm, Source, harm_score, receive_queues, socket_drops
from irqlab.analysis.delta import Rates
from irqlab.analysis.findings import Finding, Severity
from irqlab.analysis.netdelta import NamespaceRates, ThreadShare
from irqlab.analysis.thresholds import Thresholds
from irqlab.cpulist import format_cpulist, format_cpumask
from irqlab.model.net import RefusedProcess
from irqlab.model.snapshot import IrqInfo
from irqlab.units import format_rate

# Symptom codes of today's rules (and the trace's) that a CPU's cause explains.
CPU_SYMPTOMS: frozenset[str] = frozenset({
    "irq-time", "ksoftirqd-pressure", "irq-concentration", "softirq-concentration", "time-squeeze", "softnet-drops",
    "trace-softirq-slow", "trace-ksoftirqd-delegation", "trace-softirq-wait", "trace-softirq-restarts",
})
BUSY_SYMPTOMS: frozenset[str] = frozenset({
    "irq-time", "ksoftirqd-pressure", "irq-concentration", "softirq-concentration",
    "trace-ksoftirqd-delegation", "trace-softirq-wait", "trace-softirq-restarts",
})

# Kernel defaults (net/core/dev.c, v6.18): netdev_budget 300, netdev_budget_usecs 2 jiffies
# (2000 us at HZ=1000), netdev_max_backlog 1000.
DEFAULT_BUDGET = 300
DEFAULT_BUDGET_USECS = 2000


@dataclass(frozen=True, slots=True)
class Cause:
    """A root-cause finding and what it explains."""

    finding: Finding
    cpus: frozenset[int] = frozenset()
    irqs: frozenset[str] = frozenset()  # /proc/interrupts rows whose storm findings it explains
    symptoms: frozenset[str] = frozenset()  # codes it folds on its CPUs


def _others(online: tuple[int, ...], busy: set[int]) -> tuple[int, ...]:
    """The CPUs to spread to: every online CPU not in busy, or all of them when that leaves none."""
    rest = tuple(c for c in online if c not in busy)
    return rest or online


def _cpus(cpus: tuple[int, ...]) -> str:
    return f"CPU{cpus[0]}" if len(cpus) == 1 else f"CPUs {format_cpulist(cpus)}"


def _severity(harm: Harm, t: Thresholds) -> Severity:
    return Severity.CRITICAL if harm.lost_per_s >= t.drop_crit_rate or harm.max_wait_pct >= t.wait_crit_pct else Severity.WARNING


# --- actions for a source -----------------------------------------------------------------------


def _source_actions(src: Source, cc: CpuCause, model: CausalModel, rates: Rates, cpus: tuple[int, ...] = ()) -> tuple[list[Action], list[str]]:
    """The writes that move a source's work off its CPU (cpus: every CPU the cause loads), and lines that explain a write not offered."""
    cpu, pct = cc.cpu, cc.path_pct
    cpus = cpus or (cpu,)
    gain = f"CPU{cpu} gets back up to {pct:.0f} % of its time"
    if src.kind == "rps" and src.device is not None and src.queue is not None and src.mask is not None:
        new = _others(model.online, set(src.mask))
        # Moving the whole queue onto CPUs whose tasks already wait only moves the harm: spread it.
        if any(th.cpu in new and th.wait_pct >= 10.0 for th in model.threads if not th.thread.kthread):
            new = model.online
        why = f"rps_cpus={format_cpumask(src.mask)} steers every packet of {src.device} rx-{src.queue} to {_cpus(src.mask)}"
        effect = (f"its NET_RX runs on {_cpus(new)}" + (", each flow on one CPU by its hash" if len(new) > 1 else "") + f"; {gain}")
        return [rps_action(src.namespace, src.device, src.queue, src.mask, new, why, effect)], []
    if src.kind == "backlog" and src.device is not None:
        if len(cpus) >= len(model.online):
            return [], [f"NET_RX of {src.device} runs on every CPU that sends into it ({_cpus(cpus)}): there is no other CPU to steer it to; "
                        "pace the senders, or give the receivers CPUs of their own (taskset) so that the senders' CPUs carry the receive work"]
        new = _others(model.online, set(cpus))
        why = f"{src.device} receives through the sender's backlog, so its NET_RX runs where the sender runs (CPU{cpu})"
        return [rps_action(src.namespace, src.device, 0, (), new, why, f"its packets are processed on {_cpus(new)}; {gain}")], []
    if src.kind == "nic-queue" and src.irq is not None:
        return _queue_actions([s for s in cc.sources if s.kind == "nic-queue" and s.irq is not None], cc, model, rates, gain)
    if src.kind == "napi-thread" and src.pid is not None:
        new = _others(model.online, {cpu})
        why = f"the NAPI thread of {src.device} runs on CPU{cpu} beside the tasks there"
        old = model.online  # its allowed CPUs are not read: napi threads start unbound
        return [task_affinity_action(src.pid, old, new, why + " (undo assumes it was unbound)", gain)], []
    return [], []


def cpu_load(rates: Rates) -> dict[int, float]:
    """Each CPU's busy share (/proc/stat: 100 - idle - iowait), to pick the least loaded; empty when unknown."""
    c = rates.cpu
    if c is None:
        return {}
    idle = np.nan_to_num(c.field("idle")) + np.nan_to_num(c.field("iowait"))
    return {cpu: 100.0 - float(idle[i]) for i, cpu in enumerate(c.cpus)}


def least_loaded(cpus: tuple[int, ...], rates: Rates) -> tuple[int, ...]:
    """cpus, least loaded first (ties by number)."""
    load = cpu_load(rates)
    return tuple(sorted(cpus, key=lambda c: (round(load.get(c, 0.0)), c)))


def _queue_actions(srcs: list[Source], cc: CpuCause, model: CausalModel, rates: Rates, gain: str) -> tuple[list[Action], list[str]]:
    """Every NIC queue whose interrupts land on the CPU, one per other CPU (least loaded first, round robin).

    A managed IRQ's affinity is the kernel's (a write gets EPERM): its queue's packets are
    spread with RPS instead.
    """
    targets = least_loaded(_others(model.online, {cc.cpu}), rates)
    actions: list[Action] = []
    notes: list[str] = []
    movable = []
    for src in srcs:
        info = rates.after.irqinfo.get(int(src.irq)) if src.irq and src.irq.isdigit() else None
        if info is not None and info.managed:
            a, n = _managed_queue_action(src, info, cc, model, gain)
            actions += [x for x in a if x.path not in {y.path for y in actions}]
            notes += n
        elif info is not None and info.affinity is not None:
            movable.append((src, info.affinity))
    movable.sort(key=lambda x: (x[0].device or "", x[0].queue if x[0].queue is not None else 0, int(x[0].irq or 0)))
    for k, (src, old) in enumerate(movable):
        new = (targets[k % len(targets)],) if targets else old
        why = (f"IRQ {src.irq} ({src.device} rx-{src.queue}) interrupts CPU{cc.cpu}, and NAPI polls its queue there"
               + (f", with {len(movable) - 1} more queue{'s' if len(movable) > 2 else ''}" if len(movable) > 1 else ""))
        effect = f"the queue's interrupts and NET_RX move to CPU{new[0]}" + ("" if len(movable) > 1 else f"; {gain}")
        actions.append(irq_affinity_action(src.irq or "", old, new, why, effect))
    if len(movable) > 1:
        spread = sorted({a.new for a in actions if a.kind == "irq-affinity"})
        notes.append(f"{len(movable)} queue interrupts land on CPU{cc.cpu}: one per CPU over CPUs {','.join(spread)}; {gain}")
    return actions, notes


def _managed_queue_action(src: Source, info: IrqInfo, cc: CpuCause, model: CausalModel, gain: str) -> tuple[list[Action], list[str]]:
    irq = src.irq or ""
    eff = set(info.effective_affinity or info.affinity or ())
    notes = [f"IRQ {irq} is managed by the kernel: its affinity cannot be written (EPERM); RPS spreads its packets instead"]
    dev = next((d for ns in (model.net.namespaces[:1] if model.net else ()) for d in ns.devices if d.device.name == src.device), None)
    if dev is None or src.queue is None:
        return [], notes
    q = next((q for q in dev.device.rx_queues if q.index == src.queue), None)
    new = _others(model.online, eff | {cc.cpu})
    why = f"IRQ {irq} ({src.device} rx-{src.queue}) is kernel-managed and runs on CPU{cc.cpu}"
    old = q.rps_cpus if q is not None and q.rps_cpus else ()
    return [rps_action(src.namespace, dev.device.name, src.queue, old, new, why, f"packets are processed on {_cpus(new)}; {gain}")], notes


def _limit_actions(harm: Harm, rates: Rates, t: Thresholds) -> list[Action]:
    """Budget and backlog knobs for the squeezes and backlog drops in a harm."""
    ctl = rates.after.sysctl
    out = []
    squeeze = sum(d.rate_per_s for d in harm.drops if d.layer == "budget")
    if squeeze >= t.squeeze_warn_rate:
        budget = ctl.get("net.core.netdev_budget")
        if budget is not None:
            new = DEFAULT_BUDGET if budget < DEFAULT_BUDGET else 2 * budget
            out.append(sysctl_action("net.core.netdev_budget", budget, new,
                                     f"net_rx_action() ran out of its {budget}-packet budget {format_rate(squeeze)} times/s on CPU{harm.cpu}",
                                     "each NET_RX pass handles more packets before it yields; fewer passes are deferred to ksoftirqd"))
        usecs = ctl.get("net.core.netdev_budget_usecs")
        if usecs is not None and usecs < DEFAULT_BUDGET_USECS:
            out.append(sysctl_action("net.core.netdev_budget_usecs", usecs, DEFAULT_BUDGET_USECS,
                                     f"a NET_RX pass may run only {usecs} us", "passes stop on the packet budget, not the clock"))
    backlog = sum(d.rate_per_s for d in harm.drops if d.layer == "backlog")
    limit = ctl.get("net.core.netdev_max_backlog")
    if backlog > 0 and limit is not None:
        out.append(sysctl_action("net.core.netdev_max_backlog", limit, 2 * limit,
                                 f"CPU{harm.cpu}'s backlog queue ({limit} packets) overflowed {format_rate(backlog)} times/s",
                                 "bursts up to twice as long are queued instead of dropped (the CPU must still keep up on average)"))
    return out


# --- evidence ---------------------------------------------------------------------------------


def _time_lines(cc: CpuCause, t: Thresholds) -> list[str]:
    how = "measured by the trace" if cc.main.measured else "estimated: /proc/softirqs rates x per-vector cost, scaled to /proc/stat"
    runs = f" {format_rate(cc.main.runs_per_s)} runs/s" if cc.main.runs_per_s else ""
    mix = ", ".join(f"{v.vector} {v.pct:.1f} %" for v in cc.times[:4] if v.pct >= 0.1)
    out = [f"{cc.main.vector}{runs} on CPU{cc.cpu}: {cc.main.pct:.0f} % of the CPU ({how})", f"interrupt time on CPU{cc.cpu}: {mix}"]
    if cc.queue_irq_pct >= 1.0:
        out[0] += f"; its NIC queues' hard interrupts {cc.queue_irq_pct:.0f} % more"
    if cc.main.measured and cc.stat_pct is not None and cc.stat_pct - cc.irq_pct >= 5.0:
        out[1] += (f"; /proc/stat counted {cc.stat_pct:.0f} % softirq + irq over the whole sample (tick-sampled; "
                   "the trace covers only its window), the larger is judged")
    return out


def _named_sources(cc: CpuCause, t: Thresholds) -> list[Source]:
    total = sum(s.weight for s in cc.sources) or 1.0
    return [s for i, s in enumerate(cc.sources) if i == 0 or s.weight >= t.source_min_share * total][:4]


def _harm_lines(harm: Harm, shared: bool = True) -> list[str]:
    """A CPU's harm; shared=False leaves out the network drops (socket, NIC) a group lists once."""
    out = []
    if harm.ksoftirqd_pct is not None and harm.ksoftirqd_pct >= 1.0:
        out.append(f"-> ksoftirqd/{harm.cpu} ran {harm.ksoftirqd_pct:.0f} % of CPU{harm.cpu}")
    out += [f"-> {waited_text(th)}" for th in harm.waited[:3]]
    if len(harm.waited) > 3:
        more = len(harm.waited) - 3
        out.append(f"-> and {more} more task{'s' if more > 1 else ''} waited")
    out += [f"-> {d.text}" for d in harm.drops if shared or d.layer in CPU_LAYERS]
    if not harm.threads_known:
        out.append("-> which tasks waited is unknown (no per-thread schedstat in this sample)")
    return out


def waited_text(th: ThreadShare) -> str:
    """What a task lost: its wait, and the interrupts' time when it wanted the CPU throughout (causes.harm_on())."""
    if th.irq_pct > 0:
        return (f"{th.who} lost {th.lost_pct:.0f} % of the sample: ran {th.run_pct:.0f} %, waited {th.wait_pct:.0f} %, "
                f"and interrupts took {th.irq_pct:.0f} % while it wanted the CPU")
    return f"{th.who} waited {th.wait_pct:.0f} % of the sample, ran {th.run_pct:.0f} %"


CPU_LAYERS: frozenset[str] = frozenset({"backlog", "budget"})  # drops counted per CPU; socket and NIC drops per namespace


def merged_harm(ccs: list[CpuCause]) -> Harm:
    """The harm of one cause over its CPUs: every task that waited, each drop once."""
    waited = sorted((th for cc in ccs for th in cc.harm.waited), key=lambda th: -th.lost_pct)
    drops: dict[str, Drop] = {}
    for cc in ccs:
        for d in cc.harm.drops:
            drops.setdefault(d.text, d)
    ks = [cc.harm.ksoftirqd_pct for cc in ccs if cc.harm.ksoftirqd_pct is not None]
    return Harm(ccs[0].cpu, max(ks) if ks else None, tuple(waited), tuple(drops.values()), all(cc.harm.threads_known for cc in ccs))


def group_harm_score(ccs: list[CpuCause]) -> float:
    """harm_score() over a cause's CPUs: the CPU taken where tasks waited and their wait on each CPU, drops once."""
    per_cpu = sum((cc.irq_pct if cc.harm.waited else 0.0) + cc.harm.max_wait_pct for cc in ccs)
    return round(per_cpu + harm_score(0.0, replace(merged_harm(ccs), waited=())), 1)


def _mechanism(src: Source, vector: str) -> str:
    if src.kind == "backlog" and src.peer is not None:
        return f"the senders' backlog: veth {src.peer.device} -> {src.device}"
    return {
        "rps": f"RPS on {src.device} rx-{src.queue}",
        "backlog": f"the senders' backlog of {src.device}",
        "nic-queue": f"IRQ {src.irq} ({src.device} rx-{src.queue})",
        "napi-thread": f"threaded NAPI of {src.device}",
        "timer": "the local timer", "ipi": f"{src.irq} IPIs", "disk-queue": f"disk IRQ {src.irq}",
    }.get(src.kind, vector)


def _pct_text(cc: CpuCause) -> str:
    """The main vector's share (with its queues' hard IRQs); a range when /proc/stat over the sample says much more than the trace."""
    pct = cc.path_pct
    stat = cc.stat_pct
    if cc.main.measured and stat is not None and stat >= 1.5 * cc.irq_pct and stat - cc.irq_pct >= 5.0:
        return f"{pct:.0f}-{stat:.0f} %"
    return f"{pct:.0f} %"


def _title(ccs: list[CpuCause], src: Source, harm: Harm, ctl: Mapping[str, int]) -> str:
    cc = ccs[0]
    ns = f" ({src.namespace.label})" if src.namespace is not None and not src.namespace.host else ""
    parts = []
    if harm.waited:
        th = harm.waited[0]
        parts.append(f"{th.thread.comm} {'lost' if th.irq_pct > 0 else 'waited'} {th.lost_pct:.0f} % of its time")
    if harm.lost_per_s > 0:
        parts.append(f"{format_rate(harm.lost_per_s)} packets/s lost")
    squeeze = sum(d.rate_per_s for d in harm.drops if d.layer == "budget")
    if squeeze > 0:
        budget = ctl.get("net.core.netdev_budget")
        parts.append(f"budget exhausted {format_rate(squeeze)}/s" + (f" (netdev_budget={budget})" if budget is not None else ""))
    tail = f": {', '.join(parts)}" if parts else ""
    where = " and ".join(f"{_pct_text(c)} of CPU{c.cpu}" for c in sorted(ccs, key=lambda c: c.cpu))
    what = f"{cc.main.vector} and its queues' interrupts take" if any(c.queue_irq_pct >= 1.0 for c in ccs) else f"{cc.main.vector} takes"
    return f"{what} {where}, from {_mechanism(src, cc.main.vector)}{ns}{tail}"


def _once(lines: list[str], marker: str) -> list[str]:
    """Keep a repeated clause (from marker on) only in the first line that has it."""
    out, seen = [], False
    for line in lines:
        head, sep, tail = line.partition(marker)
        if sep and seen:
            line = head
        seen |= bool(sep)
        out.append(line)
    return out


def _group_cause(ccs: list[CpuCause], model: CausalModel, rates: Rates, t: Thresholds) -> Cause:
    """One root cause over the CPUs it loads (an RPS mask: its target and its senders; a veth pair: its senders' CPUs)."""
    cc = ccs[0]
    srcs = _named_sources(cc, t)
    actions, notes = _source_actions(srcs[0], cc, model, rates, tuple(sorted(c.cpu for c in ccs)))
    harm = merged_harm(ccs)
    limits: list[Action] = []
    for c in ccs:
        limits += [a for a in _limit_actions(c.harm, rates, t) if a.path not in {x.path for x in limits}]
    budget = rates.after.sysctl.get("net.core.netdev_budget")
    if budget is not None and budget < DEFAULT_BUDGET and any(a.path.endswith("/netdev_budget") for a in limits):
        # A budget below the kernel's default is the cause itself: raise it before moving anything.
        actions, notes = [], notes + [f"netdev_budget={budget} is below the kernel default ({DEFAULT_BUDGET}): each NET_RX pass stops after "
                                      f"{budget} packets and the rest waits for the next pass or ksoftirqd"]
    actions = limits + actions if actions == [] else actions + limits
    evidence: list[str] = []
    for c in ccs:
        evidence += _time_lines(c, t) + [f"<- {s.text}" for s in _named_sources(c, t)] + _harm_lines(c.harm, shared=len(ccs) == 1)
    evidence = _once(evidence, "; threaded=1 on ")
    if len(ccs) > 1:
        evidence += [f"-> {d.text}" for d in harm.drops if d.layer not in CPU_LAYERS]
    evidence += notes
    taken = sum(c.irq_pct for c in ccs)
    finding = Finding(
        _severity(harm, t),
        f"cause-{srcs[0].kind}",
        f"{cc.main.vector} on " + _cpus(tuple(sorted(c.cpu for c in ccs))),
        _title(ccs, srcs[0], harm, rates.after.sysctl),
        tuple(evidence),
        "apply the actions below (each with its undo)" if actions else "move the source's work off this CPU, or the waiting tasks to another",
        {"cpu": cc.cpu, "cpu_count": len(ccs), "vector": cc.main.vector, "pct": round(taken, 1), "harm": group_harm_score(ccs),
         "lost_per_s": round(harm.lost_per_s, 1), "max_wait_pct": round(harm.max_wait_pct, 1),
         "mechanism": srcs[0].kind, "measured": int(all(c.measured for c in ccs))},
        tuple(actions),
    )
    irqs = {s.irq for c in ccs for s in c.sources if s.irq} | ({"CAL"} if any(s.kind == "rps" for c in ccs for s in c.sources) else set())
    return Cause(finding, frozenset(c.cpu for c in ccs), frozenset(irqs), CPU_SYMPTOMS)


# --- a real-time task starving ksoftirqd ----------------------------------------------------------


def _rt_hog(model: CausalModel, cpu: int, t: Thresholds) -> tuple[ThreadShare, ThreadShare, list[ThreadShare]] | None:
    """A SCHED_FIFO/RR task holding cpu, ksoftirqd/cpu, and the SCHED_OTHER tasks there that waited behind it.

    It is a cause when ksoftirqd waited (softirq work deferred to it waits behind any RT task:
    ksoftirqd runs SCHED_OTHER, kernel/softirq.c) or when ordinary tasks on that CPU waited.
    """
    hogs = [th for th in model.threads if th.cpu == cpu and not th.thread.kthread and th.thread.policy in ("fifo", "rr") and th.run_pct >= t.rt_hog_pct]
    ks = next((th for th in model.threads if th.thread.kthread and th.thread.comm == f"ksoftirqd/{cpu}"), None)
    if not hogs or ks is None:
        return None
    waiting = sorted((th for th in model.threads if th.cpu == cpu and th.thread.policy not in ("fifo", "rr") and th is not ks
                      and th.wait_pct >= t.wait_warn_pct), key=lambda th: -th.wait_pct)
    if ks.wait_pct < t.starved_wait_pct and not waiting:
        return None
    return max(hogs, key=lambda th: th.run_pct), ks, waiting


def _receivers(model: CausalModel, cc: CpuCause) -> list[tuple[NamespaceRates, str, int]]:
    """Devices whose NAPI could run threaded: those named by the chain, else every busy non-loopback receiver."""
    named = {(s.namespace.inode if s.namespace else None, s.device) for s in cc.sources if s.device}
    out = []
    for ns in model.net.namespaces if model.net else ():
        for d in ns.devices:
            if d.device.threaded is None or d.device.threaded != 0 or d.device.name == "lo" or d.of("rx_packets") <= 0:
                continue
            if not named or (ns.namespace.inode, d.device.name) in named:
                out.append((ns, d.device.name, d.device.threaded))
    return out


def _owned_drops(waiting: list[ThreadShare], model: CausalModel) -> list[tuple[ThreadShare, Drop]]:
    """The dropping sockets whose owners are among the waiting tasks: a receiver that cannot run cannot read."""
    out = []
    for ns in model.net.namespaces if model.net else ():
        for d in socket_drops(ns):
            if d.socket is None:
                continue
            th = next((th for th in waiting if th.thread.pid in d.socket.pids), None)
            if th is not None:
                out.append((th, d))
    return out


def receive_cpus(model: CausalModel) -> set[int]:
    """The CPUs that run receive work: NET_RX or a NAPI thread (1 % or more), or an RPS target of a queue that received."""
    out = {cc.cpu for cc in model.cpus if any(v.pct >= 1.0 and (v.vector == "NET_RX" or v.vector.startswith("NAPI thread ")) for v in cc.times)}
    for ns in model.net.namespaces if model.net else ():
        for d in ns.devices:
            if d.of("rx_packets") > 0:
                out |= {c for q in d.device.rx_queues for c in q.rps_cpus or ()}
    return out


def _hog_move(hog: ThreadShare, cc: CpuCause, model: CausalModel, rates: Rates) -> tuple[list[Action], list[str]]:
    """Move the RT task to the least loaded CPU that runs no receive work; where every other CPU does, say so instead.

    A SCHED_FIFO/RR task starves ksoftirqd and the senders' softirq work on any CPU it holds:
    moving it onto another CPU's receive path only moves the starvation.
    """
    cpu = cc.cpu
    others = _others(model.online, {cpu})
    if others == model.online:
        return [], []
    busy = receive_cpus(model)
    free = [c for c in least_loaded(others, rates) if c not in busy]
    if not free:
        where = ", ".join(f"CPU{c}" for c in others)
        return [], [f"every other CPU ({where}) runs receive work (NET_RX, NAPI or RPS): moving {hog.thread.comm} there would starve it "
                    f"the same way; give it a CPU of its own (isolcpus, or a CPU without queue interrupts or RPS), "
                    f"or run the receive path in threads above its priority"]
    why = f"{hog.who} runs {hog.run_pct:.0f} % of CPU{cpu} above every SCHED_OTHER task there, ksoftirqd/{cpu} included"
    effect = (f"ksoftirqd/{cpu} and the waiting tasks run again; CPU{free[0]} is the least loaded CPU that runs no receive work "
              "(undo assumes it was unbound)")
    return [task_affinity_action(hog.thread.pid, model.online, (free[0],), why, effect)], []


def _starvation(cc: CpuCause, model: CausalModel, rates: Rates, t: Thresholds) -> Cause | None:
    found = _rt_hog(model, cc.cpu, t)
    if found is None:
        return None
    hog, ks, waiting = found
    cpu = cc.cpu
    starved = ks.wait_pct >= t.starved_wait_pct
    new = _others(model.online, {cpu})
    actions, notes = _hog_move(hog, cc, model, rates)
    if starved:
        for ns, dev, old in _receivers(model, cc)[:2]:
            actions.append(threaded_napi_action(ns.namespace, dev, old, f"{dev}'s receive work waits in ksoftirqd/{cpu} behind the RT task",
                                                f"NAPI polls in napi/{dev}-N threads; give them a priority above the hog (chrt -f -p PRIO PID)"))
    policy = f"{hog.thread.policy.upper()} {hog.thread.rt_priority}"
    owned = _owned_drops(waiting, model)
    lost = sum(d.socket.drops_per_s for _, d in owned if d.socket is not None)
    for th in sorted({th.thread.pid: th for th, _ in owned}.values(), key=lambda th: -th.wait_pct)[:2]:
        if new != model.online:
            actions.insert(0, task_affinity_action(th.thread.pid, model.online, new, f"{th.who} waits behind the {policy} task on CPU{cpu} and cannot read its socket",
                                                   "the receiver runs on another CPU and reads its socket again (undo assumes it was unbound)"))
    ks_line = (f"-> ksoftirqd/{cpu} waited {ks.wait_pct:.0f} % of the sample (SCHED_OTHER, below any RT task)" if starved else
               f"-> ksoftirqd/{cpu} waited {ks.wait_pct:.0f} % and ran {ks.run_pct:.0f} %: little softirq work was deferred to it "
               f"in this sample, and what is deferred waits behind the {hog.thread.policy.upper()} task (ksoftirqd runs SCHED_OTHER)")
    named = _named_sources(cc, t)
    queues = [q for q in receive_queues(rates, model.net, cpu) if q.irq not in {s.irq for s in named}] if starved else []
    evidence = [
        f"{hog.who} ran {hog.run_pct:.0f} % of CPU{cpu}",
        ks_line,
        *[f"-> {th.who} waited {th.wait_pct:.0f} % of the sample, ran {th.run_pct:.0f} %" for th in waiting[:3]],
        *[f"-> {th.thread.comm} (pid {th.thread.pid}) cannot read its socket: {d.text}" for th, d in owned],
        *_time_lines(cc, t), *[f"<- {s.text}" for s in named],
        *[f"<- {q.text}: its NAPI poll is left to ksoftirqd/{cpu}, so its ring is not emptied" for q in queues],
        *[line for line in _harm_lines(cc.harm) if "waited" not in line and line.removeprefix("-> ") not in {d.text for _, d in owned}],
        *notes,
    ]
    top_wait = max((th.wait_pct for th in waiting), default=0.0)
    harm = hog.run_pct + max(top_wait, ks.wait_pct) + 10 * math.log10(1 + lost + cc.harm.lost_per_s)
    if starved:
        title = (f"{hog.thread.comm} ({policy}) starves ksoftirqd/{cpu}: softirqs on CPU{cpu} wait {ks.wait_pct:.0f} %"
                 + (f", {format_rate(cc.harm.lost_per_s)} packets/s lost" if cc.harm.lost_per_s > 0 else ""))
    else:
        w = waiting[0]
        title = (f"{hog.thread.comm} ({policy}) holds {hog.run_pct:.0f} % of CPU{cpu}: {w.thread.comm} waited {w.wait_pct:.0f} %"
                 + (f", {format_rate(lost)} packets/s lost at its socket" if lost else "") + f"; ksoftirqd/{cpu} would wait too")
    severe = cc.harm.lost_per_s + lost >= t.drop_crit_rate or top_wait >= t.wait_crit_pct
    finding = Finding(
        Severity.CRITICAL if severe else Severity.WARNING,
        "cause-rt-starvation", f"CPU{cpu}", title, tuple(evidence),
        "move the real-time task off this CPU, or run NAPI in threads with a priority above it",
        {"cpu": cpu, "pct": round(hog.run_pct, 1), "harm": round(harm, 1), "lost_per_s": round(cc.harm.lost_per_s + lost, 1),
         "max_wait_pct": round(max(top_wait, ks.wait_pct), 1), "mechanism": "rt-starvation"},
        tuple(actions),
    )
    return Cause(finding, frozenset({cpu}), frozenset(), CPU_SYMPTOMS)


# --- limits on their own: budget, backlog, sockets, NICs -------------------------------------------


def _limit_causes(cc: CpuCause, rates: Rates, t: Thresholds) -> list[Cause]:
    out = []
    for layer, code, symptom in (("budget", "net-budget", "time-squeeze"), ("backlog", "backlog-drops", "softnet-drops")):
        drops = [d for d in cc.harm.drops if d.layer == layer]
        rate = sum(d.rate_per_s for d in drops)
        if not drops or (layer == "budget" and rate < t.squeeze_warn_rate):
            continue
        harm = Harm(cc.cpu, cc.harm.ksoftirqd_pct, (), tuple(drops), cc.harm.threads_known)
        sev = Severity.CRITICAL if layer == "backlog" and rate >= t.drop_crit_rate else Severity.WARNING
        title = (f"NET_RX on CPU{cc.cpu} runs out of budget {format_rate(rate)} times/s" if layer == "budget"
                 else f"CPU{cc.cpu}'s backlog queue drops {format_rate(rate)} packets/s")
        finding = Finding(sev, code, f"CPU{cc.cpu}", title, tuple(_time_lines(cc, t)[:1] + [f"-> {d.text}" for d in drops]),
                          "apply the actions below (each with its undo)",
                          {"cpu": cc.cpu, "rate_per_s": rate, "harm": harm_score(0.0, harm)}, tuple(_limit_actions(harm, rates, t)))
        out.append(Cause(finding, frozenset({cc.cpu}), frozenset(), frozenset({symptom})))
    return out


def _socket_cause(ns: NamespaceRates, rates: Rates, t: Thresholds) -> Cause | None:
    drops = socket_drops(ns)
    rate = sum(d.rate_per_s for d in drops) or sum(d.socket.drops_per_s for d in drops if d.socket)
    if rate < t.socket_drop_warn_rate:
        return None
    sockets = [d.socket for d in drops if d.socket is not None]
    top = sockets[0] if sockets else None
    where = f"UDP port {top.socket.local_port} ({top.owner})" if top else "sockets"
    ctl = rates.after.sysctl
    actions = []
    # The MIB counters and the sockets' drops count the same datagrams: the larger of the two.
    udp = max(ns.counter("Udp", "RcvbufErrors") + ns.counter("Udp6", "RcvbufErrors"), sum(s.drops_per_s for s in sockets))
    for key in ("net.core.rmem_max", "net.core.rmem_default"):
        old = ctl.get(key)
        if udp > 0 and old is not None and old < t.rmem_target_bytes:
            actions.append(sysctl_action(
                key, old, t.rmem_target_bytes, f"{where} overflowed its receive buffer {format_rate(udp)} times/s ({ns.namespace.label})",
                "new sockets get a larger buffer (rmem_default); one that sets SO_RCVBUF itself (iperf3 -w) may ask up to rmem_max; "
                "restart the receiver so its socket is created again"))
    finding = Finding(
        Severity.CRITICAL if rate >= t.drop_crit_rate else Severity.WARNING,
        "socket-drops", f"{where} ({ns.namespace.label})",
        f"{where} {'drops' if top else 'drop'} {format_rate(rate)} packets/s at the socket in {ns.namespace.label}: "
        "the receiver reads slower than they arrive",
        tuple(f"-> {d.text}" for d in drops)
        + tuple(f"{k} = {ctl[k]}" for k in ("net.core.rmem_default", "net.core.rmem_max") if k in ctl),
        "a bigger receive buffer absorbs bursts (the actions below, or SO_RCVBUF in the application); a receiver that is "
        "always slower needs more CPU: keep its CPU free of the interrupt work (see the cause above)",
        {"rate_per_s": rate, "harm": round(10 * math.log10(1 + rate), 1), "namespace": ns.namespace.label},
        tuple(actions),
    )
    return Cause(finding)


def _nic_cause(d: Drop, t: Thresholds) -> Cause | None:
    if d.rate_per_s < t.nic_drop_warn_rate:
        return None
    harm = Harm(-1, None, (), (d,), True)
    finding = Finding(
        Severity.CRITICAL if d.rate_per_s >= t.drop_crit_rate else Severity.WARNING,
        "nic-drops", d.text.split(":")[0].removeprefix("NIC drops on "),
        f"{d.text.split(':')[0]}: {format_rate(d.rate_per_s)} packets/s",
        (f"-> {d.text}",),
        "the receive ring overflowed before NAPI emptied it: a larger ring (`ethtool -G DEV rx N`, see `ethtool -g DEV`), "
        "or the queue's interrupt on a less busy CPU",
        {"rate_per_s": d.rate_per_s, "harm": harm_score(0.0, harm)},
    )
    return Cause(finding)


def _busy(keeping_up: list[CpuCause], t: Thresholds) -> Cause | None:
    if not keeping_up:
        return None
    lines = tuple(
        f"CPU{cc.cpu}: {cc.irq_pct:.0f} % in interrupts, mostly {cc.main.vector} <- {cc.sources[0].text}" for cc in keeping_up
    )
    cpus = frozenset(cc.cpu for cc in keeping_up)
    finding = Finding(
        Severity.INFO, "busy-keeping-up", "CPU" + format_cpulist(cpus),
        f"CPU{format_cpulist(cpus)} busy with interrupts but keeping up: nothing dropped, no task waited",
        lines + (f"no task waited {t.wait_warn_pct:.0f} % of the sample or more; no drops at NIC, backlog, budget or socket",),
        "nothing to do now; the cause findings appear when tasks start to wait or packets are lost",
        {"pct": max(cc.irq_pct for cc in keeping_up)},
    )
    return Cause(finding, cpus, frozenset(), BUSY_SYMPTOMS)


def _root_key(cc: CpuCause) -> tuple[object, ...]:
    """What one cause is: an RPS mask on one queue, the veth pair whose senders load the CPU, else the CPU itself."""
    src = cc.sources[0] if cc.sources else None
    inode = src.namespace.inode if src is not None and src.namespace is not None else None
    if src is not None and src.kind == "rps":
        return ("rps", inode, src.device, src.queue)
    if src is not None and src.kind == "backlog":
        return ("backlog", inode, src.device)
    return ("cpu", cc.cpu)


def _groups(model: CausalModel, t: Thresholds, starved: set[int]) -> list[list[CpuCause]]:
    """The CPUs of each root cause that harms: a CPU that passes the limits, and the CPUs its cause also loads.

    A CPU joins a qualifying cause when its own main source is the same (the CPU that sends an RPS
    queue's IPIs, a second sender's CPU) and its interrupt time is at least half the limit, even
    when that CPU alone would stay under the limit.
    """
    cpus = [cc for cc in model.cpus if cc.cpu not in starved and cc.times]
    keys = {_root_key(cc) for cc in cpus if cc.busy_pct >= t.softirq_cpu_pct and cc.harm.any(t)}
    floor = 0.5 * t.softirq_cpu_pct
    groups: dict[tuple[object, ...], list[CpuCause]] = {}
    for cc in cpus:
        k = _root_key(cc)
        if k in keys and (k[0] != "cpu" or cc.busy_pct >= t.softirq_cpu_pct) and cc.busy_pct >= floor:
            groups.setdefault(k, []).append(cc)
    # The CPU the cause is named by first: an RPS target, else the most harmed.
    return [sorted(g, key=lambda c: (not all(s.target for s in c.sources[:1]), -group_harm_score([c]))) for g in groups.values()]


def causes(model: CausalModel, rates: Rates, t: Thresholds) -> list[Cause]:
    """One Cause per root cause the model shows, with the symptom scope each explains."""
    out: list[Cause] = []
    starved = {}
    for cc in model.cpus:
        s = _starvation(cc, model, rates, t)
        if s is not None:
            starved[cc.cpu] = s
    out += starved.values()
    groups = _groups(model, t, set(starved))
    out += [_group_cause(g, model, rates, t) for g in groups]
    grouped = {cc.cpu for g in groups for cc in g} | set(starved)
    keeping_up = []
    for cc in model.cpus:
        if cc.cpu in grouped:
            continue
        out += _limit_causes(cc, rates, t)
        if cc.busy_pct >= t.softirq_cpu_pct and model.threads_known and not cc.harm.any(t):
            keeping_up.append(cc)
    for ns in model.net.namespaces if model.net else ():
        sock = _socket_cause(ns, rates, t)
        if sock is not None:
            out.append(sock)
        for x in model.drops_by_ns.get(ns.namespace.inode, []):
            nic = _nic_cause(x, t) if x.layer == "nic" else None
            if nic is not None:
                out.append(nic)
    busy = _busy(keeping_up, t)
    unseen = _unseen(model)
    return out + ([busy] if busy else []) + ([unseen] if unseen else [])


LSM_REFUSED = "another security module refused (Landlock, a BPF LSM program, SELinux or AppArmor)"


def _refused_line(r: RefusedProcess) -> str:
    who = f"pid {r.pid}" + (f" ({r.comm})" if r.comm else "")
    if r.missing_caps is None:
        return f"{who}: its capabilities could not be read"
    if not r.missing_caps:
        return f"{who}: not for capabilities (the capability check passes this reader): {LSM_REFUSED}"
    return f"{who} holds {', '.join(r.missing_caps)}, which this reader lacks, and this reader lacks CAP_SYS_PTRACE"


def _refused_advice(refused: tuple[RefusedProcess, ...]) -> str:
    """What lets root read those links, from why they were refused."""
    if any(r.missing_caps for r in refused):
        return ("give irqlab CAP_SYS_PTRACE, which passes the capability check whatever a process holds: run it where "
                "its capability bounding set keeps it, not in the restricted container or sandbox that cut it")
    if refused and all(r.missing_caps == () for r in refused):
        return ("no capability lifts this: a security module confines irqlab itself (a Landlock domain, a BPF LSM "
                "program, an SELinux or AppArmor policy); run irqlab outside that sandbox to see those namespaces")
    return ("the kernel's ptrace access check refused (fs/proc/namespaces.c proc_ns_readlink()): by capabilities when "
            "irqlab lacks CAP_SYS_PTRACE, else by a security module that confines it; run irqlab outside any sandbox")


def _unseen(model: CausalModel) -> Cause | None:
    """The namespaces this reader could not enter or name: their drops and devices are missing from every finding."""
    net = model.net
    if net is None or (not net.not_entered and not net.denied):
        return None
    lines = [f"{ns.label}: {why}" for ns, why in net.not_entered[:10]]
    if len(net.not_entered) > 10:
        lines.append(f"... and {len(net.not_entered) - 10} more")
    if net.denied and net.reader_root:
        lines.append(f"{net.denied} process{'es' if net.denied > 1 else ''} whose /proc/PID/ns/net the kernel refused even to root "
                     "(its ptrace access check): their namespaces are not even counted")
        lines += [_refused_line(r) for r in net.refused]
    elif net.denied:
        lines.append(f"{net.denied} process{'es' if net.denied > 1 else ''} whose /proc/PID/ns/net this user may not read: "
                     "their namespaces are not even counted")
    parts = []
    if net.not_entered:
        parts.append(f"{len(net.not_entered)} network namespace{'s' if len(net.not_entered) > 1 else ''} could not be entered")
    if net.denied:
        parts.append(f"those of {net.denied} process{'es' if net.denied > 1 else ''} could not be read" if net.not_entered
                     else f"the network namespace{'s' if net.denied > 1 else ''} of {net.denied} "
                     f"process{'es' if net.denied > 1 else ''} could not be read")
    finding = Finding(
        Severity.INFO, "netns-unseen", "network namespaces",
        f"{' and '.join(parts)}: their drops and devices are not in these findings",
        tuple(lines),
        _refused_advice(net.refused) if net.reader_root and not net.not_entered else
        "run as root (setns() into another network namespace needs CAP_SYS_ADMIN, and reading another user's "
        "/proc/PID/ns/net needs ptrace access) to see every namespace",
        {"count": len(net.not_entered), "denied": net.denied},
    )
    return Cause(finding)
