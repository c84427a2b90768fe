"""HTML report: content from a recording, and the page as headless Chromium renders it."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import builders as b
from irqlab.analysis.thresholds import Thresholds
from irqlab.cli.main import main
from irqlab.model.histogram import Histogram
from irqlab.outputs.recorder import Recorder
from irqlab.outputs.report import render_report
from irqlab.sources.fs import Roots
from irqlab.sources.sampler import take_snapshot
from servers import missing_tool

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"
CHROMIUM = "/usr/bin/chromium"


def storm_recording() -> list:
    """Six samples 1 s apart on 2 CPUs; IRQ 40 storms in the 3rd and 4th intervals."""
    snaps, n40, net = [], 0, 0
    for i, step in enumerate([0, 100, 1000, 300_000, 400_000, 100]):
        n40 += step
        net += 50 * i
        s = b.snapshot(
            float(i),
            interrupts=b.interrupts([0, 1], [("40", "eth0-TxRx-0", [n40, 0]), ("LOC", "Local timer interrupts", [1000 * i, 1000 * i])]),
            softirqs=b.softirqs([0, 1], {"NET_RX": [net, 0], "TIMER": [500 * i, 500 * i]}),
            softnet=b.softnet([(0, net, i // 3, i), (1, 0, 0, 0)]),
            tasks=(b.ksoftirqd(0, int(0.2e9) * i), b.ksoftirqd(1, int(0.01e9) * i)),
        )
        snaps.append(dataclasses.replace(s, wall_time=1_800_000_000.0 + i))
    return snaps


@pytest.fixture(scope="module")
def storm_page() -> str:
    """The report of storm_recording() with one latency histogram (rendered once: matplotlib is slow)."""
    h = Histogram(1_000, 100_000)
    h.add_many(np.array([1_500, 2_500, 40_000]))
    return render_report(storm_recording(), [(1.8e9, "timer_latency", {"cpu": "0"}, h)], Thresholds())


def test_report_shows_findings_storm_table_and_one_image_per_plot(storm_page):
    page = storm_page
    assert page.count("<img ") == 7  # 2 heat maps, IRQs, softirqs, ksoftirqd, softnet, 1 histogram
    assert "interrupt storm" in page  # the doctor's finding over the whole recording
    storm_rows = re.findall(r"<tr><td>[^<]*</td><td>40</td>", page)
    assert len(storm_rows) == 2  # two storm intervals, not the quiet ones
    assert "<script" not in page and "http" not in page.split("<body>")[1]  # self-contained


def test_a_single_sample_report_says_there_are_no_rates():
    page = render_report(storm_recording()[:1])
    assert "no rates" in page and "<img " not in page


@pytest.mark.slow
def test_report_command_writes_html_from_a_recording(tmp_path, capsys):
    db = tmp_path / "r.db"
    with Recorder(db) as rec:
        for ab in "ab":
            rec.append(take_snapshot(Roots.capture(CAPTURES / "vm-udpflood" / ab)))
    assert main(["report", str(db), "-o", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().count("<img ") >= 5


def test_report_of_a_missing_recording_is_one_line_and_exit_3(tmp_path, capsys):
    assert main(["report", str(tmp_path / "no.db"), "-o", str(tmp_path / "r.html")]) == 3
    assert capsys.readouterr().err.count("\n") == 1


# --- headless Chromium, driven over the DevTools protocol with a tiny stdlib WebSocket ---


class DevTools:
    """Just enough of RFC 6455 and CDP to navigate, evaluate, and screenshot."""

    def __init__(self, ws_url: str) -> None:
        m = re.match(r"ws://([^:/]+):(\d+)(/.*)", ws_url)
        host, port, path = m.group(1), int(m.group(2)), m.group(3)
        self.sock = socket.create_connection((host, port), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head.split(b"\r\n")[0], head
        self.next_id = 0
        self.events: list[dict] = []

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            buf += chunk
        return buf

    def _recv(self) -> dict:
        data = b""
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._recv_exact(8))[0]
            data += self._recv_exact(n)
            if b0 & 0x80:  # FIN
                return json.loads(data)

    def send(self, method: str, **params) -> dict:
        self.next_id += 1
        payload = json.dumps({"id": self.next_id, "method": method, "params": params}).encode()
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
        self.sock.sendall(head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))
        while True:
            msg = self._recv()
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg["result"]
            self.events.append(msg)

    def wait_for(self, method: str, timeout_s: float = 20) -> None:
        end = time.monotonic() + timeout_s
        while not any(e.get("method") == method for e in self.events):
            assert time.monotonic() < end, f"no {method}"
            self.events.append(self._recv())


@pytest.fixture
def chromium(tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        missing_tool("chromium")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
         "--window-size=1280,1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        port = None
        for line in proc.stderr:
            m = re.search(r"DevTools listening on ws://127.0.0.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
                break
        assert port, "chromium did not open a DevTools port"
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(t for t in targets if t["type"] == "page")
        yield DevTools(page["webSocketDebuggerUrl"])
    finally:
        proc.kill()
        proc.wait(timeout=10)
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)


@pytest.mark.live
@pytest.mark.slow
def test_report_renders_in_headless_chromium_without_errors_and_with_every_image(tmp_path, chromium, storm_page):
    html_path = tmp_path / "report.html"
    html_path.write_text(storm_page)
    cdp = chromium
    for domain in ("Page", "Runtime", "Log"):
        cdp.send(f"{domain}.enable")
    cdp.send("Page.navigate", url=html_path.as_uri())
    cdp.wait_for("Page.loadEventFired")
    images = json.loads(cdp.send("Runtime.evaluate", expression="JSON.stringify(Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight]))")["result"]["value"])
    errors = [e for e in cdp.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    shot = base64.b64decode(cdp.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
    (tmp_path / "report.png").write_bytes(shot)
    if os.environ.get("IRQLAB_KEEP_SCREENSHOT"):
        Path(os.environ["IRQLAB_KEEP_SCREENSHOT"]).write_bytes(shot)
    assert errors == []
    assert len(images) == 7 and all(done and w > 100 and hgt > 50 for done, w, hgt in images), images
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
    # The control: the same checks do see a console error and a broken image.
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><img src="data:image/png;base64,AAAA"><script>console.error("boom")</script>')
    cdp.events.clear()
    cdp.send("Page.navigate", url=bad.as_uri())
    cdp.wait_for("Page.loadEventFired")
    widths = cdp.send("Runtime.evaluate", expression="Array.from(document.images).map(i => i.naturalWidth).join()")["result"]["value"]
    assert widths == "0"
    assert any(e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error" for e in cdp.events)
