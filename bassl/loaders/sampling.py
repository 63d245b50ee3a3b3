"""The epoch plan: every random choice of the pre-training loaders, as a pure function of the seed.

Order: one global permutation of all anchor shots per epoch, from ``(seed, epoch)`` alone, the same on
every rank; every shot is an anchor once per epoch (as the original's shuffled sampler), the tail that does
not fill a global batch is dropped (``drop_last``: the InfoNCE masks need exactly ``effective/world`` samples
per rank). Global step ``s`` holds positions ``s*E .. s*E+E-1``; rank ``r`` takes its contiguous ``b``-slice.

Sample: everything else (keyframes, temporal neighbour, MSM mask, crop boxes, flips, jitter, blur) is drawn
from a generator seeded by ``(seed, epoch, global position)``. So the DALI and the torch loader apply the
same parameters, a resumed run sees the data of an uninterrupted one, and the plan does not depend on the
world size: the same (seed, epoch) gives the same samples on 1 rank or 8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bassl.config import Config
from bassl.errors import DataError
from bassl.loaders.windows import pretrain_window, temporal_neighbor
from bassl.methods import method_info

_ORDER_TAG = 0x0DE5  # separate streams for the order and the per-sample draws
_SAMPLE_TAG = 0x5A3B
CROP_TRIES = 10  # torchvision RandomResizedCrop.get_params


@dataclass(frozen=True)
class PlanSpec:
    """What the plan reads from the config (a config section subset; picklable into loader workers)."""

    method: str
    k: int
    seed: int
    keyframes: int
    temporal_same_shot: bool
    msm_prob: float
    crop_scale: tuple[float, float]
    crop_ratio: tuple[float, float]
    flip_prob: float
    jitter_prob: float
    jitter: tuple[float, float, float, float]  # brightness, contrast, saturation, hue strengths
    jitter_consistent: bool
    blur_prob: float
    blur_sigma: tuple[float, float]

    @classmethod
    def from_config(cls, cfg: Config) -> PlanSpec:
        a = cfg.augment
        return cls(
            method=cfg.method,
            k=cfg.window.neighbor_size,
            seed=cfg.seed,
            keyframes=cfg.data.keyframes_per_shot,
            temporal_same_shot=cfg.compat.temporal_same_shot,
            msm_prob=cfg.loss.msm_mask_prob,
            crop_scale=tuple(a.crop_scale),
            crop_ratio=tuple(a.crop_ratio),
            flip_prob=a.flip_prob,
            jitter_prob=a.color_jitter_prob,
            jitter=(a.brightness, a.contrast, a.saturation, a.hue),
            jitter_consistent=a.color_jitter_consistent,
            blur_prob=a.blur_prob,
            blur_sigma=tuple(a.blur_sigma),
        )

    @property
    def images(self) -> int:
        return method_info(self.method).images_per_sample(self.k)

    @property
    def has_mask(self) -> bool:
        """MSM masks come with every window of a method that trains a CRN."""
        return method_info(self.method).crn


# --------------------------------------------------------------------------------------------------
# Order
# --------------------------------------------------------------------------------------------------


def anchors_per_epoch(num_anchors: int, epoch_shots: int = 0) -> int:
    """Every shot once (``epoch_shots`` 0, the paper), or a budget of ``epoch_shots`` anchors per epoch."""
    return min(num_anchors, epoch_shots) if epoch_shots > 0 else num_anchors


def steps_per_epoch(num_anchors: int, effective_batch: int, epoch_shots: int = 0) -> int:
    return anchors_per_epoch(num_anchors, epoch_shots) // effective_batch


def check_arithmetic(num_anchors: int, effective_batch: int, world: int) -> None:
    """Fail early, saying what to change, when the epoch cannot be split as asked."""
    if effective_batch % world:
        raise DataError(f"pretrain.effective_batch={effective_batch} is not divisible by the world size {world}")
    if num_anchors < effective_batch:
        raise DataError(
            f"the data has {num_anchors} shots, fewer than one global batch (pretrain.effective_batch={effective_batch}); "
            f"lower pretrain.effective_batch to at most {num_anchors // world * world or world}"
        )


def epoch_order(num_anchors: int, seed: int, epoch: int, effective_batch: int, epoch_shots: int = 0) -> np.ndarray:
    """``[steps, E]`` anchor rows of every global step of the epoch (the same on all ranks). With an
    ``epoch_shots`` budget the epoch is the head of the same permutation: a fresh sample of shots every epoch."""
    perm = np.random.default_rng([seed, epoch, _ORDER_TAG]).permutation(num_anchors)
    steps = steps_per_epoch(num_anchors, effective_batch, epoch_shots)
    return perm[: steps * effective_batch].reshape(steps, effective_batch)


def rank_slice(order: np.ndarray, rank: int, world: int) -> tuple[np.ndarray, np.ndarray]:
    """This rank's ``[steps, b]`` anchor rows and their global positions in the epoch."""
    steps, eff = order.shape
    b = eff // world
    pos = np.arange(steps * eff).reshape(steps, eff)
    return order[:, rank * b : (rank + 1) * b], pos[:, rank * b : (rank + 1) * b]


# --------------------------------------------------------------------------------------------------
# Per-sample draws
# --------------------------------------------------------------------------------------------------


