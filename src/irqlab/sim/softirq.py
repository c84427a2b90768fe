"""Softirqs: raise, handle_softirqs(), invoke_softirq() by era, ksoftirqd (kernel/softirq.c, v6.18).

handle_softirqs() is written as the kernel writes it: take the pending mask, clear it,
run each set vector in bit order, then restart while more is pending, jiffies are before
`end` (MAX_SOFTIRQ_TIME = msecs_to_jiffies(2), so HZ-granular), need_resched is clear and
--max_restart (MAX_SOFTIRQ_RESTART = 10) is non-zero; otherwise wake ksoftirqd. Before 3.8
only the restart limit applied; 3.8 (c10d73671ad3) replaced it with the 2 ms and need_resched
checks, and 3.10 (34376a50fb1f) added it back (Machine sets the limits by version).

Under forced threading from 6.13 the TIMER and HRTIMER softirqs the tick raises go to the
ktimers/N thread (SCHED_FIFO 1) instead: raise_timer_softirq() -> raise_ktimers_thread() sets
a separate mask, irq_exit() wakes the thread, and run_ktimerd() moves the mask into the
pending one and runs handle_softirqs() (kernel/softirq.c, include/linux/interrupt.h).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol

from irqlab.model.events import EventKind
from irqlab.model.vectors import SOFTIRQ_NR
from irqlab.sim.cpu import BLOCK, CPU, RESCHED, SOFTIRQ, Task
from irqlab.sim.ports import Kernel

HI, TIMER, NET_TX, NET_RX, BLOCK_VEC, IRQ_POLL, TASKLET, SCHED, HRTIMER, RCU = range(10)
# include/linux/interrupt.h (4.15 .. 6.4): SOFTIRQ_NOW_MASK = (1 << HI_SOFTIRQ) | (1 << TASKLET_SOFTIRQ)
SOFTIRQ_NOW_MASK = (1 << HI) | (1 << TASKLET)
assert SOFTIRQ_NR["NET_RX"] == NET_RX and SOFTIRQ_NR["TASKLET"] == TASKLET


class SoftirqHost(Kernel, Protocol):
    """What handle_softirqs() needs beyond `Kernel`: the vector table and the restart limits."""

    actions: list[Callable[[Any, CPU], Generator]]  # softirq_vec[]: the action of each vector
    raise_latency: list[Any]  # per vector, a BufferedHistogram of raise -> entry (its .pending list)
    softirq_time_jiffies: int  # MAX_SOFTIRQ_TIME (unbounded before 3.8)
    max_softirq_restart: int  # MAX_SOFTIRQ_RESTART (unbounded in 3.8 and 3.9)
    softirq_checks_resched: bool  # the need_resched() check of handle_softirqs() (3.8+)


def msecs_to_jiffies(ms: int, hz: int) -> int:
    """include/linux/jiffies.h: rounds up, so 2 ms is 1 jiffy at HZ=100 or 250."""
    return -(-ms * hz // 1000)


def raise_softirq(m: Kernel, cpu: CPU, nr: int) -> None:
    """raise_softirq_irqoff(): set the bit; outside interrupt context, wake ksoftirqd."""
    bit = 1 << nr
    st = cpu.sirq
    if not st.pending & bit:
        st.raised_ns[nr] = m.engine.now
    st.pending |= bit
    if m.tracing:
        m.trace(cpu, EventKind.SOFTIRQ_RAISE, nr)
    # "If we're in an interrupt or softirq, we're done (this also catches softirq-disabled
    # code). We will actually run the softirq once we return from the irq or softirq."
    if not cpu.in_interrupt():
        wakeup_softirqd(m, cpu)


def wakeup_softirqd(m: Kernel, cpu: CPU) -> None:
    st = cpu.sirq
    st.wakeups += 1
    m.wake(st.ksoftirqd, cpu)


def ksoftirqd_running(m: Kernel, cpu: CPU, pending: int) -> bool:
    """The 4.9..6.4 rule: leave pending work to a runnable ksoftirqd (HI/TASKLET exempt from 4.15)."""
    era = m.sc.era
    if era in ("pre-4.9", "6.5"):
        return False
    if era == "4.15" and pending & SOFTIRQ_NOW_MASK:
        return False
    return cpu.sirq.ksoftirqd.running


def invoke_softirq(m: SoftirqHost, cpu: CPU) -> None:
    """irq_exit_rcu() -> invoke_softirq(): run pending softirqs on this interrupt's way out."""
    st = cpu.sirq
    if m.defer_to_ksoftirqd and ksoftirqd_running(m, cpu, st.pending):
        st.deferred_irq_exit += 1
        return
    if cpu.rt:
        # PREEMPT_RT invoke_softirq(): "if (should_wake_ksoftirqd()) wakeup_softirqd();" with
        # should_wake_ksoftirqd() = !this_cpu_read(softirq_ctrl.cnt): a task inside a BH-disabled
        # section on this CPU (running or preempted) runs them at its local_bh_enable(). (The count
        # is kept with and without CONFIG_PREEMPT_RT_NEEDS_BH_LOCK.)
        if not st.bh_tasks:
            wakeup_softirqd(m, cpu)
        return
    if m.threadirqs:
        # force_irqthreads(): softirqs are left to ksoftirqd (kernel/softirq.c invoke_softirq()).
        wakeup_softirqd(m, cpu)
        return
    st.irq_exit_runs += 1
    frame = cpu.softirq_frame
    frame.gen = handle_softirqs(m, cpu, None)
    frame.remaining = None
    cpu.stack.append(frame)


