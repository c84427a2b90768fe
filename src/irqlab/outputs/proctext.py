"""Print a Snapshot the way the kernel prints its files, for simulated capture directories.

The simulator (sim/readout.py) produces Snapshots; cli/sim.py writes them as a capture through
capture() here, so that irqlab's own parsers read a simulated machine back like a live one.
"""

from __future__ import annotations

from typing import TypeVar

from irqlab.cpulist import format_cpulist
from irqlab.model.snapshot import Snapshot, TaskInfo
from irqlab.model.snapshot_dir import RawCapture

POLICY_NR = {"other": 0, "fifo": 1, "rr": 2}

T = TypeVar("T")


def _part(value: T | None, name: str) -> T:
    """A part of the snapshot that the file is printed from (the simulator fills them all)."""
    if value is None:
        raise ValueError(f"the snapshot has no {name} to print")
    return value


def render_interrupts(snap: Snapshot) -> str:
    """show_interrupts() (kernel/irq/proc.c, v6.18) and x86 arch_show_interrupts()."""
    it = _part(snap.interrupts, "/proc/interrupts")
    numbered = [int(ln.irq) for ln in it.lines if ln.numbered]
    nr_irqs = max(numbered + [0]) + 1
    prec = 3
    j = 1000
    while j <= nr_irqs:  # "for (prec = 3, j = 1000; prec < 10 && j <= nr_irqs; ++prec) j *= 10;"
        prec += 1
        j *= 10
    out = [" " * (prec + 8) + "".join(f"CPU{c:<8d}" for c in it.cpus)]
    for i, ln in enumerate(it.lines):
        counts = it.counts[i]
        if ln.numbered:
            row = f"{ln.irq:>{prec}}:" + "".join(f" {int(c):>10}" for c in counts)
            row += f" {ln.chip:>8} {ln.hwirq:>{prec}}-{ln.trigger:<8}  " + ", ".join(ln.actions)
        elif not ln.per_cpu:
            row = f"{ln.irq:>{prec}}: {int(it.totals[i]):>10}"
        else:
            row = f"{ln.irq:>{prec}}:" + "".join(f" {int(c):>10}" for c in counts) + f"   {ln.description}"
        out.append(row)
    return "\n".join(out) + "\n"


def render_softirqs(snap: Snapshot) -> str:
    """fs/proc/softirqs.c show_softirqs()."""
    s = _part(snap.softirqs, "/proc/softirqs")
    out = [" " * 20 + "".join(f"CPU{c:<8d}" for c in s.cpus)]
    for i, name in enumerate(s.vectors):
        out.append(f"{name:>12}:" + "".join(f" {int(c):>10}" for c in s.counts[i]))
    return "\n".join(out) + "\n"


def render_stat(snap: Snapshot) -> str:
    """fs/proc/stat.c show_stat()."""
    st = _part(snap.stat, "/proc/stat")
    out = ["cpu  " + " ".join(str(int(v)) for v in st.total_times)]
    for i, cpu in enumerate(st.cpus):
        out.append(f"cpu{cpu} " + " ".join(str(int(v)) for v in st.times[i]))
    out.append(f"intr {st.intr_total}" + "".join(f" {int(v)}" for v in _part(st.intr, "intr line")))
    out += [f"ctxt {st.ctxt}", f"btime {st.btime}", f"processes {st.processes}",
            f"procs_running {st.procs_running}", f"procs_blocked {st.procs_blocked}"]
    out.append(f"softirq {st.softirq_total}" + "".join(f" {v}" for v in _part(st.softirq, "softirq line")))
    return "\n".join(out) + "\n"


def render_softnet(snap: Snapshot) -> str:
    """net/core/net-procfs.c softnet_seq_show() (v6.18: 15 columns)."""
    lines = []
    for r in _part(snap.softnet, "softnet_stat").rows:
        cols = [r.processed, r.dropped, r.time_squeeze, 0, 0, 0, 0, 0, 0, r.received_rps or 0,
                r.flow_limit_count or 0, r.backlog_len or 0, r.cpu, r.input_qlen or 0, r.process_qlen or 0]
        lines.append(" ".join(f"{c:08x}" for c in cols))
    return "\n".join(lines) + "\n"


def render_task(t: TaskInfo, clk_tck: int = 100) -> dict[str, str]:
    """/proc/PID/{comm,stat,schedstat,status} of a kernel thread (fs/proc/array.c)."""
    rt = t.policy in ("fifo", "rr")
    priority = -1 - t.rt_priority if rt else 20 + t.nice
    # Fields 3..52 of do_task_stat(); flags carry PF_KTHREAD (0x00200000).
    f = ["S", "2", "0", "0", "0", "-1", "69238848", "0", "0", "0", "0", str(t.utime_ticks), str(t.stime_ticks),
         "0", "0", str(priority), str(t.nice), "1", "0", "14", "0", "0", "18446744073709551615"]
    f += ["0"] * (35 - len(f))  # up to field 37; exit_signal is field 38
    f += ["17", str(t.last_cpu or 0), str(t.rt_priority), str(POLICY_NR.get(t.policy, 0))]
    f += ["0"] * (50 - len(f))  # fields 42..52
    cpus = format_cpulist(t.allowed_cpus or ())
    mask = sum(1 << c for c in (t.allowed_cpus or ()))
    status = (f"Name:\t{t.comm}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{t.pid}\nPid:\t{t.pid}\nPPid:\t2\n"
              f"Kthread:\t1\nThreads:\t1\nCpus_allowed:\t{mask:x}\nCpus_allowed_list:\t{cpus}\n")
    return {"comm": t.comm + "\n", "stat": f"{t.pid} ({t.comm}) " + " ".join(f) + "\n",
            "schedstat": f"{t.run_ns or 0} 0 0\n", "status": status}


def capture(snap: Snapshot) -> RawCapture:
    """A RawCapture of a simulated snapshot: the kernel files a real `irqlab snapshot` writes."""
    files = {
        "proc/interrupts": render_interrupts(snap),
        "proc/softirqs": render_softirqs(snap),
        "proc/stat": render_stat(snap),
        "proc/net/softnet_stat": render_softnet(snap),
        "proc/uptime": f"{snap.taken_ns / 1e9:.2f} 0.00\n",
        "proc/sys/kernel/hostname": snap.host.hostname + "\n",
        "proc/sys/kernel/osrelease": snap.host.kernel + "\n",
        "sys/devices/system/cpu/possible": format_cpulist(snap.host.possible_cpus or ()) + "\n",
        "sys/devices/system/cpu/online": format_cpulist(snap.host.online_cpus or ()) + "\n",
    }
    for knob, value in snap.sysctl.items():
        files["proc/sys/" + knob.replace(".", "/")] = f"{value}\n"
    for irq, info in snap.irqinfo.items():
        files[f"proc/irq/{irq}/smp_affinity_list"] = format_cpulist(info.affinity or ()) + "\n"
        files[f"proc/irq/{irq}/effective_affinity_list"] = format_cpulist(info.effective_affinity or ()) + "\n"
        if info.spurious:
            sp = info.spurious
            files[f"proc/irq/{irq}/spurious"] = f"count {sp.count}\nunhandled {sp.unhandled}\nlast_unhandled {sp.last_unhandled_ms} ms\n"
    for t in snap.tasks:
        for name, text in render_task(t, snap.host.clk_tck).items():
            files[f"proc/{t.pid}/{name}"] = text
    return RawCapture({k: v.encode() for k, v in files.items()}, snap.taken_ns, 0.0, ())
