"""``bassl pretrain``: self-supervised pre-training of the shot encoder (and CRN) with the DeepSpeed engine.

One entry point for one plain process (CPU or one GPU), the ``deepspeed`` launcher, ``torchrun`` and
``srun``. A run reads: config, distributed facts, loaders, model, objectives, optimizer and schedule,
engine, resume, loop. Everything random in a step (dropout, PP/CGM draws) is seeded from
(seed, rank, global step) and the data order from (seed, epoch), so a resumed run repeats the
uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn

from bassl.config import Config, ConfigError, save_config, to_dict, validate_world
from bassl.errors import BasslError
from bassl.models.weights import export_weights
from bassl.train.checkpoint import latest_tag, load_engine, save_engine
from bassl.train.distributed import DistInfo, init_distributed
from bassl.train.lars import build_lars
from bassl.train.objectives import PretextLoss
from bassl.train.schedule import lr_multiplier, scaled_lr


class NonFiniteLoss(BasslError):
    """A loss term became NaN or Inf; the run stops before saving anything from that step."""


class PretextModule(nn.Module):
    """Model + objectives as one module, so the DeepSpeed engine's forward is the whole step's forward."""

    def __init__(self, model: nn.Module, loss: PretextLoss) -> None:
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, images: torch.Tensor, msm_mask: torch.Tensor | None, generator: torch.Generator) -> dict:
        return self.loss(self.model, images, msm_mask, generator)


def resolve_precision(requested: str, device: torch.device) -> str:
    """auto: bf16 on GPU, fp32 on CPU (CPU bf16 is slower here and fp16 is not supported by DeepSpeed on CPU)."""
    if requested == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if requested == "fp16" and device.type != "cuda":
        raise ConfigError("pretrain.precision: fp16 needs a GPU (DeepSpeed has no fp16 on CPU); use fp32 or bf16")
    return requested


def deepspeed_config(cfg: Config, world: int, precision: str) -> dict[str, Any]:
    """Global batch = effective; per-rank share split into micro-batches = gradient accumulation."""
    per_rank = cfg.pretrain.effective_batch // world
    micro = cfg.pretrain.micro_batch or per_rank
    ds: dict[str, Any] = {
        "train_batch_size": cfg.pretrain.effective_batch,
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": per_rank // micro,
        "zero_optimization": {"stage": cfg.pretrain.zero_stage},
        "gradient_clipping": 0.0,  # the original clips nothing
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if precision == "fp16":
        ds["fp16"] = {"enabled": True, "initial_scale_power": 16}  # dynamic loss scaling, as AMP's GradScaler
    return ds


def step_seed(seed: int, rank: int, step: int, micro: int) -> int:
    return int(np.random.default_rng([seed, rank, step, micro, 0x5EED]).integers(2**62))


@dataclass
class Meter:
    """Running means over the last logging interval, and the time split into data wait and compute."""

    data_s: float = 0.0
    step_s: float = 0.0
    images: int = 0
    steps: int = 0
    sums: dict[str, float] | None = None

    def add(self, terms: dict[str, float], data_s: float, step_s: float, images: int) -> None:
        self.sums = self.sums or {}
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.data_s += data_s
        self.step_s += step_s
        self.images += images
        self.steps += 1

    def means(self) -> dict[str, float]:
        return {k: v / max(1, self.steps) for k, v in (self.sums or {}).items()}


class StopRequested:
    """SIGTERM/SIGUSR1 (Slurm preemption, scancel --signal=TERM): finish the step, checkpoint, exit."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.signum: int | None = None
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            try:
                signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside some test harnesses)
                pass

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __bool__(self) -> bool:
        flag = torch.tensor([1 if self.signum is not None else 0], device=self.device)
        if tdist.is_initialized() and tdist.get_world_size() > 1:
            tdist.all_reduce(flag, op=tdist.ReduceOp.MAX)  # every rank stops at the same step
        return bool(flag.item())


