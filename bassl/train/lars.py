"""LARS as lightning-bolts 0.3.4 implements it (method.md §6.7, §12.15), and the original's parameter groups.

Per parameter with weight decay ``wd != 0`` and non-zero ``||p||`` and ``||g||``:
``d = trust * ||p|| / (||g|| + wd ||p|| + eps) * (g + wd p)``; otherwise ``d = g`` (no decay, no scaling).
Then SGD momentum (PyTorch convention, the first step copies ``d`` into the buffer) and ``p -= lr * d``.
Groups with ``wd = 0`` are therefore plain momentum SGD at the global lr, as SimCLR and BYOL do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from bassl.config import OptimConfig


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling (You et al. 2017), lightning-bolts' variant."""

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
        eps: float = 1e-8,
    ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"LARS: lr={lr}, momentum={momentum}, weight_decay={weight_decay} must be >= 0")
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coefficient=trust_coefficient, eps=eps)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            wd, momentum = group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad
                if wd != 0:
                    p_norm, g_norm = torch.norm(p), torch.norm(p.grad)
                    if p_norm != 0 and g_norm != 0:  # a CPU-GPU sync point per parameter, as the original
                        lars_lr = p_norm / (g_norm + p_norm * wd + group["eps"])
                        lars_lr *= group["trust_coefficient"]  # same operation order as lightning-bolts
                        d_p = d_p.add(p, alpha=wd) * lars_lr
                if momentum != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        buf = state["momentum_buffer"] = torch.clone(d_p).detach()
                    else:
                        buf = state["momentum_buffer"]
                        buf.mul_(momentum).add_(d_p)
                    d_p = buf
                p.add_(d_p, alpha=-group["lr"])
        return loss


def lars_param_groups(model: nn.Module, weight_decay: float, exclude: Iterable[str]) -> list[dict]:
    """Two groups by literal name substring, as the original: names containing any of ``exclude``
    (``bn``, ``bias``) get wd 0 and so skip LARS adaptation; everything else (including the ResNet
    ``downsample.1`` BN and all LayerNorm weights, whose names contain neither) gets wd and LARS.
    """
    exclude = tuple(exclude)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if any(s in name for s in exclude) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_lars(model: nn.Module, cfg: OptimConfig, lr: float) -> LARS:
    """The pre-training optimizer: LARS over the original's two parameter groups at learning rate ``lr``."""
    groups = lars_param_groups(model, cfg.weight_decay, cfg.exclude_substrings)
    return LARS(groups, lr=lr, momentum=cfg.momentum, trust_coefficient=cfg.trust_coefficient, eps=cfg.eps)
