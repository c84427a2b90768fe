"""Helpers for simulator story tests: build a Machine from a small TOML-shaped dict."""

from __future__ import annotations

import pytest

from irqlab.sim.machine import Machine
from irqlab.sim.scenario import parse_scenario


@pytest.fixture
def machine():
    def build(raw: dict) -> Machine:
        return Machine(parse_scenario(raw, "test"))

    return build
