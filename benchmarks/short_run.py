"""What a short run needs, measured: the LARS trust coefficient of pre-training, and the fine-tuning learning rate.

One synthetic data set (216x120, 120 train, 16 val, 16 test, 8 pre-train-only movies); bassl pre-trained for 144
steps of 32 windows (tiny preset) with LARS trust 0.001 (the paper's) and 0.02; features extracted; then

- fine-tuning 40 epochs at base lr 2.5e-3 with the pre-trained CRN and, for trust 0.02, with a CRN from scratch
  (and at base lr 1e-2, which diverges);
- ``finetune.base_lr=auto`` over the spec's lrs and two larger ones, 10 epochs, pre-trained and from scratch;
- the similarity probe and the training-free adjacent-shot AP of the same features.

Every fine-tuning picks its epoch on val and reports test there.

    .venv/bin/python benchmarks/short_run.py [--out runs/short_run]

About an hour on 2 CPU cores. Resumable. Writes benchmarks/results/short_run.{json,md}.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from results_files import measured_on, write_results

from bassl.config import load_config
from bassl.data.features import load_features
from bassl.data.movienet import MovieNetSource
from bassl.eval.frozen_features import feature_only_metrics
from bassl.eval.report import read_report

DATA = ["synth.width=216", "synth.height=120", "synth.train_movies=120", "synth.val_movies=16", "synth.test_movies=16",
        "synth.pretrain_only_movies=8"]
PRETRAIN = ["model_preset=tiny", "method=bassl", "pretrain.effective_batch=32", "pretrain.epochs=2",
            "pretrain.epoch_shots=2304", "pretrain.log_every=48", "pretrain.checkpoint_every=10000", "extract.batch_size=64"]
FINETUNE = ["finetune.effective_batch=256"]
RUNS = [  # (trust, crn_init, finetune overrides)
    (0.001, "pretrained", ["finetune.base_lr=2.5e-3", "finetune.epochs=40"]),
    (0.02, "pretrained", ["finetune.base_lr=2.5e-3", "finetune.epochs=40"]),
    (0.02, "scratch", ["finetune.base_lr=2.5e-3", "finetune.epochs=40"]),
    (0.02, "pretrained", ["finetune.base_lr=1e-2", "finetune.epochs=40"]),
    (0.02, "pretrained", ["finetune.base_lr=auto", "finetune.lr_grid=[2.5e-6, 2.5e-5, 2.5e-4, 2.5e-3]", "finetune.epochs=10"]),
    (0.02, "scratch", ["finetune.base_lr=auto", "finetune.lr_grid=[2.5e-6, 2.5e-5, 2.5e-4, 2.5e-3]", "finetune.epochs=10"]),
]


def main() -> None:
    from bassl.sharding.run import build_shards
    from bassl.synth.generate import generate
    from bassl.train.extract import extract
    from bassl.train.finetune import finetune
    from bassl.train.pretrain import pretrain
    from bassl.train.similarity_probe import similarity_probe

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/short_run"))
    args = p.parse_args()
    out = args.out.resolve()
    paths = [f"data.root={out / 'movienet'}", f"data.shards={out / 'shards'}"]
    cfg = load_config([*DATA, *PRETRAIN, *paths])
    if not (out / "shards" / "manifest.json").is_file():
        generate(out / "movienet", cfg.synth)
        build_shards(cfg, out / "movienet", out / "shards")
    rows, features = [], {}
    for trust, init, over in RUNS:
        run = out / f"trust{trust}"
        cfg = load_config([*DATA, *PRETRAIN, *paths, f"optim.trust_coefficient={trust}", *FINETUNE,
                           f"finetune.crn_init={init}", *over])
        if not (run / "pretrain" / "encoder.pt").is_file():
            pretrain(cfg, run / "pretrain", resume=(run / "pretrain" / "checkpoints").is_dir())  # after a crash
        if not (run / "features" / "features.json").is_file():
            extract(cfg, run / "pretrain" / "encoder.pt", run / "features")
        if trust not in features:
            fm = load_features(run / "features")
            probe = similarity_probe(cfg, fm, MovieNetSource.from_config(cfg.data))
            features[trust] = {**feature_only_metrics(cfg, fm.rows), "probe_val_ap": probe["val"]["ap"],
                               "probe_test_ap": probe["test"]["ap"]}
        name = f"ft_{init}_" + "_".join(o.split("=")[1] for o in over)
        if read_report(run / name) is None:
            finetune(cfg, run / "features", run / name)
        rep = read_report(run / name)
        h = rep["history"]
        rows.append({"trust": trust, "crn_init": init, "finetune": over, "lr": rep["lr"]["base_lr"],
                     "selected_epoch": rep["selected_epoch"], "val_ap": h[rep["selected_epoch"] - 1]["val"]["ap"],
                     "test_ap": rep["test"]["ap"], "val_curve": [x["val"]["ap"] for x in h]})
        print(rows[-1], flush=True)
    result = {**measured_on(), "data": DATA, "pretrain": PRETRAIN,
              "features": {str(k): v for k, v in features.items()}, "finetune_runs": rows}
    lines = [f"# A short run ({result['date']}, {result['machine']})", "", "| pre-training trust | CRN | fine-tuning | "
             "lr chosen | epoch | val AP | test AP |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['trust']} | {r['crn_init']} | {' '.join(r['finetune'])} | {r['lr']:g} | {r['selected_epoch']} | "
                     f"{r['val_ap']:.1f} | {r['test_ap']:.1f} |")
    lines += ["", "| pre-training trust | adjacent AP | kNN@1 | similarity probe val / test AP |", "|---|---|---|---|"]
    for t, f in features.items():
        lines.append(f"| {t} | {f['adjacent_ap']:.1f} | {f['knn1']:.1f} | {f['probe_val_ap']:.1f} / {f['probe_test_ap']:.1f} |")
    write_results("short_run", result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
