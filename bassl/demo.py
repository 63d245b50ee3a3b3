"""``bassl demo``: the README's first command. The whole pipeline on built-in synthetic movies, on a CPU.

generate → validate → shard → pre-train (bassl, tiny preset) → extract → fine-tune → evaluate, each stage the
same code the real commands run, with the demo's sizes below (any ``key=value`` given on the command line
wins over them).
"""

from __future__ import annotations

import time
from pathlib import Path

from bassl.config import Config

# Sized to finish in a few minutes on 2 CPU cores; every key is an ordinary config key.
DEMO_OVERRIDES = [
    "method=bassl",
    "model_preset=tiny",
    "pretrain.effective_batch=32",
    "pretrain.epochs=2",
    "pretrain.log_every=20",
    "pretrain.checkpoint_every=100",
    "extract.batch_size=32",
    "finetune.effective_batch=128",
    "finetune.epochs=8",
]


def run_demo(out: Path, cfg: Config) -> int:
    """Run every stage into ``out``; returns the exit code."""
    from dataclasses import replace

    from bassl.data.movienet import MovieNetSource
    from bassl.sharding.run import build_shards
    from bassl.synth.generate import generate
    from bassl.train.extract import extract
    from bassl.train.finetune import finetune
    from bassl.train.pretrain import pretrain

    out = Path(out).resolve()
    data_root, shards = out / "movienet", out / "shards"
    cfg = replace(cfg, data=replace(cfg.data, root=str(data_root), shards=str(shards)))
    start = time.perf_counter()
    stages = []

    def stage(name: str) -> None:
        stages.append((name, time.perf_counter()))
        print(f"\n[demo] {len(stages)}/7 {name}", flush=True)

    stage(f"synthetic movies -> {data_root}")
    print(generate(data_root, cfg.synth).describe())
    stage("validate the MovieNet-SSeg layout")
    report = MovieNetSource.from_config(cfg.data).validate(window_size=cfg.window_size)
    print(report.describe())
    if not report.ok:
        return 1
    stage(f"shard -> {shards}")
    build_shards(cfg, data_root, shards)
    stage(f"pre-train {cfg.method} ({cfg.model_preset} preset)")
    pretrain(cfg, out / "pretrain")
    stage("extract shot features to Parquet")
    extract(cfg, out / "pretrain" / "encoder.pt", out / "features")
    stage("fine-tune the boundary model (select on val, report test)")
    result = finetune(cfg, out / "features", out / "finetune")
    stage("report")
    from bassl.data.features import load_features
    from bassl.eval.frozen_features import feature_only_metrics

    frozen = feature_only_metrics(cfg, load_features(out / "features").rows)
    stages.append(("end", time.perf_counter()))
    test = result["test"]
    print(f"\n[demo] scene boundaries on the synthetic test movies (epoch {result['selected_epoch']} selected on "
          f"{result['select_on']}):")
    print("  " + "  ".join(f"{k:>12}" for k in ("AP", "mIoU", "AUC-ROC", "F1", "Recall@3s")))
    print("  " + "  ".join(f"{test[k]:12.2f}" for k in ("ap", "miou", "auc_roc", "f1", "recall_at_3s")))
    print(f"[demo] the frozen features alone, no fine-tuning (test): adjacent-shot dissimilarity AP "
          f"{frozen['adjacent_ap']:.2f}, scene kNN@1 {frozen.get('knn1', float('nan')):.2f}. At the demo's size the "
          "fine-tuned AP stays near chance (README, 'Method comparison').")
    print(f"[demo] report: {out / 'finetune' / 'report.json'}; plots: {out / 'finetune' / 'pr_curve.png'}, "
          f"{out / 'finetune' / 'timeline.png'}")
    print("[demo] stage times: " + ", ".join(f"{n.split(' ')[0]} {t1 - t0:.0f}s"
                                             for (n, t0), (_, t1) in zip(stages, stages[1:], strict=False)))
    print(f"[demo] done in {time.perf_counter() - start:.0f} s")
    return 0
