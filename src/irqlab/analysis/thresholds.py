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
