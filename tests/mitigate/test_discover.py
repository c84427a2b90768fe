"""What the planner is told about devices: read through sources/, problems named, not dropped."""

from __future__ import annotations

from pathlib import Path

from irqlab.mitigate.discover import describe_devices
from irqlab.sources.fs import Roots

DEV = "irqlabt0"  # no such device on the test machine: the ethtool probe answers "unknown"


def sysfs_with(tmp_path: Path, **attrs: str) -> Roots:
    for dev in (DEV, "irqlabu0"):
        (tmp_path / "sys/class/net" / dev).mkdir(parents=True)
    for name, text in attrs.items():
        (tmp_path / "sys/class/net" / DEV / name).write_text(text)
    (tmp_path / "proc").mkdir()
    return Roots(tmp_path / "proc", tmp_path / "sys")


def test_own_namespace_devices_and_their_napi_knobs_as_the_planner_compares_them(tmp_path):
    roots = sysfs_with(tmp_path, napi_defer_hard_irqs="2\n", gro_flush_timeout="20000\n")
    found, errors = describe_devices("irqlabt*", "", roots)
    assert errors == []
    ((ns, facts),) = found
    assert ns is None and facts["name"] == DEV
    assert facts["napi"] == {"napi_defer_hard_irqs": "2", "gro_flush_timeout": "20000"}
    assert set(facts) == {"name", "napi", "coalesce", "napis"}
    assert facts["napis"] == []  # a test root: no netlink answers are asked for


def test_a_kernel_without_the_napi_knobs_leaves_them_out_silently(tmp_path):
    roots = sysfs_with(tmp_path, gro_flush_timeout="0\n")  # napi_defer_hard_irqs: Linux >= 5.11
    found, errors = describe_devices(DEV, "", roots)
    assert errors == [] and found[0][1]["napi"] == {"gro_flush_timeout": "0"}


def test_an_unreadable_napi_knob_is_reported_not_silently_dropped(tmp_path):
    roots = sysfs_with(tmp_path, napi_defer_hard_irqs="2\n")
    (roots.sys("class", "net", DEV, "gro_flush_timeout")).mkdir()  # opened, and refused
    found, errors = describe_devices(DEV, "", roots)
    assert found[0][1]["napi"] == {"napi_defer_hard_irqs": "2"}
    (line,) = errors
    assert line.startswith("network namespace (own): ") and f"{DEV}/gro_flush_timeout" in line
    assert "\n" not in line


def test_a_garbled_napi_knob_is_reported_with_its_token(tmp_path):
    roots = sysfs_with(tmp_path, napi_defer_hard_irqs="two\n")
    found, errors = describe_devices(DEV, "", roots)
    assert found[0][1]["napi"] == {}
    assert len(errors) == 1 and "napi_defer_hard_irqs" in errors[0] and "two" in errors[0]


def test_a_sysfs_without_class_net_is_one_error_line(tmp_path):
    (tmp_path / "sys").mkdir()
    found, errors = describe_devices("*", "", Roots(tmp_path, tmp_path / "sys"))
    assert found == [] and len(errors) == 1 and "class/net" in errors[0]
