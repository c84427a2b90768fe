"""The `irqlab watch` TOML config: parsed, validated, one clear error naming the bad key.

Every key is known: a typo ("wran = 5") is an error, not a silently ignored line. When
irqlab runs as root it refuses a config file, or an exec hook, that a non-root user could
have written (owned by another user, or group/world-writable): whoever can edit them could
otherwise run code or rewrite kernel knobs as root.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irqlab.analysis.plan import ACTIONS, DEFAULT_LADDER, PlanConfig
from irqlab.analysis.storm import CLASSES, Baseline, DetectorConfig, Rule
from irqlab.cpulist import parse_cpulist
from irqlab.errors import IrqlabError, ParseError
from irqlab.units import printable


def _bare(name: str) -> str:
    """A TOML key as it would be written: bare when it can be, else quoted (one line, always)."""
    import json
    import re

    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


class ConfigError(IrqlabError):
    """A config file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class DeviceMatch:
    """Network devices polling/coalescing may touch: name pattern, namespace pattern."""

    match: str
    netns: str = ""  # "" = irqlab's own namespace; else fnmatch over `ip netns` names


@dataclass(frozen=True, slots=True)
class AlertConfig:
    syslog: bool = True  # /dev/log when present, else stderr
    webhook: str = ""
    webhook_timeout_s: float = 2.0
    webhook_retries: int = 3
    exec: tuple[str, ...] = ()  # argv, run without a shell; event JSON on stdin


# The journal of `irqlab watch --apply` when the config names none (and of `--restore`).
DEFAULT_JOURNAL = "/var/lib/irqlab/watch.journal"


@dataclass(frozen=True, slots=True)
class WatchConfig:
    interval_s: float = 1.0
    hold_down_s: float = 30.0  # after storm_end, before the originals are written back
    journal: str = DEFAULT_JOURNAL
    detect: DetectorConfig = DetectorConfig()
    plan: PlanConfig = PlanConfig()
    devices: tuple[DeviceMatch, ...] = ()
    alert: AlertConfig = AlertConfig()
    source: str = "<defaults>"


