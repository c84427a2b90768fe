"""One schema layer for irqlab's TOML files: a file's keys as a table of typed fields.

Each loader (sim/scenario.py, daemon/config.py, analysis/latency_budget.py) states its keys as
data — `{"cpus": Int(2, 1, 64), "duration_s": Duration(1.0, "s", 0.001, 3600), ...}` — and
`read()` checks an already decoded table against it: types, ranges, choices, units, unknown
keys (with a "did you mean" from difflib), defaults filled in. Every problem is one error,
one line, in one format:

    FILE: key.path: message        e.g.  w.toml: detect.baseline.k: must be a number from 0.1 to 1000, not -1

(FILE is left out where no file is known, as for a table built in code.) Pure: nothing here
reads a file but `load_toml()`, the one reader and decoder the I/O layers call; whether root
may trust a file is sources/trust.py's question, handed in as `check`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from irqlab.cpulist import parse_cpulist
from irqlab.errors import IrqlabError, ParseError, excerpt
from irqlab.units import NS_PER_MS, NS_PER_S, NS_PER_US, printable


class SchemaError(IrqlabError):
    """A file (or table) its schema refuses; str() is `FILE: key.path: message`."""

    def __init__(self, message: str, *, key: str = "", origin: str = "") -> None:
        self.message, self.key, self.origin = message, key, origin
        super().__init__(": ".join(printable(p) for p in (origin, key, message) if p))

    def in_file(self, origin: str) -> SchemaError:
        """The same error with its file named (unchanged when it names one already)."""
        if self.origin:
            return self
        return type(self)(self.message, key=self.key, origin=str(origin))


Error = type[SchemaError]


def bare(name: object) -> str:
    """A key as TOML would take it: bare when it can be, else quoted (one line, escapes shown)."""
    text = str(name)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else json.dumps(text)


def shown(value: object) -> str:
    """A value as an error quotes it: its repr, short and on one line."""
    return excerpt(repr(value), 60)


def did_you_mean(word: object, known: Sequence[str]) -> str:
    """' (did you mean 'x'?)' for the nearest known word, else ' (known: a, b, c)'."""
    near = difflib.get_close_matches(str(word), list(known), n=1)
    return f" (did you mean {near[0]!r}?)" if near else f" (known: {', '.join(known)})"


@dataclass(frozen=True, slots=True)
class At:
    """Where a value sits: the file, its key path, and the error class its loader raises."""

    error: Error = SchemaError
    origin: str = ""
    key: str = ""

    def child(self, name: object) -> At:
        return dataclasses.replace(self, key=f"{self.key}.{bare(name)}" if self.key else bare(name))

    def item(self, index: int) -> At:
        return dataclasses.replace(self, key=f"{self.key}[{index}]")

    def fail(self, message: str) -> SchemaError:
        return self.error(message, key=self.key, origin=self.origin)


class Values(dict[str, Any]):
    """A checked table: every key of its schema (absent ones at their default), where it sits,
    and which keys the file gave."""

    def __init__(self, items: Mapping[str, Any], at: At, given: frozenset[str]) -> None:
        super().__init__(items)
        self.at = at
        self.given = given

    def fail(self, name: str, message: str) -> SchemaError:
        """The error for key `name` of this table."""
        return self.at.child(name).fail(message)


# --- numbers and their wording -----------------------------------------------------------------


def _num(x: float) -> str:
    if isinstance(x, int) or (x == int(x) and abs(x) < 1e16):
        return str(int(x))
    return f"{x:g}"


def _expect(kind: str, lo: float | None, hi: float | None, unit: str = "", lo_open: bool = False) -> str:
    """'must be an integer from 1 to 64', 'must be a duration above 0 and up to 10 s', ..."""
    if lo is not None and hi is not None:
        span = f" above {_num(lo)} and up to {_num(hi)}" if lo_open else f" from {_num(lo)} to {_num(hi)}"
    elif lo is not None:
        span = f" above {_num(lo)}" if lo_open else f" of at least {_num(lo)}"
    else:
        span = f" up to {_num(hi)}" if hi is not None else ""
    return f"must be {kind}{span}{' ' + unit if unit else ''}"


def is_number(value: object) -> bool:
    """An int or float that is finite; a bool is not a number here."""
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]


def _inside(v: float, lo: float | None, hi: float | None, lo_open: bool = False) -> bool:
    if lo is not None and (v <= lo if lo_open else v < lo):
        return False
    return hi is None or v <= hi


def check_range(value: float, lo: float | None, hi: float | None, at: At, kind: str = "an integer") -> float:
    """value, or the schema's range error at `at`: for ranges known only at run time (CPU ids)."""
    if not _inside(value, lo, hi):
        raise at.fail(f"{_expect(kind, lo, hi)}, not {shown(value)}")
    return value


