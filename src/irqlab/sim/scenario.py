"""Scenarios: a machine, its devices, tasks and knobs, loaded from TOML and checked.

Every key is validated against the tables below; a bad key or value raises one
ScenarioError that names the key path (`device[0].arrival.rate: must be >= 0`), with a
"did you mean" for misspelt keys. The loader never lets a Python exception through.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irqlab.errors import IrqlabError

# Kernel eras of the softirq deferral rule (kernel/softirq.c):
#  pre-4.9: irq_exit() always runs pending softirqs (invoke_softirq()).
#  4.9:     commit 4cd13c21b207 "softirq: Let ksoftirqd do its job": irq_exit() and
#           do_softirq() leave the work to ksoftirqd while it is runnable.
#  4.15:    commit 3c53776e29f8 "Mark HI and TASKLET softirq synchronous": those two are
#           exempt (SOFTIRQ_NOW_MASK) from that rule.
#  6.5:     commit d15121be7485 reverts "Let ksoftirqd do its job"; v6.18 behaves like pre-4.9
#           apart from the time limit and need_resched checks, which all eras here share.
ERAS: tuple[str, ...] = ("pre-4.9", "4.9", "4.15", "6.5")
DEVICE_KINDS = ("napi", "netif_rx", "plain", "tasklet", "hi_tasklet", "threaded")
TASK_KINDS = ("periodic", "receiver", "hog", "sender")
POLICIES = ("other", "fifo", "rr")
PROCESSES = ("poisson", "periodic", "ramp", "bursts", "storm", "replay")
DISTS = ("const", "exp", "uniform", "lognormal")


class ScenarioError(IrqlabError):
    """A scenario file or override that is not a valid scenario; names the key."""


def era_of(text: str) -> str:
    """An era name from an era name or a kernel version ("5.10", "6.18.2")."""
    if text in ERAS:
        return text
    try:
        parts = tuple(int(p) for p in text.split("-")[0].split(".")[:2])
    except ValueError:
        raise ScenarioError(f"machine.kernel: {text!r} is neither an era {ERAS} nor a version like 6.18") from None
    if len(parts) < 2:
        raise ScenarioError(f"machine.kernel: {text!r}: give major.minor, like 6.18")
    if parts < (4, 9):
        return "pre-4.9"
    if parts < (4, 15):
        return "4.9"
    return "4.15" if parts < (6, 5) else "6.5"


@dataclass(frozen=True, slots=True)
class Cost:
    """A handler cost distribution in ns: const, exp, uniform (mean +- spread) or lognormal."""

    mean_ns: int
    dist: str = "const"
    spread_ns: int = 0  # uniform: half-width; lognormal: standard deviation


@dataclass(frozen=True, slots=True)
class Arrival:
    """When a device raises work: a process and its rates (per second)."""

    process: str = "poisson"
    rate: float = 0.0
    rate_to: float = 0.0  # ramp: final rate
    on_ms: float = 1.0  # bursts
    off_ms: float = 1.0
    start_s: float = 0.0  # storm window (and ramp start)
    end_s: float = 0.0
    times_s: tuple[float, ...] = ()  # replay: piecewise-constant rates from irqlab records
    rates: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Device:
    """One interrupt line and what its handler does."""

    name: str
    irq: int
    cpu: int
    kind: str
    arrival: Arrival
    hardirq: Cost
    work: Cost  # per packet in NET_RX, per tasklet run, per thread run
    weight: int = 64
    ring: int = 1024
    deliver: str = "forward"  # "forward" (counted as output) or a receiver task's name
    oneshot: bool = True
    unhandled: float = 0.0  # share of interrupts the handler returns IRQ_NONE for
    defer_hard_irqs: int = 0
    gro_flush_timeout_ns: int = 0


@dataclass(frozen=True, slots=True)
class Task:
    """A task whose latency (periodic) or throughput (receiver) is measured, or a CPU hog."""

    name: str
    cpu: int
    kind: str
    policy: str = "other"
    priority: int = 0
    nice: int = 0
    period_ns: int = 1_000_000
    work: Cost = Cost(10_000)
    rcvbuf: int = 256  # receiver: socket queue limit in packets (sk_rcvbuf / truesize)
    # periodic: the return from clock_nanosleep() to the clock read, as task work after the switch
    wakeup: Cost = Cost(1_000)
    # sender (the veth/loopback transmit path; work = the send cost before the first packet)
    rate_pps: float = 0.0  # datagrams per second, iperf3 -b style pacing; 0 = as fast as it can
    pacing_us: float = 1000.0  # iperf3 --pacing-timer: how often a throttled sender looks again
    fragments: int = 1  # packets per send (IP fragments of one datagram)
    fragment: Cost = Cost(0)  # per packet: dev_queue_xmit() -> veth_xmit() -> netif_rx()
    rx: Cost = Cost(1_000)  # NET_RX cost per packet in the backlog (process_backlog -> socket)
    rps_cpu: int = -1  # RPS: the backlog CPU (-1 = the sender's own CPU)
    ipi_wake_ns: int = 0  # RPS IPI delivery delay when the target CPU is idle (a halted vCPU)
    deliver: str = "forward"  # a receiver task's name (its socket) or "forward"


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """[watch]: run irqlab's storm detector and mitigation ladder on the model (daemon/simwatch.py)."""

    config: str = ""  # a watch config file (docs/watch.md); "" = watch's defaults
    interval_ns: int | None = None  # None: the config's `interval` if it sets one, else 100 ms
    hold_down_ns: int | None = None  # None: the config's `hold_down` if it sets one, else 1 s
    apply: bool = True  # false: a dry run, as `irqlab watch` without --apply


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole simulated machine and run."""

    name: str = "scenario"
    cpus: int = 2
    hz: int = 1000
    era: str = "6.5"
    duration_ns: int = 1_000_000_000
    warmup_ns: int = 0
    seed: int = 1
    samples: int = 2  # snapshots taken (evenly over the measured window)
    threadirqs: bool = False
    # CONFIG_PREEMPT_RT: every device handler forced into a thread, softirqs run preemptibly in
    # the task that raised them (per-CPU BH lock with priority inheritance) or in ksoftirqd.
    preempt_rt: bool = False
    primary_handler_ns: int = 500  # irq_default_primary_handler() + entry/exit of a forced-threaded IRQ
    # RCU callbacks (sim/rcu.py): grace period, rcu_do_batch()'s limit in softirq, cost per callback
    rcu_gp_ms: float = 12.0
    rcu_blimit: int = 10
    rcu_callback: Cost = Cost(500)
    max_softirq_restart: int = 10
    max_softirq_time_ms: int = 2
    tick_cost: Cost = Cost(1_000)
    # (vector, chance that a tick raises it, its work): run_local_timers(), rcu_sched_clock_irq()
    # and trigger_load_balance() raise TIMER, RCU and SCHED from the tick
    tick_raise: tuple[tuple[str, float, Cost], ...] = ()
    netdev_budget: int = 300
    netdev_budget_usecs: int = 0  # 0: the kernel default, 2 jiffies (net/core/dev.c)
    netdev_max_backlog: int = 1000
    dev_weight: int = 64
    devices: tuple[Device, ...] = ()
    tasks: tuple[Task, ...] = ()
    trace: bool = False
    watch: WatchSpec | None = None

    @property
    def tick_ns(self) -> int:
        return 1_000_000_000 // self.hz

    @property
    def budget_usecs(self) -> int:
        # net/core/dev.c: "netdev_budget_usecs __read_mostly = 2 * USEC_PER_SEC / HZ;"
        return self.netdev_budget_usecs or 2 * 1_000_000 // self.hz


# --- the schema: key -> (type check, default) per table ------------------------------------

_MACHINE = {"name": str, "cpus": int, "hz": int, "kernel": str, "duration_s": float, "warmup_s": float,
            "seed": int, "samples": int, "threadirqs": bool, "preempt_rt": bool, "primary_handler_ns": int,
            "rcu_gp_ms": float, "rcu_blimit": int, "rcu_callback_ns": "cost",
            "max_softirq_restart": int,
            "max_softirq_time_ms": int, "tick_cost_ns": "cost", "trace": bool, "tick_raise": dict}
_NET = {"netdev_budget": int, "netdev_budget_usecs": int, "netdev_max_backlog": int, "dev_weight": int}
_DEVICE = {"name": str, "irq": int, "cpu": int, "kind": str, "arrival": dict, "hardirq_ns": "cost",
           "work_ns": "cost", "weight": int, "ring": int, "deliver": str, "oneshot": bool,
           "unhandled": float, "defer_hard_irqs": int, "gro_flush_timeout_ns": int}
_ARRIVAL = {"process": str, "rate": float, "rate_to": float, "on_ms": float, "off_ms": float,
            "start_s": float, "end_s": float, "times_s": list, "rates": list,
            "recording": object, "irq": str, "scale": float}
# A replay from irqlab's own records: `recording` (an `irqlab record` database, or a list of
# capture directories) and `irq` are turned into times_s/rates by the loader's `resolve` hook
# (cli/ wires sources/ and analysis/rate_series.py into it); `scale` multiplies the rates.
RECORDING_KEYS = ("recording", "irq", "scale")
_TASK = {"name": str, "cpu": int, "kind": str, "policy": str, "priority": int, "nice": int,
         "period_us": float, "work_ns": "cost", "rcvbuf": int, "wakeup_ns": "cost"}
_SENDER = {"rate_pps": float, "pacing_us": float, "fragments": int, "fragment_ns": "cost", "rx_ns": "cost",
           "rps_cpu": int, "ipi_wake_ns": int, "deliver": str}
_COST = {"mean": float, "dist": str, "spread": float}
_STRING_KEYS = {"name", "kernel", "kind", "process", "deliver", "policy", "dist"}
_WATCH = {"config": str, "interval_ms": float, "hold_down_ms": float, "apply": bool}
_TOP = {"machine": dict, "net": dict, "device": list, "task": list, "watch": dict}


def _check_keys(table: dict, schema: dict, where: str) -> None:
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: must be a table")
    for key in table:
        if key not in schema:
            near = difflib.get_close_matches(str(key), list(schema), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else f" (known: {', '.join(schema)})"
            raise ScenarioError(f"{where + '.' if where else ''}{key}: unknown key{hint}")


def _get(table: dict, schema: dict, key: str, where: str, default: Any) -> Any:
    """table[key] checked against schema[key]; default when absent."""
    if key not in table:
        return default
    value, kind, path = table[key], schema[key], f"{where}.{key}" if where else key
    if kind == "cost":
        return _cost(value, path)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ScenarioError(f"{path}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    if kind is float and not (value == value and abs(value) != float("inf")):
        raise ScenarioError(f"{path}: must be a finite number")
    return value


def _cost(value: Any, path: str) -> Cost:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        table = {"mean": value}
    elif isinstance(value, dict):
        _check_keys(value, _COST, path)
        table = value
    else:
        raise ScenarioError(f"{path}: expected a number of ns or a table {{mean, dist, spread}}")
    mean = _get(table, _COST, "mean", path, None)
    if mean is None:
        raise ScenarioError(f"{path}.mean: missing")
    dist = _choice(_get(table, _COST, "dist", path, "const"), DISTS, f"{path}.dist")
    spread = _get(table, _COST, "spread", path, 0.0)
    _range(mean, 0, 1e10, f"{path}.mean")
    _range(spread, 0, 1e10, f"{path}.spread")
    if dist == "uniform" and spread > mean:
        raise ScenarioError(f"{path}.spread: must not exceed mean for a uniform cost")
    return Cost(int(mean), dist, int(spread))


def _range(value: float, lo: float, hi: float, path: str) -> None:
    if not lo <= value <= hi:
        raise ScenarioError(f"{path}: {value!r} is out of range {lo:g}..{hi:g}")


def _choice(value: str, choices: tuple[str, ...], path: str) -> str:
    if value not in choices:
        raise ScenarioError(f"{path}: {value!r} is not one of {', '.join(choices)}")
    return value


def _arrival(table: dict, where: str) -> Arrival:
    _check_keys(table, _ARRIVAL, where)
    if "recording" in table:
        raise ScenarioError(f"{where}.recording: only `irqlab sim` and `irqlab doctor --sim` read recordings")
    g = lambda k, d: _get(table, _ARRIVAL, k, where, d)  # noqa: E731
    process = _choice(g("process", "poisson"), PROCESSES, f"{where}.process")
    times = tuple(_num_list(g("times_s", []), f"{where}.times_s"))
    rates = tuple(_num_list(g("rates", []), f"{where}.rates"))
    if process == "replay" and (not times or len(times) != len(rates) or list(times) != sorted(times)):
        raise ScenarioError(f"{where}.times_s: replay needs ascending times_s and as many rates")
    out = Arrival(process, g("rate", 0.0), g("rate_to", 0.0), g("on_ms", 1.0), g("off_ms", 1.0),
                  g("start_s", 0.0), g("end_s", 0.0), times, rates)
    for key in ("rate", "rate_to"):
        _range(getattr(out, key), 0, 1e9, f"{where}.{key}")
    for key in ("on_ms", "off_ms"):
        _range(getattr(out, key), 1e-3, 1e6, f"{where}.{key}")
    for r in rates:
        _range(r, 0, 1e9, f"{where}.rates")
    return out


def _num_list(value: list, where: str) -> list[float]:
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf") for v in value):
        raise ScenarioError(f"{where}: must be a list of numbers")
    return [float(v) for v in value]


def _device(table: dict, i: int, cpus: int) -> Device:
    where = f"device[{i}]"
    _check_keys(table, _DEVICE, where)
    g = lambda k, d: _get(table, _DEVICE, k, where, d)  # noqa: E731
    name = g("name", f"dev{i}")
    dev = Device(
        name=name, irq=g("irq", 40 + i), cpu=g("cpu", 0), kind=_choice(g("kind", "napi"), DEVICE_KINDS, f"{where}.kind"),
        arrival=_arrival(g("arrival", {}), f"{where}.arrival"), hardirq=g("hardirq_ns", Cost(1_000)),
        work=g("work_ns", Cost(500)), weight=g("weight", 64), ring=g("ring", 1024), deliver=g("deliver", "forward"),
        oneshot=g("oneshot", True), unhandled=g("unhandled", 0.0), defer_hard_irqs=g("defer_hard_irqs", 0),
        gro_flush_timeout_ns=g("gro_flush_timeout_ns", 0),
    )
    _range(dev.irq, 0, 65_535, f"{where}.irq")
    _range(dev.cpu, 0, cpus - 1, f"{where}.cpu")
    _range(dev.weight, 1, 65_536, f"{where}.weight")
    _range(dev.ring, 1, 1 << 20, f"{where}.ring")
    _range(dev.unhandled, 0.0, 1.0, f"{where}.unhandled")
    _range(dev.defer_hard_irqs, 0, 1 << 31, f"{where}.defer_hard_irqs")
    _range(dev.gro_flush_timeout_ns, 0, 10**10, f"{where}.gro_flush_timeout_ns")
    return dev


def _task(table: dict, i: int, cpus: int) -> Task:
    where = f"task[{i}]"
    schema = _TASK | _SENDER
    _check_keys(table, schema, where)
    g = lambda k, d: _get(table, schema, k, where, d)  # noqa: E731
    kind = _choice(g("kind", "periodic"), TASK_KINDS, f"{where}.kind")
    if kind != "sender":
        for key in table:
            if key in _SENDER:
                raise ScenarioError(f"{where}.{key}: only for kind = \"sender\" (this task is {kind!r})")
    task = Task(
        name=g("name", f"task{i}"), cpu=g("cpu", 0), kind=kind,
        policy=_choice(g("policy", "other"), POLICIES, f"{where}.policy"), priority=g("priority", 0),
        nice=g("nice", 0), period_ns=int(g("period_us", 1000.0) * 1000), work=g("work_ns", Cost(10_000)),
        rcvbuf=g("rcvbuf", 256), wakeup=g("wakeup_ns", Cost(1_000)), rate_pps=g("rate_pps", 0.0),
        pacing_us=g("pacing_us", 1000.0),
        fragments=g("fragments", 1), fragment=g("fragment_ns", Cost(0)), rx=g("rx_ns", Cost(1_000)),
        rps_cpu=g("rps_cpu", -1), ipi_wake_ns=g("ipi_wake_ns", 0), deliver=g("deliver", "forward"),
    )
    _range(task.rate_pps, 0, 1e9, f"{where}.rate_pps")
    _range(task.pacing_us, 1, 1e6, f"{where}.pacing_us")
    _range(task.fragments, 1, 64, f"{where}.fragments")
    _range(task.rps_cpu, -1, cpus - 1, f"{where}.rps_cpu")
    _range(task.ipi_wake_ns, 0, 10**9, f"{where}.ipi_wake_ns")
    _range(task.cpu, 0, cpus - 1, f"{where}.cpu")
    _range(task.priority, 0 if task.policy == "other" else 1, 0 if task.policy == "other" else 99, f"{where}.priority")
    _range(task.nice, -20, 19, f"{where}.nice")
    _range(task.period_ns, 1_000, 10**10, f"{where}.period_us")
    _range(task.rcvbuf, 1, 1 << 20, f"{where}.rcvbuf")
    return task


def parse_scenario(raw: dict, name: str = "scenario") -> Scenario:
    """A Scenario from a TOML-shaped dict; ScenarioError naming the key on any problem."""
    _check_keys(raw, _TOP, "")
    m = raw.get("machine", {})
    _check_keys(m, _MACHINE, "machine")
    g = lambda k, d: _get(m, _MACHINE, k, "machine", d)  # noqa: E731
    cpus = g("cpus", 2)
    _range(cpus, 1, 64, "machine.cpus")
    if g("preempt_rt", False) and m.get("threadirqs") is False:
        raise ScenarioError("machine.threadirqs: cannot be false with preempt_rt = true (PREEMPT_RT always threads handlers)")
    hz = g("hz", 1000)
    if hz not in (100, 250, 300, 1000):
        raise ScenarioError(f"machine.hz: {hz} is not a kernel HZ choice (100, 250, 300, 1000)")
    net = raw.get("net", {})
    _check_keys(net, _NET, "net")
    n = lambda k, d: _get(net, _NET, k, "net", d)  # noqa: E731
    devices, tasks = raw.get("device", []), raw.get("task", [])
    for key, value in (("device", devices), ("task", tasks)):
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ScenarioError(f"{key}: must be an array of tables ([[{key}]])")
    sc = Scenario(
        name=g("name", name), cpus=cpus, hz=hz, era=era_of(g("kernel", "6.18")),
        duration_ns=int(g("duration_s", 1.0) * 1e9), warmup_ns=int(g("warmup_s", 0.0) * 1e9), seed=g("seed", 1),
        samples=g("samples", 2), threadirqs=g("threadirqs", False) or g("preempt_rt", False),  # RT forces threading
        preempt_rt=g("preempt_rt", False), primary_handler_ns=g("primary_handler_ns", 500),
        rcu_gp_ms=g("rcu_gp_ms", 12.0), rcu_blimit=g("rcu_blimit", 10), rcu_callback=g("rcu_callback_ns", Cost(500)),
        max_softirq_restart=g("max_softirq_restart", 10),
        max_softirq_time_ms=g("max_softirq_time_ms", 2), tick_cost=g("tick_cost_ns", Cost(1_000)),
        netdev_budget=n("netdev_budget", 300), netdev_budget_usecs=n("netdev_budget_usecs", 0),
        netdev_max_backlog=n("netdev_max_backlog", 1000), dev_weight=n("dev_weight", 64),
        devices=tuple(_device(d, i, cpus) for i, d in enumerate(devices)),
        tasks=tuple(_task(t, i, cpus) for i, t in enumerate(tasks)), trace=g("trace", False),
        tick_raise=_tick_raise(g("tick_raise", {})),
        watch=_watch(raw["watch"]) if "watch" in raw else None,
    )
    _check_machine(sc)
    return sc


_TICK_RAISE = {"chance": float, "work_ns": "cost"}


def _tick_raise(table: dict) -> tuple[tuple[str, float, Cost], ...]:
    """machine.tick_raise: {VECTOR = chance} or {VECTOR = {chance, work_ns}}."""
    from irqlab.model.vectors import SOFTIRQ_NR

    out = []
    for name, value in table.items():
        where = f"machine.tick_raise.{name}"
        if name not in SOFTIRQ_NR or name in ("NET_RX", "NET_TX", "TASKLET", "HI"):
            raise ScenarioError(f"{where}: not a tick-raised softirq vector (TIMER, RCU, SCHED, HRTIMER, ...)")
        spec = value if isinstance(value, dict) else {"chance": value}
        _check_keys(spec, _TICK_RAISE, where)
        chance = _get(spec, _TICK_RAISE, "chance", where, None)
        if chance is None:
            raise ScenarioError(f"{where}.chance: missing")
        _range(chance, 0.0, 1.0, f"{where}.chance")
        out.append((name, chance, _get(spec, _TICK_RAISE, "work_ns", where, Cost(0))))
    return tuple(out)


def _watch(table: dict) -> WatchSpec:
    _check_keys(table, _WATCH, "watch")
    g = lambda k, d: _get(table, _WATCH, k, "watch", d)  # noqa: E731
    interval, hold = g("interval_ms", None), g("hold_down_ms", None)
    if interval is not None:
        _range(interval, 1, 60_000, "watch.interval_ms")
    if hold is not None:
        _range(hold, 0, 86_400_000, "watch.hold_down_ms")
    config = g("config", "")
    if "\x00" in config:
        raise ScenarioError("watch.config: not a file path")
    return WatchSpec(config, None if interval is None else int(interval * 1e6),
                     None if hold is None else int(hold * 1e6), g("apply", True))


def _check_machine(sc: Scenario) -> None:
    _range(sc.duration_ns, 1_000_000, 3600 * 10**9, "machine.duration_s")
    _range(sc.warmup_ns, 0, sc.duration_ns - 1, "machine.warmup_s")
    _range(sc.seed, 0, 2**63 - 1, "machine.seed")
    _range(sc.samples, 2, 10_000, "machine.samples")
    _range(sc.max_softirq_restart, 1, 1_000_000, "machine.max_softirq_restart")
    _range(sc.primary_handler_ns, 0, 10**9, "machine.primary_handler_ns")
    _range(sc.rcu_gp_ms, 0, 10_000, "machine.rcu_gp_ms")
    _range(sc.rcu_blimit, 1, 1 << 30, "machine.rcu_blimit")
    _range(sc.max_softirq_time_ms, 1, 10_000, "machine.max_softirq_time_ms")
    _range(sc.netdev_budget, 1, 1 << 20, "net.netdev_budget")
    _range(sc.netdev_budget_usecs, 0, 10**7, "net.netdev_budget_usecs")
    _range(sc.netdev_max_backlog, 1, 1 << 24, "net.netdev_max_backlog")
    _range(sc.dev_weight, 1, 1 << 16, "net.dev_weight")
    irqs = [d.irq for d in sc.devices]
    if len(set(irqs)) != len(irqs):
        raise ScenarioError("device[].irq: two devices share an IRQ number")
    names = [t.name for t in sc.tasks]
    if len(set(names)) != len(names):
        raise ScenarioError("task[].name: two tasks share a name")
    receivers = {t.name for t in sc.tasks if t.kind == "receiver"}
    for i, d in enumerate(sc.devices):
        if d.deliver != "forward" and d.deliver not in receivers:
            raise ScenarioError(f"device[{i}].deliver: {d.deliver!r} is neither 'forward' nor a receiver task")
    for i, t in enumerate(sc.tasks):
        if t.kind == "sender" and t.deliver != "forward" and t.deliver not in receivers:
            raise ScenarioError(f"task[{i}].deliver: {t.deliver!r} is neither 'forward' nor a receiver task")


def load_raw(path: str | Path) -> dict:
    """The TOML of a scenario file; ScenarioError for a missing or malformed file."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None


