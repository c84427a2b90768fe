"""Property tests for the softirqs, stat, softnet and pressure parsers.

Whatever the text, a parser returns a value or raises ParseError (never IndexError,
ValueError, OverflowError ...), and a file rendered the way the kernel prints it parses
back to the values it was rendered from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irqlab.errors import ParseError
from irqlab.model.snapshot import CPU_TIME_FIELDS, SOFTNET_FIELDS
from irqlab.model.vectors import SOFTIRQ_NAMES, canonical
from irqlab.sources.pressure import parse_pressure
from irqlab.sources.softirqs import parse_softirqs
from irqlab.sources.softnet import parse_softnet
from irqlab.sources.stat import parse_stat

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PARSERS: dict[str, Callable[[str, str], object]] = {
    "softirqs": parse_softirqs,
    "stat": parse_stat,
    "softnet": parse_softnet,
    "pressure": parse_pressure,
}
SAMPLES = {kind: [p.read_bytes().decode() for p in sorted((FIXTURES / kind).iterdir())] for kind in PARSERS}

U32 = st.integers(0, 2**32 - 1)
# Characters these files are made of, plus ones that trip naive parsers: "²" and "١" pass
# str.isdigit(), "_" passes int(), NBSP and U+2028 are whitespace or line breaks to Python.
JUNK = st.text(alphabet=" \t\n\r0123456789abcdefxABCDEFX:=.-+_CPUcpuintrsoftirqfull²١\xa0\u2028", max_size=12)
# Tokens that look like numbers to one reader or another but are not what the kernel prints.
SNEAKY = st.sampled_from(
    ["²", "1²", "١٢", "1_0", "+1", "-1", "0x1f", "1e3", "nan", "inf", "1.5", "", "9" * 19,
     "9" * 5000, "4294967296", "100000000", "ffffffff", "FFFFFFFF", "CPU", "CPU99999", "cpu", "cpu-1", "full",
     "total=", "avg10=1.2.3", "BLOCK_IOPOLL", "IRQ_POLL", "HI:", "intr", "softirq", "ctxt"]
)
TOKEN = st.one_of(SNEAKY, st.integers(0, 2**33).map(str), U32.map("{:08x}".format), JUNK)
LINE = st.lists(TOKEN, max_size=6).map(" ".join)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_parse_error(kind: str, text: str) -> None:
    """Parse text; a ParseError is fine if it names this path and a line of the text."""
    try:
        PARSERS[kind](text, f"fuzz/{kind}")
    except ParseError as err:
        assert err.path == f"fuzz/{kind}"
        assert 1 <= err.line <= max(1, len(text.splitlines()))
        assert isinstance(err.token, str)


# --- arbitrary and mutated text -----------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(PARSERS))
@FUZZ
@given(text=st.text())
def test_arbitrary_text_parses_or_raises_parse_error(kind: str, text: str) -> None:
    parse_or_parse_error(kind, text)


@pytest.mark.parametrize("kind", sorted(PARSERS))
@FUZZ
@given(lines=st.lists(LINE, max_size=8))
def test_lines_of_number_like_tokens_parse_or_raise_parse_error(kind: str, lines: list[str]) -> None:
    parse_or_parse_error(kind, "\n".join(lines))


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> str:
    """A fixture of this kind with one to four random edits."""
    text = draw(st.sampled_from(SAMPLES[kind]))
    for _ in range(draw(st.integers(1, 4))):
        lines = text.split("\n")
        at = draw(st.integers(0, max(0, len(text))))
        row = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["delete", "insert", "token", "dup", "drop", "swap", "cut"]))
        if edit == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 12)) :]
        elif edit == "insert":
            text = text[:at] + draw(JUNK) + text[at:]
        elif edit == "token":
            tokens = lines[row].split(" ")
            tokens[draw(st.integers(0, len(tokens) - 1))] = draw(TOKEN)
            lines[row] = " ".join(tokens)
            text = "\n".join(lines)
        elif edit in ("dup", "drop", "swap"):
            other = draw(st.integers(0, len(lines) - 1))
            if edit == "dup":
                lines.insert(other, lines[row])
            elif edit == "drop":
                del lines[row]
            else:
                lines[row], lines[other] = lines[other], lines[row]
            text = "\n".join(lines)
        else:
            text = text[:at]
    return text


@pytest.mark.parametrize("kind", sorted(PARSERS))
@FUZZ
@given(data=st.data())
def test_mutated_fixtures_parse_or_raise_parse_error(kind: str, data: st.DataObject) -> None:
    parse_or_parse_error(kind, data.draw(mutated(kind)))


@pytest.mark.parametrize("kind", sorted(PARSERS))
@FUZZ
@given(data=st.data())
def test_fixtures_with_number_like_tokens_swapped_in_parse_or_raise_parse_error(kind: str, data: st.DataObject) -> None:
    lines = data.draw(st.sampled_from(SAMPLES[kind])).split("\n")
    for _ in range(data.draw(st.integers(1, 2))):
        row = data.draw(st.integers(0, len(lines) - 1))
        tokens = lines[row].split(" ")
        tokens[data.draw(st.integers(0, len(tokens) - 1))] = data.draw(SNEAKY)
        lines[row] = " ".join(tokens)
    parse_or_parse_error(kind, "\n".join(lines))


# --- round trips of generated files -------------------------------------------------------

VECTOR = st.one_of(st.sampled_from(SOFTIRQ_NAMES + ("BLOCK_IOPOLL",)), st.from_regex(r"[A-Z][A-Z0-9_]{0,11}", fullmatch=True))


@st.composite
def softirqs_files(draw: st.DrawFn) -> tuple[str, list[int], list[str], list[list[int]]]:
    cpus = sorted(draw(st.sets(st.integers(0, 4095), min_size=1, max_size=12)))
    names = draw(st.lists(VECTOR, min_size=1, max_size=12, unique_by=canonical))
    counts = [draw(st.lists(U32, min_size=len(cpus), max_size=len(cpus))) for _ in names]
    # fs/proc/softirqs.c: 20 spaces, "CPU%-8d" per CPU; "%12s:" then " %10u" per CPU
    text = " " * 20 + "".join(f"CPU{c:<8d}" for c in cpus) + "\n"
    text += "".join(f"{n:>12s}:" + "".join(f" {v:10d}" for v in row) + "\n" for n, row in zip(names, counts))
    return text, cpus, names, counts


@FUZZ
@given(softirqs_files())
def test_generated_softirqs_round_trip(generated: tuple[str, list[int], list[str], list[list[int]]]) -> None:
    text, cpus, names, counts = generated
    s = parse_softirqs(text)
    assert list(s.cpus) == cpus
    assert list(s.vectors) == [canonical(n) for n in names]
    assert s.counts.tolist() == counts


TICKS = st.integers(0, 2**50)


@st.composite
def stat_files(draw: st.DrawFn) -> tuple[str, dict]:
    nfields = draw(st.integers(4, len(CPU_TIME_FIELDS)))
    cpus = sorted(draw(st.sets(st.integers(0, 4095), max_size=8)))
    row = st.lists(TICKS, min_size=nfields, max_size=nfields)
    want = {
        "nfields": nfields,
        "cpus": cpus,
        "total": draw(row),
        "times": [draw(row) for _ in cpus],
        "intr": draw(st.lists(U32, max_size=300)),
        "softirq": draw(st.none() | st.lists(U32, min_size=10, max_size=10)),
        "ctxt": draw(TICKS),
        "procs_running": draw(U32),
    }
    text = "cpu  " + " ".join(map(str, want["total"])) + "\n"
    text += "".join(f"cpu{c} " + " ".join(map(str, t)) + "\n" for c, t in zip(cpus, want["times"]))
    # show_all_irqs(): " %u" per IRQ after the total
    text += f"intr {sum(want['intr'])}" + "".join(f" {v}" for v in want["intr"]) + "\n"
    text += f"ctxt {want['ctxt']}\nbtime 1796026981\nprocesses 1\nprocs_running {want['procs_running']}\nprocs_blocked 0\n"
    if want["softirq"] is not None:
        text += f"softirq {sum(want['softirq'])}" + "".join(f" {v}" for v in want["softirq"]) + "\n"
    return text, want


@FUZZ
@given(stat_files())
def test_generated_stat_round_trips(generated: tuple[str, dict]) -> None:
    text, want = generated
    s = parse_stat(text)
    pad = [-1] * (len(CPU_TIME_FIELDS) - want["nfields"])
    assert s.nfields == want["nfields"] and list(s.cpus) == want["cpus"]
    assert s.total_times.tolist() == want["total"] + pad
    assert s.times.tolist() == [t + pad for t in want["times"]]
    assert s.intr is not None and s.intr.tolist() == want["intr"] and s.intr_total == sum(want["intr"])
    if want["softirq"] is None:
        assert s.softirq is None and s.softirq_total is None
    else:
        assert s.softirq == tuple(want["softirq"]) and s.softirq_total == sum(want["softirq"])
    assert (s.ctxt, s.procs_running) == (want["ctxt"], want["procs_running"])


@st.composite
def softnet_files(draw: st.DrawFn) -> tuple[str, int, list[list[int]]]:
    width = draw(st.integers(9, len(SOFTNET_FIELDS) + 2))
    cpus = sorted(draw(st.sets(st.integers(0, 4095), min_size=1, max_size=8)))
    rows = []
    for cpu in cpus:
        row = draw(st.lists(U32, min_size=width, max_size=width))
        if width > SOFTNET_FIELDS.index("cpu"):
            row[SOFTNET_FIELDS.index("cpu")] = cpu
        rows.append(row)
    return "".join(" ".join(f"{v:08x}" for v in row) + "\n" for row in rows), width, rows


@FUZZ
@given(softnet_files())
def test_generated_softnet_round_trips(generated: tuple[str, int, list[list[int]]]) -> None:
    text, width, rows = generated
    s = parse_softnet(text)
    assert len(s.rows) == len(rows)
    for position, (parsed, row) in enumerate(zip(s.rows, rows)):
        assert parsed.ncolumns == width
        for index, name in enumerate(SOFTNET_FIELDS):
            if name == "cpu":
                assert parsed.cpu == (row[index] if index < width else position)
                assert parsed.cpu_from_column == (index < width)
            elif hasattr(parsed, name):
                assert getattr(parsed, name) == (row[index] if index < width else None), name


CENTI = st.integers(0, 10099)  # LOAD_INT.LOAD_FRAC of a percentage, 0.00 .. 100.99


@FUZZ
@given(avgs=st.tuples(CENTI, CENTI, CENTI), total=st.integers(0, 2**64 - 1), some=st.booleans())
def test_generated_pressure_round_trips(avgs: tuple[int, int, int], total: int, some: bool) -> None:
    shown = " ".join(f"{k}={v // 100}.{v % 100:02d}" for k, v in zip(("avg10", "avg60", "avg300"), avgs))
    text = ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n" if some else "") + f"full {shown} total={total}\n"
    p = parse_pressure(text)
    assert (p.avg10, p.avg60, p.avg300) == tuple(v / 100 for v in avgs)
    assert p.total_us == total


@pytest.mark.parametrize("kind", sorted(PARSERS))
def test_every_mutation_sample_parses_before_it_is_mutated(kind: str) -> None:
    # the mutation tests are only as good as the files they start from
    assert len(SAMPLES[kind]) >= 4
    for text in SAMPLES[kind]:
        PARSERS[kind](text, f"sample/{kind}")
