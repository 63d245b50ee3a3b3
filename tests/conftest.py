"""Shared fixtures: small generated data sets, built once per test session (builders in builders.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import write_shards


@pytest.fixture(scope="session")
def pretrain_shards(tmp_path_factory) -> Path:
    """56 shots in 3 movies (one shorter than a window), packed by `bassl shard`: splits pretrain (all) and test."""
    return write_shards(tmp_path_factory.mktemp("loader_data"))