# Time units a Duration takes in text ("10ms", "2 s", "1.5h"); a bare number is in the key's unit.
UNITS: dict[str, int] = {"ns": 1, "us": NS_PER_US, "µs": NS_PER_US, "ms": NS_PER_MS, "s": NS_PER_S,
                         "m": 60 * NS_PER_S, "min": 60 * NS_PER_S, "h": 3600 * NS_PER_S}
_DURATION = re.compile(r"\s*([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*([a-zµ]+)\s*\Z")


def parse_duration(text: str, unit: str) -> float | None:
    """'10ms' or '2 s' as a number of `unit`; None when text is not a number and a known unit."""
    m = _DURATION.match(text)
    if m is None or m.group(2) not in UNITS:
        return None
    return float(m.group(1)) * UNITS[m.group(2)] / UNITS[unit]


# --- fields -----------------------------------------------------------------------------------


class _Fill:
    """Default of a table field: the table's own defaults, as if the file gave it empty."""

    def __repr__(self) -> str:
        return "FILL"


FILL: Any = _Fill()


@dataclass(frozen=True, slots=True)
class Field:
    """One key of a schema: its default when absent (or `required`), and how a value is checked."""

    default: Any = None
    required: bool = dataclasses.field(default=False, kw_only=True)

    def absent(self, at: At) -> Any:
        if self.required:
            raise at.fail("missing")
        return self.default

    def check(self, value: Any, at: At) -> Any:
        return value  # any value (a key a later stage reads, or refuses with its own message)


@dataclass(frozen=True, slots=True)
class Int(Field):
    """An integer (not a bool), optionally lo..hi or one of `choices`."""

    lo: int | None = None
    hi: int | None = None
    choices: tuple[int, ...] = ()

    def check(self, value: Any, at: At) -> int:
        if self.choices and value not in self.choices:
            raise at.fail(f"must be one of {', '.join(map(str, self.choices))}, not {shown(value)}")
        if type(value) is not int or not _inside(value, self.lo, self.hi):
            raise at.fail(f"{_expect('an integer', self.lo, self.hi)}, not {shown(value)}")
        return value


