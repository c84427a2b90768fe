"""Frozen values that every source, the simulator and every analysis share; no I/O here."""
