"""Window index arithmetic (method.md §3.6): which shots a sample holds. Pure numpy, vectorised over anchors.

Shot indices are 0-based positions in a movie of ``num_shots`` shots; the last valid index is always
``num_shots - 1`` (method.md §3.2: we never trust the annotation's ``num_shot`` for indexing).
"""

from __future__ import annotations

import numpy as np


def pretrain_window(anchor, num_shots, k: int) -> np.ndarray:
    """``[N, 2K+1]`` dense indices of the pre-training window (the original's ``SequenceShotSampler``).

    The window ``c-K .. c+K`` is shifted right to start at 0 when it would start before the movie, else
    shifted left to end at the last shot when it would run past it; then every index is clipped to the
    movie (which only repeats shots in movies shorter than 2K+1). So near the edges the anchor is not at
    the centre, and a movie of >= 2K+1 shots always gives 2K+1 distinct shots.
    """
    c = np.atleast_1d(np.asarray(anchor, dtype=np.int64))
    n = np.broadcast_to(np.asarray(num_shots, dtype=np.int64), c.shape)
    last = n - 1
    start = c - k
    start = np.where(start < 0, 0, np.where(c + k > last, last - 2 * k, start))
    idx = start[:, None] + np.arange(2 * k + 1)  # [N, 2K+1]
    return np.clip(idx, 0, last[:, None])


def neighbor_window(anchor, num_shots, k: int) -> np.ndarray:
    """``[N, 2K+1]`` indices for fine-tuning and evaluation (``NeighborShotSampler``): ``c-K .. c+K`` clipped
    to the movie, so the edge shot repeats and the anchor is always at position K."""
    c = np.atleast_1d(np.asarray(anchor, dtype=np.int64))
    n = np.broadcast_to(np.asarray(num_shots, dtype=np.int64), c.shape)
    return np.clip(c[:, None] + np.arange(-k, k + 1), 0, (n - 1)[:, None])


def temporal_neighbor(anchor: int, num_shots: int, k: int, u: float) -> int:
    """The intended temporal positive (method.md §3.6, ``TemporalShotSampler``): uniform over the distinct shots of
    ``c-K .. c+K`` clipped to the movie, except ``c`` itself; ``u`` in [0, 1) is the planned draw. A one-shot
    movie has no other shot and gives ``c``."""
    lo, hi = max(0, anchor - k), min(num_shots - 1, anchor + k)
    others = hi - lo  # distinct shots in [lo, hi] minus the anchor
    if others == 0:
        return anchor
    j = lo + min(int(u * others), others - 1)
    return j + 1 if j >= anchor else j
