"""Scenarios: a machine, its devices, tasks and knobs, loaded from TOML and checked.

Every key is validated against the schema tables below (irqlab/schema.py); a bad key or value
raises one ScenarioError that names the key path (`device[0].arrival.rate: must be a number
from 0 to 1000000000, not -1`), with a "did you mean" for misspelt keys. Keys of time take
units too (`duration_s = "500ms"`). The loader never lets a Python exception through.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irqlab.model.vectors import SOFTIRQ_NR
from irqlab.schema import (
    Array,
    At,
    Bool,
    Duration,
    Field,
    Float,
    Int,
    Map,
    Numbers,
    SchemaError,
    Str,
    Table,
    Values,
    check_range,
    load_toml,
    read,
)

# Kernel eras of the softirq deferral rule (kernel/softirq.c):
#  pre-4.9: irq_exit() always runs pending softirqs (invoke_softirq()).
#  4.9:     commit 4cd13c21b207 "softirq: Let ksoftirqd do its job": irq_exit() and
#           do_softirq() leave the work to ksoftirqd while it is runnable.
#  4.15:    commit 3c53776e29f8 "Mark HI and TASKLET softirq synchronous": those two are
#           exempt (SOFTIRQ_NOW_MASK) from that rule.
#  6.5:     commit d15121be7485 reverts "Let ksoftirqd do its job"; v6.18 behaves like pre-4.9
#           apart from the time limit and need_resched checks, which all eras here share.
ERAS: tuple[str, ...] = ("pre-4.9", "4.9", "4.15", "6.5")
# The version an era name stands for, where a rule depends on the version rather than the era
# (net_rx_action()'s time limit, `in_net_rx_action`, note_interrupt(), the PREEMPT_RT BH lock).
ERA_VERSIONS: dict[str, tuple[int, int]] = {"pre-4.9": (4, 4), "4.9": (4, 9), "4.15": (4, 15), "6.5": (6, 5)}
DEVICE_KINDS = ("napi", "netif_rx", "plain", "tasklet", "hi_tasklet", "threaded")
TASK_KINDS = ("periodic", "receiver", "hog", "sender")
POLICIES = ("other", "fifo", "rr")
PROCESSES = ("poisson", "periodic", "ramp", "bursts", "storm", "replay")
DISTS = ("const", "exp", "uniform", "lognormal")


class ScenarioError(SchemaError):
    """A scenario file or override that is not a valid scenario; names the key."""


def era_of(text: str) -> str:
    """An era name from an era name or a kernel version ("5.10", "6.18.2")."""
    if text in ERAS:
        return text
    try:
        parts = tuple(int(p) for p in text.split("-")[0].split(".")[:2])
    except ValueError:
        raise ScenarioError(f"{text!r} is neither an era {ERAS} nor a version like 6.18", key="machine.kernel") from None
    if len(parts) < 2:
        raise ScenarioError(f"{text!r}: give major.minor, like 6.18", key="machine.kernel")
    if parts < (4, 9):
        return "pre-4.9"
    if parts < (4, 15):
        return "4.9"
    return "4.15" if parts < (6, 5) else "6.5"


def version_of(text: str) -> tuple[int, int]:
    """(major, minor) of a kernel version, or the version an era name stands for (ERA_VERSIONS)."""
    era_of(text)  # the same checks and messages
    if text in ERA_VERSIONS:
        return ERA_VERSIONS[text]
    major, minor = (int(p) for p in text.split("-")[0].split(".")[:2])
    return major, minor


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
class TaskSpec:
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
    kernel: tuple[int, int] = (6, 18)  # machine.kernel as (major, minor); an era name: ERA_VERSIONS
    duration_ns: int = 1_000_000_000
    warmup_ns: int = 0
    seed: int = 1
    samples: int = 2  # snapshots taken (evenly over the measured window)
    threadirqs: bool = False
    # CONFIG_PREEMPT_RT: every device handler forced into a thread, softirqs run preemptibly in
    # the task that raised them (per-CPU BH lock with priority inheritance) or in ksoftirqd.
    preempt_rt: bool = False
    # CONFIG_PREEMPT_RT_NEEDS_BH_LOCK (v6.18, default n): the per-CPU BH lock of 6.17 and earlier.
    # Without it local_bh_disable() is migrate_disable() and BH sections do not exclude each other.
    rt_bh_lock: bool = False
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
    mtu: int = 1500  # net.mtu: the IP fragment size of senders' datagrams given by packet_bytes
    copy_ns_per_byte: float = 0.25  # per-packet cost added per byte when packet_bytes is given
    devices: tuple[Device, ...] = ()
    tasks: tuple[TaskSpec, ...] = ()
    trace: bool = False
    watch: WatchSpec | None = None

    @property
    def tick_ns(self) -> int:
        return 1_000_000_000 // self.hz

    @property
    def budget_usecs(self) -> int:
        # net/core/dev.c: "netdev_budget_usecs __read_mostly = 2 * USEC_PER_SEC / HZ;" since 5.7
        # (a4837980fd9f); 4.12 .. 5.6 (7acf8a1e8a28) had 2000 us; before 4.12 there is no sysctl
        # and net_rx_action() allows 2 jiffies, shown here as their microseconds.
        if self.netdev_budget_usecs:
            return self.netdev_budget_usecs
        return 2000 if (4, 12) <= self.kernel < (5, 7) else 2 * 1_000_000 // self.hz


# --- the schema: every key with its type, default and range, as data (irqlab/schema.py) -------


def _cost(v: Values) -> Cost:
    if v["dist"] == "uniform" and v["spread"] > v["mean"]:
        raise v.fail("spread", "must not exceed mean for a uniform cost")
    return Cost(int(v["mean"]), v["dist"], int(v["spread"]))


_COST = {"mean": Float(lo=0, hi=1e10, required=True), "dist": Str("const", choices=DISTS), "spread": Float(0.0, 0, 1e10)}


def cost(default_ns: int) -> Table:
    """A handler cost key: a number of ns, or a table {mean, dist, spread}."""
    return Table(_COST, default=Cost(default_ns), shorthand="mean", build=_cost)


def _arrival(v: Values) -> Arrival:
    if "recording" in v.given:
        raise v.fail("recording", "only `irqlab sim` and `irqlab doctor --sim` read recordings")
    times, rates = v["times_s"], v["rates"]
    if v["process"] == "replay" and (not times or len(times) != len(rates) or list(times) != sorted(times)):
        raise v.fail("times_s", "replay needs ascending times_s and as many rates")
    return Arrival(v["process"], v["rate"], v["rate_to"], v["on_ms"] / 1e6, v["off_ms"] / 1e6,
                   v["start_s"] / 1e9, v["end_s"] / 1e9, times, rates)


# machine.tick_raise: {VECTOR = chance} or {VECTOR = {chance, work_ns}}. run_local_timers(),
# rcu_sched_clock_irq() and trigger_load_balance() raise TIMER, RCU and SCHED from the tick.
TICK_VECTORS = tuple(n for n in SOFTIRQ_NR if n not in ("NET_RX", "NET_TX", "TASKLET", "HI"))
_TICK_RAISE = {"chance": Float(lo=0.0, hi=1.0, required=True), "work_ns": cost(0)}

_MACHINE = {
    "name": Str(None), "cpus": Int(2, 1, 64), "hz": Int(1000, choices=(100, 250, 300, 1000)), "kernel": Str("6.18"),
    "duration_s": Duration(1.0, "s", 0.001, 3600), "warmup_s": Duration(0.0, "s", 0), "seed": Int(1, 0, 2**63 - 1),
    "samples": Int(2, 2, 10_000), "threadirqs": Bool(None), "preempt_rt": Bool(False),
    "primary_handler_ns": Int(500, 0, 10**9), "rcu_gp_ms": Duration(12.0, "ms", 0, 10_000), "rcu_blimit": Int(10, 1, 1 << 30),
    "rcu_callback_ns": cost(500), "max_softirq_restart": Int(10, 1, 1_000_000), "max_softirq_time_ms": Int(2, 1, 10_000),
    "tick_cost_ns": cost(1_000), "trace": Bool(False), "rt_bh_lock": Bool(None),
    "tick_raise": Map(Table(_TICK_RAISE, shorthand="chance", build=lambda v: (v["chance"], v["work_ns"])),
                      keys=TICK_VECTORS, what="tick-raised softirq vector"),
}
_NET = {"netdev_budget": Int(300, 1, 1 << 20), "netdev_budget_usecs": Int(0, 0, 10**7),
        "netdev_max_backlog": Int(1000, 1, 1 << 24), "dev_weight": Int(64, 1, 1 << 16),
        "mtu": Int(1500, 68, 65_535), "copy_ns_per_byte": Float(0.25, 0, 1e6)}
_ARRIVAL = {
    "process": Str("poisson", choices=PROCESSES), "rate": Float(0.0, 0, 1e9), "rate_to": Float(0.0, 0, 1e9),
    "on_ms": Duration(1.0, "ms", 1e-3, 1e6), "off_ms": Duration(1.0, "ms", 1e-3, 1e6),
    "start_s": Duration(0.0, "s"), "end_s": Duration(0.0, "s"), "times_s": Numbers(()), "rates": Numbers((), 0, 1e9),
    "recording": Field(), "irq": Str(None), "scale": Float(None),
}
# A replay from irqlab's own records: `recording` (an `irqlab record` database, or a list of
# capture directories) and `irq` are turned into times_s/rates by the loader's `resolve` hook
# (cli/ wires sources/ and analysis/rate_series.py into it); `scale` multiplies the rates.
RECORDING_KEYS = ("recording", "irq", "scale")
_DEVICE = {
    "name": Str(None), "irq": Int(None, 0, 65_535), "cpu": Int(0, 0), "kind": Str("napi", choices=DEVICE_KINDS),
    "arrival": Table(_ARRIVAL, build=_arrival), "hardirq_ns": cost(1_000), "work_ns": cost(500),
    "weight": Int(64, 1, 65_536), "ring": Int(1024, 1, 1 << 20), "deliver": Str("forward"), "oneshot": Bool(True),
    "unhandled": Float(0.0, 0.0, 1.0), "defer_hard_irqs": Int(0, 0, 1 << 31), "gro_flush_timeout_ns": Int(0, 0, 10**10),
    "packet_bytes": Int(0, 0, 65_535),
}
_TASK = {
    "name": Str(None), "cpu": Int(0, 0), "kind": Str("periodic", choices=TASK_KINDS), "policy": Str("other", choices=POLICIES),
    "priority": Int(0), "nice": Int(0, -20, 19), "period_us": Duration(1000.0, "us", 1, 10**7), "work_ns": cost(10_000),
    "rcvbuf": Int(256, 1, 1 << 20), "wakeup_ns": cost(1_000),
}
_SENDER = {
    "rate_pps": Float(0.0, 0, 1e9), "pacing_us": Float(1000.0, 1, 1e6), "fragments": Int(1, 1, 64),
    "fragment_ns": cost(0), "rx_ns": cost(1_000), "rps_cpu": Int(-1, -1), "ipi_wake_ns": Int(0, 0, 10**9),
    "deliver": Str("forward"), "packet_bytes": Int(0, 0, 65_507),
}
_STRING_KEYS = {"name", "kernel", "kind", "process", "deliver", "policy", "dist"}


def _watch(v: Values) -> WatchSpec:
    return WatchSpec(v["config"], v["interval_ms"], v["hold_down_ms"], v["apply"])


_WATCH = {"config": Str(""), "interval_ms": Duration(None, "ms", 1, 60_000),
          "hold_down_ms": Duration(None, "ms", 0, 86_400_000), "apply": Bool(True)}
_TOP = {"machine": Table(_MACHINE), "net": Table(_NET), "device": Array(_DEVICE), "task": Array(_TASK | _SENDER),
        "watch": Table(_WATCH, default=None, build=_watch)}


def _plus(c: Cost, extra_ns: float) -> Cost:
    """A cost with extra_ns added to its mean (the spread is kept)."""
    return dataclasses.replace(c, mean_ns=c.mean_ns + round(extra_ns))


def _device(d: Values, i: int, cpus: int, net: Values) -> Device:
    check_range(d["cpu"], 0, cpus - 1, d.at.child("cpu"))
    if d["packet_bytes"] > net["mtu"]:
        raise d.fail("packet_bytes", f"a received frame is at most net.mtu ({net['mtu']}) bytes")
    # packet_bytes: the copy of each packet's bytes adds to its NET_RX cost (0: work_ns as given)
    work = _plus(d["work_ns"], d["packet_bytes"] * net["copy_ns_per_byte"])
    return Device(
        name=f"dev{i}" if d["name"] is None else d["name"], irq=40 + i if d["irq"] is None else d["irq"], cpu=d["cpu"],
        kind=d["kind"], arrival=d["arrival"], hardirq=d["hardirq_ns"], work=work, weight=d["weight"],
        ring=d["ring"], deliver=d["deliver"], oneshot=d["oneshot"], unhandled=d["unhandled"],
        defer_hard_irqs=d["defer_hard_irqs"], gro_flush_timeout_ns=d["gro_flush_timeout_ns"],
    )


def _task(t: Values, i: int, cpus: int, net: Values) -> TaskSpec:
    if t["kind"] != "sender":
        for key in (k for k in _SENDER if k in t.given):
            raise t.fail(key, f"only for kind = \"sender\" (this task is {t['kind']!r})")
    check_range(t["cpu"], 0, cpus - 1, t.at.child("cpu"))
    fragments, fragment, rx = t["fragments"], t["fragment_ns"], t["rx_ns"]
    if t["packet_bytes"]:
        if "fragments" in t.given:
            raise t.fail("fragments", "give fragments or packet_bytes, not both (packet_bytes sets fragments)")
        # ip_fragment(): UDP header + payload in pieces of (mtu - IP header) bytes; each piece's
        # copy adds to its transmit and NET_RX cost
        wire = t["packet_bytes"] + 8
        fragments = min(-(-wire // (net["mtu"] - 20)), 64)
        per_packet_ns = wire / fragments * net["copy_ns_per_byte"]
        fragment, rx = _plus(fragment, per_packet_ns), _plus(rx, per_packet_ns)
    check_range(t["rps_cpu"], -1, cpus - 1, t.at.child("rps_cpu"))
    rt = t["policy"] != "other"
    check_range(t["priority"], 1 if rt else 0, 99 if rt else 0, t.at.child("priority"))
    return TaskSpec(
        name=f"task{i}" if t["name"] is None else t["name"], cpu=t["cpu"], kind=t["kind"], policy=t["policy"],
        priority=t["priority"], nice=t["nice"], period_ns=t["period_us"], work=t["work_ns"], rcvbuf=t["rcvbuf"],
        wakeup=t["wakeup_ns"], rate_pps=t["rate_pps"], pacing_us=t["pacing_us"], fragments=fragments,
        fragment=fragment, rx=rx, rps_cpu=t["rps_cpu"], ipi_wake_ns=t["ipi_wake_ns"], deliver=t["deliver"],
    )


def parse_scenario(raw: dict, name: str = "scenario") -> Scenario:
    """A Scenario from a TOML-shaped dict; ScenarioError naming the key on any problem."""
    v = read(raw, _TOP, At(ScenarioError))
    m, net = v["machine"], v["net"]
    if m["preempt_rt"] and m["threadirqs"] is False:
        raise m.fail("threadirqs", "cannot be false with preempt_rt = true (PREEMPT_RT always threads handlers)")
    if m["warmup_s"] >= m["duration_s"]:
        raise m.fail("warmup_s", f"must be shorter than machine.duration_s ({m['duration_s'] / 1e9:g} s)")
    cpus = m["cpus"]
    version = version_of(m["kernel"])
    if net["netdev_budget_usecs"] and version < (4, 12):
        raise net.fail("netdev_budget_usecs", f"the sysctl exists from 4.12 (machine.kernel is {m['kernel']})")
    # CONFIG_PREEMPT_RT_NEEDS_BH_LOCK: added in 6.18, default n; before, the BH lock was always there
    rt_bh_lock = version < (6, 18) if m["rt_bh_lock"] is None else m["rt_bh_lock"]
    if m["rt_bh_lock"] is False and version < (6, 18):
        raise m.fail("rt_bh_lock", f"before 6.18 PREEMPT_RT always has the BH lock (machine.kernel is {m['kernel']})")
    sc = Scenario(
        name=name if m["name"] is None else m["name"], cpus=cpus, hz=m["hz"], era=era_of(m["kernel"]), kernel=version,
        rt_bh_lock=rt_bh_lock,
        duration_ns=m["duration_s"], warmup_ns=m["warmup_s"], seed=m["seed"], samples=m["samples"],
        threadirqs=bool(m["threadirqs"]) or m["preempt_rt"],  # RT forces threading
        preempt_rt=m["preempt_rt"], primary_handler_ns=m["primary_handler_ns"], rcu_gp_ms=m["rcu_gp_ms"] / 1e6,
        rcu_blimit=m["rcu_blimit"], rcu_callback=m["rcu_callback_ns"], max_softirq_restart=m["max_softirq_restart"],
        max_softirq_time_ms=m["max_softirq_time_ms"], tick_cost=m["tick_cost_ns"],
        tick_raise=tuple((vector, chance, work) for vector, (chance, work) in m["tick_raise"].items()),
        netdev_budget=net["netdev_budget"], netdev_budget_usecs=net["netdev_budget_usecs"],
        netdev_max_backlog=net["netdev_max_backlog"], dev_weight=net["dev_weight"], mtu=net["mtu"],
        copy_ns_per_byte=net["copy_ns_per_byte"],
        devices=tuple(_device(d, i, cpus, net) for i, d in enumerate(v["device"])),
        tasks=tuple(_task(t, i, cpus, net) for i, t in enumerate(v["task"])), trace=m["trace"], watch=v["watch"],
    )
    _check_links(sc)
    return sc


def _check_links(sc: Scenario) -> None:
    """What one table's keys say about another's: unique IRQs and names, receivers that exist."""
    irqs = [d.irq for d in sc.devices]
    if len(set(irqs)) != len(irqs):
        raise ScenarioError("two devices share an IRQ number", key="device[].irq")
    names = [t.name for t in sc.tasks]
    if len(set(names)) != len(names):
        raise ScenarioError("two tasks share a name", key="task[].name")
    receivers = {t.name for t in sc.tasks if t.kind == "receiver"}
    for i, d in enumerate(sc.devices):
        if d.deliver != "forward" and d.deliver not in receivers:
            raise ScenarioError(f"{d.deliver!r} is neither 'forward' nor a receiver task", key=f"device[{i}].deliver")
    for i, t in enumerate(sc.tasks):
        if t.kind == "sender" and t.deliver != "forward" and t.deliver not in receivers:
            raise ScenarioError(f"{t.deliver!r} is neither 'forward' nor a receiver task", key=f"task[{i}].deliver")


def load_raw(path: str | Path) -> dict:
    """The TOML of a scenario file; ScenarioError for a missing or malformed file."""
    return load_toml(path, ScenarioError, what="scenario")


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
        raise exc.in_file(str(path)) from None
    if sc.watch is not None and sc.watch.config:
        # Relative to the scenario file, so a scenario and its watch config travel together.
        config = os.path.normpath(Path(path).parent / sc.watch.config)
        if not os.path.isfile(config):
            raise ScenarioError(f"{config!r} is not a readable file", key="watch.config", origin=str(path))
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
                raise exc.in_file(path) from None
    return out


REMOVE = "remove"  # `--set device.NAME=remove` / `task.NAME=remove`: the scenario without it


def override(raw: dict, item: str) -> dict:
    """A copy of raw with `table.key=value` (or `device.NAME.key=value`) set; value is TOML.

    `device.NAME=remove` (or `task.NAME=remove`, by name or index) drops that device or task.
    """
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
    if len(parts) == 2 and parts[0] in ("device", "task"):
        if value != REMOVE:
            raise ScenarioError(f"{key}: set a key of the {parts[0]} ({key}.KEY=VALUE) or remove it ({key}={REMOVE})")
        items = out.get(parts[0], [])
        out[parts[0]] = [item for item in items if item is not _pick(items, parts[0], parts[1], key)]
        return out
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
