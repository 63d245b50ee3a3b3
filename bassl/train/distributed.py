"""Distributed facts, read once into a small record (nanoGPT / open_clip ``world_info_from_env`` style).

The same entry point runs as one plain process, under the ``deepspeed`` launcher or ``torchrun`` (which set
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``), or under Slurm's ``srun`` (``SLURM_PROCID``/``SLURM_NTASKS``/
``SLURM_LOCALID``). CPU runs use gloo, GPU runs NCCL; nothing is hard-coded.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env_int(*names: str, default: int) -> int:
    for name in names:
        if os.environ.get(name, "").strip():
            return int(os.environ[name])
    return default


def world_from_env() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from a launcher's variables, else a single process."""
    rank = _env_int("RANK", "SLURM_PROCID", default=0)
    world = _env_int("WORLD_SIZE", "SLURM_NTASKS", default=1)
    local = _env_int("LOCAL_RANK", "SLURM_LOCALID", default=0)
    return rank, local, world


def init_distributed(backend: str = "auto") -> DistInfo:
    """Initialise torch.distributed through DeepSpeed (idempotent) and return the facts.

    Without a launcher the rendezvous variables are filled in for a one-process world, so DeepSpeed does not
    go looking for MPI."""
    rank, local, world = world_from_env()
    cuda = torch.cuda.is_available()
    if backend == "auto":
        backend = "nccl" if cuda else "gloo"
    if not cuda:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    os.environ.setdefault("RANK", str(rank))
    os.environ.setdefault("WORLD_SIZE", str(world))
    os.environ.setdefault("LOCAL_RANK", str(local))
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        if world > 1:
            raise RuntimeError("MASTER_PORT is not set for a multi-process run; launch with deepspeed, torchrun or "
                               "srun through scripts/slurm (they set it)")
        os.environ["MASTER_PORT"] = str(free_port())
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    import deepspeed  # imported late: it is slow to import and prints on import

    if not torch.distributed.is_initialized():
        deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False)
    return DistInfo(rank=rank, local_rank=local, world_size=world, device=device, backend=backend)


def group_size() -> int:
    """Ranks in the initialised process group; 1 when there is none (a plain process, a test)."""
    return torch.distributed.get_world_size() if torch.distributed.is_available() and torch.distributed.is_initialized() else 1


def is_distributed() -> bool:
    """More than one rank takes part: collectives are needed. The one test of it in bassl."""
    return group_size() > 1


def barrier() -> None:
    """Wait for every rank; nothing to wait for in a one-rank run."""
    if is_distributed():
        torch.distributed.barrier()


def deepspeed_config(effective_batch: int, world: int, micro_batch: int = 0, zero_stage: int = 0,
                     precision: str = "fp32", gradient_clipping: float = 0.0) -> dict[str, Any]:
    """DeepSpeed's engine settings for every stage: a global batch of ``effective_batch``, each rank's share
    (effective / world) run in micro-batches of ``micro_batch`` (0: the whole share) = gradient accumulation; fp16
    with dynamic loss scaling, as AMP's GradScaler (bf16 needs none); the gradient norm clipped at
    ``gradient_clipping``, 0 = not at all, as the original does in both stages. Always stated: DeepSpeed's own
    default clips at 1.0."""
    per_rank = effective_batch // world
    micro = micro_batch or per_rank
    ds: dict[str, Any] = {
        "train_batch_size": effective_batch,
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": per_rank // micro,
        "zero_optimization": {"stage": zero_stage},
        "gradient_clipping": gradient_clipping,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if precision == "fp16":
        ds["fp16"] = {"enabled": True, "initial_scale_power": 16}
    return ds
