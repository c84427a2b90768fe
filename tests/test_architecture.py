"""The one-way data flow of DESIGN.md, enforced: sources -> model -> analysis -> outputs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "irqlab"
BASE = {"errors", "units", "cpulist"}
# Which irqlab packages each layer may import. cli/ (and later daemon/, tui/) wire them all.
ALLOWED: dict[str, set[str]] = {
    "errors": {"units"},  # printable(): an error quotes a token from a foreign file
    "units": set(),
    "cpulist": {"errors"},
    "model": BASE | {"model"},
    "sources": BASE | {"model", "sources"},
    "analysis": BASE | {"model", "analysis"},
    "outputs": BASE | {"model", "analysis", "outputs"},
    # tracefs reader: reads the OS like sources/, through sources.fs for error translation.
    "tracing": BASE | {"model", "tracing", "sources"},
    "sim": BASE | {"model", "sim"},  # a source of data like sources/: cli/ wires it to analysis
    "tui": BASE | {"model", "analysis", "outputs", "tui"},  # the cli hands it a sampler callable
    "cli": None,  # anything
    "mitigate": BASE | {"model", "mitigate", "sources"},  # writes the OS; reads it only through sources.fs
    "daemon": None,  # wires everything, like cli
    "probe": BASE | {"model", "probe"},  # the latency probe reads the OS (clocks, scheduler) like sources/
    # BPF backend: reads the OS like sources/ (bpf(2), tracefs formats); builds analysis.trace results.
    "bpf": BASE | {"model", "bpf", "tracing", "sources"},
    # One tracer lifecycle for both backends: joins tracing/ and bpf/ to analysis/trace.py's
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


def imported_irqlab_parts(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "irqlab":
                # `from irqlab import __version__` is the package itself, allowed everywhere.
                names = [f"irqlab.{a.name}" for a in node.names if not a.name.startswith("__")]
        for name in names:
            if name.startswith("irqlab."):
                out.add(name.split(".")[1])
    return out


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_data_flow(path: Path):
    allowed = ALLOWED[layer(path)]
    if allowed is None:
        return
    bad = imported_irqlab_parts(path) - allowed - {layer(path)}
    assert not bad, f"{path.relative_to(SRC)} imports irqlab.{sorted(bad)}, against DESIGN.md's data flow"


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
