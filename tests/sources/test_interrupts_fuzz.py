"""Property tests for the /proc/interrupts parser: garbage never escapes as anything but
ParseError, and files written with the kernel's format strings round-trip exactly, on the fast
path and on the token reader alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irqlab.errors import ParseError
from irqlab.model.snapshot import Interrupts
from irqlab.sources import interrupts as mod
from irqlab.sources.interrupts import parse_interrupts

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "interrupts"
SAMPLES = sorted(p.read_bytes() for p in FIXTURES.iterdir() if "." not in p.name)
U32 = 2**32 - 1


def parses_or_parse_error(data: bytes | str) -> Interrupts | None:
    try:
        irqs = parse_interrupts(data, "/fuzz/interrupts")
    except ParseError as err:
        assert err.path == "/fuzz/interrupts" and err.line >= 1
        return None
    assert irqs.counts.shape == (len(irqs.lines), len(irqs.cpus))
    assert irqs.totals.shape == (len(irqs.lines),)
    assert len({line.key for line in irqs.lines}) == len(irqs.lines)
    return irqs


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_raises_nothing_but_parse_error(text: str) -> None:
    parses_or_parse_error(text)


@settings(max_examples=300, deadline=None)
@given(st.binary())
def test_arbitrary_bytes_raise_nothing_but_parse_error(data: bytes) -> None:
    parses_or_parse_error(data)


mutation = st.tuples(
    st.sampled_from(["insert", "delete", "replace", "dup-line", "drop-line", "swap-lines", "cut"]),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.text(alphabet=st.sampled_from(" \t\n\r:0123456789-,aZ\x00\xff#"), min_size=1, max_size=12),
)


def mutate(data: bytes, op: str, a: int, b: int, payload: str) -> bytes:
    text = data.decode("latin-1")
    i, j = sorted((a % (len(text) + 1), b % (len(text) + 1)))
    lines = text.split("\n")
    k, m = a % len(lines), b % len(lines)
    if op == "insert":
        text = text[:i] + payload + text[i:]
    elif op == "delete":
        text = text[:i] + text[j : j + 1 + len(payload)] if i == j else text[:i] + text[j:]
    elif op == "replace":
        text = text[:i] + payload + text[i + len(payload) :]
    elif op == "dup-line":
        text = "\n".join(lines[: k + 1] + [lines[k]] + lines[k + 1 :])
    elif op == "drop-line":
        text = "\n".join(lines[:k] + lines[k + 1 :])
    elif op == "swap-lines":
        lines[k], lines[m] = lines[m], lines[k]
        text = "\n".join(lines)
    else:
        text = text[:i]
    return text.encode("latin-1")


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SAMPLES), st.lists(mutation, min_size=1, max_size=6))
def test_mutated_fixtures_raise_nothing_but_parse_error(data: bytes, edits: list) -> None:
    for edit in edits:
        data = mutate(data, *edit)
    irqs = parses_or_parse_error(data)
    if irqs is not None:  # whatever survives must read the same both ways
        assert_same(irqs, slow_only(data))


# --- round trip of files printed the way the kernel prints them -------------------------


@dataclass
class Spec:
    """One row as the kernel would print it, and what the parser must read back."""

    text: str
    irq: str
    counts: list[int]
    extra: list[int]
    per_cpu: bool = True
    total: int | None = None
    chip: str = ""
    hwirq: str = ""
    trigger: str = ""
    actions: tuple[str, ...] = ()
    description: str = ""


counts_of = st.one_of(st.just(0), st.integers(0, 9), st.integers(0, 99999), st.integers(0, U32))
word = st.from_regex(r"[a-z][a-z0-9_.:\[\]]{0,10}", fullmatch=True)
action = st.one_of(word, st.tuples(word, st.from_regex(r"[a-z(][a-z0-9()]{0,5}", fullmatch=True)).map(" ".join))
chip_word = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,7}(-[A-Za-z0-9:.]{1,12})?", fullmatch=True).filter(
    lambda c: c not in ("Level", "Edge")
)


@st.composite
def numbered(draw, ncpu: int, prec: int) -> Spec:
    irq = draw(st.integers(0, 9999))
    counts = draw(st.lists(counts_of, min_size=ncpu, max_size=ncpu))
    hwirq = draw(st.one_of(st.none(), st.integers(0, 10**8)))
    chip = draw(chip_word)
    if hwirq is not None and draw(st.booleans()):
        chip += " " + draw(st.from_regex(r"[A-Z][A-Za-z]{0,4}", fullmatch=True))  # "PCIe MSI"
    level = draw(st.sampled_from([None, "Level", "Edge"]))
    flow = draw(st.sampled_from([None, "edge", "fasteoi", "level"]))
    # A chip alone, with no hwirq, flow or action after it, reads like the one action of a
    # chip-less 2.6 ARM row ("  4020KEY"); the parser takes the latter, so it is not drawn.
    bare = hwirq is None and level is None and flow is None
    actions = tuple(draw(st.lists(action, min_size=1 if bare else 0, max_size=3)))
    new = draw(st.booleans())  # v6.x " %10u" + ' ' + "%8s", or older "%10u " + " %8s"
    if new:
        s = f"{irq:>{prec}d}:" + "".join(f" {c:>10d}" for c in counts) + f" {chip:>8s}"
    else:
        s = f"{irq:>{prec}d}: " + "".join(f"{c:10d} " for c in counts) + f" {chip:>8s}"
    s += f" {hwirq:>{prec}d}" if hwirq is not None else " " * (prec + 1)
    s += f" {level:<8s}" if level else ""
    s += f"-{flow:<8s}" if flow else ""
    s += "  " + ", ".join(actions) if actions else ""
    return Spec(s, str(irq), counts, [], chip=chip, hwirq="" if hwirq is None else str(hwirq),
                trigger=level or flow or "", actions=actions)


@st.composite
def named(draw, ncpu: int, prec: int) -> Spec:
    kind = draw(st.sampled_from(["arch", "ipi", "total"]))
    desc = draw(st.from_regex(r"[A-Z][a-z]{1,9}( [a-z()]{1,9}){0,3}", fullmatch=True))
    if kind == "total":
        irq = draw(st.sampled_from(["ERR", "MIS", "Err"]))
        value = draw(counts_of)
        return Spec(f"{irq:>{prec}s}: {value:10d}", irq, [0] * ncpu, [], per_cpu=False, total=value)
    if kind == "ipi":  # arch/arm64/kernel/smp.c "%*s%u:%s" then "%10u "; ARM may print more CPUs
        counts = draw(st.lists(counts_of, min_size=ncpu, max_size=ncpu + 3))
        irq = f"IPI{draw(st.integers(0, 15))}"
        head = f"{'IPI':>{prec - 1}s}{irq[3:]}:" + (" " if prec >= 4 else "")
        text = head + "".join(f"{c:10d} " for c in counts) + f"      {desc}"
        return Spec(text, irq, counts[:ncpu], counts[ncpu:], description=desc)
    irq = draw(st.from_regex(r"[A-Z]{3}", fullmatch=True).filter(lambda n: n not in mod.SINGLE_TOTAL_IDS))
    counts = draw(st.lists(counts_of, min_size=ncpu, max_size=ncpu))
    return Spec(f"{irq:>{prec}s}: " + "".join(f"{c:10d} " for c in counts) + f"  {desc}", irq, counts, [],
                description=desc)


@st.composite
def kernel_file(draw) -> tuple[str, tuple[int, ...], list[Spec]]:
    cpus = tuple(sorted(draw(st.sets(st.integers(0, 4095), min_size=1, max_size=10))))
    prec = draw(st.sampled_from([3, 4]))
    rows = draw(st.lists(st.one_of(numbered(len(cpus), prec), named(len(cpus), prec)), min_size=1, max_size=12))
    text = " " * (prec + 8) + "".join(f"CPU{c:<8d}" for c in cpus) + "\n"
    for spec in rows:
        text += spec.text + "\n" + ("\n" if draw(st.integers(0, 9)) == 0 else "")
    if draw(st.booleans()):
        text = text.rstrip("\n")
    if draw(st.integers(0, 5)) == 0:
        text = text.replace("\n", "\r\n")
    return text, cpus, rows


def expected_keys(rows: list[Spec]) -> list[str]:
    keys: list[str] = []
    for spec in rows:
        key, n = spec.irq, 1
        while key in keys:
            n += 1
            key = f"{spec.irq}#{n}"
        keys.append(key)
    return keys


def slow_only(data: bytes | str) -> Interrupts:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mod, "_fast_counts", lambda raw, rows, ncpu, counts: [False] * len(rows))
        return parse_interrupts(data)


def assert_same(a: Interrupts, b: Interrupts) -> None:
    assert a.cpus == b.cpus
    assert [repr(x) for x in a.lines] == [repr(x) for x in b.lines]
    assert np.array_equal(a.counts, b.counts) and np.array_equal(a.totals, b.totals)


def assert_round_trip(irqs: Interrupts, cpus: tuple[int, ...], rows: list[Spec]) -> None:
    assert irqs.cpus == cpus
    assert [line.key for line in irqs.lines] == expected_keys(rows)
    for i, (line, spec) in enumerate(zip(irqs.lines, rows)):
        assert line.irq == spec.irq
        assert irqs.counts[i].tolist() == spec.counts
        assert list(line.extra) == spec.extra and line.per_cpu == spec.per_cpu
        total = spec.total if spec.total is not None else sum(spec.counts) + sum(spec.extra)
        assert irqs.totals[i] == total
        if spec.irq.isdigit():
            assert (line.chip, line.hwirq, line.trigger, line.actions) == (
                spec.chip, spec.hwirq, spec.trigger, spec.actions)
        else:
            assert line.description == spec.description


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kernel_file(), st.sampled_from([mod.DENSE_SHARE, 0.0, 2.0]))
def test_kernel_formatted_files_round_trip_on_both_paths(case, share: float) -> None:
    text, cpus, rows = case
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mod, "DENSE_SHARE", share)  # 0.0: every row checked byte by byte; 2.0: never
        fast = parse_interrupts(text)
    assert_round_trip(fast, cpus, rows)
    assert_same(fast, slow_only(text))
