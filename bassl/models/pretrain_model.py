"""The pre-training model: shot encoder + projection head, and for the CRN methods the CRN and its pretext heads."""

from __future__ import annotations

import torch
from torch import nn

from bassl.config import Config, LossConfig, ModelConfig
from bassl.methods import method_info
from bassl.models.crn import ContextualRelationNetwork
from bassl.models.encoder import build_encoder
from bassl.models.heads import MaskedShotHead, ProjectionHead, group_matching_head, pseudo_boundary_head


class PretrainModel(nn.Module):
    """Everything pre-training trains. Submodules: ``encoder``, ``head_nce`` and, for the sequence methods
    with a CRN, ``crn`` plus the heads of the enabled CRN losses (``head_msm``, ``head_pp``, ``head_cgm``).
    """

    def __init__(self, model: ModelConfig, loss: LossConfig, with_crn: bool) -> None:
        super().__init__()
        self.encoder = build_encoder(model.encoder)
        d = self.encoder.feature_dim
        self.head_nce = ProjectionHead(d, model.head.nce_hidden or d, model.head.nce_dim)
        self.crn: ContextualRelationNetwork | None = None
        self.head_msm: MaskedShotHead | None = None
        self.head_pp: nn.Linear | None = None
        self.head_cgm: nn.Linear | None = None
        if with_crn:
            c = model.crn
            self.crn = ContextualRelationNetwork(d, c)
            if loss.msm:
                self.head_msm = MaskedShotHead(c.hidden_size, d, c.layer_norm_eps)
            if loss.pp:
                self.head_pp = pseudo_boundary_head(c.hidden_size)
            if loss.cgm:
                self.head_cgm = group_matching_head(c.hidden_size)

    @property
    def feature_dim(self) -> int:
        return self.encoder.feature_dim

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, T, 3, H, W]`` -> ``[B, T, D]``: every image through the encoder in one batch (one BN batch)."""
        B, T = images.shape[:2]
        feats = self.encoder(images.flatten(0, 1))  # [B*T, D]
        return feats.view(B, T, -1)


def build_pretrain_model(cfg: Config) -> PretrainModel:
    """The pre-training model for ``cfg.method`` (a CRN only for bassl and bassl_shotcol)."""
    return PretrainModel(cfg.model, cfg.loss, with_crn=method_info(cfg.method).crn)


def initial_pretrain_model(cfg: Config) -> PretrainModel:
    """The model as pre-training starts it: built after seeding with ``cfg.seed``, so every rank (and anyone
    measuring how far a run moved from its start) gets the same initial weights."""
    torch.manual_seed(cfg.seed)
    return build_pretrain_model(cfg)
