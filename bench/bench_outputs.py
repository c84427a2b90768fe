"""Whole processes side by side on the 1152-CPU capture: `irqlab diff` (text, JSON) vs one lsirq run.

    sudo .venv/bin/python bench/bench_outputs.py [-n 15] [--json] [--only diff]
    .venv/bin/python bench/bench_outputs.py --write-captures DIR    # DIR/a, DIR/b to time by hand

What a user waits for is the whole process: interpreter start-up, imports, reading and
parsing both captures, the rates, rendering and writing the output. So each command is
started as a process (posix_spawn, stdout to /dev/null) and timed from outside (wall clock
around the spawn, user+sys CPU from wait4), one after the other in turn, and the medians
and the per-round ratios to lsirq are reported.

The input: the pcp-qa 1152-CPU /proc/interrupts (../shared/fixtures, never copied into the
project) as capture A, and the same text with counters raised as capture B (every CPU's
LOC +250, 32 lpfc queues on 32 CPUs, one smartpqi vector storming on CPU 100), with that
machine's /proc/softirqs beside it (TIMER +250 on every CPU in B): what two captures a second
apart on that machine could look like. lsirq reads the same A text as
/proc/interrupts through a bind mount in a private mount namespace (`unshare -m`; the
host's /proc is not touched), so it parses the same 13 MB once where `irqlab diff` parses
two files of it.

irqlab runs from byte-compiled modules, as an installed irqlab does: Python gets a private
pycache directory (PYTHONPYCACHEPREFIX, in the temporary directory) and the first, uncounted
round compiles into it; the working tree is not written.
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("IRQLAB_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))
DEFAULT_FILE = SHARED / "public" / "pcp-qa" / "interrupts-1152cpu-x86_64.bz2"
INSIDE = "IRQLAB_BENCH_INSIDE_NAMESPACE"


def commands(a: Path, b: Path, lsirq: str) -> dict[str, list[str]]:
    """The processes compared, by name: argv lists, no shell."""
    # The `irqlab` script installed beside this Python, as a user runs it (else python -m irqlab).
    script = Path(sys.executable).with_name("irqlab")
    irqlab = [str(script)] if script.is_file() else [sys.executable, "-m", "irqlab"]
    return {
        "lsirq": [lsirq],
        "diff (text)": irqlab + ["diff", str(a), str(b)],
        "diff --json (schema 2)": irqlab + ["diff", str(a), str(b), "--json"],
        "top --replay A B --json (schema 2)": irqlab + ["top", "--replay", str(a), str(b), "--json"],
        "diff --json --json-schema 1": irqlab + ["diff", str(a), str(b), "--json", "--json-schema", "1"],
        # As diff loads it: one OpenBLAS thread (cli/diff.py sets the default before numpy loads).
        "python -c 'import numpy' (a floor)": [
            sys.executable, "-c", "import os; os.environ.setdefault('OPENBLAS_NUM_THREADS', '1'); import numpy"
        ],
        "python -c pass (interpreter start-up, a floor)": [sys.executable, "-c", "pass"],
        # What any numpy-based diff must do before its own modules, rates and rendering: the
        # two floors that show where the text goal (<= 1.0 x) stands (docs/PERFORMANCE.md).
        "numpy + reading A and B (a floor)": [sys.executable, "-c", _FLOOR_READ, str(a), str(b)],
        "numpy + reading and parsing A and B's interrupts (a floor)": [sys.executable, "-c", _FLOOR_PARSE, str(a), str(b)],
    }


# As diff does it: one OpenBLAS thread, no cyclic collector; every file of both captures read.
_FLOOR_READ = """\
import gc, os, sys
gc.disable()
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy
data = {}
for d in sys.argv[1:]:
    for f in sorted(os.listdir(d + "/proc")):
        data[d + "/proc/" + f] = open(d + "/proc/" + f, "rb").read()
"""
# ... and irqlab's /proc/interrupts parser (sources/interrupts.py) on both, nothing else of irqlab.
_FLOOR_PARSE = _FLOOR_READ + """\
from irqlab.sources.interrupts import parse_interrupts
for d in sys.argv[1:]:
    parse_interrupts(data[d + "/proc/interrupts"])
"""


# --- the captures ----------------------------------------------------------------------


def _raise_counts(text: str) -> str:
    """The text one second later: LOC and TIMER +250 everywhere, lpfc queues, one storming vector."""
    lines = text.splitlines(keepends=True)
    ncpu = len(lines[0].split())
    out = [lines[0]]
    for line in lines[1:]:
        label, colon, rest = line.partition(":")
        key = label.strip()
        bump = [0] * ncpu
        if key in ("LOC", "TIMER"):
            bump = [250] * ncpu
        elif key.isdigit() and 107 <= int(key) <= 138:  # lpfc:0..31, one queue per CPU
            q = int(key) - 107
            bump[2 * q] = 5_000 + 100 * q
        elif key == "63":
            bump[100] = 140_000
        width = 11 * ncpu
        fields = rest[:width].split()
        if not any(bump) or len(fields) != ncpu:
            out.append(line)
            continue
        counts = "".join(f" {int(v) + d:10d}" for v, d in zip(fields, bump))
        out.append(label + colon + counts + rest[width:])
    return "".join(out)


def write_captures(source: Path, tmp: Path) -> tuple[Path, Path, Path]:
    """Captures A and B (laid out as `irqlab snapshot -o` writes them) and the plain A text.

    Beside /proc/interrupts each holds the same machine's /proc/softirqs when it is there.
    """
    text = bz2.decompress(source.read_bytes()).decode() if source.suffix == ".bz2" else source.read_text()
    soft_file = source.parent / "softirqs-1152cpu-x86_64"
    soft = soft_file.read_text() if source == DEFAULT_FILE and soft_file.is_file() else None
    made = []
    for name, body, t_s in (("a", text, 1000), ("b", _raise_counts(text), 1001)):
        base = tmp / name
        (base / "proc").mkdir(parents=True)
        (base / "proc" / "interrupts").write_text(body)
        if soft is not None:
            (base / "proc" / "softirqs").write_text(soft if name == "a" else _raise_counts(soft))
        meta = {"irqlab_version": "bench", "format": 1, "monotonic_ns": t_s * 10**9, "wall_time": 0.0, "hostname": "pcp-qa-1152cpu"}
        (base / "irqlab-capture.json").write_text(json.dumps(meta))
        made.append(base)
    return made[0], made[1], made[0] / "proc" / "interrupts"


# --- timing ------------------------------------------------------------------------------


def spawn_timed(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall seconds around one process, its user+sys CPU seconds, its exit code."""
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "exit": os.waitstatus_to_exitcode(status)}


