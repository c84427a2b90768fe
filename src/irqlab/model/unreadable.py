"""Unreadable: a source the sampler could not read, for the snapshot and the network state alike."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A source the sampler could not read; shown to the user once, plainly."""

    source: str  # "softnet", "irqinfo", "tasks", ...
    path: str
    reason: str  # "missing", "permission", "parse", "error"
    message: str
