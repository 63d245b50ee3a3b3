"""Entry points: ``build_pretrain_loader`` and ``build_eval_loader`` return a :class:`LoaderHandle`.

Both loader kinds (``cfg.pretrain.loader``: ``dali`` | ``torch``) yield the same batch dict:

* pre-training: ``images [B, T, 3, S, S]`` float32 normalised on ``device`` (T = 2 for instance/temporal;
  sparse views then 2K+1 dense for the window methods), ``msm_mask [B, 2K+1]`` bool (bassl, bassl_shotcol),
  ``video_index [B]`` (into ``handle.movie_ids``) and ``shot [B]`` (anchor shot index);
* evaluation: ``images [B, F, 3, S, S]`` (all F keyframes), ``video_index [B]``, ``shot [B]``.

The chain: shard index → shot table (split) → epoch plan (order, per-sample draws) → this rank's slice →
step list (bytes + resolved boxes) → decode + augment (DALI or torch) → batch dict on the device.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bassl.config import Config, ConfigError
from bassl.loaders.sampling import PlanSpec, anchors_per_epoch, check_arithmetic, epoch_order, rank_slice, steps_per_epoch
from bassl.loaders.shards import ShotTable, jpeg_size, open_shots
from bassl.loaders.steps import eval_resize_box, plan_step


@dataclass
class LoaderHandle:
    """What the loop needs from a loader, whichever kind it is (as open_clip's ``DataInfo``)."""

    kind: str
    table: ShotTable
    steps_per_epoch: int
    batch_size: int  # per rank
    _iterate: Callable[[int, int], Iterator[dict[str, torch.Tensor]]] = field(repr=False)
    epoch: int = 0
    start_step: int = 0
    num_samples: int = 0  # samples this rank sees per epoch

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Select the epoch; ``start_step`` resumes inside it (skipped steps are never read or decoded)."""
        if not 0 <= start_step <= self.steps_per_epoch:
            raise ValueError(f"start_step {start_step} is outside the epoch's {self.steps_per_epoch} steps")
        self.epoch, self.start_step = epoch, start_step

    @property
    def movie_ids(self) -> list[str]:
        return self.table.movie_ids

    def __len__(self) -> int:
        return self.steps_per_epoch - self.start_step

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self._iterate(self.epoch, self.start_step)


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device}: this machine has no CUDA GPU that torch can use; pass device='cpu' (or None)")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _kind(cfg: Config, loader: str | None) -> str:
    kind = loader or cfg.pretrain.loader
    if kind not in ("dali", "torch"):
        raise ConfigError(f"pretrain.loader: {kind!r} is not a loader; choose dali or torch")
    return kind


def _require_dali() -> None:
    """DALI ships wheels for Linux only; say what to do instead of a bare ImportError from deep inside."""
    try:
        import nvidia.dali  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"pretrain.loader: dali, but NVIDIA DALI cannot be imported ({e}). Install it "
                          "(pip install nvidia-dali-cuda130; Linux x86_64/aarch64) or use the pure-torch "
                          "reference loader: pretrain.loader=torch") from e


def _threads(cfg: Config) -> int:
    return max(1, cfg.pretrain.num_workers or (os.cpu_count() or 1))


# --------------------------------------------------------------------------------------------------
# Pre-training
# --------------------------------------------------------------------------------------------------


def build_pretrain_loader(cfg: Config, source: str | Path, rank: int = 0, world: int = 1, device=None, *,
                          loader: str | None = None, split: str | None = None,
                          batch_size: int | None = None) -> LoaderHandle:
    """Pre-training windows from the shards at ``source`` (directory or manifest). ``batch_size`` is the
    per-rank batch (default ``pretrain.effective_batch / world``)."""
    kind, device = _kind(cfg, loader), resolve_device(device)
    table = open_shots(source, split, cfg.data.remote_fetch)
    spec = PlanSpec.from_config(cfg)
    effective = (batch_size * world) if batch_size else cfg.pretrain.effective_batch
    epoch_shots = cfg.pretrain.epoch_shots
    check_arithmetic(anchors_per_epoch(table.num_rows, epoch_shots), effective, world)
    b = effective // world
    a = cfg.augment
    size, t = a.image_size, spec.images

    def rank_steps(epoch: int, start: int):
        anchors, positions = rank_slice(epoch_order(table.num_rows, cfg.seed, epoch, effective, epoch_shots), rank, world)
        return anchors[start:], positions[start:]

    def batch_dict(images: torch.Tensor, video: np.ndarray, shot: np.ndarray, mask: np.ndarray | None) -> dict:
        out = {"images": images.view(len(video), t, 3, size, size),  # [B, T, 3, S, S]
               "video_index": torch.from_numpy(video), "shot": torch.from_numpy(shot)}
        if mask is not None:
            out["msm_mask"] = torch.from_numpy(mask).to(device)
        return out

    if kind == "dali":
        _require_dali()
        from bassl.loaders.color import apply_jitter
        from bassl.loaders.dali import DaliRunner, decoder_device, train_feed, train_pipeline

        pipe = train_pipeline(decoder_device(device), size, a.crop_interpolation, a.mean, a.std,
                              batch_size=b * t, num_threads=_threads(cfg), prefetch_queue_depth=2,
                              device_id=device.index if device.type == "cuda" else None)
        runner = DaliRunner(pipe, device, depth=2)
        workspace: dict = {}

        def iterate(epoch: int, start: int):
            anchors, positions = rank_steps(epoch, start)

            def steps():  # what the stream holds: (DALI inputs, ids + mask) per step
                for rows, pos in zip(anchors, positions, strict=True):
                    step = plan_step(spec, table, rows, pos, epoch)
                    yield train_feed(step), step  # the plan rides along for the jitter and the ids

            for images, step in runner.run(steps()):
                images = apply_jitter(images, step.jitter, step.jitter_order, a.mean, a.std, workspace)
                yield batch_dict(images, step.video_index, step.shot, step.msm_mask)
    else:
        from bassl.loaders.reference import PretrainSamples, pretrain_batches

        def iterate(epoch: int, start: int):
            anchors, positions = rank_steps(epoch, start)
            ds = PretrainSamples(spec, table, anchors.reshape(-1), positions.reshape(-1), epoch, size=size,
                                 interpolation=a.crop_interpolation, mean=a.mean, std=a.std)
            for batch in pretrain_batches(ds, b, cfg.pretrain.num_workers):
                batch["images"] = batch["images"].to(device, non_blocking=True)
                if "msm_mask" in batch:
                    batch["msm_mask"] = batch["msm_mask"].to(device)
                yield batch

    steps = steps_per_epoch(table.num_rows, effective, epoch_shots)
    return LoaderHandle(kind, table, steps, b, iterate, num_samples=steps * b)


# --------------------------------------------------------------------------------------------------
# Evaluation / feature extraction
# --------------------------------------------------------------------------------------------------


def eval_rows(num_rows: int, rank: int, world: int) -> np.ndarray:
    """Rank ``rank``'s contiguous block of shot rows: disjoint, covering, sizes differ by at most one, no padding."""
    return np.arange(num_rows * rank // world, num_rows * (rank + 1) // world)


def build_eval_loader(cfg: Config, source: str | Path, split: str | None = None, rank: int = 0, world: int = 1,
                      device=None, *, loader: str | None = None, batch_size: int | None = None,
                      movies: list[str] | None = None) -> LoaderHandle:
    """Every shot of ``split`` (or of ``movies`` in it) exactly once over all ranks, in movie order, all
    keyframes, eval transform."""
    kind, device = _kind(cfg, loader), resolve_device(device)
    table = open_shots(source, split, cfg.data.remote_fetch)
    if movies is not None:
        table = table.select(movies)
    rows = eval_rows(table.num_rows, rank, world)
    bs = batch_size or cfg.extract.batch_size
    a = cfg.augment
    f, size = table.keyframes, a.image_size

    if kind == "dali":
        _require_dali()
        from bassl.loaders.dali import DaliRunner, decoder_device, eval_feed, eval_pipeline

        pipe = eval_pipeline(decoder_device(device), size, a.mean, a.std, batch_size=bs * f,
                             num_threads=_threads(cfg), prefetch_queue_depth=2,
                             device_id=device.index if device.type == "cuda" else None)
        runner = DaliRunner(pipe, device, depth=2)

        def iterate(epoch: int, start: int):
            def steps():
                for s in range(start * bs, len(rows), bs):
                    chunk = rows[s : s + bs]
                    table.prefetch((int(r), k) for r in chunk for k in range(f))  # remote shards: a few ranged reads
                    jpegs = [table.jpeg(int(r), k) for r in chunk for k in range(f)]
                    boxes = [eval_resize_box(*jpeg_size(j), a.eval_resize, size) for j in jpegs]
                    video = table.movie_of(chunk)
                    yield eval_feed(jpegs, np.asarray(boxes)), (video, chunk - table.movie_start[video])

            for images, (video, shot) in runner.run(steps()):
                yield {"images": images.view(len(video), f, 3, size, size),  # [B, F, 3, S, S]
                       "video_index": torch.from_numpy(video.astype(np.int64)), "shot": torch.from_numpy(shot.astype(np.int64))}
    else:
        from bassl.loaders.reference import EvalShots, eval_batches

        def iterate(epoch: int, start: int):
            ds = EvalShots(table, rows[start * bs :], resize=a.eval_resize, size=size, mean=a.mean, std=a.std)
            for batch in eval_batches(ds, bs, cfg.pretrain.num_workers):
                batch["images"] = batch["images"].to(device, non_blocking=True)
                yield batch

    return LoaderHandle(kind, table, -(-len(rows) // bs), bs, iterate, num_samples=len(rows))
