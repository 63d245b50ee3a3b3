"""Fine-tuning input: the anchors a split scores and their 17-shot windows, gathered from one feature matrix.

The Parquet features (:mod:`bassl.data.features`) are read once into one matrix; a window is
``offsets[movie] + clip(c-K .. c+K)`` (clip and repeat at movie edges, anchor centred: method.md §3.6), so a batch
is one indexing op, with no per-shot files as in the original's one ``.npy`` per shot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from bassl.data.features import FeatureMatrix
from bassl.data.movienet import MovieNetSource
from bassl.errors import DataError
from bassl.loaders.windows import neighbor_window


@dataclass
class Anchors:
    """The shots a split scores: each is the centre of its own window."""

    movie: np.ndarray  # [N] index into FeatureMatrix.video_ids
    shot: np.ndarray  # [N]
    label: np.ndarray  # [N] 0/1, or -100 for an ignored -1 label

    def __len__(self) -> int:
        return int(self.movie.shape[0])


def split_anchors(fm: FeatureMatrix, source: MovieNetSource, split: str, negative_label: str) -> Anchors:
    """Every annotated shot of ``anno.<split>.ndjson`` with its label, checked against the features."""
    index = fm.movie_index()
    movie, shot, label = [], [], []
    for vid, ann in source.split(split).items():
        if vid not in index:
            raise DataError(f"movie {vid} of anno.{split}.ndjson has no features; extract the split that holds it "
                            f"(extract.split=trainvaltest covers train, val and test)")
        m = index[vid]
        if ann.shot_ids.max(initial=-1) >= fm.counts[m]:
            raise DataError(f"anno.{split}.ndjson: movie {vid} has shot {int(ann.shot_ids.max())} but features for "
                            f"{int(fm.counts[m])} shots")
        movie.append(np.full(ann.shot_ids.shape, m))
        shot.append(ann.shot_ids)
        label.append(ann.boundary_labels(negative_label))
    if not movie:
        raise DataError(f"anno.{split}.ndjson lists no shots")
    return Anchors(np.concatenate(movie), np.concatenate(shot), np.concatenate(label))


def window_rows(fm: FeatureMatrix, movie: np.ndarray, shot: np.ndarray, k: int) -> np.ndarray:
    """``[N, 2K+1]`` rows of the feature matrix: each movie's clip-and-repeat window (method.md §3.6, fine-tuning)."""
    return fm.offsets[movie][:, None] + neighbor_window(shot, fm.counts[movie], k)


def batches(features: torch.Tensor, rows: np.ndarray, labels: np.ndarray, order: np.ndarray, batch: int,
            drop_last: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
    """(windows [B, 2K+1, D], labels [B], anchor ids [B]) in ``order``; one gather per batch.

    The windows are gathered into one reused buffer (a fresh 140 MB tensor per batch of 1024 costs more in
    page faults than the copy itself): use a batch before asking for the next, or clone it."""
    stop = len(order) - (len(order) % batch if drop_last else 0)
    width = rows.shape[1]
    buffer = torch.empty(min(batch, max(stop, 1)) * width, features.shape[1], dtype=features.dtype)
    for s in range(0, stop, batch):
        ids = order[s : s + batch]
        idx = torch.from_numpy(rows[ids]).flatten()  # [B*S]
        out = torch.index_select(features, 0, idx, out=buffer[: idx.numel()])
        yield out.view(len(ids), width, -1), torch.from_numpy(labels[ids]), ids
