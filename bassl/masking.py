"""What a pre-training sample holds besides pixels: its image layout and its MSM mask (spec §6.1, §6.6.4).

Neutral ground: the loaders build samples with these, the objectives read them back.
"""

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


def sparse_positions(method: str, window_size: int) -> tuple[int, ...]:
    """Dense-window positions of the separately augmented sparse views, in batch order (spec §3.6, §6.1).

    bassl: first and last shot; shotcol and bassl_shotcol: first, last, centre. The shot-level methods
    (instance, temporal) have no window: their samples are two views of one shot.
    """
    last, centre = window_size - 1, window_size // 2
    layouts = {"instance": (), "temporal": (), "bassl": (0, last), "shotcol": (0, last, centre)}
    layouts["bassl_shotcol"] = layouts["shotcol"]
    if method not in layouts:
        raise ValueError(f"method: {method!r} is unknown; choose one of {', '.join(layouts)}")
    return layouts[method]


def images_per_sample(method: str, window_size: int) -> int:
    """T in the pre-training batch ``[B, T, 3, H, W]``: 2 views, or the sparse views then the dense window."""
    sparse = sparse_positions(method, window_size)
    return len(sparse) + window_size if sparse else 2
