"""Every journal in these tests registers its knobs in a private run directory, not /run/irqlab."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def private_run_dir(tmp_path_factory, monkeypatch):
    """IRQLAB_RUN_DIR for this test (and the irqlab processes it starts): a fresh knob registry."""
    run = tmp_path_factory.mktemp("run")
    monkeypatch.setenv("IRQLAB_RUN_DIR", str(run))
    return run
