"""Project layout rules (README / DESIGN.md): no import cycle among the
project's modules (function-level imports included), no module over 450
lines, model/ never imports bpy, and dependencies point one way
(panels → operators → addon → model)."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGES = ("addon", "model", "operators", "panels", "tools")
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in sorted((REPO / pkg).rglob("*.py")):
            if "__pycache__" in p.parts:
                continue
            rel = p.relative_to(REPO).with_suffix("")
            name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            out[name] = p
    return out


def _imports(name: str, path: Path, known: set) -> set:
    """Project modules ``name`` imports anywhere in its file (absolute, relative, tools' sibling imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base[:len(base) - (node.level - 1)] if node.level > 1 else list(base)
                mod = ".".join(parts + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
                mod = mod[len("cospeech."):] if mod.startswith("cospeech.") else mod
                if name.startswith("tools.") and mod in {k.split(".")[-1] for k in known if k.startswith("tools.")}:
                    mod = "tools." + mod
            for alias in node.names:
                cand = f"{mod}.{alias.name}" if mod else alias.name
                if cand in known:
                    found.add(cand)
                elif mod in known:
                    found.add(mod)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                mod = alias.name[len("cospeech."):] if alias.name.startswith("cospeech.") else alias.name
                if name.startswith("tools.") and "tools." + mod in known:
                    mod = "tools." + mod
                if mod in known:
                    found.add(mod)
    found.discard(name)
    # a package's own __init__ importing its parent is not a cycle we care about
    return {m for m in found if not name.startswith(m + ".")}


def _graph():
    mods = _modules()
    known = set(mods)
    return mods, {n: _imports(n, p, known) for n, p in mods.items()}


def find_cycles(graph: dict) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    _mods, graph = _graph()
    assert find_cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_module_size():
    mods, _ = _graph()
    big = {n: len(p.read_text(encoding="utf-8").splitlines()) for n, p in mods.items()}
    assert {n: k for n, k in big.items() if k > MAX_LINES} == {}


def test_dependencies_point_one_way():
    _mods, graph = _graph()
    rank = {"model": 0, "addon": 1, "operators": 2, "panels": 3}
    bad = [(a, b) for a, deps in graph.items() for b in deps
           if a.split(".")[0] in rank and b.split(".")[0] in rank and rank[b.split(".")[0]] > rank[a.split(".")[0]]]
    assert bad == []
    model_bpy = [n for n, p in _mods.items() if n.startswith("model")
                 and any(isinstance(x, (ast.Import, ast.ImportFrom)) and "bpy" in ast.unparse(x).split()
                         for x in ast.walk(ast.parse(p.read_text(encoding="utf-8"))))]
    assert model_bpy == []
