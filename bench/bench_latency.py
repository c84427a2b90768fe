"""irqlab's latency probe versus cyclictest (rt-tests): same CPUs, interval, priority, duration.

    sudo .venv/bin/python bench/bench_latency.py --reps 3 --duration 10 [--interval 1000] [--cpus 0,1]
    sudo .venv/bin/python bench/bench_latency.py --tools cli,kernel,cyclictest --conditions idle,udp,tcp-rps-hog \
        --reps 5 --duration 5

--tools picks what is compared: probe (irqlab.probe.runner.measure in-process, dma held), cli (the
command as a user runs it, default options: `irqlab latency -p P -i I -D S --json`), kernel (the
same with --kernel: kernel-side wake-up latency beside the user-visible one; BPF histograms),
kernel-tracefs (--kernel --kernel-backend tracefs: the trace window), bpfcost (the probe with
the --kernel BPF programs in-process, bpf stats on: run_time_ns / run_cnt of each program
per probe wake-up) and cyclictest (`cyclictest -m -p P -t -a -i I -D S -q`, its defaults;
its CPU per wake-up = CPU time / cycles). Conditions: idle, load/udp (load.sh -m udp
-l 16 -n 2), tcp-rps-hog (load.sh -m tcp --rps 1 -H 1); load.sh runs under `chrt --other 0`.

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


def run_bpf_cost(cpus: list[int], interval_us: int, prio: int, seconds: float) -> dict:
    """The probe with --kernel's BPF programs attached and bpf stats counting (an fd: nothing to restore).

    run_time_ns / run_cnt come from each program's fdinfo (kernel/bpf/syscall.c
    bpf_prog_show_fdinfo, v6.18); the programs run on every hrtimer start and context switch of
    the machine, so their cost per probe wake-up includes the filtering of everyone else's.
    """
    from irqlab.bpf.syscall import enable_stats
    from irqlab.bpf.wakeup_hist import WakeupHist, settle

    stats_fd = enable_stats()
    try:
        with dma.hold_zero(), WakeupHist() as w:
            run = measure(cpus, interval_us * 1000, int(seconds * 1e6 / interval_us), "fifo", prio,
                          before_start=w.add_probes)
            settle()
            got, costs = w.read(), w.costs()
    finally:
        os.close(stats_fd)
    samples = np.concatenate([r.samples_ns for r in run.cpus])
    wall = (run.end_ns - run.start_ns) / 1e9
    out = floor_stats(samples // 1000)
    out["avg_exact"] = float(samples.mean() / 1000)
    out["cpu_pct"] = 100 * sum(r.cpu_time_ns for r in run.cpus) / 1e9 / wall / len(cpus)
    out["probe_us_per_wakeup"] = sum(r.cpu_time_ns for r in run.cpus) / 1e3 / samples.size
    timed = sum(got.counters["timed"].values())
    out["timed"] = timed
    out["bpf_ns_per_wakeup"] = sum(c.run_time_ns for c in costs) / max(timed, 1)
    out["bpf_runs_per_wakeup"] = sum(c.run_cnt for c in costs) / max(timed, 1)
    out["bpf_misses"] = sum(c.recursion_misses for c in costs)
    for c in costs:
        out[f"{c.name.removeprefix('irqlab_wk_')}_ns_per_run"] = c.run_time_ns / max(c.run_cnt, 1)
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
            "max": max(t["max"] for t in threads), "n": n, "cpu_pct": 100 * cpu / wall / len(cpus),
            "us_per_wakeup": cpu * 1e6 / n}


IRQLAB = REPO / ".venv" / "bin" / "irqlab"
LOADS = {"load": ["-m", "udp", "-l", "16", "-n", "2"], "udp": ["-m", "udp", "-l", "16", "-n", "2"],
         "tcp-rps-hog": ["-m", "tcp", "--rps", "1", "-H", "1"]}


def run_cli(cpus: list[int], interval_us: int, prio: int, seconds: float, kernel: str = "") -> dict:
    """`irqlab latency` with its default options (dma held at 0), as a user runs it; --json to read it."""
    cmd = [str(IRQLAB), "latency", "-p", str(prio), "-i", str(interval_us), "-D", f"{seconds:g}",
           "-a", ",".join(map(str, cpus)), "--json"] + (["--kernel", "--kernel-backend", kernel] if kernel else [])
    doc = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    per = doc["latency"]["cpus"]
    hist: dict[int, int] = {}
    n = over = 0
    for c in per.values():
        h = c["histogram"]
        for k, v in h["linear"].items():
            hist[int(k) // 1000] = hist.get(int(k) // 1000, 0) + v
        n += h["count"]
        over += h["overflow"]
    floored = sum(us * v for us, v in hist.items()) / max(n - over, 1)  # cyclictest's scale (integer us)
    ov = doc["latency"]["overall"]
    out = {"min": ov["min_us"], "p50": ov["p50_us"], "avg": floored, "p99": ov["p99_us"], "max": ov["max_us"],
           "n": ov["samples"], "avg_exact": ov["avg_us"],
           "cpu_pct": sum(p["cpu_pct"] for p in doc["probe"]) / len(doc["probe"])}
    if kernel:
        kw = doc["kernel_wakeup"]
        ks = kw["cpus"].values()
        m = sum(k["matched"] for k in ks)
        wavg = lambda part: sum(k[part]["avg_us"] * k["matched"] for k in ks) / m  # noqa: E731
        out.update({"k_matched": m, "k_wakeups": sum(k["wakeups"] for k in ks), "k_complete": kw.get("trace_complete"),
                    "k_source": kw["source"], "k_above_user": sum(k["kernel_above_user"] or 0 for k in ks),
                    "k_irq": wavg("irq"),
                    "k_thread": wavg("thread"), "k_avg": wavg("kernel"), "k_user": wavg("user"),
                    "k_return": wavg("return"), "k_max": max(k["kernel"]["max_us"] for k in ks)})
    return out


def run_kernel(cpus: list[int], interval_us: int, prio: int, seconds: float) -> dict:
    return run_cli(cpus, interval_us, prio, seconds, kernel="bpf")


def run_kernel_tracefs(cpus: list[int], interval_us: int, prio: int, seconds: float) -> dict:
    return run_cli(cpus, interval_us, prio, seconds, kernel="tracefs")


def with_load(seconds: float, cond: str = "load"):
    """Start load.sh for this run at SCHED_OTHER (chrt --other 0); returns the process."""
    proc = subprocess.Popen(["chrt", "--other", "0", "bash", str(LOAD_SH), "-q", *LOADS[cond],
                             "-d", str(int(seconds) + 15)],
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
    ap.add_argument("--conditions", default="idle,load", help="idle, load (= udp), udp, tcp-rps-hog")
    ap.add_argument("--tools", default="probe,cyclictest", help="probe, cli, kernel, cyclictest (rotated per rep)")
    a = ap.parse_args()
    fns = {"probe": ("irqlab", run_irqlab), "cli": ("irqlab", run_cli), "kernel": ("irqlab-k", run_kernel),
           "kernel-tracefs": ("irqlab-kt", run_kernel_tracefs), "bpfcost": ("irqlab-bpf", run_bpf_cost),
           "cyclictest": ("cyclictest", run_cyclictest)}
    tools = [fns[t] for t in a.tools.split(",")]
    cpus = [int(c) for c in a.cpus.split(",")]
    results: dict[tuple[str, str], list[dict]] = {}
    for cond in a.conditions.split(","):
        for rep in range(a.reps):
            order = tools[rep % len(tools):] + tools[:rep % len(tools)] if len(tools) > 2 else \
                (tools if rep % 2 == 0 else tools[::-1])
            for name, fn in order:
                load = with_load(a.duration, cond) if cond != "idle" else None
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
        c = results[(cond, "cyclictest")]
        b = results.get((cond, "irqlab-bpf"))
        if b:
            med = {f: statistics.median(x[f] for x in b) for f in
                   ("bpf_ns_per_wakeup", "bpf_runs_per_wakeup", "start_ns_per_run", "expire_ns_per_run",
                    "switch_ns_per_run", "probe_us_per_wakeup")}
            print(f"{cond}: BPF programs {med['bpf_ns_per_wakeup'] / 1000:.2f} us of CPU per probe wake-up "
                  f"({med['bpf_runs_per_wakeup']:.1f} runs: start {med['start_ns_per_run']:.0f}, expire "
                  f"{med['expire_ns_per_run']:.0f}, switch {med['switch_ns_per_run']:.0f} ns per run; "
                  f"{sum(x['bpf_misses'] for x in b)} recursion misses); the probe itself "
                  f"{med['probe_us_per_wakeup']:.1f} us; cyclictest {statistics.median(x['us_per_wakeup'] for x in c):.1f} us "
                  "per wake-up")
        for tag in ("irqlab-k", "irqlab-kt"):
            k = results.get((cond, tag))
            if not k:
                continue
            ret = statistics.median(x["k_return"] for x in k)
            kd = [x["k_avg"] - y["avg"] for x, y in zip(k, c)]
            ud = [x["avg"] - y["avg"] for x, y in zip(k, c)]
            ur = [x["p99"] / y["p99"] for x, y in zip(k, c) if y["p99"]]
            med = {f: statistics.median(x[f] for x in k) for f in ("k_avg", "k_irq", "k_thread", "k_user")}
            print(f"{cond}: {tag} --kernel: kernel avg {med['k_avg']:.1f} us (irq {med['k_irq']:.1f} + thread "
                  f"{med['k_thread']:.1f}), user {med['k_user']:.1f}, return path {ret:.1f}; kernel > user in "
                  + (f"{sum(x['k_above_user'] for x in k)} of" if k[0]["k_source"] == "tracefs" else "? (histograms) of")
                  + f" {sum(x['k_matched'] for x in k)} timed wake-ups "
                  f"({sum(x['k_wakeups'] for x in k)} in all); kernel avg - cyclictest avg per pair: "
                  + ", ".join(f"{d:+.1f}" for d in kd) + f" us (median {statistics.median(kd):+.1f})")
            print(f"{cond}: {tag} run, user-visible avg - cyclictest avg per pair: "
                  + ", ".join(f"{d:+.1f}" for d in ud) + f" us (median {statistics.median(ud):+.1f}); p99 ratio "
                  + ", ".join(f"{r:.2f}" for r in ur) + f" (median {statistics.median(ur):.2f})")
        if (cond, "irqlab") not in results:
            continue
        i = results[(cond, "irqlab")]
        d_avg = [x["avg"] - y["avg"] for x, y in zip(i, c)]
        r_p99 = [x["p99"] / y["p99"] for x, y in zip(i, c) if y["p99"]]
        d_p50 = [x["p50"] - y["p50"] for x, y in zip(i, c) if y["p50"]]
        print(f"{cond}: irqlab p50 - cyclictest p50, per pair: {', '.join(f'{d:+.0f}' for d in d_p50)} us "
              f"(median {statistics.median(d_p50):+.1f})")
        print(f"{cond}: irqlab avg - cyclictest avg, per pair: {', '.join(f'{d:+.1f}' for d in d_avg)} us "
              f"(median {statistics.median(d_avg):+.1f});\n       p99 ratio per pair: {', '.join(f'{r:.2f}' for r in r_p99)} "
              f"(median {statistics.median(r_p99):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
