"""irqlab's latency probe versus cyclictest (rt-tests): same CPUs, interval, priority, duration.

    sudo .venv/bin/python bench/bench_latency.py --reps 3 --duration 10 [--interval 1000] [--cpus 0,1]
    sudo .venv/bin/python bench/bench_latency.py --tools cli,kernel,cyclictest --conditions idle,udp,tcp-rps-hog \
        --reps 5 --duration 5

--tools picks what is compared: probe (irqlab.probe.runner.measure in-process, dma held), cli (the
command as a user runs it, default options: `irqlab latency -p P -i I -D S --json`), kernel (the
same with --kernel: kernel-side wake-up latency beside the user-visible one; BPF histograms),
kernel-tracefs (--kernel --kernel-backend tracefs: the trace window), bpfcost (the probe with
the --kernel BPF programs in-process, bpf stats on: run_time_ns / run_cnt of each program
per probe wake-up) and cyclictest (`cyclictest -m -p P -t -a -i I -D S -q`, its defaults;
its CPU per wake-up = CPU time / cycles). Two modes pair every user-space sample with the
kernel's record of the same wake-up (the --kernel BPF programs with their per-wake-up ring,
attached to the given threads): cyclictest-kernel (the same cyclictest plus -v -N, every sample
in ns, its timer threads timed: cyclictest's own return path) and probe-kernel (the probe the
same way); both list the wake-ups later than 500 us with their IRQ / THREAD parts.
Conditions: idle, load/udp (load.sh -m udp -l 16 -n 2), tcp-rps-hog (load.sh -m tcp --rps 1
-H 1), tcp-rps-hog1 (the same, hog pinned to CPU 1); load.sh runs under `chrt --other 0`.

Alternates the two tools (ABAB...), idle and under load.sh (UDP flood over a veth pair), and
prints per-run numbers and the medians as a Markdown table. cyclictest stores latencies as
truncated microseconds (-h histogram, avg of integer us), so irqlab's samples are compared on
that same scale (floor to us) as well as exactly. Both hold /dev/cpu_dma_latency at 0 and lock
memory (cyclictest -m; cyclictest sets the QoS request by default). Needs root.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
LOAD_SH = Path(os.environ.get("IRQLAB_LOAD_SH", REPO.parent / "shared" / "tools" / "load.sh"))

from irqlab.probe import dma  # noqa: E402
from irqlab.probe.runner import measure  # noqa: E402


def floor_stats(us: np.ndarray) -> dict:
    """avg and p99 on cyclictest's scale: integer us; p99 = upper edge of its 1 us bucket."""
    us = np.sort(us)
    at = {q: int(us[int(np.ceil(q * us.size)) - 1]) + 1 for q in (0.5, 0.99)}
    return {"min": int(us[0]), "p50": at[0.5], "avg": float(us.mean()), "p99": at[0.99], "max": int(us[-1]),
            "n": int(us.size)}


