"""MovieNet-SSeg metrics on hand-computed cases and against independent computations."""

from __future__ import annotations

import numpy as np
import pytest

from bassl.eval.metrics import (
    accuracies,
    average_precision,
    f1_at,
    knn_precision,
    movie_miou,
    movie_recall,
    predictions_from_prob,
    recall_at_seconds,
    scene_intervals,
    scene_metrics,
)

TIMING = np.array([[10 * i, 10 * i + 9] for i in range(12)])  # shot i spans frames 10i .. 10i+9


def _ap_by_hand(gt, prob):
    # AP = sum over positives, in descending score order, of precision at that rank / #positives (no ties)
    order = np.argsort(-prob)
    g = gt[order]
    tp = np.cumsum(g)
    return 100 * np.sum((tp / np.arange(1, len(g) + 1))[g == 1]) / g.sum()


def test_ap_matches_hand_computation():
    rng = np.random.default_rng(0)
    for _ in range(20):
        prob = rng.permutation(200) / 200.0  # distinct scores
        gt = (rng.random(200) < 0.1).astype(int)
        gt[0] = 1
        assert average_precision(gt, prob) == pytest.approx(_ap_by_hand(gt, prob))
    assert average_precision(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx(100 * (1 + 2 / 3) / 2)


def test_threshold_semantics():
    prob = np.array([0.5, 0.49, 0.51, 0.2])
    gt = np.array([1, 1, 0, 0])
    np.testing.assert_array_equal(predictions_from_prob(prob), [0, 0, 1, 0])  # argmax: a tie is class 0
    # F1 and accuracy use prob >= 0.5 (the original's torchmetrics): tp=1 (0.5), fp=1 (0.51), fn=1 (0.49)
    assert f1_at(gt, prob) == pytest.approx(100 * 2 / (2 + 1 + 1))
    acc = accuracies(gt, prob)
    assert acc["acc"] == pytest.approx(50, abs=1e-3) and acc["acc1"] == pytest.approx(50, abs=1e-3)
    assert acc["acc0"] == pytest.approx(50, abs=1e-3)


def test_scene_intervals_drop_trailing_shots():
    assert scene_intervals(np.arange(6), np.array([0, 1, 0, 0, 1, 0]), TIMING) == [(0, 19), (20, 49)]
    assert scene_intervals(np.arange(3), np.array([0, 0, 0]), TIMING) == []


def test_miou_hand_case():
    vids = ["a"] * 6
    gt = np.array([0, 1, 0, 0, 1, 0])
    pred = np.array([0, 0, 1, 0, 1, 1])
    # gt scenes (0,19),(20,49); pred (0,29),(30,49),(50,59): m1 = 19/29, m2 = (19/29 + 19/29 + 0)/3
    expect = 100 * (19 / 29 + 38 / 87) / 2
    assert movie_miou(vids, np.arange(6), pred, gt, {"a": TIMING}) == pytest.approx(expect)
    assert movie_miou(vids, np.arange(6), gt, gt, {"a": TIMING}) == pytest.approx(100)
    assert movie_miou(vids, np.arange(6), np.zeros(6, int), gt, {"a": TIMING}) == 0  # no predicted boundary
    # averaged over movies, shots given in any order
    perm = np.array([5, 0, 3, 1, 4, 2])
    two = movie_miou(["a"] * 6 + ["b"] * 6, np.r_[perm, np.arange(6)], np.r_[pred[perm], gt], np.r_[gt[perm], gt],
                     {"a": TIMING, "b": TIMING})
    assert two == pytest.approx((expect + 100) / 2)


def test_recall_per_movie_mean():
    vids = ["a"] * 4 + ["b"] * 4
    gt = np.array([1, 0, 1, 0, 0, 1, 0, 1])
    pred = np.array([1, 0, 0, 0, 0, 1, 0, 1])
    assert movie_recall(vids, np.r_[np.arange(4), np.arange(4)], pred, gt) == pytest.approx(100 * (0.5 + 1) / 2)


def test_recall_at_seconds_hand_case():
    timing = np.array([[0, 23], [24, 47], [48, 200], [201, 210], [211, 300], [301, 400]])  # ends 23,47,200,210,300,400
    vids = ["a"] * 6
    gt = np.array([0, 1, 0, 0, 0, 1])
    # true boundary at shot 1 (end 47): shot 0 predicted, end 23 -> 1 s apart: hit.
    # true boundary at shot 5 (end 400): shot 2 predicted, end 200 -> 8.3 s apart: miss.
    pred = np.array([1, 0, 1, 0, 0, 0])
    r = recall_at_seconds(vids, np.arange(6), pred, gt, {"a": timing})
    assert r == pytest.approx(100 * 1 / (2 + 1e-5))
    # a predicted shot outside +-1 shot does not count with window_shots=1
    assert recall_at_seconds(vids, np.arange(6), np.array([0, 0, 0, 1, 0, 0]), gt, {"a": timing}, window_shots=1) == 0
    # shots not evaluated (absent from the lists) can't be hits
    assert recall_at_seconds(vids[1:], np.arange(1, 6), pred[1:], gt[1:], {"a": timing}) == 0


def test_scene_metrics_has_every_key():
    rng = np.random.default_rng(1)
    n = 24
    gt = np.zeros(n, int)
    gt[[3, 9, 15, 23]] = 1
    prob = np.clip(gt * 0.6 + rng.random(n) * 0.5, 0, 1)
    m = scene_metrics(["a"] * 12 + ["b"] * 12, np.r_[np.arange(12), np.arange(12)], prob, gt, {"a": TIMING, "b": TIMING})
    assert set(m) == {"ap", "auc_roc", "f1", "acc", "acc0", "acc1", "recall", "recall_at_3s", "miou"}
    assert all(0 <= v <= 100 for v in m.values())


def test_knn_precision_hand_case():
    # one movie, scenes: {0,1,2} and {3,4}; features put shot 2 closer to scene 1.
    f = np.array([[1, 0], [0.9, 0.1], [0.2, 0.8], [0, 1], [0.1, 0.95]])
    p = knn_precision(f, ["m"] * 5, np.array([0, 0, 0, 1, 1]), ks=(1, 2, 3))
    # k=1: nearest of 0 -> 1 (same), 1 -> 0 (same), 2 -> 4 (diff), 3 -> 4 (same), 4 -> 3 (same): 4/5
    assert p[1] == pytest.approx(80)
    # k=2: only scene-0 queries (size >= 2 includes scene 1 too: size 2): 0: {1,2} 2/2; 1: {0,2} 2/2; 2: {4,3} 0/2;
    #      3: {4,2} 1/2; 4: {3,2} 1/2 -> 6/10
    assert p[2] == pytest.approx(60)
    # k=3: only scene-0 queries: 0: {1,2,4} 2; 1: {0,2,4} 2; 2: {4,3,1} 1 -> 5/9
    assert p[3] == pytest.approx(100 * 5 / 9)


def test_recall_at_three_seconds_edge_is_strict():
    # ends 100 and 172 are exactly 3.0 s apart at 24 fps: not a hit (< 3 s); 171 is 2.96 s: a hit
    for end, hit in ((172, 0.0), (171, 100 / (1 + 1e-5))):
        timing = np.array([[0, 100], [101, end], [end + 1, end + 50]])
        r = recall_at_seconds(["a"] * 3, np.arange(3), np.array([0, 1, 0]), np.array([1, 0, 0]), {"a": timing})
        assert r == pytest.approx(hit)


def test_negative_labels_count_as_boundaries_or_are_ignored(tmp_path):
    from builders import write_layout

    from bassl.config import load_config
    from bassl.data.movienet import MovieNetSource
    from bassl.eval.evaluate import evaluate_predictions

    write_layout(tmp_path / "m", {"tt0000001": [0, 1, 0, 0, -1]})
    ann = MovieNetSource(tmp_path / "m").split("test")["tt0000001"]
    prob = np.array([0.1, 0.9, 0.2, 0.1, 0.3])
    cfg = load_config()
    src = MovieNetSource(tmp_path / "m")
    as_pos = evaluate_predictions(cfg, src, ["tt0000001"] * 5, ann.shot_ids, ann.boundary_labels("positive"), prob)
    ignored = evaluate_predictions(cfg, src, ["tt0000001"] * 5, ann.shot_ids, ann.boundary_labels("ignore"), prob)
    # positive: gt [0,1,0,0,1]; the -1 shot (0.3) ranks second, right after the other boundary: AP 100
    assert as_pos["ap"] == pytest.approx(100.0)
    assert ignored["ap"] == pytest.approx(100.0) and ignored["acc1"] == pytest.approx(100, abs=1e-3)
    assert as_pos["acc1"] == pytest.approx(50, abs=1e-3)  # the -1 shot (0.3) is a missed boundary
