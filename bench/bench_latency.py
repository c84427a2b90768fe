"""irqlab's latency probe versus cyclictest (rt-tests): same CPUs, interval, priority, duration.

    sudo .venv/bin/python bench/bench_latency.py --reps 3 --duration 10 [--interval 1000] [--cpus 0,1]

Alternates the two tools (ABAB...), idle and under load.sh (UDP flood over a veth pair), and
prints per-run numbers and the medians as a Markdown table. cyclictest stores latencies as
truncated microseconds (-h histogram, avg of integer us), so irqlab's samples are compared on
that same scale (floor to us) as well as exactly. Both hold /dev/cpu_dma_latency at 0 and lock
memory (cyclictest -m; cyclictest sets the QoS request by default). Needs root.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
LOAD_SH = Path(os.environ.get("IRQLAB_LOAD_SH", REPO.parent / "shared" / "tools" / "load.sh"))

from irqlab.probe import dma  # noqa: E402
from irqlab.probe.runner import measure  # noqa: E402


def floor_stats(us: np.ndarray) -> dict:
    """avg and p99 on cyclictest's scale: integer us; p99 = upper edge of its 1 us bucket."""
    us = np.sort(us)
    at = {q: int(us[int(np.ceil(q * us.size)) - 1]) + 1 for q in (0.5, 0.99)}
    return {"min": int(us[0]), "p50": at[0.5], "avg": float(us.mean()), "p99": at[0.99], "max": int(us[-1]),
            "n": int(us.size)}


def run_irqlab(cpus: list[int], interval_us: int, prio: int, seconds: float) -> dict:
    with dma.hold_zero():
        run = measure(cpus, interval_us * 1000, int(seconds * 1e6 / interval_us), "fifo", prio)
    samples = np.concatenate([r.samples_ns for r in run.cpus])
    wall = (run.end_ns - run.start_ns) / 1e9
    out = floor_stats(samples // 1000)
    out["avg_exact"] = float(samples.mean() / 1000)
    out["cpu_pct"] = 100 * sum(r.cpu_time_ns for r in run.cpus) / 1e9 / wall / len(cpus)
    return out


def run_cyclictest(cpus: list[int], interval_us: int, prio: int, seconds: float) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as js:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        proc = subprocess.run(["cyclictest", "-q", "-m", "-a", ",".join(map(str, cpus)), "-t", str(len(cpus)),
                               "-i", str(interval_us), "-p", str(prio), "-D", f"{seconds:g}", "-h", "20000",
                               f"--json={js.name}"], capture_output=True, text=True, check=True)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        doc = json.loads(Path(js.name).read_text())
    hist = np.zeros(20001, dtype=np.int64)
    for line in proc.stdout.splitlines():
        if line and line[0].isdigit():
            cells = [int(x) for x in line.split()]
            hist[cells[0]] += sum(cells[1:])
    threads = doc["thread"].values()
    n = sum(t["cycles"] for t in threads)
    overflow = n - int(hist.sum())
    cum = np.cumsum(hist)
    edge = {q: int(np.searchsorted(cum, int(np.ceil(q * n)))) + 1 if cum[-1] >= np.ceil(q * n) else None for q in (0.5, 0.99)}
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"min": min(t["min"] for t in threads), "p50": edge[0.5],
            "avg": sum(t["avg"] * t["cycles"] for t in threads) / n, "p99": edge[0.99], "overflow": overflow,
            "max": max(t["max"] for t in threads), "n": n, "cpu_pct": 100 * cpu / wall / len(cpus)}


def with_load(seconds: float):
    """Start load.sh (UDP over veth, 2 pairs) for this run; returns the process."""
    proc = subprocess.Popen(["bash", str(LOAD_SH), "-q", "-m", "udp", "-l", "16", "-n", "2", "-d", str(int(seconds) + 5)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(2.0)
    return proc


def stop(proc) -> None:
    proc.terminate()  # load.sh's EXIT trap removes its namespaces
    proc.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--interval", type=int, default=1000)
    ap.add_argument("--priority", type=int, default=95)
    ap.add_argument("--cpus", default=",".join(map(str, sorted(os.sched_getaffinity(0)))))
    ap.add_argument("--conditions", default="idle,load")
    a = ap.parse_args()
    cpus = [int(c) for c in a.cpus.split(",")]
    results: dict[tuple[str, str], list[dict]] = {}
    for cond in a.conditions.split(","):
        for rep in range(a.reps):
            order = [("irqlab", run_irqlab), ("cyclictest", run_cyclictest)]
            for name, fn in order if rep % 2 == 0 else order[::-1]:
                load = with_load(a.duration) if cond == "load" else None
                try:
                    r = fn(cpus, a.interval, a.priority, a.duration)
                finally:
                    if load is not None:
                        stop(load)
                results.setdefault((cond, name), []).append(r)
                print(f"{cond:5} rep {rep} {name:10} " + " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                                                for k, v in r.items()), flush=True)
    print()
    print("| condition | tool | runs | min us | p50 us | avg us | p99 us | max us | CPU % of one CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    keys = ("min", "p50", "avg", "p99", "max", "cpu_pct")
    for (cond, name), rs in results.items():
        med = {k: statistics.median(r[k] for r in rs if r.get(k) is not None) for k in keys}
        print(f"| {cond} | {name} | {len(rs)} | {med['min']:.0f} | {med['p50']:.0f} | {med['avg']:.1f} | {med['p99']:.0f} "
              f"| {med['max']:.0f} | {med['cpu_pct']:.2f} |")
    for cond in a.conditions.split(","):
        i, c = results[(cond, "irqlab")], results[(cond, "cyclictest")]
        d_avg = [x["avg"] - y["avg"] for x, y in zip(i, c)]
        r_p99 = [x["p99"] / y["p99"] for x, y in zip(i, c) if y["p99"]]
        d_p50 = [x["p50"] - y["p50"] for x, y in zip(i, c) if y["p50"]]
        print(f"{cond}: irqlab p50 - cyclictest p50, per pair: {', '.join(f'{d:+d}' for d in d_p50)} us "
              f"(median {statistics.median(d_p50):+.1f})")
        print(f"{cond}: irqlab avg - cyclictest avg, per pair: {', '.join(f'{d:+.1f}' for d in d_avg)} us "
              f"(median {statistics.median(d_avg):+.1f});\n       p99 ratio per pair: {', '.join(f'{r:.2f}' for r in r_p99)} "
              f"(median {statistics.median(r_p99):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