def run_irqlab(cpus: list[int], interval_us: int, prio: int, seconds: float) -> dict:
    with dma.hold_zero():
        run = measure(cpus, interval_us * 1000, int(seconds * 1e6 / interval_us), "fifo", prio)
    samples = np.concatenate([r.samples_ns for r in run.cpus])
    wall = (run.end_ns - run.start_ns) / 1e9
    out = floor_stats(samples // 1000)
    out["avg_exact"] = float(samples.mean() / 1000)
    out["cpu_pct"] = 100 * sum(r.cpu_time_ns for r in run.cpus) / 1e9 / wall / len(cpus)
    return out


def run_bpf_cost(cpus: list[int], interval_us: int, prio: int, seconds: float) -> dict:
    """The probe with --kernel's BPF programs attached and bpf stats counting (an fd: nothing to restore).

    run_time_ns / run_cnt come from each program's fdinfo (kernel/bpf/syscall.c
    bpf_prog_show_fdinfo, v6.18); the programs run on every hrtimer start and context switch of
    the machine, so their cost per probe wake-up includes the filtering of everyone else's.
    """
    from irqlab.bpf.syscall import enable_stats
    from irqlab.bpf.wakeup_hist import WakeupHist, settle

    stats_fd = enable_stats()
    try:
        with dma.hold_zero(), WakeupHist() as w:
            run = measure(cpus, interval_us * 1000, int(seconds * 1e6 / interval_us), "fifo", prio,
                          before_start=w.add_probes)
            settle()
            got, costs = w.read(), w.costs()
    finally:
        os.close(stats_fd)
    samples = np.concatenate([r.samples_ns for r in run.cpus])
    wall = (run.end_ns - run.start_ns) / 1e9
    out = floor_stats(samples // 1000)
    out["avg_exact"] = float(samples.mean() / 1000)
    out["cpu_pct"] = 100 * sum(r.cpu_time_ns for r in run.cpus) / 1e9 / wall / len(cpus)
    out["probe_us_per_wakeup"] = sum(r.cpu_time_ns for r in run.cpus) / 1e3 / samples.size
    timed = sum(got.counters["timed"].values())
    out["timed"] = timed
    out["bpf_ns_per_wakeup"] = sum(c.run_time_ns for c in costs) / max(timed, 1)
    out["bpf_runs_per_wakeup"] = sum(c.run_cnt for c in costs) / max(timed, 1)
    out["bpf_misses"] = sum(c.recursion_misses for c in costs)
    for c in costs:
        out[f"{c.name.removeprefix('irqlab_wk_')}_ns_per_run"] = c.run_time_ns / max(c.run_cnt, 1)
    return out


def run_cyclictest(cpus: list[int], interval_us: int, prio: int, seconds: float) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as js:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        proc = subprocess.run(["cyclictest", "-q", "-m", "-a", ",".join(map(str, cpus)), "-t", str(len(cpus)),
                               "-i", str(interval_us), "-p", str(prio), "-D", f"{seconds:g}", "-h", "20000",
                               f"--json={js.name}"], capture_output=True, text=True, check=True)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        raw = Path(js.name).read_text()
    hist = np.zeros(20001, dtype=np.int64)
    for line in proc.stdout.splitlines():
        if line and line[0].isdigit():
            cells = [int(x) for x in line.split()]
            hist[cells[0]] += sum(cells[1:])
    try:
        threads = list(json.loads(raw)["thread"].values())
    except json.JSONDecodeError as exc:
        # cyclictest 2.40 once wrote a --json file that does not parse (under the UDP flood:
        # "Expecting value: line 24 column 14"). Its stdout carries the same per-thread
        # figures (-h: "# Total/Min/Max Latencies"); the average is the histogram's, exact
        # for its integer microseconds while nothing overflowed it.
        keep = Path(tempfile.gettempdir()) / f"cyclictest-bad-{os.getpid()}-{int(t0)}.json"
        keep.write_text(raw)
        print(f"cyclictest --json did not parse ({exc}; kept in {keep}): figures from its stdout", file=sys.stderr)
        threads = _threads_from_stdout(proc.stdout, hist)
    n = sum(t["cycles"] for t in threads)
    overflow = n - int(hist.sum())
    cum = np.cumsum(hist)
    edge = {q: int(np.searchsorted(cum, int(np.ceil(q * n)))) + 1 if cum[-1] >= np.ceil(q * n) else None for q in (0.5, 0.99)}
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"min": min(t["min"] for t in threads), "p50": edge[0.5],
            "avg": sum(t["avg"] * t["cycles"] for t in threads) / n, "p99": edge[0.99], "overflow": overflow,
            "max": max(t["max"] for t in threads), "n": n, "cpu_pct": 100 * cpu / wall / len(cpus),
            "us_per_wakeup": cpu * 1e6 / n}


def _threads_from_stdout(text: str, hist: np.ndarray) -> list[dict[str, Any]]:
    """Per-thread cycles, min and max from cyclictest -h's summary lines; avg from the histogram."""
    rows = {}
    for line in text.splitlines():
        for key, name in (("# Total:", "cycles"), ("# Min Latencies:", "min"), ("# Max Latencies:", "max")):
            if line.startswith(key):
                rows[name] = [int(x) for x in line[len(key):].split()]
    total = int(sum(rows["cycles"]))
    avg = float((np.arange(hist.size) * hist).sum() / max(int(hist.sum()), 1))
    return [{"cycles": c, "min": lo, "max": hi, "avg": avg, "from": "stdout"} for c, lo, hi in
            zip(rows["cycles"], rows["min"], rows["max"])] if total else []


def steal_ticks() -> dict[int, int]:
    """Per-CPU steal time from /proc/stat (USER_HZ ticks): time the host ran something else."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3].isdigit():
            cells = line.split()
            out[int(cells[0][3:])] = int(cells[8])
    return out


def cyclictest_deadlines(values_ns: np.ndarray, interval_ns: int) -> np.ndarray:
    """Deadlines of cyclictest's samples relative to its first, replaying timerthread()'s skips.

    rt-tests src/cyclictest/cyclictest.c timerthread(): next += interval after each sample,
    then `while (tsgreater(&now, &next)) next += interval` with now = next + diff.
    """
    rel = np.zeros(values_ns.size, dtype=np.int64)
    nxt = 0
    for i, v in enumerate(values_ns.tolist()):
        rel[i] = nxt
        now = nxt + v
        nxt += interval_ns
        while now > nxt:
            nxt += interval_ns
    return rel


def kernel_pairs(deadlines: np.ndarray, user_ns: np.ndarray, each: np.ndarray) -> dict[str, np.ndarray]:
    """Each kernel record (deadline, expiry, switch-in) beside the user sample of the same deadline."""
    at = np.searchsorted(deadlines, each[:, 0])
    ok = at < deadlines.size
    ok[ok] = deadlines[at[ok]] == each[ok, 0]
    at, rec = at[ok], each[ok]
    return {"deadline": rec[:, 0], "user": user_ns[at], "irq": rec[:, 1] - rec[:, 0], "thread": rec[:, 2] - rec[:, 1],
            "kernel": rec[:, 2] - rec[:, 0], "index": at}


def pairs_summary(per_cpu: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], start_ns: int,
                  late_ns: int = 500_000) -> dict:
    """Return path (user - kernel) and the kernel parts over every paired wake-up; the late ones in full.

    per_cpu: cpu -> (deadlines, user latencies, kernel records), all ns.
    """
    got = {cpu: kernel_pairs(*v) for cpu, v in per_cpu.items()}
    cat = {k: np.concatenate([g[k] for g in got.values()]) for k in ("user", "irq", "thread", "kernel")}
    ret = cat["user"] - cat["kernel"]
    n = sum(v[1].size for v in per_cpu.values())
    q = lambda a, p: float(np.percentile(a, p)) / 1000  # noqa: E731
    out: dict[str, Any] = {"n": n, "paired": int(ret.size), "ret_min": float(ret.min()) / 1000, "ret_p50": q(ret, 50),
           "ret_avg": float(ret.mean()) / 1000, "ret_p99": q(ret, 99), "ret_max": float(ret.max()) / 1000,
           "ret_neg": int((ret < 0).sum()), "k_avg": float(cat["kernel"].mean()) / 1000,
           "k_irq": float(cat["irq"].mean()) / 1000, "k_thread": float(cat["thread"].mean()) / 1000,
           "k_user": float(cat["user"].mean()) / 1000,
           "user_avg_all": float(np.concatenate([v[1] for v in per_cpu.values()]).mean()) / 1000,
           "user_max": max(float(v[1].max()) for v in per_cpu.values()) / 1000}
    # The late wake-ups: which part made them late, when, and what the other CPUs saw at that time.
    late = []
    for cpu, (dl, user, _each) in per_cpu.items():
        g = got[cpu]
        for i in np.flatnonzero(user > late_ns):
            j = np.flatnonzero(g["index"] == i)
            row: dict[str, Any] = {"cpu": cpu, "t_s": round((int(dl[i]) - start_ns) / 1e9, 3), "user_us": round(int(user[i]) / 1000, 1)}
            if j.size:
                row.update(irq_us=round(int(g["irq"][j[0]]) / 1000, 1), thread_us=round(int(g["thread"][j[0]]) / 1000, 1),
                           ret_us=round(int(user[i] - g["kernel"][j[0]]) / 1000, 1))
            others = []
            for c2, (dl2, user2, _e) in per_cpu.items():
                if c2 != cpu and dl2.size:
                    k = int(np.argmin(np.abs(dl2 - dl[i])))
                    others.append(round(int(user2[k]) / 1000, 1))
            row["other_cpus_us"] = others
            late.append(row)
    out["late"] = sorted(late, key=lambda r: -r["user_us"])[:8]
    out["n_late"] = len(late)
    out["late_irq"] = sum(1 for r in late if r.get("irq_us", 0) > r["user_us"] / 2)
    out["late_thread"] = sum(1 for r in late if r.get("thread_us", 0) > r["user_us"] / 2)
    out["late_untimed"] = sum(1 for r in late if "irq_us" not in r)  # no kernel record of that wake-up
    return out


def run_probe_kernel(cpus: list[int], interval_us: int, prio: int, seconds: float) -> dict:
    """The probe (runner.measure, dma held) with the --kernel BPF programs and their per-wake-up ring.

    Every sample meets the kernel's record of the same deadline: return path and the parts of the
    late wake-ups.
    """
    from irqlab.analysis.wakeup import deadlines_ns
    from irqlab.bpf.wakeup_hist import WakeupHist, settle

    loops = int(seconds * 1e6 / interval_us)
    steal0 = steal_ticks()
    with dma.hold_zero(), WakeupHist(keep=loops + 16, probes=len(cpus)) as w:
        run = measure(cpus, interval_us * 1000, loops, "fifo", prio, before_start=w.add_probes)
        settle()
        got = w.read()
    steal1 = steal_ticks()
    per = {r.cpu: (deadlines_ns(r.samples_ns, run.start_ns, run.interval_ns), np.asarray(r.samples_ns, np.int64),
                   got.each[r.pid]) for r in run.cpus}
    samples = np.concatenate([r.samples_ns for r in run.cpus])
    out = floor_stats(samples // 1000)
    out["avg_exact"] = float(samples.mean() / 1000)
    out["steal_ms"] = sum(steal1[c] - steal0[c] for c in cpus) * 1000 // os.sysconf("SC_CLK_TCK")
    out["cpu_pct"] = 100 * sum(r.cpu_time_ns for r in run.cpus) / (run.end_ns - run.start_ns) / len(cpus)
    out.update(pairs_summary(per, run.start_ns))
    return out


def anchor(rel: np.ndarray, values_ns: np.ndarray, each: np.ndarray, tries: int = 300) -> int:
    """The absolute time of cyclictest's first deadline: the kernel's first record is one of its first deadlines.

    Deadlines one period apart match under any shift, so the shift is the one that leaves no
    kernel figure above the user figure of the same wake-up (a shift by one period puts a third
    of them above), the smallest median return path breaking ties.
    """
    def cost(c: int) -> tuple[int, float]:
        p = kernel_pairs(rel + (int(each[0, 0]) - int(rel[c])), values_ns, each)
        ret = p["user"] - p["kernel"]
        bad = int((ret < 0).sum()) + values_ns.size - ret.size  # kernel above user, or no pair
        return bad, float(np.median(np.abs(ret))) if ret.size else 0.0

    best = min(range(min(tries, rel.size)), key=cost)
    return int(each[0, 0]) - int(rel[best])


def _threads_of(pid: int, n: int, timeout_s: float = 2.0) -> dict[int, int]:
    """cpu -> tid of a process's n pinned threads (cyclictest's timer threads), polled until they exist."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        found = {}
        try:
            for tid in map(int, os.listdir(f"/proc/{pid}/task")):
                if tid != pid:
                    aff = os.sched_getaffinity(tid)
                    if len(aff) == 1:
                        found[next(iter(aff))] = tid
        except (FileNotFoundError, ProcessLookupError):
            pass
        if len(found) == n:
            return found
        time.sleep(0.0002)
    raise RuntimeError(f"cyclictest {pid}: its {n} pinned threads did not show up")


