"""Measure which context runs NET_RX (ksoftirqd, irq_exit, other) as a veth UDP load rises.

The load (docs/VALIDATION.md, "This machine"): load.sh -m udp -n 1 -l 8000 --pin cpu1 --rps 1
-b RATE. Every iperf3 runs on CPU1; the receiving veth's RPS mask sends all NET_RX work to
CPU0's backlog, so CPU0 runs NET_RX on behalf of CPU1 (enqueue_to_backlog() on a remote CPU,
an IPI, net_rx_action() there) besides one stress-ng CPU hog, which keeps CPU0 busy (and its
tick running) whatever else the shared machine runs. 8000-byte datagrams leave as 6 IP fragments,
sent back to back, so each send puts a burst into CPU0's backlog.

For each rate and repeat: start load.sh (bounded with -d), wait 2 s, run `irqlab trace --json`
(every vector) over the middle, and around it take irqlab snapshots (softnet processed and
time_squeeze per CPU, /proc/stat) and read the iperf3 client's and server's
/proc/PID/schedstat. One JSON line per run goes to bench/results-netrx-KIND.jsonl, with the
load average at the time (the machine is shared). Needs root.

Load kinds (--kind): the calibration load above, and held-out kinds that the model must predict
from the calibration's costs alone (src/irqlab/sim/validate_netrx.py):
  udp8000-rps          the load above (calibration)
  udp64-rps            the same with 64-byte datagrams: one packet each, nothing to reassemble
  udp8000-rps-budget2  the calibration load with load.sh --budget 2 (net.core.netdev_budget=2)
Each kind appends to bench/results-netrx-KIND.jsonl; `--fixture` reduces the files to
src/irqlab/sim/data/netrx_context.json, which `irqlab sim --validate` reads.

Run (root, under the live lock):
  flock /tmp/irqlab-live.lock .venv/bin/python bench/live_netrx_context.py --kind udp8000-rps --repeats 3
  .venv/bin/python bench/live_netrx_context.py --fixture
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from irqlab.analysis.delta import compute_rates
from irqlab.sources.fs import Roots
from irqlab.sources.sampler import SampleSpec, take_snapshot

LOAD = "/work/shared/tools/load.sh"
HERE = Path(__file__).resolve().parent
IRQLAB = str(Path(sys.executable).with_name("irqlab"))
BASE_ARGS = ["-m", "udp", "-n", "1", "--pin", "cpu1", "--rps", "1", "-H", "1", "--hog-cpus", "0"]
# kind -> (datagram bytes, extra load.sh arguments, default rates)
KINDS: dict[str, tuple[int, list[str], str]] = {
    "udp8000-rps": (8000, [], "500M,1G,2G,3G,0"),
    "udp64-rps": (64, [], "20M,50M,100M,0"),
    "udp8000-rps-budget2": (8000, ["--budget", "2"], "500M,1G,2G,0"),
}


def load_args(kind: str) -> list[str]:
    datagram, extra, _ = KINDS[kind]
    return [*BASE_ARGS, "-l", str(datagram), *extra]


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


def measure(kind: str, rate: str, seconds: int, trace_s: int) -> dict:
    """One load point, one repeat."""
    spec = SampleSpec(irqinfo=False, tasks=True)
    args = load_args(kind)
    load = subprocess.Popen(["bash", LOAD, "-q", *args, "-b", rate, "-d", str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(2)
        a, pa = take_snapshot(Roots(), spec), iperf3_schedstat()
        tr = subprocess.run([IRQLAB, "trace", "-d", str(trace_s), "--json"],
                            capture_output=True, text=True, timeout=trace_s + 60)
        b, pb = take_snapshot(Roots(), spec), iperf3_schedstat()
        loadavg = Path("/proc/loadavg").read_text().split()[:3]
        budget = int(Path("/proc/sys/net/core/netdev_budget").read_text())
        alive = load.poll() is None and any(role == "client" for role, _ in pb.values())  # the trace window ended inside the load (load.sh restores --budget on exit)
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
        "kind": kind, "rate": rate, "load_args": args, "datagram_bytes": KINDS[kind][0], "duration_s": seconds,
        "kernel": os.uname().release,
        "window_s": round(dt, 3), "trace_window_s": trace["window_s"], "trace_source": trace["source"],
        "trace_complete": trace["complete"], "loadavg": [float(x) for x in loadavg],
        "load_alive_after_trace": alive, "netdev_budget": budget,  # read while the load ran (load.sh --budget restores it on exit)
        "iperf3": {"sent": dg["sent"], "received": dg["received"],
                   "client_cpu_ns_per_s": cpu_ns_per_s(pa, pb, "client", dt),
                   "server_cpu_ns_per_s": cpu_ns_per_s(pa, pb, "server", dt)},
        "cpus": cpus,
        "taken": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


FIXTURE = HERE.parent / "src" / "irqlab" / "sim" / "data" / "netrx_context.json"
TICK_VECTORS = ("TIMER", "SCHED", "HRTIMER")  # RCU is modelled by its callbacks (sim/rcu.py)


def _med(values: list) -> float | None:
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def reduce_point(rows: list[dict], fragments: int) -> dict:
    """Medians (and min..max of the shares) of what one load point measured on CPU0 and of its iperf3s."""
    c0 = [r["cpus"]["0"] for r in rows]
    runs = [100 * (c.get("ksoftirqd_runs_share") or 0.0) for c in c0]
    time_ = [100 * (c.get("ksoftirqd_time_share") or 0.0) for c in c0]
    received = [r["iperf3"]["received"] / r["duration_s"] if r["iperf3"]["received"] else None for r in rows]
    out = {
        "rate": rows[0]["rate"], "repeats": len(rows),
        "packets_per_s": _med([c["packets_per_s"] for c in c0]),
        "squeeze_per_s": _med([c["squeeze_per_s"] for c in c0]),
        "netdev_budget": _med([r.get("netdev_budget") for r in rows]),
        "ns_per_packet": _med([c.get("ns_per_packet") for c in c0]),
        "net_rx_runs_per_s": _med([c.get("net_rx_runs_per_s") for c in c0]),
        "client_ns_per_datagram": _med([r["iperf3"]["client_cpu_ns_per_s"] / (c["packets_per_s"] / fragments)
                                        for r, c in zip(rows, c0) if r["iperf3"]["client_cpu_ns_per_s"] and c["packets_per_s"]]),
        "server_ns_per_datagram": _med([r["iperf3"]["server_cpu_ns_per_s"] / x for r, x in zip(rows, received)
                                        if r["iperf3"]["server_cpu_ns_per_s"] and x]),
        "loadavg": _med([r["loadavg"][0] for r in rows]),
        "ksoftirqd_runs_pct": _med(runs), "ksoftirqd_runs_pct_range": [min(runs), max(runs)],
        "ksoftirqd_time_pct": _med(time_), "ksoftirqd_time_pct_range": [min(time_), max(time_)],
        "tick": {},
    }
    for v in TICK_VECTORS:
        rates = [c["traced_vectors"].get(v, {}).get("runs", 0) / r["trace_window_s"] for r, c in zip(rows, c0)]
        avgs = [c["traced_vectors"].get(v, {}).get("avg_ns") for c in c0]
        out["tick"][v] = {"runs_per_s": _med(rates), "avg_ns": _med(avgs)}
    # RCU_SOFTIRQ time per second on CPU0 over its datagrams per second: the cost of one callback
    # when every reassembled datagram queues one (inet_frag_destroy() -> call_rcu()).
    out["rcu_ns_per_s"] = _med([c["traced_vectors"].get("RCU", {}).get("runs", 0)
                                * (c["traced_vectors"].get("RCU", {}).get("avg_ns") or 0) / r["trace_window_s"]
                                for r, c in zip(rows, c0)])
    return out


def write_fixture(here: Path, path: Path = FIXTURE) -> str:
    """Reduce every results-netrx-KIND.jsonl to one JSON fixture with its provenance."""
    kinds = {}
    for kind, (datagram, _, rates) in KINDS.items():
        f = here / f"results-netrx-{kind}.jsonl"
        if not f.exists():
            continue
        rows = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        dropped = sum(not r.get("load_alive_after_trace") for r in rows)
        rows = [r for r in rows if r.get("load_alive_after_trace")]  # a window that outlived the load is not this load
        if not rows:
            continue
        fragments = -(-(datagram + 8) // 1480)  # UDP header + payload over 1480-byte IP fragments (MTU 1500)
        by: dict[str, list[dict]] = {}
        for r in rows:
            by.setdefault(r["rate"], []).append(r)
        order = rates.split(",")
        points = [reduce_point(by[r], fragments) for r in sorted(by, key=lambda r: order.index(r) if r in order else 99)]
        kinds[kind] = {
            "datagram_bytes": datagram, "fragments": fragments, "load_args": rows[0]["load_args"],
            "command": f"load.sh -q {' '.join(rows[0]['load_args'])} -b RATE -d {rows[0]['duration_s']}",
            "kernel": sorted({r.get("kernel", "?") for r in rows}),
            "taken": [min(r["taken"] for r in rows), max(r["taken"] for r in rows)],
            "trace_source": sorted({r["trace_source"] for r in rows}), "runs_dropped_load_ended": dropped,
            "points": points,
        }
    doc = {
        "what": "CPU0 NET_RX by context under veth UDP loads with RPS to CPU0 (bench/live_netrx_context.py); "
                "medians over repeats; shares in percent",
        "machine": "2-vCPU VM, HZ 250", "kinds": kinds,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    counts = ", ".join(f"{k}: {len(v['points'])} points" for k, v in kinds.items())
    return f"wrote {path} ({counts})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=sorted(KINDS), default="udp8000-rps", help="the load kind (default: the calibration load)")
    ap.add_argument("--rates", help="iperf3 -b values, 0 = unlimited (default: the kind's)")
    ap.add_argument("--repeats", type=int, default=3)
    # 14 s: irqlab trace takes up to 4 s to start under the heaviest loads; a 9 s load ended
    # before some 4 s trace windows did (their runs had netdev_budget restored, iperf3 gone)
    ap.add_argument("--seconds", type=int, default=14, help="load.sh -d")
    ap.add_argument("--trace", type=int, default=4, help="irqlab trace -d")
    ap.add_argument("-o", "--output", help="default bench/results-netrx-KIND.jsonl")
    ap.add_argument("--fixture", action="store_true", help="no load: reduce the results files to the fixture and exit")
    a = ap.parse_args()
    if a.fixture:
        print(write_fixture(HERE))
        return
    out = a.output or str(HERE / f"results-netrx-{a.kind}.jsonl")
    with open(out, "a") as f:
        for rep in range(a.repeats):  # interleave the points so slow drift hits all of them
            for rate in (a.rates or KINDS[a.kind][2]).split(","):
                row = measure(a.kind, rate, a.seconds, a.trace) | {"repeat": rep}
                f.write(json.dumps(row) + "\n")
                f.flush()
                c0 = row["cpus"]["0"]
                print(f"{a.kind} rate {rate:>5} rep {rep}: CPU0 {c0['packets_per_s']:.0f} pkt/s, "
                      f"ksoftirqd {100 * (c0.get('ksoftirqd_runs_share') or 0):.2f} % runs "
                      f"{100 * (c0.get('ksoftirqd_time_share') or 0):.2f} % time, "
                      f"squeeze {c0['squeeze_per_s']:.0f}/s, load {row['loadavg'][0]}", flush=True)


if __name__ == "__main__":
    main()
