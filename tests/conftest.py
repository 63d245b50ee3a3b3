"""Shared fixtures: small generated data sets, built once per test session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def pretrain_shards(tmp_path_factory) -> Path:
    """56 shots in 3 movies (one shorter than a window) as shards with DALI indexes and a manifest."""
    from test_loaders import MOVIES, write_shards

    root = write_shards(tmp_path_factory.mktemp("pretrain_shards"))
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["splits"]["pretrain"] = list(MOVIES)
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root
