"""Findings from the causal model: one per root cause, its chain as evidence, its fix as actions. Pure.

Each `Cause` carries the finding and the scope of symptoms it explains (CPUs, /proc/interrupts
rows, symptom codes), so analysis/doctor.py can fold today's symptom findings into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from irqlab.analysis.actions import (
    Action,
    irq_affinity_action,
    rps_action,
    sysctl_action,
    task_affinity_action,
    threaded_napi_action,
)
from irqlab.analysis.causes import CausalModel, CpuCause, Drop, Harm, Source, harm_score, nic_drops, socket_drops
from irqlab.analysis.delta import Rates
from irqlab.analysis.findings import Finding, Severity
from irqlab.analysis.netdelta import NamespaceRates, ThreadShare
from irqlab.analysis.thresholds import Thresholds
from irqlab.cpulist import format_cpulist, format_cpumask
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


def _source_actions(src: Source, cc: CpuCause, model: CausalModel, rates: Rates) -> tuple[list[Action], list[str]]:
    """The writes that move a source's work off its CPU, and lines that explain a write not offered."""
    cpu, pct = cc.cpu, cc.main.pct
    gain = f"CPU{cpu} gets back up to {pct:.0f} % of its time"
    if src.kind == "rps" and src.device is not None and src.queue is not None and src.mask is not None:
        new = _others(model.online, {cpu})
        why = f"rps_cpus={format_cpumask(src.mask)} steers every packet of {src.device} rx-{src.queue} to {_cpus(src.mask)}"
        return [rps_action(src.namespace, src.device, src.queue, src.mask, new, why, f"its NET_RX runs on {_cpus(new)}; {gain}")], []
    if src.kind == "backlog" and src.device is not None:
        new = _others(model.online, {cpu})
        why = f"{src.device} receives through the sender's backlog, so its NET_RX runs where the sender runs (CPU{cpu})"
        return [rps_action(src.namespace, src.device, 0, (), new, why, f"its packets are processed on {_cpus(new)}; {gain}")], []
    if src.kind == "nic-queue" and src.irq is not None:
        return _nic_actions(src, cc, model, rates, gain)
    if src.kind == "napi-thread" and src.pid is not None:
        new = _others(model.online, {cpu})
        why = f"the NAPI thread of {src.device} runs on CPU{cpu} beside the tasks there"
        old = model.online  # its allowed CPUs are not read: napi threads start unbound
        return [task_affinity_action(src.pid, old, new, why + " (undo assumes it was unbound)", gain)], []
    return [], []


def _nic_actions(src: Source, cc: CpuCause, model: CausalModel, rates: Rates, gain: str) -> tuple[list[Action], list[str]]:
    irq = src.irq or ""
    info = rates.after.irqinfo.get(int(irq)) if irq.isdigit() else None
    eff = set(info.effective_affinity or info.affinity or ()) if info else set()
    if info is not None and info.managed:
        notes = [f"IRQ {irq} is managed by the kernel: its affinity cannot be written (EPERM); RPS spreads its packets instead"]
        dev = next((d for ns in (model.net.namespaces[:1] if model.net else ()) for d in ns.devices if d.device.name == src.device), None)
        if dev is None or src.queue is None:
            return [], notes
        q = next((q for q in dev.device.rx_queues if q.index == src.queue), None)
        new = _others(model.online, eff | {cc.cpu})
        why = f"IRQ {irq} ({src.device} rx-{src.queue}) is kernel-managed and runs on CPU{cc.cpu}"
        old = q.rps_cpus if q is not None and q.rps_cpus else ()
        return [rps_action(src.namespace, dev.device.name, src.queue, old, new, why, f"packets are processed on {_cpus(new)}; {gain}")], notes
    if info is None or info.affinity is None:
        return [], []
    new = _others(model.online, {cc.cpu})
    why = f"IRQ {irq} ({src.device} rx-{src.queue}) interrupts CPU{cc.cpu}, and NAPI polls its queue there"
    return [irq_affinity_action(irq, info.affinity, new, why, f"the queue's interrupts and NET_RX move to {_cpus(new)}; {gain}")], []


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
    return [f"{cc.main.vector}{runs} on CPU{cc.cpu}: {cc.main.pct:.0f} % of the CPU ({how})", f"interrupt time on CPU{cc.cpu}: {mix}"]


