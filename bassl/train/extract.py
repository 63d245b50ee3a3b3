"""``bassl extract``: shot features of a frozen encoder, to Parquet (method.md §7).

Every shot of ``extract.split`` goes through the evaluation transform with all its keyframes; the encoder's
outputs are averaged over the keyframes (no head, no normalisation) and written one row per shot. Work is
split into partitions of a few movies each, independent of the world size: rank r takes partitions
r, r+W, ...; a partition already on disk from the same checkpoint is not recomputed, so a killed run
resumes, even on another number of ranks, and every shot is written exactly once.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn
from tqdm import tqdm

from bassl.config import Config, save_config, to_dict
from bassl.data.atomic import remove_dead_temps
from bassl.data.features import (
    RESUME_KEYS,
    metadata_for,
    partition_done,
    unlist_partitions,
    write_feature_manifest,
    write_partition,
)
from bassl.loaders.build import build_eval_loader
from bassl.loaders.shards import open_shots
from bassl.models.weights import load_encoder
from bassl.train.distributed import DistInfo, barrier, init_distributed
from bassl.train.precision import autocast, inference_precision, resolve_precision

MOVIES_PER_PARTITION = 16


@torch.no_grad()
def encode_shots(cfg: Config, encoder: nn.Module, device: torch.device, split: str | None,
                 movies: list[str] | None = None, rank: int = 0, world: int = 1,
                 precision: str = "fp32") -> tuple[list[str], np.ndarray, np.ndarray]:
    """(video ids, shot indices, features [N, D]) for the shots of ``split`` (or ``movies``) on this rank:
    eval-mode encoder output averaged over the keyframes."""
    loader = build_eval_loader(cfg, cfg.data.shards, split=split, rank=rank, world=world, device=device, movies=movies)
    was_training = encoder.training
    encoder.eval()
    cast = autocast(precision, device)
    vids: list[str] = []
    shots, feats = [], []
    for batch in loader:
        images = batch["images"]  # [B, F, 3, H, W]
        B, F = images.shape[:2]
        with cast:
            out = encoder(images.flatten(0, 1))  # [B*F, D]
        feats.append(out.float().view(B, F, -1).mean(dim=1).cpu().numpy())  # [B, D]
        vids += [loader.movie_ids[int(v)] for v in batch["video_index"]]
        shots.append(batch["shot"].numpy())
    encoder.train(was_training)
    dim = int(getattr(encoder, "feature_dim", 0))
    return (vids, np.concatenate(shots) if shots else np.zeros(0, np.int64),
            np.concatenate(feats) if feats else np.zeros((0, dim), np.float32))


def encode_split_on_main(cfg: Config, encoder: nn.Module, dist: DistInfo, split: str,
                         precision: str = "fp32") -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """:func:`encode_shots` of ``split`` with every rank encoding its share; the whole split on rank 0, None
    elsewhere. Every rank must call it (it gathers)."""
    vids, shots, feats = encode_shots(cfg, encoder, dist.device, split, rank=dist.rank, world=dist.world_size,
                                      precision=precision)
    if dist.world_size > 1:
        parts: list[Any] = [None] * dist.world_size
        tdist.all_gather_object(parts, (vids, shots, feats))
        vids = [v for p in parts for v in p[0]]
        shots = np.concatenate([p[1] for p in parts])
        feats = np.concatenate([p[2] for p in parts])
    return (vids, shots, feats) if dist.is_main else None


def movie_features(vids: list[str], shots: np.ndarray, feats: np.ndarray) -> dict[str, np.ndarray]:
    """video id -> ``[n, D]`` features in shot order (rows of shots 0..n-1; :func:`encode_shots` covers every shot)."""
    out: dict[str, np.ndarray] = {}
    vid_arr = np.asarray(vids)
    for vid in dict.fromkeys(vids):
        rows = np.flatnonzero(vid_arr == vid)
        out[vid] = feats[rows[np.argsort(shots[rows], kind="stable")]]
    return out


EVAL_TRANSFORM = ("image_size", "eval_resize", "mean", "std")  # the augment keys extraction's images depend on


def extract(cfg: Config, weights: str | Path, out_dir: str | Path) -> dict[str, Any]:
    out_dir = Path(out_dir)
    # the inputs first: a wrong path is reported before DeepSpeed's start-up (seconds, and its log lines)
    encoder, trained = load_encoder(weights, torch.device("cpu"))
    table = open_shots(cfg.data.shards, cfg.extract.split, cfg.data.remote_fetch)
    dist: DistInfo = init_distributed(cfg.distributed.backend)
    encoder.to(dist.device)
    precision = inference_precision(resolve_precision(cfg.extract.precision, dist.device, "extract.precision"))
    differs = [f"augment.{k} {getattr(trained.augment, k)} (this command: {getattr(cfg.augment, k)})"
               for k in EVAL_TRANSFORM if getattr(trained.augment, k) != getattr(cfg.augment, k)]
    if differs and dist.is_main:
        print(f"[extract] note: the images are prepared as the encoder was trained: {', '.join(differs)}")
    cfg = replace(cfg, augment=trained.augment)  # as segment does: the encoder's own eval transform
    # what else makes the features: a partition of another checkpoint, split, shard set or precision is done again
    inputs = json.dumps({"shards": cfg.data.shards, "precision": precision,
                         "transform": {k: getattr(cfg.augment, k) for k in EVAL_TRANSFORM}}, sort_keys=True)
    metadata = {**metadata_for(weights, to_dict(cfg)), "split": cfg.extract.split, "method": trained.method,
                "inputs": inputs}
    resume_key = {k: metadata[k] for k in RESUME_KEYS}

    movies = table.movie_ids
    groups = [movies[i : i + MOVIES_PER_PARTITION] for i in range(0, len(movies), MOVIES_PER_PARTITION)]
    names = [f"part-{g:05d}" for g in range(len(groups))]
    mine = list(range(dist.rank, len(groups), dist.world_size))
    todo = [g for g in mine if not partition_done(out_dir, names[g], resume_key)]
    if dist.is_main:
        print(f"[extract] {len(movies)} movies of split {cfg.extract.split} in {len(groups)} partitions; "
              f"{dist.world_size} rank(s); rank 0 has {len(todo)} of its {len(mine)} left ({precision})")
        if fills := table.describe_fills():
            print(f"[extract] note: {fills}")
    if dist.is_main:
        remove_dead_temps(out_dir)  # partitions a killed run left half-written
    if dist.is_main and not all(partition_done(out_dir, name, resume_key) for name in names):
        unlist_partitions(out_dir)  # until every partition is this run's
    rows = 0
    for g in tqdm(todo, desc="extract", unit="part", disable=not dist.is_main):
        vids, shots, feats = encode_shots(cfg, encoder, dist.device, cfg.extract.split, groups[g], precision=precision)
        write_partition(out_dir, names[g], vids, shots, feats, metadata)
        rows += len(vids)
    barrier()
    if dist.is_main:
        write_feature_manifest(out_dir, names, {k: v for k, v in metadata.items() if k != "config"})
        save_config(cfg, out_dir)
        print(f"[extract] features of {len(movies)} movies in {out_dir} ({rows} shots computed by rank 0 now)")
    return {"partitions": names, "rows_computed": rows, "out_dir": out_dir}
