"""The import graph of the project's own code: layers only import downwards, and no module
imports itself through others (a loop), counting imports inside functions and through
``importlib.import_module("...")`` / ``__import__("...")`` with a literal name.

Layers, bottom to top: ``edge_runtime`` (the device) < ``train`` < ``convert`` <
``benchmarks`` < ``kws`` (the toolchain's command and pipeline).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

LAYERS = ("edge_runtime", "train", "convert", "benchmarks", "kws")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def own_modules() -> dict[str, Path]:
    return {module_name(p): p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")}


def imported_names(tree: ast.AST, package: str) -> set[str]:
    """Every module name imported anywhere in ``tree`` (absolute; relative resolved)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                out.add(node.args[0].value)
    return out


def graph() -> dict[str, set[str]]:
    modules = own_modules()
    edges = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = imported_names(ast.parse(path.read_text()), package)
        edges[name] = {m for m in found if m in modules and m != name}
    return edges


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def test_the_graph_sees_function_level_and_importlib_imports():
    tree = ast.parse("def f():\n    import importlib\n    importlib.import_module('convert.cli')\n"
                     "    from train import data\n")
    assert {"convert.cli", "train", "train.data"} <= imported_names(tree, "x")


def test_no_import_runs_up_the_layers():
    upward = sorted(f"{a} -> {b}" for a, targets in graph().items() for b in targets
                    if layer(b) > layer(a))
    assert upward == []


def test_no_import_loops():
    edges = graph()
    loops = []

    def visit(node: str, path: list[str], on_path: set[str], done: set[str]) -> None:
        for nxt in sorted(edges[node]):
            if nxt in on_path:
                loops.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in done:
                on_path.add(nxt)
                visit(nxt, path + [nxt], on_path, done)
                on_path.discard(nxt)
        done.add(node)

    done: set[str] = set()
    for start in sorted(edges):
        if start not in done:
            visit(start, [start], {start}, done)
    assert loops == []


def test_dynamic_imports_load_no_module_of_ours():
    """A name computed at run time escapes the graph: only the interpreter finder does that,
    and its names are third-party backends."""
    from edge_runtime.interpreter import _BACKENDS

    dynamic = set()
    for name, path in own_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and node.args
                    and not isinstance(node.args[0], ast.Constant)
                    and getattr(node.func, "attr", getattr(node.func, "id", "")) in
                    ("import_module", "__import__")):
                dynamic.add(name)
    assert dynamic == {"edge_runtime.interpreter"}
    assert not any(b.split(".")[0] in LAYERS for b in _BACKENDS.values())
