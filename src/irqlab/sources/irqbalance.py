"""irqbalance: whether it runs, which CPUs and IRQs it is told to leave alone.

irqbalance (github.com/Irqbalance/irqbalance) rewrites /proc/irq/N/smp_affinity every 10 s.
What it leaves alone:

- CPUs: IRQBALANCE_BANNED_CPULIST (a CPU list, irqbalance >= 1.8), else IRQBALANCE_BANNED_CPUS
  (a hex mask, older and deprecated), read with getenv() from its environment (cputree.c,
  setup_banned_cpus()); systemd fills that environment from EnvironmentFile=, which is
  /etc/default/irqbalance (Debian, Ubuntu) or /etc/sysconfig/irqbalance (Fedora, RHEL, SUSE).
  When neither is set, irqbalance >= 1.7 bans the isolated and nohz_full CPUs
  (/sys/devices/system/cpu/{isolated,nohz_full}) by itself.
- IRQs: `-i N` / `--banirq=N` for each, `-m MOD` / `--banmod=MOD` for all IRQs of a driver module,
  on its command line (the unit passes $IRQBALANCE_ARGS).

The running daemon's own environment (/proc/PID/environ, root only) and command line are what it
obeys now; the file is what it will obey after a restart. Both are read; neither is trusted more
than the other to say what the operator meant, so a difference is reported.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from irqlab.cpulist import format_cpulist, parse_cpulist, parse_cpumask
from irqlab.errors import MissingSource, ParseError, SourceError
from irqlab.sources.cmdline import sys_cpu_list
from irqlab.sources.fs import Roots, read_bytes, read_text
from irqlab.sources.procs import pids_named

CONFIG_FILES = ("default/irqbalance", "sysconfig/irqbalance")  # under /etc
BANNED_CPULIST = "IRQBALANCE_BANNED_CPULIST"
BANNED_CPUS = "IRQBALANCE_BANNED_CPUS"


@dataclass(frozen=True, slots=True)
class Bans:
    """What one origin (the config file, or the running daemon) tells irqbalance to leave alone."""

    origin: str  # "/etc/default/irqbalance", "pid 812"
    banned_cpus: tuple[int, ...] | None  # None: neither variable is set (irqbalance's default applies)
    banned_by: str  # "IRQBALANCE_BANNED_CPULIST=2-3"; "" when not set
    banned_irqs: tuple[int, ...] = ()
    banned_modules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Irqbalance:
    pid: int | None  # the running daemon; None when none runs
    running: Bans | None  # its environment and arguments (None: not running, or not readable)
    config: Bans | None  # the environment file (None: there is none)
    default_banned: tuple[int, ...]  # the isolated and nohz_full CPUs: what it bans when nothing is set
    notes: tuple[str, ...] = field(default=())

    def banned(self) -> tuple[tuple[int, ...], str]:
        """The CPUs the daemon keeps IRQs off, and what says so: the running one's bans, else the file's."""
        for b in (self.running, self.config):
            if b is not None and b.banned_cpus is not None:
                return b.banned_cpus, f"{b.banned_by} ({b.origin})"
        if self.default_banned:
            return self.default_banned, "its default: the isolated and nohz_full CPUs (no IRQBALANCE_BANNED_CPULIST set)"
        return (), "no IRQBALANCE_BANNED_CPULIST or IRQBALANCE_BANNED_CPUS set, and no isolated or nohz_full CPU"


def parse_env_file(text: str, path: str) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them: comments, blank lines, quotes, `export`."""
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith(("#", ";")):
            continue
        if s.startswith("export "):
            s = s[len("export "):].lstrip()
        key, sep, value = s.partition("=")
        if not sep or not key.strip().replace("_", "").isalnum():
            raise ParseError(path, n, line, "expected KEY=VALUE")
        try:
            words = shlex.split(value, comments=False)
        except ValueError:
            raise ParseError(path, n, value, "unbalanced quotes") from None
        out[key.strip()] = " ".join(words)
    return out


def parse_environ(data: bytes) -> dict[str, str]:
    """/proc/PID/environ: NUL-separated KEY=VALUE."""
    out: dict[str, str] = {}
    for item in data.split(b"\0"):
        key, sep, value = item.decode("utf-8", "replace").partition("=")
        if sep:
            out[key] = value
    return out


def parse_args(argv: list[str], path: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Banned IRQs (-i N, --banirq=N, --banirq N) and modules (-m MOD, --banmod=MOD) in irqbalance's arguments."""
    irqs: list[int] = []
    mods: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        for long, short, sink in (("--banirq", "-i", "irq"), ("--banmod", "-m", "mod")):
            value = None
            if arg.startswith(long + "="):
                value = arg[len(long) + 1:]
            elif arg in (long, short) and i + 1 < len(argv):
                i += 1
                value = argv[i]
            elif arg.startswith(short) and len(arg) > 2 and not arg.startswith("--"):
                value = arg[2:]
            if value is None:
                continue
            if sink == "mod":
                mods.append(value)
            elif value.isdigit():
                irqs.append(int(value))
            else:
                raise ParseError(path, 1, value, f"{long} takes an IRQ number")
        i += 1
    return tuple(sorted(set(irqs))), tuple(mods)


def bans_of(env: dict[str, str], argv: list[str], origin: str, path: str) -> Bans:
    """What an environment and argument list ban. IRQBALANCE_BANNED_CPULIST wins over _CPUS."""
    irqs, mods = parse_args(argv, path)
    if env.get(BANNED_CPULIST, "").strip():
        value = env[BANNED_CPULIST].strip()
        return Bans(origin, parse_cpulist(value, path), f"{BANNED_CPULIST}={value}", irqs, mods)
    if env.get(BANNED_CPUS, "").strip():
        value = env[BANNED_CPUS].strip()
        return Bans(origin, parse_cpumask(value, path), f"{BANNED_CPUS}={value}", irqs, mods)
    return Bans(origin, None, "", irqs, mods)


def read_irqbalance(roots: Roots, etc: Path = Path("/etc")) -> Irqbalance:
    """irqbalance on the machine under roots (its config under etc): whether it runs and what it bans."""
    notes: list[str] = []
    config = None
    for rel in CONFIG_FILES:
        path = etc / rel
        try:
            text = read_text(path)
        except MissingSource:
            continue
        env = parse_env_file(text, str(path))
        config = bans_of(env, shlex.split(env.get("IRQBALANCE_ARGS", "")), str(path), str(path))
        break
    pids = pids_named(roots, "irqbalance")
    running = None
    if pids:
        pid = pids[0]
        try:
            env = parse_environ(read_bytes(roots.proc(str(pid), "environ")))
            argv = [a.decode("utf-8", "replace") for a in read_bytes(roots.proc(str(pid), "cmdline")).split(b"\0") if a]
            running = bans_of(env, argv[1:], f"pid {pid}", str(roots.proc(str(pid), "environ")))
        except SourceError as exc:
            notes.append(f"{exc}; the running irqbalance's bans are unknown (root reads them)")
    default = tuple(sorted(set(sys_cpu_list(roots, "isolated")) | set(sys_cpu_list(roots, "nohz_full"))))
    if running is not None and config is not None and running.banned_cpus != config.banned_cpus:
        notes.append(f"the running irqbalance bans CPUs {format_cpulist(running.banned_cpus or ()) or 'none'} but "
                     f"{config.origin} says {format_cpulist(config.banned_cpus or ()) or 'none'}: it was started before the file changed")
    return Irqbalance(pids[0] if pids else None, running, config, default, tuple(notes))
