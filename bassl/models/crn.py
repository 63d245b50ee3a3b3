"""Contextual relation network f_CRN: shot embedding + post-LN BERT layers over a window (method.md §5.2).

Plain ``torch.nn``, computing what HF ``BertEncoder`` computes (transformers is a test oracle only).
Everything keeps PyTorch's default init, as the original never applied BERT's N(0, 0.02) init.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bassl.config import CRNConfig


class ShotEmbedding(nn.Module):
    """Masked shots -> mask vector, prepend CLS = mean shot, project, add learned positions, LN, dropout."""

    def __init__(self, input_dim: int, cfg: CRNConfig) -> None:
        super().__init__()
        self.proj = nn.Linear(input_dim, cfg.hidden_size)  # shared by CLS and all shots
        self.position = nn.Embedding(cfg.num_positions, cfg.hidden_size)
        # Row 0 stays zero (padding_idx: no gradient), so "mask id 0" leaves a shot unchanged.
        self.mask_token = nn.Embedding(2, input_dim, padding_idx=0)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: [B, S, D] shot features; mask: [B, S] bool, True = replace by the mask vector
        if mask is not None:
            x = x * (~mask).unsqueeze(-1).to(x.dtype) + self.mask_token(mask.long())
        cls = x.mean(dim=1, keepdim=True)  # [B, 1, D]
        tokens = self.proj(torch.cat([cls, x], dim=1))  # [B, S+1, H]
        n = tokens.shape[1]
        if n > self.position.num_embeddings:
            raise ValueError(
                f"CRN got {n - 1} shots but has {self.position.num_embeddings} positions (CLS + shots); "
                "set model.crn.num_positions = window size + 1"
            )
        tokens = tokens + self.position.weight[:n]
        return self.dropout(self.norm(tokens))


class SelfAttention(nn.Module):
    """Multi-head self-attention + output dense + dropout + residual LayerNorm (HF BertAttention)."""

    def __init__(self, cfg: CRNConfig) -> None:
        super().__init__()
        h = cfg.hidden_size
        self.num_heads = cfg.num_heads
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.attn_dropout = cfg.attention_dropout
        self.out = nn.Linear(h, h)
        self.dropout = nn.Dropout(cfg.dropout)
        self.norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, H = x.shape
        nh = self.num_heads

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, N, nh, H // nh).transpose(1, 2)  # [B, nh, N, hs]

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        # No attention mask: windows are never padded. Scale 1/sqrt(hs) and dropout on the probabilities,
        # as BertSelfAttention.
        p = self.attn_dropout if self.training else 0.0
        ctx = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # [B, nh, N, hs]
        ctx = ctx.transpose(1, 2).reshape(B, N, H)
        return self.norm(self.dropout(self.out(ctx)) + x)


class FeedForward(nn.Module):
    """Dense + exact GELU + dense + dropout + residual LayerNorm (HF BertIntermediate + BertOutput)."""

    def __init__(self, cfg: CRNConfig) -> None:
        super().__init__()
        self.up = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.down = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.dropout = nn.Dropout(cfg.dropout)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.dropout(self.down(F.gelu(self.up(x)))) + x)


class TransformerLayer(nn.Module):
    """One post-LN BERT layer."""

    def __init__(self, cfg: CRNConfig) -> None:
        super().__init__()
        self.attn = SelfAttention(cfg)
        self.ffn = FeedForward(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn(self.attn(x))


class ContextualRelationNetwork(nn.Module):
    """``[B, S, D]`` shot features (+ optional ``[B, S]`` mask) -> ``([B, S, H] shot states, [B, H] pooled)``.

    The returned states exclude the CLS token (shot i is row i); ``pooled`` follows ``cfg.pooling``:
    ``center`` = shot S//2 (token 9 of 18 in the paper), ``cls`` = the CLS token, ``avg``/``max`` over shots.
    """

    def __init__(self, input_dim: int, cfg: CRNConfig) -> None:
        super().__init__()
        self.input_dim, self.hidden_size, self.pooling = input_dim, cfg.hidden_size, cfg.pooling
        self.embed = ShotEmbedding(input_dim, cfg)
        self.layers = nn.ModuleList(TransformerLayer(cfg) for _ in range(cfg.num_layers))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed(x, mask)  # [B, S+1, H], token 0 = CLS
        for layer in self.layers:
            h = layer(h)
        shots = h[:, 1:]  # [B, S, H]
        if self.pooling == "center":
            pooled = shots[:, shots.shape[1] // 2]
        elif self.pooling == "cls":
            pooled = h[:, 0]
        elif self.pooling == "avg":
            pooled = shots.mean(dim=1)
        elif self.pooling == "max":
            pooled = shots.max(dim=1).values
        else:
            raise ValueError(f"model.crn.pooling: {self.pooling!r}; choose center, cls, avg or max")
        return shots, pooled
