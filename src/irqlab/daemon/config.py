"""The `irqlab watch` TOML config: parsed, validated, one clear error naming the bad key.

Every key is known (the tables below, in irqlab/schema.py's terms): a typo ("wran = 5") is an
error with a "did you mean", not a silently ignored line. Times take units ("500ms"). When
irqlab runs as root it refuses a config file, or an exec hook, that a non-root user could
have written (sources/trust.py): whoever can edit them could otherwise run code or rewrite
kernel knobs as root.
"""

from __future__ import annotations

import os
import re
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from irqlab.analysis.plan import ACTIONS, DEFAULT_LADDER, PlanConfig
from irqlab.analysis.storm import CLASSES, Baseline, DetectorConfig, Rule
from irqlab.schema import (
    Array,
    At,
    Bool,
    CpuList,
    Duration,
    Float,
    Int,
    Map,
    SchemaError,
    Str,
    Strings,
    Table,
    Values,
    load_toml,
    read,
)
from irqlab.sources.trust import refusal, root_refusal, untrusted
from irqlab.units import printable


class ConfigError(SchemaError):
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


# --- the schema --------------------------------------------------------------------------------

RULE = {"match": Str(None, max_len=256), "warn": Float(None, 0, 1e12), "act": Float(None, 0, 1e12)}
BASELINE = {
    "enabled": Bool(True),
    "window": Int(60, 3, 100_000),
    "min_samples": Int(10, 1, 100_000),
    "k": Float(8.0, 0.1, 1000),
    "min_rate": Float(1000.0, 0, 1e12),
}
# The single-rule tables of [detect] and the DetectorConfig field each fills.
SINGLE_RULES = {"cpu": "cpu", "irqtime": "irqtime_pct", "softnet_drop": "softnet_drop",
                "softnet_squeeze": "softnet_squeeze", "spurious": "spurious"}
DETECT = {
    "irq": Array(RULE, default=None),
    "softirq": Array(RULE, default=None),
    **{name: Table(RULE) for name in SINGLE_RULES},
    "baseline": Table(BASELINE),
    "start_intervals": Int(2, 1, 1000),
    "end_intervals": Int(3, 1, 1000),
    "end_ratio": Float(0.5, 0.01, 1.0),
}
RUNGS = {"warn": Strings(None, choices=ACTIONS), "act": Strings(None, choices=ACTIONS)}
MITIGATE = {
    "sacrificial_cpus": CpuList(()),
    "protected": Strings(()),
    "napi_defer_hard_irqs": Int(2, 0, 2**31 - 1),
    "gro_flush_timeout_ns": Int(200_000, 0, 10**9),
    "rx_coalesce_usecs": Int(50, 0, 100_000),
    "device": Array({"match": Str("", max_len=64), "netns": Str("", max_len=64)}),
}
ALERT = {
    "syslog": Bool(True),
    "webhook": Str("", max_len=2048),
    "webhook_timeout": Duration(2.0, "s", 0.1, 60),
    "webhook_retries": Int(3, 0, 10),
    "exec": Strings(()),
}
CONFIG = {
    "interval": Duration(1.0, "s", 0.05, 3600),
    "hold_down": Duration(30.0, "s", 0, 86_400),
    "journal": Str(DEFAULT_JOURNAL, max_len=1024),
    "detect": Table(DETECT),
    "ladder": Map(Table(RUNGS), keys=CLASSES, what="storm class"),
    "mitigate": Table(MITIGATE),
    "alert": Table(ALERT),
}


def _rule(v: Values, default: Rule) -> Rule:
    r = Rule(*(d if x is None else x for x, d in zip((v["match"], v["warn"], v["act"]), astuple(default))))
    if r.warn is not None and r.act is not None and r.act < r.warn:
        raise v.fail("act", f"must not be below warn ({r.act:g} < {r.warn:g})")
    return r


def _detect(v: Values) -> DetectorConfig:
    d = DetectorConfig()
    b = v["baseline"]
    if b["min_samples"] > b["window"]:
        raise b.fail("min_samples", "must not exceed baseline.window")

    def rules(name: str) -> tuple[Rule, ...]:
        return getattr(d, name) if v[name] is None else tuple(_rule(t, Rule("*", None, None)) for t in v[name])

    single: dict[str, Any] = {attr: _rule(v[name], getattr(d, attr)) for name, attr in SINGLE_RULES.items()}
    return DetectorConfig(
        irq=rules("irq"),
        softirq=rules("softirq"),
        **single,
        baseline=Baseline(b["enabled"], b["window"], b["min_samples"], b["k"], b["min_rate"]),
        start_intervals=v["start_intervals"],
        end_intervals=v["end_intervals"],
        end_ratio=v["end_ratio"],
    )


