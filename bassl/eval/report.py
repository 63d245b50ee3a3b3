"""An evaluation report on disk: ``report.json``, the predictions it was computed from, and the two plots."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bassl.data.atomic import write_json
from bassl.data.predictions import PREDICTIONS, write_predictions
from bassl.eval.metrics import predictions_from_prob
from bassl.eval.plots import plot_pr_curve, plot_timeline

REPORT = "report.json"
PLOTS = ("pr_curve.png", "timeline.png")


def remove_report(out_dir: str | Path) -> None:
    """An earlier report in ``out_dir`` (report.json, its predictions and plots), before a new run writes its own: a
    run stopped part way must not leave the earlier run's files passing for its own."""
    for name in (REPORT, PREDICTIONS, *PLOTS):
        (Path(out_dir) / name).unlink(missing_ok=True)


def read_report(out_dir: str | Path) -> dict[str, Any] | None:
    """The ``report.json`` :func:`write_report` wrote into ``out_dir``; None when there is none (yet)."""
    path = Path(out_dir) / REPORT
    return json.loads(path.read_text()) if path.is_file() else None


def write_report(out_dir: Path, report: dict[str, Any], video_ids: Sequence[str], shot_ids: np.ndarray,
                 labels: np.ndarray, prob: np.ndarray) -> Path:
    """report.json, the predictions, pr_curve.png and timeline.png in ``out_dir``."""
    out_dir = Path(out_dir)
    write_predictions(out_dir / PREDICTIONS, video_ids, shot_ids, labels, prob)
    keep = np.asarray(labels) >= 0
    vids, sids, gt, p = np.asarray(video_ids)[keep], np.asarray(shot_ids)[keep], np.asarray(labels)[keep], prob[keep]
    pr_curve, timeline = PLOTS
    plot_pr_curve(out_dir / pr_curve, gt, p, title=str(report.get("method", "")))
    plot_timeline(out_dir / timeline, vids.tolist(), sids, p, gt, predictions_from_prob(p))
    report = {**report, "plots": list(PLOTS), "predictions": PREDICTIONS}
    return write_json(out_dir / REPORT, report, indent=2)
