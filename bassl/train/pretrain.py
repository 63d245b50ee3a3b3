"""``bassl pretrain``: self-supervised pre-training of the shot encoder (and CRN) with the DeepSpeed engine.

One entry point for one plain process (CPU or one GPU), the ``deepspeed`` launcher, ``torchrun`` and
``srun``. A run reads: config, distributed facts, loaders, model, objectives, optimizer and schedule,
engine, resume, loop (``train_one_epoch``), export. Everything random in a step (dropout, PP/CGM draws) is
seeded from (seed, rank, global step) and the data order from (seed, epoch), so a resumed run repeats the
uninterrupted one.
"""

from __future__ import annotations

import math
import shutil
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn

from bassl.config import Config, ConfigError, config_from_dict, load_saved_config, save_config, to_dict
from bassl.data.manifest import load_manifest
from bassl.errors import BasslError
from bassl.loaders.build import LoaderHandle, build_pretrain_loader
from bassl.models import initial_pretrain_model
from bassl.models.weights import export_weights, load_weights
from bassl.train.checkpoint import latest_tag, load_engine, resume_changes, save_engine
from bassl.train.distributed import (
    DistInfo,
    barrier,
    deepspeed_config,
    group_size,
    init_distributed,
    is_distributed,
    world_from_env,
)
from bassl.train.knn_monitor import knn_validation
from bassl.train.lars import build_lars
from bassl.train.meters import Meter
from bassl.train.objectives import PretextLoss
from bassl.train.precision import autocast, resolve_precision
from bassl.train.pretext_monitor import describe, epoch_monitors
from bassl.train.run_log import METRICS, append_metrics, read_evaluation, truncate_metrics, write_evaluation
from bassl.train.schedule import lr_multiplier, scaled_lr
from bassl.train.stopping import StopRequested, write_run_state


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


def step_seed(seed: int, rank: int, step: int, micro: int) -> int:
    return int(np.random.default_rng([seed, rank, step, micro, 0x5EED]).integers(2**62))


def check_finite(terms: dict[str, torch.Tensor], step: int) -> dict[str, float]:
    """Mean of each term over ranks; every rank stops together if any term is NaN or Inf anywhere."""
    names = list(terms)
    values = torch.stack([terms[k].detach().float() for k in names])
    if is_distributed():
        tdist.all_reduce(values)
        values /= group_size()
    means = dict(zip(names, values.tolist(), strict=True))  # CPU-GPU sync point
    bad = [k for k, v in means.items() if not math.isfinite(v)]
    if bad:
        raise NonFiniteLoss(f"non-finite loss at step {step}: {', '.join(f'{k}={means[k]}' for k in bad)}; "
                            "nothing was saved from this step. Lower optim.base_lr or check the input data")
    return means


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


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------


@dataclass
class PretrainRun:
    """What the loop carries from step to step: the engine and its schedule, the counters, the logs."""

    cfg: Config
    dist: DistInfo
    engine: Any
    optimizer: torch.optim.Optimizer
    autocast: AbstractContextManager
    precision: str
    peak_lr: float
    total_steps: int
    last_step: int  # this invocation stops here (--max-steps), the schedule still spans total_steps
    micro: int
    out_dir: Path
    writer: Any  # TensorBoard, rank 0 only
    stop: StopRequested
    step: int = 0
    stopped: bool = False  # by a signal
    history: list[dict[str, float]] = field(default_factory=list)
    monitors: dict[str, Any] | None = None  # the last epoch's pretext monitors (rank 0)
    evaluated: int = 0  # the step of the last end-of-epoch evaluation (kept in checkpoints: a resume owes none twice)
    saved: int = 0  # the step of the last checkpoint
    meter: Meter = field(default_factory=Meter)  # the logging interval
    totals: Meter = field(default_factory=Meter)  # the whole invocation

    @property
    def ckpt_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.out_dir / METRICS

    def checkpoint(self) -> None:
        self.saved = self.step
        save_engine(self.engine, self.ckpt_dir, self.step,
                    {"step": self.step, "world_size": self.dist.world_size, "config": to_dict(self.cfg),
                     "monitors": self.monitors, "evaluated": self.evaluated, "precision": self.precision})


