"""Data flows one way: sharding -> loaders -> train -> eval. A lower layer never imports a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "bassl"
# layer -> the bassl subpackages it must never import
FORBIDDEN = {
    "sharding": {"loaders", "models", "train", "eval", "cli", "demo"},
    "loaders": {"train", "eval", "cli", "demo"},
    "models": {"loaders", "train", "eval", "cli", "demo", "sharding"},
    "train": {"cli", "demo"},
    "eval": {"cli", "demo", "train"},
}


def _bassl_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "bassl" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_flow_one_way(layer):
    bad = {}
    for path in sorted((PKG / layer).rglob("*.py")):
        hits = _bassl_imports(path) & FORBIDDEN[layer]
        if hits:
            bad[str(path.relative_to(PKG))] = sorted(hits)
    assert not bad, f"layer {layer} imports a higher layer: {bad}"


def test_the_checker_sees_imports(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("import bassl.train.nce\nfrom bassl.eval import metrics\nfrom . import sibling\n")
    assert _bassl_imports(f) == {"train", "eval"}
