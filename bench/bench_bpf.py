#!/usr/bin/env python3
"""Slowdown of the UDP flood caused by irqlab's BPF backend, beside libbpf-tools softirqs/hardirqs.

Each round runs every tool once, in a rotated order. A tool is started and attached first,
then `load.sh -q -m udp -l 16 -n 2 -d LOAD_S` runs to completion, then the tool is stopped.
Throughput is the iperf3 receivers' datagrams (received = total - lost, both pairs) from
load.sh's summary, divided by the receiver's interval. Reported: per-tool median datagrams/s
and its ratio to the median with no tool. The machine is shared and noisy: compare medians
and ratios, never single runs. Needs root.

    sudo .venv/bin/python bench/bench_bpf.py --rounds 3 --load-s 8
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOAD_SH = Path(os.environ.get("IRQLAB_LOAD_SH", REPO.parent / "shared" / "tools" / "load.sh"))
RECEIVER = re.compile(r"0\.00-(?P<secs>\d+\.\d+)\s+sec.*?(?P<lost>\d+)/(?P<total>\d+) \(\d+%\)\s+receiver")

# irqlab's BPF backend as `irqlab trace --backend bpf 1` would run it: read maps every second.
IRQLAB = """
import sys, time
from irqlab.bpf.backend import BpfTracer
with BpfTracer() as tracer:  # finds tracefs, mounting it for set-up when it is not mounted
    print("ready", flush=True)  # every program attached
    while True:
        time.sleep(1.0)
        tracer.snapshot()
