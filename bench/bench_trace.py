#!/usr/bin/env python3
"""Benchmark `irqlab trace` against libbpf-tools softirqs/hardirqs and `perf record -e 'irq:*'`.

Under `load.sh -m udp -l 16 -n 2` (small-datagram UDP flood over veth), each round runs every
tool once, in a rotated order, each in its own load run:

  load.sh -d LOAD_S starts; at t=2 s the tool starts for TOOL_S seconds; the workload's
  throughput is the receiver's datagrams/s (iperf3 server per-second intervals, received =
  total - lost, both pairs) over the seconds [3, 2 + TOOL_S), where every tool is running.

Reported per tool: median receiver datagrams/s, its ratio to the median without a tracer,
NET_RX softirqs/s offered (/proc/softirqs over the same seconds), events/s the tool handled
and the events it lost. Needs root. Other load on the machine makes single runs noisy: compare
medians and ratios, never single numbers.

    sudo .venv/bin/python bench/bench_trace.py --rounds 3 --json bench/results-trace.jsonl
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
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOAD_SH = Path(os.environ.get("IRQLAB_LOAD_SH", REPO.parent / "shared" / "tools" / "load.sh"))
LOAD_ARGS = ["-m", "udp", "-l", "16", "-n", "2"]
INTERVAL = re.compile(r"\[\s*\d+\]\s+(?P<a>\d+\.\d+)-(?P<b>\d+\.\d+)\s+sec.*?(?P<lost>\d+)/(?P<total>\d+) \(")


def net_rx_total() -> int:
    for line in Path("/proc/softirqs").read_text().splitlines():
        if line.strip().startswith("NET_RX:"):
            return sum(int(x) for x in line.split()[1:])
    raise RuntimeError("no NET_RX row in /proc/softirqs")


def received_per_s(logdir: Path, lo: float, hi: float) -> float:
    """Datagrams/s the iperf3 servers received over whole seconds within [lo, hi)."""
    got, secs = 0, set()
    for log in sorted(logdir.glob("srv*.log")):
        for m in INTERVAL.finditer(log.read_text()):
            a, b = float(m["a"]), float(m["b"])
            if a >= lo and b <= hi and b - a > 0.9 and b - a < 1.1:
                got += int(m["total"]) - int(m["lost"])
                secs.add(a)
    return got / len(secs) if secs else float("nan")


def tool_command(tool: str, seconds: int, tmp: Path) -> list[str] | None:
    return {
        "none": None,
        "irqlab": [sys.executable, "-m", "irqlab", "trace", "--backend", "tracefs", "-d", str(seconds), "--json"],
        "irqlab-bpf": [sys.executable, "-m", "irqlab", "trace", "--backend", "bpf", "-d", str(seconds), "--json"],
        "softirqs": ["softirqs", "-d", str(seconds), "1"],
        "hardirqs": ["hardirqs", "-d", str(seconds), "1"],
        "perf": ["perf", "record", "-q", "-e", "irq:*", "-a", "-o", str(tmp / "perf.data"), "--", "sleep", str(seconds)],
    }[tool]


def tool_stats(tool: str, out: str, seconds: int, tmp: Path) -> dict:
    """Events the tool handled per second and events it lost, from its own output."""
    if tool in ("irqlab", "irqlab-bpf"):
        doc = json.loads(out)
        return {"events_per_s": sum(doc["events"].values()) / doc["window_s"], "lost": sum(doc["lost_events"].values()), "complete": doc["complete"]}
    if tool in ("softirqs", "hardirqs"):
        # Each histogram row is `lo -> hi : count |***|`; a run is an entry and an exit event.
        runs = sum(int(m) for m in re.findall(r"->\s+\d+\s+:\s+(\d+)", out))
        return {"events_per_s": 2 * runs / seconds, "lost": 0, "complete": True}
    if tool == "perf":
        rep = subprocess.run(["perf", "report", "-i", str(tmp / "perf.data"), "--stats"], capture_output=True, text=True, timeout=300).stdout
        samples = sum(int(x) for x in re.findall(r"SAMPLE events:\s+(\d+)", rep))
        lost = sum(int(x) for x in re.findall(r"LOST_SAMPLES events:\s+(\d+)|LOST events:\s+(\d+)", rep) for x in x if x)
        return {"events_per_s": samples / seconds, "lost": lost, "complete": lost == 0}
    return {"events_per_s": None, "lost": None, "complete": None}


def one_run(tool: str, load_s: int, tool_s: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-trace-") as d:
        tmp = Path(d)
        logs = tmp / "logs"
        logs.mkdir()
        load = subprocess.Popen(["bash", str(LOAD_SH), "-q", "-d", str(load_s), "-o", str(logs), *LOAD_ARGS],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        t0 = time.monotonic()
        time.sleep(2.0)
        cmd = tool_command(tool, tool_s, tmp)
        if cmd:  # the tool's own user+system CPU seconds (in-kernel tracing cost is not in it)
            cmd = ["/usr/bin/time", "-f", "%U %S", "-o", str(tmp / "time.txt"), *cmd]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) if cmd else None
        time.sleep(max(0.0, 3.0 - (time.monotonic() - t0)))
        rx0, r0 = net_rx_total(), time.monotonic()
        time.sleep(max(0.0, 2.0 + tool_s - 1.0 - (time.monotonic() - t0)))
        rx1, r1 = net_rx_total(), time.monotonic()
        out, err = proc.communicate(timeout=tool_s + 120) if proc else ("", "")
        load.communicate(timeout=load_s + 60)
        row = {"tool": tool, "rx_datagrams_per_s": received_per_s(logs, 3.0, 2.0 + tool_s), "net_rx_per_s": (rx1 - rx0) / (r1 - r0)}
        if proc and proc.returncode != 0:
            row["error"] = err.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            return row
        row.update(tool_stats(tool, out, tool_s, tmp))
        if proc:
            row["tool_cpu_s"] = sum(float(x) for x in (tmp / "time.txt").read_text().split()[-2:])
        return row


def summary(rows: list[dict]) -> str:
    tools = list(dict.fromkeys(r["tool"] for r in rows))
    base = statistics.median(r["rx_datagrams_per_s"] for r in rows if r["tool"] == "none")
    out = ["| tool | runs | receiver datagrams/s (median) | vs no tracer | NET_RX/s (median) | events/s handled (median) | lost events (median) | tool CPU s (median) |",
           "|---|---|---|---|---|---|---|---|"]
    for t in tools:
        rs = [r for r in rows if r["tool"] == t and "error" not in r]
        if not rs:
            out.append(f"| {t} | 0 | failed: {[r.get('error') for r in rows if r['tool'] == t][:1]} | | | | |")
            continue
        rx = statistics.median(r["rx_datagrams_per_s"] for r in rs)
        ev = [r["events_per_s"] for r in rs if r.get("events_per_s") is not None]
        lost = [r["lost"] for r in rs if r.get("lost") is not None]
        out.append(f"| {t} | {len(rs)} | {rx:,.0f} | {rx / base:.2f} | {statistics.median(r['net_rx_per_s'] for r in rs):,.0f} | "
                   f"{statistics.median(ev):,.0f} | {statistics.median(lost):,.0f} | {statistics.median(r['tool_cpu_s'] for r in rs):.2f} |" if ev else
                   f"| {t} | {len(rs)} | {rx:,.0f} | {rx / base:.2f} | {statistics.median(r['net_rx_per_s'] for r in rs):,.0f} | - | - | - |")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tool-s", type=int, default=6, help="seconds each tool traces (default 6)")
    p.add_argument("--tools", default="none,irqlab,irqlab-bpf,softirqs,hardirqs,perf")
    p.add_argument("--json", metavar="FILE", help="append one JSON line per run")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("bench_trace: needs root", file=sys.stderr)
        return 3
    tools = args.tools.split(",")
    for t in tools:
        cmd = tool_command(t, 1, Path("/tmp"))
        if cmd and shutil.which(cmd[0]) is None:
            print(f"bench_trace: {cmd[0]} not installed", file=sys.stderr)
            return 3
    rows = []
    for rnd in range(args.rounds):
        order = tools[rnd % len(tools):] + tools[: rnd % len(tools)]
        for t in order:
            row = one_run(t, args.tool_s + 4, args.tool_s)
            row["round"] = rnd
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