def train_step(run: PretrainRun, batch: dict[str, torch.Tensor], lr: float) -> dict[str, float]:
    """One optimizer step at ``lr`` on this rank's batch, in micro-batches; returns the ranks' mean of each loss term."""
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    images, mask = batch["images"], batch.get("msm_mask")  # [B, T, 3, S, S], [B, 2K+1]
    if run.precision == "fp16":
        images = images.half()
    chunks = math.ceil(images.shape[0] / run.micro)
    sums: dict[str, float] = {}
    for i, start in enumerate(range(0, images.shape[0], run.micro)):
        seed = step_seed(run.cfg.seed, run.dist.rank, run.step, i)
        torch.manual_seed(seed)  # dropout
        gen = torch.Generator().manual_seed(seed + 1)  # PP/CGM draws
        with run.autocast:
            terms = run.engine(images[start : start + run.micro], None if mask is None else mask[start : start + run.micro], gen)
        values = check_finite(terms, run.step + 1)  # before any update from this step
        run.engine.backward(terms["total"])
        run.engine.step()
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v / chunks
    return sums


def log_interval(run: PretrainRun, epoch: int) -> None:
    """The console line and the TensorBoard scalars of the last logging interval (rank 0)."""
    m, lr = run.meter.means(), run.history[-1]["lr"]
    terms = " ".join(f"{k} {v:.4f}" for k, v in m.items())
    print(f"[pretrain] step {run.step}/{run.total_steps} epoch {epoch} | {terms} | lr {lr:.3g} | "
          f"{run.meter.images_per_s:.1f} img/s | data wait {100 * run.meter.data_wait_share:.0f}%", flush=True)
    for k, v in m.items():
        run.writer.add_scalar(f"loss/{k}", v, run.step)
    run.writer.add_scalar("lr", lr, run.step)
    run.writer.add_scalar("throughput/images_per_s", run.meter.images_per_s, run.step)
    run.writer.add_scalar("throughput/data_wait_share", run.meter.data_wait_share, run.step)


def train_one_epoch(run: PretrainRun, loader: LoaderHandle, epoch: int) -> None:
    """The rest of ``epoch`` from the loader's start step; returns early at ``last_step`` or on a stop signal."""
    cfg, dist = run.cfg, run.dist
    run.engine.train()
    t_data = time.perf_counter()
    for batch in loader:
        data_s = time.perf_counter() - t_data
        t_step = time.perf_counter()
        lr = run.peak_lr * lr_multiplier(run.step, run.total_steps, cfg.optim.warmup_ratio)
        sums = train_step(run, batch, lr)
        run.step += 1
        step_s = time.perf_counter() - t_step
        images = batch["images"].shape[0] * batch["images"].shape[1] * dist.world_size
        run.meter.add(sums, data_s, step_s, images)
        run.totals.add(sums, data_s, step_s, images)
        run.history.append({"step": run.step, **sums, "lr": lr})
        if dist.is_main:
            append_metrics(run.metrics_path, run.history[-1])
            if run.step % cfg.pretrain.log_every == 0 or run.step == run.last_step:
                log_interval(run, epoch)
                run.meter = Meter()
        at_end = run.step >= run.last_step or run.step % loader.steps_per_epoch == 0  # the caller checkpoints there,
        if run.step % cfg.pretrain.checkpoint_every == 0 and not at_end:  # after the epoch's evaluation
            run.checkpoint()
        if run.stop:
            if run.saved != run.step:
                run.checkpoint()
            if dist.is_main:
                print(f"[pretrain] signal {run.stop.signum}: checkpoint at step {run.step} saved; --resume continues")
            run.stopped = True
            return
        if at_end:
            return
        t_data = time.perf_counter()


def evaluate_epoch(run: PretrainRun, model: nn.Module, epoch: int) -> None:
    """The end-of-epoch monitors (kNN on test, the pretext tasks on labelled movies): printed, in TensorBoard and
    in metrics.jsonl as ``{"step", "epoch", "eval": {...}}``. Every rank calls it."""
    cfg, dist = run.cfg, run.dist
    run.evaluated = run.step
    logged: dict[str, Any] = {}
    if cfg.pretrain.knn_every_epoch:
        knn = knn_validation(cfg, model.encoder, dist, run.precision)
        if dist.is_main and knn:
            print("[pretrain] kNN scene precision " + " ".join(f"@{k} {v:.2f}" for k, v in knn.items()))
            logged.update({f"knn@{k}": v for k, v in knn.items()})
    if cfg.pretrain.monitor_every_epoch:
        monitors = epoch_monitors(cfg, model, dist, run.precision)
        if isinstance(monitors, str):
            if dist.is_main and epoch == 1:
                print(f"[pretrain] pretext monitors skipped: {monitors}")
        elif dist.is_main and monitors:
            run.monitors = monitors
            print(f"[pretrain] pretext monitors {describe(monitors)}")
            logged.update({k: v for k, v in monitors.items() if k != "split"})
    if dist.is_main:  # a stop before this epoch's checkpoint is saved does not owe the evaluation again
        write_evaluation(run.ckpt_dir, run.step, run.monitors)
    if dist.is_main and logged:
        for k, v in logged.items():
            run.writer.add_scalar(f"monitor/{k}", v, run.step)
        append_metrics(run.metrics_path, {"step": run.step, "epoch": epoch, "eval": logged})


