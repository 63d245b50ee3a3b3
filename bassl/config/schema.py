"""The configuration's types: one dataclass per section, each checking its own values (``check``); ``Config.check``
adds the rules that join sections. Every default lives in ``configs/default.yaml`` (with its comment), nowhere
here; a section is only ever built by ``bassl.config.compose`` from that file plus presets and overrides."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from bassl.config.typed_yaml import require
from bassl.methods import METHOD_NAMES, method_info


@dataclass
class DataConfig:
    root: str
    frames_dir: str
    anno_dir: str
    shot_timing_dir: str
    shards: str
    remote_fetch: Literal["ranges", "shards"]
    keyframes_per_shot: int
    fps: float
    negative_label: Literal["positive", "ignore"]

    def check(self) -> None:
        require(self.keyframes_per_shot >= 1, f"data.keyframes_per_shot: {self.keyframes_per_shot} must be >= 1")
        require(self.fps > 0, f"data.fps: {self.fps} must be > 0")


@dataclass
class WindowConfig:
    neighbor_size: int

    def check(self) -> None:
        k = self.neighbor_size
        require(k >= 2, f"window.neighbor_size: {k} is too small; windows of 2K+1 shots need K >= 2 (paper: 8)")


@dataclass
class AugmentConfig:
    image_size: int
    eval_resize: int
    crop_scale: tuple[float, float]
    crop_ratio: tuple[float, float]
    crop_interpolation: Literal["bicubic", "bilinear"]
    flip_prob: float
    color_jitter_prob: float
    brightness: float
    contrast: float
    saturation: float
    hue: float
    color_jitter_consistent: bool
    blur_prob: float
    blur_sigma: tuple[float, float]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def check(self) -> None:
        require(0 < self.crop_scale[0] <= self.crop_scale[1] <= 1,
                f"augment.crop_scale: {self.crop_scale} must satisfy 0 < lo <= hi <= 1")
        require(0 < self.crop_ratio[0] <= self.crop_ratio[1], f"augment.crop_ratio: {self.crop_ratio} must satisfy 0 < lo <= hi")
        require(0 < self.blur_sigma[0] <= self.blur_sigma[1], f"augment.blur_sigma: {self.blur_sigma} must satisfy 0 < lo <= hi")
        for key in ("flip_prob", "color_jitter_prob", "blur_prob"):
            v = getattr(self, key)
            require(0.0 <= v <= 1.0, f"augment.{key}: {v} is a probability; use a value in [0, 1]")
        require(self.image_size >= 16, f"augment.image_size: {self.image_size} is too small (>= 16)")
        require(self.eval_resize >= self.image_size,
                f"augment.eval_resize: {self.eval_resize} must be >= augment.image_size={self.image_size}")
        require(0.0 <= self.hue <= 0.5, f"augment.hue: {self.hue} must be in [0, 0.5]")


@dataclass
class EncoderConfig:
    arch: Literal["resnet50", "resnet18", "resnet_tiny"]
    init: Literal["random", "imagenet"]
    zero_init_residual: bool
    sync_bn: Literal["auto", "on", "off"]


@dataclass
class CRNConfig:
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    dropout: float
    attention_dropout: float
    layer_norm_eps: float
    num_positions: int
    pooling: Literal["center", "cls", "avg", "max"]

    def check(self) -> None:
        require(self.hidden_size % self.num_heads == 0,
                f"model.crn.num_heads: {self.num_heads} does not divide model.crn.hidden_size={self.hidden_size}")
        for key in ("dropout", "attention_dropout"):
            v = getattr(self, key)
            require(0.0 <= v < 1.0, f"model.crn.{key}: {v} must be in [0, 1)")


@dataclass
class HeadConfig:
    nce_hidden: int
    nce_dim: int


BoundaryHead = Literal["paper", "similarity", "hybrid"]  # the models bassl.models.boundary_model builds


@dataclass
class BoundaryConfig:
    head: Literal[BoundaryHead, "auto"]  # auto: fine-tuning trains each of finetune.auto_heads, keeps the best on val
    crn_input: Literal["raw", "l2", "centred"]
    hidden: int
    dropout: float

    def check(self) -> None:
        require(self.hidden >= 1, f"model.boundary.hidden: {self.hidden} must be >= 1")
        require(0.0 <= self.dropout < 1.0, f"model.boundary.dropout: {self.dropout} must be in [0, 1)")


@dataclass
class ModelConfig:
    encoder: EncoderConfig
    crn: CRNConfig
    head: HeadConfig
    boundary: BoundaryConfig


@dataclass
class LossConfig:
    temperature: float
    simclr: bool
    shotcol: bool
    ssm: bool
    cgm: bool
    pp: bool
    msm: bool
    pp_num_negatives: int
    pp_negatives: Literal["uniform", "same_position"]
    msm_mask_prob: float

    def check(self) -> None:
        require(0.0 < self.temperature, f"loss.temperature: {self.temperature} must be > 0")
        require(0.0 < self.msm_mask_prob < 1.0, f"loss.msm_mask_prob: {self.msm_mask_prob} must be in (0, 1)")
        require(self.pp_num_negatives >= 1, f"loss.pp_num_negatives: {self.pp_num_negatives} must be >= 1")


@dataclass
class CompatConfig:
    """Switches that reproduce the original's bugs where they changed its reported numbers (method.md §12)."""

    temporal_same_shot: bool


