"""`irqlab export`: serve Prometheus metrics of the interrupt path (127.0.0.1:9717 by default)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from irqlab.analysis.thresholds import STORM_CRIT_RATE, STORM_WARN_RATE
from irqlab.cli import common

DEFAULT_LISTEN = "127.0.0.1:9717"

PARSER_KW = dict(
    description="Serve Prometheus metrics at http://ADDR:PORT/metrics: hard IRQs (top K plus an "
    "`other` row), softirqs, ksoftirqd CPU seconds, softnet processed/dropped/squeezed, "
    "hard-IRQ/softirq CPU time, storm state, and each source's scrape duration and success. "
    "The files are read when Prometheus scrapes, not in the background. Listens on 127.0.0.1 "
    "only unless --listen says otherwise; TLS and basic auth come from an exporter-toolkit web "
    "config file (--web.config.file). At most 32 connections are served at once, each with a "
    "5 s read timeout and 15 s in all.",
    epilog="""\
examples:
  irqlab export                              serve on 127.0.0.1:9717
  irqlab export --listen 0.0.0.0:9717 --web.config.file /etc/irqlab/web.yml
                                             serve on every address, with TLS and basic auth
  irqlab export --web.config.file web.yml    web.yml (exporter-toolkit format), for example:
                                               tls_server_config:
                                                 cert_file: server.crt
                                                 key_file: server.key
                                               basic_auth_users:
                                                 prometheus: $2b$12$...  (bcrypt hash)
  irqlab export --top-k 50 --rollup-devices  50 rows; eth0-TxRx-N become one row "eth0"
  irqlab export --per-cpu --include 'eth|nvme'
                                             per-CPU series, only matching IRQs
  irqlab export --once --procfs A/proc --sysfs A/sys
                                             print one scrape of a capture and exit