def owes_evaluation(run: PretrainRun, steps_per_epoch: int) -> bool:
    """An epoch ended at this step and its end-of-epoch evaluation has not run (a stop signal or a crash came between
    the epoch's last step and its monitors; the checkpoint says which step was evaluated last)."""
    return run.step > 0 and run.step % steps_per_epoch == 0 and run.evaluated != run.step


def _exported_step(path: Path) -> int | None:
    """The step of the encoder.pt at ``path``, None when there is none."""
    return int(load_weights(path).get("step", -1)) if path.is_file() else None


def label_free_record(monitors: dict[str, Any] | None) -> dict[str, Any]:
    """What ``encoder.pt`` keeps of the last monitors: the label-free scorers' APs, from which ``segment`` chooses."""
    if not monitors:
        return {}
    aps = {"adjacent": monitors["adjacent_ap"], **({"pp": monitors["pp_ap"]} if "pp_ap" in monitors else {})}
    return {"label_free": {"split": monitors["split"], "aps": aps}, "monitors": monitors}


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


def pretrain(cfg: Config, out_dir: str | Path, resume: bool = False, max_steps: int | None = None,
             fresh: bool = False) -> dict[str, Any]:
    """Run (or resume) pre-training into ``out_dir``; returns a summary (steps, last losses, export path).

    A directory that holds an earlier run's checkpoints is continued only with ``resume`` and started again (its
    checkpoints deleted) only with ``fresh``: without either it is an error, so no run is lost by a missing flag."""
    # ---- config and distributed facts -------------------------------------------------------------
    if resume and fresh:
        raise ConfigError("--resume and --fresh contradict each other: continue the run, or start it again")
    if max_steps is not None and max_steps < 0:
        raise ConfigError(f"--max-steps {max_steps}: give 0 (the initial weights) or more steps")
    load_manifest(cfg.data.shards)  # no shards is reported before DeepSpeed's start-up (seconds, and its log lines)
    cfg.check_world(world_from_env()[2], "pretrain")  # so is a batch the ranks cannot share
    import deepspeed

    dist: DistInfo = init_distributed(cfg.distributed.backend)
    out_dir = Path(out_dir)
    earlier = None if fresh else latest_tag(out_dir / "checkpoints")  # not read while rank 0 may be deleting it
    if earlier and not resume:
        raise BasslError(f"{out_dir} holds an earlier run's checkpoints (the latest: {earlier}): pass --resume to "
                         "continue it, --fresh to start again at step 0 (deleting them, its encoder.pt and "
                         "TensorBoard logs), or give another --out")
    if fresh and dist.is_main:  # the earlier run's checkpoints, export and curves: none may pass for this run's
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
        if (out_dir / METRICS).is_file():  # a run directory of ours, so its tensorboard/ is ours too
            shutil.rmtree(out_dir / "tensorboard", ignore_errors=True)
        (out_dir / "encoder.pt").unlink(missing_ok=True)
    barrier()  # every rank starts after the deletion
    def refuse_other_settings(saved: dict[str, Any]) -> None:
        if changes := resume_changes(saved, to_dict(cfg)):
            raise ConfigError(f"--resume: {out_dir} was trained with other settings ({'; '.join(changes)}); resume "
                              "with its settings (its config.yaml), or start again with --fresh or another --out")

    checked = bool(earlier and (out_dir / "config.yaml").is_file())
    if checked:  # before it is overwritten: what the checkpoint was trained by
        refuse_other_settings(to_dict(load_saved_config(out_dir)))
    precision = resolve_precision(cfg.pretrain.precision, dist.device)

    # ---- loaders ------------------------------------------------------------------------------------
    loader = build_pretrain_loader(cfg, cfg.data.shards, dist.rank, dist.world_size, dist.device, split="pretrain")
    steps_per_epoch = loader.steps_per_epoch
    total_steps = steps_per_epoch * cfg.pretrain.epochs

    # ---- model, objectives ------------------------------------------------------------------------
    model = initial_pretrain_model(cfg)  # identical initial weights on every rank
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
    p = cfg.pretrain
    ds = deepspeed_config(p.effective_batch, dist.world_size, p.micro_batch, p.zero_stage, precision)
    engine, optimizer, _, _ = deepspeed.initialize(model=step_module, optimizer=optimizer, config=ds)
    run = PretrainRun(cfg, dist, engine, optimizer,
              autocast(precision, dist.device),
              precision, peak_lr, total_steps, total_steps if max_steps is None else min(total_steps, max_steps),
              cfg.pretrain.micro_batch or loader.batch_size, out_dir, None, StopRequested(dist.device))

    # ---- resume -------------------------------------------------------------------------------------
    resumed = bool(resume and latest_tag(run.ckpt_dir))
    if resumed:
        client = load_engine(engine, run.ckpt_dir)
        if not checked and "config" in client:  # its config.yaml is gone: the checkpoint's own copy says
            refuse_other_settings(to_dict(config_from_dict(client["config"], source=str(run.ckpt_dir))))
        if client.get("precision", precision) != precision:  # `auto` resolves by device: a GPU job resumed on CPU
            raise ConfigError(f"--resume: {run.ckpt_dir} was trained in {client['precision']}, and this start runs "
                              f"{precision}; set pretrain.precision={client['precision']}")
        run.step = int(client["step"])
        run.monitors, run.evaluated = client.get("monitors"), int(client.get("evaluated", -1))
        run.saved = run.step
        done = read_evaluation(run.ckpt_dir)  # the checkpoint was saved before its epoch's monitors ran
        if done is not None and done["step"] == run.step:
            run.monitors, run.evaluated = done["monitors"], run.step
        if dist.is_main:
            print(f"[pretrain] resumed from {run.ckpt_dir / latest_tag(run.ckpt_dir)} at step {run.step} "
                  f"(saved with world size {client.get('world_size')}, now {dist.world_size})")
    elif resume and dist.is_main:
        print(f"[pretrain] note: no checkpoint in {run.ckpt_dir} to resume from: starting at step 0")
    if dist.is_main:  # the run is accepted: its config and logs are written from here on
        from torch.utils.tensorboard import SummaryWriter

        save_config(cfg, out_dir)
        run.writer = SummaryWriter(str(out_dir / "tensorboard"))
        print(f"[pretrain] method {cfg.method}, model {cfg.model_preset} ({cfg.model.encoder.arch}), "
              f"{loader.kind} loader, {precision}, world {dist.world_size} on {dist.device.type}")
        print(f"[pretrain] {loader.table.num_rows} anchor shots, {cfg.pretrain.effective_batch} windows per step "
              f"({loader.batch_size}/rank in micro-batches of {run.micro}), {steps_per_epoch} steps/epoch x "
              f"{cfg.pretrain.epochs} epochs = {total_steps} steps, peak lr {peak_lr:g}")
        if fills := loader.table.describe_fills():
            print(f"[pretrain] note: {fills}")
        owed = owes_evaluation(run, steps_per_epoch)  # then the epoch's monitors are logged again, not twice
        truncate_metrics(run.metrics_path, run.step, drop_eval_at_step=owed)  # drop steps lost with a crash

    # ---- loop ---------------------------------------------------------------------------------------
    start = (run.step, run.evaluated)
    try:
        while not run.stopped:
            if owes_evaluation(run, steps_per_epoch):  # an epoch ended, here or before a stop or crash
                evaluate_epoch(run, model, run.step // steps_per_epoch)
            due = run.step % cfg.pretrain.checkpoint_every == 0 or run.step == run.last_step
            if run.step and due and run.saved != run.step:  # after the evaluation: it holds the monitors
                run.checkpoint()
            if run.step >= run.last_step:
                break
            epoch, in_epoch = divmod(run.step, steps_per_epoch)
            loader.set_epoch(epoch, in_epoch)
            train_one_epoch(run, loader, epoch)

        # ---- export ---------------------------------------------------------------------------------
        check_ranks_agree(model, dist)
        export = out_dir / "encoder.pt"
        if dist.is_main:
            if resumed and (run.step, run.evaluated) == start and _exported_step(export) == run.step:
                print(f"[pretrain] nothing left to do at step {run.step}: {export} is left as it is")
            else:
                export_weights(model, export, to_dict(cfg), {"step": run.step, "method": cfg.method,
                                                             **label_free_record(run.monitors)})
            run.writer.close()
            write_run_state(out_dir, "stopped" if run.stopped else "done", run.step, run.last_step, run.stop.signum)
            print(f"[pretrain] {'stopped' if run.stopped else 'done'} at step {run.step}; weights in {export}")
        barrier()
    finally:
        run.stop.close()  # a signal after this run is the process's again
    t = run.totals
    throughput = {"steps": t.steps, "seconds": t.seconds, "steps_per_s": t.steps / max(t.seconds, 1e-9),
                  "images_per_s": t.images_per_s, "data_wait_share": t.data_wait_share}
    return {"step": run.step, "history": run.history, "export": export, "stopped": run.stopped, "throughput": throughput,
            "monitors": run.monitors}
