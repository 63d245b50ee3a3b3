"""The original BaSSL CRN and pretext heads, rebuilt on HF transformers as kakaobrain/bassl builds them.

Test oracle only: it produces official key names (method.md §5.4) and the reference numerics.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertEncoder, BertOnlyMLMHead

from bassl.config import Config


def bert_config(cfg: Config, input_dim: int) -> BertConfig:
    c = cfg.model.crn
    bc = BertConfig(
        hidden_size=c.hidden_size,
        num_hidden_layers=c.num_layers,
        num_attention_heads=c.num_heads,
        intermediate_size=c.intermediate_size,
        hidden_act="gelu",
        hidden_dropout_prob=c.dropout,
        attention_probs_dropout_prob=c.attention_dropout,
        layer_norm_eps=c.layer_norm_eps,
        vocab_size=input_dim,  # the original sets vocab_size = input_dim for the MSM head
    )
    bc._attn_implementation = "eager"
    return bc


class OriginalShotEmbedding(nn.Module):
    def __init__(self, input_dim: int, hidden: int, num_positions: int, dropout: float) -> None:
        super().__init__()
        self.shot_embedding = nn.Linear(input_dim, hidden)
        self.position_embedding = nn.Embedding(num_positions, hidden)
        self.mask_embedding = nn.Embedding(2, input_dim, padding_idx=0)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("pos_ids", torch.arange(num_positions, dtype=torch.long))

    def forward(self, shot_emb: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            self.mask_embedding.weight.data[0, :].fill_(0)
            mask_emb = self.mask_embedding(mask.long())
            shot_emb = (shot_emb * (1 - mask.long()).float()[:, :, None]) + mask_emb
        cls_emb = shot_emb.mean(dim=1)
        shot_emb = torch.cat([cls_emb[:, None, :], shot_emb], dim=1)
        shot_emb = self.shot_embedding(shot_emb)
        embeddings = shot_emb + self.position_embedding(self.pos_ids)[None, :]
        return self.dropout(self.LayerNorm(embeddings))


class OriginalCRN(nn.Module):
    def __init__(self, cfg: Config, input_dim: int) -> None:
        super().__init__()
        c = cfg.model.crn
        self.shot_embedding = OriginalShotEmbedding(input_dim, c.hidden_size, c.num_positions, c.dropout)
        self.encoder = BertEncoder(bert_config(cfg, input_dim))
        n = c.num_positions
        self.register_buffer("attention_mask", (1.0 - torch.ones(1, n)[:, None, None, :]) * -10000.0)

    def forward(self, shot: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.shot_embedding(shot, mask)
        out = self.encoder(emb, attention_mask=self.attention_mask).last_hidden_state
        return out, out[:, out.shape[1] // 2]  # "center" pooling: token 9 of 18


class OriginalHeads(nn.Module):
    """The original's ``loss`` module: heads only (``loss.head_*`` keys)."""

    def __init__(self, cfg: Config, input_dim: int) -> None:
        super().__init__()
        hidden = cfg.model.head.nce_hidden or input_dim
        self.head_nce = nn.Module()
        self.head_nce.model = nn.Sequential(
            nn.Linear(input_dim, hidden), nn.ReLU(), nn.Linear(hidden, cfg.model.head.nce_dim)
        )
        h = cfg.model.crn.hidden_size
        self.head_msm = BertOnlyMLMHead(bert_config(cfg, input_dim))
        self.head_msm.predictions.decoder.bias = self.head_msm.predictions.bias  # tied, as transformers 4.9.1
        self.head_pp = nn.Linear(h, 2)
        self.head_cgm = nn.Linear(2 * h, 2)


class OriginalWrapper(nn.Module):
    """The LightningModule's parameter layout: ``shot_encoder``, ``loss``, ``crn``."""

    def __init__(self, cfg: Config, shot_encoder: nn.Module, with_crn: bool = True) -> None:
        super().__init__()
        d = shot_encoder.feature_dim
        self.shot_encoder = shot_encoder
        self.loss = OriginalHeads(cfg, d)
        if not with_crn:
            del self.loss.head_msm, self.loss.head_pp, self.loss.head_cgm
        self.crn = OriginalCRN(cfg, d) if with_crn else None
