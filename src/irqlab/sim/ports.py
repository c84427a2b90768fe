"""What a kernel mechanism may ask of the machine it runs in, as a Protocol.

As a SimPy process is handed its environment and its resources and nothing else, a mechanism
module (softirq.py, napi.py, tasklet.py, irqthread.py, line.py, spurious.py, rcu.py,
sender.py, fastpath.py) sees the machine through `Kernel`: the clock, the scenario, the CPUs
(each carrying its per-CPU state: `cpu.sirq`, `cpu.softnet`), the tracer and the scheduler's
wake-up. A module that needs more (napi.py the sockets, spurious.py the lines) says so in a
Protocol of its own that extends this one. sim/machine.py implements them all; no mechanism
imports it, so sim/ imports one way: state, engine, cpu -> ports -> mechanisms -> machine ->
emit, policy, summary, validate.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from irqlab.sim.cpu import CPU, CpuHost, Task


class Kernel(CpuHost, Protocol):
    """The machine as its mechanisms see it: services and the constants read on hot paths."""

    rng: np.random.Generator
    cpus: list[CPU]
    tracing: bool  # machine.trace: every trace() call is a no-op when False
    tick_ns: int  # one jiffy
    threadirqs: bool  # forced IRQ threading (threadirqs, or PREEMPT_RT)
    defer_to_ksoftirqd: bool  # the 4.9 .. 6.4 "let ksoftirqd do its job" rule is in force
    netdev_budget: int
    rx_time_jiffies: int  # net_rx_action()'s time limit in jiffies, by kernel version
    note_interrupt_skips_handled: bool  # 5.13+: handled interrupts count only while some are unhandled
    in_net_rx_action_rule: bool  # v6.4+: no NET_RX raise while net_rx_action() runs (8b43fd3d1d7d)
    forwarded: int  # packets the forwarding path sent on
    sockets: dict[str, Any]  # napi.Socket by receiver task name

    def trace(self, cpu: CPU, kind: int, a0: int = 0, a1: int = 0, a2: int = 0) -> None: ...

    def wake(self, t: Task, from_cpu: CPU | None) -> None: ...

    def new_task(self, name: str, cpu: int, policy: str = "other", prio: int = 0, nice: int = 0,
                 kthread: bool = False) -> Task: ...

    def log(self, message: str) -> None: ...


class Controlled(Kernel, Protocol):
    """The machine as a controller's knobs (sim/policy.py) see it: its lines and the log of writes."""

    lines: list[Any]  # line.Line: affinity and NAPI attributes are written on them
    policy_log: list[Any]  # policy.Applied, one per write
