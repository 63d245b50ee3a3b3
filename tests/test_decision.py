"""Decision rules from probabilities to boundaries, and their choice on val by mIoU (bassl.eval.decision)."""

from __future__ import annotations

import numpy as np
import pytest

from bassl.eval.decision import choose_rule, decide, decide_movies, local_maxima
from bassl.eval.metrics import movie_miou

PROB = np.array([0.1, 0.8, 0.7, 0.2, 0.9, 0.3, 0.95, 0.6, 0.2, 0.99])


def test_rules_by_hand():
    assert local_maxima(PROB, 1).tolist() == [False, True, False, False, True, False, True, False, False, True]
    # the last shot always ends a scene
    assert np.flatnonzero(decide(PROB, "threshold", 0.6)).tolist() == [1, 2, 4, 6, 7, 9]
    assert np.flatnonzero(decide(PROB, "peaks", 0.6, radius=1)).tolist() == [1, 4, 6, 9]  # 2 and 7 sit beside a peak
    assert np.flatnonzero(decide(PROB, "peaks", 0.85, radius=1)).tolist() == [4, 6, 9]
    assert np.flatnonzero(decide(PROB, "count", 5, radius=1)).tolist() == [6, 9]  # round(10 / 5) - 1 = 1: the highest
    assert not decide(np.zeros(0), "peaks", 0.5).any() and decide(np.array([0.1]), "threshold", 0.5).tolist() == [True]
    with pytest.raises(ValueError, match="choose one of threshold, peaks, count"):
        decide(PROB, "best", 0.5)


def test_decide_movies_keeps_each_movie_apart_and_the_input_order():
    vids = ["b"] * 3 + ["a"] * 3
    shots = np.array([2, 0, 1, 0, 1, 2])  # movie b's anchors out of order
    prob = np.array([0.1, 0.2, 0.9, 0.9, 0.1, 0.1])
    # b in shot order: 0.2, 0.9, 0.1 -> shot 1 (row 2) is a peak, shot 2 (row 0) is b's last; a: 0.9, 0.1, 0.1 ->
    # shot 0 (row 3), and shot 2 (row 5) is a's last
    assert decide_movies(vids, shots, prob, "peaks", 0.5).tolist() == [1, 0, 1, 1, 0, 1]


def test_choose_rule_prefers_peaks_where_a_threshold_cuts_one_shot_scenes():
    # two movies of 30 shots, scenes of 6; the probability is a bump two shots wide at each true boundary
    gt, prob, vids, shots = [], [], [], []
    for m in "ab":
        g = np.zeros(30, dtype=np.int64)
        g[5::6] = 1
        p = np.full(30, 0.05)
        p[5::6] = 0.9
        p[6::6] = 0.8  # the shot after a boundary looks like one too
        gt.append(g)
        prob.append(p)
        vids += [m] * 30
        shots.append(np.arange(30))
    gt, prob, shots = np.concatenate(gt), np.concatenate(prob), np.concatenate(shots)
    timing = {m: np.stack([np.arange(30) * 10, np.arange(30) * 10 + 9], axis=1) for m in "ab"}
    got = choose_rule(vids, shots, prob, gt, timing, threshold=0.5, scene_shots=6.0)
    by = {(c["rule"], round(c["value"], 3)): c["miou"] for c in got["candidates"]}
    assert by[("threshold", 0.5)] < 100.0  # one-shot scenes after every cut
    assert got["miou"] == pytest.approx(100.0) and got["rule"] in ("peaks", "count")
    assert got["miou"] == movie_miou(vids, shots, decide_movies(vids, shots, prob, got["rule"], got["value"]), gt, timing)
