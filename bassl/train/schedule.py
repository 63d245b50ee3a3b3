"""Learning-rate schedule as a function of the global step (method.md §6.7), and linear lr scaling."""

from __future__ import annotations

import math


def lr_multiplier(step: int, total_steps: int, warmup_ratio: float) -> float:
    """Linear warm-up from 0 over ``W = int(warmup_ratio * T)`` steps, then cosine to 0 at step T.

    ``s / W`` for ``s < W``, else ``0.5 * (1 + cos(pi * (s - W) / (T - W)))``, as lightning-bolts'
    ``linear_warmup_decay(W, T, cosine=True)`` that the original wraps in a per-step LambdaLR.
    """
    warmup = int(warmup_ratio * total_steps)
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def scaled_lr(base_lr: float, effective_batch: int, reference_batch: int = 256) -> float:
    """Linear scaling: ``base_lr`` is quoted at ``reference_batch`` windows per step (all ranks together)."""
    return base_lr * effective_batch / reference_batch
