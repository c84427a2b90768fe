"""Measure which context runs NET_RX (ksoftirqd, irq_exit, other) as a veth UDP load rises.

The load (docs/VALIDATION.md, "This machine"): load.sh -m udp -n 1 -l 8000 --pin cpu1 --rps 1
-b RATE. Every iperf3 runs on CPU1; the receiving veth's RPS mask sends all NET_RX work to
CPU0's backlog, so CPU0 runs NET_RX on behalf of CPU1 (enqueue_to_backlog() on a remote CPU,
an IPI, net_rx_action() there) besides one stress-ng CPU hog, which keeps CPU0 busy (and its
tick running) whatever else the shared machine runs. 8000-byte datagrams leave as 6 IP fragments,
sent back to back, so each send puts a burst into CPU0's backlog.

For each rate and repeat: start load.sh (bounded with -d), wait 2 s, run `irqlab trace --json
--vector NET_RX` over the middle, and around it take irqlab snapshots (softnet processed and
time_squeeze per CPU, /proc/stat) and read the iperf3 client's and server's
/proc/PID/schedstat. One JSON line per run goes to bench/results-netrx-context.jsonl, with the
load average at the time (the machine is shared). Needs root.

Run: .venv/bin/python bench/live_netrx_context.py [--rates 500M,1G,2G,3G,0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from irqlab.analysis.delta import compute_rates
from irqlab.sources.fs import Roots
from irqlab.sources.sampler import SampleSpec, take_snapshot

LOAD = "/work/shared/tools/load.sh"
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results-netrx-context.jsonl"
IRQLAB = str(Path(sys.executable).with_name("irqlab"))
DATAGRAM = 8000
LOAD_ARGS = ["-m", "udp", "-n", "1", "-l", str(DATAGRAM), "--pin", "cpu1", "--rps", "1", "-H", "1", "--hog-cpus", "0"]


def iperf3_schedstat() -> dict[int, tuple[str, int]]:
    """pid -> (client|server, run time in ns from /proc/PID/schedstat field 1) of every iperf3."""
    out: dict[int, tuple[str, int]] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "iperf3":
                continue
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            ns = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        out[int(pid)] = ("client" if b"-c" in argv else "server", ns)
    return out


def cpu_ns_per_s(a: dict[int, tuple[str, int]], b: dict[int, tuple[str, int]], role: str, dt: float) -> float | None:
    """CPU time per second of the iperf3 processes of one role seen at both reads."""
    pids = [p for p in a if p in b and a[p][0] == role]
    return round(sum(b[p][1] - a[p][1] for p in pids) / dt) if pids else None


def datagrams(summary: str) -> dict[str, int | None]:
    """Sent and received datagrams from load.sh's iperf3 summary lines (Lost/Total)."""
    out: dict[str, int | None] = {"sent": None, "received": None}
    for line in summary.splitlines():
        m = re.search(r"(\d+)/(\d+) \(\S+%\)\s+(sender|receiver)$", line)
        if m:
            lost, total = int(m.group(1)), int(m.group(2))
            out["sent" if m.group(3) == "sender" else "received"] = total if m.group(3) == "sender" else total - lost
    return out


def vectors_by_cpu(trace: dict) -> dict[str, dict]:
    """Every softirq vector's runs and average duration per CPU (the tick-raised ones too)."""
    out: dict[str, dict] = {}
    for s in trace["softirqs"]:
        for cpu, row in s["per_cpu"].items():
            out.setdefault(cpu, {})[s["vector"]] = {"runs": row["count"], "avg_ns": row["avg_ns"]}
    return out


def contexts_by_cpu(trace: dict) -> dict[str, dict]:
    """NET_RX runs and time by context, per CPU, from `irqlab trace --json`."""
    out: dict[str, dict] = {}
    for s in trace["softirqs"]:
        if s["vector"] != "NET_RX":
            continue
        for cpu, row in s["per_cpu"].items():
            ctx = row["contexts"]
            runs = sum(v["runs"] for v in ctx.values())
            ns = sum(v["total_ns"] for v in ctx.values())
            out[cpu] = {
                "runs": runs, "total_ns": ns, "avg_ns": row["avg_ns"], "p99_ns": row["p99_ns"],
                "contexts": ctx,
                "ksoftirqd_runs_share": ctx["ksoftirqd"]["runs"] / runs if runs else None,
                "ksoftirqd_time_share": ctx["ksoftirqd"]["total_ns"] / ns if ns else None,
            }
    return out


