"""The exporter's web configuration file (`--web.config.file`): TLS and basic auth.

The format is the Prometheus exporter-toolkit's (docs/web-configuration.md of
prometheus/exporter-toolkit), so one file serves node_exporter and irqlab alike:

    tls_server_config:
      cert_file: server.crt        # paths relative to the config file's directory
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: clients.crt
      min_version: TLS12
    basic_auth_users:
      prometheus: $2b$12$...       # bcrypt hash (htpasswd -nBC 12 "" | tr -d ':\\n')

Like the toolkit (which decodes with yaml.UnmarshalStrict), an unknown key is an error, and so
is a toolkit key irqlab does not implement (cipher_suites, ...): silently serving without a
setting the operator asked for would be worse than refusing to start. Every problem is one
WebConfigError line naming the file and the key.
"""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from irqlab.errors import IrqlabError
from irqlab.sources.trust import check_root_owned


class WebConfigError(IrqlabError):
    """A web config file that cannot be used; the message names the file and the key."""


# exporter-toolkit's client_auth_type values -> ssl verify modes. RequestClientCert and
# RequireAnyClientCert ask for a certificate without verifying it, which Python's ssl module
# cannot do; they are refused rather than silently verified or ignored.
CLIENT_AUTH: dict[str, ssl.VerifyMode] = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Keys of the toolkit's format that irqlab does not implement (refused, not ignored).
UNSUPPORTED = {
    "tls_server_config": ("cipher_suites", "curve_preferences", "prefer_server_cipher_suites", "client_allowed_sans", "cert", "key"),
    "": ("http_server_config", "rate_limit"),
}
# A bcrypt hash as htpasswd -B and Python's bcrypt write it: $2a$/$2b$/$2y$, cost, 53 chars.
BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str | None = None


