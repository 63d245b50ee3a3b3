"""Configuration: YAML defaults in the package, presets as diffs, ``key=value`` overrides, strict validation.

Composition order (later wins): ``configs/default.yaml`` < ``configs/method/<method>.yaml`` <
``configs/model/<model_preset>.yaml`` < the user's ``--config FILE`` < command-line ``key=value`` overrides.
The preset names themselves (``method``, ``model_preset``) are read from the same sources first, so
``bassl pretrain method=shotcol`` selects the shotcol preset.

Every section is a typed dataclass. An unknown key, a wrong type or an impossible value is a
:class:`ConfigError` naming the dotted key and the file (or ``command line``) it came from.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from bassl.data.atomic import write_atomic
from bassl.errors import BasslError
from bassl.methods import METHOD_NAMES, method_info


class ConfigError(BasslError, ValueError):
    """A configuration problem; the message names the key, where it came from and what is allowed."""


# --------------------------------------------------------------------------------------------------
# Sections: the types. Every default lives in configs/default.yaml (with its comment), nowhere else; a
# section is only ever built by load_config from that file plus presets and overrides.
# --------------------------------------------------------------------------------------------------


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


@dataclass
class WindowConfig:
    neighbor_size: int


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


@dataclass
class HeadConfig:
    nce_hidden: int
    nce_dim: int


@dataclass
class BoundaryConfig:
    head: Literal["paper", "similarity", "hybrid"]
    crn_input: Literal["raw", "l2", "centred"]
    hidden: int
    dropout: float


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


@dataclass
class ExtractConfig:
    batch_size: int
    output_dir: str
    split: str
    precision: Literal["auto", "fp32", "bf16", "fp16"]


@dataclass
class FinetuneConfig:
    effective_batch: int
    epochs: int
    base_lr: float | Literal["auto"]
    lr_grid: tuple[float, ...]
    crn_init: Literal["pretrained", "scratch"]
    reference_batch: int
    weight_decay: float
    warmup_ratio: float
    select_on: Literal["val", "last_test"]
    feature_dtype: Literal["fp32", "fp16"]
    output_dir: str


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




# --------------------------------------------------------------------------------------------------
# Loading and merging
# --------------------------------------------------------------------------------------------------


def _package_yaml(*parts: str) -> Path:
    return Path(str(resources.files("bassl.configs").joinpath(*parts)))


def available_presets(kind: Literal["method", "model"]) -> list[str]:
    return sorted(p.stem for p in _package_yaml(kind).glob("*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` → (["a", "b", "c"], value). The value is parsed as YAML (``1e-4``, ``[1, 2]``, ``true``)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value (e.g. pretrain.epochs=2)")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def _nest(path: list[str], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cur = out
    for part in path[:-1]:
        cur = cur.setdefault(part, {})
    cur[path[-1]] = value
    return out


def _merge(base: dict[str, Any], update: dict[str, Any], origins: dict[str, str], source: str, prefix: str = "") -> None:
    """Deep-merge ``update`` into ``base``, recording for each leaf key the source that set it last."""
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, origins, source, dotted + ".")
        else:
            base[key] = value
            origins[dotted] = source
            if isinstance(value, dict):
                for sub in _leaf_keys(value, dotted + "."):
                    origins[sub] = source


def _leaf_keys(d: dict[str, Any], prefix: str) -> list[str]:
    keys = []
    for k, v in d.items():
        if isinstance(v, dict):
            keys += _leaf_keys(v, f"{prefix}{k}.")
        keys.append(f"{prefix}{k}")
    return keys


def load_config(
    overrides: list[str] | tuple[str, ...] = (),
    config_file: str | Path | None = None,
    world_size: int | None = None,
) -> Config:
    """Compose, type-check and validate the configuration (see the module docstring for the order)."""
    layers: list[tuple[str, dict[str, Any]]] = []
    default_path = _package_yaml("default.yaml")
    layers.append((str(default_path), _read_yaml(default_path)))
    user: tuple[str, dict[str, Any]] | None = None
    if config_file is not None:
        user = (str(config_file), _read_yaml(Path(config_file)))
    cli: dict[str, Any] = {}
    cli_origins: dict[str, str] = {}
    for text in overrides:
        path, value = parse_override(text)
        _merge(cli, _nest(path, value), cli_origins, "command line")

    # Preset names: command line > user file > defaults.
    def pick(name: str) -> Any:
        for layer in (cli, user[1] if user else {}, layers[0][1]):
            if name in layer:
                return layer[name]
        return None

    method, model_preset = pick("method"), pick("model_preset")
    if method not in METHOD_NAMES:
        raise ConfigError(f"method: {method!r} is not a method; choose one of {', '.join(METHOD_NAMES)}")
    layers.append((f"method preset {method}", _read_yaml(_package_yaml("method", f"{method}.yaml"))))
    models = available_presets("model")
    if model_preset not in models:
        raise ConfigError(f"model_preset: {model_preset!r} is not a model preset; choose one of {', '.join(models)}")
    layers.append((f"model preset {model_preset}", _read_yaml(_package_yaml("model", f"{model_preset}.yaml"))))
    if user:
        layers.append(user)
    layers.append(("command line", cli))

    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for source, data in layers:
        _merge(merged, data, origins, source)
    cfg = _build(Config, merged, "", origins)
    validate(cfg, world_size=world_size)
    return cfg


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any, key: str, origins: dict[str, str]) -> Any:
    where = origins.get(key, "defaults")
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} (from {where}): expected a mapping of keys, got {value!r}")
        return _build(tp, value, key + ".", origins)
    if origin in (typing.Union, types.UnionType):  # e.g. float | Literal["auto"]: the first alternative that fits
        errors = []
        for alternative in get_args(tp):
            try:
                return _coerce(alternative, value, key, origins)
            except ConfigError as e:
                errors.append(str(e).split(": ", 1)[-1])
        raise ConfigError(f"{key} (from {where}): {value!r} fits none of: {'; or '.join(errors)}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{key} (from {where}): {value!r} is not allowed; choose one of {', '.join(map(str, choices))}")
        return value
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} (from {where}): expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{key}[{i}]", origins) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key} (from {where}): expected {len(args)} values, got {len(value)}: {value!r}")
        return tuple(_coerce(a, v, f"{key}[{i}]", origins) for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} (from {where}): expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} (from {where}): expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} (from {where}): expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} (from {where}): expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)}")  # a schema bug, not a user error


def _build(cls: type, data: dict[str, Any], prefix: str, origins: dict[str, str]) -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            dotted = prefix + str(key)
            close = _closest(str(key), names)
            hint = f"; did you mean {prefix}{close}?" if close else f"; valid keys here: {', '.join(sorted(names))}"
            raise ConfigError(f"unknown key {dotted} (from {origins.get(dotted, 'defaults')}){hint}")
    missing = [prefix + f.name for f in dataclasses.fields(cls) if f.name not in data]
    if missing:  # every key has its default in default.yaml; a saved config may predate a key (config_from_dict)
        raise ConfigError(f"keys {', '.join(missing)} have no value; configs/default.yaml must define every key")
    return cls(**{f.name: _coerce(hints[f.name], data[f.name], prefix + f.name, origins) for f in dataclasses.fields(cls)})


def _closest(word: str, names: typing.Iterable[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return match[0] if match else None


# --------------------------------------------------------------------------------------------------
# Semantic validation: values that type-check but cannot work.
# --------------------------------------------------------------------------------------------------


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate(cfg: Config, world_size: int | None = None) -> None:
    """Reject impossible values; ``world_size`` adds the checks that depend on the launch."""
    k = cfg.window.neighbor_size
    _require(k >= 2, f"window.neighbor_size: {k} is too small; windows of 2K+1 shots need K >= 2 (paper: 8)")
    _require(
        cfg.model.crn.num_positions == 2 * k + 2,
        f"window.neighbor_size: {k} gives {2 * k + 1}-shot windows, but the CRN has "
        f"model.crn.num_positions={cfg.model.crn.num_positions} learned positions (CLS + window = {2 * k + 2} needed); "
        f"set model.crn.num_positions={2 * k + 2} (official checkpoints need K=8, 18 positions)",
    )
    crn = cfg.model.crn
    _require(
        crn.hidden_size % crn.num_heads == 0,
        f"model.crn.num_heads: {crn.num_heads} does not divide model.crn.hidden_size={crn.hidden_size}",
    )
    for key in ("dropout", "attention_dropout"):
        v = getattr(crn, key)
        _require(0.0 <= v < 1.0, f"model.crn.{key}: {v} must be in [0, 1)")
    b = cfg.model.boundary
    _require(b.hidden >= 1, f"model.boundary.hidden: {b.hidden} must be >= 1")
    _require(0.0 <= b.dropout < 1.0, f"model.boundary.dropout: {b.dropout} must be in [0, 1)")
    a = cfg.augment
    _require(0 < a.crop_scale[0] <= a.crop_scale[1] <= 1, f"augment.crop_scale: {a.crop_scale} must satisfy 0 < lo <= hi <= 1")
    _require(0 < a.crop_ratio[0] <= a.crop_ratio[1], f"augment.crop_ratio: {a.crop_ratio} must satisfy 0 < lo <= hi")
    _require(0 < a.blur_sigma[0] <= a.blur_sigma[1], f"augment.blur_sigma: {a.blur_sigma} must satisfy 0 < lo <= hi")
    for key in ("flip_prob", "color_jitter_prob", "blur_prob"):
        v = getattr(a, key)
        _require(0.0 <= v <= 1.0, f"augment.{key}: {v} is a probability; use a value in [0, 1]")
    _require(a.image_size >= 16, f"augment.image_size: {a.image_size} is too small (>= 16)")
    _require(a.eval_resize >= a.image_size, f"augment.eval_resize: {a.eval_resize} must be >= augment.image_size={a.image_size}")
    _require(0.0 <= a.hue <= 0.5, f"augment.hue: {a.hue} must be in [0, 0.5]")
    _require(0.0 < cfg.loss.temperature, f"loss.temperature: {cfg.loss.temperature} must be > 0")
    _require(0.0 < cfg.loss.msm_mask_prob < 1.0, f"loss.msm_mask_prob: {cfg.loss.msm_mask_prob} must be in (0, 1)")
    _require(cfg.loss.pp_num_negatives >= 1, f"loss.pp_num_negatives: {cfg.loss.pp_num_negatives} must be >= 1")
    if method_info(cfg.method).crn:
        _require(
            any((cfg.loss.ssm, cfg.loss.cgm, cfg.loss.pp, cfg.loss.msm)),
            f"loss: method {cfg.method} needs at least one of loss.ssm, loss.cgm, loss.pp, loss.msm enabled",
        )
    else:
        _require(cfg.loss.simclr, f"loss.simclr: method {cfg.method} trains only the SimCLR term; it cannot be false")
    o = cfg.optim
    _require(o.base_lr > 0, f"optim.base_lr: {o.base_lr} must be > 0")
    _require(0.0 <= o.warmup_ratio < 1.0, f"optim.warmup_ratio: {o.warmup_ratio} must be in [0, 1)")
    _require(o.reference_batch > 0, f"optim.reference_batch: {o.reference_batch} must be > 0")
    p = cfg.pretrain
    _require(p.effective_batch > 0, f"pretrain.effective_batch: {p.effective_batch} must be > 0")
    _require(p.epochs > 0, f"pretrain.epochs: {p.epochs} must be > 0")
    _require(p.epoch_shots >= 0, f"pretrain.epoch_shots: {p.epoch_shots} must be >= 0 (0 = every shot once per epoch)")
    _require(p.zero_stage in (0, 1, 2, 3), f"pretrain.zero_stage: {p.zero_stage} must be 0, 1, 2 or 3")
    _require(p.micro_batch >= 0, f"pretrain.micro_batch: {p.micro_batch} must be >= 0 (0 = no accumulation)")
    f = cfg.finetune
    _require(f.effective_batch > 0, f"finetune.effective_batch: {f.effective_batch} must be > 0")
    _require(f.epochs > 0, f"finetune.epochs: {f.epochs} must be > 0")
    _require(f.base_lr == "auto" or f.base_lr >= 0, f"finetune.base_lr: {f.base_lr} must be >= 0 (0 = by method) or auto")
    _require(len(f.lr_grid) > 0 and all(x > 0 for x in f.lr_grid), f"finetune.lr_grid: {f.lr_grid} must list learning rates > 0")
    _require(cfg.data.keyframes_per_shot >= 1, f"data.keyframes_per_shot: {cfg.data.keyframes_per_shot} must be >= 1")
    _require(cfg.data.fps > 0, f"data.fps: {cfg.data.fps} must be > 0")
    s = cfg.synth
    _require(s.train_movies >= 1 and s.test_movies >= 1 and s.val_movies >= 0 and s.pretrain_only_movies >= 0,
             "synth: train_movies and test_movies must be >= 1, val_movies and pretrain_only_movies >= 0")
    _require(1 <= s.min_scenes <= s.max_scenes, f"synth.min_scenes/max_scenes: need 1 <= {s.min_scenes} <= {s.max_scenes}")
    _require(1 <= s.min_scene_shots <= s.mean_scene_shots <= s.max_scene_shots,
             "synth: need min_scene_shots <= mean_scene_shots <= max_scene_shots")
    _require(s.width >= 64 and s.height >= 64, f"synth.width/height: {s.width}x{s.height} is too small (>= 64)")
    _require(1 <= s.jpeg_quality <= 100, f"synth.jpeg_quality: {s.jpeg_quality} must be in [1, 100]")
    v = cfg.video
    _require(v.threshold >= 0, f"video.threshold: {v.threshold} must be >= 0 (0 = the detector's default)")
    _require(v.min_shot_seconds >= 0, f"video.min_shot_seconds: {v.min_shot_seconds} must be >= 0")
    _require(v.detect_width >= 16, f"video.detect_width: {v.detect_width} is too small (>= 16)")
    _require(v.keyframe_height >= 32, f"video.keyframe_height: {v.keyframe_height} is too small (>= 32)")
    _require(1 <= v.jpeg_quality <= 100, f"video.jpeg_quality: {v.jpeg_quality} must be in [1, 100]")
    _require(v.scene_shots > 1, f"video.scene_shots: {v.scene_shots} must be > 1")
    if world_size is not None:
        validate_world(cfg, world_size)


def validate_world(cfg: Config, world_size: int) -> None:
    """Checks that depend on how many ranks the job runs on (method.md §10: per-rank batch = effective / world)."""
    for section in ("pretrain", "finetune"):
        eff = getattr(cfg, section).effective_batch
        _require(
            eff % world_size == 0,
            f"{section}.effective_batch: {eff} is not divisible by the world size {world_size}; "
            f"use a multiple of {world_size} (e.g. {max(world_size, eff // world_size * world_size)})",
        )
    micro = cfg.pretrain.micro_batch
    if micro:
        per_rank = cfg.pretrain.effective_batch // world_size
        _require(
            per_rank % micro == 0,
            f"pretrain.micro_batch: {micro} does not divide the per-rank batch {per_rank} "
            f"(pretrain.effective_batch={cfg.pretrain.effective_batch} / world {world_size})",
        )


# --------------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------------


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (tuples as lists) for YAML/JSON, checkpoint metadata and Parquet metadata."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(cfg)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def save_config(cfg: Config, directory: str | Path, name: str = "config.yaml") -> Path:
    """Write the resolved config next to an output, atomically."""
    return write_atomic(Path(directory) / name, dump_config(cfg))


def config_from_dict(data: dict[str, Any], source: str = "saved config") -> Config:
    """Rebuild a Config from a saved resolved config (e.g. the one stored in a checkpoint). Keys added to bassl
    after it was saved take their default."""
    default_path = _package_yaml("default.yaml")
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    _merge(merged, _read_yaml(default_path), origins, str(default_path))
    _merge(merged, data, origins, source)
    cfg = _build(Config, merged, "", origins)
    validate(cfg)
    return cfg
