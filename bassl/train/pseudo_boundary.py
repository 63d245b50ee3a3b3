"""Pseudo-boundaries: the original's per-sample tslearn DTW, computed exactly for a whole batch (method.md §6.5).

The original aligns the two edge-shot embeddings ``s [2, E]`` with the dense window ``d [S, E]`` by DTW on
the cost ``C = 1 - s d^T`` (float32) with ``tslearn.metrics.dtw_path_from_metric(C, "precomputed")``, one
sample at a time on the CPU, and takes ``bd`` = the last path position whose sparse index is 0.

With two rows the DP is two recurrences, ``A0[j] = C0[j] + A0[j-1]`` and
``A1[j] = C1[j] + min(A0[j], A1[j-1], A0[j-1])``; we run them column by column (S steps, each over the
whole batch, on the batch's device) with tslearn's float64 additions in tslearn's order, so every
accumulated cost is bit-identical. Backtracking from (1, S-1) compares ``[A0[j-1], A0[j], A1[j-1]]``
(first minimum wins: diagonal, then up, then left), so the path leaves row 1 at the largest j whose step
is not "left"; those decisions are evaluated for all j at once. The result equals tslearn's path, ties
and near-ties included: equal costs give the larger ``bd``, and a cost made slightly negative by rounding
can make the path step "up", putting one dense shot in both groups, as in the original.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PseudoBoundary:
    """The DTW split of each window: group 0 = shots ``0..bd``, group 1 = shots ``right_start..S-1``.

    ``right_start == bd + 1`` except when a negative cost made the path step "up" (then ``== bd``).
    """

    bd: torch.Tensor  # [B] long: the last shot aligned to the first edge shot (the pseudo-boundary shot)
    right_start: torch.Tensor  # [B] long: the first shot aligned to the last edge shot
    num_shots: int

    def groups(self) -> torch.Tensor:
        """``[B, 2, S]`` bool: which dense shots DTW aligned to edge shot 0 and to edge shot 1."""
        pos = torch.arange(self.num_shots, device=self.bd.device)  # [S]
        left = pos <= self.bd[:, None]  # [B, S]
        right = pos >= self.right_start[:, None]
        return torch.stack([left, right], dim=1)


def dtw_cost(s_emb: torch.Tensor, d_emb: torch.Tensor) -> torch.Tensor:
    """``[B, 2, E]`` edge and ``[B, S, E]`` dense unit vectors -> ``[B, 2, S]`` float32 cosine distance."""
    with torch.autocast(s_emb.device.type, enabled=False):
        return 1 - torch.bmm(s_emb.float(), d_emb.float().transpose(1, 2))


@torch.no_grad()
def pseudo_boundary_from_cost(cost: torch.Tensor) -> PseudoBoundary:
    """tslearn's DTW path for each ``[2, S]`` cost matrix in ``cost [B, 2, S]`` (float32), batched."""
    B, two, S = cost.shape
    if two != 2 or S < 2:
        raise ValueError(f"pseudo-boundaries need a [B, 2, S>=2] cost (two edge shots), got {tuple(cost.shape)}")
    c0, c1 = cost.float().double().permute(1, 2, 0).unbind(0)  # [S, B]: float32 costs, float64 sums
    c0, c1 = c0.unbind(0), c1.unbind(0)  # S columns of [B]
    a0, a1 = [c0[0]], [c1[0] + c0[0]]  # accumulated costs of rows 0 and 1, column by column
    # S sequential steps, each over the whole batch: the same additions in the same order as tslearn.
    for j in range(1, S):
        a0.append(c0[j] + a0[j - 1])
        a1.append(c1[j] + torch.minimum(torch.minimum(a0[j], a1[j - 1]), a0[j - 1]))
    a0, a1 = torch.stack(a0), torch.stack(a1)  # [S, B]

    # Backtracking decisions at (1, j), j >= 1: argmin of [diag, up, left], the first minimum wins.
    diag, up, left = a0[:-1], a0[1:], a1[:-1]  # [S-1, B] each
    is_diag = (diag <= up) & (diag <= left)
    leaves_row1 = is_diag | (up <= left)
    j = torch.arange(1, S, device=cost.device)[:, None]  # [S-1, 1]
    j_star = (leaves_row1 * j).amax(dim=0)  # [B]; 0: walked left to (1, 0), then up
    took_diag = is_diag.gather(0, (j_star - 1).clamp(min=0)[None])[0] & (j_star > 0)
    bd = j_star - took_diag.long()
    return PseudoBoundary(bd=bd, right_start=j_star, num_shots=S)


def pseudo_boundary(s_emb: torch.Tensor, d_emb: torch.Tensor) -> PseudoBoundary:
    """DTW pseudo-boundaries from the two edge-shot embeddings ``[B, 2, E]`` and the window ``[B, S, E]``.

    No gradient flows through the alignment: it only picks groups and boundary shots.
    """
    return pseudo_boundary_from_cost(dtw_cost(s_emb.detach(), d_emb.detach()))