@dataclass
class OptimConfig:
    base_lr: float
    reference_batch: int
    momentum: float
    weight_decay: float
    trust_coefficient: float
    eps: float
    warmup_ratio: float
    exclude_substrings: tuple[str, ...]

    def check(self) -> None:
        require(self.base_lr > 0, f"optim.base_lr: {self.base_lr} must be > 0")
        require(0.0 <= self.warmup_ratio < 1.0, f"optim.warmup_ratio: {self.warmup_ratio} must be in [0, 1)")
        require(self.reference_batch > 0, f"optim.reference_batch: {self.reference_batch} must be > 0")


@dataclass
class PretrainConfig:
    effective_batch: int
    micro_batch: int
    epochs: int
    epoch_shots: int
    precision: Literal["auto", "fp32", "bf16", "fp16"]
    zero_stage: int
    loader: Literal["dali", "torch"]
    num_workers: int
    checkpoint_every: int
    knn_every_epoch: bool
    monitor_every_epoch: bool
    log_every: int
    output_dir: str

    def check(self) -> None:
        require(self.effective_batch > 0, f"pretrain.effective_batch: {self.effective_batch} must be > 0")
        require(self.epochs > 0, f"pretrain.epochs: {self.epochs} must be > 0")
        require(self.epoch_shots >= 0,
                f"pretrain.epoch_shots: {self.epoch_shots} must be >= 0 (0 = every shot once per epoch)")
        require(self.zero_stage in (0, 1, 2, 3), f"pretrain.zero_stage: {self.zero_stage} must be 0, 1, 2 or 3")
        require(self.micro_batch >= 0, f"pretrain.micro_batch: {self.micro_batch} must be >= 0 (0 = no accumulation)")


@dataclass
class ExtractConfig:
    batch_size: int
    output_dir: str
    split: str
    precision: Literal["auto", "fp32", "bf16", "fp16"]

    def check(self) -> None:
        require(self.batch_size >= 1, f"extract.batch_size: {self.batch_size} must be >= 1 (shots per batch)")


@dataclass
class FinetuneConfig:
    effective_batch: int
    epochs: int
    base_lr: float | Literal["auto"]
    lr_grid: tuple[float, ...]
    auto_heads: tuple[BoundaryHead, ...]
    crn_init: Literal["pretrained", "scratch"]
    reference_batch: int
    weight_decay: float
    warmup_ratio: float
    gradient_clipping: float
    select_on: Literal["val", "last_test"]
    feature_dtype: Literal["fp32", "fp16"]
    output_dir: str

    def check(self) -> None:
        require(self.effective_batch > 0, f"finetune.effective_batch: {self.effective_batch} must be > 0")
        require(self.epochs > 0, f"finetune.epochs: {self.epochs} must be > 0")
        require(self.base_lr == "auto" or self.base_lr >= 0,
                f"finetune.base_lr: {self.base_lr} must be >= 0 (0 = by method) or auto")
        require(len(self.lr_grid) > 0 and all(x > 0 for x in self.lr_grid),
                f"finetune.lr_grid: {self.lr_grid} must list learning rates > 0")
        require(len(self.auto_heads) > 0, "finetune.auto_heads: list at least one boundary head")
        require(self.gradient_clipping >= 0, f"finetune.gradient_clipping: {self.gradient_clipping} must be >= 0 (0 = none)")


@dataclass
class EvalConfig:
    recall_window_shots: int
    recall_seconds: float
    knn_k: tuple[int, ...]


@dataclass
class SynthConfig:
    """The built-in synthetic movies (`bassl synth`); sizes are per split, in movies."""

    source: Literal["drawn", "photos"]
    seed: int
    train_movies: int
    val_movies: int
    test_movies: int
    pretrain_only_movies: int
    min_scenes: int
    max_scenes: int
    mean_scene_shots: float
    min_scene_shots: int
    max_scene_shots: int
    mean_shot_seconds: float
    width: int
    height: int
    jpeg_quality: int
    num_shot_convention: Literal["count", "last_index"]
    workers: int

    def check(self) -> None:
        require(self.train_movies >= 1 and self.test_movies >= 1 and self.val_movies >= 0 and self.pretrain_only_movies >= 0,
                "synth: train_movies and test_movies must be >= 1, val_movies and pretrain_only_movies >= 0")
        require(1 <= self.min_scenes <= self.max_scenes,
                f"synth.min_scenes/max_scenes: need 1 <= {self.min_scenes} <= {self.max_scenes}")
        require(1 <= self.min_scene_shots <= self.mean_scene_shots <= self.max_scene_shots,
                "synth: need min_scene_shots <= mean_scene_shots <= max_scene_shots")
        require(self.width >= 64 and self.height >= 64, f"synth.width/height: {self.width}x{self.height} is too small (>= 64)")
        require(1 <= self.jpeg_quality <= 100, f"synth.jpeg_quality: {self.jpeg_quality} must be in [1, 100]")
        require(self.workers >= 0, f"synth.workers: {self.workers} must be >= 0 (0 = one per core)")


