"""Time and rate helpers; time inside irqlab is integer nanoseconds."""

from __future__ import annotations

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
NS_PER_US = 1_000


def seconds(ns: int) -> float:
    """Nanoseconds to float seconds (for display and rates only)."""
    return ns / NS_PER_S


def format_rate(rate_per_s: float | None) -> str:
    """A rate in events/s, short: 950, 12.3k, 1.20M; '-' for none."""
    if rate_per_s is None:
        return "-"
    r = abs(rate_per_s)
    if r >= 1e9:
        return f"{rate_per_s / 1e9:.2f}G"
    if r >= 1e6:
        return f"{rate_per_s / 1e6:.2f}M"
    if r >= 1e4:
        return f"{rate_per_s / 1e3:.1f}k"
    if r >= 100 or rate_per_s == int(rate_per_s):
        return f"{rate_per_s:.0f}"
    return f"{rate_per_s:.1f}"


def format_pct(pct: float | None) -> str:
    """A percentage with one decimal; '-' for none."""
    return "-" if pct is None else f"{pct:.1f}"
