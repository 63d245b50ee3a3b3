"""Shared fixtures: small generated data sets, built once per test session (builders in builders.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from builders import write_shards

from bassl.config import load_config, to_dict


@pytest.fixture(scope="session")
def pretrain_shards(tmp_path_factory) -> Path:
    """56 shots in 3 movies (one shorter than a window), packed by `bassl shard`: splits pretrain (all) and test."""
    return write_shards(tmp_path_factory.mktemp("loader_data"))


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """An untrained tiny segmenter and its encoder export: what the files look like, not what they score."""
    from bassl.models import build_boundary_model, build_pretrain_model
    from bassl.models.weights import export_segmenter, export_weights

    out = tmp_path_factory.mktemp("models")
    cfg = load_config(["model_preset=tiny"])
    torch.manual_seed(0)
    pre = build_pretrain_model(cfg)
    export_weights(pre, out / "encoder.pt", to_dict(cfg), {"method": "bassl", "step": 0})
    export_weights(pre, out / "encoder_pp.pt", to_dict(cfg),  # as if pre-training had measured PP better on val
                   {"method": "bassl", "step": 0, "label_free": {"split": "val", "aps": {"adjacent": 40.0, "pp": 50.0}}})
    boundary = build_boundary_model(cfg, pre.feature_dim)
    export_segmenter(out / "segmenter.pt", boundary, to_dict(cfg), 0.5,
                     {"config": to_dict(cfg), "state": pre.encoder.state_dict()}, {"method": "bassl"})
    # A segmenter written before model.boundary existed: the paper's CRN head, and no such key in its config.
    paper = load_config(["model_preset=tiny", "model.boundary.head=paper"])
    legacy = to_dict(paper)
    del legacy["model"]["boundary"]
    export_segmenter(out / "legacy.pt", build_boundary_model(paper, pre.feature_dim), legacy, 0.5,
                     {"config": to_dict(cfg), "state": pre.encoder.state_dict()}, {"method": "bassl"})
    return {"segmenter": out / "segmenter.pt", "encoder": out / "encoder.pt", "legacy": out / "legacy.pt",
            "encoder_pp": out / "encoder_pp.pt"}
