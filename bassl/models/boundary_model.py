"""The fine-tuned scene-boundary model: CRN over a window of precomputed shot features + Linear(H -> 2) (spec §8.2)."""

from __future__ import annotations

import torch
from torch import nn

from bassl.config import Config, CRNConfig
from bassl.models.crn import ContextualRelationNetwork
from bassl.models.heads import boundary_head


class BoundaryModel(nn.Module):
    """``[B, 2K+1, D]`` shot features -> ``[B, 2]`` logits of "the centre shot ends a scene"."""

    def __init__(self, input_dim: int, crn: CRNConfig) -> None:
        super().__init__()
        self.crn = ContextualRelationNetwork(input_dim, crn)
        self.head_sbd = boundary_head(crn.hidden_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        _, pooled = self.crn(features)  # [B, S, D] -> [B, H]
        return self.head_sbd(pooled)  # [B, 2]


def build_boundary_model(cfg: Config, input_dim: int) -> BoundaryModel:
    """The fine-tuning model over ``input_dim``-d shot features (the encoder's feature size)."""
    return BoundaryModel(input_dim, cfg.model.crn)
