"""`irqlab watch` against a real storm on this machine (root, live, slow).

load.sh floods UDP over a veth pair in two network namespaces it creates (irqlab<PID>s/c,
devices irqlab<PID>v0/v1). The test config sets NET_RX thresholds low enough that this
flood is a storm, and names exactly this run's namespace and veth (other engineers' load
runs on the same machine in namespaces of the same pattern: they must not be touched), plus
eth0 (NAPI knobs and its virtio IRQs' affinity). Every value the test may see changed is
read before and restored in `finally`, whatever irqlab did.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from irqlab.errors import IrqlabError
from irqlab.mitigate.discover import netdev_irqs
from irqlab.mitigate.napi import read_napi_config, write_napi_config
from irqlab.sources.fs import Roots
from irqlab.sources.napi import read_napis
from live_load import load, reader_priority, require_load

pytestmark = [pytest.mark.live, pytest.mark.root, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
NAPI = ("napi_defer_hard_irqs", "gro_flush_timeout")


def config(tmp_path: Path, pid: int, webhook: str, warn: int = 5000, act: int = 10000) -> Path:
    p = tmp_path / "watch.toml"
    p.write_text(f"""
interval = 1.0
hold_down = 1
journal = "{tmp_path / 'journal'}"

[detect]
start_intervals = 2
end_intervals = 2

[[detect.softirq]]
match = "NET_RX"
warn = {warn}
act = {act}

[detect.baseline]
enabled = false

[[mitigate.device]]
match = "irqlab{pid}v0"
netns = "irqlab{pid}s"

[[mitigate.device]]
match = "eth0"

[ladder.softirq]
act = ["alert", "napi", "affinity"]

[alert]
syslog = false
webhook = "{webhook}"
webhook_timeout = 2.0
webhook_retries = 2
""")
    os.chmod(p, 0o600)
    return p


def ns_read(ns: str, dev: str, attr: str) -> str | None:
    """A sysfs attribute of a device inside load.sh's namespace; None once the namespace is gone.

    Any other failure of `ip netns exec` (it makes a mount namespace and remounts /sys) is read
    once more and then raised with its own message, never taken for a missing namespace.
    """
    argv = ["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/{attr}"]
    for _ in range(2):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            return r.stdout.strip()
        if not Path("/run/netns", ns).exists():
            return None
    raise AssertionError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")


def rx_packets(ns: str, dev: str) -> int:
    """Packets the flood's receiving veth took in (its netns's sysfs)."""
    value = ns_read(ns, dev, "statistics/rx_packets")
    assert value is not None, f"{ns}/{dev} is gone: the flood stopped early"
    return int(value)


def assert_flood_ran(ns: str, dev: str, since: int) -> None:
    """This run's flood, not other load on the machine, reached the veth the test mitigates."""
    got = rx_packets(ns, dev) - since
    assert got > 10_000, f"only {got} packets on {ns}/{dev}: the flood did not run"


class Host:
    """eth0's NAPI knobs and IRQ affinities: read before, put back after, whatever happened."""

    def __init__(self) -> None:
        self.irqs = netdev_irqs(Roots(), "eth0")
        self.saved = {f"/sys/class/net/eth0/{a}": Path(f"/sys/class/net/eth0/{a}").read_text().strip() for a in NAPI}
        self.saved |= {f"/proc/irq/{i}/smp_affinity_list": Path(f"/proc/irq/{i}/smp_affinity_list").read_text().strip() for i in self.irqs}
        # From 6.13 the napi rung writes eth0's NAPI instances over netlink (napi-set), not its sysfs files.
        self.napi_ids = [n.id for n in self._napis() if n.defer_hard_irqs is not None]
        self.saved |= self._napi_values()

    @staticmethod
    def _napis():
        try:
            return read_napis(int(Path("/sys/class/net/eth0/ifindex").read_text()))
        except IrqlabError:
            return ()

    def _napi_values(self) -> dict[str, str]:
        return {f"napi:eth0:{i}:{a}": read_napi_config(None, "eth0", str(i), a) for i in self.napi_ids for a in ("defer-hard-irqs", "gro-flush-timeout")}

    def now(self) -> dict[str, str]:
        out = {p: Path(p).read_text().strip() for p in self.saved if p.startswith("/")}
        return out | self._napi_values()

    def defer_hard_irqs(self, now: dict[str, str]) -> set[str]:
        """eth0's defer-hard-irqs: its NAPI instances' where the kernel has them, else its sysfs file."""
        if self.napi_ids:
            return {now[f"napi:eth0:{i}:defer-hard-irqs"] for i in self.napi_ids}
        return {now["/sys/class/net/eth0/napi_defer_hard_irqs"]}

    def put_back(self) -> None:
        for path, value in self.saved.items():
            if path.startswith("napi:"):
                _, dev, napi_id, attr = path.split(":")
                if read_napi_config(None, dev, napi_id, attr) != value:
                    write_napi_config(None, dev, napi_id, attr, value)
            elif Path(path).read_text().strip() != value:
                Path(path).write_text(value)


