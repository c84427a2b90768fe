"""The one-way data flow of DESIGN.md, enforced: sources -> model -> analysis -> outputs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "irqlab"
BASE = {"errors", "units", "cpulist", "schema"}
MITIGATE_READS = {"sources.fs", "sources.host", "sources.irqinfo", "sources.netdev", "sources.devirqs", "sources.netns",
                  "sources.napi", "sources.tasks"}
# Which irqlab packages or modules each layer may import ("model": the package and all its
# modules; "sources.fs": that module only). cli/, daemon/ wire them all. docs/ARCHITECTURE.md's
# table says the same (test_the_architecture_table_names_the_allowed_modules).
ALLOWED: dict[str, set[str]] = {
    "errors": {"units"},  # printable(): an error quotes a token from a foreign file
    "units": set(),
    "cpulist": {"errors"},
    "schema": {"errors", "units", "cpulist"},  # the TOML schema layer every loader (sim/, daemon/, analysis/) uses
    "model": BASE | {"model"},
    "sources": BASE | {"model", "sources"},
    "analysis": BASE | {"model", "analysis"},
    "outputs": BASE | {"model", "analysis", "outputs"},
    # tracefs reader: reads the OS like sources/, through sources.fs for error translation.
    "tracing": BASE | {"model", "tracing", "sources.fs"},
    "sim": BASE | {"model", "sim"},  # a source of data like sources/: cli/ wires it to analysis
    "tui": BASE | {"model", "analysis", "outputs", "tui"},  # the cli hands it a sampler callable
    "cli": None,  # anything
    # Writes the OS; reads it only through the sources/ readers of what it writes or must know
    # first (never the sampler, captures or recordings), and enters namespaces with sources.netns.
    "mitigate": BASE | {"model", "mitigate", *MITIGATE_READS},
    "daemon": None,  # wires everything, like cli
    "probe": BASE | {"model", "probe"},  # the latency probe reads the OS (clocks, scheduler) like sources/
    # BPF backend: loads programs through bpf(2); reads tracefs formats through tracing/, IRQ
    # numbers and names through sources.irqinfo, ksoftirqd pids through sources.tasks.
    "bpf": BASE | {"model", "bpf", "tracing", "sources.fs", "sources.irqinfo", "sources.tasks"},
    # One tracer lifecycle for both backends: joins tracing/ and bpf/ to analysis/trace_aggregate.py's
    # aggregation, which neither may import; cli/ and daemon/ call it, it never parses args or prints.
    "tracer": BASE | {"model", "analysis", "tracing", "bpf", "sources", "tracer"},
    "__init__": set(),
    "__main__": {"cli"},
}


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py"))


def layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def is_module(dotted: str) -> bool:
    """Whether irqlab.a.b names a module or package of the source tree (not a name inside one)."""
    here = SRC.parent.joinpath(*dotted.split("."))
    return here.with_suffix(".py").is_file() or (here / "__init__.py").is_file()


def _from_base(node: ast.ImportFrom, package: str) -> str | None:
    """The absolute module of a `from X import ...` in package (relative imports resolved)."""
    if node.level == 0:
        return node.module
    parts = package.split(".")
    if node.level - 1 >= len(parts):
        return None  # beyond the top: not an import of irqlab
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_in(source: str, package: str) -> set[str]:
    """Every irqlab module a file of package imports, as a path below irqlab ("sources.fs").

    `from irqlab.sources import fs` is sources.fs; a name defined in a package's __init__
    counts as the package itself; `from irqlab import __version__` counts as nothing.
    """
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, package)
            if base is None:
                continue
            subs = [f"{base}.{a.name}" for a in node.names if not a.name.startswith("__")]
            names = [sub if is_module(sub) else base for sub in subs]
        out |= {n.removeprefix("irqlab.") for n in names if n.startswith("irqlab.")}
    return out


def imported_irqlab_modules(path: Path) -> set[str]:
    rel = path.relative_to(SRC.parent).with_suffix("")
    return imports_in(path.read_text(), ".".join(rel.parts[:-1]))


def permitted(module: str, allowed: set[str]) -> bool:
    """A module is allowed by its own name or by a package above it, never by a sibling."""
    return any(module == a or module.startswith(a + ".") for a in allowed)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_data_flow(path: Path):
    allowed = ALLOWED[layer(path)]
    if allowed is None:
        return
    bad = {m for m in imported_irqlab_modules(path) if not permitted(m, allowed | {layer(path)})}
    assert not bad, f"{path.relative_to(SRC)} imports irqlab.{sorted(bad)}, against DESIGN.md's data flow"


def test_imports_are_recorded_as_the_modules_they_name():
    source = ("from irqlab.sources.fs import Roots\nfrom irqlab.bpf import syscall\nimport irqlab.model.trace_result\n"
              "from irqlab import cli, __version__\nfrom . import netns\nfrom ..errors import IrqlabError\n"
              "def f():\n    from irqlab.sources import sampler\n")
    assert imports_in(source, "irqlab.mitigate") == {"sources.fs", "bpf.syscall", "model.trace_result", "cli", "mitigate.netns",
                                                     "errors", "sources.sampler"}


def test_a_module_allowed_by_name_allows_neither_its_package_nor_its_siblings():
    assert permitted("sources.netdev", ALLOWED["mitigate"]) and permitted("model.trace_result", ALLOWED["mitigate"])
    assert not permitted("sources.sampler", ALLOWED["mitigate"]) and not permitted("sources", ALLOWED["mitigate"])
    assert not permitted("sources.tasks", ALLOWED["tracing"])


def test_every_allowed_name_is_a_module_of_the_tree():
    named = {m for allowed in ALLOWED.values() if allowed for m in allowed} | set(ALLOWED)
    assert not {m for m in named if not is_module(f"irqlab.{m}")}


# The rows of docs/ARCHITECTURE.md's package table that name modules, not only packages.
DOC_ROWS = {"mitigate": "`mitigate/`", "bpf": "`bpf/`", "tracing": "`tracing/`"}


def test_the_architecture_table_names_the_allowed_modules():
    doc = (SRC.parent.parent / "docs" / "ARCHITECTURE.md").read_text()
    for layer_name, cell in DOC_ROWS.items():
        (row,) = [line for line in doc.splitlines() if line.startswith(f"| {cell} |")]
        said = {m.strip().strip("`") for m in row.split("|")[2].split(",")}
        assert said == ALLOWED[layer_name] - BASE - {layer_name}, f"docs/ARCHITECTURE.md's {cell} row"


# Imports each irqlab module in a forked child of an interpreter that has loaded only the
# heavy third-party libraries, so every module is imported on its own (no irqlab module loaded
# before it) without paying an interpreter start per module.
CHECKER = """
import importlib, os, sys
for lib in ("numpy", "textual.app", "prometheus_client", "matplotlib"):
    try:
        importlib.import_module(lib)
    except ImportError:
        pass
