"""The similarity probe: a boundary classifier with no CRN, the baseline the fine-tuned CRN must at least match.

Each 17-shot window (the fine-tuning window, :mod:`bassl.loaders.finetune`) becomes the upper triangle of its
17×17 cosine-similarity matrix plus ``|f₈ − f₉|`` (the centre shot against the next), and a class-balanced
logistic regression scores "the centre shot ends a scene". Everything it sees, the CRN sees too; its
regularisation strength is chosen on val, never on test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from bassl.config import Config
from bassl.data.features import FeatureMatrix
from bassl.data.movienet import MovieNetSource
from bassl.eval.evaluate import evaluate_predictions
from bassl.eval.metrics import average_precision
from bassl.loaders.finetune import Anchors, split_anchors, window_rows
from bassl.models.boundary_model import SimilarityHead

C_GRID = (0.001, 0.01, 0.1, 1.0)


def window_similarities(features: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``[N, S(S-1)/2 + D]``: the pairwise cosine similarities of each window's shots and |centre − next|."""
    x = np.asarray(features, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    w = x[rows]  # [N, S, D]
    pairs = torch.triu_indices(rows.shape[1], rows.shape[1], offset=1)
    sim = SimilarityHead.similarities(torch.from_numpy(w), pairs).numpy()  # [N, S(S-1)/2], what the head's MLP sees
    c = rows.shape[1] // 2
    return np.concatenate([sim, np.abs(w[:, c] - w[:, c + 1])], axis=1)


def similarity_probe(cfg: Config, fm: FeatureMatrix, source: MovieNetSource) -> dict[str, Any]:
    """Fit on train, choose C on val AP, report every metric on test (and val) at the chosen C."""
    k, negative = cfg.window.neighbor_size, cfg.data.negative_label
    splits = {s: split_anchors(fm, source, s, negative) for s in ("train", "val", "test")}

    def xy(a: Anchors) -> tuple[np.ndarray, np.ndarray]:
        keep = a.label >= 0
        return window_similarities(fm.features, window_rows(fm, a.movie[keep], a.shot[keep], k)), a.label[keep]

    (xtr, ytr), (xva, yva), (xte, yte) = (xy(splits[s]) for s in ("train", "val", "test"))
    scaler = StandardScaler().fit(xtr)
    xtr, xva, xte = scaler.transform(xtr), scaler.transform(xva), scaler.transform(xte)
    fits = {}
    for c in C_GRID:
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000).fit(xtr, ytr)
        fits[c] = (model, average_precision(yva, model.predict_proba(xva)[:, 1]))
    best_c = max(C_GRID, key=lambda c: fits[c][1])
    model = fits[best_c][0]
    out: dict[str, Any] = {"C": best_c, "val_ap_by_C": {str(c): fits[c][1] for c in C_GRID}}
    for name, x in (("val", xva), ("test", xte)):
        a = splits[name]
        keep = a.label >= 0
        out[name] = evaluate_predictions(cfg, source, [fm.video_ids[m] for m in a.movie[keep]], a.shot[keep],
                                         a.label[keep], model.predict_proba(x)[:, 1])
    return out
