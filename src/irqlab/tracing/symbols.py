"""Kernel function names for tasklet addresses, from /proc/kallsyms when it shows addresses."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from irqlab.errors import SourceError
from irqlab.sources.fs import read_text


class Kallsyms:
    """Sorted text symbols; empty when kptr_restrict (or no root) hides the addresses as zeros."""

    def __init__(self, addrs: np.ndarray, names: list[str]) -> None:
        self.addrs = addrs
        self.names = names

    @classmethod
    def parse(cls, text: str) -> Kallsyms:
        rows = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] in ("t", "T"):
                addr = int(parts[0], 16)
                if addr:
                    rows.append((addr, parts[2]))
        rows.sort()
        return cls(np.array([a for a, _ in rows], np.uint64), [n for _, n in rows])

    @classmethod
    def load(cls, procfs: Path = Path("/proc")) -> Kallsyms:
        try:
            return cls.parse(read_text(procfs / "kallsyms"))
        except SourceError:
            return cls(np.zeros(0, np.uint64), [])

    def lookup(self, addresses: Iterable[int]) -> dict[int, str]:
        """address (as the int64 the batch stores) -> "name" or "name+0xoff"; unknown ones left out."""
        out: dict[int, str] = {}
        if not self.names:
            return out
        for a in set(addresses):
            u = a & 0xFFFFFFFFFFFFFFFF
            i = int(np.searchsorted(self.addrs, np.uint64(u), side="right")) - 1
            if i < 0:
                continue
            off = u - int(self.addrs[i])
            out[a] = self.names[i] if off == 0 else f"{self.names[i]}+{off:#x}"
        return out
