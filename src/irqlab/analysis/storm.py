"""Interrupt-storm detector: successive Rates in, storm start / escalation / end events out.

Pure: no I/O and no clock (time is Rates.after.taken_ns). The seed's detect_interrupt_storm()
warns above 100,000 interrupts/s and acts above 1,000,000/s; those are the defaults of the
absolute thresholds, which are configured per IRQ name pattern. A learned baseline (moving
median and MAD of the quiet intervals) also catches rates that are small in absolute terms
but unusual for this machine. Hysteresis: a storm starts after `start_intervals` intervals
over a threshold and ends after `end_intervals` intervals under `end_ratio` times it, so a
rate that flaps around the threshold gives one storm, not one alert per interval.

Counter wrap is handled by analysis.delta (modulo 2^32); a cell delta refused there (NaN)
is "no data" here: it neither starts nor ends a storm.
"""

from __future__ import annotations

import fnmatch
import math
import statistics
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np

from irqlab.analysis.delta import Rates
from irqlab.analysis.thresholds import STORM_CRIT_RATE, STORM_WARN_RATE
from irqlab.model.vectors import arch_meaning


class Level(IntEnum):
    """How bad a reading is: the rungs of the action ladder."""

    NONE = 0
    WARN = 1
    ACT = 2


# Storm classes: what was measured. The planner picks its action ladder by class.
CLASSES: tuple[str, ...] = ("irq", "vector", "cpu", "softirq", "irqtime", "softnet_drop", "softnet_squeeze", "spurious")


@dataclass(frozen=True, slots=True)
class Rule:
    """Thresholds for subjects whose id or name matches `match` (fnmatch); None = never."""

    match: str
    warn: float | None
    act: float | None


