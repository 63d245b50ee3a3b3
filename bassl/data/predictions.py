"""Boundary predictions as Parquet: one row per scored shot, ``video_id``, ``shot_id``, ``prob`` (softmax class 1)
and ``label`` (the ground truth; -100 = ignored). ``bassl finetune`` writes them; ``bassl evaluate`` re-makes a
report from them alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bassl.data.atomic import atomic_path
from bassl.errors import DataError

PREDICTIONS = "predictions_test.parquet"
COLUMNS = ("video_id", "shot_id", "prob", "label")


def write_predictions(path: str | Path, video_ids: Sequence[str], shot_ids: np.ndarray, labels: np.ndarray,
                      prob: np.ndarray) -> Path:
    table = pa.table({"video_id": pa.array(list(video_ids), pa.string()), "shot_id": pa.array(np.asarray(shot_ids, np.int32)),
                      "prob": pa.array(np.asarray(prob, np.float64)), "label": pa.array(np.asarray(labels, np.int64))})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def read_predictions(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(video ids, shot ids, labels, probabilities)."""
    if not Path(path).is_file():
        raise DataError(f"{path} does not exist; `bassl finetune` writes {PREDICTIONS} into its output directory")
    try:
        t = pq.read_table(path)
    except pa.ArrowInvalid as e:
        raise DataError(f"{path}: not a Parquet file ({e}); pass the {PREDICTIONS} that `bassl finetune` writes") from e
    missing = set(COLUMNS) - set(t.column_names)
    if missing:
        raise DataError(f"{path}: columns {sorted(missing)} missing (need {', '.join(COLUMNS)})")
    return (t.column("video_id").to_pylist(), t.column("shot_id").to_numpy(), t.column("label").to_numpy(),
            t.column("prob").to_numpy())
