"""The pure-torch reference loader: the same plan and the same shard reads as the DALI loader, decoded with
libjpeg-turbo (``torchvision.io.decode_jpeg``) and augmented with ``torchvision.transforms.v2.functional`` in
DataLoader workers. For machines without DALI, and the oracle of the tests.

Per image, in the spec's order (§4.1): resized crop (planned box) → flip → colour jitter (planned factors, in
the planned op order) → Gaussian blur (planned sigma; PIL's radius is the standard deviation) → [0, 1] →
ImageNet normalisation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchvision.transforms.v2.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.io import ImageReadMode, decode_jpeg

from bassl.loaders.sampling import PlanSpec
from bassl.loaders.shards import ShotTable, jpeg_size
from bassl.loaders.steps import eval_resize_box, plan_step

INTERPOLATION = {"bicubic": F.InterpolationMode.BICUBIC, "bilinear": F.InterpolationMode.BILINEAR}


def decode(jpeg: np.ndarray) -> torch.Tensor:
    """``[3, H, W]`` uint8 RGB."""
    return decode_jpeg(torch.from_numpy(np.array(jpeg, copy=True)), mode=ImageReadMode.RGB)


def normalize(img: torch.Tensor, mean, std) -> torch.Tensor:
    return F.normalize(F.to_dtype(img, torch.float32, scale=True), list(mean), list(std))


def color_jitter(img: torch.Tensor, factors: np.ndarray, order: np.ndarray) -> torch.Tensor:
    b, c, s, h = (float(x) for x in factors)
    for op in order:
        if op == 0 and b != 1.0:
            img = F.adjust_brightness(img, b)
        elif op == 1 and c != 1.0:
            img = F.adjust_contrast(img, c)
        elif op == 2 and s != 1.0:
            img = F.adjust_saturation(img, s)
        elif op == 3 and h != 0.0:
            img = F.adjust_hue(img, h)
    return img


def blur_kernel_size(sigma: float) -> int:
    return 2 * math.ceil(3 * sigma) + 1


def train_image(jpeg, crop, flip, jitter, jitter_order, sigma, *, size: int, interpolation: str, mean, std) -> torch.Tensor:
    """One planned pre-training view: ``[3, size, size]`` float32, normalised."""
    top, left, h, w = (int(x) for x in crop)
    img = F.resized_crop(decode(jpeg), top, left, h, w, [size, size], interpolation=INTERPOLATION[interpolation], antialias=True)
    if flip:
        img = F.horizontal_flip(img)
    img = color_jitter(img, jitter, jitter_order)
    if sigma > 0:
        ks = blur_kernel_size(float(sigma))
        img = F.gaussian_blur(img, [ks, ks], [float(sigma), float(sigma)])
    return normalize(img, mean, std)


def eval_image(jpeg, *, resize: int, size: int, mean, std) -> torch.Tensor:
    """The eval transform (method.md §4.2): shorter side → ``resize`` (bicubic), centre crop ``size``, normalise."""
    img = decode(jpeg)
    nw, nh, top, left = eval_resize_box(img.shape[2], img.shape[1], resize, size)
    img = F.resize(img, [nh, nw], interpolation=F.InterpolationMode.BICUBIC, antialias=True)
    return normalize(F.crop(img, top, left, size, size), mean, std)


class PretrainSamples(Dataset):
    """Item ``i`` = the ``i``-th sample of this rank's epoch stream (anchor and global position given)."""

    def __init__(self, spec: PlanSpec, table: ShotTable, anchors: np.ndarray, positions: np.ndarray, epoch: int,
                 *, size: int, interpolation: str, mean, std):
        self.spec, self.table, self.epoch = spec, table, epoch
        self.anchors, self.positions = anchors, positions
        self.kw = dict(size=size, interpolation=interpolation, mean=mean, std=std)

    def __len__(self) -> int:
        return len(self.anchors)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        step = plan_step(self.spec, self.table, self.anchors[i : i + 1], self.positions[i : i + 1], self.epoch)
        images = torch.stack([
            train_image(step.jpegs[j], step.crop[j], step.flip[j], step.jitter[j], step.jitter_order[j], step.blur_sigma[j],
                        **self.kw)
            for j in range(step.count)
        ])  # [T, 3, S, S]
        out = {"images": images, "video_index": torch.tensor(step.video_index[0]), "shot": torch.tensor(step.shot[0])}
        if step.msm_mask is not None:
            out["msm_mask"] = torch.from_numpy(step.msm_mask[0])
        return out


def pretrain_batches(dataset: PretrainSamples, batch_size: int, num_workers: int):
    """This rank's batches, in plan order (no sampler shuffling: the plan already is the shuffle)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=True, num_workers=num_workers,
                      persistent_workers=False, prefetch_factor=4 if num_workers else None)


class EvalShots(Dataset):
    """Item ``i`` = shot row ``rows[i]``: all its keyframes through the eval transform, ``[F, 3, S, S]``."""

    def __init__(self, table: ShotTable, rows: np.ndarray, *, resize: int, size: int, mean, std):
        self.table, self.rows = table, rows
        self.kw = dict(resize=resize, size=size, mean=mean, std=std)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = int(self.rows[i])
        self.table.prefetch((row, k) for k in range(self.table.keyframes))  # remote shards: one ranged read
        images = torch.stack([eval_image(self.table.jpeg(row, k), **self.kw) for k in range(self.table.keyframes)])
        m = int(self.table.movie_of(np.array([row]))[0])
        return {"images": images, "video_index": torch.tensor(m), "shot": torch.tensor(row - int(self.table.movie_start[m]))}


def eval_batches(dataset: EvalShots, batch_size: int, num_workers: int):
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=False, num_workers=num_workers,
                      prefetch_factor=4 if num_workers else None)


__all__ = ["PretrainSamples", "EvalShots", "pretrain_batches", "eval_batches", "train_image", "eval_image", "jpeg_size"]
