"""``bassl finetune``: scene-boundary detection on frozen shot features (method.md §8).

A run reads: config and distributed facts, data (one feature matrix, windows by index arithmetic:
:mod:`bassl.loaders.finetune`), model (the CRN from pre-training for bassl/bassl_shotcol, from scratch for the
shot-level baselines, plus a Linear(H→2) head), optimizer (Adam, per-step cosine) and engine, then the loop:
``train_one_epoch`` with the per-batch 50/50 loss over the global batch of all ranks, and an evaluation on val
and test after every epoch. By default the epoch is selected on val and test is reported there;
``finetune.select_on=last_test`` is the original's protocol (last epoch, on test). With ``finetune.base_lr=auto``
and ``model.boundary.head=auto`` the run is repeated per learning rate and per boundary head, and the one best on
val is kept (never on test).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
import torch.nn.functional as F
from tqdm import tqdm

from bassl.config import Config, ConfigError, FinetuneConfig, config_from_dict, save_config, to_dict
from bassl.data.atomic import remove_dead_temps
from bassl.data.features import FeatureMatrix, load_features
from bassl.data.movienet import MovieNetSource
from bassl.errors import DataError
from bassl.eval.decision import choose_rule
from bassl.eval.evaluate import evaluate_predictions
from bassl.eval.frozen_features import feature_only_metrics
from bassl.eval.metrics import best_f1_threshold
from bassl.eval.report import remove_report, write_report
from bassl.loaders.finetune import Anchors, batches, split_anchors, window_rows
from bassl.methods import METHODS, method_info
from bassl.models import build_boundary_model
from bassl.models.boundary_model import CRN_HEADS
from bassl.models.weights import export_segmenter, load_weights
from bassl.train.distributed import (
    DistInfo,
    barrier,
    deepspeed_config,
    group_size,
    init_distributed,
    is_distributed,
    world_from_env,
)
from bassl.train.schedule import lr_multiplier, scaled_lr

SEGMENTER = "segmenter.pt"


# --------------------------------------------------------------------------------------------------
# Loss and prediction
# --------------------------------------------------------------------------------------------------


def balanced_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, eps: float = 1e-5,
                           global_batch: bool = False) -> torch.Tensor:
    """½ mean CE over positives + ½ mean CE over negatives of the batch (method.md §8.3); label -100 is ignored.

    ``global_batch`` (with torch.distributed up): the means run over the whole batch of all ranks, as the
    original's single GPU saw it. The counts are all-reduced and this rank's share is scaled by the world
    size, so the engine's gradient averaging over ranks yields exactly the global loss's gradient."""
    ce = F.cross_entropy(logits.float(), labels.clamp(min=0), reduction="none")  # [B]
    pos, neg = (labels == 1).float(), (labels == 0).float()
    counts = torch.stack([pos.sum(), neg.sum()])  # [2]
    scale = 1.0
    if global_batch and is_distributed():
        tdist.all_reduce(counts)  # no gradient flows through the counts
        scale = float(group_size())
    return scale * (0.5 * (ce * pos).sum() / (counts[0] + eps) + 0.5 * (ce * neg).sum() / (counts[1] + eps))


def mean_over_ranks(value: torch.Tensor) -> float:
    """The global loss for the log: the mean of the ranks' (world-scaled) shares."""
    if is_distributed():
        value = value.clone()
        tdist.all_reduce(value)
        return value.item() / group_size()
    return value.item()


@torch.no_grad()
def predict(model: torch.nn.Module, features: torch.Tensor, rows: np.ndarray, device: torch.device,
            batch: int = 1024) -> np.ndarray:
    """Boundary probability (softmax class 1) for every anchor, in order."""
    was = model.training
    model.eval()
    labels = np.zeros(len(rows), dtype=np.int64)
    probs = []
    for x, _, _ in batches(features, rows, labels, np.arange(len(rows)), batch, drop_last=False):
        probs.append(torch.softmax(model(x.to(device).float()), dim=1)[:, 1].cpu().numpy())
    model.train(was)
    return np.concatenate(probs).astype(np.float64)