def output_size(argv: list[str], env: dict[str, str]) -> int:
    return len(subprocess.run(argv, env=env, capture_output=True, check=True).stdout)


def measure(cmds: dict[str, list[str]], n: int, env: dict[str, str]) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in cmds}
    for name, argv in cmds.items():  # warm-up: page cache, byte-compilation
        if spawn_timed(argv, env)["exit"] != 0:
            raise SystemExit(f"{name}: failed ({' '.join(argv)})")
    for _ in range(n):
        for name, argv in cmds.items():
            runs[name].append(spawn_timed(argv, env))
    return runs


def report(runs: dict[str, list[dict[str, float]]], sizes: dict[str, int], n: int) -> dict:
    base = runs["lsirq"]
    out: dict = {
        "date": time.strftime("%Y-%m-%d"), "kernel": platform.release(), "nproc": os.cpu_count(),
        "python": platform.python_version(), "rounds": n, "loadavg_1min_after": round(os.getloadavg()[0], 2),
        "commands": {},
    }
    for name, samples in runs.items():
        ratios = [s["wall"] / b["wall"] for s, b in zip(samples, base)]
        out["commands"][name] = {
            "median_wall_ms": round(statistics.median(s["wall"] for s in samples) * 1e3, 1),
            "median_cpu_ms": round(statistics.median(s["cpu"] for s in samples) * 1e3, 1),
            "median_ratio_wall": round(statistics.median(ratios), 3),
            "ratio_of_medians_wall": round(statistics.median(s["wall"] for s in samples) / statistics.median(b["wall"] for b in base), 3),
            "ratio_of_medians_cpu": round(statistics.median(s["cpu"] for s in samples) / statistics.median(b["cpu"] for b in base), 3),
            "stdout_bytes": sizes.get(name),
        }
    return out


def markdown(r: dict) -> str:
    rows = [
        f"{r['rounds']} rounds in turn; kernel {r['kernel']}, {r['nproc']} CPUs, Python {r['python']}, "
        f"load average {r['loadavg_1min_after']} (1 min, at the end)",
        "",
        "| process | median wall (ms) | median CPU (ms) | wall / lsirq (median of pairs) | CPU / lsirq | stdout |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, c in r["commands"].items():
        size = "" if c["stdout_bytes"] is None else f"{c['stdout_bytes'] / 1e6:.2f} MB"
        rows.append(f"| {name} | {c['median_wall_ms']} | {c['median_cpu_ms']} | {c['median_ratio_wall']} | "
                    f"{c['ratio_of_medians_cpu']} | {size} |")
    return "\n".join(rows)


def inside(args: argparse.Namespace) -> int:
    """In the private namespace: /proc/interrupts is capture A's text."""
    tmp = Path(args.tmp)
    a, b = tmp / "a", tmp / "b"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", INSIDE)}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    cmds = commands(a, b, args.lsirq)
    if args.only:
        cmds = {k: v for k, v in cmds.items() if k == "lsirq" or any(o in k for o in args.only)}
    rows = subprocess.run([args.lsirq, "--noheadings", "--output", "IRQ"], capture_output=True, text=True, check=True).stdout
    if len(rows.splitlines()) < 1000:
        raise SystemExit("lsirq does not see the 1152-CPU file: is the bind mount working?")
    sizes = {k: output_size(v, env) for k, v in cmds.items() if k != "lsirq" and "a floor" not in k}
    result = report(measure(cmds, args.n, env), sizes, args.n)
    print(json.dumps(result, indent=2) if args.json else markdown(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="rounds (default 15)")
    parser.add_argument("--file", default=str(DEFAULT_FILE), help="a /proc/interrupts text (.bz2 is fine)")
    parser.add_argument("--lsirq", default=shutil.which("lsirq") or "/usr/bin/lsirq")
    parser.add_argument("--only", action="append", help="only the irqlab commands whose name holds this (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--write-captures", metavar="DIR", help="only write captures DIR/a and DIR/b, to time by hand")
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if os.environ.get(INSIDE):
        return inside(args)
    if args.write_captures:
        print(*write_captures(Path(args.file), Path(args.write_captures)), sep="\n")
        return 0
    if os.geteuid() != 0:
        print("bench_outputs: needs root (unshare -m and mount --bind)", file=sys.stderr)
        return 2
    if not Path(args.file).exists():
        print(f"bench_outputs: {args.file} not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="irqlab-bench-") as tmp:
        _, _, text = write_captures(Path(args.file), Path(tmp))
        script = 'mount --bind "$1" /proc/interrupts && shift && exec "$@"'
        me = [sys.executable, str(Path(__file__).resolve()), *(argv if argv is not None else sys.argv[1:]), "--tmp", tmp]
        env = dict(os.environ, **{INSIDE: "1", "PYTHONPATH": str(REPO / "src")})
        return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(text), *me], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
