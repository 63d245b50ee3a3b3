"""Import an official BaSSL checkpoint (``model-v1.ckpt``, a PyTorch-Lightning pickle) into our names.

Nothing in the file is executed: it is read by an unpickler that rebuilds tensors and plain containers
only and turns every other class (the original's AttrDict config, callbacks, numpy scalars, ...) into an
inert placeholder without calling it. Each key is then renamed, shape-checked against the model that
``cfg`` builds and counted, as nanoGPT's ``from_pretrained`` does; anything unexpected or missing is an
error that names the keys. The output is our export format (:mod:`bassl.models.weights`: encoder, CRN and
NCE head with the config that builds them), so ``bassl extract --weights`` and ``bassl finetune`` take it
exactly like an ``encoder.pt`` written by ``bassl pretrain``.
"""

from __future__ import annotations

import pickle
import re
import types
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bassl.config import Config, to_dict
from bassl.errors import BasslError
from bassl.models.pretrain_model import build_pretrain_model
from bassl.models.weights import FORMAT, SEGMENTER_FORMAT, export_weights


class CheckpointError(BasslError, ValueError):
    """The checkpoint does not match the model the config describes; the message names the keys."""


# --------------------------------------------------------------------------------------------------
# Restricted unpickling
# --------------------------------------------------------------------------------------------------

_ALLOWED = {
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch", "Size"): torch.Size,
}


class Inert:
    """Stands in for any class the checkpoint names; it absorbs its arguments and state, runs nothing."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Inert:
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


class _TensorOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # torch's loader resolves storage classes itself before asking us.
        return _ALLOWED.get((module, name), Inert)


def _tensor_only_load(file: Any, **kwargs: Any) -> Any:
    return _TensorOnlyUnpickler(file, **kwargs).load()


# A stand-in "pickle module" for torch.load: torch subclasses our Unpickler to add storage loading.
_TENSOR_ONLY_PICKLE = types.SimpleNamespace(
    __name__="bassl_tensor_only_pickle", Unpickler=_TensorOnlyUnpickler, load=_tensor_only_load
)


def load_tensors_only(path: str | Path) -> Any:
    """Read a torch/Lightning checkpoint without executing anything it names (see :class:`Inert`)."""
    return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_TENSOR_ONLY_PICKLE)


# --------------------------------------------------------------------------------------------------
# Key mapping (method.md §5.4)
# --------------------------------------------------------------------------------------------------

_LAYER = r"crn\.encoder\.layer\.(\d+)\."
RENAMES: list[tuple[str, str]] = [
    (r"shot_encoder\.(.+)", r"encoder.\1"),
    (r"crn\.shot_embedding\.shot_embedding\.(weight|bias)", r"crn.embed.proj.\1"),
    (r"crn\.shot_embedding\.position_embedding\.weight", r"crn.embed.position.weight"),
    (r"crn\.shot_embedding\.mask_embedding\.weight", r"crn.embed.mask_token.weight"),
    (r"crn\.shot_embedding\.LayerNorm\.(weight|bias)", r"crn.embed.norm.\1"),
    (_LAYER + r"attention\.self\.(query|key|value)\.(weight|bias)", r"crn.layers.\1.attn.\2.\3"),
    (_LAYER + r"attention\.output\.dense\.(weight|bias)", r"crn.layers.\1.attn.out.\2"),
    (_LAYER + r"attention\.output\.LayerNorm\.(weight|bias)", r"crn.layers.\1.attn.norm.\2"),
    (_LAYER + r"intermediate\.dense\.(weight|bias)", r"crn.layers.\1.ffn.up.\2"),
    (_LAYER + r"output\.dense\.(weight|bias)", r"crn.layers.\1.ffn.down.\2"),
    (_LAYER + r"output\.LayerNorm\.(weight|bias)", r"crn.layers.\1.ffn.norm.\2"),
    (r"loss\.head_nce\.model\.([02])\.(weight|bias)", r"head_nce.mlp.\1.\2"),
    (r"loss\.head_msm\.predictions\.transform\.dense\.(weight|bias)", r"head_msm.transform.\1"),
    (r"loss\.head_msm\.predictions\.transform\.LayerNorm\.(weight|bias)", r"head_msm.norm.\1"),
    (r"loss\.head_msm\.predictions\.decoder\.weight", r"head_msm.decoder.weight"),
    (r"loss\.head_msm\.predictions\.bias", r"head_msm.bias"),
    (r"loss\.head_pp\.(weight|bias)", r"head_pp.\1"),
    (r"loss\.head_cgm\.(weight|bias)", r"head_cgm.\1"),
]
# Constant buffers we rebuild instead of storing (an all-zero additive attention mask, position ids).
DROPPED_BUFFERS = ("crn.attention_mask", "crn.shot_embedding.pos_ids")
# HF ties the MLM decoder's bias to ``predictions.bias``; the state_dict holds it under both names.
TIED_ALIASES = {"loss.head_msm.predictions.decoder.bias": "loss.head_msm.predictions.bias"}


def our_name(official: str) -> str | None:
    """Our parameter name for an official key, or None when no rule knows the key."""
    for pattern, template in RENAMES:
        if re.fullmatch(pattern, official):
            return re.sub(pattern, template, official)
    return None


def convert_state_dict(official: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename ``official`` keys to ours, checking every key, shape and the count against ``expected``."""
    out: dict[str, torch.Tensor] = {}
    unexpected, mismatched, seen = [], [], set()
    for key, value in official.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"state_dict[{key!r}] is a {type(value).__name__}, not a tensor")
        if key in DROPPED_BUFFERS:
            continue
        if key in TIED_ALIASES:
            twin = official.get(TIED_ALIASES[key])
            if twin is None or not torch.equal(twin, value):
                raise CheckpointError(f"{key} should equal its tied twin {TIED_ALIASES[key]}, which it does not")
            continue
        name = our_name(key)
        seen.add(name)
        if name is None or name not in expected:
            unexpected.append(key)
        elif value.shape != expected[name].shape:
            mismatched.append(f"{key} -> {name}: {tuple(value.shape)} vs ours {tuple(expected[name].shape)}")
        else:
            out[name] = value.detach().clone().contiguous()
    missing = sorted(set(expected) - seen)
    problems = []
    if unexpected:
        problems.append(f"unexpected keys (none of our parameters for this config): {', '.join(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches: {'; '.join(mismatched)}")
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if problems:
        raise CheckpointError(
            "the checkpoint does not fit the model this config builds (check method= and model_preset=; "
            "official checkpoints are method=bassl or a baseline, model_preset=resnet50):\n  " + "\n  ".join(problems)
        )
    assert len(out) == len(expected), (len(out), len(expected))  # every expected key exactly once
    return out


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