def run_cyclictest_kernel(cpus: list[int], interval_us: int, prio: int, seconds: float) -> dict:
    """cyclictest with its bench options plus -v -N (every sample, ns), its timer threads timed by the
    --kernel BPF programs: cyclictest's own return path (its sample minus the kernel's switch-in).

    Samples meet kernel records by deadline: cyclictest's deadlines are replayed from its samples
    (cyclictest_deadlines) and anchored on the kernel's exact softexpires (the best of the first
    candidates; the first wake-ups come before the threads are registered and are not timed).
    """
    from irqlab.bpf.wakeup_hist import WakeupHist, settle

    loops = int(seconds * 1e6 / interval_us)
    interval_ns = interval_us * 1000
    steal0 = steal_ticks()
    with tempfile.TemporaryFile("w+") as log, WakeupHist(keep=loops + 64, probes=len(cpus)) as w:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.Popen(["cyclictest", "-q", "-m", "-a", ",".join(map(str, cpus)), "-t", str(len(cpus)),
                                 "-i", str(interval_us), "-p", str(prio), "-D", f"{seconds:g}", "-h", "20000",
                                 "-v", "-N"], stdout=log, stderr=subprocess.DEVNULL, text=True)
        try:
            tids = _threads_of(proc.pid, len(cpus))
            w.add_probes(tids)
        finally:
            proc.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        settle()
        got = w.read()
        log.seek(0)
        text = log.read()
    steal1 = steal_ticks()
    vals: dict[int, list[tuple[int, int]]] = {}
    for line in text.splitlines():
        cells = line.split(":")
        if len(cells) == 3 and cells[0].strip().isdigit():
            vals.setdefault(int(cells[0]), []).append((int(cells[1]), int(cells[2])))
    per = {}
    for idx, rows in vals.items():
        rows.sort()
        v = np.array([x for _c, x in rows], dtype=np.int64)
        assert [c for c, _x in rows] == list(range(len(rows))), "cyclictest -v lost samples"
        cpu = cpus[idx % len(cpus)]
        each = got.each[tids[cpu]]
        rel = cyclictest_deadlines(v, interval_ns)
        per[cpu] = (rel + anchor(rel, v, each), v, each)
    start = min(int(p[0][0]) for p in per.values())
    allv = np.concatenate([p[1] for p in per.values()])
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = floor_stats(allv // 1000)
    out.update(avg_exact=float(allv.mean()) / 1000, cpu_pct=100 * cpu_s / seconds / len(cpus),
               steal_ms=sum(steal1[c] - steal0[c] for c in cpus) * 1000 // os.sysconf("SC_CLK_TCK"))
    out.update(pairs_summary(per, start))
    return out


IRQLAB = REPO / ".venv" / "bin" / "irqlab"
LOADS = {"load": ["-m", "udp", "-l", "16", "-n", "2"], "udp": ["-m", "udp", "-l", "16", "-n", "2"],
         "tcp-rps-hog": ["-m", "tcp", "--rps", "1", "-H", "1"],
         "tcp-rps-hog1": ["-m", "tcp", "--rps", "1", "-H", "1", "--hog-cpus", "1"]}


def run_cli(cpus: list[int], interval_us: int, prio: int, seconds: float, kernel: str = "") -> dict:
    """`irqlab latency` with its default options (dma held at 0), as a user runs it; --json to read it."""
    cmd = [str(IRQLAB), "latency", "-p", str(prio), "-i", str(interval_us), "-D", f"{seconds:g}",
           "-a", ",".join(map(str, cpus)), "--json"] + (["--kernel", "--kernel-backend", kernel] if kernel else [])
    doc = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    per = doc["latency"]["cpus"]
    hist: dict[int, int] = {}
    n = over = 0
    for c in per.values():
        h = c["histogram"]
        for k, v in h["linear"].items():
            hist[int(k) // 1000] = hist.get(int(k) // 1000, 0) + v
        n += h["count"]
        over += h["overflow"]
    floored = sum(us * v for us, v in hist.items()) / max(n - over, 1)  # cyclictest's scale (integer us)
    ov = doc["latency"]["overall"]
    out = {"min": ov["min_us"], "p50": ov["p50_us"], "avg": floored, "p99": ov["p99_us"], "max": ov["max_us"],
           "n": ov["samples"], "avg_exact": ov["avg_us"],
           "cpu_pct": sum(p["cpu_pct"] for p in doc["probe"]) / len(doc["probe"])}
    if kernel:
        kw = doc["kernel_wakeup"]
        ks = kw["cpus"].values()
        m = sum(k["matched"] for k in ks)
        wavg = lambda part: sum(k[part]["avg_us"] * k["matched"] for k in ks) / m  # noqa: E731
        out.update({"k_matched": m, "k_wakeups": sum(k["wakeups"] for k in ks), "k_complete": kw.get("trace_complete"),
                    "k_source": kw["source"], "k_above_user": sum(k["kernel_above_user"] or 0 for k in ks),
                    "k_irq": wavg("irq"),
                    "k_thread": wavg("thread"), "k_avg": wavg("kernel"), "k_user": wavg("user"),
                    "k_return": wavg("return"), "k_max": max(k["kernel"]["max_us"] for k in ks)})
    return out


def run_kernel(cpus: list[int], interval_us: int, prio: int, seconds: float) -> dict:
    return run_cli(cpus, interval_us, prio, seconds, kernel="bpf")


def run_kernel_tracefs(cpus: list[int], interval_us: int, prio: int, seconds: float) -> dict:
    return run_cli(cpus, interval_us, prio, seconds, kernel="tracefs")


def with_load(seconds: float, cond: str = "load"):
    """Start load.sh for this run at SCHED_OTHER (chrt --other 0); returns the process."""
    proc = subprocess.Popen(["chrt", "--other", "0", "bash", str(LOAD_SH), "-q", *LOADS[cond],
                             "-d", str(int(seconds) + 15)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(2.0)
    return proc


def stop(proc) -> None:
    proc.terminate()  # load.sh's EXIT trap removes its namespaces
    proc.wait(timeout=30)


def kernel_pairs_report(cond: str, results: dict[tuple[str, str], list[dict]]) -> None:
    """cyclictest's own return path (cyclictest-k) and the probe's (probe-k), and the kernel-figure check."""
    med = lambda rs, f: statistics.median(r[f] for r in rs)  # noqa: E731
    for tag in ("cyclictest-k", "probe-k"):
        rs = results.get((cond, tag))
        if not rs:
            continue
        print(f"{cond}: {tag}: return path (user - kernel, same wake-up) min/p50/avg/p99/max "
              + "/".join(f"{med(rs, f):.1f}" for f in ("ret_min", "ret_p50", "ret_avg", "ret_p99", "ret_max"))
              + f" us (medians of {len(rs)} runs; per run avg " + ", ".join(f"{r['ret_avg']:.1f}" for r in rs)
              + f"); kernel avg {med(rs, 'k_avg'):.1f} (irq {med(rs, 'k_irq'):.1f} + thread {med(rs, 'k_thread'):.1f}),"
              f" user avg {med(rs, 'avg_exact'):.1f}; paired {sum(r['paired'] for r in rs)} of {sum(r['n'] for r in rs)}"
              f" samples; kernel > user in {sum(r['ret_neg'] for r in rs)}; wake-ups > 500 us: "
              f"{sum(r['n_late'] for r in rs)} ({sum(r['late_irq'] for r in rs)} IRQ-late, "
              f"{sum(r['late_thread'] for r in rs)} switch-in-late, {sum(r['late_untimed'] for r in rs)} not timed); "
              f"max per run " + ", ".join(f"{r['user_max']:.0f}" for r in rs) + " us; steal ms per run "
              + ", ".join(str(r["steal_ms"]) for r in rs))
    ck, k = results.get((cond, "cyclictest-k")), results.get((cond, "irqlab-k"))
    if ck and k:
        ret = med(ck, "ret_avg")
        c = results.get((cond, "cyclictest"))
        if c:  # the plain run: integer us (truncated), so its exact average is about 0.5 us higher
            d = [x["k_avg"] - (y["avg"] + 0.5 - ret) for x, y in zip(k, c)]
            print(f"{cond}: irqlab --kernel avg - (cyclictest avg + 0.5 - its return path {ret:.1f}) per round: "
                  + ", ".join(f"{v:+.1f}" for v in d) + f" us (median {statistics.median(d):+.1f})")
        d = [x["k_avg"] - (y["avg_exact"] - y["ret_avg"]) for x, y in zip(k, ck)]
        print(f"{cond}: irqlab --kernel avg - (cyclictest -v -N avg - its return path) per round: "
              + ", ".join(f"{v:+.1f}" for v in d) + f" us (median {statistics.median(d):+.1f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--interval", type=int, default=1000)
    ap.add_argument("--priority", type=int, default=95)
    ap.add_argument("--cpus", default=",".join(map(str, sorted(os.sched_getaffinity(0)))))
    ap.add_argument("--conditions", default="idle,load", help="idle, load (= udp), udp, tcp-rps-hog")
    ap.add_argument("--tools", default="probe,cyclictest",
                    help="probe, cli, kernel, kernel-tracefs, bpfcost, probe-kernel, cyclictest, cyclictest-kernel "
                         "(rotated per rep)")
    a = ap.parse_args()
    fns = {"probe": ("irqlab", run_irqlab), "cli": ("irqlab", run_cli), "kernel": ("irqlab-k", run_kernel),
           "kernel-tracefs": ("irqlab-kt", run_kernel_tracefs), "bpfcost": ("irqlab-bpf", run_bpf_cost),
           "cyclictest": ("cyclictest", run_cyclictest), "probe-kernel": ("probe-k", run_probe_kernel),
           "cyclictest-kernel": ("cyclictest-k", run_cyclictest_kernel)}
    tools = [fns[t] for t in a.tools.split(",")]
    cpus = [int(c) for c in a.cpus.split(",")]
    results: dict[tuple[str, str], list[dict]] = {}
    for cond in a.conditions.split(","):
        for rep in range(a.reps):
            order = tools[rep % len(tools):] + tools[:rep % len(tools)] if len(tools) > 2 else \
                (tools if rep % 2 == 0 else tools[::-1])
            for name, fn in order:
                load = with_load(a.duration, cond) if cond != "idle" else None
                try:
                    r = fn(cpus, a.interval, a.priority, a.duration)
                finally:
                    if load is not None:
                        stop(load)
                results.setdefault((cond, name), []).append(r)
                print(f"{cond:5} rep {rep} {name:10} " + " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                                                for k, v in r.items()), flush=True)
    print()
    print("| condition | tool | runs | min us | p50 us | avg us | p99 us | max us | CPU % of one CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    keys = ("min", "p50", "avg", "p99", "max", "cpu_pct")
    for (cond, name), rs in results.items():
        med = {k: statistics.median(r[k] for r in rs if r.get(k) is not None) for k in keys}
        print(f"| {cond} | {name} | {len(rs)} | {med['min']:.0f} | {med['p50']:.0f} | {med['avg']:.1f} | {med['p99']:.0f} "
              f"| {med['max']:.0f} | {med['cpu_pct']:.2f} |")
    for cond in a.conditions.split(","):
        kernel_pairs_report(cond, results)
        if (cond, "cyclictest") not in results:
            continue
        c = results[(cond, "cyclictest")]
        b = results.get((cond, "irqlab-bpf"))
        if b:
            med = {f: statistics.median(x[f] for x in b) for f in
                   ("bpf_ns_per_wakeup", "bpf_runs_per_wakeup", "start_ns_per_run", "expire_ns_per_run",
                    "switch_ns_per_run", "probe_us_per_wakeup")}
            print(f"{cond}: BPF programs {med['bpf_ns_per_wakeup'] / 1000:.2f} us of CPU per probe wake-up "
                  f"({med['bpf_runs_per_wakeup']:.1f} runs: start {med['start_ns_per_run']:.0f}, expire "
                  f"{med['expire_ns_per_run']:.0f}, switch {med['switch_ns_per_run']:.0f} ns per run; "
                  f"{sum(x['bpf_misses'] for x in b)} recursion misses); the probe itself "
                  f"{med['probe_us_per_wakeup']:.1f} us; cyclictest {statistics.median(x['us_per_wakeup'] for x in c):.1f} us "
                  "per wake-up")
        for tag in ("irqlab-k", "irqlab-kt"):
            k = results.get((cond, tag))
            if not k:
                continue
            ret = statistics.median(x["k_return"] for x in k)
            kd = [x["k_avg"] - y["avg"] for x, y in zip(k, c)]
            ud = [x["avg"] - y["avg"] for x, y in zip(k, c)]
            ur = [x["p99"] / y["p99"] for x, y in zip(k, c) if y["p99"]]
            med = {f: statistics.median(x[f] for x in k) for f in ("k_avg", "k_irq", "k_thread", "k_user")}
            print(f"{cond}: {tag} --kernel: kernel avg {med['k_avg']:.1f} us (irq {med['k_irq']:.1f} + thread "
                  f"{med['k_thread']:.1f}), user {med['k_user']:.1f}, return path {ret:.1f}; kernel > user in "
                  + (f"{sum(x['k_above_user'] for x in k)} of" if k[0]["k_source"] == "tracefs" else "? (histograms) of")
                  + f" {sum(x['k_matched'] for x in k)} timed wake-ups "
                  f"({sum(x['k_wakeups'] for x in k)} in all); kernel avg - cyclictest avg per pair: "
                  + ", ".join(f"{d:+.1f}" for d in kd) + f" us (median {statistics.median(kd):+.1f})")
            print(f"{cond}: {tag} run, user-visible avg - cyclictest avg per pair: "
                  + ", ".join(f"{d:+.1f}" for d in ud) + f" us (median {statistics.median(ud):+.1f}); p99 ratio "
                  + ", ".join(f"{r:.2f}" for r in ur) + f" (median {statistics.median(ur):.2f})")
        if (cond, "irqlab") not in results:
            continue
        i = results[(cond, "irqlab")]
        d_avg = [x["avg"] - y["avg"] for x, y in zip(i, c)]
        r_p99 = [x["p99"] / y["p99"] for x, y in zip(i, c) if y["p99"]]
        d_p50 = [x["p50"] - y["p50"] for x, y in zip(i, c) if y["p50"]]
        print(f"{cond}: irqlab p50 - cyclictest p50, per pair: {', '.join(f'{d:+.0f}' for d in d_p50)} us "
              f"(median {statistics.median(d_p50):+.1f})")
        print(f"{cond}: irqlab avg - cyclictest avg, per pair: {', '.join(f'{d:+.1f}' for d in d_avg)} us "
              f"(median {statistics.median(d_avg):+.1f});\n       p99 ratio per pair: {', '.join(f'{r:.2f}' for r in r_p99)} "
              f"(median {statistics.median(r_p99):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
