"""``bassl finetune``: scene-boundary detection on frozen shot features (spec §8).

The Parquet features are read once into one matrix; a 17-shot window is ``offsets[movie] + clip(c-8..c+8)``
(clip and repeat at movie edges, anchor centred), gathered by one indexing op per batch — no per-shot
files. The CRN (initialised from pre-training for bassl/bassl_shotcol, from scratch for the shot-level
baselines) and a Linear(768→2) head are trained with Adam, a per-step cosine schedule and the per-batch
50/50 loss over the global batch of all ranks; every epoch is evaluated on val and test. By default the
epoch is selected on val and test is reported there; ``finetune.select_on=last_test`` is the original's
protocol (last epoch, on test).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
import torch.nn.functional as F
from tqdm import tqdm

from bassl.config import Config, save_config, to_dict
from bassl.errors import DataError
from bassl.loaders.windows import neighbor_window
from bassl.models import build_boundary_model
from bassl.models.weights import load_weights
from bassl.sharding.movienet import MovieNetSource
from bassl.train.distributed import DistInfo, init_distributed
from bassl.train.feature_store import FeatureMatrix, load_features
from bassl.train.schedule import lr_multiplier, scaled_lr

# spec §8.4: base lr at batch 256 (x effective/256), found by the authors' search
BASE_LR = {"bassl": 2.5e-6, "bassl_shotcol": 2.5e-6, "instance": 2.5e-5, "temporal": 2.5e-5, "shotcol": 2.5e-5}


@dataclass
class Anchors:
    """The shots a split scores: each is the centre of its own window."""

    movie: np.ndarray  # [N] index into FeatureMatrix.video_ids
    shot: np.ndarray  # [N]
    label: np.ndarray  # [N] 0/1, or -100 for an ignored -1 label

    def __len__(self) -> int:
        return int(self.movie.shape[0])


def split_anchors(fm: FeatureMatrix, source: MovieNetSource, split: str, negative_label: str) -> Anchors:
    index = fm.movie_index()
    movie, shot, label = [], [], []
    for vid, ann in source.split(split).items():
        if vid not in index:
            raise DataError(f"movie {vid} of anno.{split}.ndjson has no features; extract the split that holds it "
                            f"(extract.split=trainvaltest covers train, val and test)")
        m = index[vid]
        if ann.shot_ids.max(initial=-1) >= fm.counts[m]:
            raise DataError(f"anno.{split}.ndjson: movie {vid} has shot {int(ann.shot_ids.max())} but features for "
                            f"{int(fm.counts[m])} shots")
        movie.append(np.full(ann.shot_ids.shape, m))
        shot.append(ann.shot_ids)
        label.append(ann.boundary_labels(negative_label))
    if not movie:
        raise DataError(f"anno.{split}.ndjson lists no shots")
    return Anchors(np.concatenate(movie), np.concatenate(shot), np.concatenate(label))


def window_rows(fm: FeatureMatrix, movie: np.ndarray, shot: np.ndarray, k: int) -> np.ndarray:
    """``[N, 2K+1]`` rows of the feature matrix: each movie's clip-and-repeat window (spec §3.6, fine-tuning)."""
    return fm.offsets[movie][:, None] + neighbor_window(shot, fm.counts[movie], k)


def balanced_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, eps: float = 1e-5,
                           global_batch: bool = False) -> torch.Tensor:
    """½ mean CE over positives + ½ mean CE over negatives of the batch (spec §8.3); label -100 is ignored.

    ``global_batch`` (with torch.distributed up): the means run over the whole batch of all ranks, as the
    original's single GPU saw it. The counts are all-reduced and this rank's share is scaled by the world
    size, so the engine's gradient averaging over ranks yields exactly the global loss's gradient."""
    ce = F.cross_entropy(logits.float(), labels.clamp(min=0), reduction="none")  # [B]
    pos, neg = (labels == 1).float(), (labels == 0).float()
    counts = torch.stack([pos.sum(), neg.sum()])  # [2]
    scale = 1.0
    if global_batch and tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1:
        tdist.all_reduce(counts)  # no gradient flows through the counts
        scale = float(tdist.get_world_size())
    return scale * (0.5 * (ce * pos).sum() / (counts[0] + eps) + 0.5 * (ce * neg).sum() / (counts[1] + eps))


