"""Checkpoints: DeepSpeed engine state for resuming, plain state_dict exports for everything downstream.

A DeepSpeed checkpoint is a directory per tag (``step_00000500/``). We pass ``save_latest=False`` and write
our own ``latest`` pointer, atomically, only after every rank finished writing: a crash mid-save leaves a
partial tag directory that nothing points at, and the previous checkpoint stays the one resumed from.

Plain weight exports live in :mod:`bassl.models.weights`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch.distributed as tdist

from bassl.config import dotted_leaves
from bassl.data.atomic import write_atomic
from bassl.errors import DataError
from bassl.train.distributed import barrier, is_distributed

LATEST = "latest"


def step_tag(step: int) -> str:
    return f"step_{step:08d}"


def latest_tag(ckpt_dir: str | Path) -> str | None:
    pointer = Path(ckpt_dir) / LATEST
    if not pointer.is_file():
        return None
    tag = pointer.read_text().strip()
    return tag if (Path(ckpt_dir) / tag).is_dir() else None


def save_engine(engine: Any, ckpt_dir: str | Path, step: int, client_state: dict[str, Any], keep: int = 2) -> str:
    """Save every rank's part, then (rank 0) point ``latest`` at it and prune older tags beyond ``keep``."""
    ckpt_dir = Path(ckpt_dir)
    tag = step_tag(step)
    engine.save_checkpoint(str(ckpt_dir), tag=tag, client_state=client_state, save_latest=False)
    barrier()  # every rank's files are on disk before the pointer moves
    if not is_distributed() or tdist.get_rank() == 0:
        write_atomic(ckpt_dir / LATEST, tag)
        tags = sorted(p.name for p in ckpt_dir.glob("step_*") if p.is_dir())
        kept = [t for t in tags if t <= tag][-keep:]
        for old in set(tags) - set(kept):  # older ones, and partial saves of a run that died
            shutil.rmtree(ckpt_dir / old, ignore_errors=True)
    barrier()
    return tag


def load_engine(engine: Any, ckpt_dir: str | Path) -> dict[str, Any] | None:
    """Restore model, optimizer and client state from ``latest``; None when there is nothing to resume."""
    tag = latest_tag(ckpt_dir)
    if tag is None:
        return None
    path, client = engine.load_checkpoint(str(ckpt_dir), tag=tag, load_optimizer_states=True,
                                          load_lr_scheduler_states=False)
    if path is None:
        raise DataError(f"{Path(ckpt_dir) / tag}: DeepSpeed could not load this checkpoint; delete it to start over")
    return client


# What a resumed run must share with the run it continues (besides method and seed): the settings that shape its
# trajectory. The data's location, the loader, logging, the checkpoint cadence, the monitors, micro-batches and the
# world size may change between starts (a requeued job may land on other nodes).
RESUME_FIXED = ("model.encoder.arch", "model.encoder.init", "model.encoder.zero_init_residual",
                "model.crn.", "model.head.", "loss.", "compat.", "optim.", "augment.", "window.",
                "data.keyframes_per_shot", "pretrain.effective_batch", "pretrain.epochs", "pretrain.epoch_shots",
                "pretrain.zero_stage")


def resume_changes(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``key: before -> now`` for each :data:`RESUME_FIXED` setting that differs between two resolved configs."""
    a, b = dotted_leaves(saved), dotted_leaves(now)
    keys = sorted(a.keys() | b.keys(), key=lambda k: (k not in ("method", "seed"), k))  # the method first
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys
            if (k in ("method", "seed") or k.startswith(RESUME_FIXED)) and a.get(k) != b.get(k)]
