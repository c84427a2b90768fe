"""Measure the share of CPU that ksoftirqd/N takes under load.sh UDP at several rates.

For each rate: read /proc/PID/schedstat of every ksoftirqd/N, /proc/softirqs (NET_RX),
/proc/net/softnet_stat (processed) and /proc/stat (softirq ticks) around the middle of a
load.sh run, and print per-CPU ksoftirqd %CPU, NET_RX/s, packets/s and softirq %CPU. The
numbers feed the model comparison in docs/VALIDATION.md. Needs root (load.sh makes netns).
Run: .venv/bin/python bench/live_ksoftirqd.py [--rates 50M,200M,0] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

from irqlab.sources.fs import Roots
from irqlab.sources.sampler import take_snapshot

LOAD = "/work/shared/tools/load.sh"


def measure(bitrate: str, seconds: int) -> dict:
    proc = subprocess.Popen(["bash", LOAD, "-q", "-m", "udp", "-l", "64", "-n", "2", "-b", bitrate, "-d", str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        a = take_snapshot(Roots())
        time.sleep(seconds - 4)
        b = take_snapshot(Roots())
    finally:
        proc.wait(timeout=seconds + 30)
    from irqlab.analysis.delta import compute_rates

    r = compute_rates(a, b)
    dt = (b.taken_ns - a.taken_ns) / 1e9
    out = {"bitrate": bitrate, "seconds": round(dt, 3), "cpus": {}}
    ks = r.ksoftirqd_pct()
    nrx = r.softirqs.vector_rate("NET_RX") if r.softirqs else None
    proc_rate = r.softnet.field("processed") if r.softnet else None
    sirq = r.cpu.field("softirq") if r.cpu else None
    for i, cpu in enumerate(b.interrupts.cpus):
        out["cpus"][cpu] = {
            "ksoftirqd_pct": round(ks.get(cpu, float("nan")), 2),
            "net_rx_per_s": round(float(nrx[i]), 0) if nrx is not None else None,
            "packets_per_s": round(float(proc_rate[i]), 0) if proc_rate is not None else None,
            "softirq_pct": round(float(sirq[i]), 2) if sirq is not None else None,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="20M,100M,0")
    ap.add_argument("--seconds", type=int, default=8)
    a = ap.parse_args()
    for rate in a.rates.split(","):
        print(json.dumps(measure(rate, a.seconds)), flush=True)


if __name__ == "__main__":
    main()
