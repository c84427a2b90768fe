"""The watch daemon: wires sampler, storm detector, planner, mitigator and alerts."""
