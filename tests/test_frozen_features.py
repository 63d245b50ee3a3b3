"""Training-free feature scores: adjacent-shot dissimilarity (hand case) and its AP on a small layout."""

from __future__ import annotations

import math

import numpy as np
from builders import finetune_layout
from sklearn.metrics import average_precision_score

from bassl.config import load_config
from bassl.data.features import load_features
from bassl.data.movienet import MovieNetSource
from bassl.eval.frozen_features import adjacent_dissimilarity, feature_only_metrics


def test_adjacent_dissimilarity_hand_case():
    # shots 0,1 of one scene (direction x), 2,3 of the next (direction y); shot 0 scaled: cosine ignores norms
    f = np.array([[5.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    # i=0: left x0, right (x1+x2)/2 = (.5,.5) -> 1 - 1/sqrt(2); i=1: left x, right y -> 1
    # i=2: left (.5,.5), right (x3+x3)/2 = y -> 1 - 1/sqrt(2); i=3: left y, right y (clipped) -> 0
    want = [1 - 1 / math.sqrt(2), 1.0, 1 - 1 / math.sqrt(2), 0.0]
    np.testing.assert_allclose(adjacent_dissimilarity(f), want, atol=1e-12)


def test_label_free_adjacent_score_stays_in_unit_range_for_features_of_either_sign():
    from bassl.train.label_free import label_free_scores

    # scenes in opposite directions (features need not be ReLU outputs): 1 - cos reaches 2 at the cut, the score 1;
    # at i=0 and i=2 one side's mean is the zero vector (cos 0)
    f = np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])
    np.testing.assert_allclose(adjacent_dissimilarity(f), [1.0, 2.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(label_free_scores("adjacent", f), [0.5, 1.0, 0.5, 0.0], atol=1e-12)


def test_feature_only_metrics_match_an_independent_loop(tmp_path):
    root, fdir = finetune_layout(tmp_path)
    cfg = load_config([f"data.root={root}"])
    fm = load_features(fdir)
    got = feature_only_metrics(cfg, fm.rows)
    gts, scores, hits = [], [], []
    for vid, ann in MovieNetSource.from_config(cfg.data).split("test").items():
        x = fm.rows(vid).astype(np.float64)
        n = len(x)
        for s, label in zip(ann.shot_ids, ann.boundary_labels("positive"), strict=True):
            a = x[max(s - 1, 0)] / np.linalg.norm(x[max(s - 1, 0)]) + x[s] / np.linalg.norm(x[s])
            b = sum(x[min(j, n - 1)] / np.linalg.norm(x[min(j, n - 1)]) for j in (s + 1, s + 2))
            scores.append(1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b))
            gts.append(label)
        # kNN@1: each annotated shot's most similar other shot of the movie, by cosine; a hit in its own scene
        scene = dict(zip(ann.shot_ids.tolist(), ann.scene_ids.tolist(), strict=True))
        for s in ann.shot_ids:
            cos = {t: x[s] @ x[t] / np.linalg.norm(x[s]) / np.linalg.norm(x[t]) for t in ann.shot_ids if t != s}
            hits.append(scene[max(cos, key=cos.get)] == scene[s])
    assert math.isclose(got["adjacent_ap"], 100 * average_precision_score(gts, scores), rel_tol=1e-9)
    assert got["adjacent_ap"] > 100 * 2 * np.mean(gts)  # each scene its own direction: far above chance
    assert math.isclose(got["knn1"], 100 * np.mean(hits), rel_tol=1e-9)
