"""What a run shows: per-vector raise->entry latency, ksoftirqd share, restarts, deferrals, tasks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from irqlab.model.histogram import Histogram
from irqlab.model.vectors import SOFTIRQ_NAMES

if TYPE_CHECKING:
    from irqlab.sim.machine import Machine


@dataclass(frozen=True, slots=True)
class CpuSummary:
    """One CPU over the measured window."""

    cpu: int
    ksoftirqd_pct: float  # ksoftirqd/N run time / window
    softirq_pct: float  # all softirq time (irq_exit, bh_enable, ksoftirqd) / window
    irq_pct: float
    idle_pct: float
    restarts: int
    handoffs: int  # handle_softirqs() ended with work left and woke ksoftirqd
    deferred_irq_exit: int  # irq_exit() left work to a running ksoftirqd (4.9..6.4 rules)
    net_rx_in_ksoftirqd_pct: float  # share of NET_RX runs that ran in ksoftirqd
    time_squeeze: int
    backlog_drops: int
    net_rx_in_tasks_pct: float = 0.0  # ... in other tasks' local_bh_enable(): IRQ threads, senders, readers
    bh_lock_waits: int = 0  # PREEMPT_RT: local_bh_disable() calls that blocked on the CPU's BH lock
    pi_boosts: int = 0  # PREEMPT_RT: BH lock holders boosted to a waiter's priority
    net_rx_runs: int = 0  # NET_RX softirq runs (/proc/softirqs)
    packets_per_net_rx: float = 0.0  # softnet_stat processed / NET_RX runs
    received_rps: int = 0  # softnet_stat received_rps: RPS IPIs taken


@dataclass(frozen=True, slots=True)
class TaskSummary:
    name: str
    cpu: int
    policy: str
    cpu_pct: float
    latency: Histogram | None  # wake -> run, periodic tasks
    received_per_s: float | None  # receivers
    socket_drops: int | None


@dataclass(frozen=True, slots=True)
class Summary:
    scenario: str
    era: str
    window_ns: int
    cpus: tuple[CpuSummary, ...]
    tasks: tuple[TaskSummary, ...]
    raise_latency: dict[str, Histogram]  # per vector that ran
    arrivals_per_s: float
    delivered_per_s: float  # forwarded + received by tasks
    ring_drops: int
    nobody_cared: tuple[int, ...]
    messages: tuple[str, ...]
    heap_events: int
    watch: dict | None = None  # the policy's report ([watch]), its writes, the moved IRQs' CPUs


def _delta(now: list, base: list) -> list:
    """now - base, element by element (nested one level for per-vector lists)."""
    return [_delta(a, b) if isinstance(a, list) else a - b for a, b in zip(now, base)]


def _share(n: int, of: int) -> float:
    return 100.0 * n / of if of else 0.0


def window_counters(m: Machine) -> dict[str, list]:
    """Machine.counters() over the measured window: now minus their values at its start."""
    now = m.counters()
    base = m.window_base
    if base is None:  # the window has not started (a summary of a run cut short)
        return now
    return {k: _delta(v, base[k]) for k, v in now.items()}


def summarize(m: Machine) -> Summary:
    """Every counter and time over the measured window (warm-up excluded), plus the window's histograms."""
    first, last = m.snapshots[0], m.snapshots[-1]
    win = last.taken_ns - first.taken_ns
    base = {t.pid: t.run_ns for t in first.tasks}
    ks = {t.cpu: t.run_ns - base.get(t.pid, 0) for t in last.tasks if t.kind == "ksoftirqd"}
    # Exact ns from the model, not /proc/stat's USER_HZ ticks (10 ms steps on short windows).
    start_times = m.window_times or [dict.fromkeys(c.times, 0) for c in m.cpus]
    w = window_counters(m)
    cpus = []
    for c in range(len(m.softirq_state)):
        times = m.cpus[c].times
        pct = {f: 100.0 * (times[f] - start_times[c][f]) / win for f in ("irq", "softirq", "idle")}
        nrx = w["counts"][c][3]
        cpus.append(CpuSummary(
            c, 100.0 * ks.get(c, 0) / win, pct["softirq"], pct["irq"], pct["idle"], w["restarts"][c],
            w["handoffs"][c], w["deferred"][c], _share(w["ksoftirqd_vectors"][c][3], nrx), w["squeeze"][c],
            w["dropped"][c], _share(w["task_vectors"][c][3], nrx), w["bh_lock_waits"][c], w["pi_boosts"][c], nrx,
            w["processed"][c] / nrx if nrx else 0.0, w["received_rps"][c]))
    per_s = 1e9 / max(win, 1)
    return Summary(
        scenario=m.sc.name, era=m.sc.era, window_ns=win, cpus=tuple(cpus), tasks=tuple(_tasks(m, w, win)),
        raise_latency={SOFTIRQ_NAMES[v]: h for v, h in enumerate(m.raise_latency) if h.count},
        arrivals_per_s=sum(w["arrived"]) * per_s,
        delivered_per_s=(sum(w["forwarded"]) + sum(w["received"])) * per_s,
        ring_drops=sum(w["missed"]),
        nobody_cared=tuple(int(ln.irq) for ln in m.lines if ln.nobody_cared), messages=tuple(m.messages),
        heap_events=m.engine.processed, watch=_watch(m, first, last),
    )


