"""The one-way data flow of DESIGN.md, enforced: sources -> model -> analysis -> outputs."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "irqlab"
BASE = {"errors", "units", "cpulist"}
# Which irqlab packages each layer may import. cli/ (and later daemon/, tui/) wire them all.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
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


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_every_module_imports_on_its_own(path: Path):
    rel = path.relative_to(SRC.parent).with_suffix("")
    name = ".".join(rel.parts).removesuffix(".__init__")
    if name.endswith("__main__"):
        return
    code = f"import importlib; importlib.import_module({name!r})"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_help_does_not_import_numpy():
    code = "import sys; from irqlab.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nassert 'numpy' not in sys.modules, 'numpy imported by --help'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True)
