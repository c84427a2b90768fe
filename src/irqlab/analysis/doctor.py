"""Doctor rules: Rates and the newer Snapshot in, ranked Findings out. Pure; no I/O.

Each rule is a function `(DoctorInput) -> list[Finding]` in RULES. A rule quotes the numbers
it saw and recommends a concrete command or knob; thresholds come from
analysis/thresholds.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from irqlab.analysis.actions import Action, irq_affinity_action
from irqlab.analysis.cause_findings import Cause, causes
from irqlab.analysis.causes import causal_model
from irqlab.analysis.delta import Rates
from irqlab.analysis.findings import Finding, Severity, rank
from irqlab.analysis.netdelta import net_rates, thread_shares
from irqlab.analysis.thresholds import SPURIOUS_DISABLE_UNHANDLED, SPURIOUS_WINDOW, Thresholds
from irqlab.cpulist import format_cpulist
from irqlab.model.net import NetDevice
from irqlab.model.snapshot import IrqLine, Snapshot, Spurious, TaskInfo
from irqlab.model.trace_result import TraceResult
from irqlab.model.vectors import arch_meaning
from irqlab.units import format_rate


@dataclass(frozen=True, slots=True)
class DoctorInput:
    """What the rules look at."""

    rates: Rates
    thresholds: Thresholds

    @property
    def after(self) -> Snapshot:
        return self.rates.after


def _irq_subject(line: IrqLine) -> str:
    return f"IRQ {line.irq} ({line.name})" if line.numbered else f"{line.irq} ({arch_meaning(line.irq, line.name)})"


def _top_cpus(cpus: tuple[int, ...], rates: np.ndarray, k: int = 3) -> str:
    order = np.argsort(-np.nan_to_num(rates))[:k]
    return ", ".join(f"CPU{cpus[i]} {format_rate(float(rates[i]))}/s" for i in order if rates[i] > 0)


_WATCH = "`irqlab watch --apply` makes such changes on a storm and undoes them when it ends"


def _storm_nic(snap: Snapshot, irq: str) -> NetDevice | None:
    """The host's network device whose NAPI instance the driver tied to this IRQ (netdev netlink)."""
    host = next((v for v in snap.net.views if v.namespace.host), None) if snap.net is not None else None
    if host is None or not irq.isdigit():
        return None
    index = next((n.ifindex for n in host.napis if n.irq == int(irq)), None)
    return next((d for d in host.devices if index is not None and d.ifindex == index), None)


def _storm_tail(snap: Snapshot, irq: str) -> str:
    """Coalescing and polling: for this IRQ's own device when netlink names it, with its values now."""
    dev = _storm_nic(snap, irq)
    if dev is None:
        return ("for a NIC, coalesce its interrupts (`ethtool -C DEV rx-usecs 50`) or poll it (`echo 2 > "
                "/sys/class/net/DEV/napi_defer_hard_irqs; echo 200000 > /sys/class/net/DEV/gro_flush_timeout`); " + _WATCH)
    n, path = dev.name, f"/sys/class/net/{dev.name}"
    now = (f" (now {dev.napi_defer_hard_irqs} and {dev.gro_flush_timeout_ns}; undo `echo {dev.napi_defer_hard_irqs} > "
           f"{path}/napi_defer_hard_irqs; echo {dev.gro_flush_timeout_ns} > {path}/gro_flush_timeout`)"
           if dev.napi_defer_hard_irqs is not None and dev.gro_flush_timeout_ns is not None else "")
    return (f"it is {n}'s: coalesce its interrupts (`ethtool -C {n} rx-usecs 50`; `ethtool -c {n}` shows the value to "
            f"restore) or poll it (`echo 2 > {path}/napi_defer_hard_irqs; echo 200000 > {path}/gro_flush_timeout`{now}); " + _WATCH)


def _storm_advice(line: IrqLine, snap: Snapshot, busiest: int | None, rate: float) -> tuple[str, tuple[Action, ...]]:
    """(advice, the affinity write that takes the storm off its busiest CPU, when it can move)."""
    if not line.numbered:
        advice = {
            "CAL": "function-call IPIs usually come from RPS steering packets to other CPUs: "
            "check /sys/class/net/*/queues/rx-*/rps_cpus, or use multi-queue RSS instead",
            "RES": "rescheduling IPIs come from cross-CPU wake-ups: pin communicating tasks "
            "to the CPU that receives their interrupts (taskset), or enable RFS",
            "LOC": "a very high local timer rate means busy hrtimers; check `perf top` and "
            "timer-heavy tasks",
        }
        return advice.get(line.irq, "an architecture vector at this rate points at its source; trace it with `irqlab trace`"), ()
    irq = line.irq
    online = snap.host.online_cpus or ()
    away = tuple(c for c in online if c != busiest)
    why = f"CPU{busiest} handles {format_rate(rate)}/s of IRQ {irq}, time its tasks lose"
    effect = f"CPU{busiest} no longer handles it; until its source is fixed the storm lands on {_cpus_label(away)}"
    move, reason = _move_irq(snap, irq, busiest, away, why, effect)
    if move is not None:
        return f"move it off CPU{busiest} (below); {_storm_tail(snap, irq)}", (move,)
    return f"{reason}; {_storm_tail(snap, irq)}", ()


def _move_irq(snap: Snapshot, irq: str, off: int | None, to: tuple[int, ...], why: str, effect: str) -> tuple[Action | None, str]:
    """The write of /proc/irq/N/smp_affinity_list that takes one numbered IRQ off CPU `off` onto
    `to` (its old value the undo), or None and why no such write is offered."""
    info = snap.irqinfo.get(int(irq)) if irq.isdigit() else None
    if info is not None and info.managed:
        return None, (f"IRQ {irq} is managed: the kernel placed it with its device's queues and refuses affinity "
                      "writes (EPERM), so it cannot be moved")
    if off is None or info is None or info.affinity is None or not to:
        return None, f"spread or move it: `echo <cpus> > /proc/irq/{irq}/smp_affinity_list`"
    if off not in info.affinity:
        return None, (f"its affinity {format_cpulist(info.affinity)} already leaves CPU{off} out, yet CPU{off} "
                      "handled it (a move not yet taken effect, or a chip that ignores it)")
    return irq_affinity_action(irq, info.affinity, to, why, effect), ""


