"""The code's layers, read from the source: what may import what, and no import cycles.

Every import counts, also those inside functions and under TYPE_CHECKING: a function-level import hides a
cycle from Python, not from a reader. The rule, from the bottom up:

    runtime: errors, version < bundle, tokenizing, pieces, pairs, entities < coverage, encoder < the package < server
    packager: errors, outputs, shipped_text < models < selection < counting < trim < pack < bench
              < report, container, cli

A module may import its own layer or a lower one; the runtime never imports the packager.
"""

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"langtrim.runtime": ROOT / "runtime", "langtrim.packager": ROOT / "packager"}
# (module or package prefix, layer), the most specific prefix first.
LAYERS = (
    ("langtrim.runtime.errors", 0),
    ("langtrim.runtime.version", 0),
    ("langtrim.runtime.bundle", 1),
    ("langtrim.runtime.tokenizing", 1),
    ("langtrim.runtime.pieces", 1),
    ("langtrim.runtime.pairs", 1),
    ("langtrim.runtime.entities", 1),
    ("langtrim.runtime.coverage", 2),
    ("langtrim.runtime.encoder", 2),
    ("langtrim.runtime.server", 4),
    ("langtrim.runtime", 3),
    ("langtrim.packager.errors", 10),
    ("langtrim.packager.outputs", 10),
    ("langtrim.packager.shipped_text", 10),
    ("langtrim.packager.models", 11),
    ("langtrim.packager.selection", 12),
    ("langtrim.packager.counting", 13),
    ("langtrim.packager.trim", 14),
    ("langtrim.packager.pack", 15),
    ("langtrim.packager.bench", 16),
    ("langtrim.packager.report", 17),
    ("langtrim.packager.container", 17),
    ("langtrim.packager.cli", 17),
    ("langtrim.packager", 10),
)


def source_modules() -> dict[str, Path]:
    """Module name -> file, for every module of both packages (a package is its __init__.py)."""
    modules = {}
    for package, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def imports_of(path: Path, known: Iterable[str]) -> set[str]:
    """The langtrim modules a file imports, anywhere in it; `from pkg import mod` counts as pkg.mod."""
    known = set(known)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import of {node.module}; write the absolute name"
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [name if name in known else node.module for name in names]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = source_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def layer(module: str) -> int:
    return next(rank for prefix, rank in LAYERS if module == prefix or module.startswith(prefix + "."))


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import cycle, as the modules along it (the first repeated at the end), or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" once every edge out is explored
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                return path[path.index(imported) :] + [imported]
            if imported not in state and (cycle := visit(imported)):
                return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_every_module_has_a_layer() -> None:
    for module in source_modules():
        layer(module)  # StopIteration here: add the new module or package to LAYERS


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{module} (layer {layer(module)}) imports {imported} (layer {layer(imported)})"
        for module, imported_modules in sorted(import_graph().items())
        for imported in sorted(imported_modules)
        if layer(imported) > layer(module)
    ]
    assert not upward, "imports against the layering:\n" + "\n".join(upward)


def test_there_is_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_runtime_never_imports_the_packager() -> None:
    graph = import_graph()
    crossing = [
        (module, imported)
        for module, imported_modules in graph.items()
        if module.startswith("langtrim.runtime")
        for imported in imported_modules
        if imported.startswith("langtrim.packager")
    ]
    assert not crossing


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"b"}}, ["b", "b"]),
        ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, None),
    ],
)
def test_the_cycle_finder_finds_a_planted_cycle(
    graph: dict[str, set[str]], expected: list[str] | None
) -> None:
    """Without this, the cycle test above would pass with a finder that never finds anything."""
    assert find_cycle(graph) == expected


def test_imports_inside_functions_count(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from langtrim.packager.trim import surgery\n", encoding="utf-8")
    assert imports_of(module, {"langtrim.packager.trim", "langtrim.packager.trim.surgery"}) == {
        "langtrim.packager.trim.surgery"
    }
