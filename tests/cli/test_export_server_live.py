"""A real Prometheus server scrapes `irqlab export` over TLS with basic auth (and is refused without)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

from cli.test_export_server import REPO, UDP, bcrypt_hash, free_port, make_cert, web_config
from servers import PROMETHEUS, require_prometheus, stop, wait_for

pytestmark = [pytest.mark.live, pytest.mark.slow]


def query(port: int, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as r:
        data = json.load(r)
    assert data["status"] == "success", data
    return data["data"]["result"]


def test_real_prometheus_scrapes_over_tls_with_basic_auth(tmp_path):
    require_prometheus()
    _, cert = make_cert(tmp_path, "server")
    cfg = web_config(tmp_path, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                     f"basic_auth_users:\n  prometheus: {bcrypt_hash('s3cret')}\n")
    exp_port, prom_port = free_port(), free_port()
    exporter = subprocess.Popen(
        [sys.executable, "-m", "irqlab", "export", "--listen", f"127.0.0.1:{exp_port}", "--web.config.file", str(cfg),
         "--procfs", str(UDP / "proc"), "--sysfs", str(UDP / "sys")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    job = ("  - job_name: {name}\n    scheme: https\n    tls_config: {{ca_file: '{ca}'}}\n"
           "    basic_auth: {{username: prometheus, password: '{pw}'}}\n"
           f"    static_configs: [{{{{targets: ['127.0.0.1:{exp_port}']}}}}]\n")
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n"
        + job.format(name="irqlab", ca=cert, pw="s3cret") + job.format(name="wrong", ca=cert, pw="guess")
    )
    prom = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for("a successful scrape", lambda: query(prom_port, 'up{job="irqlab"} == 1'))
        wait_for("a refused scrape", lambda: query(prom_port, 'up{job="wrong"} == 0'))
        rows = wait_for("the interrupt rows", lambda: query(prom_port, 'irqlab_interrupts_total{job="irqlab",irq="LOC"}'))
        assert float(rows[0]["value"][1]) > 0
        assert query(prom_port, 'irqlab_interrupts_total{job="wrong"}') == []
    finally:
        stop(prom)
        stop(exporter)
    assert exporter.returncode == 0, exporter.stderr.read()