def _ladder(v: dict[str, Values]) -> dict[str, dict[str, tuple[str, ...]]]:
    out = {cls: dict(rungs) for cls, rungs in DEFAULT_LADDER.items()}
    for cls, rungs in v.items():
        out[cls].update({rung: actions for rung, actions in rungs.items() if actions is not None})
    return out


def _mitigate(v: Values, ladder) -> tuple[PlanConfig, tuple[DeviceMatch, ...]]:
    plan = PlanConfig(
        ladder=ladder,
        protected=v["protected"],
        sacrificial_cpus=v["sacrificial_cpus"],
        napi_defer_hard_irqs=v["napi_defer_hard_irqs"],
        gro_flush_timeout_ns=v["gro_flush_timeout_ns"],
        rx_coalesce_usecs=v["rx_coalesce_usecs"],
    )
    for d in v["device"]:
        if not d["match"]:
            raise d.fail("match", "must name a device or a pattern like eth*")
    return plan, tuple(DeviceMatch(d["match"], d["netns"]) for d in v["device"])


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


def _alert(v: Values) -> AlertConfig:
    hook = v["webhook"]
    problem = webhook_problem(hook) if hook else None
    if problem:
        raise v.fail("webhook", f"{problem}, not {redact_url(hook)!r}")
    argv = v["exec"]
    if argv and not os.path.isabs(argv[0]):
        raise v.fail("exec", f"the program must be an absolute path (no shell, no PATH lookup), not {argv[0]!r}")
    return AlertConfig(syslog=v["syslog"], webhook=hook, webhook_timeout_s=v["webhook_timeout"] / 1e9,
                       webhook_retries=v["webhook_retries"], exec=argv)


def parse_config(data: Any, origin: str = "<config>") -> WatchConfig:
    """A validated WatchConfig from parsed TOML, or ConfigError naming the key."""
    v = read(data, CONFIG, At(ConfigError, origin))
    if not v["journal"]:
        raise v.fail("journal", "must be a file path")
    detect = _detect(v["detect"])
    plan, devices = _mitigate(v["mitigate"], _ladder(v["ladder"]))
    return WatchConfig(v["interval"] / 1e9, v["hold_down"] / 1e9, v["journal"], detect, plan, devices,
                       _alert(v["alert"]), origin)


# Programs that run code named by their arguments (or inline): as an exec hook's argv[0] they
# need a script file argument, which is then checked like the hook itself.
INTERPRETER = re.compile(
    r"(?:(?:ba|da|z|k|c|tc|fi|a|ya|po|r|rb|mk)?sh|busybox|env|python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node(?:js)?|php[0-9.]*|"
    r"lua[0-9.]*|tclsh[0-9.]*|[gmn]?awk|sed|java|deno|bun|Rscript|pwsh|osascript|xargs|nice|nohup|timeout|"
    r"setsid|stdbuf|sudo|su|runuser|setpriv|chroot|ionice|taskset|chrt|unshare|nsenter)"
)


def check_trusted(path: str, what: str) -> None:
    """As root, refuse a file that a user other than root could have written or replaced:
    the file and every directory above it, as written and after symlinks, must be root's
    and not group- or world-writable."""
    p = Path(os.path.abspath(path))
    real = Path(os.path.realpath(p))
    for q in dict.fromkeys([p, *p.parents, real, *real.parents]):
        try:
            why = untrusted(os.lstat(q))
        except OSError as exc:
            raise ConfigError(f"{q}: cannot check {what} {path}: {exc.strerror}") from None
        if why:
            role = what if q in (p, real) else f"directory {q} of {what}"
            raise ConfigError(f"{q}: {refusal(role, why)}")


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
            f"{origin}: alert.exec: {argv[0]} is an interpreter and no argument is a script file irqlab can "
            "check; refusing inline code or a looked-up module while running as root (give it the script's path)"
        )


def load_config(path: str | os.PathLike[str]) -> WatchConfig:
    """Read, check and parse a config file; every problem is one ConfigError."""
    p = Path(path)
    cfg = parse_config(load_toml(p, ConfigError, what="config file", check=root_refusal), str(p))
    if cfg.alert.exec:
        check_exec(cfg.alert.exec, str(p))
    return cfg
