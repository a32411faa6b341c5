"""The package layout holds its rules: every subpackage says what it may import, and does no
more; lower layers never import upper ones; no module imports itself back through others.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: a lazy import
is still a dependency, and an upward one still tangles the layers.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "compiler"
# Top-level modules that are not subpackages, and where they sit among the layers.
MODULES = {"pipeline": "core, syntax, model, values, render, secrets, plan",
           "__main__": "cli"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The compiler modules (or packages) ``path`` imports, absolute, wherever the import is."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "compiler":
                continue
            for alias in node.names:  # `from . import limits` imports a module
                sub = f"{target}.{alias.name}"
                found.add(sub if _exists(sub) else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "compiler")
    found.discard(name)
    return found


def _exists(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def group(module: str) -> str:
    """The layer a module belongs to: its subpackage, or itself when top-level."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "compiler"


def declared() -> dict[str, set[str] | None]:
    """Layer → the layers it may import, from each subpackage's docstring (None: anything)."""
    rules: dict[str, set[str] | None] = {}
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        match = re.search(r"^May import: (.*?)\.?$", doc, re.MULTILINE)
        assert match, f"{init.relative_to(ROOT)}: the docstring has no 'May import:' line"
        text = match.group(1)
        rules[init.parent.name] = (None if text.startswith("anything") else
                                   set() if text == "nothing" else
                                   {part.strip() for part in text.split(",")})
    for name, text in MODULES.items():
        rules[name] = {part.strip() for part in text.split(",")}
    return rules


ALL = sorted(PACKAGE.rglob("*.py"))
GRAPH = {module_name(path): imports_of(path) for path in ALL}


def test_every_subpackage_says_in_three_lines_what_lives_there_and_what_it_may_import() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        head = doc.split("\n\n")[0].splitlines()
        assert len(head) == 3, f"{init.relative_to(ROOT)}: {head}"
        assert head[1].startswith("Lives here:") and head[2].startswith("May import:")


def test_the_layers_themselves_form_no_cycle() -> None:
    rules = declared()
    layers = nx.DiGraph()
    for layer, allowed in rules.items():
        layers.add_node(layer)
        for other in allowed if allowed is not None else ():
            assert other in rules, f"{layer} may import unknown layer '{other}'"
            layers.add_edge(layer, other)
    assert nx.is_directed_acyclic_graph(layers), nx.find_cycle(layers)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_module_imports_a_layer_it_may_not(module: str) -> None:
    rules = declared()
    layer = group(module)
    allowed = rules.get(layer, set()) if layer != "compiler" else set()
    wrong = []
    for target in sorted(GRAPH[module]):
        other = group(target)
        if other == layer or target == "compiler" or allowed is None:
            continue  # its own layer; the top package (only __version__)
        if other not in allowed:
            wrong.append(target)
    assert not wrong, f"{module} imports {wrong}; its layer '{layer}' may import {allowed}"


def test_no_import_cycles_between_modules() -> None:
    graph = nx.DiGraph()
    for module, targets in GRAPH.items():
        graph.add_node(module)
        for target in targets:
            if target != "compiler":  # a package's __init__ importing its own children is fine
                graph.add_edge(module, target)
    # A package __init__ that re-exports its modules (check) is their parent, not a cycle.
    for module in list(graph):
        for target in list(graph.successors(module)):
            if target.startswith(module + "."):
                graph.remove_edge(module, target)
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, cycles


def test_the_top_package_and_subpackage_inits_stay_light() -> None:
    """`meshc render`'s fast path imports compiler, compiler.cli and compiler.output: their
    ``__init__`` modules import nothing."""
    for init in [PACKAGE / "__init__.py", *sorted(PACKAGE.glob("*/__init__.py"))]:
        if init.parent.name == "check":  # the check package's public API lives in its __init__
            continue
        tree = ast.parse(init.read_text(encoding="utf-8"))
        assert not any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree)), init


def test_ls_compiler_tells_the_pipeline() -> None:
    """The stage packages are there, and nothing else sits flat at the top but the pipeline."""
    top = sorted(p.name for p in PACKAGE.iterdir() if not p.name.startswith(("_", ".")))
    assert top == ["check", "cli", "core", "cost", "gitops", "model", "ops", "output",
                   "pipeline.py", "plan", "render", "secrets", "syntax", "values"]
