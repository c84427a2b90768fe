"""The doctor over its regression corpus: eight fault classes captured on this VM under load.sh.

Each tests/fixtures/doctor/CASE.tar.gz is what `irqlab doctor --duration 3 --save` kept in the
middle of one load (tests/fixtures/doctor/capture.sh says which): the before/after captures
with every namespace's net files and every thread's schedstat, and the trace. The doctor's
calibration is tested here without any load: its text output is golden, and each case's
injected cause must be named by the top findings (vector, CPU, mechanism), as a user would
read them.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from irqlab.cli.main import main

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "doctor"
CASES = sorted(p.name.removesuffix(".tar.gz") for p in CORPUS.glob("*.tar.gz"))


def test_the_corpus_holds_every_fault_class():
    assert set(CASES) == {"idle", "udp-flood", "rps-one-cpu", "hog-rps", "tcp-gro-budget2", "small-rcvbuf", "threaded-napi", "rt-hog"}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    top = tmp_path_factory.mktemp("corpus")
    for case in CASES:
        with tarfile.open(CORPUS / f"{case}.tar.gz") as tar:
            tar.extractall(top, filter="tar")
    return top


def doctor(capsys, evidence: Path, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["doctor", "--evidence", str(evidence), *extra])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("case", CASES)
def test_the_doctor_output_of_each_case_is_golden(case, extracted, capsys, golden):
    code, out = doctor(capsys, extracted / case)
    golden(f"doctor-corpus/{case}.txt", out)
    jcode, jout = doctor(capsys, extracted / case, "--json")
    assert json.loads(jout)["exit_code"] == jcode == code


def findings(capsys, extracted: Path, case: str) -> list[dict]:
    _, out = doctor(capsys, extracted / case, "--json")
    return json.loads(out)["findings"]


def text_of(f: dict) -> str:
    return " ".join([f["title"], f["subject"], *f.get("evidence", ())])


def test_idle_is_healthy(extracted, capsys):
    code, _ = doctor(capsys, extracted / "idle")
    assert code == 0


def test_udp_flood_names_net_rx_on_a_cpu_and_the_socket_drops_in_the_top_two(extracted, capsys):
    top = findings(capsys, extracted, "udp-flood")
    first = top[0]
    assert "NET_RX" in text_of(first) and first["metrics"].get("cpu") is not None, first["title"]
    assert any(f["code"] == "socket-drops" or "RcvbufErrors" in text_of(f) for f in top[:2])
    assert any("5201" in text_of(f) for f in top[:2])


def test_rps_onto_one_cpu_names_rps_its_queue_and_the_cpu(extracted, capsys):
    first = findings(capsys, extracted, "rps-one-cpu")[0]
    assert first["metrics"]["mechanism"] == "rps" and first["metrics"]["cpu"] == 0
    assert "rps_cpus=1" in text_of(first) and "rx-0" in text_of(first)
    rps = [a for a in first["actions"] if a["path"].endswith("/rps_cpus")]
    assert rps and rps[0]["old"] == "1" and rps[0]["new"] != "1" and rps[0]["namespace"]["enter"].startswith("ip netns exec")


def test_hog_and_rps_flood_names_rps_and_the_hog_that_waited(extracted, capsys):
    first = findings(capsys, extracted, "hog-rps")[0]
    assert first["metrics"]["mechanism"] == "rps" and first["metrics"]["cpu"] == 0
    assert "stress-ng" in text_of(first)


def test_tcp_with_a_tiny_budget_names_the_budget(extracted, capsys):
    first = findings(capsys, extracted, "tcp-gro-budget2")[0]
    assert "NET_RX" in text_of(first)
    assert "budget" in text_of(first) or "time_squeeze" in text_of(first)
    assert any("netdev_budget" in a["path"] for a in first["actions"])


def test_small_socket_buffers_name_the_socket_buffer(extracted, capsys):
    top = findings(capsys, extracted, "small-rcvbuf")[:2]
    assert any("RcvbufErrors" in text_of(f) for f in top)
    assert any(any("rmem" in a["path"] for a in f["actions"]) for f in top)


def test_threaded_napi_names_the_napi_thread(extracted, capsys):
    top = findings(capsys, extracted, "threaded-napi")[:2]
    assert any("napi/" in text_of(f) for f in top)


def test_an_rt_hog_names_the_starved_ksoftirqd_and_the_hog(extracted, capsys):
    # In this capture ksoftirqd/0 waited 0 %: with the senders on CPU0 held off by the FIFO hog,
    # hardly any softirq work was deferred to it. The finding names the hog, the receiver it
    # starves (whose socket drops) and ksoftirqd/0's state; the check holds as written.
    top = findings(capsys, extracted, "rt-hog")[:2]
    assert any("ksoftirqd" in text_of(f) and "FIFO" in text_of(f) for f in top)


def test_no_managed_irq_is_ever_given_an_affinity_action(extracted, capsys):
    for case in CASES:
        for f in findings(capsys, extracted, case):
            for a in f.get("actions", ()):
                assert not a["path"].endswith("/proc/irq/36/smp_affinity_list"), (case, a)