class Hook(BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):
        Hook.got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass



class Watch:
    """irqlab watch as a child process, its JSON lines collected as they come."""

    def __init__(self, *args: str) -> None:
        # At SCHED_FIFO 1, as deploy/systemd/irqlab-watch.service runs it: a storm daemon that
        # the storm starves of CPU sees nothing (a SCHED_OTHER watch under this flood on both
        # CPUs was seen to print nothing after 'start' for 30 s).
        self.proc = subprocess.Popen(["chrt", "-f", "1", sys.executable, "-m", "irqlab", "watch", *args, "--json"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        self.events: list[dict] = []
        self.lock = threading.Condition()
        # The thread that reads the events runs at SCHED_FIFO 1 as well (a thread inherits
        # the policy of the thread that starts it), or the flood starves the reading side.
        with reader_priority():
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self.lock:
                self.events.append(json.loads(line))
                self.lock.notify_all()

    def wait_for(self, pred, timeout_s: float = 60.0) -> dict:
        end = time.monotonic() + timeout_s
        with self.lock:
            while True:
                hit = next((e for e in self.events if pred(e)), None)
                if hit is not None:
                    return hit
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not self.events[-1:]:
                    raise AssertionError(f"no such event; got {[e['event'] for e in self.events]}; stderr {self.proc.stderr.read() if self.proc.poll() is not None else ''}")
                self.lock.wait(min(left, 0.5))

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        time.sleep(0.1)  # let the reader thread drain stdout
        return code


def is_net_rx_start(e):
    return e["event"] == "storm_start" and e["storm"]["key"] == "softirq:NET_RX"


@pytest.fixture
def host():
    require_load()
    h = Host()
    try:
        yield h
    finally:
        h.put_back()


@pytest.fixture
def webhook():
    server = HTTPServer(("127.0.0.1", 0), Hook)
    Hook.got = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/irqlab"
    server.shutdown()
    server.server_close()


def test_a_real_udp_flood_is_detected_mitigated_and_every_change_restored(tmp_path, host, webhook):
    # The load ends when the block does; 120 s only bounds it (two daemons start, fork into
    # the namespace and restore on SIGTERM, which under this flood takes tens of seconds).
    with load("-m", "udp", "-l", "16", "-n", "2", duration=120, warmup_s=2.0) as proc:
        ns, dev = f"irqlab{proc.pid}s", f"irqlab{proc.pid}v0"
        rx0 = rx_packets(ns, dev)
        assert ns_read(ns, dev, "napi_defer_hard_irqs") == "0"
        # Dry run first: it prints the plan and writes nothing.
        dry = Watch("-c", str(config(tmp_path, proc.pid, webhook)), "1", "3")
        start = dry.wait_for(is_net_rx_start)
        assert start["interval"] <= 2, "not detected within two intervals"
        planned = dry.wait_for(lambda e: e["event"] == "action" and e.get("netns") == ns)
        assert planned["applied"] is False and planned["value"] in ("2", "200000")
        assert dry.stop() == 0
        assert ns_read(ns, dev, "napi_defer_hard_irqs") == "0" and host.now() == host.saved

        w = Watch("-c", str(config(tmp_path, proc.pid, webhook)), "--apply")
        w.wait_for(is_net_rx_start)
        w.wait_for(lambda e: e["event"] == "action" and e.get("netns") == ns and e["target"].endswith("gro_flush_timeout"))
        w.wait_for(lambda e: e["event"] == "action" and "/irq/" in e["target"])
        assert ns_read(ns, dev, "napi_defer_hard_irqs") == "2"
        assert ns_read(ns, dev, "gro_flush_timeout") == "200000"
        changed = host.now()
        assert host.defer_hard_irqs(changed) == {"2"}
        assert any(changed[p] != host.saved[p] for p in changed if "/irq/" in p)
        assert_flood_ran(ns, dev, rx0)
        # SIGTERM while the veth still exists: its knobs must come back, not be "gone".
        assert w.stop() == 0
        assert ns_read(ns, dev, "napi_defer_hard_irqs") == "0" and ns_read(ns, dev, "gro_flush_timeout") == "0"
    assert host.now() == host.saved
    restored = [e for e in w.events if e["event"] == "restore"]
    assert {e["outcome"] for e in restored} == {"restored"}
    applied = [e for e in w.events if e["event"] == "action" and e["applied"]]
    assert len(restored) == len(applied)
    assert Hook.got and Hook.got[0]["event"] == "storm_start"
    # exactly one alert per storm start, escalation and end of both runs, never one per interval
    alerts = [(e["event"], e["storm"]["key"], e["interval"]) for e in dry.events + w.events if e["event"] in ("storm_start", "storm_end", "escalation")]
    assert sorted((e["event"], e["storm"]["key"], e["interval"]) for e in Hook.got) == sorted(alerts)


def test_when_the_storm_ends_every_change_is_restored_after_the_hold_down(tmp_path, host, webhook):
    # Other engineers' floods on this machine keep NET_RX up at any threshold our own flood
    # crosses, so the storm is ended the way an operator would: SIGHUP with limits raised far
    # above the flood. The veth still exists then, so its knobs must really come back.
    with load("-m", "udp", "-l", "16", "-n", "2", duration=120, warmup_s=1.5) as proc:  # ends with the block
        ns, dev = f"irqlab{proc.pid}s", f"irqlab{proc.pid}v0"
        rx0 = rx_packets(ns, dev)
        w = Watch("-c", str(config(tmp_path, proc.pid, webhook)), "--apply")
        w.wait_for(lambda e: e["event"] == "action" and e.get("netns") == ns and e["target"].endswith("gro_flush_timeout"))
        w.wait_for(lambda e: e["event"] == "action" and "/irq/" in e["target"])
        assert ns_read(ns, dev, "gro_flush_timeout") == "200000"
        config(tmp_path, proc.pid, webhook, warn=10**9, act=10**10)
        w.proc.send_signal(signal.SIGHUP)
        w.wait_for(lambda e: e["event"] == "reload")
        end = w.wait_for(lambda e: e["event"] == "storm_end" and e["storm"]["key"] == "softirq:NET_RX")
        assert end["restore_in_s"] == 1
        w.wait_for(lambda e: e["event"] == "restore" and e.get("netns") == ns and e["target"].endswith("napi_defer_hard_irqs"))
        # restored by the storm's end, while irqlab and the flood both still run
        assert w.proc.poll() is None
        assert ns_read(ns, dev, "gro_flush_timeout") == "0" and ns_read(ns, dev, "napi_defer_hard_irqs") == "0"
        assert host.now() == host.saved
        restores = [e for e in w.events if e["event"] == "restore"]
        applied = [e for e in w.events if e["event"] == "action" and e["applied"]]
        assert len(restores) == len(applied) and {e["outcome"] for e in restores} == {"restored"}
        assert all(e["why"] == "storm softirq:NET_RX ended + hold-down 1 s" for e in restores)
        names = [e["event"] for e in w.events]
        assert names.index("storm_end") < names.index("restore")
        assert_flood_ran(ns, dev, rx0)
        assert w.stop() == 0
    assert [e for e in w.events if e["event"] == "restore"] == restores  # nothing left for shutdown


def test_sigkill_mid_mitigation_then_the_next_start_restores_from_the_journal(tmp_path, host, webhook):
    with load("-m", "udp", "-l", "16", "-n", "2", duration=120, warmup_s=1.5) as proc:  # ends with the block
        ns, dev = f"irqlab{proc.pid}s", f"irqlab{proc.pid}v0"
        rx0 = rx_packets(ns, dev)
        cfg = str(config(tmp_path, proc.pid, webhook))
        w = Watch("-c", cfg, "--apply")
        w.wait_for(lambda e: e["event"] == "action" and e.get("netns") == ns and e["target"].endswith("gro_flush_timeout"))
        w.wait_for(lambda e: e["event"] == "action" and "/irq/" in e["target"])
        assert w.stop(signal.SIGKILL) == -signal.SIGKILL
        # Killed: nothing restored yet.
        assert ns_read(ns, dev, "gro_flush_timeout") == "200000"
        assert host.now() != host.saved
        pending = [json.loads(line) for line in (tmp_path / "journal").read_text().splitlines()]
        assert any(r["op"] == "save" and r["netns"] == ns for r in pending)
        # The next start replays the journal before it samples anything.
        again = Watch("-c", cfg, "--apply", "1", "1")
        assert again.proc.wait(timeout=60) == 0
        time.sleep(0.1)  # let the reader thread drain stdout
        assert ns_read(ns, dev, "gro_flush_timeout") == "0" and ns_read(ns, dev, "napi_defer_hard_irqs") == "0"
        assert_flood_ran(ns, dev, rx0)
    assert host.now() == host.saved
    replay = [e for e in again.events if e["event"] == "restore"]
    assert replay and all(e["why"].startswith("journal replay") and e["outcome"] == "restored" for e in replay)
    assert (tmp_path / "journal").read_text() == ""