def batches(features: torch.Tensor, rows: np.ndarray, labels: np.ndarray, order: np.ndarray, batch: int,
            drop_last: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
    """(windows [B, 2K+1, D], labels [B], anchor ids [B]) in ``order``; one gather per batch.

    The windows are gathered into one reused buffer (a fresh 140 MB tensor per batch of 1024 costs more in
    page faults than the copy itself): use a batch before asking for the next, or clone it."""
    stop = len(order) - (len(order) % batch if drop_last else 0)
    width = rows.shape[1]
    buffer = torch.empty(min(batch, max(stop, 1)) * width, features.shape[1], dtype=features.dtype)
    for s in range(0, stop, batch):
        ids = order[s : s + batch]
        idx = torch.from_numpy(rows[ids]).flatten()  # [B*S]
        out = torch.index_select(features, 0, idx, out=buffer[: idx.numel()])
        yield out.view(len(ids), width, -1), torch.from_numpy(labels[ids]), ids


def mean_over_ranks(value: torch.Tensor) -> float:
    """The global loss for the log: the mean of the ranks' (world-scaled) shares."""
    if tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1:
        value = value.clone()
        tdist.all_reduce(value)
        return value.item() / tdist.get_world_size()
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


def pretrained_crn(fm: FeatureMatrix, weights: str | Path | None) -> tuple[str, dict[str, torch.Tensor] | None]:
    """(pre-training method, CRN state or None). The method comes from the features' provenance."""
    method = fm.metadata.get("method", "")
    path = weights or fm.metadata.get("checkpoint")
    if method not in ("bassl", "bassl_shotcol"):
        return method, None
    if not path or not Path(path).is_file():
        raise DataError(f"features were extracted from a {method} checkpoint ({path}) that is not there any more; "
                        "pass --weights ENCODER.pt so the CRN starts from its pre-trained weights")
    doc = load_weights(path)
    if "crn" not in doc:
        raise DataError(f"{path}: a {method} export without CRN weights")
    return method, doc["crn"]


def finetune(cfg: Config, feature_dir: str | Path, out_dir: str | Path, weights: str | Path | None = None) -> dict:
    import deepspeed

    from bassl.eval.evaluate import evaluate_predictions

    # ---- config and distributed facts ---------------------------------------------------------------
    dist: DistInfo = init_distributed(cfg.distributed.backend)
    out_dir = Path(out_dir)
    f = cfg.finetune
    k = cfg.window.neighbor_size

    # ---- data: one matrix, windows by index arithmetic -------------------------------------------------
    fm = load_features(feature_dir, f.feature_dtype)
    features = torch.from_numpy(fm.features)  # [N, D], stays on the CPU; batches move
    source = MovieNetSource.from_config(cfg.data)
    train = split_anchors(fm, source, "train", cfg.data.negative_label)
    eval_splits = ["test"] + (["val"] if "val" in source.available_splits() else [])
    select_on = f.select_on
    if select_on == "val" and "val" not in eval_splits:
        select_on = "last_test"
        if dist.is_main:
            print("[finetune] no anno.val.ndjson: selecting the last epoch on test (the original protocol)")
    anchors = {s: split_anchors(fm, source, s, cfg.data.negative_label) for s in eval_splits}
    train_rows = window_rows(fm, train.movie, train.shot, k)
    eval_rows = {s: window_rows(fm, a.movie, a.shot, k) for s, a in anchors.items()}

    # ---- model ---------------------------------------------------------------------------------------
    method, crn_state = pretrained_crn(fm, weights)
    torch.manual_seed(cfg.seed)
    model = build_boundary_model(cfg, features.shape[1])
    if crn_state is not None:
        model.crn.load_state_dict(crn_state, strict=True)
    base_lr = f.base_lr or BASE_LR.get(method, BASE_LR["instance"])
    lr = scaled_lr(base_lr, f.effective_batch, f.reference_batch)
    per_rank = f.effective_batch // dist.world_size
    steps_per_epoch = len(train) // f.effective_batch
    if steps_per_epoch == 0:
        raise DataError(f"the train split has {len(train)} shots, fewer than finetune.effective_batch="
                        f"{f.effective_batch}; lower finetune.effective_batch")
    total = steps_per_epoch * f.epochs
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=f.weight_decay)
    ds_config = {"train_batch_size": f.effective_batch, "train_micro_batch_size_per_gpu": per_rank,
                 "gradient_accumulation_steps": 1, "zero_optimization": {"stage": 0}, "steps_per_print": 10**9}
    engine, optimizer, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config)
    if dist.is_main:
        save_config(cfg, out_dir)
        print(f"[finetune] features {fm.features.shape} from a {method or 'unknown'} encoder; CRN "
              f"{'from pre-training' if crn_state is not None else 'from scratch'}; {len(train)} train windows, "
              f"{steps_per_epoch} steps/epoch x {f.epochs} epochs, lr {lr:g} (base {base_lr:g} at {f.reference_batch})")

    # ---- loop ------------------------------------------------------------------------------------------
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    step = 0
    for epoch in range(f.epochs):
        engine.train()
        order = np.random.default_rng([cfg.seed, epoch, 0xF1]).permutation(len(train))
        order = order[: steps_per_epoch * f.effective_batch].reshape(steps_per_epoch, dist.world_size, per_rank)
        losses = []
        for x, y, _ in tqdm(batches(features, train_rows, train.label, order[:, dist.rank].reshape(-1), per_rank, True),
                            total=steps_per_epoch, desc=f"finetune epoch {epoch + 1}/{f.epochs}", leave=False,
                            disable=not dist.is_main):
            for group in optimizer.param_groups:
                group["lr"] = lr * lr_multiplier(step, total, f.warmup_ratio)
            loss = balanced_cross_entropy(engine(x.to(dist.device).float()), y.to(dist.device), global_batch=True)
            engine.backward(loss)
            engine.step()
            losses.append(mean_over_ranks(loss.detach()))
            step += 1
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": float(np.mean(losses))}
        if dist.is_main:
            probs = {s: predict(engine.module, features, eval_rows[s], dist.device) for s in eval_splits}
            for s in eval_splits:
                a = anchors[s]
                record[s] = evaluate_predictions(cfg, source, [fm.video_ids[m] for m in a.movie], a.shot, a.label, probs[s])
            print(f"[finetune] epoch {epoch + 1}: loss {record['train_loss']:.4f} | "
                  + " | ".join(f"{s} AP {record[s]['ap']:.2f} mIoU {record[s]['miou']:.2f}" for s in eval_splits))
            key = "val" if select_on == "val" else None
            if best is None or key is None or record[key]["ap"] > best["record"][key]["ap"]:
                best = {"record": record, "state": copy.deepcopy(engine.module.state_dict()), "probs": probs}
        history.append(record)
    if tdist.is_initialized():
        tdist.barrier()
    if not dist.is_main:
        return {"history": history}

    # ---- report --------------------------------------------------------------------------------------
    from bassl.eval.evaluate import write_report

    torch.save({"format": "bassl-boundary-1", "config": to_dict(cfg), "method": method,
                "epoch": best["record"]["epoch"], "model": best["state"]}, out_dir / "model.pt")
    last = history[-1]
    report = {
        "method": method,
        "features": str(feature_dir),
        "select_on": select_on,
        "selected_epoch": best["record"]["epoch"],
        "test": best["record"]["test"],
        "protocols": {
            "val_selected": {"epoch": best["record"]["epoch"], "test": best["record"]["test"],
                             "val": best["record"].get("val")} if "val" in eval_splits else None,
            "last_test": {"epoch": last["epoch"], "test": last["test"]},
        },
        "history": history,
        "config": to_dict(cfg),
    }
    a = anchors["test"]
    write_report(out_dir, report, [fm.video_ids[m] for m in a.movie], a.shot, a.label, best["probs"]["test"])
    print(f"[finetune] selected epoch {report['selected_epoch']} ({select_on}); test "
          + ", ".join(f"{k} {v:.2f}" for k, v in report["test"].items()) + f"; report in {out_dir / 'report.json'}")
    return report
