"""`irqlab export` as a server: clients that hang up, stall or flood it; TLS and basic auth.

Every test runs the real `irqlab export` process on a capture (no live /proc needed) and talks
to it over real sockets on 127.0.0.1 only, with bounded counts and timeouts.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UDP = REPO / "tests" / "fixtures" / "captures" / "vm-udpflood" / "a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exporter:
    """A running `irqlab export --listen 127.0.0.1:PORT` on the UDP-flood capture."""

    def __init__(self, *extra: str) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "irqlab", "export", "--listen", f"127.0.0.1:{self.port}",
               "--procfs", str(UDP / "proc"), "--sysfs", str(UDP / "sys"), *extra]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                pytest.fail(f"exporter exited {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        pytest.fail("exporter did not start listening")

    def threads(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
        raise AssertionError("no Threads: line")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.stderr.read()


@pytest.fixture
def exporter():
    started: list[Exporter] = []

    def start(*extra: str) -> Exporter:
        e = Exporter(*extra)
        started.append(e)
        return e

    yield start
    for e in started:
        e.stop()


def http_get(port: int, headers: str = "", timeout: float = 10.0) -> bytes:
    """One plain HTTP/1.0 GET /metrics; the whole response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET /metrics HTTP/1.0\r\nHost: x\r\n{headers}\r\n".encode())
        return read_all(s)


def read_all(s: socket.socket) -> bytes:
    chunks = []
    while True:
        data = s.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


# --- SIGPIPE -------------------------------------------------------------------------------


def test_clients_that_hang_up_mid_response_do_not_kill_the_exporter(exporter):
    """A closed connection while the exporter writes is EPIPE; with SIGPIPE at its default
    disposition that signal ends the process (exit -13), which Restart=on-failure ignores."""
    e = exporter()
    for i in range(40):
        if e.proc.poll() is not None:
            break
        try:
            s = socket.create_connection(("127.0.0.1", e.port), timeout=5)
        except ConnectionRefusedError:
            break
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        if i % 2:  # reset at once: the next write of the exporter meets the RST
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        time.sleep(0.02)
    time.sleep(0.5)
    assert e.proc.poll() is None, f"exporter died with {e.proc.returncode}"
    assert http_get(e.port).startswith(b"HTTP/1.0 200")
    assert e.stop().count("Traceback") == 0