def handle_softirqs(m: SoftirqHost, cpu: CPU, task: Task | None) -> Generator:
    """handle_softirqs(ksirqd): one run of the pending vectors with the restart rules."""
    st = cpu.sirq
    engine = m.engine
    end = engine.now // m.tick_ns + m.softirq_time_jiffies
    max_restart = m.max_softirq_restart
    pending = st.pending
    if task is not None:
        task.bh += 1  # softirq_handle_begin(): __local_bh_disable_ip(SOFTIRQ_OFFSET)
        saved, task.acct = task.acct, SOFTIRQ
    while True:
        st.pending = 0  # set_softirq_pending(0), then local_irq_enable()
        while pending:
            # "softirq_bit = ffs(pending); h += softirq_bit - 1;": vectors in bit order
            low = pending & -pending
            nr = low.bit_length() - 1
            pending ^= low
            st.counts[nr] += 1  # kstat_incr_softirqs_this_cpu(): what /proc/softirqs counts
            m.raise_latency[nr].pending.append(engine.now - st.raised_ns[nr])  # BufferedHistogram.add()
            if task is not None:
                if task is st.ksoftirqd:
                    st.ksoftirqd_vectors[nr] += 1
                else:
                    st.task_vectors[nr] += 1
            if m.tracing:
                m.trace(cpu, EventKind.SOFTIRQ_ENTRY, nr)
            yield from m.actions[nr](m, cpu)
            if m.tracing:
                m.trace(cpu, EventKind.SOFTIRQ_EXIT, nr)
        pending = st.pending
        if not pending:
            break
        if engine.now // m.tick_ns < end and not (cpu.need_resched and m.softirq_checks_resched):
            max_restart -= 1
            if max_restart:
                st.restarts += 1
                continue
        st.handoffs += 1
        wakeup_softirqd(m, cpu)
        break
    if task is not None:
        task.bh -= 1
        task.acct = saved


def raise_ktimers_thread(m: Kernel, cpu: CPU, nr: int) -> None:
    """raise_ktimers_thread(): a TIMER/HRTIMER raise under forced threading (6.13+), for ktimers/N."""
    st = cpu.sirq
    bit = 1 << nr
    if not (st.pending | st.timer_pending) & bit:
        st.raised_ns[nr] = m.engine.now
    st.timer_pending |= bit
    if m.tracing:
        m.trace(cpu, EventKind.SOFTIRQ_RAISE, nr)


def _smpboot_thread(should_run: Callable[[], int], thread_fn: Callable[[], Generator]) -> Generator:
    """smpboot_thread_fn() (kernel/smpboot.c): sleep until thread_should_run(), then thread_fn().

    ksoftirqd/N and ktimers/N are both such threads; each run ends in a reschedule point
    (run_ksoftirqd()'s cond_resched(), the loop's own for ktimers/N).
    """
    while True:
        if not should_run():
            yield BLOCK
            continue
        yield from thread_fn()
        yield RESCHED


