"""/proc/irq/N and /sys/kernel/irq/N: one story per kernel quirk, on trees laid out like /."""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from irqlab.cpulist import format_cpulist, format_cpumask, parse_cpumask
from irqlab.errors import ParseError
from irqlab.model.snapshot import IrqInfo, Spurious
from irqlab.sources.fs import Roots
from irqlab.sources.host import read_host
from irqlab.sources.irqinfo import (
    ALL_FIELDS,
    parse_actions,
    parse_node,
    parse_per_cpu_count,
    parse_spurious,
    parse_value,
    read_default_affinity,
    read_irqinfo,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "irqinfo"


def capture(name: str) -> Roots:
    return Roots.capture(FIXTURES / name)


# --- watching the walk's opens (observed with an audit hook, never mocked) -------------------

_on_open: Callable[[str], None] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _on_open is not None and isinstance(args[0], str):
        _on_open(args[0])


sys.addaudithook(_audit)  # hooks cannot be removed; _on_open is None outside `watching`


@contextmanager
def watching(callback: Callable[[str], None]) -> Iterator[None]:
    global _on_open
    _on_open = callback
    try:
        yield
    finally:
        _on_open = None


def opens_during(fn: Callable[[], Any], under: Path) -> list[str]:
    seen: list[str] = []
    prefix = str(under)
    with watching(lambda path: seen.append(path) if path.startswith(prefix) else None):
        fn()
    return seen


# --- pure parsers -----------------------------------------------------------------------------


def test_spurious_reads_the_three_kernel_lines() -> None:
    text = "count 100000\nunhandled 3\nlast_unhandled 4294668420 ms\n"
    assert parse_spurious(text) == Spurious(count=100000, unhandled=3, last_unhandled_ms=4294668420)


def test_spurious_ignores_a_line_a_later_kernel_might_add() -> None:
    text = "count 7\nunhandled 0\nlast_unhandled 0 ms\nthreads_handled 12\n"
    assert parse_spurious(text).count == 7


@pytest.mark.parametrize(
    ("text", "line", "token"),
    [
        ("count 12\nunhandled\nlast_unhandled 0 ms\n", 2, "unhandled"),
        ("count -4\nunhandled 0\nlast_unhandled 0 ms\n", 1, "-4"),
        ("count 1\nunhandled 0\nlast_unhandled 5\n", 3, "last_unhandled 5"),
        ("count 1\nunhandled 0\n", 2, "last_unhandled"),
        ("count 1\ncount 2\nunhandled 0\nlast_unhandled 0 ms\n", 2, "count"),
        ("count ١\nunhandled 0\nlast_unhandled 0 ms\n", 1, "١"),  # int() would take it
        ("", 1, "count"),
    ],
)
def test_spurious_errors_point_at_line_and_token(text: str, line: int, token: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_spurious(text, "/proc/irq/16/spurious")
    assert (info.value.path, info.value.line, info.value.token) == ("/proc/irq/16/spurious", line, token)


@pytest.mark.parametrize(("text", "node"), [("-1\n", -1), ("0\n", 0), ("3", 3)])
def test_node_is_a_signed_number_minus_one_for_no_node(text: str, node: int) -> None:
    assert parse_node(text) == node


@pytest.mark.parametrize("text", ["zero\n", "", "-", "1.0", "+1"])
def test_node_refuses_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse_node(text)


def test_actions_are_comma_joined_and_empty_means_no_handler() -> None:
    assert parse_actions("ehci_hcd:usb1,i801_smbus\n") == ("ehci_hcd:usb1", "i801_smbus")
    assert parse_actions("") == ()  # actions_show() prints no newline when there is no action


def test_empty_chip_name_is_an_empty_value_not_unreadable() -> None:
    assert parse_value("") == ""
    assert parse_value("IO-APIC\n") == "IO-APIC"


def test_per_cpu_count_has_one_count_per_possible_cpu() -> None:
    assert parse_per_cpu_count("1194,0\n") == (1194, 0)


def test_per_cpu_count_cut_at_the_sysfs_page_is_refused() -> None:
    text = ",".join(["4000000000"] * 1152)[:4095]  # what 1152 CPUs of big counts give
    with pytest.raises(ParseError, match="truncated"):
        parse_per_cpu_count(text)


kernelish = st.text(alphabet="countuhadlms_ -0123456789\n,x", max_size=80)


@given(st.one_of(st.text(max_size=80), kernelish))
def test_irqinfo_parsers_raise_only_parse_errors(text: str) -> None:
    for parse in (parse_spurious, parse_node, parse_per_cpu_count, parse_actions, parse_value):
        try:
            parse(text, "fuzz")
        except ParseError:
            pass


# --- kernels, one fixture each ----------------------------------------------------------------


def test_modern_kernel_gives_every_field() -> None:
    info, problems = read_irqinfo(capture("modern-6.8-8cpu"))
    assert problems == []
    assert sorted(info) == [0, 9, 16, 121, 122, 123, 124, 130]
    assert info[9] == IrqInfo(
        irq=9,
        affinity=tuple(range(8)),
        effective_affinity=(1,),
        node=-1,
        spurious=Spurious(2, 0, 0),
        actions=("acpi",),
        chip_name="IO-APIC",
        hwirq="9",
        name="fasteoi",
        type="level",
        wakeup="enabled",
        per_cpu_count=(0, 2, 0, 0, 0, 0, 0, 0),
    )


def test_shared_line_lists_both_actions_and_its_unhandled_interrupts() -> None:
    info, _ = read_irqinfo(capture("modern-6.8-8cpu"), [16])
    assert info[16].actions == ("ehci_hcd:usb1", "i801_smbus")
    # last_unhandled is jiffies_to_msecs() of an absolute jiffies value, which starts
    # 5 minutes before 2^32 (INITIAL_JIFFIES): not "milliseconds ago".
    assert info[16].spurious == Spurious(100000, 3, 4294668420)


def test_managed_vectors_spread_affinity_and_serve_on_one_cpu() -> None:
    info, _ = read_irqinfo(capture("modern-6.8-8cpu"), range(121, 125))
    spread = [(i.affinity, i.effective_affinity) for i in info.values()]
    assert spread == [((0, 1), (0,)), ((2, 3), (2,)), ((4, 5), (4,)), ((6, 7), (6,))]


def test_vector_without_handler_has_empty_actions() -> None:
    info, _ = read_irqinfo(capture("modern-6.8-8cpu"), [130])
    assert info[130].actions == ()
    assert info[130].hwirq == "524288"


def test_kernel_3_has_no_effective_affinity_and_no_sysfs(fixtures: Path) -> None:
    roots = capture("old-3.10-4cpu")
    info, problems = read_irqinfo(roots)
    assert problems == []  # an older kernel is not an error
    assert info[25].affinity == (1, 3)
    assert info[25].spurious == Spurious(77, 2, 15230)
    assert all(i.effective_affinity is None and i.per_cpu_count is None for i in info.values())


def test_missing_files_are_asked_for_once_not_per_irq() -> None:
    roots = capture("old-3.10-4cpu")
    opened = opens_during(lambda: read_irqinfo(roots), roots.procfs)
    probes = [p for p in opened if p.endswith(("/effective_affinity_list", "/effective_affinity"))]
    assert len(probes) == 2  # the first IRQ shows the kernel lacks them
    assert len(opened) == 2 + 3 * 4  # then smp_affinity_list, node, spurious per IRQ


def test_a_field_this_kernel_lacks_costs_two_failed_opens_in_all() -> None:
    roots = capture("old-3.10-4cpu")
    got: dict[int, IrqInfo] = {}
    opened = opens_during(lambda: got.update(read_irqinfo(roots, fields={"effective_affinity"})[0]), FIXTURES)
    assert len(opened) == 2  # the IRQ directory was still there: absent, not freed
    assert sorted(got) == [0, 8, 24, 25] and all(i.effective_affinity is None for i in got.values())


def test_kernel_2_6_32_has_only_masks_in_32_bit_comma_groups() -> None:
    roots = capture("rhel6-2.6.32-96cpu")
    info, problems = read_irqinfo(roots)
    assert problems == []
    assert info[53].affinity == tuple(range(32))
    assert info[54].affinity == (64,)
    assert info[55].affinity == (30, 31, 32, 33)  # straddles the first comma
    assert info[56].affinity == (95,)
    assert read_default_affinity(roots) == tuple(range(96))


def test_wide_machine_lists_agree_with_masks() -> None:
    roots = capture("wide-6.1-96cpu")
    info, problems = read_irqinfo(roots)
    assert problems == []
    for irq, item in info.items():
        mask = (roots.procfs / "irq" / str(irq) / "smp_affinity").read_text()
        assert item.affinity == parse_cpumask(mask)
        assert item.effective_affinity is not None and len(item.per_cpu_count or ()) == 96
    assert info[203].affinity == tuple(range(0, 96, 2))
    assert info[201].per_cpu_count is not None and info[201].per_cpu_count[64] == 1064


def test_garbage_is_reported_once_per_kind_and_the_rest_is_kept() -> None:
    info, problems = read_irqinfo(capture("broken-6.8"))
    assert sorted(info) == [30, 31, 32, 33, 34]
    by_kind = {p.message.split(":")[0]: p for p in problems}
    assert sorted(by_kind) == ["node", "per_cpu_count", "smp_affinity_list", "spurious"]
    assert all(p.reason == "parse" and p.source == "irqinfo" for p in problems)
    assert by_kind["spurious"].path.endswith("/irq/30/spurious")
    assert "and 1 more IRQs" in by_kind["spurious"].message  # IRQ 33 too
    assert info[30].spurious is None and info[30].node == -1
    assert info[31].node is None and info[31].spurious == Spurious(0, 0, 0)
    assert info[32].affinity is None and info[32].effective_affinity == (0,)
    assert info[34].per_cpu_count is None and info[34].actions == ("dev34",)


def test_the_real_capture_of_this_vm() -> None:
    roots = capture("vm-6.18-2cpu")
    info, problems = read_irqinfo(roots)
    assert problems == []
    assert sorted(info) == list(range(24, 27)) + list(range(28, 44))
    # IRQ 27 has a /sys/kernel/irq entry but no /proc/irq directory and no action.
    assert (roots.sysfs / "kernel" / "irq" / "27").is_dir() and 27 not in info
    rx = info[41]
    assert rx.actions == ("virtio3-rx",) and rx.chip_name == "PCI-MSIX-0000:00:04.0"
    assert rx.affinity == (0, 1) and rx.effective_affinity == (0,)
    assert info[26].spurious == Spurious(10, 3, 4294668420)  # ttyS0 with unhandled ones
    assert {len(i.per_cpu_count or ()) for i in info.values()} == {2}


def test_zte_armv7_4_1_tree_from_a_real_device(shared_fixtures: Path, tmp_path: Path) -> None:
    tree = shared_fixtures / "public" / "zte-orange-armv7" / "irq"
    if not tree.is_dir():
        pytest.skip(f"{tree} not present")
    # The device's directory holds irq/ as /proc does: read in place (a symlink to it from a
    # made-up root would lead out of that root, which a capture may not do).
    roots = Roots(tree.parent, tmp_path / "sys")
    info, problems = read_irqinfo(roots)
    assert problems == []
    assert sorted(info) == sorted(int(n) for n in os.listdir(tree) if n.isdigit())
    for irq, item in info.items():
        assert item.effective_affinity is None and item.actions is None  # 4.1: neither exists
        assert item.affinity == parse_cpumask((tree / str(irq) / "smp_affinity").read_text())
    assert info[29].spurious == Spurious(75768, 0, 0)
    assert read_default_affinity(roots) == (0, 1)


# --- IRQs that come and go --------------------------------------------------------------------


def copy_of(name: str, tmp: Path) -> Roots:
    shutil.copytree(FIXTURES / name, tmp / name)
    return Roots.capture(tmp / name)


def test_irq_asked_for_but_not_there_is_left_out() -> None:
    info, problems = read_irqinfo(capture("vm-6.18-2cpu"), [41, 9999])
    assert sorted(info) == [41] and problems == []


@pytest.mark.parametrize("at_file", ["smp_affinity_list", "node", "spurious", "actions"])
def test_irq_freed_mid_walk_is_skipped_silently(tmp_path: Path, at_file: str) -> None:
    roots = copy_of("modern-6.8-8cpu", tmp_path)
    victim = roots.procfs / "irq" / "122"
    doomed = [victim, roots.sysfs / "kernel" / "irq" / "122"]

    def free_irq(path: str) -> None:
        if path.endswith(f"/122/{at_file}") and victim.exists():
            for d in doomed:
                shutil.rmtree(d)  # free_irq() runs between our listing and this open

    with watching(free_irq):
        info, problems = read_irqinfo(roots)
    assert not victim.exists(), "the hook never fired"
    assert 122 not in info and problems == []
    assert info[123].effective_affinity == (4,)  # the walk went on, no file marked absent


# --- permission --------------------------------------------------------------------------------


def as_nobody(fn: Callable[[], Any]) -> Any:
    """fn() run without privilege: as is when not root, else in a child as nobody."""
    if os.geteuid() != 0:
        return fn()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            data = pickle.dumps(("ok", fn()))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            data = pickle.dumps(("raised", repr(exc)))
        with os.fdopen(w, "wb") as out:
            out.write(data)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as inp:
        status, value = pickle.loads(inp.read())
    os.waitpid(pid, 0)
    assert status == "ok", value
    return value


def test_unreadable_kind_is_reported_once_not_per_irq() -> None:
    base = Path(tempfile.mkdtemp(prefix="irqlab-perm-", dir="/tmp"))
    try:
        shutil.copytree(FIXTURES / "modern-6.8-8cpu", base / "m")
        for d in [base, *base.rglob("*")]:
            d.chmod(0o755 if d.is_dir() else 0o644)
        for f in (base / "m" / "proc" / "irq").glob("*/spurious"):
            f.chmod(0o000)  # like smp_affinity, mode 0600, on 2.6-era kernels
        info, problems = as_nobody(lambda: read_irqinfo(Roots.capture(base / "m")))
    finally:
        shutil.rmtree(base)
    assert len(problems) == 1
    assert problems[0].reason == "permission" and problems[0].message.startswith("spurious:")
    assert "7 more IRQs" in problems[0].message
    assert len(info) == 8 and all(i.spurious is None and i.node is not None for i in info.values())


# --- asking for less ---------------------------------------------------------------------------


def test_fields_limit_the_walk_to_one_open_per_irq() -> None:
    roots = capture("modern-6.8-8cpu")
    got: dict[int, IrqInfo] = {}
    opened = opens_during(lambda: got.update(read_irqinfo(roots, fields={"effective_affinity"})[0]), FIXTURES)
    assert len(opened) == len(got) == 8
    assert got[16] == IrqInfo(irq=16, effective_affinity=(5,))


def test_unknown_field_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="affinty"):
        read_irqinfo(capture("modern-6.8-8cpu"), fields={"affinty"})
    assert "per_cpu_count" in ALL_FIELDS


def test_no_proc_irq_at_all_is_one_missing_entry(tmp_path: Path) -> None:
    info, problems = read_irqinfo(Roots(tmp_path / "proc", tmp_path / "sys"))
    assert info == {} and [p.reason for p in problems] == ["missing"]


def test_default_affinity_is_none_when_absent_and_refuses_garbage(tmp_path: Path) -> None:
    assert read_default_affinity(capture("modern-6.8-8cpu")) == tuple(range(8))
    assert read_default_affinity(Roots(tmp_path, tmp_path)) is None
    (tmp_path / "irq").mkdir()
    (tmp_path / "irq" / "default_smp_affinity").write_text("ffffffffff\n")
    with pytest.raises(ParseError):
        read_default_affinity(Roots(tmp_path, tmp_path))


# --- scale -------------------------------------------------------------------------------------


def generate_tree(base: Path, nirqs: int, ncpus: int) -> None:
    """/proc/irq and /sys/kernel/irq of a big modern machine, one IRQ per queue vector."""
    everyone = format_cpumask(range(ncpus), ncpus)
    for i in range(nirqs):
        irq, cpu = 100 + i, i % ncpus
        proc, sysd = base / "proc" / "irq" / str(irq), base / "sys" / "kernel" / "irq" / str(irq)
        proc.mkdir(parents=True)
        sysd.mkdir(parents=True)
        files = {
            proc / "smp_affinity": everyone,
            proc / "smp_affinity_list": format_cpulist(range(ncpus)),
            proc / "effective_affinity": format_cpumask([cpu], ncpus),
            proc / "effective_affinity_list": str(cpu),
            proc / "node": str(cpu * 8 // ncpus),
            proc / "spurious": "count 0\nunhandled 0\nlast_unhandled 0 ms",
            sysd / "actions": f"eth{i // 64}-TxRx-{i % 64}",
            sysd / "chip_name": "IR-PCI-MSIX-0000:41:00.0",
            sysd / "hwirq": str(i),
            sysd / "name": "edge",
            sysd / "type": "edge",
            sysd / "wakeup": "disabled",
            sysd / "per_cpu_count": ",".join("7" if c == cpu else "0" for c in range(ncpus)),
        }
        for path, text in files.items():
            path.write_text(text + "\n")


@pytest.fixture(scope="module")
def big_machine() -> Iterator[Path]:
    """2000 IRQs of a 1152-CPU machine, in tmpfs when there is one (26,000 small files)."""
    shm = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(prefix="irqlab-2000irqs-", dir=shm if shm.is_dir() else None))
    try:
        generate_tree(base, 2000, 1152)
        yield base
    finally:
        shutil.rmtree(base)


@pytest.mark.slow
def test_two_thousand_irqs_on_1152_cpus_take_eleven_opens_each(big_machine: Path) -> None:
    roots = Roots.capture(big_machine)
    opened = opens_during(lambda: read_irqinfo(roots), big_machine)
    assert len(opened) == 2000 * 11
    t0 = time.perf_counter()
    info, problems = read_irqinfo(roots)
    elapsed = time.perf_counter() - t0
    assert problems == [] and len(info) == 2000
    assert info[1251].effective_affinity == (1151,) and info[1251].per_cpu_count[1151] == 7
    print(f"\n2000 IRQs x 1152 CPUs: {elapsed * 1e3:.0f} ms")


# --- this machine ------------------------------------------------------------------------------


def interrupts_row(irq: int) -> dict[int, int]:
    """Counts by CPU id of one numbered row of the live /proc/interrupts (online CPUs)."""
    lines = Path("/proc/interrupts").read_text().splitlines()
    cpus = [int(label.removeprefix("CPU")) for label in lines[0].split()]
    for line in lines[1:]:
        head, _, rest = line.partition(":")
        if head.strip() == str(irq):
            return dict(zip(cpus, (int(t) for t in rest.split()[: len(cpus)])))
    raise AssertionError(f"IRQ {irq} not in /proc/interrupts")


@pytest.mark.live
def test_live_virtio_irqs_have_affinity_and_effective_affinity() -> None:
    info, problems = read_irqinfo(Roots())
    assert problems == []
    virtio = {irq: i for irq, i in info.items() if any(a.startswith("virtio") for a in i.actions or ())}
    if not virtio:
        pytest.skip("no virtio device on this machine")
    host = read_host(Roots())
    assert host.online_cpus and host.possible_cpus
    for irq, item in virtio.items():
        assert item.affinity and set(item.affinity) <= set(host.possible_cpus)
        assert item.effective_affinity
        assert set(item.effective_affinity) <= set(item.affinity) & set(host.online_cpus)
        mask = Path(f"/proc/irq/{irq}/smp_affinity").read_text()
        assert item.affinity == parse_cpumask(mask)
        # per_cpu_count has a count per possible CPU; counters only grow, and
        # /proc/interrupts is read after: it is never below sysfs for an online CPU.
        assert item.per_cpu_count is not None and len(item.per_cpu_count) == len(host.possible_cpus)
        for cpu, later in interrupts_row(irq).items():
            assert item.per_cpu_count[cpu] <= later


@pytest.mark.skipif(os.geteuid() != 0, reason="writes /proc/irq/N/smp_affinity_list")
def test_managed_irqs_are_those_whose_affinity_write_the_kernel_refuses():
    """`managed` follows the file mode, and the kernel does refuse a write to each IRQ it marks."""
    import errno

    info, _ = read_irqinfo(Roots(), None, ["affinity"])
    assert info, "no IRQ read from /proc/irq"
    managed = [i for i, v in info.items() if v.managed]
    assert all(v.managed is not None for v in info.values())
    for irq in managed:
        path = f"/proc/irq/{irq}/smp_affinity_list"
        current = Path(path).read_text()
        # Writing the value it already has: refused with EPERM for a managed IRQ, so nothing changes.
        with pytest.raises(OSError) as err:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, current.encode())
            finally:
                os.close(fd)
        assert err.value.errno in (errno.EPERM, errno.EIO), (irq, err.value)


def test_a_capture_does_not_know_which_irqs_are_managed():
    captured, _ = read_irqinfo(Roots.capture(Path(__file__).parent.parent / "fixtures" / "captures" / "vm-idle" / "a"), None, ["affinity"])
    assert captured and all(v.managed is None for v in captured.values())
