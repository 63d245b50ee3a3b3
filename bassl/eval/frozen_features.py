"""What frozen shot features say about scene boundaries with no fine-tuning at all.

Fine-tuning numbers mix feature quality with the fine-tuning recipe (learning rate, epochs, data size). Two
training-free scores isolate the features: how different the two shots after a cut are from the two before
it (a boundary detector any good feature supports), and scene-retrieval kNN precision within a movie (the
pre-training monitor, method.md §6.8). The demo and ``benchmarks/compare_methods.py`` report both on test.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bassl.config import Config
from bassl.data.movienet import MovieNetSource
from bassl.eval.metrics import average_precision, knn_precision


def adjacent_dissimilarity(features: np.ndarray) -> np.ndarray:
    """``[n]`` score of "shot i ends a scene": ``1 - cos(mean(f[i-1], f[i]), mean(f[i+1], f[i+2]))`` over the
    L2-normalised ``[n, D]`` features of one movie, indices clipped to the movie."""
    x = np.asarray(features, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    i = np.arange(len(x))
    n = len(x) - 1
    left = (x[np.maximum(i - 1, 0)] + x) / 2  # [n, D]
    right = (x[np.minimum(i + 1, n)] + x[np.minimum(i + 2, n)]) / 2  # [n, D]
    norms = np.maximum(np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1), 1e-12)
    return 1.0 - (left * right).sum(axis=1) / norms


def feature_only_metrics(cfg: Config, movie_features: Callable[[str], np.ndarray], split: str = "test",
                         knn: bool = True, source: MovieNetSource | None = None) -> dict[str, float]:
    """``{"adjacent_ap": AP of adjacent_dissimilarity, "knn1": kNN precision@1}`` on ``split`` (×100).

    ``movie_features(video_id)`` gives a movie's ``[n, D]`` shot features in shot order (e.g.
    ``load_features(dir).rows``); ``source`` is the dataset when the caller has it open already; ``knn=False``
    leaves out the kNN precision."""
    source = source or MovieNetSource.from_config(cfg.data)
    gts, scores, feats, vids, scenes = [], [], [], [], []
    for vid, ann in source.split(split).items():
        labels = ann.boundary_labels(cfg.data.negative_label)
        keep = labels >= 0
        x = movie_features(vid)  # [n, D]
        gts.append(labels[keep])
        scores.append(adjacent_dissimilarity(x)[ann.shot_ids[keep]])
        if knn and ann.scene_ids is not None:
            feats.append(x[ann.shot_ids])
            vids += [vid] * len(ann.shot_ids)
            scenes.append(ann.scene_ids)
    out = {"adjacent_ap": average_precision(np.concatenate(gts), np.concatenate(scores))}
    if feats:
        out["knn1"] = knn_precision(np.concatenate(feats), vids, np.concatenate(scenes), (1,))[1]
    return out