def ktimerd_body(m: SoftirqHost, cpu: CPU, task: Task) -> Generator:
    """run_ktimerd(): the timer softirqs raised for it, with whatever else is pending."""
    st = cpu.sirq
    rt = m.sc.preempt_rt

    def run_ktimerd() -> Generator:
        if rt:
            yield from local_bh_disable(m, cpu, task)  # ksoftirqd_run_begin()
        st.pending |= st.timer_pending  # or_softirq_pending(timer_si)
        st.timer_pending = 0
        yield from handle_softirqs(m, cpu, task)
        if rt:
            task.bh -= 1
            _bh_unlock(m, cpu, task)  # ksoftirqd_run_end()

    yield from _smpboot_thread(lambda: st.timer_pending, run_ktimerd)


def local_bh_disable(m: Kernel, cpu: CPU, task: Task) -> Generator:
    """local_bh_disable() in task context: bump the task's softirq count.

    On PREEMPT_RT the first level adds to the CPU's softirq_ctrl.cnt. With the BH lock (always
    before 6.18; CONFIG_PREEMPT_RT_NEEDS_BH_LOCK=y from 6.18) it also takes softirq_ctrl.lock, a
    per-CPU local_lock that is an rtmutex: if another task on this CPU holds it (it was preempted
    inside its BH section), this task blocks and the holder inherits its priority until it
    releases the lock. Without it (6.18's default) the first level is migrate_disable(): nothing
    blocks, and BH sections of different tasks on one CPU do not exclude each other.
    """
    if m.sc.preempt_rt and task.bh == 0:
        st = cpu.sirq
        if m.sc.rt_bh_lock:
            while st.bh_owner is not None and st.bh_owner is not task:
                st.bh_lock_waits += 1
                st.bh_waiters.append(task)
                _pi_boost(m, st.bh_owner, task)
                yield BLOCK
            st.bh_owner = task
        st.bh_tasks += 1
    task.bh += 1


def _pi_boost(m: Kernel, owner: Task, waiter: Task) -> None:
    """rt_mutex_adjust_prio(): the owner runs at the top waiter's priority if that is higher."""
    if not waiter.rt or (owner.rt and owner.prio >= waiter.prio):
        return
    if owner.pi_saved is None:
        owner.pi_saved = (owner.policy, owner.prio)
    owner_cpu = m.cpus[owner.cpu]
    owner_cpu.sirq.pi_boosts += 1
    owner_cpu.set_prio(owner, "fifo", waiter.prio)


def _bh_unlock(m: Kernel, cpu: CPU, task: Task) -> None:
    """PREEMPT_RT __local_bh_enable() at count 0: drop the lock, undo a boost, wake the waiters."""
    st = cpu.sirq
    st.bh_tasks -= 1
    if st.bh_owner is not task:
        return  # (no BH lock: migrate_enable())
    st.bh_owner = None
    if task.pi_saved is not None:
        policy, prio = task.pi_saved
        task.pi_saved = None
        cpu.set_prio(task, policy, prio)
    waiters, st.bh_waiters = st.bh_waiters, []
    for w in waiters:
        m.wake(w, cpu)


def local_bh_enable(m: SoftirqHost, cpu: CPU, task: Task) -> Generator:
    """local_bh_enable() -> do_softirq() in task context when something is pending.

    Called with the task's count already back at the caller's level. On PREEMPT_RT
    (__local_bh_enable_ip()) the pending softirqs run with the BH lock still held, preemptibly,
    and the lock is released after them.
    """
    st = cpu.sirq
    if st.pending and not cpu.stack and task.bh == 0 and not ksoftirqd_running(m, cpu, st.pending):
        st.bh_enable_runs += 1
        yield from handle_softirqs(m, cpu, task)
    if m.sc.preempt_rt and task.bh == 0:
        _bh_unlock(m, cpu, task)


def ksoftirqd_body(m: SoftirqHost, cpu: CPU, task: Task) -> Generator:
    """smpboot thread loop: ksoftirqd_should_run() = local_softirq_pending(); run_ksoftirqd()."""
    st = cpu.sirq
    rt = m.sc.preempt_rt

    def run_ksoftirqd() -> Generator:
        if rt:
            # ksoftirqd_run_begin(): __local_bh_disable_ip(SOFTIRQ_OFFSET) takes the BH lock; the
            # task that held it may have run the pending work meanwhile.
            yield from local_bh_disable(m, cpu, task)
            if st.pending:
                st.ksoftirqd_runs += 1
                yield from handle_softirqs(m, cpu, task)
            task.bh -= 1
            _bh_unlock(m, cpu, task)  # ksoftirqd_run_end()
        else:
            st.ksoftirqd_runs += 1
            yield from handle_softirqs(m, cpu, task)

    yield from _smpboot_thread(lambda: st.pending, run_ksoftirqd)