class _Keys:
    """Walks one table, taking keys by name; leftover keys are errors."""

    def __init__(self, table: Any, where: str, origin: str) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: {where or 'top level'}: must be a table")
        self.table = dict(table)
        self.where = where
        self.origin = origin

    def key(self, name: str) -> str:
        name = _bare(name)
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str, message: str) -> ConfigError:
        return ConfigError(f"{self.origin}: key {self.key(name)}: {message}")

    def num(self, name: str, default: float | None, lo: float = 0.0, hi: float = 1e12, integer: bool = False) -> Any:
        if name not in self.table:
            return default
        v = self.table.pop(name)
        ok_type = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok_type or not (math.isfinite(v) and lo <= v <= hi):
            kind = "an integer" if integer else "a number"
            raise self.fail(name, f"must be {kind} from {lo:g} to {hi:g}, not {v!r}")
        return int(v) if integer else float(v)

    def boolean(self, name: str, default: bool) -> bool:
        if name not in self.table:
            return default
        v = self.table.pop(name)
        if not isinstance(v, bool):
            raise self.fail(name, f"must be true or false, not {v!r}")
        return v

    def string(self, name: str, default: str, max_len: int = 4096) -> str:
        if name not in self.table:
            return default
        v = self.table.pop(name)
        if not isinstance(v, str) or len(v) > max_len or "\x00" in v:
            raise self.fail(name, f"must be a string, not {v!r}")
        return v

    def strings(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if name not in self.table:
            return default
        v = self.table.pop(name)
        if not isinstance(v, list) or not all(isinstance(x, str) and x and "\x00" not in x for x in v):
            raise self.fail(name, f"must be a list of non-empty strings, not {v!r}")
        return tuple(v)

    def sub(self, name: str) -> _Keys:
        return _Keys(self.table.pop(name, {}), self.key(name), self.origin)

    def done(self) -> None:
        if self.table:
            raise self.fail(sorted(self.table)[0], "unknown key")


def _rule(k: _Keys, default: Rule) -> Rule:
    r = Rule(k.string("match", default.match, 256), k.num("warn", default.warn), k.num("act", default.act))
    if r.warn is not None and r.act is not None and r.act < r.warn:
        raise k.fail("act", f"must not be below warn ({r.act:g} < {r.warn:g})")
    k.done()
    return r


def _rules(k: _Keys, name: str, default: tuple[Rule, ...]) -> tuple[Rule, ...]:
    if name not in k.table:
        return default
    items = k.table.pop(name)
    if not isinstance(items, list):
        raise k.fail(name, "must be an array of tables ([[...]])")
    return tuple(_rule(_Keys(t, f"{k.key(name)}[{i}]", k.origin), Rule("*", None, None)) for i, t in enumerate(items))


def _detect(k: _Keys) -> DetectorConfig:
    d = DetectorConfig()
    single = {name: _rule(k.sub(name), getattr(d, attr)) if name in k.table else getattr(d, attr)
              for name, attr in (("cpu", "cpu"), ("irqtime", "irqtime_pct"), ("softnet_drop", "softnet_drop"),
                                 ("softnet_squeeze", "softnet_squeeze"), ("spurious", "spurious"))}
    b = k.sub("baseline")
    baseline = Baseline(
        enabled=b.boolean("enabled", True),
        window=b.num("window", 60, 3, 100_000, integer=True),
        min_samples=b.num("min_samples", 10, 1, 100_000, integer=True),
        k=b.num("k", 8.0, 0.1, 1000),
        min_rate=b.num("min_rate", 1000.0),
    )
    b.done()
    if baseline.min_samples > baseline.window:
        raise k.fail("baseline.min_samples", "must not exceed baseline.window")
    cfg = DetectorConfig(
        irq=_rules(k, "irq", d.irq),
        softirq=_rules(k, "softirq", d.softirq),
        cpu=single["cpu"],
        irqtime_pct=single["irqtime"],
        softnet_drop=single["softnet_drop"],
        softnet_squeeze=single["softnet_squeeze"],
        spurious=single["spurious"],
        baseline=baseline,
        start_intervals=k.num("start_intervals", 2, 1, 1000, integer=True),
        end_intervals=k.num("end_intervals", 3, 1, 1000, integer=True),
        end_ratio=k.num("end_ratio", 0.5, 0.01, 1.0),
    )
    k.done()
    return cfg


def _ladder(k: _Keys) -> dict[str, dict[str, tuple[str, ...]]]:
    out = {cls: dict(rungs) for cls, rungs in DEFAULT_LADDER.items()}
    for cls in list(k.table):
        if cls not in CLASSES:
            raise k.fail(cls, f"unknown storm class (one of {', '.join(CLASSES)})")
        rungs = k.sub(cls)
        for rung in ("warn", "act"):
            actions = rungs.strings(rung, out[cls][rung])
            bad = [a for a in actions if a not in ACTIONS]
            if bad:
                raise rungs.fail(rung, f"unknown action {bad[0]!r} (one of {', '.join(ACTIONS)})")
            out[cls][rung] = actions
        rungs.done()
    return out


def _mitigate(k: _Keys, ladder) -> tuple[PlanConfig, tuple[DeviceMatch, ...]]:
    cpus_text = k.string("sacrificial_cpus", "", 256)
    try:
        cpus = parse_cpulist(cpus_text, "sacrificial_cpus")
    except ParseError as exc:
        raise k.fail("sacrificial_cpus", f"not a CPU list like 0-3,8 ({exc.message})") from None
    plan = PlanConfig(
        ladder=ladder,
        protected=k.strings("protected", ()),
        sacrificial_cpus=cpus,
        napi_defer_hard_irqs=k.num("napi_defer_hard_irqs", 2, 0, 2**31 - 1, integer=True),
        gro_flush_timeout_ns=k.num("gro_flush_timeout_ns", 200_000, 0, 10**9, integer=True),
        rx_coalesce_usecs=k.num("rx_coalesce_usecs", 50, 0, 100_000, integer=True),
    )
    devices = []
    items = k.table.pop("device", [])
    if not isinstance(items, list):
        raise k.fail("device", "must be an array of tables ([[mitigate.device]])")
    for i, t in enumerate(items):
        d = _Keys(t, f"{k.key('device')}[{i}]", k.origin)
        match = d.string("match", "", 64)
        if not match:
            raise d.fail("match", "must name a device or a pattern like eth*")
        devices.append(DeviceMatch(match, d.string("netns", "", 64)))
        d.done()
    k.done()
    return plan, tuple(devices)


def redact_url(url: str) -> str:
    """url for a message: user:password@ and query values become ***, control characters escapes.

    Webhook URLs often carry their credential (https://user:token@host/, ?token=...); nothing
    irqlab prints or logs may repeat it.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    ends = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    authority, tail = rest[: min(ends, default=len(rest))], rest[min(ends, default=len(rest)) :]
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    tail, hash_, fragment = tail.partition("#")
    path, q, query = tail.partition("?")
    if q:
        query = "&".join(part.partition("=")[0] + "=***" if "=" in part else "***" for part in query.split("&"))
    return printable(scheme + sep + authority + path + q + query + ("#***" if hash_ else ""))


def url_secrets(url: str) -> list[str]:
    """The parts of url that redact_url hides (user info, query values, fragment), longest first."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    found = []
    if parts is not None:
        userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
        found += [userinfo, *userinfo.split(":"), parts.fragment]
        found += [p.partition("=")[2] if "=" in p else p for p in parts.query.split("&")]
    return sorted({s for s in found if s}, key=len, reverse=True)


def webhook_problem(url: str) -> str | None:
    """Why url could never be POSTed to (urllib would raise on it), or None."""
    from urllib.parse import urlsplit

    if not url.isascii():
        return "must be ASCII (percent-encode the path, punycode the host)"
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return "must not contain spaces or control characters (percent-encode them: %20)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number from 0 to 65535
    except ValueError:
        return "has a bad port or host"
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if not parts.hostname:
        return "has no host"
    return None


def _alert(k: _Keys) -> AlertConfig:
    hook = k.string("webhook", "", 2048)
    problem = webhook_problem(hook) if hook else None
    if problem:
        raise k.fail("webhook", f"{problem}, not {redact_url(hook)!r}")
    argv = k.strings("exec", ())
    if argv and not os.path.isabs(argv[0]):
        raise k.fail("exec", f"the program must be an absolute path (no shell, no PATH lookup), not {argv[0]!r}")
    a = AlertConfig(
        syslog=k.boolean("syslog", True),
        webhook=hook,
        webhook_timeout_s=k.num("webhook_timeout", 2.0, 0.1, 60),
        webhook_retries=k.num("webhook_retries", 3, 0, 10, integer=True),
        exec=argv,
    )
    k.done()
    return a


def parse_config(data: Any, origin: str = "<config>") -> WatchConfig:
    """A validated WatchConfig from parsed TOML, or ConfigError naming the key."""
    k = _Keys(data, "", origin)
    interval = k.num("interval", 1.0, 0.05, 3600)
    hold_down = k.num("hold_down", 30.0, 0, 86_400)
    journal = k.string("journal", DEFAULT_JOURNAL, 1024)
    if not journal:
        raise k.fail("journal", "must be a file path")
    detect = _detect(k.sub("detect"))
    ladder = _ladder(k.sub("ladder"))
    plan, devices = _mitigate(k.sub("mitigate"), ladder)
    alert = _alert(k.sub("alert"))
    k.done()
    return WatchConfig(interval, hold_down, journal, detect, plan, devices, alert, origin)


def check_owner(path: Path, what: str) -> None:
    """As root, refuse a file another user could have written."""
    if os.geteuid() != 0:
        return
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(
            f"{path}: {what} is writable by a user other than root (owner uid {st.st_uid}, mode "
            f"{stat.S_IMODE(st.st_mode):04o}); refusing it while running as root (chown root, chmod go-w)"
        )


# Programs that run code named by their arguments (or inline): as an exec hook's argv[0] they
# need a script file argument, which is then checked like the hook itself.
INTERPRETER = re.compile(
    r"(?:(?:ba|da|z|k|c|tc|fi|a|ya|po|r|rb|mk)?sh|busybox|env|python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node(?:js)?|php[0-9.]*|"
    r"lua[0-9.]*|tclsh[0-9.]*|[gmn]?awk|sed|java|deno|bun|Rscript|pwsh|osascript|xargs|nice|nohup|timeout|"
    r"setsid|stdbuf|sudo|su|runuser|setpriv|chroot|ionice|taskset|chrt|unshare|nsenter)"
)


def _untrusted(path: Path) -> str | None:
    """Why root should not trust path (a file, a directory or a symlink), or None."""
    st = os.lstat(path)
    if st.st_uid != 0:
        return f"owner uid {st.st_uid}"
    if stat.S_ISLNK(st.st_mode):
        return None  # a link's own mode means nothing; its directory and its target are checked
    writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    # A root-owned sticky directory (/tmp, 1777) lets no one but an entry's owner rename or
    # remove it (unlink(2), EPERM), and the entry below it is checked in turn.
    if writable and not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX):
        return f"mode {stat.S_IMODE(st.st_mode):04o}"
    return None