def _cpus_label(cpus: tuple[int, ...]) -> str:
    return f"CPU{cpus[0]}" if len(cpus) == 1 else f"CPUs {format_cpulist(cpus)}"


def rule_storm(d: DoctorInput) -> list[Finding]:
    """Interrupt rates of one row above the storm thresholds."""
    irq = d.rates.interrupts
    if irq is None:
        return []
    t = d.thresholds
    out = []
    for k in np.flatnonzero(np.nan_to_num(irq.total_rate) >= t.storm_warn_rate):
        line, rate = irq.lines[k], float(irq.total_rate[k])
        sev = Severity.CRITICAL if rate >= t.storm_crit_rate else Severity.WARNING
        limit = t.storm_crit_rate if sev is Severity.CRITICAL else t.storm_warn_rate
        per_cpu = np.nan_to_num(irq.rate[k])
        busiest = irq.cpus[int(np.argmax(per_cpu))] if line.per_cpu and per_cpu.size and per_cpu.max() > 0 else None
        advice, actions = _storm_advice(line, d.after, busiest, rate)
        out.append(
            Finding(
                sev,
                "storm",
                _irq_subject(line),
                f"interrupt storm: {format_rate(rate)} interrupts/s on {line.irq}",
                (
                    f"{format_rate(rate)}/s over {d.rates.interval_s:.1f} s (limit {format_rate(limit)}/s)",
                    f"busiest CPUs: {_top_cpus(irq.cpus, irq.rate[k])}" if line.per_cpu else "one total, no per-CPU counts",
                ),
                advice,
                {"irq": line.irq, "rate_per_s": rate},
                actions,
            )
        )
    return out


def _softirq_breakdown(d: DoctorInput, cpu: int) -> str:
    s = d.rates.softirqs
    if s is None or cpu not in s.cpus:
        return ""
    col = s.rate[:, s.cpus.index(cpu)]
    parts = [f"{s.vectors[i]} {format_rate(float(col[i]))}/s" for i in np.argsort(-np.nan_to_num(col))[:3] if col[i] > 0]
    return ", ".join(parts)


def _sources_on(d: DoctorInput, cpu: int) -> tuple[str, ...]:
    """Evidence lines: the busiest softirq vectors and hard-IRQ rows on one CPU, by rate."""
    out = []
    mix = _softirq_breakdown(d, cpu)
    if mix:
        out.append(f"softirqs on CPU{cpu}: {mix}")
    irq = d.rates.interrupts
    if irq is not None and cpu in irq.cpus and irq.lines:
        col = np.nan_to_num(irq.rate[:, irq.cpus.index(cpu)])
        rows = [f"{_irq_subject(irq.lines[k])} {format_rate(float(col[k]))}/s" for k in np.argsort(-col)[:3] if col[k] > 0]
        if rows:
            out.append(f"hard IRQs on CPU{cpu}: {', '.join(rows)}")
    return tuple(out)


def rule_ksoftirqd(d: DoctorInput) -> list[Finding]:
    """ksoftirqd/N using a large share of its CPU: softirq work deferred out of interrupt exit."""
    t = d.thresholds
    budget = d.after.sysctl.get("net.core.netdev_budget")
    out = []
    for cpu, pct in sorted(d.rates.ksoftirqd_pct().items()):
        if pct < t.ksoftirqd_warn_pct:
            continue
        sev = Severity.CRITICAL if pct >= t.ksoftirqd_crit_pct else Severity.WARNING
        evidence = [f"ksoftirqd/{cpu} used {pct:.1f} % of CPU{cpu} (limit {t.ksoftirqd_warn_pct:.0f} %)"]
        mix = _softirq_breakdown(d, cpu)
        if mix:
            evidence.append(f"softirqs on CPU{cpu}: {mix}")
        if d.after.kernel is not None and d.after.kernel.realtime:
            out.append(_rt_ksoftirqd(d, cpu, pct, sev, tuple(evidence)))
            continue
        out.append(
            Finding(
                sev,
                "ksoftirqd-pressure",
                f"CPU{cpu}",
                f"ksoftirqd/{cpu} at {pct:.1f} % CPU: softirqs overflow interrupt exit",
                tuple(evidence),
                "handle_softirqs() hands work to ksoftirqd after 10 restarts or 2 ms "
                "(kernel/softirq.c); spread the source over more CPUs (IRQ affinity, "
                "RSS queues, or RPS: `echo <mask> > /sys/class/net/DEV/queues/rx-0/rps_cpus`)"
                + (f", or raise net.core.netdev_budget (now {budget})" if budget else ""),
                {"cpu": cpu, "pct": pct},
            )
        )
    return out


def _concentrated(cpus: tuple[int, ...], per_cpu: np.ndarray, t: Thresholds) -> tuple[int, float, float] | None:
    total = float(np.nansum(per_cpu))
    if len(cpus) < 2 or total < t.concentration_min_rate:
        return None
    i = int(np.nanargmax(per_cpu))
    share = float(per_cpu[i]) / total
    return (cpus[i], share, total) if share >= t.concentration_share else None


def _idle_elsewhere(d: DoctorInput, busy_cpu: int) -> tuple[int, ...]:
    """The other CPUs that were at least idle_other_pct idle over the sample."""
    cpu = d.rates.cpu
    if cpu is None:
        return ()
    idle = cpu.field("idle")
    return tuple(c for i, c in enumerate(cpu.cpus)
                 if c != busy_cpu and not np.isnan(idle[i]) and float(idle[i]) >= d.thresholds.idle_other_pct)


