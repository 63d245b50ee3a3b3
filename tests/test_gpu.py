"""The GPU paths: DALI ``mixed`` decode, bf16 pre-training, SyncBN over NCCL, extraction and fine-tuning on a GPU.

Marked ``gpu``: they run where CUDA is (``benchmarks/gpu_check.sh`` runs them first on a lent GPU) and skip
elsewhere, except under ``BASSL_GPU_DRY_RUN=1`` (``gpu_check.sh --dry-run``, which CI runs): then each test
takes the same steps on the CPU with tiny sizes (CPU decode against CPU decode, fp32 for bf16, gloo for NCCL,
plain BatchNorm for SyncBN), so the check itself is known to work before a GPU is lent.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from builders import clean_env, finetune_layout, overrides

from bassl.config import load_config

DRY = os.environ.get("BASSL_GPU_DRY_RUN") == "1"
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not (torch.cuda.is_available() or DRY),
                                                  reason="needs CUDA (or BASSL_GPU_DRY_RUN=1 for the CPU dry run)")]
DEVICE = torch.device("cpu") if DRY or not torch.cuda.is_available() else torch.device("cuda", 0)
# The GPU machine receives DALI only after its first command (benchmarks/gpu_pack.py): until then the tests that are
# not about DALI take the torch loader.
LOADER = "dali" if importlib.util.find_spec("nvidia") and importlib.util.find_spec("nvidia.dali") else "torch"


def test_dali_mixed_decode_matches_the_cpu_pipeline(pretrain_shards):
    """The same planned crops through DALI's GPU (``mixed``) decoder and its CPU one: the same pixels, up to the
    decoders' rounding."""
    from bassl.loaders import build_eval_loader, build_pretrain_loader

    cfg = load_config(overrides(pretrain_shards, "augment.color_jitter_prob=0"))
    for build in (lambda d: build_pretrain_loader(cfg, pretrain_shards, loader="dali", batch_size=4, device=d),
                  lambda d: build_eval_loader(cfg, pretrain_shards, loader="dali", batch_size=6, device=d)):
        cpu = next(iter(build(torch.device("cpu"))))
        gpu = next(iter(build(DEVICE)))
        assert gpu["images"].device.type == DEVICE.type
        diff = (cpu["images"] - gpu["images"].cpu()).abs()
        assert diff.mean() < 0.02 and torch.quantile(diff.flatten(), 0.99) < 0.2, (diff.mean(), diff.max())


def test_bf16_pretraining_steps_decrease_the_loss(pretrain_shards, tmp_path):
    from bassl.train.pretrain import pretrain

    precision = "fp32" if DEVICE.type == "cpu" else "bf16"
    run = pretrain(load_config(overrides(pretrain_shards, f"pretrain.precision={precision}", "pretrain.epochs=4",
                                         f"pretrain.loader={LOADER}",
                                         "optim.trust_coefficient=0.02")), tmp_path / "pt")
    totals = [h["total"] for h in run["history"]]
    assert all(np.isfinite(totals)) and np.mean(totals[-4:]) < np.mean(totals[:4]), totals


def test_syncbn_in_a_one_rank_process_group_equals_batchnorm(tmp_path):
    """SyncBatchNorm over a 1-rank NCCL group computes what BatchNorm does (on the CPU dry run: gloo, BatchNorm)."""
    code = f"""
import os, torch, torch.distributed as dist
from torch import nn
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="{_free_port()}", RANK="0", WORLD_SIZE="1")
gpu = {DEVICE.type == "cuda"}
dist.init_process_group("nccl" if gpu else "gloo", rank=0, world_size=1)
dev = torch.device("cuda", 0) if gpu else torch.device("cpu")
torch.manual_seed(0)
plain = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)).to(dev)
synced = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))).to(dev) if gpu else \\
    nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)).to(dev)
synced.load_state_dict(plain.state_dict())
x = torch.randn(4, 3, 16, 16, device=dev)
a, b = plain(x), synced(x)
a.sum().backward(); b.sum().backward()
assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()
assert torch.allclose(plain[0].weight.grad, synced[0].weight.grad, atol=1e-3)
assert torch.allclose(plain[1].running_mean, synced[1].running_mean, atol=1e-5)
print("syncbn ok", type(synced[1]).__name__)
dist.destroy_process_group()
"""
    out = subprocess.run([sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "syncbn ok" in out.stdout, out.stderr[-3000:]
    assert ("SyncBatchNorm" if DEVICE.type == "cuda" else "BatchNorm2d") in out.stdout


def test_extraction_and_finetuning_on_the_device(pretrain_shards, tmp_path):
    from bassl.data.features import load_features
    from bassl.train.extract import encode_shots
    from bassl.train.pretrain import pretrain

    run = pretrain(load_config(overrides(pretrain_shards, "pretrain.epochs=1", f"pretrain.loader={LOADER}")),
                   tmp_path / "pt")
    from bassl.models.weights import load_encoder

    encoder, _ = load_encoder(run["export"], DEVICE)
    cfg = load_config(overrides(pretrain_shards, f"pretrain.loader={LOADER}"))
    precision = "fp32" if DEVICE.type == "cpu" else "bf16"
    vids, shots, feats = encode_shots(cfg, encoder, DEVICE, "test", precision=precision)
    cpu_encoder, _ = load_encoder(run["export"], torch.device("cpu"))
    _, _, ref = encode_shots(cfg, cpu_encoder, torch.device("cpu"), "test")
    cos = (feats * ref).sum(1) / np.linalg.norm(feats, axis=1) / np.linalg.norm(ref, axis=1)
    assert len(vids) == 26 and cos.min() > 0.98, cos.min()  # bf16 features point where the fp32 ones do
    from bassl.train.finetune import finetune

    root, fdir = finetune_layout(tmp_path)
    report = finetune(load_config([f"data.root={root}", "model_preset=tiny", "finetune.effective_batch=32",
                                   "finetune.epochs=2", "finetune.base_lr=1e-3"]), fdir, tmp_path / "ft")
    assert np.isfinite(report["test"]["ap"]) and load_features(fdir).features.shape[1] == 8


def _free_port() -> int:
    from bassl.train.distributed import free_port

    return free_port()
