"""The simulated machine: CPUs, lines, tasks and the softirq vector table, wired and run."""

from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np

from irqlab.model.events import EventKind
from irqlab.model.histogram import Histogram
from irqlab.model.vectors import NR_SOFTIRQS, SOFTIRQ_NR
from irqlab.sim import napi, rcu, sender, softirq, spurious, tasklet
from irqlab.sim.cpu import BLOCK, CPU, Task
from irqlab.sim.engine import PRIO_SAMPLE, Engine
from irqlab.sim.irqthread import ThreadedDevice, forced_threaded
from irqlab.sim.line import IRQ_HANDLED, IRQ_NONE, DeviceLine, Line
from irqlab.sim.scenario import Scenario
from irqlab.sim.state import SoftirqState
from irqlab.sim.workload import CostSampler

__all__ = ["BufferedHistogram", "Machine", "SoftirqState"]

KSOFTIRQD_PID0 = 14  # what a small x86 box shows; ids are only labels
IRQ_THREAD_PID0 = 100
TASK_PID0 = 1000


class BufferedHistogram(Histogram):
    """A Histogram whose add() only appends; flush() bins the values in one numpy call.

    Histogram.add() costs microseconds of numpy scalar work; a run adds millions of values.
    The machine flushes at every sample, so readers after run() see exact contents.
    """

    __slots__ = ("pending",)

    def __init__(self, bucket_ns: int = 1_000, limit_ns: int = 1_000_000) -> None:
        super().__init__(bucket_ns, limit_ns)
        self.pending: list[int] = []

    def add(self, value_ns: int) -> None:  # type: ignore[override]
        self.pending.append(value_ns)

    def flush(self) -> None:
        if self.pending:
            super().add_many(np.array(self.pending, dtype=np.int64))
            self.pending = []


