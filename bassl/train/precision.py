"""Numeric precision of a run: one resolution of ``auto`` and one autocast context for pre-training, extraction and
the monitors (method.md §6.7, §7)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from bassl.config import ConfigError


def resolve_precision(requested: str, device: torch.device, key: str = "pretrain.precision") -> str:
    """auto: bf16 on GPU, fp32 on CPU (CPU bf16 is slower here and fp16 is not supported by DeepSpeed on CPU)."""
    if requested == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if requested == "fp16" and device.type != "cuda":
        raise ConfigError(f"{key}: fp16 needs a GPU (DeepSpeed has no fp16 on CPU); use fp32 or bf16")
    return requested


def inference_precision(precision: str) -> str:
    """What evaluation passes run at: bf16 stays bf16; fp16 (a training setting, with loss scaling) runs fp32."""
    return "bf16" if precision == "bf16" else "fp32"


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """bf16 autocast on ``device`` for ``bf16``; nothing otherwise (fp16 training casts the inputs itself)."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