@dataclass(frozen=True, slots=True)
class WebConfig:
    """What `--web.config.file` asks for; no TLS and no users when absent."""

    tls: TlsConfig | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    source: str = "<none>"

    def ssl_context(self) -> ssl.SSLContext | None:
        """A server SSLContext, or None without TLS; a bad cert or key is one WebConfigError."""
        if self.tls is None:
            return None
        t = self.tls
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = TLS_VERSIONS[t.min_version]
        if t.max_version:
            ctx.maximum_version = TLS_VERSIONS[t.max_version]
        try:
            ctx.load_cert_chain(t.cert_file, t.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(f"{self.source}: tls_server_config: cannot load cert_file {t.cert_file} "
                                 f"with key_file {t.key_file}: {_reason(exc)}") from None
        if t.client_ca_file is not None:
            try:
                ctx.load_verify_locations(cafile=t.client_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise WebConfigError(f"{self.source}: tls_server_config: cannot load client_ca_file "
                                     f"{t.client_ca_file}: {_reason(exc)}") from None
        ctx.verify_mode = CLIENT_AUTH[t.client_auth_type]
        return ctx


def _reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return getattr(exc, "strerror", None) or str(exc)


def _fail(origin: str, key: str, message: str) -> WebConfigError:
    return WebConfigError(f"{origin}: key {key}: {message}" if key else f"{origin}: {message}")


def _table(value: Any, origin: str, key: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(origin, key, "must be a mapping")
    return dict(value)


def _leftover(table: dict, origin: str, where: str) -> None:
    for name in sorted(table, key=str):
        key = f"{where}.{name}" if where else str(name)
        if name in UNSUPPORTED.get(where, ()):
            raise _fail(origin, key, "is part of the exporter-toolkit format but not supported by irqlab")
        raise _fail(origin, key, "unknown key")


def _path(table: dict, name: str, base: Path, origin: str, where: str) -> Path | None:
    v = table.pop(name, None)
    if v is None or v == "":
        return None
    if not isinstance(v, str) or "\x00" in v:
        raise _fail(origin, f"{where}.{name}", f"must be a file path, not {v!r}")
    p = base / v  # relative to the config file, as the toolkit does
    if not p.is_file():
        raise _fail(origin, f"{where}.{name}", f"{p}: no such file")
    return p


def _choice(table: dict, name: str, choices, default, origin: str, where: str):
    v = table.pop(name, None)
    if v is None or v == "":
        return default
    if v not in choices:
        raise _fail(origin, f"{where}.{name}", f"must be one of {', '.join(choices)}, not {v!r}")
    return v


def _tls(table: dict, base: Path, origin: str) -> TlsConfig | None:
    where = "tls_server_config"
    if not table:
        return None
    cert = _path(table, "cert_file", base, origin, where)
    key = _path(table, "key_file", base, origin, where)
    if cert is None or key is None:
        raise _fail(origin, where, "needs both cert_file and key_file")
    ca = _path(table, "client_ca_file", base, origin, where)
    # The toolkit's default: verify client certificates when a CA is given, else ask for none.
    auth = _choice(table, "client_auth_type", tuple(CLIENT_AUTH), "RequireAndVerifyClientCert" if ca else "NoClientCert", origin, where)
    if CLIENT_AUTH[auth] != ssl.CERT_NONE and ca is None:
        raise _fail(origin, f"{where}.client_auth_type", f"{auth} needs client_ca_file")
    lo = _choice(table, "min_version", tuple(TLS_VERSIONS), "TLS12", origin, where)
    hi = _choice(table, "max_version", tuple(TLS_VERSIONS), None, origin, where)
    if hi is not None and TLS_VERSIONS[hi] < TLS_VERSIONS[lo]:
        raise _fail(origin, f"{where}.max_version", f"{hi} is below min_version {lo}")
    _leftover(table, origin, where)
    return TlsConfig(cert, key, auth, ca, lo, hi)


def _users(table: dict, origin: str) -> dict[str, bytes]:
    users: dict[str, bytes] = {}
    for user, hashed in table.items():
        key = f"basic_auth_users.{user}"
        if not isinstance(user, str) or not user or ":" in user or not user.isprintable():
            raise _fail(origin, key, "a user name must be printable text without ':'")
        # The hash itself is a secret of sorts (offline guessing): never quoted back.
        if not isinstance(hashed, str) or not BCRYPT_HASH.fullmatch(hashed):
            raise _fail(origin, key, "must be a bcrypt hash ($2b$..., 60 characters; htpasswd -nBC 12 USER)")
        users[user] = hashed.encode()
    return users


def parse_web_config(data: Any, origin: str, base: Path) -> WebConfig:
    """A validated WebConfig from parsed YAML; file paths are taken relative to base."""
    top = _table(data, origin, "")
    tls = _tls(_table(top.pop("tls_server_config", None), origin, "tls_server_config"), base, origin)
    users = _users(_table(top.pop("basic_auth_users", None), origin, "basic_auth_users"), origin)
    _leftover(top, origin, "")
    cfg = WebConfig(tls, users, origin)
    cfg.ssl_context()  # a certificate that does not load is an error at start, not at the first scrape
    return cfg


def check_not_writable_by_others(path: Path, what: str) -> None:
    """As root, refuse a file that a user other than root could have written."""
    check_root_owned(path, what, WebConfigError)


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """Read and validate a web config file; every problem is one WebConfigError."""
    import yaml

    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise WebConfigError(f"{p}: cannot read web config: {exc.strerror}") from None
    check_not_writable_by_others(p, "web config file")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise WebConfigError(f"{p}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise WebConfigError(f"{p}: not valid YAML{where}: {problem}") from None
    cfg = parse_web_config(data, str(p), p.parent)
    if cfg.tls is not None:
        for f, what in ((cfg.tls.key_file, "TLS key_file"), (cfg.tls.cert_file, "TLS cert_file"), (cfg.tls.client_ca_file, "client_ca_file")):
            if f is not None:
                check_not_writable_by_others(f, what)
    return cfg
