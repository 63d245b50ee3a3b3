"""Pre-training and boundary heads (method.md §5.3). They live with the model; objectives hold no parameters."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ProjectionHead(nn.Module):
    """Linear + ReLU + Linear, then L2-normalise: the InfoNCE space (and the DTW cost space)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(x), dim=-1)  # [..., D] -> [..., E], unit norm


class MaskedShotHead(nn.Module):
    """HF ``BertOnlyMLMHead`` with vocab = encoder dim: dense + GELU + LN, then a decoder with its own bias.

    Regresses the 2048-d encoder feature of a masked shot from its CRN state (MSM, method.md §6.6.4).
    """

    def __init__(self, hidden_size: int, output_dim: int, layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        self.transform = nn.Linear(hidden_size, hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.decoder = nn.Linear(hidden_size, output_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(output_dim))  # separate and zero-init, as HF

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(F.gelu(self.transform(h)))) + self.bias  # [M, H] -> [M, D]


def pseudo_boundary_head(hidden_size: int) -> nn.Linear:
    """PP: is this shot the pseudo-boundary? Linear(H -> 2) on unnormalised CRN states."""
    return nn.Linear(hidden_size, 2)


def group_matching_head(hidden_size: int) -> nn.Linear:
    """CGM: are these two shots in the same group? Linear(2H -> 2) on concatenated unit-norm states."""
    return nn.Linear(2 * hidden_size, 2)


def boundary_head(hidden_size: int) -> nn.Linear:
    """Fine-tuning: is the centre shot the last of a scene? Linear(H -> 2) on the pooled CRN state."""
    return nn.Linear(hidden_size, 2)