"""


def tool_command(tool: str) -> list[str] | None:
    return {
        "none": None,
        "irqlab-bpf": [sys.executable, "-c", IRQLAB],
        "softirqs-d": ["softirqs", "-d", "600", "1"],
        "hardirqs-d": ["hardirqs", "-d", "600", "1"],
    }[tool]


def received_per_s(summary: str) -> float:
    rates = [(int(m["total"]) - int(m["lost"])) / float(m["secs"]) for m in RECEIVER.finditer(summary)]
    if not rates:
        raise RuntimeError(f"no receiver lines in load.sh summary:\n{summary}")
    return sum(rates)


def prog_stats() -> dict[int, tuple[str, int, int]]:
    """prog id -> (name, run_time_ns, run_cnt) for every loaded program (bpftool prog show -j)."""
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True, check=True).stdout
    return {p["id"]: (p.get("name", ""), p.get("run_time_ns", 0), p.get("run_cnt", 0)) for p in json.loads(out)}


def one_run(tool: str, load_s: int, stats: bool = False) -> tuple[float, dict]:
    """(receiver datagrams/s, in-kernel cost of the tool's programs when stats) for one load run."""
    cmd = tool_command(tool)
    proc = None
    before = prog_stats() if stats else {}
    if cmd is not None:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO / "src")})
        if tool == "irqlab-bpf":
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("irqlab BPF backend did not start")
        else:
            time.sleep(1.5)  # libbpf-tools print nothing until the interval ends: give them time to attach
    cost = {}
    try:
        t0 = time.monotonic()
        out = subprocess.run(["bash", str(LOAD_SH), "-q", "-m", "udp", "-l", "16", "-n", "2", "-d", str(load_s)],
                             capture_output=True, text=True, timeout=load_s + 60)
        if stats:
            after = prog_stats()
            new = {i: v for i, v in after.items() if i not in before}  # the tool's programs
            ns, runs = sum(v[1] for v in new.values()), sum(v[2] for v in new.values())
            dt = time.monotonic() - t0
            cost = {"programs": len(new), "bpf_ns_per_s": ns / dt, "runs_per_s": runs / dt,
                    "ns_per_run": ns / runs if runs else None,
                    # per program: runs/s and BPF ms/s (where the time goes: which events fire most)
                    "by_program": {v[0]: [v[2] / dt, v[1] / dt / 1e6] for v in new.values() if v[2]}}
    finally:
        if proc is not None:
            proc.send_signal(2)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return received_per_s(out.stdout), cost


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--load-s", type=int, default=8)
    ap.add_argument("--json", type=Path, help="append one JSON line per run")
    ap.add_argument("--stats", action="store_true", help="also measure each tool's in-kernel program time "
                    "(BPF_ENABLE_STATS while the fd is open; adds two clock reads per program run to every tool)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_bpf: needs root", file=sys.stderr)
        return 2
    tools = ["none", "irqlab-bpf", "softirqs-d", "hardirqs-d"]
    for t in tools[2:]:
        if shutil.which(t.split("-")[0]) is None:
            print(f"bench_bpf: {t.split('-')[0]} not installed (apt-get install libbpf-tools)", file=sys.stderr)
            return 2
    if shutil.which("bpftool") is None and args.stats:
        print("bench_bpf: --stats needs bpftool (apt-get install bpftool)", file=sys.stderr)
        return 2
    runs: dict[str, list[float]] = {t: [] for t in tools}
    costs: dict[str, list[dict]] = {t: [] for t in tools}
    stats_fd = None
    if args.stats:
        sys.path.insert(0, str(REPO / "src"))
        from irqlab.bpf.syscall import enable_stats

        stats_fd = enable_stats()
    for r in range(args.rounds):
        order = tools[r % len(tools):] + tools[: r % len(tools)]
        for t in order:
            v, cost = one_run(t, args.load_s, args.stats)
            runs[t].append(v)
            costs[t].append(cost)
            extra = f"  {cost['runs_per_s']:9.0f} runs/s {cost['ns_per_run'] or 0:6.0f} ns/run {cost['bpf_ns_per_s'] / 1e6:7.1f} ms/s" if cost else ""
            print(f"round {r} {t:11s} {v:12.0f} datagrams/s{extra}", flush=True)
            if args.json:
                with args.json.open("a") as f:
                    f.write(json.dumps({"round": r, "tool": t, "datagrams_per_s": v, "load_s": args.load_s, **cost}) + "\n")
    if stats_fd is not None:
        os.close(stats_fd)
    base = statistics.median(runs["none"])
    print(f"\n{'tool':11s} {'median datagrams/s':>19s} {'ratio to none':>14s} {'slowdown':>9s}  runs")
    for t in tools:
        m = statistics.median(runs[t])
        print(f"{t:11s} {m:19.0f} {m / base:14.3f} {100 * (1 - m / base):8.1f}%  {', '.join(f'{v:.0f}' for v in runs[t])}")
    if args.stats:
        print(f"\n{'tool':11s} {'programs':>8s} {'runs/s':>10s} {'ns/run':>7s} {'BPF ms per s':>13s}  (medians)")
        for t in tools[1:]:
            c = costs[t]
            med = lambda k, c=c: statistics.median(x[k] for x in c if x.get(k) is not None)  # noqa: E731
            print(f"{t:11s} {c[0]['programs']:8d} {med('runs_per_s'):10.0f} {med('ns_per_run'):7.0f} {med('bpf_ns_per_s') / 1e6:13.1f}")
        print(f"\n{'program':24s} {'runs/s':>10s} {'ns/run':>7s} {'BPF ms per s':>13s}  (medians; programs that ran)")
        for t in tools[1:]:
            names = sorted({n for x in costs[t] for n in x.get("by_program", {})})
            rows = []
            for n in names:
                per_s = statistics.median(x["by_program"].get(n, [0, 0])[0] for x in costs[t])
                ms = statistics.median(x["by_program"].get(n, [0, 0])[1] for x in costs[t])
                rows.append((ms, n, per_s))
            for ms, n, per_s in sorted(rows, reverse=True):
                print(f"{t + ' ' + n:24s} {per_s:10.0f} {1e6 * ms / per_s if per_s else 0:7.0f} {ms:13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
