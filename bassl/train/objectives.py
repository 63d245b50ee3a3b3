"""Pre-training objectives of the five methods (method.md §6.4-§6.6): SimCLR, ShotCoL, SSM, CGM, PP, MSM.

The heads live in :class:`~bassl.models.PretrainModel`; this module holds only the loss arithmetic and
the sampling. Every random draw comes from an explicit ``torch.Generator`` (CPU by default) so a run is
reproducible from its seed.

Batch layout (``images [B, T, 3, H, W]``, see :mod:`bassl.loaders.windows`):

=================  ===  ==============================================================
method             T    images per sample, in order
=================  ===  ==============================================================
instance/temporal  2    view 1, view 2
bassl              19   sparse first, last; then the 17 dense shots
shotcol            20   sparse first, last, centre; then the 17 dense shots
bassl_shotcol      20   sparse first, last, centre; then the 17 dense shots
=================  ===  ==============================================================

plus ``msm_mask [B, 17]`` bool (True = masked) for bassl and bassl_shotcol when MSM is on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bassl.config import Config
from bassl.methods import method_info
from bassl.models import ContextualRelationNetwork, MaskedShotHead, PretrainModel
from bassl.train.nce import info_nce
from bassl.train.pseudo_boundary import PseudoBoundary, pseudo_boundary


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """U(0, 1) draws from ``generator`` (on its own device), moved to ``device``."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


# --------------------------------------------------------------------------------------------------
# Contrastive terms (head_nce space)
# --------------------------------------------------------------------------------------------------


def nearest_neighbour(d_emb: torch.Tensor) -> torch.Tensor:
    """ShotCoL positive: per window, the dense shot most similar to the centre shot, excluding itself."""
    with torch.no_grad():
        d = F.normalize(d_emb, dim=-1)  # [B, S, E]
        c = d.shape[1] // 2
        sim = torch.einsum("be,bse->bs", d[:, c], d)  # [B, S]
        sim[:, c] = -10000.0
        return sim.argmax(dim=1)  # [B]


