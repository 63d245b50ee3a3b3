"""MovieNet-SSeg scene-boundary metrics, exactly as the original computes them (method.md §9).

Inputs are per evaluated shot: the movie id, the shot index, ``prob`` = softmax(logits)[:, 1], ``pred`` =
argmax (``prob > 0.5``; an exact tie goes to class 0) and ``gt`` = the boundary label in {0, 1}
(1 = the shot is the last of its scene). AP, AUC-ROC, F1 and accuracy are pooled over all shots; Recall,
Recall@3s and mIoU are computed per movie and averaged over movies. Everything is ×100.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, precision_recall_curve, recall_score, roc_auc_score

EPS = 1e-5  # the original's guard in its accuracy and Recall@3s denominators


def predictions_from_prob(prob: np.ndarray) -> np.ndarray:
    """argmax over (1 - p, p): 1 only when p > 0.5, as torch.argmax resolves a tie to index 0."""
    return (np.asarray(prob) > 0.5).astype(np.int64)


def average_precision(gt: np.ndarray, prob: np.ndarray) -> float:
    """Pooled AP over all shots (not LGSS's per-movie mAP)."""
    return 100.0 * float(average_precision_score(np.nan_to_num(gt), np.nan_to_num(prob)))


def auc_roc(gt: np.ndarray, prob: np.ndarray) -> float:
    return 100.0 * float(roc_auc_score(np.nan_to_num(gt), np.nan_to_num(prob)))


def f1_at(gt: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of the positive class at ``prob >= threshold`` (the original's torchmetrics F1)."""
    return 100.0 * float(f1_score(gt, (np.asarray(prob) >= threshold).astype(np.int64), zero_division=0))


def best_f1_threshold(gt: np.ndarray, prob: np.ndarray) -> float:
    """The decision threshold with the highest F1 of ``prob >= threshold`` (choose it on val, apply it to new
    videos); 0.5 when there is no positive to find."""
    gt, prob = np.asarray(gt), np.asarray(prob, dtype=np.float64)
    if not (gt == 1).any():
        return 0.5
    precision, recall, thresholds = precision_recall_curve(gt, prob)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def accuracies(gt: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Overall accuracy, class-0 recall (TNR) and class-1 recall (TPR) at ``prob >= threshold``."""
    gt = np.asarray(gt)
    pos = np.asarray(prob) >= threshold
    tp = float(np.sum((gt == 1) & pos))
    fp = float(np.sum((gt == 0) & pos))
    tn = float(np.sum((gt == 0) & ~pos))
    fn = float(np.sum((gt == 1) & ~pos))
    return {
        "acc": 100.0 * (tp + tn) / (tp + fn + fp + tn + EPS),
        "acc0": 100.0 * tn / (fp + tn + EPS),
        "acc1": 100.0 * tp / (tp + fn + EPS),
    }


def _by_movie(video_ids: Sequence[str], *arrays: np.ndarray) -> dict[str, tuple[np.ndarray, ...]]:
    """Group per-shot arrays by movie, each movie sorted by shot index (the first array)."""
    vids = np.asarray(video_ids)
    out = {}
    for vid in dict.fromkeys(vids.tolist()):  # first-appearance order
        sel = vids == vid
        order = np.argsort(arrays[0][sel], kind="stable")
        out[vid] = tuple(np.asarray(a)[sel][order] for a in arrays)
    return out


def movie_recall(video_ids: Sequence[str], shot_ids: np.ndarray, pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean over movies of sklearn's binary recall (a movie with no true boundary counts 0, as sklearn gives)."""
    values = [
        recall_score(g, p, average="binary", zero_division=0)
        for _, p, g in _by_movie(video_ids, np.asarray(shot_ids), np.asarray(pred), np.asarray(gt)).values()
    ]
    return 100.0 * float(np.mean(values))


def recall_at_seconds(
    video_ids: Sequence[str],
    shot_ids: np.ndarray,
    pred: np.ndarray,
    gt: np.ndarray,
    timing: Mapping[str, np.ndarray],
    window_shots: int = 5,
    seconds: float = 3.0,
    fps: float | Mapping[str, float] = 24.0,
) -> float:
    """Per movie: a true boundary s is found if an evaluated shot s' with |s'-s| <= window_shots is predicted a
    boundary and their end frames are less than ``seconds`` apart; hits / (#true + 1e-5), mean over movies.
    ``fps``: the timing files' frame rate, one for all movies or per movie (ingested videos have their own)."""
    values = []
    for vid, (sids, p, g) in _by_movie(video_ids, np.asarray(shot_ids), np.asarray(pred), np.asarray(gt)).items():
        ends = timing[vid][:, 1]
        rate = fps[vid] if isinstance(fps, Mapping) else fps
        predicted = {int(s): int(v) for s, v in zip(sids, p, strict=True)}
        hits = total = 0
        for s in sids[g == 1]:
            total += 1
            for t in range(int(s) - window_shots, int(s) + window_shots + 1):
                if 0 <= t < len(ends) and predicted.get(t) == 1 and abs(int(ends[t]) - int(ends[s])) / rate < seconds:
                    hits += 1
                    break
        values.append(hits / (total + EPS))
    return 100.0 * float(np.mean(values))


def scene_intervals(shot_ids: np.ndarray, labels: np.ndarray, timing: np.ndarray) -> list[tuple[int, int]]:
    """Scenes as (start frame of the first shot, end frame of the last shot). A scene closes at every shot
    labelled 1; shots after the last 1 are no scene (the LGSS protocol)."""
    scenes = []
    first = None
    for sid, label in zip(shot_ids, labels, strict=True):
        if first is None:
            first = int(sid)
        if label == 1:
            scenes.append((int(timing[first, 0]), int(timing[int(sid), 1])))
            first = None
    return scenes


def _interval_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    if inter <= 0:
        return 0.0
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def _best_match_mean(src: list[tuple[int, int]], dst: list[tuple[int, int]]) -> float:
    return float(np.mean([max(_interval_iou(d, s) for d in dst) for s in src]))


def movie_miou(
    video_ids: Sequence[str], shot_ids: np.ndarray, pred: np.ndarray, gt: np.ndarray, timing: Mapping[str, np.ndarray]
) -> float:
    """Per movie (m1 + m2) / 2, m1 = mean over true scenes of the best IoU with a predicted one, m2 the reverse;
    a movie with no predicted boundary scores 0 (so does one with no true boundary: the original crashes there)."""
    values = []
    for vid, (sids, p, g) in _by_movie(video_ids, np.asarray(shot_ids), np.asarray(pred), np.asarray(gt)).items():
        true_scenes = scene_intervals(sids, g, timing[vid])
        pred_scenes = scene_intervals(sids, p, timing[vid])
        if not pred_scenes or not true_scenes:
            values.append(0.0)
            continue
        values.append((_best_match_mean(true_scenes, pred_scenes) + _best_match_mean(pred_scenes, true_scenes)) / 2)
    return 100.0 * float(np.mean(values))


def scene_metrics(
    video_ids: Sequence[str],
    shot_ids: np.ndarray,
    prob: np.ndarray,
    gt: np.ndarray,
    timing: Mapping[str, np.ndarray],
    pred: np.ndarray | None = None,
    window_shots: int = 5,
    seconds: float = 3.0,
    fps: float | Mapping[str, float] = 24.0,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Every MovieNet-SSeg metric of method.md §9 in one dict (×100). The thresholded ones (F1, accuracies, recalls,
    mIoU) are at 0.5 as the protocol says, or at ``threshold`` (e.g. the one chosen on val that segment applies)."""
    prob = np.asarray(prob, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.int64)
    shot_ids = np.asarray(shot_ids, dtype=np.int64)
    explicit = pred  # decisions made by a rule (bassl.eval.decision): F1 and the recalls count those
    if pred is None:
        pred = predictions_from_prob(prob) if threshold == 0.5 else (prob >= threshold).astype(np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    out = {
        "ap": average_precision(gt, prob),
        "auc_roc": auc_roc(gt, prob),
        "f1": f1_at(gt, prob, threshold) if explicit is None else 100.0 * float(f1_score(gt, pred, zero_division=0)),
        **accuracies(gt, prob, threshold),
        "recall": movie_recall(video_ids, shot_ids, pred, gt),
        "recall_at_3s": recall_at_seconds(video_ids, shot_ids, pred, gt, timing, window_shots, seconds, fps),
        "miou": movie_miou(video_ids, shot_ids, pred, gt, timing),
    }
    return out


def knn_precision(
    features: np.ndarray, video_ids: Sequence[str], scene_ids: np.ndarray, ks: Sequence[int] = (1, 5, 10, 15, 20)
) -> dict[int, float]:
    """Scene-retrieval precision@k within each movie (method.md §6.8, the pre-training monitor).

    Queries count for k only when their scene has at least k shots (the query included)."""
    feats = np.asarray(features, dtype=np.float64)
    feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    scene_ids = np.asarray(scene_ids)
    vids = np.asarray(video_ids)
    hits = {k: 0 for k in ks}
    counts = {k: 0 for k in ks}
    for vid in dict.fromkeys(vids.tolist()):
        idx = np.flatnonzero(vids == vid)
        f, s = feats[idx], scene_ids[idx]
        sim = f @ f.T  # [n, n]
        np.fill_diagonal(sim, -np.inf)
        order = np.argsort(-sim, axis=1, kind="stable")  # [n, n], self last
        scene_size = {v: int(c) for v, c in zip(*np.unique(s, return_counts=True), strict=True)}
        same = s[order] == s[:, None]  # [n, n]
        for k in ks:
            if k > len(idx) - 1:
                continue
            ok = np.array([scene_size[v] >= k for v in s])
            hits[k] += int(same[ok, :k].sum())
            counts[k] += int(ok.sum()) * k
    return {k: (100.0 * hits[k] / counts[k] if counts[k] else float("nan")) for k in ks}
