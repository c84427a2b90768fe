"""The doctor's own cost: wall time and CPU (user+sys, children included) against its --duration,
with no other network namespace to walk and with N of them (each read from inside by a forked
child, as root).

Namespaces are made with `ip netns add` (each with a veth pair, so it has devices to read)
and removed at the end, whatever happens. Runs alternate (0 namespaces, N namespaces, ...) so
that machine noise falls on both; medians are reported, with the ratios to --duration.

usage: sudo .venv/bin/python bench/bench_doctor.py [--duration 3] [--namespaces 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid

IRQLAB = [sys.executable, "-m", "irqlab"]


def make_namespaces(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:5]
    names = []
    for i in range(n):
        name = f"irqlabb{tag}{i}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        names.append(name)
        subprocess.run(["ip", "-n", name, "link", "add", "a0", "type", "veth", "peer", "name", "b0"], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    return names


def remove_namespaces(names: list[str]) -> None:
    for name in names:
        subprocess.run(["ip", "netns", "del", name], check=False)


def one_run(duration: float, extra: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one doctor process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run([*IRQLAB, "doctor", "--duration", str(duration), "--json", *extra], capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1, 2):
        raise SystemExit(f"doctor failed ({proc.returncode}): {proc.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--namespaces", type=int, default=50)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--trace", choices=("auto", "off"), default="off",
                   help="the trace (BPF program load) is the same with or without namespaces; off by default")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the namespaces are entered with setns(2)")
    extra = ["--trace", args.trace]
    results: dict[str, list[tuple[float, float]]] = {"0 namespaces": [], f"{args.namespaces} namespaces": []}
    names: list[str] = []
    try:
        for _ in range(args.rounds):
            remove_namespaces(names)
            names = []
            results["0 namespaces"].append(one_run(args.duration, extra))
            names = make_namespaces(args.namespaces)
            results[f"{args.namespaces} namespaces"].append(one_run(args.duration, extra))
    finally:
        remove_namespaces(names)
    print(f"| irqlab doctor --duration {args.duration:g} --trace {args.trace} | wall median (min-max) | wall / duration | CPU median (min-max) | CPU / duration |")
    print("|---|---|---|---|---|")
    for label, runs in results.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        wm, cm = statistics.median(walls), statistics.median(cpus)
        print(f"| {label} | {wm:.2f} s ({min(walls):.2f}-{max(walls):.2f}) | {wm / args.duration:.2f} | "
              f"{cm:.2f} s ({min(cpus):.2f}-{max(cpus):.2f}) | {cm / args.duration:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