def shotcol_loss(centre_emb: torch.Tensor, d_emb: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE between the sparse centre view ``[B, E]`` and its nearest dense shot in ``[B, S, E]``."""
    nn_idx = nearest_neighbour(d_emb)
    b = torch.arange(d_emb.shape[0], device=d_emb.device)
    return info_nce(centre_emb, d_emb[b, nn_idx], temperature)


def ssm_loss(s_emb: torch.Tensor, d_emb: torch.Tensor, pb: PseudoBoundary, temperature: float) -> torch.Tensor:
    """Shot-scene matching: each edge shot ``s_emb [B, 2, E]`` vs the unit mean of its DTW group of
    ``d_emb [B, S, E]``, InfoNCE over the global batch, averaged over the two sides. The grouping is a
    constant; gradients reach both the sparse and the dense embeddings (through the mean).
    """
    groups = pb.groups().to(d_emb.dtype)  # [B, 2, S]
    scene = groups @ d_emb / groups.sum(dim=2, keepdim=True)  # [B, 2, E]: group means
    scene = F.normalize(scene, dim=-1)
    return sum(info_nce(s_emb[:, i], scene[:, i], temperature) for i in range(2)) / 2


# --------------------------------------------------------------------------------------------------
# CRN terms
# --------------------------------------------------------------------------------------------------


def pp_samples(
    bd: torch.Tensor, num_shots: int, num_negatives: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``[B, k]`` non-boundary shots per window, uniform from ``{0..S-1} \\ {bd}`` without replacement."""
    scores = _uniform((bd.shape[0], num_shots), generator, bd.device)  # [B, S]
    scores.scatter_(1, bd[:, None], -1.0)  # the boundary shot is never drawn
    return scores.topk(num_negatives, dim=1).indices


def cgm_samples(
    bd: torch.Tensor, num_shots: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pos, neg)`` ``[B]`` each: one shot drawn uniformly from the centre's group and one from the other
    group, the centre itself excluded. Groups: ``0..bd`` and ``bd+1..S-1`` (``bd <= S-2``).
    """
    c = num_shots // 2
    pos_range = torch.arange(num_shots, device=bd.device)  # [S]
    left = pos_range <= bd[:, None]  # [B, S]
    candidates = pos_range != c
    scores = _uniform((bd.shape[0], num_shots), generator, bd.device)  # [B, S]; argmax of iid U = uniform pick
    pick_left = torch.where(left & candidates, scores, -1.0).argmax(dim=1)
    pick_right = torch.where(~left & candidates, scores, -1.0).argmax(dim=1)
    centre_right = c > bd  # [B]
    pos = torch.where(centre_right, pick_right, pick_left)
    neg = torch.where(centre_right, pick_left, pick_right)
    return pos, neg


def same_position_negatives(bd: torch.Tensor, num_negatives: int, generator: torch.Generator | None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(windows [B, k], keep [B, k])``: for window i, other windows whose shot at position ``bd[i]`` is a negative;
    ``keep`` is False where that shot is the other window's own pseudo-boundary (then it is no negative)."""
    B = bd.shape[0]
    shifts = 1 + (_uniform((num_negatives,), generator, bd.device) * max(B - 1, 1)).long().clamp(max=max(B - 2, 0))
    other = (torch.arange(B, device=bd.device)[:, None] + shifts[None]) % B  # [B, k], never i itself when B > 1
    return other, (bd[other] != bd[:, None]) & (other != torch.arange(B, device=bd.device)[:, None])


def pp_loss(
    h: torch.Tensor, head: nn.Module, bd: torch.Tensor, num_negatives: int, generator: torch.Generator | None,
    negatives: str = "uniform",
) -> torch.Tensor:
    """Pseudo-boundary prediction on unmasked CRN states ``h [B, S, H]``: the boundary shot is class 1,
    ``num_negatives`` shots per window are class 0; cross-entropy over all B(1+k) shots. ``negatives="uniform"``
    (the paper) draws them from the window's other positions; ``"same_position"`` takes the shot at the same
    position ``bd`` in other windows, so the position in the window cannot tell the classes apart.
    """
    B, S, _ = h.shape
    b = torch.arange(B, device=h.device)
    if negatives == "same_position":
        other, keep = same_position_negatives(bd, num_negatives, generator)  # [B, k]
        neg_tokens = h[other, bd[:, None].expand_as(other)][keep]  # [M, H]
    else:
        neg = pp_samples(bd, S, num_negatives, generator)  # [B, k]
        neg_tokens = h[b[:, None], neg].transpose(0, 1).flatten(0, 1)  # [B*k, H]
    tokens = torch.cat([h[b, bd], neg_tokens])  # [B + negatives, H]
    labels = torch.zeros(tokens.shape[0], dtype=torch.long, device=h.device)
    labels[:B] = 1
    return F.cross_entropy(head(tokens), labels)


def cgm_loss(h: torch.Tensor, head: nn.Module, bd: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Contextual group matching on unmasked CRN states ``h [B, S, H]``: (centre, same-group shot) is
    class 1, (centre, other-group shot) class 0, on concatenated unit vectors; cross-entropy over 2B pairs.
    """
    B, S, _ = h.shape
    bd = bd.clamp(max=S - 2)  # a path ending in an "up" step can give bd = S-1; keep the right group non-empty
    pos, neg = cgm_samples(bd, S, generator)
    b = torch.arange(B, device=h.device)
    hn = F.normalize(h, dim=-1)
    centre = hn[:, S // 2]  # [B, H]
    pairs = torch.cat([torch.cat([centre, hn[b, pos]], dim=1), torch.cat([centre, hn[b, neg]], dim=1)])  # [2B, 2H]
    labels = torch.cat([torch.ones(B, dtype=torch.long), torch.zeros(B, dtype=torch.long)]).to(h.device)
    return F.cross_entropy(head(pairs), labels)


def msm_loss(
    crn: ContextualRelationNetwork, head: MaskedShotHead, dense: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Masked shot modelling: regress the (detached) encoder features ``dense [B, S, D]`` of the masked
    shots from a masked CRN pass; MSE over masked shots x D. Gradient reaches the encoder via the CRN input.
    """
    h, _ = crn(dense, mask)  # [B, S, H]
    pred = head(h[mask])  # [M, D]
    return F.mse_loss(pred, dense.detach()[mask])


# --------------------------------------------------------------------------------------------------
# Per-method entry point
# --------------------------------------------------------------------------------------------------


class PretextLoss:
    """All enabled terms of ``cfg.method`` for one batch: ``{name: scalar} + {"total": sum}``.

    Term names: ``simclr`` (instance, temporal, shotcol); ``shotcol`` (bassl_shotcol); ``ssm``, ``cgm``,
    ``pp``, ``msm`` (bassl, bassl_shotcol). Each is this rank's mean; with negatives gathered across ranks
    and gradients averaged by the engine, the update is the global-batch one.
    """

    def __init__(self, cfg: Config) -> None:
        self.method, self.loss = cfg.method, cfg.loss
        k = cfg.window.neighbor_size
        info = method_info(cfg.method)
        self.sparse = info.sparse_positions(k) if info.is_window else ()
        self.window_size = cfg.window_size
        self.images_per_sample = info.images_per_sample(k)

    def __call__(
        self,
        model: PretrainModel,
        images: torch.Tensor,
        msm_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        T = images.shape[1]
        if T != self.images_per_sample:
            raise ValueError(
                f"method {self.method} expects {self.images_per_sample} images per sample (sparse views, then the "
                f"{self.window_size}-shot window), got images of shape {tuple(images.shape)}"
            )
        feats = model.encode(images)  # [B, T, D]
        terms = self.terms(model, feats, msm_mask, generator)
        terms["total"] = sum(terms.values())
        return terms

    def terms(
        self,
        model: PretrainModel,
        feats: torch.Tensor,
        msm_mask: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> dict[str, torch.Tensor]:
        """The loss terms from encoder features ``feats [B, T, D]`` laid out as ``images``."""
        cfg, temp = self.loss, self.loss.temperature
        emb = model.head_nce(feats)  # [B, T, E], unit norm
        if not self.sparse:  # instance, temporal
            return {"simclr": info_nce(emb[:, 0], emb[:, 1], temp)}
        n = len(self.sparse)
        s_emb, d_emb = emb[:, :n], emb[:, n:]  # [B, n, E], [B, S, E]
        if self.method == "shotcol":  # all 20 images are encoded (BN statistics); two enter the loss
            return {"simclr": shotcol_loss(s_emb[:, 2], d_emb, temp)}

        out: dict[str, torch.Tensor] = {}
        if self.method == "bassl_shotcol" and cfg.shotcol:
            out["shotcol"] = shotcol_loss(s_emb[:, 2], d_emb, temp)
        pb = pseudo_boundary(s_emb[:, :2], d_emb) if (cfg.ssm or cfg.pp or cfg.cgm) else None
        if cfg.ssm:
            out["ssm"] = ssm_loss(s_emb[:, :2], d_emb, pb, temp)
        dense = feats[:, n:]  # [B, S, D]: the CRN input
        if cfg.msm:
            if msm_mask is None:
                raise ValueError("loss.msm is on but the batch has no msm_mask [B, S]; the loader must provide it")
            out["msm"] = msm_loss(model.crn, model.head_msm, dense, msm_mask.to(dense.device))
        if cfg.pp or cfg.cgm:
            h, _ = model.crn(dense)  # a second, unmasked pass with its own dropout, as the original
            if cfg.pp:
                out["pp"] = pp_loss(h, model.head_pp, pb.bd, cfg.pp_num_negatives, generator, cfg.pp_negatives)
            if cfg.cgm:
                out["cgm"] = cgm_loss(h, model.head_cgm, pb.bd, generator)
        return out