def _named_sources(cc: CpuCause, t: Thresholds) -> list[Source]:
    total = sum(s.weight for s in cc.sources) or 1.0
    return [s for i, s in enumerate(cc.sources) if i == 0 or s.weight >= t.source_min_share * total][:4]


def _harm_lines(harm: Harm) -> list[str]:
    out = []
    if harm.ksoftirqd_pct is not None and harm.ksoftirqd_pct >= 1.0:
        out.append(f"-> ksoftirqd/{harm.cpu} ran {harm.ksoftirqd_pct:.0f} % of CPU{harm.cpu}")
    out += [f"-> {th.who} waited {th.wait_pct:.0f} % of the sample, ran {th.run_pct:.0f} %" for th in harm.waited[:3]]
    if len(harm.waited) > 3:
        out.append(f"-> and {len(harm.waited) - 3} more tasks waited")
    out += [f"-> {d.text}" for d in harm.drops]
    if not harm.threads_known:
        out.append("-> which tasks waited is unknown (no per-thread schedstat in this sample)")
    return out


def _title(cc: CpuCause, src: Source, harm: Harm) -> str:
    mech = {
        "rps": f"RPS on {src.device} rx-{src.queue}",
        "backlog": f"the backlog of senders to {src.device}",
        "nic-queue": f"IRQ {src.irq} ({src.device} rx-{src.queue})",
        "napi-thread": f"threaded NAPI of {src.device}",
        "timer": "the local timer", "ipi": f"{src.irq} IPIs", "disk-queue": f"disk IRQ {src.irq}",
    }.get(src.kind, cc.main.vector)
    ns = f" ({src.namespace.label})" if src.namespace is not None and not src.namespace.host else ""
    parts = []
    if harm.waited:
        th = harm.waited[0]
        parts.append(f"{th.thread.comm} waited {th.wait_pct:.0f} %")
    if harm.lost_per_s > 0:
        parts.append(f"{format_rate(harm.lost_per_s)} packets/s lost")
    squeeze = sum(d.rate_per_s for d in harm.drops if d.layer == "budget")
    if squeeze > 0:
        parts.append(f"budget exhausted {format_rate(squeeze)}/s")
    tail = f": {', '.join(parts)}" if parts else ""
    return f"{cc.main.vector} takes {cc.main.pct:.0f} % of CPU{cc.cpu}, from {mech}{ns}{tail}"


def _cpu_cause(cc: CpuCause, model: CausalModel, rates: Rates, t: Thresholds) -> Cause:
    srcs = _named_sources(cc, t)
    actions: list[Action] = []
    notes: list[str] = []
    for s in srcs[:1]:
        a, n = _source_actions(s, cc, model, rates)
        actions += a
        notes += n
    actions += _limit_actions(cc.harm, rates, t)
    evidence = _time_lines(cc, t) + [f"<- {s.text}" for s in srcs] + _harm_lines(cc.harm) + notes
    taken = cc.irq_pct
    finding = Finding(
        _severity(cc.harm, t),
        f"cause-{srcs[0].kind}",
        f"{cc.main.vector} on CPU{cc.cpu}",
        _title(cc, srcs[0], cc.harm),
        tuple(evidence),
        "apply the actions below (each with its undo)" if actions else "move the source's work off this CPU, or the waiting tasks to another",
        {"cpu": cc.cpu, "vector": cc.main.vector, "pct": round(taken, 1), "harm": harm_score(taken, cc.harm),
         "lost_per_s": round(cc.harm.lost_per_s, 1), "max_wait_pct": round(cc.harm.max_wait_pct, 1),
         "mechanism": srcs[0].kind, "measured": int(cc.measured)},
        tuple(actions),
    )
    irqs = {s.irq for s in srcs if s.irq} | ({"CAL"} if any(s.kind == "rps" for s in srcs) else set())
    return Cause(finding, frozenset({cc.cpu}), frozenset(irqs), CPU_SYMPTOMS)


# --- a real-time task starving ksoftirqd ----------------------------------------------------------


