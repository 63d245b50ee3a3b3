"""The PP diagnosis's own measures (benchmarks/pp_transfer.py) on planted cases whose answers are known."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bassl.config import load_config
from bassl.models import initial_pretrain_model
from bassl.train.pretext_monitor import pp_self_ap

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from pp_transfer import edge_contrast_rule, moved, position_share  # noqa: E402


def test_edge_contrast_rule_finds_a_planted_split():
    """Shots 0..b look like the first shot, b+1.. like the last: the rule's top score is at b, in every window."""
    S, dim = 17, 8
    rng = np.random.default_rng(0)
    splits = np.array([0, 3, 8, 12, 15])
    x = torch.zeros(len(splits), S, dim)
    for i, b in enumerate(splits):
        x[i, : b + 1, 0], x[i, b + 1 :, 1] = 1.0, 1.0
    x += 0.05 * torch.from_numpy(rng.standard_normal(x.shape)).float()
    score = edge_contrast_rule(F.normalize(x, dim=-1))  # [5, S]
    assert score.argmax(axis=1).tolist() == splits.tolist()
    assert pp_self_ap(score, splits) == pytest.approx(100.0)


def test_position_share_separates_position_from_content():
    rng = np.random.default_rng(0)
    by_position = np.tile(np.linspace(0, 1, 17), (50, 1))  # the same value at each position in every window
    assert position_share(by_position) == pytest.approx(100.0)
    by_content = np.tile(rng.random((50, 1)), (1, 17))  # the same value at every position of a window
    assert position_share(by_content) == pytest.approx(0.0, abs=1e-9)


def test_moved_is_zero_at_initialisation_and_measures_a_scaled_part():
    cfg = load_config(["model_preset=tiny", "method=bassl", "seed=3"])
    model = initial_pretrain_model(cfg)  # as pre-training starts
    assert all(v == 0.0 for v in moved(model, cfg).values())
    with torch.no_grad():
        for p in model.crn.parameters():
            if p.dim() >= 2:
                p.mul_(1.5)
    m = moved(model, cfg)
    assert m["moved_crn"] == pytest.approx(0.5, rel=1e-5)
    assert m["moved_encoder"] == 0.0 and m["moved_head_pp"] == 0.0
