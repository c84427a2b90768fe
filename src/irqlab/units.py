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


def printable(s: str) -> str:
    """`s` safe for a terminal: control and other non-printing characters shown as escapes.

    Names come from files of other machines (an IRQ action name in /proc/interrupts can hold
    any byte but NUL and newline), so ESC, other C0/C1 codes, DEL and invisible format
    characters (e.g. U+202E) are shown as \\xNN / \\uNNNN instead of being sent to the
    terminal. Printable text, the common case, is returned unchanged.
    """
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in s)


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