@dataclass
class VideoConfig:
    detector: Literal["adaptive", "content", "transnetv2"]
    threshold: float
    min_shot_seconds: float
    detect_width: int
    keyframe_height: int
    jpeg_quality: int
    workers: int
    scene_shots: float
    label_free_scorer: Literal["auto", "adjacent", "pp"]
    bound_heap: bool

    def check(self) -> None:
        require(self.threshold >= 0, f"video.threshold: {self.threshold} must be >= 0 (0 = the detector's default)")
        require(self.min_shot_seconds >= 0, f"video.min_shot_seconds: {self.min_shot_seconds} must be >= 0")
        require(self.detect_width >= 16, f"video.detect_width: {self.detect_width} is too small (>= 16)")
        require(self.keyframe_height >= 32, f"video.keyframe_height: {self.keyframe_height} is too small (>= 32)")
        require(1 <= self.jpeg_quality <= 100, f"video.jpeg_quality: {self.jpeg_quality} must be in [1, 100]")
        require(self.scene_shots > 1, f"video.scene_shots: {self.scene_shots} must be > 1")
        require(self.workers >= 0, f"video.workers: {self.workers} must be >= 0 (0 = one per core)")


@dataclass
class DistributedConfig:
    backend: Literal["auto", "nccl", "gloo"]


@dataclass
class Config:
    method: Literal[METHOD_NAMES]
    model_preset: str
    seed: int
    data: DataConfig
    window: WindowConfig
    augment: AugmentConfig
    model: ModelConfig
    loss: LossConfig
    compat: CompatConfig
    optim: OptimConfig
    pretrain: PretrainConfig
    extract: ExtractConfig
    finetune: FinetuneConfig
    eval: EvalConfig
    synth: SynthConfig
    video: VideoConfig
    distributed: DistributedConfig

    @property
    def window_size(self) -> int:
        return 2 * self.window.neighbor_size + 1

    def check(self, world_size: int | None = None) -> None:
        """Reject impossible values: each section's own rules, then the rules that join sections; ``world_size``
        adds the checks that depend on the launch."""
        for section in _sections(self):
            if hasattr(section, "check"):
                section.check()
        k, positions = self.window.neighbor_size, self.model.crn.num_positions
        require(positions == 2 * k + 2,
                f"window.neighbor_size: {k} gives {2 * k + 1}-shot windows, but the CRN has "
                f"model.crn.num_positions={positions} learned positions (CLS + window = {2 * k + 2} needed); "
                f"set model.crn.num_positions={2 * k + 2} (official checkpoints need K=8, 18 positions)")
        if method_info(self.method).crn:
            require(any((self.loss.ssm, self.loss.cgm, self.loss.pp, self.loss.msm)),
                    f"loss: method {self.method} needs at least one of loss.ssm, loss.cgm, loss.pp, loss.msm enabled")
        else:
            require(self.loss.simclr, f"loss.simclr: method {self.method} trains only the SimCLR term; it cannot be false")
        choosing = [k for k, on in (("finetune.base_lr=auto", self.finetune.base_lr == "auto"),
                                    ("model.boundary.head=auto", self.model.boundary.head == "auto")) if on]
        require(not choosing or self.finetune.select_on == "val",
                f"{' and '.join(choosing)} must choose on val, but finetune.select_on=last_test selects on test; "
                "set finetune.select_on=val, or give each a value")
        if world_size is not None:
            self.check_world(world_size)

    def check_world(self, world_size: int, *stages: str) -> None:
        """Checks that depend on how many ranks the job runs on (method.md §10: per-rank batch = effective / world),
        for the stages named (``pretrain``, ``finetune``; both by default)."""
        stages = stages or ("pretrain", "finetune")
        for name in stages:
            eff = getattr(self, name).effective_batch
            require(eff % world_size == 0,
                    f"{name}.effective_batch: {eff} is not divisible by the world size {world_size}; "
                    f"use a multiple of {world_size} (e.g. {max(world_size, eff // world_size * world_size)})")
        micro = self.pretrain.micro_batch
        if micro and "pretrain" in stages:
            per_rank = self.pretrain.effective_batch // world_size
            require(per_rank % micro == 0,
                    f"pretrain.micro_batch: {micro} does not divide the per-rank batch {per_rank} "
                    f"(pretrain.effective_batch={self.pretrain.effective_batch} / world {world_size})")


def _sections(node: object) -> Iterator[object]:
    """Every section under ``node``, nested ones included (``model.crn``), in declaration order."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if dataclasses.is_dataclass(value):
            yield value
            yield from _sections(value)