@dataclass(frozen=True, slots=True)
class Baseline:
    """The learned "unusual for this machine" threshold: median + k * 1.4826 * MAD."""

    enabled: bool = True
    window: int = 60  # quiet intervals remembered per subject
    min_samples: int = 10  # before this many, the baseline says nothing
    k: float = 8.0
    min_rate: float = 1000.0  # below this, nothing is unusual (an idle IRQ going 0 -> 50/s)


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Every threshold the detector uses; defaults follow the seed text."""

    irq: tuple[Rule, ...] = (Rule("*", STORM_WARN_RATE, STORM_CRIT_RATE),)  # per IRQ row, interrupts/s
    cpu: Rule = Rule("*", 200_000.0, 2_000_000.0)  # all interrupts of one CPU, per s
    softirq: tuple[Rule, ...] = (Rule("*", 200_000.0, 2_000_000.0),)  # per vector, all CPUs, per s
    irqtime_pct: Rule = Rule("*", 50.0, 90.0)  # %irq + %softirq of one CPU (/proc/stat)
    softnet_drop: Rule = Rule("*", 1.0, 1000.0)  # softnet drops per s, per CPU
    softnet_squeeze: Rule = Rule("*", 1000.0, 100_000.0)  # time_squeeze per s, per CPU
    spurious: Rule = Rule("*", 10.0, 1000.0)  # unhandled interrupts per s, per IRQ
    baseline: Baseline = Baseline()
    start_intervals: int = 2  # K: intervals over a threshold before a storm starts
    end_intervals: int = 3  # M: intervals under end_ratio * threshold before it ends
    end_ratio: float = 0.5


@dataclass(frozen=True, slots=True)
class Reading:
    """One measured value of one subject in one interval."""

    key: str  # unique: "irq:41", "cpu:1", "softirq:NET_RX", "softnet_drop:0"
    cls: str  # one of CLASSES
    subject: str  # "41", "LOC", "NET_RX", "1"
    name: str  # "virtio2-input.0", "Function call interrupts", "CPU1"
    value: float  # NaN = not measured this interval
    unit: str  # "interrupts/s", "%", "events/s"
    rule: Rule
    cpu: int | None = None
    # Where it happened (IRQs, vectors): the per-CPU rates row and its CPU ids, turned into
    # pairs only for a storm; building them for every row of a 1152-CPU machine costs seconds.
    row: np.ndarray | None = None
    cpus: tuple[int, ...] = ()

    def per_cpu(self) -> tuple[tuple[int, float], ...]:
        if self.row is None:
            return ()
        nz = np.flatnonzero(np.nan_to_num(self.row) > 0)
        return tuple((self.cpus[j], float(self.row[j])) for j in nz)


@dataclass(frozen=True, slots=True)
class Storm:
    """A storm as it stands: what, how bad, since when, and the numbers."""

    key: str
    cls: str
    subject: str
    name: str
    unit: str
    level: Level
    reason: str  # "absolute" or "baseline"
    threshold: float  # the limit crossed at `level`
    value: float  # this interval's value
    peak: float
    started_ns: int
    cpu: int | None = None
    per_cpu: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True, slots=True)
class StormEvent:
    """storm_start, escalation or storm_end: the only moments that alert."""

    event: str
    storm: Storm
    at_ns: int


def _rule_for(rules: tuple[Rule, ...], *names: str) -> Rule:
    for rule in rules:
        if any(fnmatch.fnmatchcase(n, rule.match) for n in names if n):
            return rule
    return Rule("-", None, None)


def _nan(x: float) -> bool:
    return x is None or math.isnan(x)


# --- readings: one generator per kind of subject -----------------------------------------


def _irq_readings(rates: Rates, cfg: DetectorConfig) -> Iterator[Reading]:
    irq = rates.interrupts
    if irq is None:
        return
    for k, line in enumerate(irq.lines):
        cls = "irq" if line.numbered else "vector"
        name = line.name if line.numbered else arch_meaning(line.irq, line.name)
        rule = _rule_for(cfg.irq, line.irq, line.name, *line.actions)
        row = irq.rate[k] if line.per_cpu else None
        yield Reading(f"{cls}:{line.key}", cls, line.irq, name, float(irq.total_rate[k]), "interrupts/s", rule, None, row, irq.cpus)
    totals = np.nansum(irq.rate, axis=0)
    for j, cpu in enumerate(irq.cpus):
        yield Reading(f"cpu:{cpu}", "cpu", str(cpu), f"CPU{cpu}", float(totals[j]), "interrupts/s", cfg.cpu, cpu)


def _softirq_readings(rates: Rates, cfg: DetectorConfig) -> Iterator[Reading]:
    s = rates.softirqs
    if s is None:
        return
    for i, vec in enumerate(s.vectors):
        row = s.rate[i]
        value = float("nan") if np.isnan(row).all() else float(np.nansum(row))
        yield Reading(f"softirq:{vec}", "softirq", vec, vec, value, "softirqs/s", _rule_for(cfg.softirq, vec), None, row, s.cpus)


# Each *_readings() opens alike (its rate table, or no readings) and yields its own kind of
# Reading: one generator per table keeps each table's rule and unit beside it.
def _cpu_time_readings(rates: Rates, cfg: DetectorConfig) -> Iterator[Reading]:
    t = rates.cpu
    if t is None:
        return
    # /proc/stat irq and softirq columns stay 0 without CONFIG_IRQ_TIME_ACCOUNTING (and
    # tick-based accounting only sees them when a tick lands in one); still the only source.
    pct = t.field("irq") + t.field("softirq")
    for j, cpu in enumerate(t.cpus):
        yield Reading(f"irqtime:{cpu}", "irqtime", str(cpu), f"CPU{cpu} %irq+%softirq", float(pct[j]), "%", cfg.irqtime_pct, cpu)


def _softnet_readings(rates: Rates, cfg: DetectorConfig) -> Iterator[Reading]:
    sn = rates.softnet
    if sn is None:
        return
    for cls, col, rule in (("softnet_drop", "dropped", cfg.softnet_drop), ("softnet_squeeze", "time_squeeze", cfg.softnet_squeeze)):
        values = sn.field(col)
        for j, cpu in enumerate(sn.cpus):
            yield Reading(f"{cls}:{cpu}", cls, str(cpu), f"CPU{cpu} {col}", float(values[j]), "events/s", rule, cpu)


def _spurious_readings(rates: Rates, cfg: DetectorConfig) -> Iterator[Reading]:
    before, after = rates.before.irqinfo, rates.after.irqinfo
    for irq, info in after.items():
        old = before.get(irq)
        if info.spurious is None or old is None or old.spurious is None:
            continue
        # note_interrupt() (kernel/irq/spurious.c, v6.18) zeroes irqs_unhandled every 100,000
        # interrupts; a smaller value now means the window restarted, so growth is the new value.
        new_u, old_u = info.spurious.unhandled, old.spurious.unhandled
        growth = new_u - old_u if new_u >= old_u else new_u
        name = ", ".join(info.actions or ()) or str(irq)
        yield Reading(f"spurious:{irq}", "spurious", str(irq), name, growth / rates.interval_s, "unhandled/s", cfg.spurious)


READERS = (_irq_readings, _softirq_readings, _cpu_time_readings, _softnet_readings, _spurious_readings)


def readings(rates: Rates, cfg: DetectorConfig) -> list[Reading]:
    """Every subject the detector watches, measured over one interval."""
    return [r for reader in READERS for r in reader(rates, cfg)]


# --- per-subject hysteresis ---------------------------------------------------------------


@dataclass(slots=True)
class _Track:
    """One subject's memory: counts of consecutive intervals, baseline samples, its storm."""

    over_warn: int = 0
    over_act: int = 0
    under: int = 0
    quiet: deque[float] = field(default_factory=lambda: deque(maxlen=60))
    storm: Storm | None = None