def _idle_line(d: DoctorInput, busy_cpu: int) -> tuple[tuple[str, ...], bool]:
    """The evidence line naming the CPUs that idled while busy_cpu worked (none when none did), and whether any did."""
    idle = _idle_elsewhere(d, busy_cpu)
    if not idle:
        return (), False
    were = "was" if len(idle) == 1 else "were"
    return (f"{_cpus_label(idle)} {were} more than {d.thresholds.idle_other_pct:.0f} % idle",), True


def _concentration(d: DoctorInput, code: str, subject: str, what: str, hit: tuple[int, float, float], load: str, advice: str,
                   metrics: dict[str, float | int | str | None]) -> Finding:
    """One load piled on one CPU: a warning when other CPUs idled meanwhile, else info."""
    cpu, share, total = hit
    idle_lines, idle = _idle_line(d, cpu)
    return Finding(
        Severity.WARNING if idle else Severity.INFO,
        code,
        subject,
        f"{share:.0%} of {what} on CPU{cpu}",
        (load,) + idle_lines,
        advice,
        metrics | {"cpu": cpu, "share": share, "rate_per_s": total},
    )


def rule_concentration(d: DoctorInput) -> list[Finding]:
    """Softirq or hard-IRQ load piled on one CPU (suggest affinity or RPS)."""
    t = d.thresholds
    out = []
    s = d.rates.softirqs
    for name in ("NET_RX", "NET_TX", "BLOCK", "TASKLET"):
        rate = s.vector_rate(name) if s is not None else None
        hit = _concentrated(s.cpus, rate, t) if s is not None and rate is not None else None
        if hit is not None:
            cpu, share, total = hit
            load = f"{name} {format_rate(total)}/s in total, CPU{cpu} {format_rate(share * total)}/s"
            what = f"{name} softirqs run"
            if name == "TASKLET" and d.after.kernel is not None and d.after.kernel.bh_workqueues:
                what = "TASKLET softirqs (tasklets and BH workqueue work, Linux >= 6.9) run"
            out.append(_concentration(d, "softirq-concentration", name, what, hit, load,
                                      "spread the receive work: give the NIC's queue IRQs different CPUs "
                                      "(/proc/irq/N/smp_affinity_list), or enable RPS "
                                      "(`echo <mask> > /sys/class/net/DEV/queues/rx-0/rps_cpus`)", {"vector": name}))
    irq = d.rates.interrupts
    numbered = np.array([line.numbered for line in irq.lines], dtype=bool) if irq is not None else np.zeros(0, dtype=bool)
    hit = _concentrated(irq.cpus, np.nansum(irq.rate[numbered], axis=0), t) if irq is not None and numbered.any() else None
    if hit is not None:
        cpu, share, total = hit
        load = f"{format_rate(total)} device interrupts/s, CPU{cpu} takes {format_rate(share * total)}/s"
        advice, actions = _spread_irqs(d, cpu)
        out.append(replace(_concentration(d, "irq-concentration", f"CPU{cpu}", "device interrupts land", hit, load, advice, {}),
                           actions=actions))
    return out


def _spread_irqs(d: DoctorInput, cpu: int) -> tuple[str, tuple[Action, ...]]:
    """Move the busiest movable device IRQ that lands on cpu to the CPUs that idled (else every other one)."""
    irq = d.rates.interrupts
    assert irq is not None
    col = np.nan_to_num(irq.rate[:, irq.cpus.index(cpu)])
    busiest = [k for k in np.argsort(-col) if irq.lines[k].numbered and col[k] > 0]
    idlers = _idle_elsewhere(d, cpu)
    to = idlers or tuple(c for c in (d.after.host.online_cpus or ()) if c != cpu)
    refused: list[str] = []
    for k in busiest[:5]:
        line, rate = irq.lines[k], float(col[k])
        move, reason = _move_irq(d.after, line.irq, cpu, to, f"IRQ {line.irq} ({line.name}) is the busiest device IRQ on CPU{cpu}, "
                                 f"{format_rate(rate)}/s", f"CPU{cpu} stops taking its {format_rate(rate)}/s; {_cpus_label(to)} "
                                 + ("idled meanwhile" if idlers else "take it"))
        if move is not None:
            lead = f"{'; '.join(refused)}; so " if refused else ""
            return f"{lead}move IRQ {line.irq} ({line.name}) off CPU{cpu} (below), or let irqbalance spread the IRQs", (move,)
        refused.append(reason)
    if refused:
        return "; ".join(refused) + "; let irqbalance spread the other IRQs", ()
    return "move the busiest IRQs to idle CPUs (`echo <cpus> > /proc/irq/N/smp_affinity_list`) or let irqbalance do it", ()


def rule_softirq_cpu(d: DoctorInput) -> list[Finding]:
    """A CPU spending a large share of its time in softirq (from /proc/stat) while others idle."""
    cpu = d.rates.cpu
    if cpu is None:
        return []
    t = d.thresholds
    out = []
    soft, hard = cpu.field("softirq"), cpu.field("irq")
    for i, c in enumerate(cpu.cpus):
        busy = float(np.nan_to_num(soft[i])) + float(np.nan_to_num(hard[i]))
        if busy < t.softirq_cpu_pct:
            continue
        out.append(
            Finding(
                Severity.WARNING,
                "irq-time",
                f"CPU{c}",
                f"CPU{c} spends {busy:.0f} % of its time in interrupt context",
                (f"/proc/stat: softirq {np.nan_to_num(soft[i]):.1f} %, irq {np.nan_to_num(hard[i]):.1f} %",)
                + _sources_on(d, c) + _idle_line(d, c)[0],
                "no one source of it was found to move (a cause finding names it, with its fix, when the doctor "
                "can tell what raises it): spread the receive work over more CPUs, with NIC queue IRQs "
                "(`/proc/irq/N/smp_affinity_list`) or RPS (`/sys/class/net/DEV/queues/rx-N/rps_cpus`)",
                {"cpu": c, "pct": busy},
            )
        )
    return out