def _check_finite(terms: dict[str, torch.Tensor], step: int) -> dict[str, float]:
    """Mean of each term over ranks; every rank stops together if any term is NaN or Inf anywhere."""
    names = list(terms)
    values = torch.stack([terms[k].detach().float() for k in names])
    if tdist.is_initialized() and tdist.get_world_size() > 1:
        tdist.all_reduce(values)
        values /= tdist.get_world_size()
    means = dict(zip(names, values.tolist(), strict=True))  # CPU-GPU sync point
    bad = [k for k, v in means.items() if not math.isfinite(v)]
    if bad:
        raise NonFiniteLoss(f"non-finite loss at step {step}: {', '.join(f'{k}={means[k]}' for k in bad)}; "
                            "nothing was saved from this step. Lower optim.base_lr or check the input data")
    return means


RUN_STATE = "run_state.json"


def write_run_state(out_dir: Path, state: str, step: int, target_step: int, signum: int | None) -> None:
    """How this invocation ended, for batch scripts (scripts/slurm/pretrain.sbatch requeues on "stopped"):
    "stopped" = a signal ended it early and ``--resume`` continues; "done" = it reached its last step."""
    doc = {"state": state, "step": step, "target_step": target_step, "signal": signum}
    tmp = out_dir / f".{RUN_STATE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(doc) + "\n")
    os.replace(tmp, out_dir / RUN_STATE)


