"""``bassl demo``: the README's first command. The whole pipeline on built-in synthetic movies, on a CPU, ending
with a working scene segmenter (``<out>/segmenter.pt``, ready for ``bassl segment VIDEO --model ...``).

generate → validate → shard → pre-train (bassl, tiny preset) → extract → fine-tune → evaluate, each stage the
same code the real commands run, with the demo's sizes below (any ``key=value`` given on the command line
wins over them).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from bassl.config import Config, settings_overrides

# Sized to finish in about 4 minutes on 2 quiet CPU cores: the short-run settings (configs/short_run.yaml; why each
# differs from the paper's MovieNet values: docs/results.md, "A short run") and the demo's own sizes below.
DEMO_OVERRIDES = [
    *settings_overrides("short_run"),
    "method=bassl",
    # 120 labelled movies (100 train)
    "synth.train_movies=100", "synth.val_movies=8", "synth.test_movies=12", "synth.pretrain_only_movies=4",
    # fine-tuning the similarity head (model.boundary.head, the default): ~1,400 steps warmed up over the first 10 %,
    # at the better on val of two rates (one run each, ~20 s); on seed 0's val, 2.5e-4 / 1e-3 / 4e-3 / 1.6e-2 / 6.4e-2
    # gave AP 42.4 / 45.3 / 48.4 / 50.5 / 45.2 (docs/results.md, "Boundary heads"; the paper's 2.5e-6 learns nothing)
    "finetune.epochs=30", "finetune.lr_grid=[4e-3, 1.6e-2]",
]


def run_demo(out: Path, cfg: Config) -> int:
    """Run every stage into ``out``; returns the exit code."""
    from dataclasses import replace

    import numpy as np

    from bassl.data.features import load_features
    from bassl.data.movienet import MovieNetSource
    from bassl.eval.frozen_features import feature_only_metrics
    from bassl.sharding.run import build_shards
    from bassl.synth.generate import generate
    from bassl.train.extract import extract
    from bassl.train.finetune import SEGMENTER, finetune
    from bassl.train.pretext_monitor import describe
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
    source = MovieNetSource.from_config(cfg.data)
    report = source.validate(window_size=cfg.window_size)
    print(report.describe())
    if not report.ok:
        return 1
    stage(f"shard -> {shards}")
    build_shards(cfg, data_root, shards)
    stage(f"pre-train {cfg.method} ({cfg.model_preset} preset)")
    monitors = pretrain(cfg, out / "pretrain", fresh=True)["monitors"]  # a demo run again is run again
    stage("extract shot features to Parquet")
    extract(cfg, out / "pretrain" / "encoder.pt", out / "features")
    stage("fine-tune the boundary model (select on val, report test)")
    result = finetune(cfg, out / "features", out / "finetune")
    shutil.copyfile(out / "finetune" / SEGMENTER, out / SEGMENTER)
    stage("report")
    frozen = feature_only_metrics(cfg, load_features(out / "features").rows)
    labels = np.concatenate([a.boundary_labels(cfg.data.negative_label) for a in source.split("test").values()])
    chance = 100.0 * float(np.mean(labels[labels >= 0] == 1))
    stages.append(("end", time.perf_counter()))
    test = result["test"]
    print(f"\n[demo] scene boundaries on the {len(source.split('test'))} synthetic test movies (boundary head "
          f"{result['boundary_head']}, epoch {result['selected_epoch']} selected on {result['select_on']}):")
    print("  " + "  ".join(f"{k:>12}" for k in ("AP", "mIoU", "AUC-ROC", "F1", "Recall@3s")))
    print("  " + "  ".join(f"{test[k]:12.2f}" for k in ("ap", "miou", "auc_roc", "f1", "recall_at_3s"))
          + "   thresholded at 0.5 (the protocol)")
    at, rule = result["test_at_val_decision"], result["decision"]
    print("  " + "  ".join(f"{at[k]:12.2f}" for k in ("ap", "miou", "auc_roc", "f1", "recall_at_3s"))
          + f"   boundaries by {rule['rule']} at {rule['value']:.3g}, the rule chosen on val (what segment applies)")
    print(f"[demo] {chance:.1f} % of test shots end a scene, so chance is AP {chance:.1f}: the fine-tuned model's AP "
          f"{test['ap']:.1f} is {test['ap'] / chance:.1f}x chance. With no training at all, the adjacent-shot "
          f"dissimilarity of the frozen features reaches AP {frozen['adjacent_ap']:.1f} "
          f"({frozen['adjacent_ap'] / chance:.1f}x); scene kNN@1 {frozen.get('knn1', float('nan')):.1f}.")
    if monitors:
        print(f"[demo] pretext tasks at the end of pre-training, {describe(monitors)}")
    val_free, val_ap = result["training_free"].get("val"), (result["protocols"]["val_selected"] or {}).get("val", {}).get("ap")
    if val_free is not None and val_ap is not None:
        verdict = "the fine-tuned model is the better scorer" if val_ap > val_free else (
            "warning: the training-free score is the better one here (`bassl segment --model pretrain/encoder.pt` uses it)")
        print(f"[demo] on val: fine-tuned AP {val_ap:.1f}, training-free adjacent AP {val_free:.1f}: {verdict}.")
    print(f"[demo] segmenter: {out / SEGMENTER} (try: bassl segment VIDEO --model {out / SEGMENTER} --out scenes/)")
    print(f"[demo] report: {out / 'finetune' / 'report.json'}; plots: {out / 'finetune' / 'pr_curve.png'}, "
          f"{out / 'finetune' / 'timeline.png'}")
    print("[demo] stage times: " + ", ".join(f"{n.split(' ')[0]} {t1 - t0:.0f}s"
                                             for (n, t0), (_, t1) in zip(stages, stages[1:], strict=False)))
    print(f"[demo] done in {time.perf_counter() - start:.0f} s")
    return 0
