"""Side by side: lsirq vs irqlab on one /proc/interrupts file (by default the 1152-CPU capture).

    sudo .venv/bin/python bench/bench_interrupts.py [-n 15] [--file F] [--json]

(a) lsirq (util-linux) reads the file bind-mounted over /proc/interrupts in a private mount
    namespace (`unshare -m`); a helper inside the namespace times each lsirq run, one at a time.
(b) irqlab's per-sample work: parse the file's text twice (t0 and t1) and compute the rates
    (irqlab.analysis.delta.interrupt_rates, or a minimal modular delta when it is absent).
    "steady" is what a sampler pays every interval (metadata of unchanged rows is memoized);
    "cold" clears the memo first, as a one-shot run would. Reading the file
    (irqlab.sources.fs.read_bytes) is timed on its own and reported beside it, and
    "with its reads" times what a sampler really pays per interval in one piece: read and parse
    t0, read and parse t1, the rates (each read gets a fresh 13 MB buffer, as in the sampler).

The runs alternate (lsirq, irqlab steady, irqlab cold, read) so that load from anything else on
the machine hits all of them alike. Medians are reported; ratios are irqlab / lsirq.
"""

from __future__ import annotations

import argparse
import bz2
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from irqlab.sources import interrupts as irq_source
from irqlab.sources.fs import read_bytes

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FILE = REPO.parent / "shared" / "fixtures" / "public" / "pcp-qa" / "interrupts-1152cpu-x86_64.bz2"

# Runs inside the private mount namespace: one lsirq per "run" line, wall and CPU time back.
HELPER = r"""
import os, sys, time
lsirq = sys.argv[1]
for cmd in sys.stdin:
    t0 = time.perf_counter()
    pid = os.posix_spawn(lsirq, [lsirq], dict(os.environ),
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    print(wall, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status), flush=True)
"""

Sample = dict[str, float]


def rates_function() -> tuple[str, Callable]:
    """interrupt_rates if another part of irqlab provides it, else a minimal modular delta."""
    try:
        from irqlab.analysis.delta import interrupt_rates
    except ImportError:

        def interrupt_rates(a, b, dt_ns):  # type: ignore[no-redef]
            return np.mod(b.counts - a.counts, 1 << 32) / (dt_ns / 1e9)

        return "inline modular delta", interrupt_rates
    return "irqlab.analysis.delta.interrupt_rates", interrupt_rates


class Lsirq:
    """A helper process in a private mount namespace where FILE is /proc/interrupts."""

    def __init__(self, file: Path, lsirq: str) -> None:
        script = 'mount --bind "$1" /proc/interrupts && exec "$2" -c "$3" "$4"'
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
             str(file), sys.executable, HELPER, lsirq],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def run(self) -> Sample:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().split()
        if len(reply) != 3 or reply[2] != "0":
            raise SystemExit(f"lsirq in the namespace failed: {reply or 'no reply (mount failed?)'}")
        return {"wall": float(reply[0]), "cpu": float(reply[1])}

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def lsirq_reads_the_file(file: Path, lsirq: str, expect_rows: int) -> None:
    """Check once that lsirq in the namespace really sees FILE (its row count)."""
    script = 'mount --bind "$1" /proc/interrupts && "$2" --noheadings --output IRQ'
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(file), lsirq],
                         capture_output=True, text=True, check=True).stdout
    rows = len(out.splitlines())
    if abs(rows - expect_rows) > 2:  # lsirq may leave out rows it cannot name (ERR, MIS)
        raise SystemExit(f"lsirq saw {rows} rows, the file has {expect_rows}: is the bind mount working?")


def irqlab_sample(data: bytes, path: str, rates: Callable, cold: bool) -> Sample:
    """Seconds of one sample (parse t0, parse t1, rates): wall in total and per part, CPU."""
    if cold:
        irq_source._fast_line.cache_clear()
    c0 = time.process_time()
    w0 = time.perf_counter()
    a = irq_source.parse_interrupts(data, path)
    b = irq_source.parse_interrupts(data, path)
    w2 = time.perf_counter()
    rates(a, b, 1_000_000_000)
    w3 = time.perf_counter()
    return {"wall": w3 - w0, "cpu": time.process_time() - c0, "parse": (w2 - w0) / 2, "rates": w3 - w2}


