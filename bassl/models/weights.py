"""Plain weight files: what pre-training exports and what extraction and fine-tuning load.

An export (``encoder.pt``) is ``{"format", "config", "method", "encoder": state_dict, "crn": state_dict, ...}``
holding only tensors and plain values, so ``torch.load(weights_only=True)`` reads it and no pickled object
from a file is ever executed. ``bassl import-checkpoint`` writes the same format from an official BaSSL .ckpt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from bassl.data.atomic import atomic_path
from bassl.errors import DataError

FORMAT = "bassl-weights-1"


def export_weights(model: nn.Module, path: str | Path, config: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    """Write ``{"encoder": ..., "crn": ..., "head_nce": ..., "config": ...}`` (one state_dict per submodule of
    ``model``, so the pretext heads travel too; tensors and plain values only), atomically."""
    doc: dict[str, Any] = {"format": FORMAT, "config": config, **(extra or {})}
    for name, module in model.named_children():
        doc[name] = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(doc, tmp)
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
