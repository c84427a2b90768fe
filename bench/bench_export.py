"""Side by side: `irqlab export` vs prometheus-node-exporter, scraping a 1152-CPU capture.

    .venv/bin/python bench/bench_export.py [-n 15] [--json]

A temporary directory laid out like /proc holds the public 1152-CPU captures
(../shared/fixtures/public/pcp-qa/interrupts-1152cpu-x86_64.bz2 and softirqs-1152cpu-x86_64).
Each exporter runs as a server reading it (--procfs DIR / --path.procfs=DIR):

  node_exporter   --collector.disable-defaults --collector.interrupts  (Debian's 1.5.0 has no
                  softirqs collector; its softirq numbers come from /proc/stat, which the capture
                  lacks, so it reads one file where irqlab reads two)
  irqlab          default: top 20 IRQs + other, softirqs per vector (what a fleet should run)
  irqlab-per-cpu  --per-cpu: the top 20 IRQs and every softirq vector per CPU
  irqlab-all      --per-cpu --top-k 100000: every IRQ row per CPU, the same cardinality as
                  node_exporter's interrupts collector (one series per IRQ row and CPU)

For each scrape: wall time of one HTTP GET of /metrics, read to the end, and the CPU time the
server process spent (utime + stime from /proc/PID/stat, in clock ticks, so summed over all
scrapes and divided). The tools alternate scrape by scrape, so that load from anything else on
the machine hits all of them alike. Medians are reported; ratios are irqlab / node_exporter.
"""

from __future__ import annotations

import argparse
import bz2
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PCP = REPO.parent / "shared" / "fixtures" / "public" / "pcp-qa"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_proc(tmp: Path) -> Path:
    proc = tmp / "proc"
    proc.mkdir()
    (proc / "interrupts").write_bytes(bz2.decompress((PCP / "interrupts-1152cpu-x86_64.bz2").read_bytes()))
    shutil.copy(PCP / "softirqs-1152cpu-x86_64", proc / "softirqs")
    (tmp / "sys").mkdir()
    return proc


def servers(proc: Path) -> dict[str, list[str]]:
    irqlab = [sys.executable, "-m", "irqlab", "export", "--procfs", str(proc), "--sysfs", str(proc.parent / "sys"), "--no-tasks"]
    return {
        "node_exporter": [NODE_EXPORTER, f"--path.procfs={proc}", f"--path.sysfs={proc.parent / 'sys'}",
                          "--collector.disable-defaults", "--collector.interrupts", "--web.listen-address=127.0.0.1:{port}"],
        "irqlab": irqlab + ["--listen", "127.0.0.1:{port}"],
        "irqlab-per-cpu": irqlab + ["--per-cpu", "--listen", "127.0.0.1:{port}"],
        "irqlab-all": irqlab + ["--per-cpu", "--top-k", "100000", "--listen", "127.0.0.1:{port}"],
    }


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def scrape(port: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1800) as r:
        body = r.read()
    return time.perf_counter() - t0, len(body)


def wait_up(port: int, proc: subprocess.Popen) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.args}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server did not come up: {proc.args}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=3, help="scrapes per tool (default 3: node_exporter needs minutes per scrape here)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not os.access(NODE_EXPORTER, os.X_OK):
        raise SystemExit("apt-get install prometheus-node-exporter")
    with tempfile.TemporaryDirectory() as tmp:
        proc_dir = build_proc(Path(tmp))
        running: dict[str, tuple[subprocess.Popen, int]] = {}
        try:
            for name, argv in servers(proc_dir).items():
                port = free_port()
                p = subprocess.Popen([a.replace("{port}", str(port)) for a in argv], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                running[name] = (p, port)
                wait_up(port, p)
                if name.startswith("irqlab"):
                    scrape(port)  # warm-up: Python pays its imports on the first scrape
            wall: dict[str, list[float]] = {k: [] for k in running}
            size: dict[str, int] = {}
            cpu0 = {k: cpu_ticks(p.pid) for k, (p, _) in running.items()}
            for _ in range(args.n):
                for name, (_p, port) in running.items():
                    dt, n = scrape(port)
                    wall[name].append(dt)
                    size[name] = n
            hz = os.sysconf("SC_CLK_TCK")
            cpu = {k: (cpu_ticks(p.pid) - cpu0[k]) / hz / args.n for k, (p, _) in running.items()}
        finally:
            for p, _ in running.values():
                p.terminate()
                p.wait(timeout=10)
    med = {k: statistics.median(v) for k, v in wall.items()}
    result = {
        "scrapes": args.n,
        "cpus": 1152,
        "wall_median_s": med,
        "cpu_per_scrape_s": cpu,
        "body_bytes": size,
        "ratio_wall_vs_node_exporter": {k: med[k] / med["node_exporter"] for k in med},
        "ratio_cpu_vs_node_exporter": {k: cpu[k] / cpu["node_exporter"] for k in cpu if cpu["node_exporter"]},
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'tool':<16}{'wall median ms':>16}{'CPU ms/scrape':>15}{'body kB':>10}{'wall ratio':>12}{'CPU ratio':>11}")
        for k in med:
            print(f"{k:<16}{med[k] * 1e3:>16.1f}{cpu[k] * 1e3:>15.1f}{size[k] / 1024:>10.0f}"
                  f"{result['ratio_wall_vs_node_exporter'][k]:>12.4f}{result['ratio_cpu_vs_node_exporter'].get(k, float('nan')):>11.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