# --------------------------------------------------------------------------------------------------
# Data and initial weights
# --------------------------------------------------------------------------------------------------


@dataclass
class FinetuneData:
    """Everything the loop reads: the feature matrix, the train anchors and the evaluated splits' anchors."""

    fm: FeatureMatrix
    features: torch.Tensor  # [N, D], stays on the CPU; batches move
    source: MovieNetSource
    train: Anchors
    train_rows: np.ndarray  # [N_train, 2K+1]
    anchors: dict[str, Anchors]  # evaluated splits: test, and val when there is one
    rows: dict[str, np.ndarray]

    @property
    def eval_splits(self) -> list[str]:
        return list(self.anchors)


def load_data(cfg: Config, feature_dir: str | Path) -> FinetuneData:
    fm = load_features(feature_dir, cfg.finetune.feature_dtype)
    source = MovieNetSource.from_config(cfg.data)
    k, negative = cfg.window.neighbor_size, cfg.data.negative_label
    train = split_anchors(fm, source, "train", negative)
    splits = ["test"] + (["val"] if "val" in source.available_splits() else [])
    anchors = {s: split_anchors(fm, source, s, negative) for s in splits}
    return FinetuneData(fm, torch.from_numpy(fm.features), source, train, window_rows(fm, train.movie, train.shot, k),
                        anchors, {s: window_rows(fm, a.movie, a.shot, k) for s, a in anchors.items()})


def choose_decision(data: FinetuneData, val_probs: np.ndarray, threshold: float) -> dict[str, Any]:
    """The decision rule with the best val mIoU (:func:`bassl.eval.decision.choose_rule`); the ``count`` rule's
    shots per scene is the train split's mean scene length."""
    a = data.anchors["val"]
    keep = a.label >= 0
    vids = [data.fm.video_ids[m] for m in a.movie[keep]]
    timing = {v: data.source.shot_timing(v) for v in dict.fromkeys(vids)}
    train = data.train.label[data.train.label >= 0]
    scene_shots = len(train) / max(1, int((train == 1).sum()))
    return choose_rule(vids, a.shot[keep], val_probs[keep], a.label[keep], timing, threshold, scene_shots)


CRN_SHAPE = ("hidden_size", "num_layers", "num_heads", "intermediate_size", "layer_norm_eps", "pooling")  # not dropout


def with_pretrained_crn(cfg: Config, export: dict[str, Any]) -> tuple[Config, list[str]]:
    """``cfg`` with the pre-trained CRN's architecture (the export's ``model.crn``, so its weights load whatever
    ``model_preset`` this command has) and what differed from the command's; dropout stays the command's."""
    trained = config_from_dict(export["config"], source="the encoder export").model.crn
    if trained.num_positions != cfg.model.crn.num_positions:
        raise ConfigError(f"the pre-trained CRN has {trained.num_positions} positions and this command's window needs "
                          f"{cfg.model.crn.num_positions}: set window.neighbor_size={(trained.num_positions - 2) // 2} "
                          f"model.crn.num_positions={trained.num_positions}, or finetune.crn_init=scratch")
    differs = [f"model.crn.{k} {getattr(trained, k)} (this command: {getattr(cfg.model.crn, k)})"
               for k in CRN_SHAPE if getattr(trained, k) != getattr(cfg.model.crn, k)]
    crn = replace(cfg.model.crn, **{k: getattr(trained, k) for k in CRN_SHAPE})
    return replace(cfg, model=replace(cfg.model, crn=crn)), differs


def pretrained_export(fm: FeatureMatrix, weights: str | Path | None) -> tuple[str, dict[str, Any] | None]:
    """(pre-training method, the export the features came from or None if it is not there). The method and the
    path come from the features' provenance; ``weights`` overrides the path."""
    method = fm.metadata.get("method", "")
    path = weights or fm.metadata.get("checkpoint")
    doc = load_weights(path) if path and Path(path).is_file() else None
    if doc is None and method in METHODS and method_info(method).crn:
        raise DataError(f"features were extracted from a {method} checkpoint ({path}) that is not there any more; "
                        "pass --weights ENCODER.pt so the CRN starts from its pre-trained weights")
    if doc is not None and method in METHODS and method_info(method).crn and "crn" not in doc:
        raise DataError(f"{path}: a {method} export without CRN weights")
    return method, doc


