"""The method comparison ("model zoo" table): the five pre-training methods under one budget, on one data set.

For every method (instance, temporal, shotcol, bassl, bassl_shotcol) and every seed, the real pipeline runs:
``pretrain`` (DeepSpeed loop) → ``extract`` (Parquet) → ``finetune`` (the method's spec learning rate,
epoch selected on val) → test metrics. The synthetic movies are generated once (``synth.seed`` is fixed);
the seed changes initial weights, data order, augmentation and fine-tuning. Every method gets the same
budget: same model preset, batch, epochs, fine-tuning schedule. A control row, ``none``, skips pre-training:
the encoder at its random initialisation, extracted and fine-tuned like a shot-level baseline.

Two columns need no fine-tuning and so say something about the features alone, whatever the fine-tuning
learning rate does (``bassl.eval.frozen_features``): ``adjacent AP`` scores shot i as a boundary by
``1 - cos(mean(f[i-1], f[i]), mean(f[i+1], f[i+2]))`` of the frozen features, and ``kNN@1`` is scene-retrieval
precision@1 within a movie (spec §6.8). Both are on the test split.

    .venv/bin/python benchmarks/compare_methods.py [--seeds 0 1] [--methods ...] [--out runs/compare] [key=value ...]

Resumable: a finished stage (encoder.pt, features.json, report.json) is not recomputed, so a killed run goes
on where it stopped. Writes benchmarks/results/<--name, default compare_methods>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from bassl.config import load_config
from bassl.data.features import load_features
from bassl.data.movienet import MovieNetSource
from bassl.eval.frozen_features import feature_only_metrics

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("instance", "temporal", "shotcol", "bassl", "bassl_shotcol")
CONTROL = "none"  # the control row: the encoder at its random initialisation, no pre-training step
PAPER_AP = {"none": "—", "instance": "51.51", "temporal": "50.05", "shotcol": "51.17", "bassl": "56.26 (10 ep) / 57.40 (40 ep)",
            "bassl_shotcol": "—"}
METRICS = ("ap", "miou", "auc_roc", "f1")

# The budget: tiny preset (CPU), 20 pre-training movies, 12 test movies. Equal for every method.
BUDGET = [
    "model_preset=tiny",
    "synth.train_movies=12", "synth.val_movies=4", "synth.test_movies=12", "synth.pretrain_only_movies=4",
    "pretrain.effective_batch=32", "pretrain.epochs=3", "pretrain.knn_every_epoch=false",
    "pretrain.log_every=50", "pretrain.checkpoint_every=1000",
    "extract.batch_size=64",
    "finetune.effective_batch=256", "finetune.epochs=20",
]


def run_one(base: list[str], method: str, seed: int, out: Path) -> dict:
    from bassl.train.extract import extract
    from bassl.train.finetune import finetune
    from bassl.train.pretrain import pretrain

    # the control fine-tunes like a shot-level baseline (CRN from scratch, the baselines' learning rate)
    cfg = load_config([*base, f"method={'instance' if method == CONTROL else method}", f"seed={seed}"])
    run = out / method / f"seed{seed}"
    # seconds per stage, kept beside the run: a resumed run reports the time its stages took when they ran
    times_path = run / "stage_seconds.json"
    times = json.loads(times_path.read_text()) if times_path.is_file() else {}

    def stage(name: str, done: bool, work) -> None:
        if not done:
            t = time.perf_counter()
            work()
            times[f"{name}_s"] = time.perf_counter() - t
            times_path.write_text(json.dumps(times, indent=1))

    stage("pretrain", (run / "pretrain" / "encoder.pt").is_file(),
          lambda: pretrain(cfg, run / "pretrain", resume=(run / "pretrain" / "checkpoints").is_dir(),
                           max_steps=0 if method == CONTROL else None))
    stage("extract", (run / "features" / "features.json").is_file(),
          lambda: extract(cfg, run / "pretrain" / "encoder.pt", run / "features"))
    report_path = run / "finetune" / "report.json"
    stage("finetune", report_path.is_file(), lambda: finetune(cfg, run / "features", run / "finetune"))
    report = json.loads(report_path.read_text())
    return {"method": method, "seed": seed, "test": {k: report["test"][k] for k in METRICS},
            "last_test": {k: report["protocols"]["last_test"]["test"][k] for k in METRICS},
            "selected_epoch": report["selected_epoch"],
            **feature_only_metrics(cfg, load_features(run / "features").rows), **times}


def table(rows: list[dict], methods: list[str]) -> list[str]:
    def cell(vals: list[float]) -> str:
        return f"{np.mean(vals):.2f} ± {np.std(vals):.2f}" if len(vals) > 1 else f"{vals[0]:.2f}"

    lines = ["| method | paper AP | AP | mIoU | AUC-ROC | F1 | AP, last epoch | adjacent AP (no fine-tune) | kNN@1 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in methods:
        rs = [r for r in rows if r["method"] == m]
        if not rs:
            continue
        label = "none (random init, no pre-training)" if m == CONTROL else m
        lines.append(f"| {label} | {PAPER_AP[m]} | " + " | ".join(cell([r["test"][k] for r in rs]) for k in METRICS)
                     + f" | {cell([r['last_test']['ap'] for r in rs])} | {cell([r['adjacent_ap'] for r in rs])}"
                     f" | {cell([r['knn1'] for r in rs])} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--methods", nargs="+", default=[CONTROL, *METHODS], choices=[CONTROL, *METHODS],
                   help=f"'{CONTROL}': the randomly initialised encoder, no pre-training (the control row)")
    p.add_argument("--out", type=Path, default=Path("runs/compare"))
    p.add_argument("--name", default="compare_methods", help="results file stem in benchmarks/results/")
    p.add_argument("overrides", nargs="*", help="key=value, applied after the budget above")
    args = p.parse_args()
    out = args.out.resolve()
    base = [*BUDGET, f"data.root={out / 'movienet'}", f"data.shards={out / 'shards'}", *args.overrides]
    cfg = load_config(base)

    from bassl.sharding.run import build_shards
    from bassl.synth.generate import generate

    if not (out / "shards" / "manifest.json").is_file():
        print(generate(out / "movienet", cfg.synth).describe())
        build_shards(cfg, out / "movienet", out / "shards")
    test_labels = np.concatenate([a.boundary_labels(cfg.data.negative_label)
                                for a in MovieNetSource.from_config(cfg.data).split("test").values()])
    rows = []
    for seed in args.seeds:
        for method in args.methods:
            print(f"\n[compare] {method}, seed {seed}", flush=True)
            rows.append(run_one(base, method, seed, out))
            print(f"[compare] {method} seed {seed}: " + json.dumps({k: v for k, v in rows[-1].items()
                                                                     if k not in ("method", "seed")}), flush=True)
    result = {"date": datetime.now().isoformat(timespec="seconds"),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU",
              "budget": base[: len(BUDGET)] + list(args.overrides), "seeds": args.seeds,
              "test_positive_share": 100.0 * float(np.mean(test_labels[test_labels >= 0] == 1)),
              "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Method comparison ({result['date']}, {result['machine']})", "",
             f"Seeds {args.seeds}; mean ± std over seeds; test split of the synthetic movies "
             f"({result['test_positive_share']:.1f} % of test shots end a scene: the AP of a random score). "
             "AP..F1: fine-tuned, epoch selected on val. Budget: `" + " ".join(result["budget"]) + "`.", "",
             *table(rows, args.methods)]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
