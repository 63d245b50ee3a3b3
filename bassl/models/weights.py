"""Plain weight files: what pre-training exports and extraction and fine-tuning load, and the segmenter that
fine-tuning writes and ``bassl segment`` loads.

An export (``encoder.pt``) is ``{"format", "config", "method", "encoder": state_dict, "crn": state_dict, ...}``
holding only tensors and plain values, so ``torch.load(weights_only=True)`` reads it and no pickled object
from a file is ever executed. ``bassl import-checkpoint`` writes the same format from an official BaSSL .ckpt.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bassl.config import Config, config_from_dict
from bassl.data.atomic import write_atomic
from bassl.errors import DataError
from bassl.models.encoder import ShotEncoder, build_encoder
from bassl.models.pretrain_model import PretrainModel, build_pretrain_model

FORMAT = "bassl-weights-1"


def export_weights(model: nn.Module, path: str | Path, config: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    """Write ``{"encoder": ..., "crn": ..., "head_nce": ..., "config": ...}`` (one state_dict per submodule of
    ``model``, so the pretext heads travel too; tensors and plain values only), atomically."""
    doc: dict[str, Any] = {"format": FORMAT, "config": config, **(extra or {})}
    for name, module in model.named_children():
        doc[name] = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    return _save(doc, path)


def _save(doc: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` through memory, then written whole: saved to a file, torch names its records after the temp
    file's name (which holds a host and pid), so two equal models would not be equal files."""
    buffer = io.BytesIO()
    torch.save(doc, buffer)
    return write_atomic(path, buffer.getvalue())


def read_model_file(path: str | Path, missing: str, unreadable: str = "") -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of one of our files: no pickled object is ever executed. ``missing`` says
    what to pass instead when the file is not there; ``unreadable`` is added when it is not a file of ours."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} {'is a folder, not a file' if path.is_dir() else 'does not exist'}; {missing}")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling refusal means: not a file of ours
        raise DataError(f"{path}: not a bassl model file (torch.load with weights_only=True: {_why(e)}){unreadable}") from e
    if not isinstance(doc, dict):
        raise DataError(f"{path}: holds a {type(doc).__name__}, not a bassl model file")
    return doc


def _why(e: Exception) -> str:
    """The reason in torch's refusal, without its advice to load with weights_only=False (which bassl never does)."""
    text = str(e)
    if m := re.search(r"WeightsUnpickler error:\s*(\S.*)", text):
        return m.group(1).strip().split(". Please")[0]  # nor its advice to allow-list the object's class
    first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return "it holds Python objects, not only tensors" if "weights_only" in first else first


def load_weights(path: str | Path) -> dict[str, Any]:
    """Read an export (ours, or an imported official checkpoint) without unpickling any object."""
    doc = read_model_file(path, "pass the encoder.pt written by `bassl pretrain` or by `bassl import-checkpoint`",
                          ". Official BaSSL .ckpt files must be converted first: bassl import-checkpoint --ckpt SRC "
                          "--out DST")
    if doc.get("format") == SEGMENTER_FORMAT:
        raise DataError(f"{path} is a segmenter (written by `bassl finetune`), not an encoder export: pass the "
                        "encoder.pt written by `bassl pretrain` or `bassl import-checkpoint`")
    if "encoder" not in doc:
        raise DataError(f"{path}: no 'encoder' weights inside; expected a bassl export")
    return doc


def encoder_from(config: dict[str, Any], state: dict[str, Any], source: str) -> tuple[ShotEncoder, Config]:
    """The encoder a file holds, built from the config stored with it (so the architecture always matches), on the
    CPU in eval mode, with that config."""
    trained = config_from_dict(config, source=source)
    encoder = build_encoder(trained.model.encoder, initialise=False)
    encoder.load_state_dict(state, strict=True)
    return encoder.eval(), trained


def load_encoder(path: str | Path, device: torch.device) -> tuple[ShotEncoder, Config]:
    """The encoder of an export (``encoder.pt``) on ``device``, and the config it was trained with."""
    doc = load_weights(path)
    encoder, trained = encoder_from(doc["config"], doc["encoder"], str(path))
    return encoder.to(device), trained


def load_pretrain_model(path: str | Path) -> tuple[PretrainModel, Config]:
    """The whole pre-trained model of an export (encoder, CRN, pretext heads: the inverse of
    :func:`export_weights`) on the CPU in eval mode, and its config; for studies of what the heads learned."""
    doc = load_weights(path)
    trained = config_from_dict(doc["config"], source=str(path))
    model = build_pretrain_model(trained)
    for name, module in model.named_children():
        module.load_state_dict(doc[name], strict=True)
    return model.eval(), trained


SEGMENTER_FORMAT = "bassl-segmenter-1"


def export_segmenter(path: str | Path, boundary_model: nn.Module, config: dict[str, Any], threshold: float,
                     encoder: dict[str, Any] | None, extra: dict[str, Any] | None = None) -> Path:
    """A segmenter: everything ``bassl segment`` needs in one file, tensors and plain values only.

    ``boundary_model`` (CRN + head) with the fine-tuning ``config``, the decision ``threshold`` chosen on val, and
    ``encoder`` = ``{"config": <the pre-training config that builds it>, "state": state_dict}`` (None when the
    features came from an encoder that is not available: the file then scores features, not videos)."""
    doc: dict[str, Any] = {"format": SEGMENTER_FORMAT, "config": config, "threshold": float(threshold),
                           "boundary": {k: v.detach().cpu().clone() for k, v in boundary_model.state_dict().items()},
                           "encoder": encoder, **(extra or {})}
    return _save(doc, path)


def _segmenter(doc: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """A segmenter document as the current code reads it: one from before ``model.boundary`` existed scored with the
    paper's CRN head, and its config now says so."""
    if doc.get("format") != SEGMENTER_FORMAT:
        raise DataError(f"{path}: format {doc.get('format')!r}, expected {SEGMENTER_FORMAT!r} (a segmenter.pt from "
                        "`bassl finetune`)")
    saved = doc["config"]
    if "boundary" not in saved.get("model", {}):
        doc = {**doc, "config": {**saved, "model": {**saved.get("model", {}), "boundary": {"head": "paper"}}}}
    return doc


def load_segmenter(path: str | Path) -> dict[str, Any]:
    """Read a segmenter written by ``bassl finetune`` (without unpickling any object)."""
    return _segmenter(read_model_file(path, "`bassl finetune` writes segmenter.pt into its output directory (and "
                                            "`bassl demo` leaves one at <demo out>/segmenter.pt)"), path)


def load_model_file(path: str | Path, missing: str, unreadable: str = "") -> dict[str, Any]:
    """A segmenter (as :func:`load_segmenter` reads it) or an encoder export in the segmenter's shape
    (``{"format", "encoder": {"config", "state"}, "crn", "head_pp", "label_free"}``): what ``bassl segment``
    runs. ``missing`` and ``unreadable`` as for :func:`read_model_file`."""
    doc = read_model_file(path, missing, unreadable)
    fmt = doc.get("format")
    if fmt == SEGMENTER_FORMAT:
        return _segmenter(doc, path)
    if fmt == FORMAT and "encoder" in doc:
        return {"format": FORMAT, "encoder": {"config": doc["config"], "state": doc["encoder"]},
                **{k: doc[k] for k in ("crn", "head_pp", "label_free") if k in doc}}
    raise DataError(f"{path}: format {fmt!r}; expected a segmenter.pt ({SEGMENTER_FORMAT}) or an encoder.pt ({FORMAT})")