def pretrain(cfg: Config, out_dir: str | Path, resume: bool = False, max_steps: int | None = None) -> dict[str, Any]:
    """Run (or resume) pre-training into ``out_dir``; returns a summary (steps, last losses, export path)."""
    import deepspeed

    from bassl.loaders.build import build_pretrain_loader

    # ---- config and distributed facts -------------------------------------------------------------
    dist: DistInfo = init_distributed(cfg.distributed.backend)
    validate_world(cfg, dist.world_size)
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    precision = resolve_precision(cfg.pretrain.precision, dist.device)
    if dist.is_main:
        save_config(cfg, out_dir)

    # ---- loaders ------------------------------------------------------------------------------------
    loader = build_pretrain_loader(cfg, cfg.data.shards, dist.rank, dist.world_size, dist.device, split="pretrain")
    steps_per_epoch = loader.steps_per_epoch
    total_steps = steps_per_epoch * cfg.pretrain.epochs
    micro = cfg.pretrain.micro_batch or loader.batch_size

    # ---- model, objectives ------------------------------------------------------------------------
    from bassl.models import build_pretrain_model

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = build_pretrain_model(cfg)
    sync_bn = cfg.model.encoder.sync_bn == "on" or (cfg.model.encoder.sync_bn == "auto" and dist.world_size > 1
                                                     and dist.device.type == "cuda")
    if sync_bn:
        if dist.device.type != "cuda":
            raise ConfigError("model.encoder.sync_bn: on needs GPUs (SyncBatchNorm refuses CPU tensors); use auto or off")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    step_module = PretextModule(model, PretextLoss(cfg))

    # ---- optimizer and schedule ---------------------------------------------------------------------
    peak_lr = scaled_lr(cfg.optim.base_lr, cfg.pretrain.effective_batch, cfg.optim.reference_batch)
    optimizer = build_lars(model, cfg.optim, peak_lr)

    # ---- engine ---------------------------------------------------------------------------------------
    engine, optimizer, _, _ = deepspeed.initialize(model=step_module, optimizer=optimizer,
                                                   config=deepspeed_config(cfg, dist.world_size, precision))
    autocast = (torch.autocast(dist.device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext())

    # ---- resume -------------------------------------------------------------------------------------
    step = 0
    if resume and latest_tag(ckpt_dir):
        client = load_engine(engine, ckpt_dir)
        step = int(client["step"])
        if dist.is_main:
            print(f"[pretrain] resumed from {ckpt_dir / latest_tag(ckpt_dir)} at step {step} "
                  f"(saved with world size {client.get('world_size')}, now {dist.world_size})")
    elif not resume and latest_tag(ckpt_dir) and dist.is_main:
        print(f"[pretrain] note: {ckpt_dir} holds a checkpoint; pass --resume to continue from it")

    writer = None
    if dist.is_main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tensorboard"))
        print(f"[pretrain] method {cfg.method}, model {cfg.model_preset} ({cfg.model.encoder.arch}), "
              f"{loader.kind} loader, {precision}, world {dist.world_size} on {dist.device.type}")
        print(f"[pretrain] {loader.table.num_rows} anchor shots, {cfg.pretrain.effective_batch} windows per step "
              f"({loader.batch_size}/rank in micro-batches of {micro}), {steps_per_epoch} steps/epoch x "
              f"{cfg.pretrain.epochs} epochs = {total_steps} steps, peak lr {peak_lr:g}")

    # ---- loop ---------------------------------------------------------------------------------------
    metrics_path = out_dir / "metrics.jsonl"  # one line per step: the loss curve, across resumes
    if dist.is_main:
        keep = [line for line in metrics_path.read_text().splitlines() if json.loads(line)["step"] <= step] \
            if metrics_path.exists() and step else []
        metrics_path.write_text("".join(line + "\n" for line in keep))  # drop steps lost with a crash
    stop = StopRequested(dist.device)
    history: list[dict[str, float]] = []
    last_step = total_steps if max_steps is None else min(total_steps, max_steps)
    meter, totals = Meter(), Meter()  # the logging interval; the whole invocation
    stopped_by_signal = False

    def checkpoint(at: int) -> None:
        save_engine(engine, ckpt_dir, at, {"step": at, "world_size": dist.world_size, "config": to_dict(cfg)})

    while step < last_step and not stopped_by_signal:
        epoch, in_epoch = divmod(step, steps_per_epoch)
        loader.set_epoch(epoch, in_epoch)
        engine.train()
        t_data = time.perf_counter()
        for batch in loader:
            data_s = time.perf_counter() - t_data
            t_step = time.perf_counter()
            mult = lr_multiplier(step, total_steps, cfg.optim.warmup_ratio)
            for group in optimizer.param_groups:
                group["lr"] = peak_lr * mult
            images, mask = batch["images"], batch.get("msm_mask")
            if precision == "fp16":
                images = images.half()
            sums: dict[str, float] = {}
            for i, chunk in enumerate(range(0, images.shape[0], micro)):
                torch.manual_seed(step_seed(cfg.seed, dist.rank, step, i))  # dropout
                gen = torch.Generator().manual_seed(step_seed(cfg.seed, dist.rank, step, i) + 1)  # PP/CGM draws
                with autocast:
                    terms = engine(images[chunk : chunk + micro],
                                   None if mask is None else mask[chunk : chunk + micro], gen)
                values = _check_finite(terms, step + 1)  # before any update from this step
                engine.backward(terms["total"])
                engine.step()
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v / math.ceil(images.shape[0] / micro)
            step += 1
            step_s = time.perf_counter() - t_step
            meter.add(sums, data_s, step_s, images.shape[0] * images.shape[1] * dist.world_size)
            totals.add(sums, data_s, step_s, images.shape[0] * images.shape[1] * dist.world_size)
            history.append({"step": step, **sums, "lr": peak_lr * mult})
            if dist.is_main:
                with metrics_path.open("a") as f:
                    f.write(json.dumps(history[-1]) + "\n")
            if dist.is_main and (step % cfg.pretrain.log_every == 0 or step == last_step):
                m = meter.means()
                wait = meter.data_s / max(1e-9, meter.data_s + meter.step_s)
                ips = meter.images / max(1e-9, meter.data_s + meter.step_s)
                terms_txt = " ".join(f"{k} {v:.4f}" for k, v in m.items())
                print(f"[pretrain] step {step}/{total_steps} epoch {epoch} | {terms_txt} | lr {peak_lr * mult:.3g} | "
                      f"{ips:.1f} img/s | data wait {100 * wait:.0f}%", flush=True)
                for k, v in m.items():
                    writer.add_scalar(f"loss/{k}", v, step)
                writer.add_scalar("lr", peak_lr * mult, step)
                writer.add_scalar("throughput/images_per_s", ips, step)
                writer.add_scalar("throughput/data_wait_share", wait, step)
                meter = Meter()
            if step % cfg.pretrain.checkpoint_every == 0 or step == last_step:
                checkpoint(step)
            if stop:
                if step % cfg.pretrain.checkpoint_every and step != last_step:
                    checkpoint(step)
                if dist.is_main:
                    print(f"[pretrain] signal {stop.signum}: checkpoint at step {step} saved; --resume continues")
                stopped_by_signal = True
                break
            if step >= last_step:
                break
            t_data = time.perf_counter()
        if not stopped_by_signal and cfg.pretrain.knn_every_epoch and step % steps_per_epoch == 0:
            knn = knn_validation(cfg, model, dist)
            if dist.is_main and knn:
                print("[pretrain] kNN scene precision " + " ".join(f"@{k} {v:.2f}" for k, v in knn.items()))
                for k, v in knn.items():
                    writer.add_scalar(f"knn/precision@{k}", v, step)

    check_ranks_agree(model, dist)
    export = out_dir / "encoder.pt"
    if dist.is_main:
        export_weights(model, export, to_dict(cfg), {"step": step, "method": cfg.method})
        writer.close()
        write_run_state(out_dir, "stopped" if stopped_by_signal else "done", step, last_step, stop.signum)
        print(f"[pretrain] {'stopped' if stopped_by_signal else 'done'} at step {step}; weights in {export}")
    if tdist.is_initialized():
        tdist.barrier()
    seconds = totals.data_s + totals.step_s
    throughput = {"steps": totals.steps, "seconds": seconds, "steps_per_s": totals.steps / max(seconds, 1e-9),
                  "images_per_s": totals.images / max(seconds, 1e-9), "data_wait_share": totals.data_s / max(seconds, 1e-9)}
    return {"step": step, "history": history, "export": export, "stopped": stopped_by_signal, "throughput": throughput}


def check_ranks_agree(model: nn.Module, dist: DistInfo) -> None:
    """Data parallelism must leave every rank with the same weights; a cheap fingerprint proves it each run."""
    if dist.world_size == 1:
        return
    with torch.no_grad():
        fp = torch.stack([torch.stack([p.double().sum(), p.double().abs().sum()]) for p in model.parameters()]).sum(0)
    parts = [torch.zeros_like(fp) for _ in range(dist.world_size)]
    tdist.all_gather(parts, fp.to(dist.device))
    spread = max(float((q.cpu() - parts[0].cpu()).abs().max()) for q in parts)
    if spread > 1e-6 * float(parts[0].abs().max()):
        raise RuntimeError(f"ranks disagree on the parameters after training (fingerprint spread {spread:g})")
    if dist.is_main:
        print(f"[pretrain] parameters identical on all {dist.world_size} ranks (fingerprint {parts[0][1].item():.6f})")


def knn_validation(cfg: Config, model: nn.Module, dist: DistInfo) -> dict[int, float] | None:
    """Scene-retrieval precision@k on the test split (spec §6.8): a monitor only; it changes nothing."""
    from bassl.eval.metrics import knn_precision
    from bassl.sharding.movienet import MovieNetSource

    try:
        scenes = MovieNetSource.from_config(cfg.data).split("test")
    except BasslError as e:
        if dist.is_main:
            print(f"[pretrain] kNN validation skipped: {e}")
        return None
    from bassl.train.extract import encode_shots

    precision = resolve_precision(cfg.pretrain.precision, dist.device)
    vids, shots, feats = encode_shots(cfg, model.encoder, dist.device, "test", rank=dist.rank, world=dist.world_size,
                                      precision="bf16" if precision == "bf16" else "fp32")
    if tdist.is_initialized() and dist.world_size > 1:
        parts: list[Any] = [None] * dist.world_size
        tdist.all_gather_object(parts, (vids, shots, feats))
        vids = [v for p in parts for v in p[0]]
        shots = np.concatenate([p[1] for p in parts])
        feats = np.concatenate([p[2] for p in parts])
    if not dist.is_main:
        return None
    def scene_of(vid: str, shot: int) -> int:
        ann = scenes.get(vid)
        if ann is None or ann.scene_ids is None:
            return -1
        i = int(np.searchsorted(ann.shot_ids, shot))
        return int(ann.scene_ids[i]) if i < len(ann.shot_ids) and ann.shot_ids[i] == shot else -1

    scene_ids = np.array([scene_of(v, int(s)) for v, s in zip(vids, shots, strict=True)], dtype=np.int64)
    keep = scene_ids >= 0
    return knn_precision(feats[keep], np.asarray(vids)[keep], scene_ids[keep], cfg.eval.knn_k)
