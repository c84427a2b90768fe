"""The published-result experiments of docs/VALIDATION.md, at the quick (small) scale."""

from __future__ import annotations

import pytest

from irqlab.sim import validate


@pytest.mark.slow
def test_receive_livelock_and_the_napi_flat_curve_are_reproduced():
    livelock, flat = validate.livelock(quick=True)
    assert livelock.passed, livelock.detail
    assert flat.passed, flat.detail


@pytest.mark.slow
def test_dumazet_2016_pre_4_9_starves_the_receiver_and_4_9_does_not():
    r = validate.dumazet(quick=True)
    assert r.passed, r.detail


@pytest.mark.slow
def test_max_restart_trades_ksoftirqd_handoffs_against_task_starvation():
    r = validate.max_restart(quick=True)
    assert r.passed, r.detail