def base_lr_for(f: FinetuneConfig, method: str) -> float:
    """``finetune.base_lr``, or 0 = the spec's by method (§8.4; a baseline's for features of unknown origin)."""
    return f.base_lr or (method_info(method) if method in METHODS else METHODS["instance"]).finetune_base_lr


# --------------------------------------------------------------------------------------------------
# One epoch
# --------------------------------------------------------------------------------------------------


def train_one_epoch(engine, optimizer, data: FinetuneData, cfg: Config, dist: DistInfo, epoch: int, step: int,
                    lr: float, total_steps: int) -> tuple[float, int]:
    """One pass over the train windows in a per-epoch seeded order; returns (mean loss, global step)."""
    f = cfg.finetune
    per_rank = f.effective_batch // dist.world_size
    steps = len(data.train) // f.effective_batch
    order = np.random.default_rng([cfg.seed, epoch, 0xF1]).permutation(len(data.train))
    order = order[: steps * f.effective_batch].reshape(steps, dist.world_size, per_rank)  # [steps, W, b]
    engine.train()
    losses = []
    for x, y, _ in tqdm(batches(data.features, data.train_rows, data.train.label, order[:, dist.rank].reshape(-1),
                                per_rank, True),
                        total=steps, desc=f"finetune epoch {epoch + 1}/{f.epochs}", leave=False, disable=not dist.is_main):
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_multiplier(step, total_steps, f.warmup_ratio)
        loss = balanced_cross_entropy(engine(x.to(dist.device).float()), y.to(dist.device), global_batch=True)
        engine.backward(loss)
        engine.step()
        losses.append(mean_over_ranks(loss.detach()))
        step += 1
    return float(np.mean(losses)), step


