"""``bassl evaluate``: MovieNet-SSeg metrics of boundary predictions (:mod:`bassl.data.predictions`), a JSON
report and plots. Fine-tuning calls the same functions for the epoch it selects, so a report can always be
re-made from the predictions file alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bassl.config import Config
from bassl.data.movienet import MovieNetSource
from bassl.data.predictions import read_predictions
from bassl.eval.decision import decide_movies
from bassl.eval.metrics import scene_metrics
from bassl.eval.report import write_report


def evaluate_predictions(cfg: Config, source: MovieNetSource, video_ids: Sequence[str], shot_ids: np.ndarray,
                         labels: np.ndarray, prob: np.ndarray, threshold: float = 0.5,
                         decision: dict | None = None) -> dict[str, float]:
    """Every metric of method.md §9 over the shots whose label is not ignored (thresholded ones at ``threshold``, or
    with ``decision`` = ``{"rule", "value"}`` the boundaries that rule picks: :mod:`bassl.eval.decision`); shot
    timing from the dataset."""
    keep = np.asarray(labels) >= 0
    pred = None
    if decision is not None:
        pred = decide_movies(np.asarray(video_ids)[keep], np.asarray(shot_ids)[keep], np.asarray(prob)[keep],
                             decision["rule"], decision["value"])
    vids = np.asarray(video_ids)[keep]
    movies = list(dict.fromkeys(vids.tolist()))
    timing = {v: source.shot_timing(v) for v in movies}
    fps = {v: source.fps(v, cfg.data.fps) for v in movies}
    return scene_metrics(vids, np.asarray(shot_ids)[keep], np.asarray(prob)[keep], np.asarray(labels)[keep], timing,
                         window_shots=cfg.eval.recall_window_shots, seconds=cfg.eval.recall_seconds, fps=fps,
                         threshold=threshold, pred=pred)


def evaluate_file(cfg: Config, predictions: Path, out_dir: Path) -> dict[str, Any]:
    vids, sids, labels, prob = read_predictions(predictions)
    source = MovieNetSource.from_config(cfg.data)
    metrics = evaluate_predictions(cfg, source, vids, sids, labels, prob)
    report = {"predictions_from": str(predictions), "test": metrics, "shots": int((labels >= 0).sum()),
              "movies": len(set(vids))}
    write_report(out_dir, report, vids, sids, labels, prob)
    return report