def load_scenario(path: str | Path, overrides: tuple[str, ...] = (), resolve=None) -> Scenario:
    """Load, apply KEY=VALUE overrides, and validate a scenario file.

    `resolve(arrival_table, where, base_dir) -> arrival_table`, when given, turns a replay of a
    recording (RECORDING_KEYS) into times_s/rates before validation.
    """
    raw = load_raw(path)
    for item in overrides:
        raw = override(raw, item)
    if resolve is not None:
        raw = _resolve_recordings(raw, resolve, Path(path).parent, str(path))
    try:
        sc = parse_scenario(raw, Path(path).stem)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    if sc.watch is not None and sc.watch.config:
        # Relative to the scenario file, so a scenario and its watch config travel together.
        config = os.path.normpath(Path(path).parent / sc.watch.config)
        if not os.path.isfile(config):
            raise ScenarioError(f"{path}: watch.config: {config!r} is not a readable file")
        sc = dataclasses.replace(sc, watch=dataclasses.replace(sc.watch, config=config))
    return sc


def _resolve_recordings(raw: dict, resolve, base: Path, path: str) -> dict:
    devices = raw.get("device")
    if not isinstance(devices, list):
        return raw
    out = copy.deepcopy(raw)
    for i, d in enumerate(out["device"]):
        arrival = d.get("arrival") if isinstance(d, dict) else None
        if isinstance(arrival, dict) and "recording" in arrival:
            where = f"device[{i}].arrival"
            try:
                d["arrival"] = resolve(arrival, where, base)
            except ScenarioError as exc:
                raise ScenarioError(f"{path}: {exc}") from None
    return out


