"""One step's work list, shared by the DALI and the torch loader: planned samples → flat per-image records.

What the stream holds after :func:`plan_step`: ``b`` samples × ``T`` images, each image = (JPEG bytes from the
shard mmap, pixel crop box, flip, jitter factors and order, blur sigma), plus per-sample ids and MSM masks.
Crop boxes are resolved here (they need the image size, read from the JPEG header without decoding), so the
two loaders crop exactly the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bassl.loaders.sampling import PlanSpec, SamplePlan, crop_box, plan_sample
from bassl.loaders.shards import ShotTable, jpeg_size


@dataclass
class StepImages:
    """Flat over ``b*T`` images, sample-major."""

    jpegs: list[np.ndarray]  # uint8 [nbytes] each
    crop: np.ndarray  # [n, 4] int32 top, left, h, w
    flip: np.ndarray  # [n] bool
    jitter: np.ndarray  # [n, 4] float32 brightness, contrast, saturation, hue shift (fraction of a turn)
    jitter_order: np.ndarray  # [n, 4]
    blur_sigma: np.ndarray  # [n] float32, 0 = none
    video_index: np.ndarray  # [b] int64, index into ShotTable.movie_ids
    shot: np.ndarray  # [b] int64 anchor shot index in its movie
    msm_mask: np.ndarray | None  # [b, 2K+1] bool

    @property
    def count(self) -> int:
        return len(self.jpegs)


def plan_samples(spec: PlanSpec, table: ShotTable, anchors: np.ndarray, positions: np.ndarray, epoch: int) -> list[SamplePlan]:
    movies = table.movie_of(anchors)
    return [
        plan_sample(spec, int(table.movie_start[m]), int(table.num_shots[m]), int(a), epoch, int(p))
        for a, m, p in zip(anchors, movies, positions, strict=True)
    ]


def resolve_images(spec: PlanSpec, table: ShotTable, samples: list[SamplePlan]) -> StepImages:
    table.prefetch((int(r), int(k)) for s in samples for r, k in zip(s.rows, s.keyframes, strict=True))  # remote shards
    jpegs, crops = [], []
    for s in samples:
        frames = [table.jpeg(int(r), int(k)) for r, k in zip(s.rows, s.keyframes, strict=True)]
        jpegs += frames
        # One box per group, from the size of the group's first image (method.md §4.3), applied to every image.
        box_of_group = {}
        for i, g in enumerate(s.group):
            if g not in box_of_group:
                w, h = jpeg_size(frames[i])
                box_of_group[g] = crop_box(s.crop_area[i], s.crop_logratio[i], s.crop_uv[i], w, h, spec.crop_ratio)
            crops.append(box_of_group[g])
    anchors = np.array([s.anchor for s in samples], dtype=np.int64)
    video = table.movie_of(anchors)
    return StepImages(
        jpegs=jpegs,
        crop=np.asarray(crops, dtype=np.int32),
        flip=np.concatenate([s.flip for s in samples]),
        jitter=np.concatenate([s.jitter for s in samples]).astype(np.float32),
        jitter_order=np.concatenate([s.jitter_order for s in samples]),
        blur_sigma=np.concatenate([s.blur_sigma for s in samples]).astype(np.float32),
        video_index=video.astype(np.int64),
        shot=anchors - table.movie_start[video],
        msm_mask=np.stack([s.msm_mask for s in samples]) if spec.has_mask else None,
    )


def plan_step(spec: PlanSpec, table: ShotTable, anchors: np.ndarray, positions: np.ndarray, epoch: int) -> StepImages:
    return resolve_images(spec, table, plan_samples(spec, table, anchors, positions, epoch))


def eval_resize_box(width: int, height: int, resize: int, crop: int) -> tuple[int, int, int, int]:
    """torchvision ``Resize(resize)`` (shorter side, long side truncated) then ``CenterCrop(crop)``:
    returns (new_w, new_h, top, left)."""
    if width <= height:
        nw, nh = resize, int(resize * height / width)
    else:
        nh, nw = resize, int(resize * width / height)
    return nw, nh, int(round((nh - crop) / 2.0)), int(round((nw - crop) / 2.0))
