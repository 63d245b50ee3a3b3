"""The fine-tuned scene-boundary model over a window of precomputed shot features.

``model.boundary.head`` picks what scores "the centre shot ends a scene" (docs/method.md, "Boundary heads"):

- ``paper``: the CRN over the raw features, its centre state, Linear(H -> 2) (the original's, method.md §8.2);
- ``similarity``: a small MLP on the window's shot-to-shot cosine similarities (the upper triangle of the
  ``[S, S]`` matrix). A boundary is a block structure in that matrix whatever the scenes look like, so the MLP
  learns it from a few thousand windows, where the CRN must first learn to ignore what the shots show;
- ``hybrid``: both, their logits added (one linear layer over the concatenated CRN state and MLP hidden).

``model.boundary.crn_input`` is what the CRN sees: ``raw`` features (the paper); ``l2``, each feature scaled to
norm sqrt(D) (unit RMS per dimension), which removes the features' scale and their spread in norm; or ``centred``,
minus the mean feature of the train split (set by fine-tuning, kept in the segmenter), which removes the direction
that post-ReLU pooled features all share.
"""

from __future__ import annotations

import math
import typing

import torch
import torch.nn.functional as F
from torch import nn

from bassl.config import BoundaryConfig, BoundaryHead, Config, CRNConfig
from bassl.models.crn import ContextualRelationNetwork
from bassl.models.heads import boundary_head

BOUNDARY_HEADS = typing.get_args(BoundaryHead)  # the config's choices of a model, one list ("auto" picks among them)
CRN_HEADS = ("paper", "hybrid")  # the heads with a CRN (which fine-tuning may start from pre-training)


class SimilarityHead(nn.Module):
    """``[B, S, D]`` shot features -> ``[B, 2]`` logits from the window's pairwise cosine similarities."""

    def __init__(self, window: int, hidden: int, dropout: float) -> None:
        super().__init__()
        iu = torch.triu_indices(window, window, offset=1)  # [2, S(S-1)/2]
        self.register_buffer("pairs", iu, persistent=False)
        self.mlp = nn.Sequential(
            nn.Linear(iu.shape[1], hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, 2),
        )

    @staticmethod
    def similarities(x: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """``[B, S, D]`` -> ``[B, S(S-1)/2]``: cosine of every pair of shots (i < j), row-major."""
        u = F.normalize(x.float(), dim=-1)
        sim = u @ u.transpose(1, 2)  # [B, S, S]
        return sim[:, pairs[0], pairs[1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.similarities(x, self.pairs))  # [B, 2]


class BoundaryModel(nn.Module):
    """``[B, 2K+1, D]`` shot features -> ``[B, 2]`` logits of "the centre shot ends a scene"."""

    def __init__(self, input_dim: int, crn: CRNConfig, boundary: BoundaryConfig, window: int) -> None:
        super().__init__()
        if boundary.head not in BOUNDARY_HEADS:
            raise ValueError(f"model.boundary.head: {boundary.head!r} builds no model; choose one of "
                             f"{', '.join(BOUNDARY_HEADS)} (auto is resolved by fine-tuning)")
        self.head, self.crn_input = boundary.head, boundary.crn_input
        if boundary.head in CRN_HEADS:
            self.crn = ContextualRelationNetwork(input_dim, crn)
            self.head_sbd = boundary_head(crn.hidden_size)
            if boundary.crn_input == "centred":
                self.register_buffer("input_mean", torch.zeros(input_dim))  # [D], set from the train split
        if boundary.head in ("similarity", "hybrid"):
            self.similarity = SimilarityHead(window, boundary.hidden, boundary.dropout)

    @property
    def has_crn(self) -> bool:
        return hasattr(self, "crn")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = 0
        if self.has_crn:
            x = features
            if self.crn_input == "l2":
                x = F.normalize(x.float(), dim=-1) * math.sqrt(x.shape[-1])  # [B, S, D], each row of norm sqrt(D)
            elif self.crn_input == "centred":
                x = x.float() - self.input_mean  # [B, S, D] - [D]
            _, pooled = self.crn(x)  # [B, S, D] -> [B, H]
            logits = self.head_sbd(pooled)  # [B, 2]
        if self.head != "paper":
            logits = logits + self.similarity(features)  # [B, 2]
        return logits


def build_boundary_model(cfg: Config, input_dim: int) -> BoundaryModel:
    """The fine-tuning model over ``input_dim``-d shot features (the encoder's feature size)."""
    return BoundaryModel(input_dim, cfg.model.crn, cfg.model.boundary, cfg.window_size)