def _watch(m: Machine, first, last) -> dict | None:
    """The controller's report plus what it wrote and where the moved IRQs' interrupts went."""
    report = getattr(m.controller, "report", None)
    if report is None:
        return None
    out = dict(report())
    out["writes"] = [{"time_ns": a.time_ns, "kind": a.write.kind, "target": a.target, "value": a.write.value,
                      "original": a.original, "restore": a.restore} for a in m.policy_log]
    rows = {ln.irq: k for k, ln in enumerate(last.interrupts.lines)}
    moved = sorted({a.write.irq for a in m.policy_log if a.write.kind == "affinity"})
    out["irq_cpu_counts"] = {  # over the window, as `irqlab diff` of the first and last capture
        str(irq): {str(c): int((last.interrupts.counts[rows[str(irq)], j] - first.interrupts.counts[rows[str(irq)], j]) % 2**32)
                   for j, c in enumerate(last.interrupts.cpus)} for irq in moved if str(irq) in rows}
    return out


def _tasks(m: Machine, w: dict[str, list], win: int):
    socks = list(m.sockets)
    for i, (t, spec) in enumerate(zip(m.user_tasks, m.sc.tasks)):
        k = socks.index(spec.name) if spec.name in m.sockets else None
        yield TaskSummary(spec.name, spec.cpu, spec.policy, 100.0 * w["run_ns"][i] / max(win, 1), t.latency,
                          w["received"][k] * 1e9 / max(win, 1) if k is not None else None,
                          w["socket_drops"][k] if k is not None else None)


def summary_json(s: Summary) -> dict:
    """The JSON form (documented in docs/sim.md)."""
    return {
        "scenario": s.scenario, "era": s.era, "window_ns": s.window_ns,
        "cpus": [{k: getattr(c, k) for k in c.__slots__} for c in s.cpus],
        "tasks": [{"name": t.name, "cpu": t.cpu, "policy": t.policy, "cpu_pct": t.cpu_pct,
                   "latency": _stats(t.latency), "received_per_s": t.received_per_s, "socket_drops": t.socket_drops}
                  for t in s.tasks],
        "raise_latency": {v: _stats(h) for v, h in s.raise_latency.items()},
        "arrivals_per_s": s.arrivals_per_s, "delivered_per_s": s.delivered_per_s, "ring_drops": s.ring_drops,
        "nobody_cared": list(s.nobody_cared), "messages": list(s.messages), "heap_events": s.heap_events,
        "watch": s.watch,
    }


def _stats(h: Histogram | None) -> dict | None:
    if h is None or not h.count:
        return None
    st = h.stats()
    return {k: getattr(st, k) for k in st.__slots__}


