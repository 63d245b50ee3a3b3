"""From boundary probabilities to scene boundaries: the decision rules, and choosing one on val.

A probability per shot ranks boundaries (AP); scenes need yes/no. Three rules, each applied per movie:

- ``threshold``: every shot whose probability is at least ``value``;
- ``peaks``: only local maxima (within ``radius`` shots) at least ``value``: one boundary per bump of the curve,
  where a threshold alone marks several neighbouring shots and cuts one-shot scenes;
- ``count``: the ``round(n / value) - 1`` highest local maxima, ``value`` = shots per scene (a scene-length prior,
  e.g. from the train split's labels; the label-free scorer uses MovieNet's ~13).

Fine-tuning picks the rule and its value by val mIoU (docs/method.md §8.6); ``bassl segment`` applies it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bassl.eval.metrics import movie_miou

RULES = ("threshold", "peaks", "count")


def local_maxima(scores: np.ndarray, radius: int = 2) -> np.ndarray:
    """``[n]`` bool: shots whose score is the largest within ``radius`` shots either side (ties all count)."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:
        return np.zeros(0, dtype=bool)
    padded = np.pad(scores, radius, constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)  # [n, 2r+1]
    return scores >= windows.max(axis=1)


def decide(prob: np.ndarray, rule: str, value: float, radius: int = 2) -> np.ndarray:
    """``[n]`` bool: the shots of one movie that end a scene. The last shot always does (it ends the last scene:
    MovieNet labels it so, and a scene only counts once a shot closes it)."""
    prob = np.asarray(prob, dtype=np.float64)
    n = len(prob)
    last = np.arange(n) == n - 1
    if rule == "threshold":
        return (prob >= value) | last
    peaks = local_maxima(prob, radius) & ~last
    if rule == "peaks":
        return (peaks & (prob >= value)) | last
    if rule == "count":
        want = max(0, round(n / value) - 1)
        idx = np.flatnonzero(peaks)
        chosen = idx[np.argsort(-prob[idx], kind="stable")[:want]]
        out = last.copy()
        out[chosen] = True
        return out
    raise ValueError(f"decision rule {rule!r}; choose one of {', '.join(RULES)}")


def decide_movies(video_ids: Sequence[str], shot_ids: np.ndarray, prob: np.ndarray, rule: str, value: float) -> np.ndarray:
    """:func:`decide` per movie over pooled anchors (each movie's anchors in shot order), back in the input order."""
    vids = np.asarray(video_ids)
    out = np.zeros(len(prob), dtype=np.int64)
    for vid in dict.fromkeys(vids.tolist()):
        rows = np.flatnonzero(vids == vid)
        rows = rows[np.argsort(np.asarray(shot_ids)[rows], kind="stable")]
        out[rows] = decide(np.asarray(prob)[rows], rule, value)
    return out


def choose_rule(video_ids: Sequence[str], shot_ids: np.ndarray, prob: np.ndarray, gt: np.ndarray,
                timing: Mapping[str, np.ndarray], threshold: float, scene_shots: float) -> dict:
    """The rule and value with the best mIoU on these (val) predictions: ``threshold`` at ``threshold`` (best F1 on
    val), ``peaks`` over a grid of probability quantiles, ``count`` at ``scene_shots``. Returns
    ``{"rule", "value", "miou", "candidates": [{"rule", "value", "miou"}]}``."""
    grid = np.unique(np.quantile(prob, np.linspace(0.5, 0.99, 25)))
    tried = [("threshold", float(threshold)), *(("peaks", float(v)) for v in grid), ("count", float(scene_shots))]
    candidates = [{"rule": r, "value": v,
                   "miou": movie_miou(video_ids, shot_ids, decide_movies(video_ids, shot_ids, prob, r, v), gt, timing)}
                  for r, v in tried]
    best = max(candidates, key=lambda c: c["miou"])
    return {**best, "candidates": candidates}