def evaluate_epoch(cfg: Config, model: torch.nn.Module, data: FinetuneData, device: torch.device,
                   splits: list[str]) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Metrics and probabilities of these evaluated splits."""
    probs = {s: predict(model, data.features, data.rows[s], device) for s in splits}
    metrics = {}
    for s in splits:
        a = data.anchors[s]
        metrics[s] = evaluate_predictions(cfg, data.source, [data.fm.video_ids[m] for m in a.movie], a.shot, a.label, probs[s])
    return metrics, probs


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


def lr_candidates(f: FinetuneConfig, method: str) -> list[float]:
    """The base lrs to train: the one asked for, or with ``auto`` the grid (the default grid holds both spec lrs)."""
    return sorted(set(f.lr_grid)) if f.base_lr == "auto" else [base_lr_for(f, method)]


def head_candidates(cfg: Config) -> list[Config]:
    """The config of each boundary head to train: the one asked for, or with ``auto`` each of
    ``finetune.auto_heads`` (which head wins is a per-data-set matter: docs/results.md, "Boundary heads")."""
    b = cfg.model.boundary
    heads = dict.fromkeys(cfg.finetune.auto_heads) if b.head == "auto" else [b.head]
    return [replace(cfg, model=replace(cfg.model, boundary=replace(b, head=h))) for h in heads]


@dataclass
class SelectedEpoch:
    """The epoch a run keeps: its history record (epoch, train_loss, metrics per scored split) and, for the run
    that is chosen, the model state and the probabilities per scored split (dropped from the others)."""

    record: dict[str, Any]
    state: dict[str, torch.Tensor] | None = None
    probs: dict[str, np.ndarray] | None = None

    @property
    def epoch(self) -> int:
        return self.record["epoch"]

    @property
    def val(self) -> dict[str, float] | None:
        return self.record.get("val")

    @property
    def val_ap(self) -> float | None:
        return None if self.val is None else self.val["ap"]

    @property
    def test(self) -> dict[str, float]:
        return self.record["test"]


@dataclass
class Candidate:
    """One fine-tuning run of one boundary head at one learning rate, with its epoch chosen as ``select_on`` says."""

    cfg: Config  # the run's config: model.boundary.head is the head it trained
    base_lr: float
    lr: float
    history: list[dict[str, Any]]
    best: SelectedEpoch

    @property
    def head(self) -> str:
        return self.cfg.model.boundary.head

    def summary(self) -> dict[str, Any]:
        return {"head": self.head, "base_lr": self.base_lr, "lr": self.lr, "selected_epoch": self.best.epoch,
                "val": self.best.val, "test": self.best.test}


def train_candidate(cfg: Config, data: FinetuneData, dist: DistInfo, method: str, crn_state: dict | None,
                    base_lr: float, select_on: str) -> Candidate | None:
    """Model, optimizer and engine from scratch (same seed every time; the CRN from ``crn_state`` where the head
    has one), then every epoch; rank 0 returns the run with its selected epoch, the other ranks None."""
    import deepspeed

    f = cfg.finetune
    steps_per_epoch = len(data.train) // f.effective_batch
    total = steps_per_epoch * f.epochs
    torch.manual_seed(cfg.seed)
    model = build_boundary_model(cfg, data.features.shape[1])
    crn_state = crn_state if model.has_crn else None  # the similarity head has no CRN to start from pre-training
    if crn_state is not None:
        model.crn.load_state_dict(crn_state, strict=True)
    if hasattr(model, "input_mean"):  # crn_input=centred: the mean feature of the train split's shots
        model.input_mean.copy_(data.features[data.train_rows[:, data.train_rows.shape[1] // 2]].float().mean(0))
    lr = scaled_lr(base_lr, f.effective_batch, f.reference_batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=f.weight_decay)
    ds = deepspeed_config(f.effective_batch, dist.world_size, gradient_clipping=f.gradient_clipping)
    engine, optimizer, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds)
    if dist.is_main:
        crn = ("no CRN" if not model.has_crn else "CRN from pre-training" if crn_state is not None else "CRN from scratch")
        print(f"[finetune] features {data.fm.features.shape} from a {method or 'unknown'} encoder; boundary head "
              f"{cfg.model.boundary.head} ({crn}); {len(data.train)} train windows, "
              f"{steps_per_epoch} steps/epoch x {f.epochs} epochs, lr {lr:g} (base {base_lr:g} at {f.reference_batch})")
    history: list[dict[str, Any]] = []
    best: SelectedEpoch | None = None
    step = 0
    for epoch in range(f.epochs):
        loss, step = train_one_epoch(engine, optimizer, data, cfg, dist, epoch, step, lr, total)
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss}
        if dist.is_main:
            # Selecting on val, test is scored only where it is reported: at each new best epoch and the last one.
            metrics, probs = evaluate_epoch(cfg, engine.module, data, dist.device, ["val"] if select_on == "val" else ["test"])
            improved = select_on != "val" or best is None or metrics["val"]["ap"] > best.val_ap
            if "test" not in metrics and (improved or epoch == f.epochs - 1):
                test_metrics, test_probs = evaluate_epoch(cfg, engine.module, data, dist.device, ["test"])
                metrics, probs = {**metrics, **test_metrics}, {**probs, **test_probs}
            record.update(metrics)
            print(f"[finetune] epoch {epoch + 1}: loss {record['train_loss']:.4f} | "
                  + " | ".join(f"{s} AP {record[s]['ap']:.2f} mIoU {record[s]['miou']:.2f}" for s in metrics))
            if improved:
                best = SelectedEpoch(record, copy.deepcopy(engine.module.state_dict()), probs)
        history.append(record)
    barrier()
    return Candidate(cfg, base_lr, lr, history, best) if dist.is_main else None


def finetune(cfg: Config, feature_dir: str | Path, out_dir: str | Path, weights: str | Path | None = None) -> dict:
    """Fine-tune (one head at one lr, or every lr of the grid with ``finetune.base_lr=auto`` and every head of
    ``finetune.auto_heads`` with ``model.boundary.head=auto``, choosing on val), then write ``report.json``, the
    plots, the test predictions and ``segmenter.pt`` (its config names the head that was kept)."""
    # ---- config, distributed facts, data --------------------------------------------------------------
    out_dir = Path(out_dir)
    f = cfg.finetune
    data = load_data(cfg, feature_dir)  # the inputs first: a wrong path is reported before DeepSpeed's start-up
    method, export = pretrained_export(data.fm, weights)
    cfg.check_world(world_from_env()[2], "finetune")  # and a batch the ranks cannot share
    dist: DistInfo = init_distributed(cfg.distributed.backend)
    select_on = f.select_on
    if select_on == "val" and "val" not in data.eval_splits:
        if f.base_lr == "auto" or cfg.model.boundary.head == "auto":
            raise DataError("finetune.base_lr=auto and model.boundary.head=auto choose on val, and there is no "
                            "anno.val.ndjson; add a val split, or give finetune.base_lr a value and "
                            "model.boundary.head a head (they never choose on test)")
        select_on = "last_test"
        if dist.is_main:
            print("[finetune] no anno.val.ndjson: selecting the last epoch on test (the original protocol)")
    if len(data.train) // f.effective_batch == 0:
        raise DataError(f"the train split has {len(data.train)} shots, fewer than finetune.effective_batch="
                        f"{f.effective_batch}; lower finetune.effective_batch")
    pretrained_crn = export["crn"] if export is not None and "crn" in export and f.crn_init == "pretrained" else None
    if pretrained_crn is not None and any(c.model.boundary.head in CRN_HEADS for c in head_candidates(cfg)):
        cfg, differs = with_pretrained_crn(cfg, export)  # as extract and segment take the encoder's from the file
        if differs and dist.is_main:
            print(f"[finetune] note: the CRN is built as it was pre-trained: {', '.join(differs)}")
    if dist.is_main:
        remove_dead_temps(out_dir)  # what a killed run left half-written

    # ---- one run per head and learning rate; both are chosen on val, never on test ----------------------
    candidates: list[Candidate] = []
    chosen: Candidate | None = None
    for head_cfg in head_candidates(cfg):
        for base_lr in lr_candidates(f, method):
            run = train_candidate(head_cfg, data, dist, method, pretrained_crn, base_lr, select_on)
            if run is None:
                continue
            candidates.append(run)
            if chosen is None or (select_on == "val" and run.best.val_ap > chosen.best.val_ap):
                chosen = run
            for c in candidates:  # only the chosen run's weights and probabilities are kept
                if c is not chosen:
                    c.best = SelectedEpoch(c.best.record)
    if not dist.is_main:
        return {}
    if len(candidates) > 1:
        several_heads = len({c.head for c in candidates}) > 1
        print(f"[finetune] {'head and lr' if several_heads else 'lr'} chosen on val: " + ", ".join(
            f"{c.head + ' ' if several_heads else ''}{c.base_lr:g}{' *' if c is chosen else ''} "
            f"(val AP {c.best.val_ap:.2f})" for c in candidates))
    asked, cfg = cfg, chosen.cfg  # from here on, the head that was kept; config.yaml keeps what was asked

    # ---- outputs -------------------------------------------------------------------------------------
    best = chosen.best
    model = build_boundary_model(cfg, data.features.shape[1])
    model.load_state_dict(best.state)
    threshold = 0.5
    decision: dict[str, Any] = {"rule": "threshold", "value": threshold}
    if "val" in data.eval_splits:  # selecting on test (the original protocol) leaves val unscored until here
        val_probs = best.probs.get("val")
        if val_probs is None:
            val_probs = predict(model, data.features, data.rows["val"], dist.device)
        threshold = best_f1_threshold(data.anchors["val"].label, val_probs)
        decision = choose_decision(data, val_probs, threshold)
        print(f"[finetune] decision rule chosen on val (mIoU): {decision['rule']} at {decision['value']:.3g} "
              f"(val mIoU {decision['miou']:.2f})")
    a = data.anchors["test"]
    test_vids = [data.fm.video_ids[m] for m in a.movie]
    test_at_threshold = evaluate_predictions(cfg, data.source, test_vids, a.shot, a.label, best.probs["test"], threshold)
    test_at_decision = evaluate_predictions(cfg, data.source, test_vids, a.shot, a.label, best.probs["test"],
                                            threshold, decision)
    # The score that needs no training, on the same splits: segment and the demo say when it would have done better.
    training_free = {s: feature_only_metrics(cfg, data.fm.rows, s, knn=False, source=data.source)["adjacent_ap"]
                     for s in data.eval_splits}
    val_ap = best.val_ap
    encoder = {"config": export["config"], "state": export["encoder"]} if export is not None else None
    # An earlier run's outputs go now, not at the start (a run that fails keeps them): the new ones follow in
    # seconds, and a stop among them leaves none of the old passing for the new.
    remove_report(out_dir)
    (out_dir / SEGMENTER).unlink(missing_ok=True)
    save_config(asked, out_dir)
    export_segmenter(out_dir / SEGMENTER, model, to_dict(cfg), threshold, encoder,
                     {"method": method, "epoch": best.epoch, "base_lr": chosen.base_lr,
                      "feature_dim": int(data.features.shape[1]), "boundary_head": cfg.model.boundary.head,
                      "val_ap": val_ap, "training_free_val_ap": training_free.get("val"),
                      "decision": {"rule": decision["rule"], "value": decision["value"]}})
    last = chosen.history[-1]
    report = {
        "method": method,
        "features": str(feature_dir),
        "boundary_head": cfg.model.boundary.head,
        "crn_init": "none" if not model.has_crn else "pretrained" if pretrained_crn is not None else "scratch",
        "training_free": training_free,
        "select_on": select_on,
        "selected_epoch": best.epoch,
        "head_mode": "auto" if asked.model.boundary.head == "auto" else "fixed",  # the candidates below name each run's head
        "lr": {"mode": "auto" if f.base_lr == "auto" else "fixed", "base_lr": chosen.base_lr, "lr": chosen.lr,
               "candidates": [c.summary() for c in candidates]},
        "threshold": threshold,
        "test": best.test,
        # The same predictions thresholded where segment thresholds them (best F1 on val), not at the protocol's 0.5:
        # the 50/50 loss calibrates probabilities to a balanced prior, so 0.5 over-predicts boundaries.
        "test_at_val_threshold": test_at_threshold,
        # ... and as segment decides them: the rule and value with the best val mIoU (bassl.eval.decision)
        "decision": decision,
        "test_at_val_decision": test_at_decision,
        "protocols": {
            "val_selected": {"epoch": best.epoch, "test": best.test, "val": best.val} if "val" in data.eval_splits else None,
            "last_test": {"epoch": last["epoch"], "test": last["test"]},
        },
        "history": chosen.history,
        "segmenter": SEGMENTER if encoder is not None else None,
        "config": to_dict(cfg),
    }
    write_report(out_dir, report, [data.fm.video_ids[m] for m in a.movie], a.shot, a.label, best.probs["test"])
    print(f"[finetune] selected epoch {report['selected_epoch']} ({select_on}); test "
          + ", ".join(f"{k} {v:.2f}" for k, v in report["test"].items()) + f"; report in {out_dir / 'report.json'}")
    if val_ap is not None and training_free.get("val", -1.0) > val_ap:
        print(f"[finetune] warning: on val the training-free adjacent-shot score (AP {training_free['val']:.2f}) beats "
              f"this model (AP {val_ap:.2f}); `bassl segment --model ENCODER.pt` uses it. Try "
              + ("model.boundary.head=similarity, " if asked.model.boundary.head == "paper" else "")
              + "finetune.base_lr=auto, or more labelled movies")
    if encoder is None:
        print(f"[finetune] note: the encoder of these features ({data.fm.metadata.get('checkpoint')}) is not there; "
              f"{out_dir / SEGMENTER} scores shot features only (pass --weights ENCODER.pt to make it segment videos)")
    return report