def render_summary(s: Summary) -> str:
    """Plain-text summary; units in every header, '-' for empty cells."""
    us = lambda v: "-" if v is None else f"{v / 1000:.1f}"  # noqa: E731
    out = [f"irqlab sim - {s.scenario}, {s.era} rules, window {s.window_ns / 1e9:.3f} s (simulated)", ""]
    out.append(f"{'CPU':>3} {'ksoftirqd%':>10} {'softirq%':>9} {'irq%':>6} {'idle%':>6} {'restarts':>9} "
               f"{'handoffs':>9} {'deferred':>9} {'NET_RX@ksd%':>11} {'NET_RX@task%':>12} {'squeeze':>8} {'drops':>7}"
               f" {'NET_RX':>8} {'pkts/run':>8} {'rps_ipi':>8}")
    for c in s.cpus:
        out.append(f"{c.cpu:>3} {c.ksoftirqd_pct:>10.1f} {c.softirq_pct:>9.1f} {c.irq_pct:>6.1f} {c.idle_pct:>6.1f} "
                   f"{c.restarts:>9} {c.handoffs:>9} {c.deferred_irq_exit:>9} {c.net_rx_in_ksoftirqd_pct:>11.1f} "
                   f"{c.net_rx_in_tasks_pct:>12.1f} {c.time_squeeze:>8} {c.backlog_drops:>7} {c.net_rx_runs:>8} "
                   f"{c.packets_per_net_rx:>8.1f} {c.received_rps:>8}")
    if any(c.bh_lock_waits or c.pi_boosts for c in s.cpus):
        out.append("PREEMPT_RT BH lock: " + ", ".join(f"CPU{c.cpu} {c.bh_lock_waits} waits, {c.pi_boosts} PI boosts" for c in s.cpus))
    out += ["", f"{'vector':<8} {'runs':>9} {'p50 us':>8} {'p99 us':>8} {'max us':>8}   (raise -> entry)"]
    for name, h in s.raise_latency.items():
        st = h.stats()
        out.append(f"{name:<8} {st.count:>9} {us(st.p50_ns):>8} {us(st.p99_ns):>8} {us(st.max_ns):>8}")
    if s.tasks:
        out += ["", f"{'task':<12} {'CPU':>3} {'policy':<6} {'cpu%':>6} {'p50 us':>8} {'p99 us':>8} {'max us':>8} {'recv/s':>9} {'drops':>7}"]
        for t in s.tasks:
            st = t.latency.stats() if t.latency is not None and t.latency.count else None
            recv = "-" if t.received_per_s is None else f"{t.received_per_s:.0f}"
            drops = "-" if t.socket_drops is None else str(t.socket_drops)
            out.append(f"{t.name:<12} {t.cpu:>3} {t.policy:<6} {t.cpu_pct:>6.1f} {us(st and st.p50_ns):>8} "
                       f"{us(st and st.p99_ns):>8} {us(st and st.max_ns):>8} {recv:>9} {drops:>7}")
    out += ["", f"arrivals {s.arrivals_per_s:.0f}/s, delivered {s.delivered_per_s:.0f}/s, ring drops {s.ring_drops}"]
    out += _render_watch(s.watch) if s.watch is not None else []
    out += [f"kernel: {msg}" for msg in s.messages]
    return "\n".join(out) + "\n"


def _render_watch(w: dict) -> list[str]:
    """The [watch] policy's events (simulated seconds since the run began) and its effect."""
    ms = lambda ns: f"{ns / 1e6:g} ms"  # noqa: E731
    mode = "applied" if w["apply"] else "dry run, nothing written"
    out = ["", f"watch: irqlab watch on the model (config {w['config'] or 'defaults'}, every {ms(w['interval_ns'])}, "
           f"hold-down {ms(w['hold_down_ns'])}, {mode})", f"{'time s':>8}  event"]
    out += [f"{e['time_s']:>8.3f}  {e['text']}" for e in w["events"]] or [f"{'-':>8}  no storm"]
    for irq, per_cpu in w["irq_cpu_counts"].items():
        out.append(f"IRQ {irq} interrupts in the window: " + ", ".join(f"CPU{c} {n}" for c, n in per_cpu.items()))
    for h in w["held_at_end"]:
        out.append(f"still changed when the run ended: {h['target']} = {h['value']} (was {h['original']})")
    return out
