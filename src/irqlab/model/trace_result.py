"""Results of a trace window: per-handler histograms, passes, context shares (values only).

analysis/trace_aggregate.py fills them from an EventBatch (tracefs or simulator); the BPF backend fills
the same types from its in-kernel maps, so both print identically.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from irqlab.model.events import VECTOR_BY_ID, VECTOR_NAMES
from irqlab.model.histogram import Histogram

CONTEXTS = ("ksoftirqd", "irq_exit", "other")

# x86 system vector numbers (arch/x86/include/asm/irq_vectors.h, v6.18) -> /proc/interrupts
# row; irq_vectors:*_entry records the number in its `vector` field (LOC is 236 = 0xec).
X86_VECTORS: dict[int, str] = {
    0xFF: "SPU", 0xFE: "ERR", 0xFD: "RES", 0xFC: "CAL", 0xFB: "CAL", 0xFA: "TRM", 0xF9: "THR",
    0xF8: "RBT", 0xF7: "PLT", 0xF6: "IWI", 0xF4: "DFR", 0xF3: "HYP", 0xF2: "PIN", 0xF1: "PIW",
    0xF0: "NPI", 0xEC: "LOC",
}



@dataclass(frozen=True, slots=True)
class HistogramLayout:
    """Histogram layout used for every duration of one result (so they all merge)."""

    bucket_ns: int = 1_000
    limit_ns: int = 1_000_000

    def new(self) -> Histogram:
        return Histogram(self.bucket_ns, self.limit_ns)


@dataclass(frozen=True, slots=True)
class Handler:
    """One IRQ, system vector, softirq vector or tasklet: its histograms per CPU (ns)."""

    kind: str  # "irq", "vector", "softirq", "tasklet", "bhwork" (a BH workqueue's work item, listed with the tasklets)
    key: int  # IRQ number, x86 vector number, softirq number, tasklet function address
    name: str  # "virtio3-rx", "LOC", "NET_RX", "net_tx_action"
    gross: dict[int, Histogram]  # cpu -> exit - entry
    net: dict[int, Histogram]  # cpu -> minus nested hardirq handlers
    latency: dict[int, Histogram] = field(default_factory=dict)  # softirq: raise -> entry
    runs_by_context: dict[int, dict[str, int]] = field(default_factory=dict)  # softirq: cpu -> ctx -> runs
    ns_by_context: dict[int, dict[str, int]] = field(default_factory=dict)  # softirq: cpu -> ctx -> gross ns

    def merged(self, which: str = "gross", cpus: Iterable[int] | None = None) -> Histogram | None:
        """The histogram `which` (gross, net, latency) merged over cpus (all when None)."""
        per_cpu: dict[int, Histogram] = getattr(self, which)
        hists = [h for c, h in sorted(per_cpu.items()) if cpus is None or c in cpus]
        if not hists:
            return None
        out = hists[0].copy()
        for h in hists[1:]:
            out.merge(h)
        return out

    def context_share(self, ctx: str, cpus: Iterable[int] | None = None) -> tuple[float | None, float | None]:
        """(share of runs, share of time) in context ctx, 0..1; None when there were no runs."""
        sel = [c for c in self.runs_by_context if cpus is None or c in cpus]
        runs = sum(sum(self.runs_by_context[c].values()) for c in sel)
        ns = sum(sum(self.ns_by_context[c].values()) for c in sel)
        if runs == 0:
            return None, None
        r = sum(self.runs_by_context[c].get(ctx, 0) for c in sel) / runs
        t = sum(self.ns_by_context[c].get(ctx, 0) for c in sel) / ns if ns else None
        return r, t


@dataclass(frozen=True, slots=True)
class ThreadTime:
    """How long one napi/DEV-ID kthread ran on one CPU in a window: thread time, not NET_RX softirq time.

    Threaded NAPI polls in its own kthread (net/core/dev.c, napi_threaded_poll(), v6.18), so
    its receive work is scheduled like a task: measured from sched:sched_switch (tracefs), or
    from /proc/PID/schedstat deltas (the BPF backend, which keeps no events), then `cpu` is the
    CPU it last ran on.
    """

    pid: int
    comm: str  # "napi/veth1-8193"
    cpu: int
    run_ns: int
    runs: int  # times it was switched in (0 from schedstat)
    prio: int | None = None  # the kernel's prio at its last switch-in (sched_switch next_prio): < 100 real-time
    source: str = "sched_switch"  # or "schedstat"

    @property
    def device(self) -> str:
        """The device it polls, from the comm "napi/%s-%d" ("" when the comm was cut short)."""
        dev, _, nid = self.comm.removeprefix("napi/").rpartition("-")
        return dev if dev and nid.isdigit() else ""

    @property
    def napi_id(self) -> int | None:
        _, _, nid = self.comm.rpartition("-")
        return int(nid) if nid.isdigit() else None

    @property
    def priority(self) -> str:
        """The kernel prio as a person sets it: "rt 50" (SCHED_FIFO/RR 50, prio 49), "nice 0" (prio 120).

        include/linux/sched/prio.h (v6.18): MAX_RT_PRIO 100, an RT task's prio is 99 - rt_priority,
        a normal task's 120 + nice; SCHED_DEADLINE is -1.
        """
        if self.prio is None:
            return ""
        if self.prio < 0:
            return "deadline"
        return f"rt {99 - self.prio}" if self.prio < 100 else f"nice {self.prio - 120}"


@dataclass(frozen=True, slots=True)
class TraceResult:
    """Everything `irqlab trace` reports for one window."""

    window_ns: int
    cpus: tuple[int, ...]
    events: dict[int, int]  # cpu -> events seen
    lost: dict[int, int]  # cpu -> events the kernel dropped
    hardirqs: tuple[Handler, ...]  # kinds "irq" and "vector"
    softirqs: tuple[Handler, ...]
    tasklets: tuple[Handler, ...]
    passes: dict[int, int]  # cpu -> handle_softirqs() passes seen
    restarts: dict[int, int]  # cpu -> passes that went back to `restart:`
    truncated: dict[str, dict[int, int]]  # "hardirq"/"softirq"/"tasklet"/"latency"/"unraised" -> cpu -> n
    ksoftirqd_pids: tuple[int, ...] = ()
    source: str = ""
    layout: HistogramLayout = HistogramLayout()
    threads: tuple[ThreadTime, ...] = ()  # napi/DEV-ID kthreads' run time per CPU

    @property
    def complete(self) -> bool:
        """False when the kernel dropped events: never present this result as whole."""
        return not any(self.lost.values())

    def to_dict(self) -> dict[str, Any]:
        """A lossless JSON form (histograms as Histogram.to_dict()), read back by from_dict()."""

        def hists(d: dict[int, Histogram]) -> dict[str, Any]:
            return {str(c): h.to_dict() for c, h in sorted(d.items())}

        def ints(d: dict[int, int]) -> dict[str, int]:
            return {str(c): int(n) for c, n in sorted(d.items())}

        def handler(h: Handler) -> dict[str, Any]:
            return {
                "kind": h.kind, "key": h.key, "name": h.name, "gross": hists(h.gross), "net": hists(h.net),
                "latency": hists(h.latency),
                "runs_by_context": {str(c): dict(v) for c, v in sorted(h.runs_by_context.items())},
                "ns_by_context": {str(c): dict(v) for c, v in sorted(h.ns_by_context.items())},
            }

        return {
            "format": 1, "window_ns": self.window_ns, "cpus": list(self.cpus), "events": ints(self.events),
            "lost": ints(self.lost), "hardirqs": [handler(h) for h in self.hardirqs],
            "softirqs": [handler(h) for h in self.softirqs], "tasklets": [handler(h) for h in self.tasklets],
            "passes": ints(self.passes), "restarts": ints(self.restarts),
            "truncated": {k: ints(v) for k, v in sorted(self.truncated.items())},
            "ksoftirqd_pids": list(self.ksoftirqd_pids), "source": self.source,
            "layout": {"bucket_ns": self.layout.bucket_ns, "limit_ns": self.layout.limit_ns},
            "threads": [{"pid": t.pid, "comm": t.comm, "cpu": t.cpu, "run_ns": t.run_ns, "runs": t.runs,
                         "prio": t.prio, "source": t.source} for t in self.threads],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TraceResult:
        """The result to_dict() wrote (parsed JSON; a missing key or a bad value raises KeyError/ValueError/TypeError)."""

        def hists(x: dict[str, Any]) -> dict[int, Histogram]:
            return {int(c): Histogram.from_dict(h) for c, h in x.items()}

        def ints(x: dict[str, Any]) -> dict[int, int]:
            return {int(c): int(n) for c, n in x.items()}

        def ctx(x: dict[str, Any]) -> dict[int, dict[str, int]]:
            return {int(c): {str(k): int(n) for k, n in v.items()} for c, v in x.items()}

        def handler(h: dict[str, Any]) -> Handler:
            return Handler(str(h["kind"]), int(h["key"]), str(h["name"]), hists(h["gross"]), hists(h["net"]),
                           hists(h["latency"]), ctx(h["runs_by_context"]), ctx(h["ns_by_context"]))

        if d.get("format") != 1:
            raise ValueError(f"trace format {d.get('format')!r}, expected 1")
        return cls(
            window_ns=int(d["window_ns"]), cpus=tuple(int(c) for c in d["cpus"]), events=ints(d["events"]),
            lost=ints(d["lost"]), hardirqs=tuple(handler(h) for h in d["hardirqs"]),
            softirqs=tuple(handler(h) for h in d["softirqs"]), tasklets=tuple(handler(h) for h in d["tasklets"]),
            passes=ints(d["passes"]), restarts=ints(d["restarts"]),
            truncated={str(k): ints(v) for k, v in d["truncated"].items()},
            ksoftirqd_pids=tuple(int(p) for p in d["ksoftirqd_pids"]), source=str(d["source"]),
            layout=HistogramLayout(int(d["layout"]["bucket_ns"]), int(d["layout"]["limit_ns"])),
            # Absent from evidence saved before threaded NAPI was traced: no threads.
            threads=tuple(ThreadTime(int(t["pid"]), str(t["comm"]), int(t["cpu"]), int(t["run_ns"]), int(t["runs"]),
                                     None if t["prio"] is None else int(t["prio"]), str(t["source"]))
                          for t in d.get("threads", ())),
        )


def vector_name(vector: int, vector_id: int = -1) -> str:
    """The /proc/interrupts row of a system vector: from the event's id, else its number."""
    if 0 <= vector_id < len(VECTOR_BY_ID):
        return VECTOR_NAMES[VECTOR_BY_ID[vector_id]]
    return X86_VECTORS.get(int(vector), f"vec{int(vector)}")


def tasklet_name(addr: int, symbols: dict[int, str]) -> str:
    return symbols.get(addr) or f"0x{addr:x}"
