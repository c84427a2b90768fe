"""BPF maps owned by irqlab: arrays, per-CPU arrays, hashes; elements read into numpy.

A per-CPU map's lookup returns one value per *possible* CPU, each rounded up to 8 bytes
(kernel/bpf/arraymap.c bpf_percpu_array_copy, v6.18), in CPU order 0..nr_possible-1.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field

import numpy as np

from irqlab.bpf import syscall
from irqlab.cpulist import parse_cpulist

HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY = 1, 2, 5, 6
BPF_ANY = 0


def possible_cpus(path: str = "/sys/devices/system/cpu/possible") -> int:
    """Number of per-CPU slots: highest possible CPU + 1."""
    with open(path) as f:
        return max(parse_cpulist(f.read().strip())) + 1


@dataclass(slots=True)
class Map:
    """One map fd with its shape; close() (or the process exiting) frees it."""

    name: str
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    fd: int = -1
    ncpus: int = field(default_factory=possible_cpus)

    @classmethod
    def create(cls, name: str, map_type: int, key_size: int, value_size: int, max_entries: int) -> Map:
        m = cls(name, map_type, key_size, value_size, max_entries)
        m.fd = syscall.map_create(map_type, key_size, value_size, max_entries, name)
        return m

    @property
    def per_cpu(self) -> bool:
        return self.map_type in (PERCPU_HASH, PERCPU_ARRAY)

    @property
    def _slot(self) -> int:
        return (self.value_size + 7) // 8 * 8

    def _buffer(self) -> ctypes.Array:
        return ctypes.create_string_buffer(self._slot * (self.ncpus if self.per_cpu else 1))

    def _key(self, key: int) -> ctypes.Array:
        return ctypes.create_string_buffer(int(key).to_bytes(self.key_size, "little"), self.key_size)

    def lookup_u64(self, key: int) -> np.ndarray:
        """The element as u64 words: shape (ncpus, words) for per-CPU maps, (words,) otherwise."""
        buf = self._buffer()
        syscall.map_lookup(self.fd, self._key(key), buf)
        arr = np.frombuffer(buf.raw, dtype=np.uint64)
        return arr.reshape(self.ncpus, -1) if self.per_cpu else arr

    def update_u64(self, key: int, words: np.ndarray) -> None:
        """Write an element from u64 words (per-CPU maps: shape (ncpus, words))."""
        raw = np.ascontiguousarray(words, dtype=np.uint64).tobytes()
        buf = self._buffer()
        if len(raw) != len(buf):
            raise ValueError(f"map {self.name}: element is {len(buf)} bytes, got {len(raw)}")
        ctypes.memmove(buf, raw, len(raw))
        syscall.map_update(self.fd, self._key(key), buf, BPF_ANY)

    def update_bytes(self, key: int, value: bytes) -> None:
        buf = ctypes.create_string_buffer(value, len(value))
        syscall.map_update(self.fd, self._key(key), buf, BPF_ANY)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