# rule_softirq_cpu() and rule_softnet() open alike (their table, or no finding; then the limits):
# each rule in RULES reads one table on its own, by design, so the two openings stay apart.
def rule_softnet(d: DoctorInput) -> list[Finding]:
    """Softnet drops (backlog full) and time_squeeze (budget or time ran out)."""
    sn = d.rates.softnet
    if sn is None:
        return []
    t = d.thresholds
    ctl = d.after.sysctl
    out = []
    drops, squeeze = sn.field("dropped"), sn.field("time_squeeze")
    for i, cpu in enumerate(sn.cpus):
        label = f"CPU{cpu}" if sn.cpu_ids_known else f"row {i} (CPU{cpu}?)"
        if drops[i] > 0:
            out.append(
                Finding(
                    Severity.CRITICAL if drops[i] >= t.drop_crit_rate else Severity.WARNING,
                    "softnet-drops",
                    label,
                    f"packets dropped on {label}: the per-CPU backlog queue was full",
                    (f"dropped {format_rate(float(drops[i]))}/s (softnet_stat column 2)",),
                    "raise net.core.netdev_max_backlog"
                    + (f" (now {ctl['net.core.netdev_max_backlog']})" if "net.core.netdev_max_backlog" in ctl else "")
                    + ", e.g. `sysctl -w net.core.netdev_max_backlog=4096`, or spread RPS",
                    {"cpu": cpu, "rate_per_s": float(drops[i])},
                )
            )
        if squeeze[i] >= t.squeeze_warn_rate:
            budget = ctl.get("net.core.netdev_budget")
            usecs = ctl.get("net.core.netdev_budget_usecs")
            out.append(
                Finding(
                    Severity.WARNING,
                    "time-squeeze",
                    label,
                    f"net_rx_action ran out of budget or time on {label}",
                    (f"time_squeeze {format_rate(float(squeeze[i]))}/s (softnet_stat column 3)",),
                    "raise net.core.netdev_budget"
                    + (f" (now {budget})" if budget else "")
                    + " and/or net.core.netdev_budget_usecs"
                    + (f" (now {usecs})" if usecs else "")
                    + ", e.g. `sysctl -w net.core.netdev_budget=600`",
                    {"cpu": cpu, "rate_per_s": float(squeeze[i])},
                )
            )
    return out


def rule_affinity(d: DoctorInput) -> list[Finding]:
    """Effective affinity outside the requested smp_affinity: the request was not applied."""
    out = []
    names = {line.irq: line.name for line in (d.after.interrupts.lines if d.after.interrupts else ())}
    for irq, info in sorted(d.after.irqinfo.items()):
        if info.affinity is None or info.effective_affinity is None or not info.effective_affinity:
            continue
        if set(info.effective_affinity) <= set(info.affinity):
            continue
        out.append(
            Finding(
                Severity.WARNING,
                "affinity-mismatch",
                f"IRQ {irq} ({names.get(str(irq), '?')})",
                f"IRQ {irq} runs on CPUs its smp_affinity does not allow",
                (
                    f"smp_affinity_list {format_cpulist(info.affinity)}, "
                    f"effective_affinity_list {format_cpulist(info.effective_affinity)}",
                ),
                "the kernel could not apply the mask (managed IRQ, no free vectors on those "
                "CPUs, or a pending move); check `dmesg` and write a mask it can honour",
                {"irq": irq},
            )
        )
    return out


def _unhandled_in_sample(prev: Spurious | None, now: Spurious) -> int:
    """Unhandled interrupts of one line between two readings of its spurious file (a low estimate).

    note_interrupt() (kernel/irq/spurious.c, v6.18) restarts irqs_unhandled at 0 with every
    100,000-interrupt window, and at 1 when the last unhandled interrupt is more than HZ/10 old
    (so that stray ones never add up); last_unhandled moves with each unhandled interrupt.
    """
    if prev is None:
        return 0
    if now.unhandled > prev.unhandled and now.count >= prev.count:
        return now.unhandled - prev.unhandled
    if now.last_unhandled_ms != prev.last_unhandled_ms:
        return now.unhandled  # the count restarted since the first reading: at least these
    return 0


def _interrupts_in_sample(line_delta: float | None, prev: Spurious | None, now: Spurious) -> int:
    """The line's interrupts during the sample: its /proc/interrupts delta, else the window's growth."""
    if line_delta is not None and np.isfinite(line_delta):
        return int(line_delta)
    if prev is None:
        return 0
    return now.count - prev.count if now.count >= prev.count else now.count + SPURIOUS_WINDOW - prev.count


def _spurious_severity(sp: Spurious, unhandled: int, interrupts: int, t: Thresholds) -> Severity | None:
    """CRITICAL near the kernel's limit, WARNING for a meaningful share of the sample, else None.

    Only unhandled interrupts during the sample count: an old total harms no one now.
    """
    if unhandled == 0:
        return None
    share = unhandled / interrupts if interrupts else 1.0
    # On course for "nobody cared": the window is nearly full and, were every interrupt left
    # in it unhandled, the kernel would still disable the line at its end.
    on_course = (
        sp.count >= t.spurious_crit_window_fill * SPURIOUS_WINDOW
        and sp.unhandled + SPURIOUS_WINDOW - sp.count > SPURIOUS_DISABLE_UNHANDLED
    )
    if on_course or (interrupts >= t.spurious_crit_min_interrupts and share >= t.spurious_crit_share):
        return Severity.CRITICAL
    if unhandled >= t.spurious_warn_min_unhandled and share >= t.spurious_warn_share:
        return Severity.WARNING
    return None


