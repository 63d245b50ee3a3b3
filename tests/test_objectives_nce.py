"""InfoNCE: a hand computation, and 2 gloo processes reproducing the single-process global-batch loss."""

from __future__ import annotations

import math
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from bassl.train.nce import gather_with_grad, info_nce

T = 0.1


def test_info_nce_matches_hand_computation():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[0.6, 0.8], [0.8, -0.6]])
    z = [a[0], a[1], b[0], b[1]]
    pos_of = {0: 2, 1: 3, 2: 0, 3: 1}
    losses = []
    for i in range(4):
        sims = {j: math.exp(float(z[i] @ z[j]) / T) for j in range(4) if j != i}
        pos = sims[pos_of[i]]
        neg = sum(v for j, v in sims.items() if j != pos_of[i])
        losses.append(-math.log(pos / (pos + neg)))
    assert math.isclose(info_nce(a, b, T).item(), sum(losses) / 4, rel_tol=1e-6)


def test_gather_is_identity_without_distributed():
    x = torch.randn(3, 4)
    assert gather_with_grad(x) is x


def _global_batch(n_per_rank: int, world: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    a = F.normalize(torch.randn(n_per_rank * world, 8, generator=g, dtype=torch.float64), dim=1)
    b = F.normalize(torch.randn(n_per_rank * world, 8, generator=g, dtype=torch.float64), dim=1)
    return a, b


def _worker(rank: int, world: int, port: int, n: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        a, b = _global_batch(n, world)
        a = a[rank * n : (rank + 1) * n].clone().requires_grad_()
        b = b[rank * n : (rank + 1) * n].clone().requires_grad_()
        loss = info_nce(a, b, T)
        loss.backward()
        torch.save({"loss": loss.detach(), "ga": a.grad, "gb": b.grad}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gather_equals_single_process(tmp_path):
    n, world = 3, 2
    mp.spawn(_worker, args=(world, _free_port(), n, str(tmp_path)), nprocs=world, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]

    a, b = _global_batch(n, world)
    a.requires_grad_()
    b.requires_grad_()
    loss = info_nce(a, b, T)
    loss.backward()

    # The global loss is the mean of the ranks' local means; the engine averages gradients over ranks,
    # so each rank's gradient / world is the single-process gradient of its slice.
    torch.testing.assert_close(torch.stack([r["loss"] for r in results]).mean(), loss.detach())
    for r, res in enumerate(results):
        rows = slice(r * n, (r + 1) * n)
        torch.testing.assert_close(res["ga"] / world, a.grad[rows])
        torch.testing.assert_close(res["gb"] / world, b.grad[rows])
