"""Scene-retrieval precision@k of the encoder on the test split after each pre-training epoch (method.md §6.8).

A monitor only: it changes nothing in the run. Every rank encodes its share of the shots; rank 0 scores.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from bassl.config import Config
from bassl.data.movienet import MovieNetSource
from bassl.errors import BasslError
from bassl.eval.metrics import knn_precision
from bassl.train.distributed import DistInfo
from bassl.train.extract import encode_split_on_main
from bassl.train.precision import inference_precision


def knn_validation(cfg: Config, encoder: nn.Module, dist: DistInfo, precision: str) -> dict[int, float] | None:
    """``{k: precision@k}`` on rank 0 (None elsewhere, and when the data has no test annotations)."""
    try:
        scenes = MovieNetSource.from_config(cfg.data).split("test")
    except BasslError as e:
        if dist.is_main:
            print(f"[pretrain] kNN validation skipped: {e}")
        return None
    encoded = encode_split_on_main(cfg, encoder, dist, "test", inference_precision(precision))
    if encoded is None:
        return None
    vids, shots, feats = encoded

    def scene_of(vid: str, shot: int) -> int:
        ann = scenes.get(vid)
        if ann is None or ann.scene_ids is None:
            return -1
        i = int(np.searchsorted(ann.shot_ids, shot))
        return int(ann.scene_ids[i]) if i < len(ann.shot_ids) and ann.shot_ids[i] == shot else -1

    scene_ids = np.array([scene_of(v, int(s)) for v, s in zip(vids, shots, strict=True)], dtype=np.int64)
    keep = scene_ids >= 0
    return knn_precision(feats[keep], np.asarray(vids)[keep], scene_ids[keep], cfg.eval.knn_k)