""",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)

# Sources read on each scrape, in order; interrupts is the only one a snapshot cannot lack.
SOURCES: tuple[str, ...] = ("interrupts", "softirqs", "stat", "softnet", "tasks")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="ADDR:PORT", help=f"address to serve on (default {DEFAULT_LISTEN}; [::1]:PORT for IPv6)")
    p.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="FILE",
        help="YAML file with tls_server_config (cert_file, key_file, client_auth_type, client_ca_file, "
        "min_version) and basic_auth_users (user: bcrypt hash), as Prometheus exporters read it",
    )
    p.add_argument("--per-cpu", action="store_true", help="add a cpu label to IRQ and softirq series (N CPUs times more series)")
    p.add_argument("--top-k", type=int, default=20, metavar="N", help="IRQ rows exported on their own; the rest are summed as irq=\"other\" (default 20)")
    p.add_argument("--include", metavar="REGEX", help="export only IRQs whose number or name matches")
    p.add_argument("--exclude", metavar="REGEX", help="leave out IRQs whose number or name matches")
    p.add_argument("--rollup-devices", action="store_true", help="sum a device's queue IRQs (eth0-TxRx-0..N) into one row")
    p.add_argument("--storm-warn", type=float, default=STORM_WARN_RATE, metavar="RATE", help=f"interrupts/s of one IRQ that count as a storm (default {STORM_WARN_RATE:.0f})")
    p.add_argument("--storm-crit", type=float, default=STORM_CRIT_RATE, metavar="RATE", help=f"interrupts/s of one IRQ that are a critical storm (default {STORM_CRIT_RATE:.0f})")
    p.add_argument("--no-tasks", action="store_true", help="skip the /proc/PID scan for ksoftirqd (faster on hosts with many processes)")
    p.add_argument("--once", action="store_true", help="print one scrape in the text exposition format and exit")
    p.add_argument(
        "--latency-probe",
        metavar="CPUS",
        help="also run the timer-latency probe on these CPUs (e.g. 0-1) in 5 s windows and export "
        "irqlab_timer_latency_seconds{cpu} (SCHED_FIFO 95 when root)",
    )
    p.add_argument(
        "--bpf-histograms",
        action="store_true",
        help="add real histograms (handler duration, softirq duration and raise-to-run latency) "
        "aggregated in the kernel by BPF programs (root or CAP_BPF+CAP_PERFMON)",
    )
    common.add_roots(p)


def parse_listen(text: str) -> tuple[str, int]:
    """ADDR:PORT (IPv6 as [ADDR]:PORT) -> (addr, port)."""
    from irqlab.errors import UsageError

    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise UsageError(f"--listen {text!r}: expected ADDR:PORT, e.g. 127.0.0.1:9717")
    return host.strip("[]"), int(port)


def _regex(text: str | None, option: str):
    import re

    from irqlab.errors import UsageError

    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise UsageError(f"{option} {text!r}: not a regular expression ({exc})") from None


# The sources the exporter reports a success and duration series for (irqlab_source_*).
EXPORTED_SOURCES = ("interrupts", "softirqs", "stat", "softnet", "tasks")


def _say_status(status, recovered: bool) -> None:
    """Say once on stderr when a source starts failing (and when it recovers), not per scrape."""
    if status.success:
        print(f"irqlab export: {status.source} is readable again", file=sys.stderr, flush=True)
    else:
        print(f"irqlab export: {status.error} (serving the other sources)", file=sys.stderr, flush=True)


def scrape_source(roots, tasks: bool = True, clock: Callable[[], int] = time.monotonic_ns):
    """scrape(): one Sampler sample per scrape, each source on its own, so one failing file never fails the scrape."""
    from irqlab.outputs.prometheus import ScrapeResult
    from irqlab.sources.sampler import Sampler, SampleSpec

    # Nothing is required and nothing is strict: a failure is a series of its own. Host and
    # sysctls do not change while the exporter runs; /proc/irq/N is not exported.
    spec = SampleSpec(irqinfo=False, tasks=tasks, strict=False, required=(), refresh={"host": float("inf"), "sysctl": float("inf")})
    sampler = Sampler(roots, spec, clock=clock, on_status=_say_status)

    def scrape():
        snap = sampler.take()
        return ScrapeResult(snap, tuple(s for s in snap.statuses if s.source in EXPORTED_SOURCES))

    return scrape


def build_registry(args: argparse.Namespace, scrape=None, histogram_providers=()):
    """A fresh registry holding one IrqlabCollector configured from args."""
    from prometheus_client import CollectorRegistry

    from irqlab.analysis.thresholds import Thresholds
    from irqlab.errors import UsageError
    from irqlab.outputs.prometheus import ExportOptions, IrqlabCollector

    if args.top_k < 0:
        raise UsageError("--top-k must be 0 or more")
    if not 0 < args.storm_warn <= args.storm_crit:
        raise UsageError("--storm-warn must be positive and not above --storm-crit")
    options = ExportOptions(
        per_cpu=args.per_cpu,
        top_k=args.top_k,
        include=_regex(args.include, "--include"),
        exclude=_regex(args.exclude, "--exclude"),
        rollup_devices=args.rollup_devices,
        thresholds=Thresholds(storm_warn_rate=args.storm_warn, storm_crit_rate=args.storm_crit),
    )
    scrape = scrape or scrape_source(common.roots_of(args), tasks=not args.no_tasks)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(IrqlabCollector(scrape, options, histogram_providers))
    return registry


def run(args: argparse.Namespace) -> int:
    host, port = parse_listen(args.listen)
    web = _web_config(args)  # checked before anything starts: one line on a bad file
    tracer, providers = _bpf_providers(args)
    probe = _latency_probe(args)
    if probe is not None:
        providers.append(_probe_provider(probe))
    try:
        return _serve(args, host, port, build_registry(args, histogram_providers=providers), web)
    finally:
        if tracer is not None:
            tracer.close()  # detaches and frees the programs (the kernel also does on exit)
        if probe is not None:
            probe.stop()


def _latency_probe(args: argparse.Namespace):
    """A started ContinuousProbe for --latency-probe CPUS, else None."""
    if not args.latency_probe:
        return None
    from irqlab.cpulist import parse_cpulist
    from irqlab.errors import ParseError, UsageError
    from irqlab.probe.continuous import ContinuousProbe

    try:
        cpus = parse_cpulist(args.latency_probe, "--latency-probe")
    except ParseError as exc:
        raise UsageError(f"--latency-probe {args.latency_probe!r}: {exc.message}") from None
    probe = ContinuousProbe(cpus).start()
    if args.once:
        import time

        while probe.windows == 0 and probe.error is None:  # one whole window before the scrape
            time.sleep(0.2)
    return probe


def _probe_provider(probe):
    from irqlab.outputs.prometheus import NamedHistogram

    def provide():
        return [
            NamedHistogram("timer_latency", "Timer wake-up latency of irqlab's probe (deadline to wake-up).", {"cpu": str(cpu)}, h)
            for cpu, h in sorted(probe.histograms().items())
            if h.count
        ]

    return provide


def _bpf_providers(args: argparse.Namespace):
    """(tracer, [provider]) when --bpf-histograms, else (None, [])."""
    if not args.bpf_histograms:
        return None, []
    from irqlab.bpf.export_histograms import HistogramProvider
    from irqlab.sources.tasks import ksoftirqd_pids
    from irqlab.tracer.lifecycle import open_tracer

    # BpfUnavailable (one clear line, exit 3) when BPF is not permitted.
    tracer = open_tracer("bpf", ksoftirqd_pids=ksoftirqd_pids(common.roots_of(args)))
    return tracer, [HistogramProvider(tracer)]


def _web_config(args: argparse.Namespace):
    """The --web.config.file settings (no TLS, no users without it)."""
    from irqlab.daemon.webconfig import WebConfig, load_web_config

    return load_web_config(args.web_config_file) if args.web_config_file else WebConfig()


def exposure_warning(host: str, web) -> str | None:
    """The warning for a non-loopback address served without TLS or without basic auth."""
    from irqlab.daemon.httpserve import is_loopback

    missing = [what for what, have in (("TLS", web.tls is not None), ("basic auth", bool(web.users))) if not have]
    if not missing or is_loopback(host):
        return None
    return (f"warning: listening on {host}, which is not a loopback address, without {' or '.join(missing)}: "
            "whoever reaches the port reads this machine's devices and load (see --web.config.file)")


def _serve(args: argparse.Namespace, host: str, port: int, registry, web) -> int:
    from prometheus_client import generate_latest

    from irqlab.errors import IrqlabError

    if args.once:
        sys.stdout.write(generate_latest(registry).decode())
        return 0
    import signal
    import threading

    from irqlab.daemon.httpserve import make_server

    try:
        server = make_server(host, port, registry, tls=web.ssl_context(), users=web.users)
    except OSError as exc:
        raise IrqlabError(f"cannot listen on {args.listen}: {exc.strerror or exc}") from None
    warning = exposure_warning(host, web)
    if warning:
        print(f"irqlab export: {warning}", file=sys.stderr, flush=True)
    thread = threading.Thread(target=server.serve_forever, name="irqlab-http", daemon=True)
    thread.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scheme = "https" if web.tls is not None else "http"
    auth = ", basic auth" if web.users else ""
    print(f"irqlab export: serving {scheme}://{args.listen}/metrics{auth}", file=sys.stderr, flush=True)
    try:
        while not stop.wait(3600):
            pass
    finally:
        server.shutdown()
        server.server_close()
    return 0
