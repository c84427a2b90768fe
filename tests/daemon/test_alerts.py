"""Alerts that go wrong: hooks that hang up, bad webhook URLs, secrets in URLs, names with escapes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from irqlab.daemon.alerts import Alerter, log_line, post_json, run_hook
from irqlab.daemon.config import AlertConfig

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


class _Hook(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": json.loads(body)})
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    _Hook.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def event(name: str = "eth0-rx-0") -> dict:
    return {"event": "storm_start", "storm": {"key": "irq:41", "name": name, "value": 2e6, "unit": "interrupts/s"}}


def exec_counter(tmp_path: Path) -> tuple[tuple[str, ...], Path]:
    out = tmp_path / "runs"
    script = tmp_path / "count.py"
    script.write_text(f"import sys; sys.stdin.read(); open({str(out)!r}, 'a').write('x')\n")
    return (sys.executable, str(script)), out


def test_an_alert_that_raises_never_stops_the_later_alerts(tmp_path):
    """A URL with a space made urllib raise InvalidURL on the worker thread, which died: every
    later alert, webhook and exec hook alike, was dropped without a word."""
    argv, runs = exec_counter(tmp_path)
    errors: list[str] = []
    cfg = AlertConfig(syslog=False, webhook="http://127.0.0.1:9/alert me?token=T0KEN", webhook_retries=0, exec=argv)
    a = Alerter(cfg, on_error=errors.append)
    for _ in range(3):
        a.alert(event())
    a.close(timeout_s=30)
    assert runs.read_text() == "xxx"  # the hook ran for every alert
    assert len(errors) == 3 and all(e.startswith("webhook http://127.0.0.1:9/alert") for e in errors), errors
    assert not any("T0KEN" in e for e in errors)


def test_an_alert_whose_error_handler_raises_still_lets_the_next_one_through(tmp_path):
    argv, runs = exec_counter(tmp_path)

    def on_error(message):
        raise RuntimeError("sink closed")

    a = Alerter(AlertConfig(syslog=False, exec=(*argv, "--x"), webhook="http://127.0.0.1:9/?"), on_error=on_error)
    a.alert(event())
    a.alert(event())
    a.close(timeout_s=30)
    assert runs.read_text() == "xx"


def test_webhook_credentials_go_in_an_authorization_header_and_never_in_an_error(hook_server):
    port = hook_server.server_port
    err = post_json(f"http://ops:hunter%32@127.0.0.1:{port}/alert?token=T0KEN&x=1", event(), 2.0, 1, sleep=lambda s: None)
    assert err is not None and "HTTP 500" in err
    assert "hunter" not in err and "T0KEN" not in err and "***" in err, err
    assert len(_Hook.seen) == 2 and _Hook.seen[0]["path"] == "/alert?token=T0KEN&x=1"
    assert _Hook.seen[0]["auth"] == "Basic " + base64.b64encode(b"ops:hunter2").decode()


def test_an_unreachable_webhook_with_a_token_is_redacted_in_the_error():
    err = post_json("http://127.0.0.1:9/alert?token=T0KEN", event(), 0.5, 0, sleep=lambda s: None)
    assert err is not None and "T0KEN" not in err and "token=***" in err


def test_the_log_line_shows_control_characters_of_a_name_as_escapes():
    line = log_line(event("eth0\x1b]0;owned\x07\x1b[2J\x9b1m"))
    assert "\x1b" not in line and "\x07" not in line and "\x9b" not in line
    assert "name=eth0\\x1b]0;owned\\x07\\x1b[2J\\x9b1m" in line


def test_a_hook_error_shows_control_characters_of_its_stderr_as_escapes(tmp_path):
    err = run_hook((sys.executable, "-c", "import sys; sys.stderr.write('bad\\x1b[31m'); raise SystemExit(2)"), event())
    assert err is not None and "exit 2" in err and "\x1b" not in err and "bad\\x1b[31m" in err


def test_watch_check_refuses_a_webhook_url_with_a_space(tmp_path):
    cfg = tmp_path / "w.toml"
    cfg.write_text('[alert]\nwebhook = "https://ops:hunter2@hooks.example/alert me"\n')
    os.chmod(cfg, 0o644)
    r = subprocess.run([sys.executable, "-m", "irqlab", "watch", "--check", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=60, cwd=REPO)
    assert r.returncode == 3 and len(r.stderr.strip().splitlines()) == 1 and "alert.webhook" in r.stderr, r.stderr
    assert "hunter2" not in r.stderr