def _rt_hog(model: CausalModel, cpu: int, t: Thresholds) -> tuple[ThreadShare, ThreadShare] | None:
    hogs = [th for th in model.threads if th.cpu == cpu and not th.thread.kthread and th.thread.policy in ("fifo", "rr") and th.run_pct >= t.rt_hog_pct]
    ks = next((th for th in model.threads if th.thread.kthread and th.thread.comm == f"ksoftirqd/{cpu}"), None)
    if not hogs or ks is None or ks.wait_pct < t.starved_wait_pct:
        return None
    return max(hogs, key=lambda th: th.run_pct), ks


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


def _starvation(cc: CpuCause, model: CausalModel, t: Thresholds) -> Cause | None:
    found = _rt_hog(model, cc.cpu, t)
    if found is None:
        return None
    hog, ks = found
    cpu = cc.cpu
    new = _others(model.online, {cpu})
    actions = [task_affinity_action(hog.thread.pid, model.online, new,
                                    f"{hog.who} runs {hog.run_pct:.0f} % of CPU{cpu} above ksoftirqd/{cpu} (SCHED_OTHER)",
                                    f"ksoftirqd/{cpu} runs again; deferred softirqs stop waiting (undo assumes it was unbound)")] if new != model.online else []
    for ns, dev, old in _receivers(model, cc)[:2]:
        actions.append(threaded_napi_action(ns.namespace, dev, old, f"{dev}'s receive work waits in ksoftirqd/{cpu} behind the RT task",
                                            f"NAPI polls in napi/{dev}-N threads; give them a priority above the hog (chrt -f -p PRIO PID)"))
    evidence = [
        f"{hog.who} ran {hog.run_pct:.0f} % of CPU{cpu}",
        f"-> ksoftirqd/{cpu} waited {ks.wait_pct:.0f} % of the sample (SCHED_OTHER, below any RT task)",
        *_time_lines(cc, t), *[f"<- {s.text}" for s in _named_sources(cc, t)], *_harm_lines(cc.harm),
    ]
    harm = harm_score(cc.irq_pct, cc.harm) + ks.wait_pct
    finding = Finding(
        _severity(cc.harm, t) if cc.harm.lost_per_s else Severity.WARNING,
        "cause-rt-starvation", f"CPU{cpu}",
        f"{hog.thread.comm} ({hog.thread.policy.upper()} {hog.thread.rt_priority}) starves ksoftirqd/{cpu}: softirqs on CPU{cpu} wait {ks.wait_pct:.0f} %",
        tuple(evidence),
        "move the real-time task off this CPU, or run NAPI in threads with a priority above it",
        {"cpu": cpu, "pct": round(hog.run_pct, 1), "harm": round(harm, 1), "lost_per_s": round(cc.harm.lost_per_s, 1),
         "max_wait_pct": round(ks.wait_pct, 1), "mechanism": "rt-starvation"},
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
        f"{where} drops {format_rate(rate)} packets/s at the socket in {ns.namespace.label}: the receiver reads slower than they arrive",
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


def causes(model: CausalModel, rates: Rates, t: Thresholds) -> list[Cause]:
    """One Cause per root cause the model shows, with the symptom scope each explains."""
    out: list[Cause] = []
    keeping_up = []
    for cc in model.cpus:
        starved = _starvation(cc, model, t)
        if starved is not None:
            out.append(starved)
        elif cc.irq_pct >= t.softirq_cpu_pct and cc.harm.any(t):
            out.append(_cpu_cause(cc, model, rates, t))
        else:
            out += _limit_causes(cc, rates, t)
            if cc.irq_pct >= t.softirq_cpu_pct and model.threads_known and not cc.harm.any(t):
                keeping_up.append(cc)
    for ns in model.net.namespaces if model.net else ():
        sock = _socket_cause(ns, rates, t)
        if sock is not None:
            out.append(sock)
        for d in ns.devices:
            x = nic_drops(d, ns.namespace)
            nic = _nic_cause(x, t) if x is not None else None
            if nic is not None:
                out.append(nic)
    busy = _busy(keeping_up, t)
    return out + ([busy] if busy else [])
