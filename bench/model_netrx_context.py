"""Predict the ksoftirqd share of NET_RX with `irqlab sim` and compare it with the measurement.

Reads bench/results-netrx-context.jsonl (bench/live_netrx_context.py), calibrates one scenario
per load point from measured inputs only, runs it, and classifies the simulated trace with the
same code (analysis/trace_aggregate.py) that classified the live one. It lives in bench/ and not in
sim/validate.py because it needs a recorded measurement of this machine, and because it runs
the live side's trace analysis on the model's events, which sim/ may not import.

Inputs per load point (medians over the repeats):
- datagrams/s = CPU0 packets/s (softnet processed) / 6 fragments -> the sender's paced rate;
- NET_RX cost per packet = CPU0 NET_RX time (trace) / packets (softnet) -> rx_ns;
- the sender's cost per datagram = iperf3 client CPU time (schedstat) / datagrams, less
  6 x FRAGMENT_NS (an assumption: the xmit path per fragment, not measured);
- the receiver's cost per datagram = iperf3 server CPU time / datagrams it received;
- TIMER, RCU, SCHED, HRTIMER on CPU0: traced runs per second / HZ -> chance per tick, and
  their average duration -> their work;
- netdev_budget 300, dev_weight 64, HZ 250 (CONFIG_HZ_250 in /proc/config.gz), 6.18 rules.
Never the ksoftirqd share itself.

Run: .venv/bin/python bench/model_netrx_context.py [--plot docs/img/validation-this-machine.png]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from irqlab.analysis.trace_aggregate import aggregate_trace
from irqlab.model.vectors import SOFTIRQ_NR
from irqlab.sim.readout import event_batch
from irqlab.sim.machine import Machine
from irqlab.sim.scenario import parse_scenario

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results-netrx-context.jsonl"
HZ = 250
FRAGMENTS = 6  # 8000-byte datagrams over a 1500-byte MTU: 5 x 1480 + 608
FRAGMENT_NS = 1_000  # assumed cost of one fragment's dev_queue_xmit() -> veth -> backlog
RCVBUF = 26  # assumed: 212992-byte rmem_default over an 8 KiB datagram's truesize
RCU_GP_MS = 12.0  # not measured: 3 jiffies at HZ 250 (the model's default); see the sensitivity in docs/VALIDATION.md
TICK_VECTORS = ("TIMER", "SCHED", "HRTIMER")  # RCU is modelled by its callbacks (sim/rcu.py)
ORDER = {"500M": 0, "1G": 1, "2G": 2, "3G": 3, "0": 4}
# The criterion, fixed before comparing: see docs/VALIDATION.md.
MAX_GAP_PP = 2.0  # every point's predicted run share within 2 percentage points of the median
MIN_RANK_AGREEMENT = 0.8  # Spearman correlation of the predicted and measured shares across points


def load(path: Path) -> dict[str, list[dict]]:
    """Rows by load point (iperf3 -b value)."""
    by: dict[str, list[dict]] = defaultdict(list)
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            by[row["rate"]].append(row)
    return dict(sorted(by.items(), key=lambda kv: ORDER.get(kv[0], 99)))


def _med(values: list[float | None]) -> float | None:
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def measured(rows: list[dict]) -> dict:
    """Medians (and min..max) of what one load point measured on CPU0."""
    c0 = [r["cpus"]["0"] for r in rows]
    runs = [100 * c["ksoftirqd_runs_share"] for c in c0]
    time = [100 * c["ksoftirqd_time_share"] for c in c0]
    pkts = [c["packets_per_s"] for c in c0]
    received = [r["iperf3"]["received"] / r["duration_s"] for r in rows if r["iperf3"]["received"]]
    out = {
        "repeats": len(rows), "packets_per_s": _med(pkts), "squeeze_per_s": _med([c["squeeze_per_s"] for c in c0]),
        "ns_per_packet": _med([c["ns_per_packet"] for c in c0]),
        "runs_pct": _med(runs), "runs_pct_range": (min(runs), max(runs)),
        "time_pct": _med(time), "time_pct_range": (min(time), max(time)),
        "loadavg": _med([r["loadavg"][0] for r in rows]),
        "client_ns_per_datagram": _med([r["iperf3"]["client_cpu_ns_per_s"] / (c["packets_per_s"] / FRAGMENTS)
                                        for r, c in zip(rows, c0) if r["iperf3"]["client_cpu_ns_per_s"]]),
        "server_ns_per_datagram": _med([r["iperf3"]["server_cpu_ns_per_s"] / x for r, x in zip(rows, received)
                                        if r["iperf3"]["server_cpu_ns_per_s"] and x]),
        "tick": {},
    }
    for v in TICK_VECTORS:
        rates = [c["traced_vectors"].get(v, {}).get("runs", 0) / r["trace_window_s"] for r, c in zip(rows, c0) if "traced_vectors" in c]
        avgs = [c["traced_vectors"].get(v, {}).get("avg_ns") for c in c0 if "traced_vectors" in c]
        if rates and _med(rates):
            out["tick"][v] = {"chance": min(1.0, _med(rates) / HZ), "work_ns": int(_med(avgs) or 0)}
    # RCU: one call_rcu() per reassembled datagram (inet_frag_destroy()); the cost of a callback
    # is CPU0's traced RCU_SOFTIRQ time per second over its datagrams per second.
    rcu_ns = [c["traced_vectors"].get("RCU", {}).get("runs", 0) * (c["traced_vectors"].get("RCU", {}).get("avg_ns") or 0)
              / r["trace_window_s"] / (c["packets_per_s"] / FRAGMENTS)
              for r, c in zip(rows, c0) if "traced_vectors" in c and c["packets_per_s"]]
    out["rcu_callback_ns"] = int(_med(rcu_ns) or 500)
    return out


def scenario(point: dict, seed: int = 1, duration_s: float = 1.0) -> dict:
    """The TOML-shaped scenario of one load point, from its measured inputs."""
    dgram_per_s = point["packets_per_s"] / FRAGMENTS
    send_ns = max(500, int((point["client_ns_per_datagram"] or 10_000) - FRAGMENTS * FRAGMENT_NS))
    return {
        "machine": {"name": "veth-rps-this-machine", "cpus": 2, "hz": HZ, "kernel": "6.18", "duration_s": duration_s,
                    "warmup_s": min(0.1, duration_s / 4), "seed": seed, "trace": True,
                    "tick_raise": {v: {"chance": t["chance"], "work_ns": t["work_ns"]} for v, t in point["tick"].items()},
                    "rcu_callback_ns": point["rcu_callback_ns"], "rcu_gp_ms": RCU_GP_MS},
        "net": {"netdev_budget": 300, "dev_weight": 64},
        "task": [
            {"name": "iperf3-c", "cpu": 1, "kind": "sender", "work_ns": send_ns, "rate_pps": dgram_per_s,
             "fragments": FRAGMENTS, "fragment_ns": FRAGMENT_NS, "rx_ns": int(point["ns_per_packet"]),
             "rps_cpu": 0, "deliver": "iperf3-s"},
            {"name": "iperf3-s", "cpu": 1, "kind": "receiver", "work_ns": int(point["server_ns_per_datagram"] or 5_000),
             "rcvbuf": RCVBUF},
            {"name": "stress-ng-cpu", "cpu": 0, "kind": "hog"},
        ],
    }


def predict(point: dict, seed: int = 1, duration_s: float = 1.0) -> dict:
    """Run the model of one point; NET_RX on CPU0 by context, classified as the live trace is."""
    sc = parse_scenario(scenario(point, seed, duration_s))
    m = Machine(sc).run()
    batch = event_batch(m)
    start = sc.warmup_ns
    keep = batch.ts_ns >= start
    batch = type(batch)(**{c: getattr(batch, c)[keep] for c in ("ts_ns", "cpu", "kind", "pid", "arg0", "arg1", "arg2")},
                        irq_names=batch.irq_names, comms=batch.comms, symbols=batch.symbols, devices=batch.devices,
                        lost={}, start_ns=start, end_ns=batch.end_ns, source="sim")
    res = aggregate_trace(batch, cpus=(0,), vectors=(SOFTIRQ_NR["NET_RX"],))
    h = next(x for x in res.softirqs if x.name == "NET_RX")
    runs, time = h.context_share("ksoftirqd", (0,))
    st = m.softirq_state[0]
    truth = 100 * st.ksoftirqd_vectors[SOFTIRQ_NR["NET_RX"]] / max(st.counts[SOFTIRQ_NR["NET_RX"]], 1)
    return {"runs_pct": 100 * (runs or 0.0), "time_pct": 100 * (time or 0.0), "truth_runs_pct": truth,
            "handoffs_per_s": st.handoffs / (sc.duration_ns / 1e9)}


def _ranks(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    for k, i in enumerate(order):
        r[i] = float(k)
    return r


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = _ranks(a), _ranks(b)
    n = len(a)
    if n < 2:
        return float("nan")
    d2 = sum((x - y) ** 2 for x, y in zip(ra, rb))
    return 1 - 6 * d2 / (n * (n * n - 1))


def compare(path: Path = RESULTS, seeds: tuple[int, ...] = (1, 2, 3), duration_s: float = 1.0) -> dict:
    """The whole comparison: per point measured vs predicted, and the verdict."""
    points = []
    for rate, rows in load(path).items():
        meas = measured(rows)
        preds = [predict(meas, s, duration_s) for s in seeds]
        pred = {k: statistics.median(p[k] for p in preds) for k in preds[0]}
        points.append({"rate": rate, "measured": meas, "predicted": pred,
                       "predicted_runs_range": (min(p["runs_pct"] for p in preds), max(p["runs_pct"] for p in preds))})
    m_runs = [p["measured"]["runs_pct"] for p in points]
    p_runs = [p["predicted"]["runs_pct"] for p in points]
    gaps = [abs(a - b) for a, b in zip(m_runs, p_runs)]
    rho = spearman(m_runs, p_runs)
    ok = bool(points) and max(gaps) <= MAX_GAP_PP and rho >= MIN_RANK_AGREEMENT
    return {"points": points, "max_gap_pp": max(gaps) if gaps else None, "spearman": rho,
            "criterion": f"every point within {MAX_GAP_PP:g} pp (runs share) and Spearman >= {MIN_RANK_AGREEMENT:g}",
            "verdict": "PASS" if ok else "FAIL"}


def table(result: dict) -> str:
    """The markdown table of docs/VALIDATION.md."""
    out = ["| load.sh -b | CPU0 packets/s | NET_RX ns/packet | load avg | ksoftirqd runs % measured (min..max) | model | ksoftirqd time % measured (min..max) | model |",
           "|---|---|---|---|---|---|---|---|"]
    for p in result["points"]:
        m, q = p["measured"], p["predicted"]
        out.append(f"| {p['rate']} | {m['packets_per_s']:,.0f} | {m['ns_per_packet']:,.0f} | {m['loadavg']:.1f} | "
                   f"{m['runs_pct']:.2f} ({m['runs_pct_range'][0]:.2f}..{m['runs_pct_range'][1]:.2f}) | {q['runs_pct']:.2f} | "
                   f"{m['time_pct']:.2f} ({m['time_pct_range'][0]:.2f}..{m['time_pct_range'][1]:.2f}) | {q['time_pct']:.2f} |")
    return "\n".join(out)


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = result["points"]
    x = [p["measured"]["packets_per_s"] / 1000 for p in pts]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((axes[0], "runs_pct", "NET_RX runs in ksoftirqd (%)"), (axes[1], "time_pct", "NET_RX time in ksoftirqd (%)")):
        med = [p["measured"][key] for p in pts]
        lo = [p["measured"][key] - p["measured"][key + "_range"][0] for p in pts]
        hi = [p["measured"][key + "_range"][1] - p["measured"][key] for p in pts]
        ax.errorbar(x, med, yerr=[lo, hi], fmt="o-", capsize=3, label="measured (median, min..max)")
        ax.plot(x, [p["predicted"][key] for p in pts], "s--", label="model")
        for xi, p in zip(x, pts):
            ax.annotate(p["rate"], (xi, p["measured"][key]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel("CPU0 packets/s (thousands)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"veth UDP, RPS to CPU0: {result['verdict']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    global RCU_GP_MS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", default=str(RESULTS))
    ap.add_argument("--plot", metavar="PNG")
    ap.add_argument("--seconds", type=float, default=1.0, help="simulated window per run")
    ap.add_argument("--rcu-gp-ms", type=float, default=RCU_GP_MS, help="the assumed RCU grace period (sensitivity)")
    a = ap.parse_args()
    RCU_GP_MS = a.rcu_gp_ms
    result = compare(Path(a.results), duration_s=a.seconds)
    print(table(result))
    for p in result["points"]:
        q = p["predicted"]
        print(f"{p['rate']}: model handoffs {q['handoffs_per_s']:.0f}/s, ground-truth NET_RX in ksoftirqd {q['truth_runs_pct']:.2f} %")
    print(f"criterion: {result['criterion']}; max gap {result['max_gap_pp']:.2f} pp, Spearman {result['spearman']:.2f}: {result['verdict']}")
    if a.plot:
        plot(result, a.plot)


if __name__ == "__main__":
    main()
