"""Fixtures of the `irqlab top` tests (helpers live in conftest_top.py)."""

from conftest_top import big_capture  # noqa: F401
