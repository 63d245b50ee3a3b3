"""Checkpoints: DeepSpeed engine state for resuming, plain state_dict exports for everything downstream.

A DeepSpeed checkpoint is a directory per tag (``step_00000500/``). We pass ``save_latest=False`` and write
our own ``latest`` pointer, atomically, only after every rank finished writing: a crash mid-save leaves a
partial tag directory that nothing points at, and the previous checkpoint stays the one resumed from.

Exports (``encoder.pt``) hold only tensors and plain values, so ``torch.load(weights_only=True)`` reads
them and no pickled object from a file is ever executed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as tdist
from torch import nn

from bassl.errors import DataError

LATEST = "latest"


def step_tag(step: int) -> str:
    return f"step_{step:08d}"


def latest_tag(ckpt_dir: str | Path) -> str | None:
    pointer = Path(ckpt_dir) / LATEST
    if not pointer.is_file():
        return None
    tag = pointer.read_text().strip()
    return tag if (Path(ckpt_dir) / tag).is_dir() else None


def _barrier() -> None:
    if tdist.is_available() and tdist.is_initialized():
        tdist.barrier()


def save_engine(engine: Any, ckpt_dir: str | Path, step: int, client_state: dict[str, Any], keep: int = 2) -> str:
    """Save every rank's part, then (rank 0) point ``latest`` at it and prune older tags beyond ``keep``."""
    ckpt_dir = Path(ckpt_dir)
    tag = step_tag(step)
    engine.save_checkpoint(str(ckpt_dir), tag=tag, client_state=client_state, save_latest=False)
    _barrier()  # every rank's files are on disk before the pointer moves
    if not tdist.is_initialized() or tdist.get_rank() == 0:
        tmp = ckpt_dir / f".{LATEST}.tmp-{os.getpid()}"
        tmp.write_text(tag)
        os.replace(tmp, ckpt_dir / LATEST)
        tags = sorted(p.name for p in ckpt_dir.glob("step_*") if p.is_dir())
        kept = [t for t in tags if t <= tag][-keep:]
        for old in set(tags) - set(kept):  # older ones, and partial saves of a run that died
            shutil.rmtree(ckpt_dir / old, ignore_errors=True)
    _barrier()
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


def export_weights(model: nn.Module, path: str | Path, config: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    """Write ``{"encoder": ..., "crn": ..., "config": ...}`` (tensors and plain values only), atomically."""
    doc: dict[str, Any] = {"format": "bassl-weights-1", "config": config, **(extra or {})}
    for name in ("encoder", "crn", "head_nce"):
        module = getattr(model, name, None)
        if module is not None:
            doc[name] = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(doc, tmp)
    os.replace(tmp, path)
    return path


def load_weights(path: str | Path) -> dict[str, Any]:
    """Read an export (ours, or an imported official checkpoint) without unpickling any object."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; pass the encoder.pt written by `bassl pretrain` "
                        "or by `bassl import-checkpoint`")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling refusal means: not a weights file of ours
        raise DataError(f"{path}: not a bassl weights file ({type(e).__name__}: {e}). Official BaSSL .ckpt files "
                        "must be converted first: bassl import-checkpoint SRC DST") from e
    if not isinstance(doc, dict) or "encoder" not in doc:
        raise DataError(f"{path}: no 'encoder' weights inside; expected a bassl export")
    return doc
