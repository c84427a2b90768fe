"""The "this machine" experiments at full scale, with the live trace classifier beside the model's.

`irqlab sim --validate` runs them short (src/irqlab/sim/validate_netrx.py: calibrate on the
8000-byte RPS load, predict the held-out kinds). This script runs the documented form (3 seeds,
1 s simulated per point) and classifies every simulated trace twice: with validate_netrx's
pairing of softirq_entry/exit (what `irqlab sim --validate` uses, since sim/ may not import
analysis/) and with analysis/trace_aggregate.py, the code that classified the live trace; the
two must agree. It prints the markdown tables of docs/VALIDATION.md.

Run: .venv/bin/python bench/model_netrx_context.py [--seconds 1] [--plot DIR]
"""

from __future__ import annotations

import argparse
import statistics

from irqlab.analysis.trace_aggregate import aggregate_trace
from irqlab.model.vectors import SOFTIRQ_NR
from irqlab.sim import validate_netrx as vn
from irqlab.sim.machine import Machine
from irqlab.sim.readout import event_batch
from irqlab.sim.scenario import parse_scenario

COLUMNS = ("ts_ns", "cpu", "kind", "pid", "arg0", "arg1", "arg2")


def live_classifier(m: Machine, start_ns: int) -> tuple[float, float]:
    """ksoftirqd's run and time share of NET_RX on CPU0 as `irqlab trace` computes them."""
    batch = event_batch(m)
    keep = batch.ts_ns >= start_ns
    batch = type(batch)(**{c: getattr(batch, c)[keep] for c in COLUMNS},
                        irq_names=batch.irq_names, comms=batch.comms, symbols=batch.symbols, devices=batch.devices,
                        lost={}, start_ns=start_ns, end_ns=batch.end_ns, source="sim")
    res = aggregate_trace(batch, cpus=(0,), vectors=(SOFTIRQ_NR["NET_RX"],))
    h = next(x for x in res.softirqs if x.name == "NET_RX")
    runs, time_ = h.context_share("ksoftirqd", (0,))
    return 100 * (runs or 0.0), 100 * (time_ or 0.0)


def point(kind: dict, p: dict, costs: vn.Costs, seeds: tuple[int, ...], seconds: float) -> dict:
    """Medians over seeds of both classifiers' shares."""
    got = []
    for s in seeds:
        sc = parse_scenario(vn.scenario(kind, p, costs, s, seconds), "bench")
        m = Machine(sc).run()
        r, t, _ = vn.ksoftirqd_shares(m, 0, sc.warmup_ns)
        lr, lt = live_classifier(m, sc.warmup_ns)
        got.append((r, t, lr, lt))
    return {k: statistics.median(g[i] for g in got) for i, k in enumerate(("runs", "time", "live_runs", "live_time"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="simulated window per run")
    ap.add_argument("--seeds", default="1,2,3")
    a = ap.parse_args()
    data = vn.load_data()
    costs = vn.calibrate(data)
    seeds = tuple(int(s) for s in a.seeds.split(","))
    print(f"calibration ({vn.CALIBRATION}): {costs}")
    for name in (vn.CALIBRATION, *vn.HELD_OUT):
        kind = data["kinds"][name]
        print(f"\n{name}: {kind['command']} ({', '.join(kind['taken'])}, {', '.join(kind['kernel'])})\n")
        print("| load.sh -b | CPU0 packets/s | squeeze/s | ksoftirqd runs % measured (min..max) | model | "
              "ksoftirqd time % measured (min..max) | model | trace_aggregate runs / time % |")
        print("|---|---|---|---|---|---|---|---|")
        mr, pr, mt, pt = [], [], [], []
        for p in kind["points"]:
            q = point(kind, p, costs, seeds, a.seconds)
            rr, tr = p["ksoftirqd_runs_pct_range"], p["ksoftirqd_time_pct_range"]
            print(f"| {p['rate']} | {p['packets_per_s']:,.0f} | {p['squeeze_per_s']:,.0f} | "
                  f"{p['ksoftirqd_runs_pct']:.2f} ({rr[0]:.2f}..{rr[1]:.2f}) | {q['runs']:.2f} | "
                  f"{p['ksoftirqd_time_pct']:.2f} ({tr[0]:.2f}..{tr[1]:.2f}) | {q['time']:.2f} | "
                  f"{q['live_runs']:.2f} / {q['live_time']:.2f} |")
            mr.append(p["ksoftirqd_runs_pct"])
            pr.append(q["runs"])
            mt.append(p["ksoftirqd_time_pct"])
            pt.append(q["time"])
        labels = [p["rate"] for p in kind["points"]]
        vr, vt = vn.judge(mr, pr, labels), vn.judge(mt, pt, labels)
        print(f"\nruns: {'PASS' if vr.passed else 'FAIL'} (worst {vr.worst_point}, rho {vr.rho}); "
              f"time: {'PASS' if vt.passed else 'FAIL'} (worst {vt.worst_point}, rho {vt.rho})")


if __name__ == "__main__":
    main()
