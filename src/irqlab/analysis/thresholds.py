"""The limits the doctor, top, the exporter, the recorder and the report judge a machine by.

The storm limits are the seed's detect_interrupt_storm(): "over 100,000/s is dangerous",
"at 1,000,000/s act". They are also the defaults of the watch daemon's per-IRQ rule
(analysis/storm.py) and of every command's --storm-warn/--storm-crit.
"""

from __future__ import annotations

from dataclasses import dataclass

STORM_WARN_RATE: float = 100_000.0  # interrupts/s of one IRQ that warn
STORM_CRIT_RATE: float = 1_000_000.0  # interrupts/s of one IRQ that are critical

# note_interrupt() (kernel/irq/spurious.c, v6.18) counts interrupts of a line in windows of
# 100,000 (desc->irq_count) and disables the line ("nobody cared") when more than 99,900 of a
# window were unhandled (desc->irqs_unhandled > 99900); both counters restart with each window.
SPURIOUS_WINDOW: int = 100_000  # interrupts per window
SPURIOUS_DISABLE_UNHANDLED: int = 99_900  # unhandled in one window above which the line is disabled


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Every limit a doctor rule uses; defaults follow the seed text and common practice."""

    storm_warn_rate: float = STORM_WARN_RATE  # interrupts/s of one IRQ
    storm_crit_rate: float = STORM_CRIT_RATE
    ksoftirqd_warn_pct: float = 10.0  # "ksoftirqd CPU > 10 % = alert at once"
    ksoftirqd_crit_pct: float = 50.0
    concentration_share: float = 0.8  # one CPU doing this share of a load...
    concentration_min_rate: float = 10_000.0  # ...of at least this many events/s
    softirq_cpu_pct: float = 25.0  # %softirq (from /proc/stat) that counts as busy
    idle_other_pct: float = 50.0  # ...while another CPU is at least this idle
    squeeze_warn_rate: float = 1.0  # time_squeeze per second
    drop_crit_rate: float = 1_000.0  # softnet drops per second
    # Unhandled interrupts (/proc/irq/N/spurious), judged by their share of the line's
    # interrupts during the sample (its /proc/interrupts delta); see docs/doctor.md.
    spurious_warn_share: float = 0.01  # unhandled / interrupts of the line in the sample
    spurious_warn_min_unhandled: int = 10  # unhandled interrupts in the sample, at least
    spurious_crit_share: float = 0.9  # unhandled / interrupts of the line in the sample...
    spurious_crit_min_interrupts: int = 1000  # ...of at least this many interrupts in the sample
    spurious_crit_window_fill: float = 0.9  # share of the kernel's window counted, on course for the limit
    pressure_warn_avg10: float = 10.0  # /proc/pressure/irq full avg10, percent

    # --- the causal model (analysis/causes.py); each limit's grounds are in docs/doctor.md ---
    wait_warn_pct: float = 10.0  # % of the sample a task on an interrupt-busy CPU waited runnable
    wait_crit_pct: float = 50.0
    # A task whose run + wait reaches the CPU's time outside interrupts, less this, wanted the
    # CPU throughout: the interrupts' time is counted as taken from it (docs/doctor.md).
    busy_task_slack_pct: float = 5.0
    socket_drop_warn_rate: float = 1.0  # datagrams/segments dropped at sockets per second
    nic_drop_warn_rate: float = 10.0  # rx_dropped + rx_missed_errors + rx_fifo_errors per second
    rt_hog_pct: float = 50.0  # a SCHED_FIFO/RR task running this share of a CPU (docs/doctor.md)...
    starved_wait_pct: float = 20.0  # ...while ksoftirqd of that CPU waited this share: starvation
    source_min_share: float = 0.05  # a source is named when it carries this share of its vector
    rmem_target_bytes: int = 4 << 20  # the socket receive buffer an rmem action asks for, at least
    # Estimated cost of one run of each vector (ns) when there is no trace: only the split of a
    # CPU's softirq time between vectors rests on it (scaled to /proc/stat's softirq share when
    # that is known). Orders of magnitude measured on this project's 2-CPU VM (docs/doctor.md).
    softirq_cost_ns: tuple[tuple[str, int], ...] = (
        ("HI", 1_000),
        ("TIMER", 2_000),
        ("NET_TX", 1_000),
        ("NET_RX", 1_000),
        ("BLOCK", 5_000),
        ("IRQ_POLL", 5_000),
        ("TASKLET", 2_000),
        ("SCHED", 2_000),
        ("HRTIMER", 1_000),
        ("RCU", 1_000),
    )
    hardirq_cost_ns: int = 1_000  # one hard interrupt, entry to exit