def baseline_limit(samples: Sequence[float], b: Baseline) -> float | None:
    """median + k * 1.4826 * MAD of the quiet samples, or None while too few."""
    if not b.enabled or len(samples) < b.min_samples:
        return None
    # statistics.median on <= `window` floats: ~20x cheaper than np.median for thousands of
    # small per-subject histories on a big machine.
    med = statistics.median(samples)
    # A perfectly flat history has MAD 0: floor it so that jitter is not "unusual".
    mad = max(statistics.median([abs(x - med) for x in samples]), 0.05 * med, 1.0)
    return max(b.min_rate, med + b.k * 1.4826 * mad)


def classify(value: float, rule: Rule, base: float | None) -> tuple[Level, float, str]:
    """The level of one value, the limit it crossed (or the warn limit), and why."""
    if rule.act is not None and value >= rule.act:
        return Level.ACT, rule.act, "absolute"
    if rule.warn is not None and value >= rule.warn:
        return Level.WARN, rule.warn, "absolute"
    if base is not None and value >= base and (rule.warn is None or base < rule.warn):
        return Level.WARN, base, "baseline"
    limits = [x for x in (rule.warn, base) if x is not None]
    return Level.NONE, min(limits) if limits else math.inf, "-"


class StormDetector:
    """Feeds Rates one interval at a time; keeps per-subject hysteresis and baselines.

    Deterministic and free of I/O: the same Rates sequence always gives the same events.
    `config` may be replaced between updates (SIGHUP) without losing the tracks.
    """

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self._tracks: dict[str, _Track] = {}

    @property
    def active(self) -> dict[str, Storm]:
        """Storms going on now, by key."""
        return {k: t.storm for k, t in self._tracks.items() if t.storm is not None}

    def update(self, rates: Rates) -> list[StormEvent]:
        """Account one interval; return the events it caused (usually none)."""
        now = rates.after.taken_ns
        events: list[StormEvent] = []
        for r in readings(rates, self.config):
            track = self._tracks.get(r.key)
            if track is None:
                track = self._tracks[r.key] = _Track(quiet=deque(maxlen=self.config.baseline.window))
            if track.quiet.maxlen != self.config.baseline.window:
                track.quiet = deque(track.quiet, maxlen=self.config.baseline.window)
            event = self._step(track, r, now)
            if event is not None:
                events.append(event)
        return events

    def _step(self, t: _Track, r: Reading, now: int) -> StormEvent | None:
        cfg = self.config
        if _nan(r.value):
            return None  # no data (reset, hotplug): hold every counter as it is
        # Nothing under min_rate is unusual: skip the median for the (many) quiet subjects.
        base = baseline_limit(t.quiet, cfg.baseline) if r.value >= cfg.baseline.min_rate else None
        level, limit, reason = classify(r.value, r.rule, base)
        t.over_warn = t.over_warn + 1 if level >= Level.WARN else 0
        t.over_act = t.over_act + 1 if level >= Level.ACT else 0
        if t.storm is None:
            if level is Level.NONE:
                t.quiet.append(r.value)  # only quiet intervals teach the baseline
            if t.over_warn < cfg.start_intervals:
                return None
            lvl = Level.ACT if t.over_act >= cfg.start_intervals else Level.WARN
            if lvl is Level.ACT:
                thr = limit  # over act in this interval too (start_intervals >= 1): rule.act
            elif level is Level.ACT:
                # Over act only in this interval (warn before it): a warn storm, shown with the
                # warn limit; it escalates once act has held for start_intervals.
                reason = "absolute"
                thr = r.rule.warn if r.rule.warn is not None else limit
            else:
                thr = limit
            t.storm = self._storm(r, lvl, reason, thr, now)
            t.under = 0
            return StormEvent("storm_start", t.storm, now)
        storm = t.storm
        storm = replace(storm, value=r.value, peak=max(storm.peak, r.value), per_cpu=r.per_cpu())
        # The storm ends under end_ratio times its warn limit (the current rule's, so that a
        # reload raising the limits ends it; the learned one for a baseline storm), never at
        # the limit itself: this gap is what stops a flapping rate from re-alerting.
        warn = r.rule.warn if storm.reason == "absolute" and r.rule.warn is not None else storm.threshold
        end_limit = cfg.end_ratio * warn
        t.under = t.under + 1 if r.value < end_limit else 0
        if t.under >= cfg.end_intervals:
            t.storm, t.under, t.over_warn, t.over_act = None, 0, 0, 0
            return StormEvent("storm_end", storm, now)
        if storm.level is Level.WARN and t.over_act >= cfg.start_intervals and r.rule.act is not None:
            storm = replace(storm, level=Level.ACT, threshold=r.rule.act, reason="absolute")
            t.storm = storm
            return StormEvent("escalation", storm, now)
        t.storm = storm
        return None

    @staticmethod
    def _storm(r: Reading, level: Level, reason: str, threshold: float, now: int) -> Storm:
        return Storm(
            key=r.key, cls=r.cls, subject=r.subject, name=r.name, unit=r.unit, level=level, reason=reason,
            threshold=threshold, value=r.value, peak=r.value, started_ns=now, cpu=r.cpu,
            per_cpu=r.per_cpu(),
        )
