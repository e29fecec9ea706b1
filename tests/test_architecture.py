"""The package graph: talker's packages are layered in pipeline order (README's Layout) and import
only the layers before theirs, so no two packages import each other."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "talker"

# README's Layout, top to bottom; a package may import any package of an earlier layer.
LAYERS = [
    {"errors"},
    {"config_checks", "weights"},
    {"audio"},
    {"utils", "nn"},
    {"encoders"},
    {"conditioning"},
    {"fields"},
    {"rendering"},
    {"data"},
    {"preprocess"},
    {"metrics"},
    {"losses"},
    {"schedules"},
    {"config", "runs"},
    {"motion"},
    {"head"},
    {"stages"},
    {"modules"},
    {"inference"},
    {"evaluation"},
    {"callbacks"},
    {"reporting"},
    {"baselines"},
    {"study"},
    {"grid", "install"},
    {"fit", "evaluate", "drive"},
]


def unit(module: str) -> str:
    """``talker.a.b`` -> ``a`` (a package, or a top-level module such as ``fit``)."""
    return module.split(".")[1] if module.count(".") >= 1 else "<root>"


def imports() -> dict[tuple[str, str], str]:
    """``(importer, imported) -> file`` for every talker import between two units (function-local too)."""
    edges: dict[tuple[str, str], str] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        source = unit(module)
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                if name.startswith("talker.") and unit(name) not in (source, "<root>"):
                    edges.setdefault((source, unit(name)), str(path.relative_to(PACKAGE.parent)))
    return edges


def test_every_unit_has_a_layer() -> None:
    units = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"} | {
        p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()
    }
    layered = set().union(*LAYERS)
    assert units == layered, f"not in LAYERS: {sorted(units - layered)}; gone: {sorted(layered - units)}"


def test_packages_import_only_earlier_layers() -> None:
    """Imports go to an earlier layer, or within a layer one way only: no package cycle."""
    layer = {name: i for i, names in enumerate(LAYERS) for name in names}
    edges = imports()
    upward = [f"{a} -> {b} ({where})" for (a, b), where in edges.items() if layer[b] > layer[a]]
    mutual = [f"{a} <-> {b}" for (a, b) in edges if (b, a) in edges]
    assert not upward, "imports of a later layer:\n" + "\n".join(sorted(upward))
    assert not mutual, f"packages importing each other: {sorted(mutual)}"