def _landing_cpu(d: DoctorInput, irq: str) -> tuple[int, float, str] | None:
    """The CPU a line's interrupts landed on most during the sample, its share of that CPU's device interrupts, and a line saying so."""
    rates = d.rates.interrupts
    if rates is None:
        return None
    k = next((i for i, line in enumerate(rates.lines) if line.irq == irq), None)
    if k is None or not rates.lines[k].per_cpu:
        return None
    row = np.nan_to_num(rates.rate[k])
    if not row.any():
        return None
    j = int(np.argmax(row))
    numbered = np.array([line.numbered for line in rates.lines], dtype=bool)
    on_cpu = float(np.nansum(rates.rate[numbered, j]))
    share = float(row[j]) / on_cpu if on_cpu > 0 else 1.0
    info = d.after.irqinfo.get(int(irq)) if irq.isdigit() else None
    aff = f" (smp_affinity_list {format_cpulist(info.affinity)})" if info is not None and info.affinity else ""
    cpu = rates.cpus[j]
    return cpu, share, f"lands on CPU{cpu}{aff}: {format_rate(float(row[j]))}/s there, {100 * share:.0f} % of CPU{cpu}'s device interrupts"


def rule_spurious(d: DoctorInput) -> list[Finding]:
    """Unhandled interrupts counted by the kernel's spurious detector (kernel/irq/spurious.c).

    Judged by the share of the line's interrupts that went unhandled during the sample: a few
    stray ones on a virtio queue that handled thousands are normal; the kernel itself acts only
    when more than 99,900 of 100,000 interrupts were unhandled (note_interrupt(), v6.18).
    """
    t = d.thresholds
    out = []
    irq_rates = d.rates.interrupts
    names = {line.irq: line.name for line in (d.after.interrupts.lines if d.after.interrupts else ())}
    deltas = {line.irq: float(irq_rates.total_delta[k]) for k, line in enumerate(irq_rates.lines)} if irq_rates else {}
    before = d.rates.before.irqinfo
    quiet: list[str] = []
    any_in_sample = False
    for irq, info in sorted(d.after.irqinfo.items()):
        sp = info.spurious
        prev = before[irq].spurious if irq in before else None
        if sp is None:
            continue
        grew = _unhandled_in_sample(prev, sp)
        if sp.unhandled == 0 and grew == 0:
            continue
        interrupts = max(_interrupts_in_sample(deltas.get(str(irq)), prev, sp), grew)
        share = grew / interrupts if interrupts else 0.0
        subject = f"IRQ {irq} ({names.get(str(irq), '?')})"
        sev = _spurious_severity(sp, grew, interrupts, t)
        lands = _landing_cpu(d, str(irq)) if sev is not None else None
        if sev is None:
            any_in_sample |= grew > 0
            quiet.append(
                f"{subject}: {sp.unhandled} of {sp.count}"
                + (f"; {grew} of {interrupts} during the sample ({100 * share:.2f} %)" if grew else "")
            )
            continue
        out.append(
            Finding(
                sev,
                "unhandled-irq",
                subject,
                f"IRQ {irq}{f' on CPU{lands[0]}' if lands else ''} left {100 * share:.0f} % of its interrupts unhandled "
                f"during the sample ({grew} of {interrupts})",
                (
                    f"during the sample: {grew} unhandled of {interrupts} interrupts ({100 * share:.2f} %; "
                    f"warning from {100 * t.spurious_warn_share:g} %, critical from {100 * t.spurious_crit_share:g} %)",
                    f"/proc/irq/{irq}/spurious: {sp.unhandled} unhandled of the last {sp.count} interrupts; "
                    f"the kernel disables the line at {SPURIOUS_DISABLE_UNHANDLED:,} of {SPURIOUS_WINDOW:,}",
                ) + ((lands[2],) if lands else ()),
                "a device raises interrupts no handler claims (shared line, broken firmware, "
                "wrong trigger type): check `dmesg | grep -i 'nobody cared'`, the driver, "
                "or boot with `irqpoll`",
                {"irq": irq, "unhandled": sp.unhandled, "count": sp.count, "grew": grew,
                 "interrupts": interrupts, "share": share, "cpu": lands[0] if lands else None,
                 "cpu_share": lands[1] if lands else None},
            )
        )
    if quiet:
        out.append(
            Finding(
                Severity.INFO,
                "unhandled-irq",
                f"{len(quiet)} IRQs",
                f"{len(quiet)} IRQs have a few "
                + ("unhandled interrupts (too few during the sample to matter)" if any_in_sample
                   else "old unhandled interrupts (none during the sample)"),
                tuple(quiet[:10]),
                "usually harmless (a shared or virtio line); it matters when "
                f"{100 * t.spurious_warn_share:g} % or more of a line's interrupts go unhandled",
                {"count": len(quiet)},
            )
        )
    return out


def rule_irq_threads(d: DoctorInput) -> list[Finding]:
    """Threaded IRQ handlers: list them with policy and priority; flag non-RT ones."""
    threads = [t for t in d.after.tasks if t.kind == "irq"]
    if not threads:
        return []
    pct = {r.task.pid: r.cpu_pct for r in d.rates.tasks}
    lines = tuple(
        f"{t.comm} (pid {t.pid}): {t.policy.upper()} {t.rt_priority}, CPUs "
        f"{format_cpulist(t.allowed_cpus) if t.allowed_cpus else '?'}, {pct.get(t.pid, 0.0):.1f} % CPU"
        for t in sorted(threads, key=lambda t: (t.irq or 0, t.pid))
    )
    non_rt = [t for t in threads if t.policy not in ("fifo", "rr")]
    out = [
        Finding(
            Severity.INFO,
            "irq-threads",
            f"{len(threads)} IRQ threads",
            f"{len(threads)} threaded IRQ handlers (default SCHED_FIFO 50)",
            lines[:20] + ((f"... and {len(lines) - 20} more",) if len(lines) > 20 else ()),
            "real-time tasks above priority 50 preempt these handlers; give a latency-critical "
            "device's thread a higher priority with `chrt -f -p <prio> <pid>`",
            {"count": len(threads)},
        )
    ]
    if non_rt:
        out.append(
            Finding(
                Severity.WARNING,
                "irq-thread-policy",
                ", ".join(t.comm for t in non_rt[:5]),
                f"{len(non_rt)} IRQ threads do not run at a real-time policy",
                tuple(f"{t.comm}: {t.policy} nice {t.nice}" for t in non_rt[:10]),
                "IRQ threads normally run SCHED_FIFO 50 (kernel/irq/manage.c setup_irq_thread); "
                "restore with `chrt -f -p 50 <pid>`",
                {"count": len(non_rt)},
            )
        )
    return out


