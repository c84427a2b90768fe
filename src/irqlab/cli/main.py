"""`irqlab` entry point: parse the command line, import the subcommand lazily, map errors."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from irqlab import __version__

# Exit codes, one table for every command (documented in docs/cli.md).
EXIT_OK = 0
EXIT_WARNING = 1  # doctor: worst finding is a warning
EXIT_CRITICAL = 2  # doctor: worst finding is critical
EXIT_ERROR = 3  # bad input, missing file, no permission, environment
EXIT_USAGE = 64  # bad command line (EX_USAGE)
EXIT_INTERRUPTED = 130

# name -> (module, one-line help). Modules are imported only when their command runs, so
# `irqlab --help` does not load numpy.
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("irqlab.cli.doctor", "sample the machine and explain its interrupt load"),
    "top": ("irqlab.cli.top", "IRQ x CPU and softirq x CPU rates, ksoftirqd and softnet per CPU"),
    "snapshot": ("irqlab.cli.snapshot", "capture /proc and /sys interrupt files into a directory"),
    "diff": ("irqlab.cli.diff", "deltas and rates between two captures"),
    "sim": ("irqlab.cli.sim", "run a scenario on the simulated kernel (softirqs, ksoftirqd, NAPI)"),
    "watch": ("irqlab.cli.watch", "detect interrupt storms, alert, mitigate with rollback"),
    "trace": ("irqlab.cli.trace", "handler durations, softirq raise->run latency and ksoftirqd share from tracepoints"),
    "export": ("irqlab.cli.export", "serve Prometheus metrics of the interrupt path (127.0.0.1:9717)"),
    "record": ("irqlab.cli.record", "append snapshots to an SQLite recording (retention by age or size)"),
    "report": ("irqlab.cli.report", "one self-contained HTML report with plots from a recording"),
    "latency": ("irqlab.cli.latency", "timer wake-up latency per CPU, latency budgets PASS/FAIL, cause of each breach"),
    "map": ("irqlab.cli.map", "IRQ <-> device <-> queue <-> CPU <-> NUMA node, RPS/XPS, and which affinities can move"),
    "isolation": ("irqlab.cli.isolation", "for CPUs meant to be quiet: what may land there, what did, its cause and the fix"),
    "plan": ("irqlab.cli.plan", "a placement of NIC queue IRQs, RPS and XPS over housekeeping CPUs, as editable TOML"),
    "apply": ("irqlab.cli.apply", "apply a placement plan through the journal (dry run unless --yes), or --undo it"),
}

# Long-running commands: a client or hook that hangs up must not end them (see main()).
DAEMONS = frozenset({"export", "watch", "record"})

EPILOG = """\
examples:
  irqlab doctor                      explain this machine's interrupt load (3 s sample)
  irqlab top 1 5                     five 1-second reports of the busiest IRQs and softirqs
  irqlab snapshot -o /tmp/a          capture the interrupt files into /tmp/a
  irqlab diff /tmp/a /tmp/b --json   rates between two captures, as JSON

exit codes: 0 healthy/ok, 1 warning, 2 critical, 3 error, 64 usage
"""


class Parser(argparse.ArgumentParser):
    """argparse with our usage exit code (64, not argparse's 2, which means critical)."""

    command_parser: argparse.ArgumentParser | None = None  # the chosen command's own, fully built

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")  # "irqlab sim: error: ..."
        sys.exit(EXIT_USAGE)


def build_parser(command: str | None) -> Parser:
    parser = Parser(
        prog="irqlab",
        description="See, measure, explain and defend a Linux machine's interrupt path.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"irqlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, (module, help_text) in COMMANDS.items():
        if name == command:
            mod = importlib.import_module(module)
            parser.command_parser = sub.add_parser(name, help=help_text, **mod.PARSER_KW)
            mod.add_arguments(parser.command_parser)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _command_of(argv: list[str]) -> str | None:
    for arg in argv:
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def main(argv: list[str] | None = None) -> int:
    """Run irqlab; returns the exit code."""
    if argv is None:  # the process's own command line: a one-shot command may end it at once
        rc, fast = _main(list(sys.argv[1:]))
        if fast:
            _exit_now(rc)
        return rc
    return _main(list(argv))[0]


def _exit_now(rc: int) -> None:
    """End the process without tearing the interpreter down.

    What a read-only one-shot command leaves at the end is only memory: at 1152 CPUs `irqlab
    diff` holds about 40 MB of arrays and ~300 modules, and freeing them one by one (plus
    OpenBLAS's shutdown) costs about 0.1 x an lsirq run on this VM kind. Standard streams are
    flushed first; a closed pipe there ends quietly, as SIGPIPE would.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        rc = rc or EXIT_ERROR
    os._exit(rc)


def _main(argv: list[str]) -> tuple[int, bool]:
    """(exit code, whether the process may end without tearing down: a read-only one-shot
    command that finished, per its module's `fast_exit(args)`)."""
    command = _command_of(argv)
    parser = build_parser(command)
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the command's own parser: its usage line, not the list of commands
        (parser.command_parser or parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE, False
    args.argv = tuple(argv)  # the command line as given, for a line that says how to run it again
    if args.command not in DAEMONS or getattr(args, "once", False):
        # A closed pipe (`irqlab top | head`) ends a printing command quietly, as Unix tools
        # do. Never a daemon: there EPIPE comes from a scrape client or an exec hook that hung
        # up, and the signal would kill `export` (exit -13, which systemd's Restart=on-failure
        # does not restart) or `watch --apply` with its mitigations still written. Python
        # ignores SIGPIPE, so they see BrokenPipeError on that one socket or pipe instead.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    from irqlab.errors import IrqlabError, UsageError

    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        rc = int(module.run(args) or 0)
        return rc, bool(getattr(module, "fast_exit", lambda a: False)(args))
    except UsageError as exc:
        print(f"irqlab {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE, False
    except IrqlabError as exc:
        print(f"irqlab {args.command}: {exc}", file=sys.stderr)
        return EXIT_ERROR, False
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED, False
    except BrokenPipeError:
        # A daemon's own stdout was closed (`irqlab watch --json | head -1`): it has already
        # restored what it changed on the way out; stop quietly, as a printing command would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_ERROR, False