def rx_time_jiffies(sc: Scenario) -> int:
    """net_rx_action()'s time limit in jiffies, as the scenario's kernel computes it.

    Before 4.12 it is "jiffies + 2"; 4.12 (7acf8a1e8a28) made it netdev_budget_usecs, default
    2000 us; 5.7 (a4837980fd9f) made the default 2 * USEC_PER_SEC / HZ, two jiffies again.
    usecs_to_jiffies() rounds up, so 2000 us is one jiffy at HZ=100, 250 and 300.
    """
    if sc.kernel < (4, 12):
        return 2
    return -(-sc.budget_usecs * 1000 // sc.tick_ns)


class LocLine(Line):
    """The local APIC timer: runs expired hrtimers (the tick is one of them)."""

    def __init__(self, m: Machine) -> None:
        super().__init__(m, "LOC", "", 0, "Local timer interrupts")
        self.cost = CostSampler(m.sc.tick_cost, m.rng)

    def start(self, cpu: CPU) -> int:
        return self.cost.draw()

    def end(self, cpu: CPU) -> int:
        cpu.run_timers()
        return IRQ_HANDLED


class ResLine(Line):
    """The rescheduling IPI: another CPU woke a task here (scheduler_ipi())."""

    def start(self, cpu: CPU) -> int:
        return 500


class PlainDevice(DeviceLine):
    """A device whose hardirq handler does all the work (or none: IRQ_NONE, see `unhandled`)."""

    def end(self, cpu: CPU) -> int:
        self.queued = 0
        self.arm()
        return IRQ_HANDLED


class Machine:
    """Everything the kernel model keeps, and the run loop.

    It is the one implementation of the ports its parts declare (cpu.CpuHost, ports.Kernel
    and the per-mechanism Protocols that extend it) and hands each CPU its per-CPU state.
    """

    def __init__(self, sc: Scenario, progress: Callable[[float], None] | None = None, controller=None) -> None:
        self.sc = sc
        self.controller = controller  # a sim.policy.Controller (irqlab watch on the model), or None
        self.policy_log: list = []  # sim.policy.Applied, one per knob write
        self.engine = Engine()
        self.rng = np.random.default_rng(sc.seed)
        self.seq = 0
        self.cur_cpu: CPU | None = None
        self.progress = progress
        self.tracing = sc.trace
        # Constants read on every softirq pass (Scenario's properties cost a call each).
        self.tick_ns = sc.tick_ns
        # handle_softirqs()'s limits by version: only MAX_SOFTIRQ_RESTART before 3.8; 3.8 (c10d73671ad3)
        # replaced it with MAX_SOFTIRQ_TIME and need_resched(); 3.10 (34376a50fb1f) added it back.
        unbounded = 1 << 62
        self.softirq_time_jiffies = (softirq.msecs_to_jiffies(sc.max_softirq_time_ms, sc.hz)
                                     if sc.kernel >= (3, 8) else unbounded)
        self.softirq_checks_resched = sc.kernel >= (3, 8)
        self.rx_time_jiffies = rx_time_jiffies(sc)
        self.in_net_rx_action_rule = sc.kernel >= (6, 4)  # 8b43fd3d1d7d: sd->in_net_rx_action
        self.max_softirq_restart = sc.max_softirq_restart if not (3, 8) <= sc.kernel < (3, 10) else unbounded
        # note_interrupt() counts an interrupt towards the 100,000 window only while some are
        # unhandled, since 5.13 (kernel/irq/spurious.c, "genirq: Reduce irqdebug cacheline bouncing")
        self.note_interrupt_skips_handled = sc.kernel >= (5, 13)
        # ktimers/N: TIMER and HRTIMER softirqs in a SCHED_FIFO 1 thread under forced threading (6.13+)
        self.ktimers = sc.threadirqs and sc.kernel >= (6, 13)
        self.netdev_budget = sc.netdev_budget
        self.threadirqs = sc.threadirqs
        self.defer_to_ksoftirqd = sc.era in ("4.9", "4.15")  # the "let ksoftirqd do its job" eras
        factor = 1 + min(sc.cpus, 8).bit_length() - 1  # sched_update_scaling(): 1 + ilog2(ncpus)
        self.sched_latency_ns = 6_000_000 * factor
        self.min_gran_ns = 750_000 * factor
        self.wakeup_gran_ns = 1_000_000 * factor
        self.tasks: list[Task] = []
        self._pids: dict[str, int] = {}
        self.cpus = [CPU(self, c) for c in range(sc.cpus)]
        self.softirq_state = [SoftirqState(self._ksoftirqd(c)) for c in range(sc.cpus)]
        self.softnet = [napi.new_softnet(sc.dev_weight, c) for c in range(sc.cpus)]
        for cpu, st, sd in zip(self.cpus, self.softirq_state, self.softnet):
            cpu.sirq, cpu.softnet = st, sd
        self.rcu = [rcu.RcuData(CostSampler(sc.rcu_callback, self.rng)) for _ in range(sc.cpus)]
        self.rcu_gp_ns = int(sc.rcu_gp_ms * 1e6)
        self.tasklets = {False: [[] for _ in range(sc.cpus)], True: [[] for _ in range(sc.cpus)]}
        self.tasklet_symbols: dict[int, str] = {}
        self.napi_names: list[str] = []
        self.raise_latency = [BufferedHistogram(1_000, 10_000_000) for _ in range(NR_SOFTIRQS)]
        self.forwarded = 0
        self.spurious_polls = 0
        self.messages: list[str] = []
        self.events: list[tuple] = []
        self.snapshots: list = []
        self.window_times: list[dict[str, int]] = []  # per-CPU exact ns at the window start
        self.actions = self._actions()
        self.loc = LocLine(self)
        self.res = ResLine(self, "RES", "", 0, "Rescheduling interrupts")
        self.cal = sender.CalLine(self)  # RPS IPIs of sender tasks (sim/sender.py)
        self.tx_backlogs: dict[int, sender.TxBacklog] = {}
        self.sockets = {t.name: napi.Socket(self, t.rcvbuf) for t in sc.tasks if t.kind == "receiver"}
        self.lines: list[Line] = [self._device(d) for d in sc.devices]
        self.user_tasks = [self._user_task(i, t) for i, t in enumerate(sc.tasks)]
        if self.ktimers:  # (made last, so the other threads keep their PIDs)
            for cpu, st in zip(self.cpus, self.softirq_state):
                st.ktimerd = self._ktimerd(cpu)
        self.window_base: dict[str, list] | None = None  # counters() at the window's start

    # --- construction --------------------------------------------------------------------

    def _actions(self) -> list:
        """softirq_vec[]: the action per vector; vectors with no model do no work."""

        def idle_action(m: Machine, cpu: CPU) -> Generator:
            return
            yield

        acts = [idle_action] * NR_SOFTIRQS
        acts[softirq.NET_RX] = napi.net_rx_action
        acts[softirq.TASKLET] = tasklet.tasklet_action(False)
        acts[softirq.HI] = tasklet.tasklet_action(True)
        acts[softirq.RCU] = rcu.rcu_core
        for name, _, cost in self.sc.tick_raise:  # machine.tick_raise: the vector's work per run
            acts[SOFTIRQ_NR[name]] = self._fixed_work(CostSampler(cost, self.rng))
        return acts

    @staticmethod
    def _fixed_work(cost: CostSampler) -> Callable:
        def action(m: Machine, cpu: CPU) -> Generator:
            c = cost.draw()
            if c:
                yield c

        return action

    def new_task(self, name: str, cpu: int, policy: str = "other", prio: int = 0, nice: int = 0, kthread: bool = False) -> Task:
        """A task with a PID from its class's range (ksoftirqd 14, 22, ...; IRQ threads 100+; tasks 1000+)."""
        kind = "ksoftirqd" if name.startswith("ksoftirqd/") else "kthread" if kthread else "task"
        n = self._pids.get(kind, 0)
        self._pids[kind] = n + 1
        pid = {"ksoftirqd": KSOFTIRQD_PID0 + 8 * n, "kthread": IRQ_THREAD_PID0 + n, "task": TASK_PID0 + n}[kind]
        t = Task(name, pid, cpu, policy, prio, nice, kthread)
        self.tasks.append(t)
        return t

    def _ksoftirqd(self, c: int) -> Task:
        t = self.new_task(f"ksoftirqd/{c}", c, kthread=True)
        t.kind = "ksoftirqd"
        t.gen = softirq.ksoftirqd_body(self, self.cpus[c], t)
        t.running = True  # runs once at boot and sleeps: it blocks on its first step
        self.cpus[c].enqueue(t)
        return t

    def _ktimerd(self, cpu: CPU) -> Task:
        """ktimers/N: ktimerd_setup() makes it SCHED_FIFO 1 ("sched_set_fifo_low()")."""
        t = self.new_task(f"ktimers/{cpu.id}", cpu.id, "fifo", 1, kthread=True)
        t.kind = "ktimers"
        t.gen = softirq.ktimerd_body(self, cpu, t)
        t.running = True  # smpboot: runs once and sleeps
        cpu.enqueue(t)
        return t

    def _device(self, d) -> DeviceLine:
        kinds = {"napi": napi.NapiNic, "netif_rx": napi.NetifRxNic, "plain": PlainDevice,
                 "tasklet": tasklet.TaskletDevice, "threaded": ThreadedDevice}
        args = (True,) if d.kind == "hi_tasklet" else ()
        cls = tasklet.TaskletDevice if d.kind == "hi_tasklet" else kinds[d.kind]
        if self.sc.threadirqs and cls is not ThreadedDevice:
            cls = forced_threaded(cls)  # forced threading: the driver's handler runs in irq/N-name
        return cls(self, d, *args)

    def _user_task(self, i: int, spec) -> Task:
        t = self.new_task(spec.name, spec.cpu, spec.policy, spec.priority, spec.nice)
        cost = CostSampler(spec.work, self.rng)
        if spec.kind == "periodic":
            t.latency = BufferedHistogram(1_000, 20_000_000)
            t.gen = self._periodic(t, spec.period_ns, cost, CostSampler(spec.wakeup, self.rng))
        elif spec.kind == "receiver":
            sock = self.sockets[spec.name]
            sock.reader = t
            t.gen = self._receiver(t, sock, cost)
        elif spec.kind == "sender":
            t.gen = sender.sender_body(self, t, spec, cost)  # veth/loopback xmit: sim/sender.py
        else:
            t.gen = self._hog()
        t.running = True
        self.cpus[spec.cpu].enqueue(t)
        return t

    # --- task bodies ---------------------------------------------------------------------

    def _periodic(self, t: Task, period_ns: int, cost: CostSampler, wakeup: CostSampler) -> Generator:
        """A cyclictest-like task: an hrtimer wakes it every period; latency = clock read - expiry.

        cyclictest reads the clock after clock_nanosleep() returns: the wake-up, the scheduling
        delay, the switch and the return to user space (`wakeup`, run as this task's work, so
        interrupts that land after the switch, as pending ones do, count as they do there).
        """
        cpu = self.cpus[t.cpu]
        expiry = self.engine.now + period_ns
        t.data = {"overruns": 0, "runs": 0}
        while True:
            cpu.add_timer(expiry, self.timer_wake, (t, expiry))
            yield BLOCK
            c = wakeup.draw()
            if c:
                yield c
            t.latency.add(self.engine.now - expiry)
            t.data["runs"] += 1
            yield cost.draw()
            expiry += period_ns
            while expiry <= self.engine.now:
                expiry += period_ns
                t.data["overruns"] += 1

    def timer_wake(self, cpu: CPU, arg: tuple) -> None:
        """An hrtimer that wakes a sleeping task (a periodic task's period, a sender's pacing)."""
        t, expiry = arg
        self.wake(t, cpu)
        t.wake_ns = expiry  # latency counts from the timer's expiry, as cyclictest does

    def _receiver(self, t: Task, sock, cost: CostSampler) -> Generator:
        """A UDP reader: one datagram per recvmsg(); the queue lock is taken with _bh."""
        cpu = self.cpus[t.cpu]
        while True:
            if not sock.qlen:
                yield BLOCK
                continue
            sock.qlen -= 1
            yield cost.draw()
            sock.received += 1
            # spin_lock_bh()/spin_unlock_bh() of the receive queue (held briefly: the copy to
            # user space is outside it); local_bh_enable() runs pending softirqs. On PREEMPT_RT
            # the lock_bh may block on the CPU's BH lock.
            yield from softirq.local_bh_disable(self, cpu, t)
            t.bh -= 1
            yield from softirq.local_bh_enable(self, cpu, t)

    def _hog(self) -> Generator:
        while True:
            yield 1_000_000

    # --- interrupts ----------------------------------------------------------------------

    def hardirq_enter(self, cpu: CPU, line: Line) -> int:
        """handle_irq_event() begins: count the interrupt (kstat_irqs); the handler's cost in ns."""
        line.counts[cpu.id] += 1
        if self.tracing:
            self.trace(cpu, EventKind.IRQ_ENTRY if line.numbered else EventKind.VECTOR_ENTRY, line.nr if line.numbered else 0xEC)
        return line.start(cpu)

    def hardirq_exit(self, cpu: CPU, line: Line) -> None:
        """The handler returns: its side effects, note_interrupt(); irq_exit() follows."""
        ret = line.end(cpu)
        if line.numbered:
            line.handled_seq += 1
            if line.dev.unhandled and spurious.unhandled_now(line, line.handled_seq, line.dev.unhandled):
                ret = IRQ_NONE
            if ret == IRQ_HANDLED and not line.irqs_unhandled and self.note_interrupt_skips_handled:
                pass  # note_interrupt() since 5.13: "if (likely(!desc->irqs_unhandled)) return;"
            elif ret == IRQ_HANDLED and line.irq_count < spurious.WINDOW - 1:
                line.irq_count += 1  # note_interrupt()'s common case, inlined
            else:
                spurious.note_interrupt(self, line, ret)
        if self.tracing:
            self.trace(cpu, EventKind.IRQ_EXIT if line.numbered else EventKind.VECTOR_EXIT, line.nr if line.numbered else 0xEC, ret)

    def irq_exit(self, cpu: CPU) -> None:
        """__irq_exit_rcu(): leaving the last interrupt level with softirqs pending runs them."""
        st = cpu.sirq
        if (st.pending or st.timer_pending) and not cpu.in_interrupt():
            if st.pending:
                softirq.invoke_softirq(self, cpu)
            if st.timer_pending and st.ktimerd is not None:
                self.wake(st.ktimerd, cpu)  # wake_timersd()

    def wake(self, t: Task, from_cpu: CPU | None) -> None:
        """try_to_wake_up() on t's CPU; a remote wake-up that preempts sends a RES IPI."""
        if t.running:
            return
        target = self.cpus[t.cpu]
        target.wake(t)
        self.trace(from_cpu or target, EventKind.SCHED_WAKEUP, t.pid, t.cpu, t.prio)
        src = from_cpu or self.cur_cpu
        if target.need_resched and src is not target:
            target.deliver(self.res)

    # --- tracing -------------------------------------------------------------------------

    def trace(self, cpu: CPU, kind: int, a0: int = 0, a1: int = 0, a2: int = 0) -> None:
        if self.tracing:
            curr = cpu.curr
            self.events.append((self.engine.now, cpu.id, int(kind), curr.pid if curr else 0, a0, a1, a2))

    def trace_switch(self, cpu: CPU, prev: Task | None, nxt: Task | None) -> None:
        if self.tracing:
            self.events.append((self.engine.now, cpu.id, int(EventKind.SCHED_SWITCH), prev.pid if prev else 0,
                                nxt.pid if nxt else 0, 0, (nxt.prio if nxt else 0)))

    def log(self, message: str) -> None:
        self.messages.append(f"[{self.engine.now / 1e9:12.6f}] {message}")

    # --- running -------------------------------------------------------------------------

    def run(self) -> Machine:
        """Run warm-up and the measured window, sampling snapshots at even instants."""
        from irqlab.sim.readout import snapshot

        sc = self.sc
        for cpu in self.cpus:
            cpu.add_timer(sc.tick_ns, self._tick, None)
        for line in self.lines:
            line.arm()
        start, end = sc.warmup_ns, sc.warmup_ns + sc.duration_ns
        instants = [start + (end - start) * i // (sc.samples - 1) for i in range(sc.samples)]
        for cpu in self.cpus:
            cpu.need_resched = bool(cpu.rt_rq or cpu.cfs_rq)  # boot: the idle task yields to runnable threads
            cpu.advance()
        if self.controller is not None:
            self.engine.at(0, self._control, None, PRIO_SAMPLE)
        steps = 50
        for k in range(1, steps + 1):
            horizon = k * end // steps
            while instants and instants[0] <= horizon:
                t = instants.pop(0)
                self.engine.run(t)
                self._sync_all()
                if t == start:
                    self._reset_histograms()
                    self.window_times = [dict(c.times) for c in self.cpus]
                    self.window_base = self.counters()
                self._flush_histograms()
                self.snapshots.append(snapshot(self))
            self.engine.run(horizon)
            if self.progress:
                self.progress(k / steps)
        return self

    def counters(self) -> dict[str, list]:
        """Every counter the summary reports, as of now: per CPU, line, task and socket.

        The summary subtracts the values at the window's start, so each covers the window only.
        """
        sts, sds = self.softirq_state, self.softnet
        return {
            "restarts": [st.restarts for st in sts], "handoffs": [st.handoffs for st in sts],
            "deferred": [st.deferred_irq_exit for st in sts], "counts": [list(st.counts) for st in sts],
            "ksoftirqd_vectors": [list(st.ksoftirqd_vectors) for st in sts],
            "task_vectors": [list(st.task_vectors) for st in sts],
            "bh_lock_waits": [st.bh_lock_waits for st in sts], "pi_boosts": [st.pi_boosts for st in sts],
            "squeeze": [sd.time_squeeze for sd in sds], "dropped": [sd.dropped for sd in sds],
            "processed": [sd.processed for sd in sds], "received_rps": [sd.received_rps for sd in sds],
            "arrived": [getattr(ln, "arrived", 0) for ln in self.lines],
            "missed": [getattr(ln, "missed", 0) for ln in self.lines],
            "run_ns": [t.run_ns for t in self.user_tasks], "forwarded": [self.forwarded],
            "received": [s.received for s in self.sockets.values()], "socket_drops": [s.drops for s in self.sockets.values()],
        }

    def _control(self, knobs) -> None:
        """The policy's periodic sample: a snapshot of now, then whatever it writes."""
        from irqlab.sim.policy import ModelKnobs
        from irqlab.sim.readout import snapshot

        knobs = knobs or ModelKnobs(self)
        self._sync_all()
        self.controller.step(snapshot(self), knobs)
        self.engine.at(self.engine.now + max(self.controller.interval_ns, 1), self._control, knobs, PRIO_SAMPLE)

    def _tick(self, cpu: CPU, _: object) -> None:
        cpu.tick()
        if self.rcu[cpu.id].queued:
            rcu.rcu_sched_clock_irq(self, cpu)
        for name, chance, _ in self.sc.tick_raise:  # in the LOC hardirq: they run on its irq_exit()
            if self.rng.random() < chance:
                nr = SOFTIRQ_NR[name]
                if self.ktimers and nr in (softirq.TIMER, softirq.HRTIMER):
                    softirq.raise_ktimers_thread(self, cpu, nr)  # raise_timer_softirq()
                else:
                    softirq.raise_softirq(self, cpu, nr)
        cpu.add_timer((self.engine.now // self.sc.tick_ns + 1) * self.sc.tick_ns, self._tick, None)

    def _sync_all(self) -> None:
        """Bring lazily counted state up to now: CPU time of running segments, ring arrivals."""
        for cpu in self.cpus:
            cpu.sync()
        for line in self.lines:
            if isinstance(line, DeviceLine) and (line.masked or line.disabled):
                line.sync()

    def _flush_histograms(self) -> None:
        for h in self.raise_latency:
            h.flush()
        for t in self.tasks:
            if t.latency is not None:
                t.latency.flush()

    def _reset_histograms(self) -> None:
        for h in self.raise_latency:
            h.__init__(h.bucket_ns, h.limit_ns)
        for t in self.tasks:
            if t.latency is not None:
                t.latency.__init__(t.latency.bucket_ns, t.latency.limit_ns)  # also empties pending