def _rt_ksoftirqd(d: DoctorInput, cpu: int, pct: float, sev: Severity, evidence: tuple[str, ...]) -> Finding:
    """ksoftirqd/N busy on PREEMPT_RT: softirqs run in task context, so its priority decides who waits."""
    ks = next((t for t in d.after.tasks if t.kind == "ksoftirqd" and t.cpu == cpu), None)
    actions: tuple[Action, ...] = ()
    if ks is not None:
        old = f"{ks.policy} {ks.rt_priority}"
        evidence += (f"ksoftirqd/{cpu} (pid {ks.pid}) runs {ks.policy.upper()} {ks.rt_priority}",)
        if ks.policy not in ("fifo", "rr"):
            actions = (Action("task-policy", f"pid {ks.pid}", old, "fifo 1",
                              "on PREEMPT_RT any SCHED_FIFO/RR task on this CPU runs before ksoftirqd",
                              "softirqs raised outside a task's own bottom half run before SCHED_OTHER work", pid=ks.pid),)
    fix = (f"; give it the lowest RT priority: `{actions[0].command}` (undo: `{actions[0].undo}`)" if actions else
           "; lower the RT tasks above it on this CPU (`chrt -p <prio> <pid>`) or move them")
    return Finding(
        sev,
        "ksoftirqd-pressure",
        f"CPU{cpu}",
        f"ksoftirqd/{cpu} at {pct:.1f} % CPU on a PREEMPT_RT kernel: softirqs wait for its priority",
        evidence,
        "on PREEMPT_RT softirqs run in task context: in the task that raised them (its local_bh_enable()), "
        f"else in ksoftirqd/{cpu} (timers in ktimers/{cpu}), scheduled like any thread, so an RT task above it "
        "starves them (kernel/softirq.c); netdev_budget does not help here" + fix,
        {"cpu": cpu, "pct": pct},
        actions,
    )


def _run_pct(d: DoctorInput) -> dict[int, float]:
    """Each thread's share of a CPU during the sample, by tid (Snapshot.threads, read with --net or on RT)."""
    before = {t.tid: t.run_ns for t in d.rates.before.threads}
    a, b = d.after.threads_ns, d.rates.before.threads_ns
    ns = a - b if a is not None and b is not None else d.rates.interval_ns
    return {t.tid: 100.0 * (t.run_ns - before[t.tid]) / ns for t in d.after.threads if t.tid in before and ns > 0}


def rule_preempt_rt(d: DoctorInput) -> list[Finding]:
    """PREEMPT_RT: every handler is a thread, so priorities decide; an IRQ thread below a busy RT task on its CPU waits."""
    k = d.after.kernel
    if k is None or not k.realtime:
        return []
    irq_threads = [t for t in d.after.tasks if t.kind == "irq"]
    ktimers = [t for t in d.after.tasks if t.kind == "ktimers"]
    out = [Finding(
        Severity.INFO,
        "preempt-rt",
        "kernel",
        "PREEMPT_RT kernel: every interrupt handler is a thread and softirqs run in task context",
        (f"{k.release or 'kernel'}: PREEMPT_RT (from {k.realtime_from})",
         f"{len(irq_threads)} irq/N-name threads, {len(ktimers)} ktimers/N threads"),
        "handlers run in irq/N-name threads (SCHED_FIFO 50), softirqs in the task that raised them, in "
        "ksoftirqd/N, or for timers in ktimers/N (SCHED_FIFO 1): thread priorities decide latency, "
        "set them with `chrt -p`",
        {"irq_threads": len(irq_threads)},
    )]
    run = _run_pct(d)
    for it in irq_threads:
        if it.policy not in ("fifo", "rr"):
            continue
        # An IRQ thread follows its IRQ's effective affinity (irq_thread_check_affinity(),
        # kernel/irq/manage.c): where it last ran, else where it may run.
        cpus = {it.last_cpu} if it.last_cpu is not None else set(it.allowed_cpus or ())
        above = [th for th in d.after.threads if not th.kthread and th.policy in ("fifo", "rr")
                 and th.rt_priority > it.rt_priority and th.last_cpu in cpus]
        for th in sorted(above, key=lambda th: -run.get(th.tid, 0.0))[:1]:
            pct = run.get(th.tid, 0.0)
            new = min(th.rt_priority + 1, 99)
            act = Action("task-policy", f"pid {it.pid}", f"{it.policy} {it.rt_priority}", f"{it.policy} {new}",
                         f"{th.comm} (pid {th.tid}) runs {th.policy.upper()} {th.rt_priority} on CPU{th.last_cpu}",
                         f"{it.comm} preempts {th.comm} instead of waiting for it", pid=it.pid)
            out.append(Finding(
                Severity.WARNING if pct >= d.thresholds.rt_hog_pct else Severity.INFO,
                "rt-irq-thread-priority",
                f"{it.comm} (pid {it.pid})",
                f"{it.comm} runs at {it.policy.upper()} {it.rt_priority}, below {th.comm} "
                f"({th.policy.upper()} {th.rt_priority}) on CPU{th.last_cpu}",
                (f"{it.comm} (pid {it.pid}): {it.policy.upper()} {it.rt_priority}, CPUs "
                 f"{format_cpulist(tuple(sorted(cpus))) if cpus else '?'}",
                 f"{th.comm} (pid {th.tid}): {th.policy.upper()} {th.rt_priority}, {pct:.0f} % of CPU{th.last_cpu} during the sample"),
                f"the device's interrupts wait while {th.comm} runs; if the device matters more, raise its thread: "
                f"`{act.command}` (undo: `{act.undo}`), or move {th.comm} to another CPU",
                {"pid": it.pid, "cpu": th.last_cpu, "pct": pct},
                (act,),
            ))
    return out


