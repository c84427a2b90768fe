"""irqlab's simulator against a SimPy model of the same small scenario, side by side.

The scenario: one CPU, a NAPI NIC under Poisson load (hardirq 1 us, 1 us per packet in
NET_RX, weight 64, netdev_budget 300, restart 10 / 2 ms then ksoftirqd), ksoftirqd as a
thread, one periodic task (1 ms period, 50 us work) whose wake-up latency is measured, HZ=1000
ticks. The SimPy model is written the way SimPy is meant to be used: a PreemptiveResource for
the CPU with priorities hardirq < softirq < threads, one process per arrival stream, handler
and thread; preemption is an Interrupt that the victim catches, re-queues and resumes.

Both count the same "kernel events": packet arrivals, hardirq handler starts and ends, softirq
(NET_RX) runs. Times are CPU seconds of this process (time.process_time()), not wall time:
the benchmark box is shared, and CPU time is what the two implementations cost. Run: .venv/bin/python bench/bench_sim.py [--rates 100000,400000] [--duration 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import simpy

from irqlab.sim.machine import Machine
from irqlab.sim.scenario import parse_scenario

HARD_NS, PKT_NS, WEIGHT, BUDGET, RESTART, TICK_NS = 1_000, 1_000, 64, 300, 10, 1_000_000


INLINE = True  # False (--general): every segment through the heap, no sim/fastpath.py


def irqlab_run(rate: float, duration_s: float, seed: int = 1) -> tuple[float, int]:
    raw = {"machine": {"cpus": 1, "duration_s": duration_s, "seed": seed, "kernel": "6.18"},
           "device": [{"name": "eth0", "irq": 41, "kind": "napi", "arrival": {"rate": rate},
                       "hardirq_ns": HARD_NS, "work_ns": PKT_NS, "ring": 4096}],
           "task": [{"name": "app", "kind": "periodic", "period_us": 1000, "work_ns": 50_000}]}
    t0 = time.process_time()
    m = Machine(parse_scenario(raw, "bench"))
    m.engine.inline = INLINE
    m.run()
    wall = time.process_time() - t0
    line = m.lines[0]
    irqs = sum(line.counts) + sum(m.loc.counts) + sum(m.res.counts)
    events = line.arrived + 2 * irqs + sum(st.counts[3] for st in m.softirq_state)
    return wall, events


class SimpyKernel:
    """The same mechanisms in SimPy style."""

    def __init__(self, rate: float, seed: int) -> None:
        self.env = simpy.Environment()
        self.cpu = simpy.PreemptiveResource(self.env, capacity=1)
        self.rng = np.random.default_rng(seed)
        self.rate = rate
        self.ring = 0
        self.masked = False
        self.pending = False
        self.ksoftirqd_wake = None
        self.events = 0
        self.latencies: list[int] = []

    def busy(self, prio: int, ns: int):
        """Hold the CPU at prio for ns of work, resuming after preemption."""
        left = ns
        while left > 0:
            with self.cpu.request(priority=prio, preempt=prio < 2) as req:
                yield req
                start = self.env.now
                try:
                    yield self.env.timeout(left)
                    left = 0
                except simpy.Interrupt:
                    left -= self.env.now - start

    def nic(self):
        gaps = iter(())
        while True:
            try:
                gap = next(gaps)
            except StopIteration:
                gaps = iter(self.rng.exponential(1e9 / self.rate, 4096).astype(np.int64).tolist())
                gap = next(gaps)
            yield self.env.timeout(gap)
            self.ring += 1
            self.events += 1
            if not self.masked:
                self.masked = True
                self.env.process(self.hardirq())

    def hardirq(self):
        self.events += 1
        yield from self.busy(0, HARD_NS)
        self.events += 1
        self.pending = True
        self.env.process(self.softirq(ksoftirqd=False))

    def tick(self):
        while True:
            yield self.env.timeout(TICK_NS)
            self.env.process(self.tick_irq())

    def tick_irq(self):
        self.events += 1
        yield from self.busy(0, HARD_NS)
        self.events += 1
        if self.pending:
            self.env.process(self.softirq(ksoftirqd=False))

    def softirq(self, ksoftirqd: bool):
        end = self.env.now // TICK_NS + 2
        restart = RESTART
        while self.pending:
            self.pending = False
            self.events += 1
            budget = BUDGET
            while budget > 0:
                take = min(WEIGHT, self.ring)
                self.ring -= take
                yield from self.busy(2 if ksoftirqd else 1, take * PKT_NS + 1)
                budget -= take
                if take < WEIGHT:
                    break
            if take == WEIGHT:
                self.pending = True
            else:
                self.masked = False
                if self.ring:
                    self.masked = True
                    self.env.process(self.hardirq())
            if self.pending:
                restart -= 1
                if not (self.env.now // TICK_NS < end and restart):
                    if not ksoftirqd and self.ksoftirqd_wake and not self.ksoftirqd_wake.triggered:
                        self.ksoftirqd_wake.succeed()
                    return

    def ksoftirqd(self):
        while True:
            self.ksoftirqd_wake = self.env.event()
            yield self.ksoftirqd_wake
            yield from self.softirq(ksoftirqd=True)

    def task(self):
        expiry = 1_000_000
        while True:
            yield self.env.timeout(expiry - self.env.now)
            with self.cpu.request(priority=2) as req:
                yield req
                self.latencies.append(self.env.now - expiry)
            yield from self.busy(2, 50_000)
            expiry += 1_000_000
            while expiry <= self.env.now:
                expiry += 1_000_000


def simpy_run(rate: float, duration_s: float, seed: int = 1) -> tuple[float, int]:
    k = SimpyKernel(rate, seed)
    for proc in (k.nic(), k.tick(), k.ksoftirqd(), k.task()):
        k.env.process(proc)
    t0 = time.process_time()
    k.env.run(until=int(duration_s * 1e9))
    return time.process_time() - t0, k.events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="50000,200000,800000")
    ap.add_argument("--duration", type=float, default=0.5, help="simulated seconds per run")
    ap.add_argument("--repeat", type=int, default=3, help="alternating runs per tool; medians are reported")
    ap.add_argument("--general", action="store_true",
                    help="irqlab without its inline completion and quiet-cycle fast path (Engine.inline = False)")
    a = ap.parse_args()
    global INLINE
    INLINE = not a.general
    print("speed-up: median of the per-pair ratios (each irqlab run against the SimPy run next to it);"
          " min: ratio of the fastest runs")
    print(f"{'rate/s':>9} {'tool':<7} {'cpu s':>8} {'kernel events':>14} {'events/cpu-s':>14} {'speed-up':>9} {'min':>6}")
    for rate in (float(r) for r in a.rates.split(",")):
        walls: dict[str, list[float]] = {"irqlab": [], "simpy": []}
        events: dict[str, int] = {}
        for _ in range(a.repeat):  # alternate, so both see the same machine noise
            for name, fn in (("irqlab", irqlab_run), ("simpy", simpy_run)):
                w, e = fn(rate, a.duration)
                walls[name].append(w)
                events[name] = e
        med = {n: statistics.median(v) for n, v in walls.items()}
        pair = statistics.median(s / i for i, s in zip(walls["irqlab"], walls["simpy"]))
        best = min(walls["simpy"]) / min(walls["irqlab"])
        for name in ("irqlab", "simpy"):
            eps = events[name] / med[name]
            up, low = (f"{pair:.1f}x", f"{best:.1f}x") if name == "irqlab" else ("-", "-")
            print(f"{rate:>9.0f} {name:<7} {med[name]:>8.3f} {events[name]:>14} {eps:>14.0f} {up:>9} {low:>6}", flush=True)


if __name__ == "__main__":
    main()
