"""The same run twice on one machine gives the same numbers, to the bit: pre-training losses, extracted features,
fine-tuned weights and metrics (README, "What is reproducible")."""

from __future__ import annotations

import json

import numpy as np
import torch
from builders import MOVIES, overrides, write_shards

from bassl.config import load_config
from bassl.data.features import load_features
from bassl.models.weights import load_segmenter
from bassl.train.extract import extract
from bassl.train.finetune import finetune
from bassl.train.pretrain import pretrain


def test_pretrain_extract_finetune_twice_are_identical(tmp_path):
    vids = list(MOVIES)
    shards = write_shards(tmp_path, splits={"pretrain": vids, "trainvaltest": vids, "train": [vids[0]],
                                            "val": [vids[2]], "test": [vids[2]]})
    cfg = load_config(overrides(shards, "pretrain.epochs=1", f"data.root={tmp_path / 'movienet'}", "extract.batch_size=8",
                                "finetune.epochs=2", "finetune.effective_batch=8", "finetune.base_lr=1e-3"))
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        history = pretrain(cfg, out / "pretrain")["history"]
        extract(cfg, out / "pretrain" / "encoder.pt", out / "features")
        report = finetune(cfg, out / "features", out / "finetune")
        runs.append((history, load_features(out / "features"), report, load_segmenter(out / "finetune" / "segmenter.pt")))
    (h1, f1, r1, s1), (h2, f2, r2, s2) = runs
    assert h1 == h2  # every loss term and lr of every step, exactly
    np.testing.assert_array_equal(f1.features, f2.features)
    assert json.dumps(r1["test"]) == json.dumps(r2["test"]) and r1["selected_epoch"] == r2["selected_epoch"]
    assert all(torch.equal(s1["boundary"][k], s2["boundary"][k]) for k in s1["boundary"])
    # the exported weights are equal files, byte for byte (no temp name recorded inside): extraction keys on their hash
    a, b = (tmp_path / name / "pretrain" / "encoder.pt" for name in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()