def rule_irq_time_accounting(d: DoctorInput) -> list[Finding]:
    """Say once when the kernel does not account IRQ time: /proc/stat and schedstat then hide it."""
    k = d.after.kernel
    if k is None or k.irq_time_accounting is not False:
        return []
    return [Finding(
        Severity.INFO,
        "no-irq-time-accounting",
        "kernel",
        "this kernel does not account IRQ time (no CONFIG_IRQ_TIME_ACCOUNTING)",
        (k.irq_time_evidence,),
        "/proc/stat's irq column stays 0 and its softirq column is sampled by the tick; interrupt time is "
        "counted as the run time of the task it interrupted; irqlab corrects the tasks' shares for it and "
        "measures each vector's time from a trace when run as root",
        {},
    )]


def _busiest_irq_cpu(d: DoctorInput) -> tuple[str, ...]:
    """Evidence: the CPU with the most interrupt time in /proc/stat, and what ran there."""
    cpu = d.rates.cpu
    if cpu is None or not cpu.cpus:
        return ()
    busy = np.nan_to_num(cpu.field("softirq")) + np.nan_to_num(cpu.field("irq"))
    i = int(np.argmax(busy))
    if busy[i] <= 0:
        return ()
    c = cpu.cpus[i]
    return (f"busiest CPU in interrupts: CPU{c}, {busy[i]:.0f} % (/proc/stat irq + softirq)",) + _sources_on(d, c)


def rule_pressure(d: DoctorInput) -> list[Finding]:
    """IRQ pressure stall information (Linux >= 6.1 with IRQ time accounting)."""
    p = d.after.pressure
    if p is None or p.avg10 < d.thresholds.pressure_warn_avg10:
        return []
    return [
        Finding(
            Severity.WARNING,
            "irq-pressure",
            "PSI irq",
            f"tasks lost {p.avg10:.1f} % of the last 10 s to interrupt handling",
            (f"/proc/pressure/irq full avg10={p.avg10:.2f} avg60={p.avg60:.2f} avg300={p.avg300:.2f}",) + _busiest_irq_cpu(d),
            "spread the interrupt work of the busiest CPU over others (queue IRQ affinity, RPS) or coalesce it "
            "(`ethtool -C DEV rx-usecs 50`); a cause finding above names its source and fix when the doctor can tell it",
            {"pct": p.avg10},
        )
    ]


def rule_unreadable(d: DoctorInput) -> list[Finding]:
    """Say plainly, once per source, what could not be read."""
    seen: dict[tuple[str, str], list[str]] = {}
    for u in d.after.unreadable:
        seen.setdefault((u.source, u.reason), []).append(u.path)
    out = []
    for (source, reason), paths in sorted(seen.items()):
        hint = "run as root to include it" if reason == "permission" else "this kernel or capture lacks it"
        if reason == "parse":
            hint = "the file is not in a format irqlab knows; please report it"
        out.append(
            Finding(
                Severity.INFO,
                "unreadable",
                source,
                f"could not read {source} ({reason})",
                (paths[0] + (f" and {len(paths) - 1} more" if len(paths) > 1 else ""),),
                hint,
                {"source": source, "reason": reason},
            )
        )
    return out


def rule_counter_warnings(d: DoctorInput) -> list[Finding]:
    """Counters that went backwards or IRQs re-allocated during the sample."""
    bad = [w for w in d.rates.warnings if w.kind in ("reset", "reallocated")]
    if not bad:
        return []
    return [
        Finding(
            Severity.INFO,
            "counter-reset",
            f"{len(bad)} counters",
            f"{len(bad)} counters were not differenced",
            tuple(w.message for w in bad[:10]),
            "an IRQ was freed and requested again, or a device was re-bound; sample again",
            {"count": len(bad)},
        )
    ]


def rule_napi_threads(d: DoctorInput) -> list[Finding]:
    """Threaded NAPI: each napi/DEV-ID kthread with its device, policy, priority, CPU and run time.

    Its receive work is thread time (net/core/dev.c napi_threaded_poll(), v6.18), absent from
    %softirq and NET_RX counts, so it is named here whether or not it causes harm.
    """
    threads = [t for t in d.after.tasks if t.kind == "napi"]
    if not threads:
        return []
    pct = {r.task.pid: r.cpu_pct for r in d.rates.tasks}

    def line(t: TaskInfo) -> str:
        dev, _, nid = t.comm.removeprefix("napi/").rpartition("-")
        polls = f"polls {dev}" if dev and nid.isdigit() else "its device name cut with the comm"
        prio = f"{t.policy.upper()} {t.rt_priority}" if t.policy in ("fifo", "rr") else f"{t.policy.upper()} nice {t.nice}"
        cpus = format_cpulist(t.allowed_cpus) if t.allowed_cpus else "?"
        where = f"last on CPU{t.last_cpu}" if t.last_cpu is not None else "CPU ?"
        return f"{t.comm} (pid {t.pid}): {polls}, {prio}, {where}, CPUs {cpus}, {pct.get(t.pid, 0.0):.1f} % CPU as thread time"

    ordered = sorted(threads, key=lambda t: (-pct.get(t.pid, 0.0), t.pid))
    total = sum(pct.get(t.pid, 0.0) for t in threads)
    return [Finding(
        Severity.INFO,
        "napi-threads",
        f"{len(threads)} NAPI threads",
        f"{len(threads)} threaded NAPI kthreads ran {total:.1f} % CPU: receive work as thread time, not NET_RX softirq",
        tuple(line(t) for t in ordered[:20]) + ((f"... and {len(ordered) - 20} more",) if len(ordered) > 20 else ()),
        "they compete with tasks like any thread: pin one with `taskset -pc CPUS <pid>`, raise it with "
        "`chrt -f -p 50 <pid>`; `echo 0 > /sys/class/net/DEV/threaded` returns its device to NET_RX softirq",
        {"count": len(threads), "cpu_pct": round(total, 1)},
    )]