def measure(rate: str, seconds: int, trace_s: int) -> dict:
    """One load point, one repeat."""
    spec = SampleSpec(irqinfo=False, tasks=True)
    load = subprocess.Popen(["bash", LOAD, "-q", *LOAD_ARGS, "-b", rate, "-d", str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(2)
        a, pa = take_snapshot(Roots(), spec), iperf3_schedstat()
        tr = subprocess.run([IRQLAB, "trace", "-d", str(trace_s), "--json"],
                            capture_output=True, text=True, timeout=trace_s + 60)
        b, pb = take_snapshot(Roots(), spec), iperf3_schedstat()
        loadavg = Path("/proc/loadavg").read_text().split()[:3]
    finally:
        summary, _ = load.communicate(timeout=seconds + 60)
    if tr.returncode != 0:
        raise SystemExit(f"irqlab trace failed: {tr.stderr.strip()}")
    trace = json.loads(tr.stdout)
    r = compute_rates(a, b)
    dt = (b.taken_ns - a.taken_ns) / 1e9
    ctx = contexts_by_cpu(trace)
    vec = vectors_by_cpu(trace)
    cpus: dict[str, dict] = {}
    for i, cpu in enumerate(r.softnet.cpus):
        c = str(cpu)
        processed = float(r.softnet.field("processed")[i])
        row = {
            "packets_per_s": round(processed, 1),
            "squeeze_per_s": round(float(r.softnet.field("time_squeeze")[i]), 2),
            "ksoftirqd_cpu_pct": round(r.ksoftirqd_pct().get(cpu, float("nan")), 3),
        }
        if r.softirqs is not None and cpu in r.softirqs.cpus:
            j = r.softirqs.cpus.index(cpu)
            row["softirqs_per_s"] = {v: round(float(r.softirqs.rate[k][j]), 1) for k, v in enumerate(r.softirqs.vectors)}
        if r.cpu is not None and cpu in r.cpu.cpus:
            j = r.cpu.cpus.index(cpu)
            row["idle_pct"] = round(float(r.cpu.field("idle")[j]), 2)
            row["softirq_pct"] = round(float(r.cpu.field("softirq")[j]), 2)
        row["traced_vectors"] = vec.get(c, {})
        if c in ctx:
            row.update(ctx[c])
            row["net_rx_runs_per_s"] = round(ctx[c]["runs"] / trace["window_s"], 1)
            # the per-packet NET_RX cost: traced NET_RX time over the packets softnet counted
            row["ns_per_packet"] = round(ctx[c]["total_ns"] / trace["window_s"] / processed, 1) if processed else None
        cpus[c] = row
    dg = datagrams(summary)
    return {
        "rate": rate, "load_args": LOAD_ARGS, "datagram_bytes": DATAGRAM, "duration_s": seconds,
        "window_s": round(dt, 3), "trace_window_s": trace["window_s"], "trace_source": trace["source"],
        "trace_complete": trace["complete"], "loadavg": [float(x) for x in loadavg],
        "netdev_budget": int(b.sysctls.get("netdev_budget", 0)) if getattr(b, "sysctls", None) else None,
        "iperf3": {"sent": dg["sent"], "received": dg["received"],
                   "client_cpu_ns_per_s": cpu_ns_per_s(pa, pb, "client", dt),
                   "server_cpu_ns_per_s": cpu_ns_per_s(pa, pb, "server", dt)},
        "cpus": cpus,
        "taken": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="500M,1G,2G,3G,0", help="iperf3 -b values, 0 = unlimited")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=9, help="load.sh -d")
    ap.add_argument("--trace", type=int, default=4, help="irqlab trace -d")
    ap.add_argument("-o", "--output", default=str(RESULTS))
    a = ap.parse_args()
    with open(a.output, "a") as f:
        for rep in range(a.repeats):  # interleave the points so slow drift hits all of them
            for rate in a.rates.split(","):
                row = measure(rate, a.seconds, a.trace) | {"repeat": rep}
                f.write(json.dumps(row) + "\n")
                f.flush()
                c0 = row["cpus"]["0"]
                print(f"rate {rate:>5} rep {rep}: CPU0 {c0['packets_per_s']:.0f} pkt/s, "
                      f"ksoftirqd {100 * (c0.get('ksoftirqd_runs_share') or 0):.2f} % runs "
                      f"{100 * (c0.get('ksoftirqd_time_share') or 0):.2f} % time, load {row['loadavg'][0]}", flush=True)


if __name__ == "__main__":
    main()