@dataclass(frozen=True, slots=True)
class Float(Field):
    """A finite number (an int is taken as float), optionally within lo..hi (lo excluded if lo_open)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False

    def check(self, value: Any, at: At) -> float:
        if not is_number(value) or not _inside(value, self.lo, self.hi, self.lo_open):
            raise at.fail(f"{_expect('a number', self.lo, self.hi, lo_open=self.lo_open)}, not {shown(value)}")
        return float(value)


@dataclass(frozen=True, slots=True)
class Duration(Field):
    """A time as integer ns: a number in `unit` (the unit the key's name states), or text with
    its own unit ("10ms", "2 s"); default, lo and hi are in `unit`."""

    unit: str = "s"
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False

    def absent(self, at: At) -> Any:
        value = Field.absent(self, at)
        return None if value is None else round(value * UNITS[self.unit])

    def check(self, value: Any, at: At) -> int:
        amount = parse_duration(value, self.unit) if isinstance(value, str) else value if is_number(value) else None
        if amount is None or not _inside(amount, self.lo, self.hi, self.lo_open):
            tail = f' (a number of {self.unit}, or text like "10ms")' if isinstance(value, str) else ""
            raise at.fail(f"{_expect('a duration', self.lo, self.hi, self.unit, self.lo_open)}{tail}, not {shown(value)}")
        ns = round(amount * UNITS[self.unit])
        if self.lo_open and self.lo is not None and ns <= round(self.lo * UNITS[self.unit]):
            raise at.fail(f"{shown(value)} {self.unit} is below one nanosecond")
        return ns


@dataclass(frozen=True, slots=True)
class Bool(Field):
    """true or false."""

    def check(self, value: Any, at: At) -> bool:
        if not isinstance(value, bool):
            raise at.fail(f"must be true or false, not {shown(value)}")
        return value


@dataclass(frozen=True, slots=True)
class Str(Field):
    """A string without NUL of at most max_len characters; optionally non-blank or one of `choices`."""

    max_len: int = 4096
    choices: tuple[str, ...] = ()
    nonempty: bool = False

    def check(self, value: Any, at: At) -> str:
        if not isinstance(value, str) or len(value) > self.max_len or "\x00" in value or (self.nonempty and not value.strip()):
            blank = "a non-empty string" if self.nonempty else "a string"
            raise at.fail(f"must be {blank} of at most {self.max_len} characters, not {shown(value)}")
        if self.choices and value not in self.choices:
            raise at.fail(f"{shown(value)} is not one of {', '.join(self.choices)}")
        return value


@dataclass(frozen=True, slots=True)
class Strings(Field):
    """A list of non-empty strings, each one of `choices` when given; a tuple."""

    choices: tuple[str, ...] = ()

    def check(self, value: Any, at: At) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(x, str) and x and "\x00" not in x for x in value):
            raise at.fail(f"must be a list of non-empty strings, not {shown(value)}")
        bad = [x for x in value if self.choices and x not in self.choices]
        if bad:
            raise at.fail(f"{bad[0]!r} is not one of {', '.join(self.choices)}")
        return tuple(value)


@dataclass(frozen=True, slots=True)
class Numbers(Field):
    """A list of finite numbers, each within lo..hi when given; a tuple of floats."""

    lo: float | None = None
    hi: float | None = None

    def check(self, value: Any, at: At) -> tuple[float, ...]:
        if not isinstance(value, list) or not all(is_number(v) and _inside(v, self.lo, self.hi) for v in value):
            raise at.fail(f"{_expect('a list of numbers', self.lo, self.hi)}, not {shown(value)}")
        return tuple(float(v) for v in value)


@dataclass(frozen=True, slots=True)
class CpuList(Field):
    """A CPU list like "0-3,8" (a lone integer is one CPU); a sorted tuple of CPU ids."""

    nonempty: bool = False

    def check(self, value: Any, at: At) -> tuple[int, ...]:
        if type(value) is int:
            value = str(value)
        if not isinstance(value, str):
            raise at.fail(f'must be a CPU list string like "0-3,8", not {shown(value)}')
        try:
            cpus = parse_cpulist(value, at.key)
        except ParseError as exc:
            raise at.fail(f"not a CPU list like 0-3,8 ({exc.message})") from None
        if self.nonempty and not cpus:
            raise at.fail("empty CPU list")
        return cpus


@dataclass(frozen=True, slots=True)
class Table(Field):
    """A sub-table checked against its own schema, then handed to `build` (which may refuse it).

    Absent, it is its schema's defaults (FILL) or `default`. With `shorthand`, a lone value
    stands for that one key (`work_ns = 500` for `work_ns = {mean = 500}`).
    """

    schema: Mapping[str, Field] = dataclasses.field(default_factory=dict)
    default: Any = dataclasses.field(default=FILL, kw_only=True)
    shorthand: str | None = dataclasses.field(default=None, kw_only=True)
    build: Callable[[Values], Any] | None = dataclasses.field(default=None, kw_only=True)

    def absent(self, at: At) -> Any:
        if self.default is FILL and not self.required:
            return self.check({}, at)
        return Field.absent(self, at)

    def check(self, value: Any, at: At) -> Any:
        if self.shorthand is not None and not isinstance(value, dict):
            # The lone value is checked as the table itself (`rcu_callback_ns: must be ...`).
            items = {k: f.check(value, at) if k == self.shorthand else f.absent(at.child(k)) for k, f in self.schema.items()}
            values = Values(items, at, frozenset({self.shorthand}))
        else:
            values = read(value, self.schema, at)
        return values if self.build is None else self.build(values)


@dataclass(frozen=True, slots=True)
class Array(Field):
    """An array of tables ([[key]]), each checked against `schema`; a list of Values."""

    schema: Mapping[str, Field] = dataclasses.field(default_factory=dict)
    default: Any = dataclasses.field(default=(), kw_only=True)
    max_items: int | None = dataclasses.field(default=None, kw_only=True)

    def check(self, value: Any, at: At) -> list[Values]:
        if not isinstance(value, list):
            raise at.fail(f"must be an array of tables ([[{at.key}]])")
        if self.max_items is not None and len(value) > self.max_items:
            raise at.fail(f"{len(value)} tables; at most {self.max_items}")
        return [read(item, self.schema, at.item(i)) for i, item in enumerate(value)]


@dataclass(frozen=True, slots=True)
class Map(Field):
    """A table of free keys (one of `keys` when given, named `what` in the error), each value a `value`."""

    value: Field = Field()
    keys: tuple[str, ...] = ()
    what: str = "key"
    default: Any = dataclasses.field(default=FILL, kw_only=True)

    def absent(self, at: At) -> Any:
        return {} if self.default is FILL else Field.absent(self, at)

    def check(self, value: Any, at: At) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise at.fail(f"must be a table, not {shown(value)}")
        for name in value:
            if self.keys and name not in self.keys:
                raise at.child(name).fail(f"unknown {self.what}{did_you_mean(name, self.keys)}")
        return {name: self.value.check(v, at.child(name)) for name, v in value.items()}


Schema = Mapping[str, Field]


def read(table: Any, schema: Schema, at: At) -> Values:
    """table checked against schema: unknown keys refused ("did you mean"), absent ones defaulted."""
    if not isinstance(table, dict):
        raise at.fail(f"must be a table, not {shown(table)}")
    for name in table:
        if name not in schema:
            raise at.child(name).fail(f"unknown key{did_you_mean(name, list(schema))}")
    items = {name: field.check(table[name], at.child(name)) if name in table else field.absent(at.child(name))
             for name, field in schema.items()}
    return Values(items, at, frozenset(table))


# --- TOML text and files ---------------------------------------------------------------------

MAX_FILE_BYTES = 16 << 20  # a config is a page or two; anything this large is not one


def decode_toml(data: bytes | str, origin: str, error: Error = SchemaError) -> dict[str, Any]:
    """TOML text (bytes must be UTF-8) as a dict; one error naming the file otherwise."""
    try:
        return tomllib.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except UnicodeDecodeError:
        raise error("not UTF-8 text", origin=origin) from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"not valid TOML: {exc}", origin=origin) from None
    except RecursionError:  # tomllib recurses per nesting level of inline arrays and tables
        raise error("not valid TOML: nested too deeply", origin=origin) from None


def load_toml(path: str | os.PathLike[str], error: Error = SchemaError, *, what: str = "file",
              check: Callable[[os.stat_result, str], str | None] | None = None) -> dict[str, Any]:
    """Read and decode a TOML file; every problem is one error naming the file.

    Only a regular file is read (a FIFO would block, a device never end). `check(stat, what)`
    judges the file that was opened, not a name that may since point elsewhere, and returns
    why it is refused, or None (sources/trust.py's root_refusal for a file root obeys).
    """
    origin = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise error(f"cannot read {what}: not a regular file", origin=origin)
            refused = check(st, what) if check is not None else None
            if refused:
                raise error(refused, origin=origin)
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror or exc}", origin=origin) from None
    if len(data) > MAX_FILE_BYTES:
        raise error(f"cannot read {what}: larger than {MAX_FILE_BYTES >> 20} MiB", origin=origin)
    return decode_toml(data, origin, error)