@dataclass
class SamplePlan:
    """One sample: T images, each with its shot row, keyframe and augmentation parameters."""

    anchor: int  # global row of the anchor shot
    rows: np.ndarray  # [T] shot rows of the images (sparse views first, then dense)
    keyframes: np.ndarray  # [T]
    group: np.ndarray  # [T] augmentation draw each image belongs to (one crop, flip, jitter gate, blur gate)
    crop_area: np.ndarray  # [T, CROP_TRIES] fraction of the image area (per group, repeated per image)
    crop_logratio: np.ndarray  # [T, CROP_TRIES]
    crop_uv: np.ndarray  # [T, 2] position draws in [0, 1) (top, left)
    flip: np.ndarray  # [T] bool
    jitter: np.ndarray  # [T, 4] brightness, contrast, saturation factors and hue shift; identity when off
    jitter_order: np.ndarray  # [T, 4] permutation of (0 b, 1 c, 2 s, 3 h)
    blur_sigma: np.ndarray  # [T] float; 0 = no blur
    msm_mask: np.ndarray | None  # [2K+1] bool for bassl / bassl_shotcol


def msm_mask(rng: np.random.Generator, n: int, prob: float) -> np.ndarray:
    """``[n]`` bool, method.md §6.6.4: each position masked with ``prob`` (no BERT 80/10/10); none masked → one,
    uniformly, so the MSM loss is never empty (~2.6 of 17 masked on average)."""
    mask = rng.random(n) < prob
    if not mask.any():
        mask[rng.integers(n)] = True
    return mask


def plan_sample(spec: PlanSpec, movie_start: int, num_shots: int, anchor_row: int, epoch: int, position: int) -> SamplePlan:
    rng = np.random.default_rng([spec.seed, epoch, position, _SAMPLE_TAG])
    c = anchor_row - movie_start
    k = spec.k
    mask = None
    # Which shots, which keyframes (method.md §3.6, §3.7), and which images share one augmentation draw (§4.3).
    info = method_info(spec.method)
    if not info.is_window:
        kf0 = rng.integers(spec.keyframes)
        if spec.method == "instance":
            shots, kfs = np.array([c, c]), np.array([kf0, kf0])
        elif spec.temporal_same_shot:  # method.md §12.1: the original re-draws a keyframe of the same shot
            shots, kfs = np.array([c, c]), np.array([kf0, rng.integers(spec.keyframes)])
        else:
            nb = temporal_neighbor(c, num_shots, k, rng.random())
            shots, kfs = np.array([c, nb]), np.array([kf0, rng.integers(spec.keyframes)])
        group = np.array([0, 1])
    else:
        dense = pretrain_window(c, num_shots, k)[0]  # [2K+1]
        # One keyframe per distinct shot: a shot repeated in a short movie keeps its keyframe.
        per_shot = rng.integers(spec.keyframes, size=min(num_shots, 2 * k + 1))
        dense_kf = per_shot[dense - dense.min()]
        sp = np.asarray(info.sparse_positions(k))
        shots = np.concatenate([dense[sp], dense])
        kfs = np.concatenate([dense_kf[sp], dense_kf])
        group = np.concatenate([np.zeros(len(sp), np.int64), np.ones(2 * k + 1, np.int64)])
        if spec.has_mask:
            mask = msm_mask(rng, 2 * k + 1, spec.msm_prob)
    t = len(shots)
    g = int(group.max()) + 1

    # Augmentation draws, one set per group (crop, flip, jitter gate, blur gate) and per image (blur sigma;
    # jitter factors unless augment.color_jitter_consistent).
    lo, hi = spec.crop_scale
    area = rng.uniform(lo, hi, size=(g, CROP_TRIES))
    logratio = rng.uniform(math.log(spec.crop_ratio[0]), math.log(spec.crop_ratio[1]), size=(g, CROP_TRIES))
    uv = rng.random((g, 2))
    flip = rng.random(g) < spec.flip_prob
    jit_on = rng.random(g) < spec.jitter_prob
    n_jit = g if spec.jitter_consistent else t
    bb, cc, ss, hh = spec.jitter
    factors = np.stack(
        [rng.uniform(max(0, 1 - bb), 1 + bb, n_jit), rng.uniform(max(0, 1 - cc), 1 + cc, n_jit),
         rng.uniform(max(0, 1 - ss), 1 + ss, n_jit), rng.uniform(-hh, hh, n_jit)], axis=1
    )
    order = np.stack([rng.permutation(4) for _ in range(n_jit)])
    if spec.jitter_consistent:
        factors, order = factors[group], order[group]
    factors = np.where(jit_on[group][:, None], factors, np.array([1.0, 1.0, 1.0, 0.0]))
    blur_on = rng.random(g) < spec.blur_prob
    sigma = np.where(blur_on[group], rng.uniform(*spec.blur_sigma, size=t), 0.0)
    return SamplePlan(
        anchor=anchor_row,
        rows=shots + movie_start,
        keyframes=kfs.astype(np.int64),
        group=group,
        crop_area=area[group],
        crop_logratio=logratio[group],
        crop_uv=uv[group],
        flip=flip[group],
        jitter=factors.astype(np.float32),
        jitter_order=order,
        blur_sigma=sigma.astype(np.float32),
        msm_mask=mask,
    )


def crop_box(area: np.ndarray, logratio: np.ndarray, uv: np.ndarray, width: int, height: int,
             ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """(top, left, h, w) exactly as torchvision ``RandomResizedCrop.get_params`` would draw it from these
    planned uniforms for a ``width`` × ``height`` image (up to 10 tries, then the ratio-clamped centre)."""
    total = width * height
    for a, lr in zip(area, logratio, strict=True):
        aspect = math.exp(lr)
        w = int(round(math.sqrt(total * a * aspect)))
        h = int(round(math.sqrt(total * a / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = min(int(uv[0] * (height - h + 1)), height - h)
            left = min(int(uv[1] * (width - w + 1)), width - w)
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w