RULES: tuple[Callable[[DoctorInput], list[Finding]], ...] = (
    rule_storm,
    rule_ksoftirqd,
    rule_concentration,
    rule_softirq_cpu,
    rule_softnet,
    rule_affinity,
    rule_spurious,
    rule_irq_threads,
    rule_napi_threads,
    rule_preempt_rt,
    rule_irq_time_accounting,
    rule_pressure,
    rule_unreadable,
    rule_counter_warnings,
)


BUSY_FIELDS: tuple[str, ...] = ("user", "nice", "system", "irq", "softirq")  # guest time is inside user/nice


def cpu_busy_pct(rates: Rates) -> dict[int, float]:
    """Each CPU's busy share of the sample in percent (/proc/stat; idle, iowait and steal are not busy).

    The trace findings take it to tell a softirq wait that delayed tasks from one on an idle CPU.
    """
    cpu = rates.cpu
    if cpu is None:
        return {}
    idle = cpu.field("idle")
    busy = np.nansum(np.stack([cpu.field(f) for f in BUSY_FIELDS]), axis=0)
    return {c: float(busy[i]) for i, c in enumerate(cpu.cpus) if not np.isnan(idle[i])}


def summary(rates: Rates) -> Finding:
    """The all-clear, with the totals that show what was looked at."""
    irq_total = float(np.nansum(rates.interrupts.total_rate)) if rates.interrupts else 0.0
    soft_total = float(np.nansum(rates.softirqs.rate)) if rates.softirqs else 0.0
    ks = rates.ksoftirqd_pct()
    ks_max = max(ks.values(), default=0.0)
    return Finding(
        Severity.OK,
        "healthy",
        "machine",
        "no interrupt problem found",
        (
            f"{format_rate(irq_total)} interrupts/s and {format_rate(soft_total)} softirqs/s "
            f"over {rates.interval_s:.1f} s",
            f"busiest ksoftirqd {ks_max:.1f} % CPU",
        ),
        "",
        {"irq_rate_per_s": irq_total, "softirq_rate_per_s": soft_total},
    )


def root_causes(rates: Rates, thresholds: Thresholds, trace: TraceResult | None = None) -> list[Cause] | None:
    """The causal model's findings, or None when the snapshots carry neither network state nor threads."""
    b, a = rates.before, rates.after
    has_net = a.net is not None and b.net is not None
    has_threads = bool(a.threads) and bool(b.threads)
    if not (has_net or has_threads):
        return None
    net = net_rates(b.net, a.net, rates.interval_ns) if a.net is not None and b.net is not None else None
    threads = thread_shares(b.threads, a.threads, rates.interval_ns) if has_threads else ()
    model = causal_model(rates, net, threads, trace, thresholds, threads_known=has_threads)
    return causes(model, rates, thresholds)


def unhandled_cause(f: Finding) -> Cause:
    """An unhandled-interrupt finding as the root cause of its line's storm, and of its CPU's concentration when the line is most of it."""
    cpu, share = f.metrics.get("cpu"), f.metrics.get("cpu_share")
    cpus = frozenset({cpu}) if isinstance(cpu, int) else frozenset()
    bulk = isinstance(share, float) and share >= 0.5
    return Cause(f, cpus, frozenset({str(f.metrics.get("irq"))}), frozenset({"irq-concentration", "irq-time"}) if bulk else frozenset())


def _explainer(f: Finding, found: list[Cause]) -> int | None:
    """The first cause that explains a symptom finding: by its CPU and code, or a storm by its row."""
    cpu = f.metrics.get("cpu")
    for i, c in enumerate(found):
        if f.code == "storm" and str(f.metrics.get("irq")) in c.irqs:
            return i
        if f.code in c.symptoms and isinstance(cpu, int) and cpu in c.cpus:
            return i
    return None


def fold(symptoms: list[Finding], found: list[Cause]) -> list[Finding]:
    """The cause findings, each carrying the symptoms it explains, then the symptoms nothing explains."""
    folded: dict[int, list[Finding]] = {}
    rest = []
    for f in symptoms:
        i = _explainer(f, found)
        if i is None:
            rest.append(f)
        else:
            folded.setdefault(i, []).append(f)
    return [replace(c.finding, folded=tuple(folded.get(i, ()))) for i, c in enumerate(found)] + rest


def diagnose(
    rates: Rates, thresholds: Thresholds | None = None, extra: list[Finding] | None = None, trace: TraceResult | None = None
) -> list[Finding]:
    """Run every rule (plus findings from other analyses, e.g. a trace); ranked, with an all-clear.

    When the snapshots carry network state or per-thread schedstat, the causal model's findings
    lead (analysis/causes.py) and fold the symptom findings they explain; the trace, when
    given, measures each CPU's time per vector. Without them the rules alone run, as before.
    """
    t = thresholds or Thresholds()
    d = DoctorInput(rates, t)
    findings = [f for rule in RULES for f in rule(d)] + list(extra or ())
    found = root_causes(rates, t, trace)
    unhandled = [f for f in findings if f.code == "unhandled-irq" and f.severity >= Severity.WARNING and "irq" in f.metrics]
    if found is not None or unhandled:
        findings = fold([f for f in findings if not any(f is u for u in unhandled)], (found or []) + [unhandled_cause(f) for f in unhandled])
    if not any(f.severity >= Severity.WARNING for f in findings):
        findings.append(summary(rates))
    return rank(findings)
