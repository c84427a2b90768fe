"""Alerts for storm_start / escalation / storm_end: a log line, a webhook, an exec hook.

The log line goes to syslog through /dev/log (journald reads it too) when the socket exists,
else to stderr. The webhook is an HTTP POST of the event JSON with a timeout and retries;
the exec hook is an argv run without a shell, the event JSON on its stdin. Both run on a
background thread so that a slow receiver never delays sampling; a failure is reported back
as an `error` event, never raised into the loop.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from irqlab.daemon.config import AlertConfig, redact_url, url_secrets
from irqlab.units import printable

DEV_LOG = "/dev/log"
LOG_TAG = "irqlab-watch"
# syslog priority: facility daemon (3) * 8 + severity (warning 4, notice 5, err 3)
PRIORITY = {"storm_start": 3 * 8 + 4, "escalation": 3 * 8 + 4, "storm_end": 3 * 8 + 5, "error": 3 * 8 + 3}


def log_line(event: dict) -> str:
    """One structured key=value line for syslog/journald and stderr."""
    storm = event.get("storm") or {}
    parts = [f"event={event['event']}"]
    for key in ("key", "class", "subject", "name", "level", "value", "threshold", "unit", "reason"):
        if key in storm:
            value = storm[key]
            # Names come from the machine (an IRQ's action name can hold ESC sequences):
            # control characters are shown as \xNN, never sent to a terminal or the journal.
            text = printable(f"{value:.0f}" if isinstance(value, float) else str(value))
            plain = " " not in text and '"' not in text
            parts.append(f"{key}={text if plain else _quoted(text)}")
    if "message" in event:
        parts.append(f"message={_quoted(printable(str(event['message'])))}")
    return " ".join(parts)


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class SyslogOrStderr:
    """Sends a line to /dev/log as RFC 3164 (the form journald and rsyslog accept), else stderr."""

    def __init__(self, path: str = DEV_LOG, stderr=None) -> None:
        self.path = path
        self.stderr = stderr or sys.stderr
        self.sock: socket.socket | None = None
        if os.path.exists(path):
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self.sock.connect(path)
            except OSError:
                self.sock = None

    @property
    def target(self) -> str:
        return self.path if self.sock else "stderr"

    def send(self, event: str, line: str) -> None:
        if self.sock is not None:
            msg = f"<{PRIORITY.get(event, 29)}>{LOG_TAG}[{os.getpid()}]: {line}"
            try:
                self.sock.send(msg.encode())
                return
            except OSError:
                pass
        print(f"{LOG_TAG}: {line}", file=self.stderr, flush=True)


def scrub(text: str, url: str) -> str:
    """text with every secret of url (user info, query values) replaced by ***, printable."""
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return printable(text)


def _request(url: str, data: bytes) -> urllib.request.Request:
    """A POST to url; user:password in it becomes an Authorization header (urllib would take
    it for part of the host name and put it in its error message)."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    headers = {"Content-Type": "application/json", "User-Agent": "irqlab-watch"}
    parts = urlsplit(url)
    if "@" in parts.netloc:
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        netloc = host + (f":{parts.port}" if parts.port is not None else "")
        credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        url = urlunsplit(parts._replace(netloc=netloc))
    return urllib.request.Request(url, data=data, method="POST", headers=headers)


def post_json(url: str, body: dict, timeout_s: float, retries: int, sleep=time.sleep) -> str | None:
    """POST body as JSON; None on a 2xx, else the last failure. Backs off 0.5, 1, 2 s.

    The failure names the URL without its credentials (redact_url), whatever went wrong."""
    data = json.dumps(body).encode()
    last = "not sent"
    for attempt in range(retries + 1):
        if attempt:
            sleep(min(0.5 * 2 ** (attempt - 1), 5.0))
        try:
            with urllib.request.urlopen(_request(url, data), timeout=timeout_s) as resp:
                if 200 <= resp.status < 300:
                    return None
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            # ValueError: http.client's InvalidURL and friends, for a URL that skipped the
            # config's checks; HTTPException: a reply that is not HTTP (BadStatusLine).
            last = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
    return f"webhook {redact_url(url)}: {scrub(last, url)} after {retries + 1} attempts"


def run_hook(argv: tuple[str, ...], body: dict, timeout_s: float = 10.0) -> str | None:
    """Run the hook without a shell, event JSON on stdin; None when it exits 0.

    A hook that exits without reading its stdin is fine: the write then fails with EPIPE,
    which subprocess ignores (irqlab watch keeps SIGPIPE ignored, see cli/main.py)."""
    name = printable(argv[0])
    try:
        proc = subprocess.run(list(argv), input=json.dumps(body).encode(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=timeout_s, shell=False, close_fds=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"exec hook {name}: {printable(str(exc))}"
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return f"exec hook {name}: exit {proc.returncode} {printable(tail[0])}".rstrip()
    return None


class Alerter:
    """Delivers alert events; failures come back through on_error (from the worker thread)."""

    def __init__(self, cfg: AlertConfig, on_error: Callable[[str], None], log: SyslogOrStderr | None = None) -> None:
        self.cfg = cfg
        self.on_error = on_error
        self.log = log or (SyslogOrStderr() if cfg.syslog else None)
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="irqlab-alerts", daemon=True)
        self._thread.start()

    def alert(self, event: dict) -> None:
        if self.log is not None:
            self.log.send(event["event"], log_line(event))
        if self.cfg.webhook or self.cfg.exec:
            self._queue.put(event)

    def _work(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if event is None:
                    return
                self._deliver(event)
            finally:
                self._queue.task_done()

    def _deliver(self, event: dict) -> None:
        """Send one event down every channel. Nothing that goes wrong here may end the
        worker: a dead worker would drop every later alert without a word."""
        cfg = self.cfg  # one config for the whole event, though SIGHUP may swap it meanwhile
        channels = []
        if cfg.webhook:
            channels.append(("webhook", cfg.webhook, lambda: post_json(cfg.webhook, event, cfg.webhook_timeout_s, cfg.webhook_retries)))
        if cfg.exec:
            channels.append(("exec hook", "", lambda: run_hook(cfg.exec, event)))
        for what, url, send in channels:
            try:
                error = send()
            except Exception as exc:  # noqa: BLE001 - a bug in one channel must not silence the rest
                error = f"{what} {redact_url(url) if url else printable(cfg.exec[0])}: {type(exc).__name__}: {scrub(str(exc), url)}"
            if error:
                try:
                    self.on_error(error)
                except Exception:  # noqa: BLE001, S110 - the error sink itself failed (closed stdout)
                    pass

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (bounded), then stop the worker."""
        self._queue.put(None)
        self._thread.join(timeout_s)
