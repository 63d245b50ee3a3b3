"""DALI pipelines: planned JPEG bytes in, augmented ``[3, S, S]`` float32 images out. One image = one DALI sample.

The Python side (``steps.plan_step``) plans a step and slices the JPEG bytes out of the shard mmaps; an
``external_source`` feeds them with the planned parameters. Decoding is ``cpu`` or ``mixed`` (GPU) by one
variable; every later op runs where its input lives, so the same definition serves both.

Colour jitter runs after DALI, in torch on the batch (``color.apply_jitter``: the planned factors in the planned
order as one affine map per image); against the reference loader that differs only by the hue approximation
and the clamping (see color.py). Crops, flips, blur sigmas, keyframes and masks are the planned ones.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
from nvidia.dali import fn, pipeline_def, types

from bassl.loaders.steps import StepImages

INTERP = {"bicubic": types.INTERP_CUBIC, "bilinear": types.INTERP_LINEAR}
_TRAIN_INPUTS = ("jpeg", "crop_anchor", "crop_shape", "flip", "blur", "sigma")
_EVAL_INPUTS = ("jpeg", "resize_x", "resize_y", "anchor")


def decoder_device(device: torch.device) -> str:
    return "mixed" if device.type == "cuda" else "cpu"


@pipeline_def(enable_conditionals=True)
def train_pipeline(decode_device: str, size: int, interpolation: str, mean, std):
    jpeg, anchor, shape, flip, blur, sigma = (fn.external_source(name=n, no_copy=False) for n in _TRAIN_INPUTS)
    # Fused decode + crop: only the planned window (x, y, w, h in pixels) is decoded.
    img = fn.decoders.image_slice(jpeg, anchor, shape, device=decode_device, output_type=types.RGB,
                                  normalized_anchor=False, normalized_shape=False, axis_names="WH")
    img = fn.resize(img, resize_x=size, resize_y=size, interp_type=INTERP[interpolation], antialias=True)
    # Colour jitter is not here: it is affine, so it commutes with blur and flip, and color.apply_jitter does
    # it on the output batch in torch (DALI's CPU colour ops cost as much as the decode).
    if blur:  # per-sample branch: only the planned half of the images pays for the blur
        img = fn.gaussian_blur(img, sigma=sigma)
    return fn.crop_mirror_normalize(img, mirror=flip, mean=[m * 255 for m in mean], std=[s * 255 for s in std],
                                    output_layout="CHW", dtype=types.FLOAT)


@pipeline_def
def eval_pipeline(decode_device: str, size: int, mean, std):
    jpeg, resize_x, resize_y, anchor = (fn.external_source(name=n, no_copy=False) for n in _EVAL_INPUTS)
    img = fn.decoders.image(jpeg, device=decode_device, output_type=types.RGB)
    # Sizes and the centre-crop corner are computed as torchvision's Resize + CenterCrop do (steps.eval_resize_box).
    img = fn.resize(img, resize_x=resize_x, resize_y=resize_y, interp_type=types.INTERP_CUBIC, antialias=True)
    img = fn.slice(img, anchor, [float(size), float(size)], normalized_anchor=False, normalized_shape=False, axis_names="WH")
    return fn.crop_mirror_normalize(img, mean=[m * 255 for m in mean], std=[s * 255 for s in std],
                                    output_layout="CHW", dtype=types.FLOAT)


def train_feed(step: StepImages) -> dict[str, list[np.ndarray]]:
    """The external_source inputs of one step; DALI wants (x, y) / (w, h) order."""
    crop = step.crop  # [n, 4] top, left, h, w
    return {
        "jpeg": step.jpegs,
        "crop_anchor": list(np.ascontiguousarray(crop[:, [1, 0]]).astype(np.float32)),
        "crop_shape": list(np.ascontiguousarray(crop[:, [3, 2]]).astype(np.float32)),
        "flip": list(step.flip.astype(np.int32)),
        "blur": list(step.blur_sigma > 0),
        "sigma": list(np.maximum(step.blur_sigma, 0.1).astype(np.float32)),
    }


def to_torch(output, device: torch.device) -> torch.Tensor:
    """A DALI TensorList of uniform shape → one torch tensor on ``device``."""
    from nvidia.dali.plugin.pytorch import feed_ndarray

    dense = output.as_tensor()
    out = torch.empty(dense.shape(), dtype=torch.float32, device=device)
    feed_ndarray(dense, out, cuda_stream=torch.cuda.current_stream(device) if device.type == "cuda" else None)
    return out


class DaliRunner:
    """Keeps ``depth`` steps in flight: feed and schedule step i+depth-1, then collect step i (FIFO).

    DALI's first ``schedule_run`` prefetches ``depth`` iterations, so the first ``depth`` steps are fed before
    it (a run shorter than that is padded with repeats whose outputs are dropped). A consumer that stops
    early leaves nothing behind: the in-flight outputs are drained when the generator closes.
    """

    _PAD = object()

    def __init__(self, pipe, device: torch.device, depth: int = 2):
        self.pipe, self.device, self.depth = pipe, device, depth
        self.pipe.build()
        self._first = True

    def run(self, steps):
        """``steps``: iterable of (input dict, whatever rides along with that step); yields (images, meta)."""
        pending: deque = deque()
        last = None
        try:
            for feed, meta in steps:
                self._feed(feed)
                pending.append(meta)
                last = feed
                if self._first and len(pending) < self.depth:
                    continue
                self.pipe.schedule_run()
                self._first = False
                if len(pending) >= self.depth:
                    yield self._collect(), pending.popleft()
            if self._first and pending:  # fewer steps than the prefetch depth, on a fresh pipeline
                while len(pending) < self.depth:
                    self._feed(last)
                    pending.append(self._PAD)
                self.pipe.schedule_run()
                self._first = False
            while pending:
                meta = pending.popleft()
                images = self._collect()
                if meta is not self._PAD:
                    yield images, meta
        finally:
            if not self._first:
                for _ in range(len(pending)):
                    self.pipe.outputs()

    def _feed(self, feed: dict) -> None:
        for name, batch in feed.items():
            self.pipe.feed_input(name, batch)

    def _collect(self) -> torch.Tensor:
        (images,) = self.pipe.outputs()
        return to_torch(images, self.device)


def eval_feed(jpegs: list[np.ndarray], boxes: np.ndarray) -> dict[str, list[np.ndarray]]:
    """``boxes``: [n, 4] (new_w, new_h, top, left) from ``steps.eval_resize_box``."""
    boxes = np.asarray(boxes, dtype=np.float32)
    return {
        "jpeg": jpegs,
        "resize_x": list(boxes[:, 0].copy()),
        "resize_y": list(boxes[:, 1].copy()),
        "anchor": list(np.ascontiguousarray(boxes[:, [3, 2]])),
    }
