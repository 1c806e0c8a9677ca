"""fer_core's import rules (docs/architecture.md), read from the source with ``ast``.

Every import counts, also those inside functions: a lazy import still makes
a circle, it only hides it until the function runs.
- no import circle among fer_core's modules;
- fer_core never imports the layers above it (streamlit, the app's ``ui`` and
  ``pages``, the CLIs ``training`` and ``predict``);
- modules inside fer_core import each other by module, never the package top
  (``from fer_core import X``), so ``fer_core/__init__.py`` can re-export freely;
- the rooms' order: a room imports only itself and the rooms in its row of
  :data:`MAY_IMPORT` (the table in docs/architecture.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "fer_core"
FORBIDDEN = ("streamlit", "ui", "pages", "training", "predict")

#: fer_core's rooms, bottom up, and the rooms each may import (docs/architecture.md).  "base" is the
#: small modules at the package top (errors, labels, hooks, digest, _quiet, _moved); fit and inference are siblings.
MAY_IMPORT = {
    "base": set(),
    "data": {"base"},
    "models": {"base"},
    "compute": {"base"},
    "faces": {"base", "data"},
    "store": {"base", "data", "models", "compute"},
    "fit": {"base", "data", "models", "compute", "faces", "store"},  # faces: training on the app's own crops
    "inference": {"base", "data", "models", "compute", "faces", "store"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path):
    """(imported module, names or None, line) for every import in the file, nested ones too."""
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, [a.name for a in node.names], node.lineno


def _edges(name: str, path: Path) -> set[str]:
    """fer_core modules that ``name`` imports (``from pkg import sub`` counts as importing ``pkg.sub``)."""
    out = set()
    for target, names, _ in _imports(name, path):
        if not target.startswith("fer_core"):
            continue
        subs = [f"{target}.{n}" for n in names or () if f"{target}.{n}" in MODULES]
        out.update(subs or [target])
    out.discard(name)
    # Importing a.b.c runs a/__init__ and a/b/__init__ too, except the packages that hold `name` itself.
    for mod in list(out):
        parts = mod.split(".")
        for i in range(2, len(parts)):
            pkg = ".".join(parts[:i])
            if pkg in MODULES and not name.startswith(pkg + ".") and pkg != name:
                out.add(pkg)
    return {m for m in out if m in MODULES and m != "fer_core"}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_scan_sees_every_module():
    assert len(MODULES) > 30
    assert {"fer_core.store.runs", "fer_core.store.publish", "fer_core.models", "fer_core.models.from_compact"} <= set(MODULES)


def test_no_import_circle_inside_fer_core():
    graph = {name: _edges(name, path) for name, path in MODULES.items()}
    assert "fer_core.models.head_only" in graph["fer_core.store.runs"]  # lazy imports are seen
    assert _cycles(graph) == []


def test_fer_core_never_imports_the_layers_above():
    bad = [f"{path.relative_to(ROOT)}:{line} imports {target}"
           for name, path in MODULES.items() for target, _, line in _imports(name, path)
           if target.split(".")[0] in FORBIDDEN]
    assert bad == []


def test_fer_core_modules_never_import_the_package_top():
    bad = [f"{path.relative_to(ROOT)}:{line}" for name, path in MODULES.items() if name != "fer_core"
           for target, names, line in _imports(name, path)
           if target == "fer_core" and not all(f"fer_core.{n}" in MODULES for n in names or ["?"])]
    assert bad == []


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or parts[1] in MAY_IMPORT else "base"


def _room_violations(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} ({_room(a)}) imports {b} ({_room(b)})" for a, deps in graph.items() if a != "fer_core"
                  for b in deps if _room(b) != _room(a) and _room(b) not in MAY_IMPORT[_room(a)])


def test_every_module_is_in_a_room():
    rooms = {_room(m) for m in MODULES if m != "fer_core"}
    assert rooms == set(MAY_IMPORT)
    assert set(MAY_IMPORT) - {"base"} == {p.name for p in PKG.iterdir() if (p / "__init__.py").is_file()}
    top = {m for m in MODULES if m.count(".") == 1 and m.split(".")[1] not in MAY_IMPORT}  # base: import no room
    assert {"fer_core.errors", "fer_core.labels", "fer_core.hooks", "fer_core._quiet", "fer_core._moved"} <= top


def test_lower_rooms_never_import_higher_ones():
    graph = {name: _edges(name, path) for name, path in MODULES.items()}
    assert "fer_core.store.runs" in graph["fer_core.inference.predictor"]  # the scan sees cross-room imports
    assert _room_violations(graph) == []


def test_the_room_rule_finds_an_upward_import():
    graph = {"fer_core.store.runs": {"fer_core.fit.train", "fer_core.models.head_only", "fer_core.errors"},
             "fer_core.fit.train": {"fer_core.inference.rows"}, "fer_core.data.upload": {"fer_core.data.datasets"}}
    assert _room_violations(graph) == [
        "fer_core.fit.train (fit) imports fer_core.inference.rows (inference)",
        "fer_core.store.runs (store) imports fer_core.fit.train (fit)",
    ]


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
