"""``bassl evaluate``: MovieNet-SSeg metrics of boundary predictions, a JSON report and plots.

Predictions are a Parquet file with one row per scored shot: ``video_id``, ``shot_id``, ``prob``
(softmax class 1) and ``label`` (the ground truth; -100 = ignored). Fine-tuning writes one for the selected
epoch and calls the same functions, so a report can always be re-made from the file alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bassl.config import Config
from bassl.errors import DataError
from bassl.eval.metrics import predictions_from_prob, scene_metrics
from bassl.eval.report import plot_pr_curve, plot_timeline, write_json
from bassl.sharding.movienet import MovieNetSource

PREDICTIONS = "predictions_test.parquet"


def evaluate_predictions(cfg: Config, source: MovieNetSource, video_ids: Sequence[str], shot_ids: np.ndarray,
                         labels: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """Every metric of spec §9 over the shots whose label is not ignored; shot timing from the dataset."""
    keep = np.asarray(labels) >= 0
    vids = np.asarray(video_ids)[keep]
    timing = {v: source.shot_timing(v) for v in dict.fromkeys(vids.tolist())}
    return scene_metrics(vids, np.asarray(shot_ids)[keep], np.asarray(prob)[keep], np.asarray(labels)[keep], timing,
                         window_shots=cfg.eval.recall_window_shots, seconds=cfg.eval.recall_seconds, fps=cfg.data.fps)


def write_predictions(path: Path, video_ids: Sequence[str], shot_ids: np.ndarray, labels: np.ndarray,
                      prob: np.ndarray) -> Path:
    table = pa.table({"video_id": pa.array(list(video_ids), pa.string()), "shot_id": pa.array(np.asarray(shot_ids, np.int32)),
                      "prob": pa.array(np.asarray(prob, np.float64)), "label": pa.array(np.asarray(labels, np.int64))})
    pq.write_table(table, path)
    return path


def read_predictions(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    if not Path(path).is_file():
        raise DataError(f"{path} does not exist; `bassl finetune` writes {PREDICTIONS} into its output directory")
    t = pq.read_table(path)
    missing = {"video_id", "shot_id", "prob", "label"} - set(t.column_names)
    if missing:
        raise DataError(f"{path}: columns {sorted(missing)} missing (need video_id, shot_id, prob, label)")
    return (t.column("video_id").to_pylist(), t.column("shot_id").to_numpy(), t.column("label").to_numpy(),
            t.column("prob").to_numpy())


def write_report(out_dir: Path, report: dict[str, Any], video_ids: Sequence[str], shot_ids: np.ndarray,
                 labels: np.ndarray, prob: np.ndarray) -> Path:
    """report.json, the predictions, pr_curve.png and timeline.png in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(out_dir / PREDICTIONS, video_ids, shot_ids, labels, prob)
    keep = np.asarray(labels) >= 0
    vids, sids, gt, p = np.asarray(video_ids)[keep], np.asarray(shot_ids)[keep], np.asarray(labels)[keep], prob[keep]
    plot_pr_curve(out_dir / "pr_curve.png", gt, p, title=str(report.get("method", "")))
    plot_timeline(out_dir / "timeline.png", vids.tolist(), sids, p, gt, predictions_from_prob(p))
    report = {**report, "plots": ["pr_curve.png", "timeline.png"], "predictions": PREDICTIONS}
    return write_json(out_dir / "report.json", report)


def evaluate_file(cfg: Config, predictions: Path, out_dir: Path) -> dict[str, Any]:
    vids, sids, labels, prob = read_predictions(predictions)
    source = MovieNetSource.from_config(cfg.data)
    metrics = evaluate_predictions(cfg, source, vids, sids, labels, prob)
    report = {"predictions_from": str(predictions), "test": metrics, "shots": int((labels >= 0).sum()),
              "movies": len(set(vids))}
    write_report(out_dir, report, vids, sids, labels, prob)
    return report