@dataclass
class ImportSummary:
    source: Path
    destination: Path
    num_tensors: int
    num_parameters: int
    skipped: list[str]

    def describe(self) -> str:
        skipped = f"; dropped {', '.join(self.skipped)}" if self.skipped else ""
        return (
            f"imported {self.num_tensors} tensors ({self.num_parameters / 1e6:.1f}M parameters) "
            f"from {self.source} into {self.destination}{skipped}"
        )


def import_official_checkpoint(src: Path, dst: Path, cfg: Config) -> ImportSummary:
    """Convert an official BaSSL ``.ckpt`` (or a bare state_dict file) into our weights export at ``dst``."""
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise CheckpointError(f"{src}: no such checkpoint file")
    try:
        raw = load_tensors_only(src)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        raise CheckpointError(f"{src}: not a readable torch checkpoint ({e})") from e
    if isinstance(raw, dict) and raw.get("format") in (FORMAT, SEGMENTER_FORMAT):
        what = "an encoder export" if raw["format"] == FORMAT else "a segmenter"
        raise CheckpointError(f"{src} is already {what} of bassl's (format {raw['format']}): nothing to import; "
                              "pass it to `bassl extract --weights` / `bassl segment --model` as it is")
    official = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(official, dict):
        raise CheckpointError(f"{src}: expected a Lightning checkpoint with a 'state_dict' or a dict of tensors")

    model = build_pretrain_model(cfg)
    expected = model.state_dict()
    converted = convert_state_dict(official, expected)
    model.load_state_dict(converted, strict=True)  # the final word on names and shapes

    step = raw.get("global_step") if isinstance(raw, dict) else None
    export_weights(model, dst, to_dict(cfg), {"method": cfg.method, "source": str(src),
                                              "step": int(step) if isinstance(step, int) else -1})
    skipped = [k for k in official if k in DROPPED_BUFFERS or k in TIED_ALIASES]
    return ImportSummary(
        source=src,
        destination=dst,
        num_tensors=len(converted),
        num_parameters=sum(p.numel() for p in model.parameters()),
        skipped=skipped,
    )
