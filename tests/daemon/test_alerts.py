"""Alerts that go wrong: hooks that hang up, bad webhook URLs, secrets in URLs, names with escapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


class FakeProc:
    """A /proc and /sys tree whose IRQ 41 fires `rate` times a second while the thread runs."""

    def __init__(self, base: Path, rate: float, name: str = "eth0-rx-0") -> None:
        self.proc, self.sys = base / "proc", base / "sys"
        self.proc.mkdir(parents=True)
        self.sys.mkdir(parents=True)
        self.rate, self.name = rate, name
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self.write()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _put(self, name: str, text: str) -> None:
        tmp = self.proc / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.proc / name)  # a reader sees the old file or the new one

    def write(self) -> None:
        t = time.monotonic() - self.t0
        n = int(self.rate * t) % 2**32
        self._put("interrupts", "           CPU0       CPU1\n"
                  f" 41: {n:10d} {0:10d}   PCI-MSI 1-edge      {self.name}\n"
                  f"LOC: {int(t * 250):10d} {int(t * 250):10d}   Local timer interrupts\n")
        self._put("uptime", f"{1000 + t:.2f} {2000 + t:.2f}\n")

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.write()

    def __enter__(self) -> FakeProc:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def watch_run(cfg: Path, fake: FakeProc, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "irqlab", "watch", "--json", "-c", str(cfg), "--procfs", str(fake.proc),
                           "--sysfs", str(fake.sys), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_an_exec_hook_that_exits_without_reading_stdin_does_not_kill_watch(tmp_path):
    """The event JSON is larger than a pipe (a 70 kB IRQ name), so writing it to a hook that
    exits without reading meets EPIPE; with SIGPIPE at its default that signal ended watch."""
    cfg = tmp_path / "w.toml"
    cfg.write_text('[alert]\nsyslog = false\nexec = ["/bin/true"]\n')
    with FakeProc(tmp_path / "root", rate=500_000, name="eth0-rx-" + "x" * 70_000) as fake:
        r = watch_run(cfg, fake, "0.2", "12")
    events = [json.loads(line)["event"] for line in r.stdout.splitlines()]
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert "storm_start" in events and events[-1] == "stop"
