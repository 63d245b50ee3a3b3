"""InfoNCE with negatives from the whole global batch (method.md §6.3).

Embeddings are all-gathered across ranks *with* gradient: the backward all-reduces (sums) the gathered
gradient and returns this rank's slice, so each rank's embeddings receive the gradient of every rank's
loss terms. With each rank returning its local mean and the engine averaging gradients over ranks, the
update equals the single-process gradient of the global mean loss.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from bassl.train.distributed import is_distributed


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.n = x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)  # [W*n, ...], rank-major

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # sum of every rank's gradient w.r.t. the gathered tensor
        start = dist.get_rank() * ctx.n
        return grad[start : start + ctx.n]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All-gather ``[n, ...]`` from every rank into ``[W*n, ...]`` (rank-major); identity on one process.

    Every rank must pass the same ``n`` (the loaders drop the last incomplete batch).
    """
    return _GatherWithGrad.apply(x) if is_distributed() else x


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between paired unit vectors ``a[i] <-> b[i]`` (``[n, E]`` each), local mean.

    Each of the 2n local anchors has one positive (its pair) and every other gathered embedding of both
    views as negatives (2nW - 2 of them): loss_i = -log(exp(s_ip/T) / sum_{j != i} exp(s_ij/T)).
    """
    z = torch.cat([a, b])  # [2n, E]
    z = z.to(torch.promote_types(z.dtype, torch.float32))  # at least fp32 for the exp, as the original
    n2 = z.shape[0]
    zs = gather_with_grad(z)  # [W*2n, E]
    offset = dist.get_rank() * n2 if is_distributed() else 0
    with torch.autocast(z.device.type, enabled=False):  # similarities in fp32 even under autocast
        logits = z @ zs.t() / temperature  # [2n, W*2n]
    rows = torch.arange(n2, device=z.device)
    self_idx = offset + rows
    pos_idx = offset + (rows + n2 // 2) % n2
    logits = logits.masked_fill(F.one_hot(self_idx, zs.shape[0]).bool(), float("-inf"))
    return (torch.logsumexp(logits, dim=1) - logits[rows, pos_idx]).mean()