def check_trusted(path: str, what: str) -> None:
    """As root, refuse a file that a user other than root could have written or replaced:
    the file and every directory above it, as written and after symlinks, must be root's
    and not group- or world-writable."""
    p = Path(os.path.abspath(path))
    real = Path(os.path.realpath(p))
    for q in dict.fromkeys([p, *p.parents, real, *real.parents]):
        try:
            why = _untrusted(q)
        except OSError as exc:
            raise ConfigError(f"{q}: cannot check {what} {path}: {exc.strerror}") from None
        if why:
            role = what if q in (p, real) else f"directory {q} of {what}"
            raise ConfigError(
                f"{q}: {role} is writable by a user other than root ({why}); refusing it while running "
                "as root (chown root, chmod go-w)"
            )


def check_exec(argv: tuple[str, ...], origin: str) -> None:
    """As root: argv[0] and every argument that names an existing file must be root's alone,
    and an interpreter (sh, python, env, ...) must be given such a script file."""
    if os.geteuid() != 0:
        return
    check_trusted(argv[0], "exec hook")
    files = [a for a in argv[1:] if a and os.path.exists(a)]
    for i, arg in enumerate(argv[1:], 1):
        if arg in files:
            check_trusted(arg, f"exec hook argument {i}")
    names = {os.path.basename(argv[0]), os.path.basename(os.path.realpath(argv[0]))}
    if any(INTERPRETER.fullmatch(n) for n in names) and not files:
        raise ConfigError(
            f"{origin}: key alert.exec: {argv[0]} is an interpreter and no argument is a script file irqlab can "
            "check; refusing inline code or a looked-up module while running as root (give it the script's path)"
        )


def load_config(path: str | os.PathLike[str]) -> WatchConfig:
    """Read, check and parse a config file; every problem is one ConfigError."""
    p = Path(path)
    check_owner(p, "config file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    cfg = parse_config(data, str(p))
    if cfg.alert.exec:
        check_exec(cfg.alert.exec, str(p))
    return cfg
