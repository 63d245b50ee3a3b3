"""MSM masks (spec §6.6.4). Neutral ground: the loaders draw them per sample, the objectives consume them."""

from __future__ import annotations

import torch


def msm_mask(
    batch_size: int, num_shots: int, prob: float = 0.15, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``[B, S]`` bool: each shot masked independently with ``prob``; a row with none gets one, uniformly.

    As the original (p = 0.15 per position, no BERT 80/10/10 scheme), so ~2.6 of 17 shots are masked on
    average and the MSM loss is never empty. Drawn on the CPU from ``generator``.
    """
    mask = torch.rand(batch_size, num_shots, generator=generator) < prob  # [B, S]
    fallback = torch.randint(num_shots, (batch_size,), generator=generator)  # [B]
    empty = ~mask.any(dim=1)
    mask[empty, fallback[empty]] = True
    return mask