assert not [m for m in sys.modules if m.startswith("irqlab")]
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException as exc:
            print(f"{name}: {type(exc).__name__}: {exc}", flush=True)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        failed.append(name)
sys.exit(1 if failed else 0)
"""


def module_names() -> list[str]:
    out = []
    for path in modules():
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        if not name.endswith("__main__"):
            out.append(name)
    return out


def test_every_module_imports_on_its_own():
    proc = subprocess.run([sys.executable, "-c", CHECKER, *module_names()], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"modules that fail to import on their own:\n{proc.stdout}{proc.stderr}"


def test_help_does_not_import_numpy():
    code = "import sys; from irqlab.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nassert 'numpy' not in sys.modules, 'numpy imported by --help'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True)


def sim_import_graph() -> dict[str, set[str]]:
    """Which sim/ modules each sim/ module imports, by every import statement it holds.

    Imports inside functions and under `if TYPE_CHECKING:` count too: a module that names
    another only for its types still depends on its shape, and a cycle drawn that way is one
    a refactoring has to untangle all the same (sim/ports.py and the per-module Protocols
    exist so that none is needed).
    """
    sim = SRC / "sim"
    names = {p.stem for p in sim.glob("*.py")} - {"__init__"}
    graph: dict[str, set[str]] = {}
    for path in sorted(sim.glob("*.py")):
        if path.stem == "__init__":
            continue
        out: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from irqlab.sim import napi` names the module napi; `from irqlab.sim.napi import X` too.
                mods = [f"{node.module}.{a.name}" for a in node.names] if node.module == "irqlab.sim" else [node.module]
            else:
                continue
            for mod in mods:
                parts = mod.split(".")
                if parts[:2] == ["irqlab", "sim"] and len(parts) > 2 and parts[2] in names:
                    out.add(parts[2])
        graph[path.stem] = out - {path.stem}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_import_cycles_are_found():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_sim_modules_import_each_other_one_way():
    cycles = import_cycles(sim_import_graph())
    assert not cycles, f"sim/ import cycles (counting TYPE_CHECKING and function-local imports): {cycles}"