def sample_with_reads(file: Path, rates: Callable) -> Sample:
    """Seconds of one sample as a sampler takes it: read + parse t0, read + parse t1, rates."""
    c0 = time.process_time()
    w0 = time.perf_counter()
    a = irq_source.parse_interrupts(read_bytes(file), str(file))
    b = irq_source.parse_interrupts(read_bytes(file), str(file))
    rates(a, b, 1_000_000_000)
    return {"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0}


def read_sample(file: Path) -> Sample:
    """Seconds of one fs.read_bytes of the file."""
    c0, w0 = time.process_time(), time.perf_counter()
    read_bytes(file)
    return {"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0}


def run(args: argparse.Namespace) -> dict:
    source = Path(args.file)
    with tempfile.TemporaryDirectory(prefix="irqlab-bench-") as tmp:
        file = Path(tmp) / "interrupts"
        file.write_bytes(bz2.decompress(source.read_bytes()) if source.suffix == ".bz2" else source.read_bytes())
        data = read_bytes(file)
        probe = irq_source.parse_interrupts(data, str(file))
        rates_name, rates = rates_function()
        lsirq_reads_the_file(file, args.lsirq, len(probe.lines))
        samples: dict[str, list[Sample]] = {"lsirq": [], "irqlab": [], "irqlab_cold": [], "read": [], "irqlab_reads": []}
        helper = Lsirq(file, args.lsirq)
        try:
            helper.run()  # warm-up: page cache, dynamic loader, numpy
            irqlab_sample(data, str(file), rates, cold=False)
            sample_with_reads(file, rates)
            for _ in range(args.n):
                samples["lsirq"].append(helper.run())
                samples["irqlab"].append(irqlab_sample(data, str(file), rates, cold=False))
                samples["irqlab_cold"].append(irqlab_sample(data, str(file), rates, cold=True))
                samples["read"].append(read_sample(file))
                samples["irqlab_reads"].append(sample_with_reads(file, rates))
        finally:
            helper.close()
    return report(source, probe, rates_name, samples, args.n)


def median_ms(samples: list[Sample], key: str) -> float:
    return round(statistics.median(s[key] for s in samples) * 1e3, 1)


def report(source: Path, probe, rates_name: str, samples: dict[str, list[Sample]], n: int) -> dict:
    wall = {k: median_ms(v, "wall") for k, v in samples.items()}
    cpu = {k: median_ms(v, "cpu") for k, v in samples.items()}
    return {
        "file": str(source),
        "cpus": len(probe.cpus),
        "rows": len(probe.lines),
        "numbers": int(probe.counts.size),
        "repetitions": n,
        "rates": rates_name,
        "date": time.strftime("%Y-%m-%d"),
        "kernel": platform.release(),
        "nproc": os.cpu_count(),
        "loadavg_1min_after": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "median_wall_ms": wall,
        "median_cpu_ms": cpu,
        "median_parse_ms": {k: median_ms(samples[k], "parse") for k in ("irqlab", "irqlab_cold")},
        "median_rates_ms": median_ms(samples["irqlab"], "rates"),
        "ratio_wall": round(wall["irqlab"] / wall["lsirq"], 3),
        "ratio_wall_cold": round(wall["irqlab_cold"] / wall["lsirq"], 3),
        "ratio_wall_with_reads": round((wall["irqlab"] + 2 * wall["read"]) / wall["lsirq"], 3),
        "ratio_wall_sample_with_reads": round(wall["irqlab_reads"] / wall["lsirq"], 3),
        "median_ratio_of_pairs_sample_with_reads": round(statistics.median(
            s["wall"] / b["wall"] for s, b in zip(samples["irqlab_reads"], samples["lsirq"])), 3),
        "ratio_cpu": round(cpu["irqlab"] / cpu["lsirq"], 3),
        "samples_wall_ms": {k: [round(s["wall"] * 1e3, 2) for s in v] for k, v in samples.items()},
    }


def markdown(r: dict) -> str:
    w, c, p = r["median_wall_ms"], r["median_cpu_ms"], r["median_parse_ms"]
    return "\n".join([
        f"{r['cpus']} CPUs, {r['rows']} rows, {r['numbers']:,} counts; {r['repetitions']} alternated runs; "
        f"rates: {r['rates']}; kernel {r['kernel']}, {r['nproc']} CPUs, load average {r['loadavg_1min_after']} "
        f"(1 min, at the end), Python {r['python']}, numpy {r['numpy']}",
        "",
        "| what | median wall (ms) | median CPU (ms) |",
        "|---|---:|---:|",
        f"| lsirq (util-linux), one run | {w['lsirq']} | {c['lsirq']} |",
        f"| irqlab per sample: parse t0 + parse t1 + rates (steady) | {w['irqlab']} | {c['irqlab']} |",
        f"| of which: one parse / the rates | {p['irqlab']} / {r['median_rates_ms']} | |",
        f"| irqlab per sample, metadata memo cleared (cold) | {w['irqlab_cold']} | {c['irqlab_cold']} |",
        f"| of which: one cold parse | {p['irqlab_cold']} | |",
        f"| one fs.read_bytes of the file (outside the sample) | {w['read']} | {c['read']} |",
        f"| irqlab per sample with its reads: read + parse t0, read + parse t1, rates | {w['irqlab_reads']} | {c['irqlab_reads']} |",
        "",
        f"ratio irqlab / lsirq, wall: **{r['ratio_wall']}** steady, {r['ratio_wall_cold']} cold, "
        f"{r['ratio_wall_with_reads']} steady plus two reads timed apart; CPU, steady: {r['ratio_cpu']}",
        f"sample with its reads: **{r['ratio_wall_sample_with_reads']}** (ratio of medians), "
        f"{r['median_ratio_of_pairs_sample_with_reads']} (median of the per-round ratios)",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="alternated repetitions (default 15)")
    parser.add_argument("--file", default=str(DEFAULT_FILE), help="a /proc/interrupts text (.bz2 is fine)")
    parser.add_argument("--lsirq", default=shutil.which("lsirq") or "/usr/bin/lsirq")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_interrupts: needs root (unshare -m and mount --bind)", file=sys.stderr)
        return 2
    if not Path(args.file).exists():
        print(f"bench_interrupts: {args.file} not found", file=sys.stderr)
        return 2
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
