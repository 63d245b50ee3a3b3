"""Data flows one way. Each part of the package may import only the layers below it, never a sibling or a layer above.

    errors, workers, memory < data (the on-disk formats) < methods < config
           < synth | sharding | loaders | models | eval | video      (siblings: none imports another)
           < train < scenes < demo < cli < __main__

Imports under ``if TYPE_CHECKING:`` are annotations only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "bassl"
LAYERS = [
    {"errors", "workers", "memory"},
    {"data"},
    {"methods"},
    {"config", "configs"},
    {"synth", "sharding", "loaders", "models", "eval", "video"},
    {"train"},
    {"scenes"},
    {"demo"},
    {"cli"},
    {"__main__"},
]
LAYER_OF = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def _part(path: Path) -> str:
    """The part of bassl a file belongs to: its subpackage, or its module name for a top-level file."""
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _bassl_imports(path: Path) -> set[str]:
    """The parts of bassl a file imports at run time."""
    found = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "bassl" else [f"bassl.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "bassl" and len(parts) > 1:
                found.add(parts[1])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def _violations(path: Path) -> list[str]:
    here = _part(path)
    if here == "__init__":
        return []
    return sorted(p for p in _bassl_imports(path) - {here} if p in LAYER_OF and LAYER_OF[p] >= LAYER_OF[here])


def test_every_part_has_a_layer():
    parts = {_part(p) for p in PKG.rglob("*.py")} - {"__init__"}
    assert parts <= set(LAYER_OF), parts - set(LAYER_OF)


@pytest.mark.parametrize("part", sorted({_part(p) for p in PKG.rglob("*.py")} - {"__init__"}))
def test_imports_flow_one_way(part):
    bad = {str(p.relative_to(PKG)): v for p in sorted(PKG.rglob("*.py")) if _part(p) == part and (v := _violations(p))}
    assert not bad, f"{part} (layer {LAYER_OF[part]}) imports a layer at or above its own: {bad}"


def test_the_checker_sees_imports_and_skips_annotations(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("import bassl.train.nce\nfrom bassl.eval import metrics\nfrom bassl import config\nfrom . import sibling\n"
                 "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bassl.cli import main\n"
                 "def f():\n    from bassl.loaders import build\n")
    assert _bassl_imports(f) == {"train", "eval", "config", "loaders"}


def test_an_upward_import_is_a_violation(tmp_path, monkeypatch):
    fake_pkg = tmp_path / "bassl"
    (fake_pkg / "data").mkdir(parents=True)
    f = fake_pkg / "data" / "x.py"
    f.write_text("from bassl.loaders.shards import open_shots\nfrom bassl.errors import DataError\n")
    monkeypatch.setattr(__import__(__name__), "PKG", fake_pkg)
    assert _violations(f) == ["loaders"]