def override(raw: dict, item: str) -> dict:
    """A copy of raw with `table.key=value` (or `device.NAME.key=value`) set; value is TOML."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ScenarioError(f"{item!r}: an override is KEY=VALUE, like net.netdev_budget=600")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text  # a bare word: a string ("poisson")
    if key.rsplit(".", 1)[-1] in _STRING_KEYS and not isinstance(value, str):
        value = text  # machine.kernel=4.9 means the version "4.9", not the float
    out = copy.deepcopy(raw)
    parts = key.split(".")
    node: Any = out
    i = 0
    while i < len(parts) - 1:
        part = parts[i]
        if not isinstance(node, dict):
            raise ScenarioError(f"{key}: {part!r} is not inside a table")
        if part in ("device", "task") and i + 1 < len(parts) - 1:
            node = _pick(node.get(part, []), part, parts[i + 1], key)
            i += 2
            continue
        node = node.setdefault(part, {})
        i += 1
    if not isinstance(node, dict):
        raise ScenarioError(f"{key}: does not name a table key")
    node[parts[-1]] = value
    return out


def _pick(items: Any, kind: str, which: str, key: str) -> dict:
    """The [[device]] or [[task]] named `which` (or at index `which`)."""
    if isinstance(items, list):
        for pos, item in enumerate(items):
            if isinstance(item, dict) and (item.get("name") == which or which == str(pos)):
                return item
    raise ScenarioError(f"{key}: no {kind} named {which!r}")
