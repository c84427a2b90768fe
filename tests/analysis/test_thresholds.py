"""One set of storm limits: the doctor's, watch's default rule and every command's defaults."""

from __future__ import annotations

import argparse
import importlib

import pytest

from irqlab.analysis.storm import DetectorConfig, Rule
from irqlab.analysis.thresholds import Thresholds


def test_watch_storms_an_irq_where_the_doctor_does():
    t = Thresholds()
    assert (t.storm_warn_rate, t.storm_crit_rate) == (100_000.0, 1_000_000.0)  # the seed's limits
    assert DetectorConfig().irq == (Rule("*", t.storm_warn_rate, t.storm_crit_rate),)


@pytest.mark.parametrize("command", ["doctor", "record", "export", "report"])
def test_a_commands_storm_options_default_to_the_doctors_limits(command):
    p = argparse.ArgumentParser()
    importlib.import_module(f"irqlab.cli.{command}").add_arguments(p)
    t = Thresholds()
    assert (p.get_default("storm_warn"), p.get_default("storm_crit")) == (t.storm_warn_rate, t.storm_crit_rate)
    text = " ".join(p.format_help().split())  # unwrapped
    assert "(default 100000)" in text and "(default 1000000)" in text
