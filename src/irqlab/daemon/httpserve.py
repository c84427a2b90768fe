"""The exporter's HTTP server: bounded connections, timeouts, optional TLS and basic auth.

prometheus_client's start_http_server runs one thread per connection with no timeout: 300
clients that send half a request hold 300 threads for ever. This server:

- serves at most `max_connections` at once; a connection over the cap is answered
  `503 Service Unavailable` (plain HTTP) or closed (TLS) at once, in the accepting thread,
  without reading it;
- gives each read and write `read_timeout_s`, and each connection `deadline_s` in all (a
  client that trickles one byte per second is cut off at the deadline, not kept);
- does the TLS handshake in the connection's own thread, under those limits, so a client that
  stalls in the handshake never blocks accept();
- checks HTTP basic auth against bcrypt hashes (cached after the first success, as the
  exporter-toolkit does, so a scrape does not pay bcrypt's cost every time);
- treats a client that hangs up (EPIPE, ECONNRESET, a timeout) as that connection's end, not
  the server's: nothing is printed and the process goes on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import socket
import ssl
import threading
import time
from http.server import ThreadingHTTPServer

from prometheus_client.exposition import MetricsHandler

MAX_CONNECTIONS = 32
READ_TIMEOUT_S = 5.0
DEADLINE_S = 15.0

# Checked when the user is unknown, so that a wrong user name costs as long as a wrong password.
_DUMMY_HASH = b"$2b$10$" + b"." * 53

_OVER_CAP = b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 34\r\nConnection: close\r\n\r\ntoo many connections, retry later\n"


class BasicAuth:
    """user -> bcrypt hash; remembers credentials that passed (by SHA-256, never in clear)."""

    def __init__(self, users: dict[str, bytes]) -> None:
        self.users = dict(users)
        self._ok: set[bytes] = set()
        self._lock = threading.Lock()

    def check(self, header: str | None) -> bool:
        import bcrypt

        if not header or not header.startswith("Basic "):
            return False
        try:
            user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        hashed = self.users.get(user)
        key = hashlib.sha256(b"%s\0%s\0%s" % (user.encode(), password.encode(), hashed or b"")).digest()
        with self._lock:
            if hashed is not None and key in self._ok:
                return True
        try:
            ok = bcrypt.checkpw(password.encode(), hashed or _DUMMY_HASH) and hashed is not None
        except ValueError:
            ok = False
        if ok:
            with self._lock:
                self._ok.add(key)
        return ok


class MetricsRequestHandler(MetricsHandler):
    """prometheus_client's handler behind basic auth; a client's hang-up is not an error."""

    auth: BasicAuth | None = None

    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's naming
        if self.auth is not None and not self.auth.check(self.headers.get("Authorization")):
            body = b"Unauthorized\n"
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="irqlab"')
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802
        self.send_error(405)

    def do_POST(self) -> None:  # noqa: N802
        self.send_error(405)


class ExporterServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a connection cap, timeouts and TLS in the worker threads."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], handler, *, tls: ssl.SSLContext | None = None,
                 max_connections: int = MAX_CONNECTIONS, read_timeout_s: float = READ_TIMEOUT_S,
                 deadline_s: float = DEADLINE_S) -> None:
        self.address_family = address_family(addr[0], addr[1])
        self.tls = tls
        self.read_timeout_s = read_timeout_s
        self.deadline_s = deadline_s
        self._slots = threading.BoundedSemaphore(max_connections)
        self._active: dict[socket.socket, float] = {}  # raw socket -> monotonic deadline
        self._active_lock = threading.Lock()
        self._closing = threading.Event()
        super().__init__(addr, handler)
        self._janitor = threading.Thread(target=self._reap, name="irqlab-http-deadline", daemon=True)
        self._janitor.start()

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # [::] takes IPv4 too
        super().server_bind()

    # --- the cap: in the accepting thread ---------------------------------------------

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        with self._active_lock:
            self._active[request] = time.monotonic() + self.deadline_s
        try:
            super().process_request(request, client_address)  # starts the worker thread
        except BaseException:
            self._release(request)
            raise

    def _refuse(self, request: socket.socket) -> None:
        try:
            request.setblocking(False)
            if self.tls is None:
                request.send(_OVER_CAP)
            # What the client already sent, read off so that close() ends with FIN, not a
            # reset that could discard the 503 before the client reads it.
            request.recv(65536)
        except OSError:
            pass
        self.shutdown_request(request)

    def _release(self, request: socket.socket) -> None:
        with self._active_lock:
            self._active.pop(request, None)
        self._slots.release()

    # --- one connection: in its own thread --------------------------------------------

    def process_request_thread(self, request, client_address) -> None:
        conn = request
        try:
            request.settimeout(self.read_timeout_s)
            if self.tls is not None:
                conn = self.tls.wrap_socket(request, server_side=True)  # the handshake, under the timeout
            self.finish_request(conn, client_address)
        except (OSError, ssl.SSLError, ValueError):
            pass  # the client hung up, stalled or spoke no TLS: its connection ends, nothing else
        except Exception:
            self.handle_error(conn, client_address)
        finally:
            self.shutdown_request(conn)
            self._release(request)

    def _reap(self) -> None:
        """Cut connections past their deadline (a blocked read or write returns at once)."""
        while not self._closing.wait(0.5):
            now = time.monotonic()
            with self._active_lock:
                late = [s for s, t in self._active.items() if now >= t]
            for s in late:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def server_close(self) -> None:
        self._closing.set()
        super().server_close()


def address_family(host: str, port: int) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 address or a name that resolves only to one, else AF_INET."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return socket.AF_INET  # bind() then says what is wrong with the name
    families = [info[0] for info in infos]
    return socket.AF_INET if socket.AF_INET in families else families[0]


def is_loopback(host: str) -> bool:
    """True when host is a loopback address (127.0.0.0/8, ::1) or a name of only such."""
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addrs = {str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    except socket.gaierror:
        return False
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)


def make_server(host: str, port: int, registry, *, tls: ssl.SSLContext | None = None,
                users: dict[str, bytes] | None = None, **limits) -> ExporterServer:
    """A bound ExporterServer for registry (serve_forever() it on a thread)."""
    handler = type("IrqlabMetricsHandler", (MetricsRequestHandler,), {
        "registry": registry,
        "auth": BasicAuth(users) if users else None,
    })
    return ExporterServer((host, port), handler, tls=tls, **limits)
